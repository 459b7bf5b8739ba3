"""Live capture under a ramp of new-connection rates: kernel drops of ``egresslens capture live``
and of ``tcpdump -w FILE`` on the same lab interface at the same rates.

Run by hand, as root, from the repository root::

    sudo .venv/bin/python bench/bench_live.py            # 1k .. 100k SYN/s, 3 s each
    sudo .venv/bin/python bench/bench_live.py --quick    # 1k and 5k, 1 s each

Inside the network lab of ``tests/lab`` (namespaces only, documentation and 10/8 addresses,
no route out): one source VM sends TCP SYNs to port 80 of the lab's destination, each from a
new source port, at a paced rate for a few seconds (a raw socket in the VM's namespace; the
count is bounded by rate x seconds).  Nothing listens on port 80, so the destination answers
each SYN with a RST: two packets per new connection cross the destination's interface, where
one tool at a time captures with the BPF filter ``tcp port 80`` into files:

* ``egresslens capture live -i eth0 --bpf 'tcp port 80' --out DIR`` (records folder + pcap);
  its final status line gives the kernel's received / dropped counts (PACKET_STATISTICS);
* ``tcpdump -i eth0 -n -w FILE 'tcp port 80'``; its "packets dropped by kernel" line.

The edge does not track these packets (an nftables ``notrack`` rule), so the lab's conntrack
table never fills and every SYN reaches the destination.  For each tool and rate it prints the
SYNs sent, the rate reached, packets the kernel handed the socket and dropped, and the tool's
peak RSS (VmHWM); then the highest rate each tool held with zero drops.  A tool's ramp stops
after two rates in a row with drops.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.lab import Lab, SourceVm, Topology, unavailable, wait_for, which  # noqa: E402

RATES = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
PORT = 80
BPF = f"tcp port {PORT}"

SENDER = r"""
import socket, struct, sys, time
src, dst, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
total = int(rate * seconds)
s_ip, d_ip = socket.inet_aton(src), socket.inet_aton(dst)

def csum(data):
    if len(data) % 2:
        data += b"\0"
    t = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF

