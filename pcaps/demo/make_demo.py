"""Write the demo sample: the article's story as seen on the destination host.

Run from the repository root: ``.venv/bin/python pcaps/demo/make_demo.py``.  Deterministic
(fixed times, addresses, ports); README.md beside this file says what each file holds.

The story (Azure China, 2018; DEVELOPERS.md): Test2VM sits in Basic load balancer mylb's
backend pool with no rules, so it reaches the destination from an Azure default SNAT
address, which the web app's allowlist (40.125.161.55, mylb's frontend) refuses; after an
inbound NAT rule is added it arrives from the frontend; lbvm arrives from its instance
public IP.  The destination host (webapp-vm, 198.51.100.10) runs sshd and nginx.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

HERE = Path(__file__).resolve().parent
DEST = "198.51.100.10"
HOST = "webapp-vm"
DEFAULT_SNAT = "139.219.8.21"  # Azure-owned (the sample Service Tags), not in the inventory
FRONTEND = "40.125.161.55"  # mylb's frontend public IP
LBVM_PIP = "42.159.94.123"  # lbvm's instance public IP
T0 = dt.datetime(2026, 11, 20, 9, 0, 0, tzinfo=dt.UTC)
MAC_C, MAC_S = "02:00:00:00:00:01", "02:00:00:00:00:02"
SERVER_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
CLIENT_BANNER = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n"

# (seconds after T0, who, source address, source port, service, detail)
CONNECTIONS = [
    (5, "Test2VM", DEFAULT_SNAT, 50412, "ssh", "accepted"),
    (40, "Test2VM", DEFAULT_SNAT, 50414, "http", ("GET", "/api/orders", 403)),
    (310, "lbvm", LBVM_PIP, 40122, "ssh", "accepted"),
    (360, "lbvm", LBVM_PIP, 40124, "http", ("GET", "/api/orders", 403)),
    (1810, "Test2VM", FRONTEND, 1025, "ssh", "accepted"),
    (1830, "Test2VM", FRONTEND, 1026, "http", ("GET", "/api/orders", 200)),
]


def tcp_session(t: float, src: str, sport: int, dport: int, c2s: list[bytes], s2c: list[bytes]) -> list:
    """SYN, SYN-ACK, ACK, alternating payloads, FIN both ways: a closed connection."""
    pkts = []
    cseq, sseq = 1000, 5000

    def add(dt_s: float, frm_client: bool, flags: str, payload: bytes = b"") -> None:
        nonlocal cseq, sseq
        if frm_client:
            p = Ether(src=MAC_C, dst=MAC_S) / IP(src=src, dst=DEST) / TCP(sport=sport, dport=dport, flags=flags, seq=cseq, ack=sseq)
            cseq += len(payload) + (1 if "S" in flags or "F" in flags else 0)
        else:
            p = Ether(src=MAC_S, dst=MAC_C) / IP(src=DEST, dst=src) / TCP(sport=dport, dport=sport, flags=flags, seq=sseq, ack=cseq)
            sseq += len(payload) + (1 if "S" in flags or "F" in flags else 0)
        if payload:
            p = p / Raw(payload)
        p.time = t + dt_s
        pkts.append(p)

    add(0.000, True, "S")
    add(0.001, False, "SA")
    add(0.002, True, "A")
    step = 0.010
    for i in range(max(len(c2s), len(s2c))):
        if i < len(s2c) and dport == 22:
            add(step * (2 * i + 1), False, "PA", s2c[i])
        if i < len(c2s):
            add(step * (2 * i + 2), True, "PA", c2s[i])
        if i < len(s2c) and dport != 22:
            add(step * (2 * i + 2) + 0.005, False, "PA", s2c[i])
    end = step * (2 * max(len(c2s), len(s2c)) + 3)
    add(end, True, "FA")
    add(end + 0.001, False, "FA")
    add(end + 0.002, True, "A")
    return pkts


def main() -> None:
    packets = []
    auth: list[str] = []
    access: list[str] = []
    pid = 4100
    for offset, vm, src, sport, service, detail in CONNECTIONS:
        t = T0 + dt.timedelta(seconds=offset)
        epoch = t.timestamp()
        if service == "ssh":
            kex = b"\x00\x00\x05\xdc\x0a\x14" + bytes(40)
            packets += tcp_session(epoch, src, sport, 22, [CLIENT_BANNER, kex], [SERVER_BANNER, kex])
            pid += 1
            stamp = lambda s: (t + dt.timedelta(seconds=s)).isoformat(timespec="microseconds")  # noqa: E731
            auth += [
                f"{stamp(0.004)} {HOST} sshd[{pid}]: Connection from {src} port {sport} on {DEST} port 22 rdomain \"\"",
                f"{stamp(0.035)} {HOST} sshd[{pid}]: Accepted publickey for azureuser from {src} port {sport} ssh2: ED25519 SHA256:Qx0sGH2iUeQUm1LQ3kR8H5bq0yJXcz9dZ6b8Gq1WnLc",
                f"{stamp(0.036)} {HOST} sshd[{pid}]: pam_unix(sshd:session): session opened for user azureuser(uid=1000) by (uid=0)",
                f"{stamp(0.060)} {HOST} sshd[{pid}]: Received disconnect from {src} port {sport}:11: disconnected by user",
                f"{stamp(0.061)} {HOST} sshd[{pid}]: Disconnected from user azureuser {src} port {sport}",
            ]
        else:
            method, path, status = detail
            req = (f"{method} {path} HTTP/1.1\r\nHost: orders.example.net\r\nUser-Agent: curl/7.81.0\r\n"
                   "Accept: */*\r\n\r\n").encode()
            body = b"Forbidden" if status == 403 else b'{"orders": []}'
            reason = b"Forbidden" if status == 403 else b"OK"
            resp = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n" % (status, reason, len(body)) + body
            packets += tcp_session(epoch, src, sport, 80, [req], [resp])
            when = (t + dt.timedelta(seconds=0.015)).strftime("%d/%b/%Y:%H:%M:%S +0000")
            access.append(f'{src} - - [{when}] "{method} {path} HTTP/1.1" {status} {len(body)} "-" "curl/7.81.0"')
    packets.sort(key=lambda p: p.time)
    wrpcap(str(HERE / "webapp-vm.pcap"), packets)
    (HERE / "auth.log").write_text("\n".join(auth) + "\n")
    (HERE / "access.log").write_text("\n".join(access) + "\n")


if __name__ == "__main__":
    main()
