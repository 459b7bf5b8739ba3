"""Benchmark ``egresslens capture read`` against tcpdump and tshark on one large capture.

Generates ``bench/out/capture_<N>.pcap`` with ``gen_capture.py`` if it is missing, checks
that ``egresslens capture read F -o out.parquet`` finds exactly the generated connections,
packets and payload bytes, then times whole processes (start-up included), median of
``--runs``:

* ``egresslens capture read F -o out.parquet``
* ``tcpdump -r F -w /dev/null`` (the floor: reading the file, no decoding)
* ``tshark -r F -q -z conv,tcp``
* ``tshark -n -r F -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' -T fields -e ...``

and prints wall times, ratios to tcpdump and peak RSS of each process (GNU ``time``'s %M).
``--size 5GB`` repeats egresslens and tcpdump on a file of that size (``--size-runs``
times), to show that egresslens' memory does not grow with the file.  ``--quick`` is a
small smoke run; ``--out DIR`` puts the generated files elsewhere than ``bench/out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from gen_capture import generate  # noqa: E402

BYTES_PER_PACKET = 481
"""What gen_capture.py writes on average (record header included)."""
GOAL_VS_TCPDUMP = 3.0
"""Issue 19: whole processes on the 1M-packet file, start-up included."""
GOAL_BIG_VS_TCPDUMP = 1.5
"""Issue 19: on the large (5 GB) file, where start-up is amortized."""
GOAL_VS_TSHARK = 25.0
GOAL_RSS_MB = 400.0


@dataclass
class Timing:
    label: str
    walls: list[float]
    rss_mb: float

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


def parse_size(text: str) -> int:
    """``480MB`` / ``5GB`` / ``1.5G`` -> bytes."""
    t = text.strip().upper().removesuffix("B")
    mult = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}.get(t[-1:], 1)
    return int(float(t.rstrip("KMGT")) * mult)


def capture_for(packets: int) -> tuple[Path, dict[str, int]]:
    """The benchmark file of ``packets`` packets and its ground truth, generated if missing."""
    path = OUT / f"capture_{packets}.pcap"
    truth_path = Path(str(path) + ".truth.json")
    if not (path.exists() and truth_path.exists()):
        print(f"generating {path.name} ({packets:,} packets) ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        generate(path, packets)
        print(f"  done in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path, json.loads(truth_path.read_text())


def egresslens() -> list[str]:
    exe = Path(sys.executable).with_name("egresslens")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "analyze.cli"]


GNU_TIME = "/usr/bin/time"


def run_once(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``cmd``; exits if it fails.

    Peak RSS comes from GNU time's ``%M``: Linux carries a process's high-water RSS across
    ``execve``, so ``wait4`` on a child forked straight from this (large) Python process
    would report at least this process's own size.  Without GNU time, fall back to that.
    """
    rss_file = OUT / ".rss"
    timed = os.path.exists(GNU_TIME)
    argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd] if timed else cmd
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n" + "\n".join(tail))
    kib = int(rss_file.read_text().split()[-1]) if timed else usage.ru_maxrss
    return wall, kib / 1024


def measure(label: str, cmd: list[str], runs: int) -> Timing:
    walls, rss = [], 0.0
    for i in range(runs):
        wall, peak = run_once(cmd)
        walls.append(wall)
        rss = max(rss, peak)
        print(f"  {label:<28} run {i + 1}/{runs}: {wall:8.2f} s  {peak:7.0f} MB",
              file=sys.stderr, flush=True)  # fmt: skip
    return Timing(label, walls, rss)


