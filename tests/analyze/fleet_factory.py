"""Evidence of a small fleet for the store tests: a plain folder per destination host.

``make_fleet(root, hosts, days)`` writes, for each host, ``root/HOST/capture-DAY.pcap``
(scapy) and one ``root/HOST/auth.log`` (ISO timestamps, the host's name on every line):

* every host sees SSH connections from the demo inventory's addresses each day (lbvm's
  instance public IP; Test2VM's default SNAT address, which is ``SNAT_DAY1`` on day 1 and
  ``SNAT_DAY2`` later: the change is seen on different hosts);
* the first host's last connection of day 1 starts at 23:59:59.99 and is logged after
  midnight (a connection spanning midnight);
* ``GUESSER`` fails password authentication ``GUESSES`` times in all, split across the
  first two hosts, within ten minutes: guessing only when both hosts are counted;
* sshd's clock runs ``offset`` ahead of the capture's (per host, default 40 ms).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "pcaps" / "demo"
INVENTORY = [str(DEMO / "inventory.yaml"), str(DEMO / "ServiceTags_Public_lab.json")]
DST = "198.51.100.10"
LBVM_IP = "192.0.2.123"
SNAT_DAY1, SNAT_DAY2 = "203.0.113.129", "203.0.113.200"
GUESSER = "198.51.100.77"
GUESSES = 34
"""Failures in all: 17 per host, under the 30 of guessing on each alone."""
DAY1 = dt.date(2026, 11, 20)


def _day(i: int) -> dt.date:
    return DAY1 + dt.timedelta(days=i)


def _at(day: dt.date, h: int, m: int, s: float) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, h, m, tzinfo=dt.UTC) + dt.timedelta(seconds=s)


def _ssh_packets(src: str, sport: int, t: float) -> list[object]:
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw

    c, s = IP(src=src, dst=DST), IP(src=DST, dst=src)
    steps = [
        (c / TCP(sport=sport, dport=22, flags="S", seq=1000), 0.0),
        (s / TCP(sport=22, dport=sport, flags="SA", seq=5000, ack=1001), 0.001),
        (c / TCP(sport=sport, dport=22, flags="A", seq=1001, ack=5001), 0.002),
        (s / TCP(sport=22, dport=sport, flags="PA", seq=5001, ack=1001) / Raw(b"SSH-2.0-OpenSSH_9.2p1\r\n"), 0.003),
        (c / TCP(sport=sport, dport=22, flags="PA", seq=1001, ack=5024) / Raw(b"SSH-2.0-OpenSSH_9.6\r\n"), 0.004),
        (c / TCP(sport=sport, dport=22, flags="FA", seq=1022, ack=5024), 0.5),
        (s / TCP(sport=22, dport=sport, flags="FA", seq=5024, ack=1023), 0.501),
        (c / TCP(sport=sport, dport=22, flags="A", seq=1023, ack=5025), 0.502),
    ]
    out = []
    for pkt, dt_s in steps:
        pkt.time = t + dt_s  # type: ignore[attr-defined]
        out.append(pkt)
    return out


def _line(ts: dt.datetime, host: str, pid: int, text: str) -> str:
    return f"{ts.isoformat(timespec='microseconds')} {host} sshd[{pid}]: {text}"


def make_fleet(
    root: Path,
    hosts: Sequence[str],
    days: int = 2,
    *,
    per_day: int = 4,
    offsets: Mapping[str, dt.timedelta] | None = None,
) -> dict[str, Path]:
    """Write the fleet's evidence under ``root``; returns host -> its folder."""
    from scapy.utils import wrpcap

    folders = {}
    for h_i, host in enumerate(hosts):
        folder = root / host
        folder.mkdir(parents=True, exist_ok=True)
        offset = (offsets or {}).get(host, dt.timedelta(milliseconds=40))
        lines: list[tuple[dt.datetime, str]] = []
        pid = 1000 + 100 * h_i
        for d in range(days):
            day = _day(d)
            pkts: list[object] = []
            conns: list[tuple[dt.datetime, str, int, str]] = []
            for k in range(per_day):
                src = (LBVM_IP, SNAT_DAY1 if d == 0 else SNAT_DAY2)[k % 2]
                conns.append((_at(day, 9 + k, h_i, 1.5), src, 40000 + 100 * d + k, "labuser"))
            if h_i == 0 and d == 0 and days > 1:
                conns.append((_at(day, 23, 59, 59.99), LBVM_IP, 45999, "night"))
            for ts, src, sport, user in conns:
                pkts += _ssh_packets(src, sport, ts.timestamp())
                pid += 1
                log_ts = ts + offset
                lines.append((log_ts, _line(log_ts, host, pid, f"Connection from {src} port {sport} on {DST} port 22 rdomain \"\"")))
                acc = log_ts + dt.timedelta(milliseconds=450)  # the midnight one: after 00:00
                lines.append((acc, _line(acc, host, pid, f"Accepted publickey for {user} from {src} port {sport} ssh2: ED25519 SHA256:x")))
            wrpcap(str(folder / f"capture-{day.isoformat()}.pcap"), pkts)
        if h_i < 2:
            for g in range(GUESSES // 2):
                ts = _at(_day(0), 14, 0, 10 * g + 5 * h_i) + offset
                pid += 1
                lines.append((ts, _line(ts, host, pid, f"Failed password for root from {GUESSER} port {50000 + g} ssh2")))
        (folder / "auth.log").write_text("".join(text + "\n" for _, text in sorted(lines)))
        folders[host] = folder
    return folders