packets = []
for sport in range(1024, 65536):  # one SYN per source port; cycled if the step needs more
    tcp = struct.pack("!HHIIBBHHH", sport, DPORT, sport * 7919, 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(s_ip + d_ip + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, sport & 0xFFFF, 0, 64, 6, 0, s_ip, d_ip)
    packets.append(ip + tcp)
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
n, sent, start = len(packets), 0, time.perf_counter()
addr = (dst, 0)
while sent < total:
    due = min(total, int((time.perf_counter() - start) * rate) + 1)
    while sent < due:
        try:
            sock.sendto(packets[sent % n], addr)
        except BlockingIOError:
            break
        sent += 1
    if sent < total:
        time.sleep(0.0005)
elapsed = time.perf_counter() - start
print(sent, f"{elapsed:.3f}")
""".replace("DPORT", str(PORT))


@dataclass
class Step:
    tool: str
    rate: int
    sent: int
    achieved: float
    received: int | None
    dropped: int | None
    rss_mb: float | None
    note: str = ""


def _hwm(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


TOOLS = ("egresslens", "egresslens-dumpcap", "egresslens-scapy", "tcpdump")
"""``egresslens``: ``capture live`` with its default source, ``--backend ring`` (a TPACKET_V3
ring walked and decoded in place by the compiled core); ``egresslens-dumpcap``: ``--backend
tshark`` (dumpcap's ring, its pcap stream decoded in chunks); ``egresslens-scapy``:
``--backend scapy`` (one recv per packet through scapy); ``tcpdump -w FILE``."""
BACKENDS = {"egresslens": "ring", "egresslens-dumpcap": "tshark", "egresslens-scapy": "scapy"}


def _argv(tool: str, lab: Lab, out: Path) -> list[str]:
    if tool.startswith("egresslens"):
        backend = ["--backend", BACKENDS[tool]]
        return [sys.executable, "-m", "analyze", "capture", "live", "-i", lab.dest_iface, "--bpf", BPF,
                "--out", str(out), "--observer", "bench", *backend]  # fmt: skip
    return [which("tcpdump") or "tcpdump", "-i", lab.dest_iface, "-n", "-w", str(out / "tcpdump.pcap"), BPF]


def _ready(tool: str, out: Path, err: Path) -> bool:
    if tool.startswith("egresslens"):
        return any(out.glob(".packets-*"))
    return "listening on" in err.read_text()


def _counts(tool: str, err: str) -> tuple[int | None, int | None]:
    if tool.startswith("egresslens"):
        found = re.findall(r"kernel: ([\d,]+) received, ([\d,]+) dropped", err)
        if not found:
            return None, None
        rec, drop = found[-1]
        return int(rec.replace(",", "")), int(drop.replace(",", ""))
    rec = re.search(r"(\d+) packets received by filter", err)
    drop = re.search(r"(\d+) packets dropped by kernel", err)
    return (int(rec[1]) if rec else None), (int(drop[1]) if drop else None)


def step(lab: Lab, tool: str, rate: int, seconds: float, work: Path, warmup: bool) -> Step:
    out = work / f"{tool}-{rate}"
    out.mkdir(parents=True)
    vm = lab.plans[0].vm
    with lab.background(_argv(tool, lab, out), stop_timeout=120) as bg:
        if not wait_for(lambda: _ready(tool, out, bg.stderr), 30):
            raise SystemExit(f"{tool} did not start: {bg.stderr.read_text()[-500:]}")
        time.sleep(3.0 if tool == "egresslens-dumpcap" else 0.5)  # dumpcap takes a moment
        if warmup:  # a trickle first, so that the tool's first-packet work (imports) is done
            lab.run_in(lab.ns_of(vm.name), [sys.executable, "-c", SENDER, vm.private_ip,
                                            lab.topology.dest_ip, "200", "1"], timeout=30, check=True)  # fmt: skip
            time.sleep(1.0)
        done = lab.run_in(lab.ns_of(vm.name), [sys.executable, "-c", SENDER, vm.private_ip,
                                               lab.topology.dest_ip, str(rate), str(seconds)],
                          timeout=seconds * 4 + 30)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"sender failed: {done.stderr[-500:]}")
        sent, elapsed = done.stdout.split()
        time.sleep(1.0)  # the last RSTs
        rss = _hwm(bg.proc.pid)
        bg.proc.send_signal(signal.SIGINT)
        while bg.proc.poll() is None:  # the peak may come during the final flush
            rss = max(rss or 0.0, _hwm(bg.proc.pid) or 0.0) or rss
            time.sleep(0.05)
    received, dropped = _counts(tool, bg.stderr.read_text())
    shutil.rmtree(out, ignore_errors=True)
    return Step(tool, rate, int(sent), int(sent) / float(elapsed), received, dropped, rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="SYN/s steps (comma-separated)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each step")
    parser.add_argument("--quick", action="store_true", help="1k and 5k SYN/s, 1 s each")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"any of {', '.join(TOOLS)}")
    parser.add_argument("--warmup", action="store_true",
                        help="send 200 SYNs at 200/s before each step (counted in the step's packets)")
    args = parser.parse_args()
    rates = [1_000, 5_000] if args.quick else [int(r) for r in args.rates.split(",")]
    seconds = 1.0 if args.quick else args.seconds
    if max(rates) > 200_000 or seconds > 10:
        raise SystemExit("bounded by design: at most 200,000 SYN/s and 10 s per step")
    if (reason := unavailable(("tcpdump",))) is not None:
        raise SystemExit(f"bench_live: {reason}")
    tools = args.tools.split(",")
    topology = Topology(vms=(SourceVm(name="burstvm", private_ip="10.0.9.4", egress="private"),))
    work = Path(tempfile.mkdtemp(prefix="el-bench-live-", dir=ROOT / "bench" / "out"
                                 if (ROOT / "bench" / "out").is_dir() else None))  # fmt: skip
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results: list[Step] = []
    try:
        with Lab(topology, services=False) as lab:
            # Untracked at the edge: the lab's conntrack table never fills, every SYN gets through.
            lab.run_in(lab.edge_ns, ["nft", "-f", "-"], check=True, input=(
                "table ip bench_notrack {\n"
                "  chain pre { type filter hook prerouting priority raw; policy accept;\n"
                f"    ip daddr {lab.topology.dest_ip} tcp dport {PORT} notrack\n"
                f"    ip saddr {lab.topology.dest_ip} tcp sport {PORT} notrack\n  }}\n}}\n"))  # fmt: skip
            # Other work on the machine takes CPU from the capture tools: say how much there was.
            print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
            print(f"{'tool':<19} {'rate/s':>8} {'sent':>8} {'reached/s':>10} {'kernel recv':>12} "
                  f"{'dropped':>9} {'peak RSS':>9}", flush=True)  # fmt: skip
            for tool in tools:
                bad = 0
                for rate in rates:
                    s = step(lab, tool, rate, seconds, work, args.warmup)
                    results.append(s)
                    rss = f"{s.rss_mb:.0f} MB" if s.rss_mb else "?"
                    print(f"{s.tool:<19} {s.rate:>8,} {s.sent:>8,} {s.achieved:>10,.0f} "
                          f"{s.received if s.received is not None else '?':>12} "
                          f"{s.dropped if s.dropped is not None else '?':>9} {rss:>9}", flush=True)  # fmt: skip
                    bad = bad + 1 if (s.dropped or 0) > 0 else 0
                    if bad >= 2:
                        break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print()
    for tool in tools:
        mine = [s for s in results if s.tool == tool]
        held = [s for s in mine if s.dropped == 0]
        first_bad = next((s for s in mine if (s.dropped or 0) > 0), None)
        peak = max((s.rss_mb or 0 for s in mine), default=0)
        if held:
            best = max(held, key=lambda s: s.achieved)
            # The sender is one Python process: past its ceiling a step's rate is what it reached.
            capped = first_bad is None and best.achieved < 0.9 * best.rate
            floor = " (at least: the sender's ceiling, not the tool's)" if capped else ""
            line = f"{tool}: highest rate with zero kernel drops: {best.achieved:,.0f} SYN/s{floor}"
        else:
            line = f"{tool}: drops at every rate"
        if first_bad is not None:
            line += (f"; first drops at {first_bad.achieved:,.0f} SYN/s "
                     f"({first_bad.dropped:,} of {first_bad.received:,} packets)")  # fmt: skip
        print(line + f"; peak RSS {peak:.0f} MB")

if __name__ == "__main__":
    main()