def check_records(capture: Path, truth: dict[str, int]) -> None:
    """Run egresslens once and compare its records with the generator's ground truth."""
    import polars as pl

    out = OUT / "out.parquet"
    subprocess.run([*egresslens(), "capture", "read", str(capture), "-o", str(out), "--force"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    df = pl.read_parquet(out)
    got = {
        "connections": df.height,
        "orig_bytes": int(df["orig_bytes"].sum()),
        "resp_bytes": int(df["resp_bytes"].sum()),
        "orig_pkts": int(df["orig_pkts"].sum()),
        "resp_pkts": int(df["resp_pkts"].sum()),
        **{
            f"service_{s}": int((df["service"] == s).sum()) for s in ("ssh", "http", "https")
        },
        "closed": int((df["state"] == "closed").sum()),
    }
    want = {k: truth[k] for k in got if k in truth} | {"closed": truth["connections"]}
    bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    if bad:
        raise SystemExit(f"egresslens records do not match the ground truth: {bad}")
    print(
        f"records check: {df.height:,} connections, {got['orig_bytes']:,} / "
        f"{got['resp_bytes']:,} payload bytes each way, services and states as generated: OK"
    )


def commands(capture: Path, with_tshark: bool) -> list[tuple[str, list[str]]]:
    f = str(capture)
    cmds = [
        ("egresslens capture read",
         [*egresslens(), "capture", "read", f, "-o", str(OUT / "out.parquet"), "--force"]),  # fmt: skip
        ("tcpdump -r -w /dev/null", ["tcpdump", "-r", f, "-w", "/dev/null"]),
    ]
    if with_tshark:
        cmds += [
            ("tshark -z conv,tcp", ["tshark", "-r", f, "-q", "-z", "conv,tcp"]),
            ("tshark -Y syn -T fields", [
                "tshark", "-n", "-r", f, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0",
                "-T", "fields", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport",
                "-e", "ip.dst", "-e", "tcp.dstport",
            ]),
        ]  # fmt: skip
    return cmds


def report(title: str, timings: list[Timing]) -> None:
    base = next(t for t in timings if t.label.startswith("tcpdump")).median
    print(f"\n{title} (load average {Path('/proc/loadavg').read_text().split()[0]})")
    print(f"{'command':<28} {'median s':>9} {'min s':>8} {'x tcpdump':>10} {'peak RSS MB':>12}")
    for t in timings:
        print(f"{t.label:<28} {t.median:9.2f} {min(t.walls):8.2f} {t.median / base:10.1f} "
              f"{t.rss_mb:12.0f}")  # fmt: skip


def goals(timings: list[Timing]) -> None:
    by = {t.label: t for t in timings}
    ours = by["egresslens capture read"]
    tcpdump = by["tcpdump -r -w /dev/null"]
    print(f"\ngoal: <= {GOAL_VS_TCPDUMP:g}x tcpdump: {ours.median / tcpdump.median:.1f}x "
          f"({'met' if ours.median <= GOAL_VS_TCPDUMP * tcpdump.median else 'NOT met'})")  # fmt: skip
    # The tshark figure (38 s) is the field extraction; conv,tcp is shown too.
    for t in (t for t in timings if t.label.startswith("tshark")):
        ratio = t.median / ours.median
        verdict = "met" if ratio >= GOAL_VS_TSHARK else "NOT met"
        if "fields" not in t.label:
            verdict = "for information"
        print(f"goal: >= {GOAL_VS_TSHARK:g}x faster than {t.label}: {ratio:.1f}x "
              f"({verdict})")  # fmt: skip
    print(f"goal: peak RSS < {GOAL_RSS_MB:g} MB: {ours.rss_mb:.0f} MB "
          f"({'met' if ours.rss_mb < GOAL_RSS_MB else 'NOT met'})")  # fmt: skip


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets in the main file")
    ap.add_argument("--runs", type=int, default=5, help="runs per command (median reported)")
    ap.add_argument(
        "--size", default=None,
        help="also run egresslens and tcpdump on a file of this size (e.g. 5GB)",
    )  # fmt: skip
    ap.add_argument("--size-runs", type=int, default=None,
                    help="runs per command on the --size file (default: --runs)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=OUT, help="where generated files go")
    ap.add_argument("--no-tshark", action="store_true", help="leave tshark's rows out")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 20,000 packets, 1 run each")  # fmt: skip
    args = ap.parse_args()
    if args.quick:
        args.packets, args.runs = 20_000, 1
    OUT = args.out
    missing = [t for t in ("tcpdump", "tshark") if shutil.which(t) is None]
    if args.no_tshark:
        missing.append("tshark")
    if "tcpdump" in missing:
        raise SystemExit("tcpdump is needed as the baseline (Debian: apt-get install tcpdump)")
    if "tshark" in missing:
        print("no tshark (not found, or --no-tshark): its rows are skipped", file=sys.stderr)
    OUT.mkdir(exist_ok=True)

    capture, truth = capture_for(args.packets)
    print(f"capture: {capture} ({capture.stat().st_size / 1e6:,.0f} MB, "
          f"{truth['packets']:,} packets, {truth['connections']:,} connections)")  # fmt: skip
    check_records(capture, truth)
    timings = [measure(label, cmd, args.runs)
               for label, cmd in commands(capture, "tshark" not in missing)]  # fmt: skip
    report(f"{capture.name}: whole process, median of {args.runs}", timings)
    goals(timings)

    if args.size:
        packets = parse_size(args.size) // BYTES_PER_PACKET
        big, big_truth = capture_for(packets)
        check_records(big, big_truth)
        runs = args.size_runs or args.runs
        big_timings = [measure(label, cmd, runs)
                       for label, cmd in commands(big, with_tshark=False)]  # fmt: skip
        report(f"{big.name} ({big.stat().st_size / 1e9:.1f} GB): median of {runs}",
               big_timings)  # fmt: skip
        ratio = big_timings[0].median / big_timings[1].median
        print(f"\ngoal: <= {GOAL_BIG_VS_TCPDUMP:g}x tcpdump on the large file: {ratio:.2f}x "
              f"({'met' if ratio <= GOAL_BIG_VS_TCPDUMP else 'NOT met'})")  # fmt: skip
        small_rss = timings[0].rss_mb
        print(
            f"\negresslens peak RSS: {small_rss:.0f} MB at "
            f"{capture.stat().st_size / 1e6:,.0f} MB, {big_timings[0].rss_mb:.0f} MB at "
            f"{big.stat().st_size / 1e9:.1f} GB"
        )


if __name__ == "__main__":
    main()
