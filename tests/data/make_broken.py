"""Write the broken capture fixtures in ``tests/data/`` (see README.md there).

Deterministic and self-contained: a six-packet SSH opening built with scapy (Ethernet,
IPv4, fixed timestamps and sequence numbers), then cut or corrupted on purpose::

    .venv/bin/python tests/data/make_broken.py
"""

from __future__ import annotations

import struct
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

HERE = Path(__file__).resolve().parent

T0 = 1_768_471_200  # 2026-01-15T10:00:00Z
CLIENT = ("203.0.113.50", 51000)
SERVER = ("192.0.2.20", 22)


def packets() -> list[bytes]:
    """SYN, SYN-ACK, ACK, server banner, client banner, a 200-byte client segment."""
    seq = {True: 1000, False: 5000}
    out = []
    steps: list[tuple[bool, str, bytes]] = [
        (True, "S", b""),
        (False, "SA", b""),
        (True, "A", b""),
        (False, "PA", b"SSH-2.0-OpenSSH_9.2p1\r\n"),
        (True, "PA", b"SSH-2.0-OpenSSH_9.6\r\n"),
        (True, "PA", bytes(range(200))),
    ]
    for from_client, flags, payload in steps:
        src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        ack = seq[not from_client] if "A" in flags else 0
        pkt = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src=src[0], dst=dst[0], id=len(out) + 1)
            / TCP(sport=src[1], dport=dst[1], seq=seq[from_client], ack=ack, flags=flags)
        )
        if payload:
            pkt = pkt / Raw(payload)
        seq[from_client] += len(payload) + ("S" in flags)
        raw = bytes(pkt)
        out.append(raw + b"\0" * max(0, 60 - len(raw)))
    return out


def pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def pcap_record(i: int, data: bytes) -> bytes:
    return struct.pack("<IIII", T0, i * 1000, len(data), len(data)) + data


def block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def pcapng_head() -> bytes:
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 262144))
    return shb + idb


def epb(i: int, data: bytes) -> bytes:
    ts = T0 * 1_000_000 + i * 1000
    return block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data)


def edge_cases() -> list[tuple[bytes, int]]:
    """(captured bytes, wire length) of frames a reader must count, not record or crash on."""
    from scapy.all import (
        AH, ARP, ICMP, IP, UDP, VXLAN, ICMPv6MLReport2, IPv6, IPv6ExtHdrFragment,
        IPv6ExtHdrHopByHop, RouterAlert, fragment,
    )  # fmt: skip
    from scapy.contrib.mpls import MPLS

    def eth(**kw: object) -> Ether:
        return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", **kw)

    v4 = IP(src="192.0.2.1", dst="192.0.2.2", id=9)
    v6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    syn = TCP(sport=7, dport=8, flags="S")
    big = v4 / TCP(sport=1234, dport=80, flags="PA") / Raw(b"x" * 1000)
    pkts = [eth() / f for f in fragment(big, fragsize=400)]  # 1 first, 2-3 non-first
    pkts += [
        eth() / v4 / IP(src="192.0.2.9", dst="192.0.2.10") / syn,  # 4 IP in IP
        eth() / v4 / ICMP(type=3, code=3) / v4 / UDP(sport=1, dport=2),  # 5 ICMP error
        eth() / v6 / IPv6ExtHdrFragment(m=1, id=5) / UDP(sport=1, dport=2) / Raw(b"q" * 40),
        eth() / v6 / IPv6ExtHdrFragment(offset=10, id=5, nh=17) / Raw(b"q" * 40),  # 7
        eth() / v6 / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(),  # 8
        eth() / v6 / AH(spi=1, nh=6, payloadlen=4, icv=b"\0" * 12) / syn,  # 9
        eth(type=0x8847) / MPLS(label=16, s=1) / v4 / syn,  # 10 MPLS: not an IP ethertype
        eth() / IPv6(src="::ffff:192.0.2.1", dst="2001:db8::2") / syn,  # 11
        eth() / v4 / UDP(sport=4000, dport=4789) / VXLAN(vni=1) / eth() / v4 / syn,  # 12
        eth() / ARP(),  # 13
        eth() / v4 / TCP(sport=15, dport=16, dataofs=4, flags="S"),  # 14 TCP offset 16 bytes
    ]
    frames = [(bytes(p), len(bytes(p))) for p in pkts]
    whole = bytes(eth() / v4 / syn)
    frames += [(whole[:10], len(whole)), (whole[:44], len(whole))]  # 15, 16: snaplen cuts
    return frames


def main() -> None:
    pkts = packets()

    # truncated.pcap: five whole packets, then the sixth cut in the middle of its data.
    good = b"".join(pcap_record(i, p) for i, p in enumerate(pkts[:5]))
    sixth = pcap_record(5, pkts[5])
    (HERE / "truncated.pcap").write_bytes(pcap_header() + good + sixth[: 16 + len(pkts[5]) // 2])

    # truncated.pcapng: the same, as Enhanced Packet Blocks; the sixth block is cut.
    good_ng = b"".join(epb(i, p) for i, p in enumerate(pkts[:5]))
    sixth_ng = epb(5, pkts[5])
    (HERE / "truncated.pcapng").write_bytes(pcapng_head() + good_ng + sixth_ng[: 28 + 100])

    (HERE / "not_a_capture.pcap").write_text(
        "This is not a capture file.\nIt is plain text that someone saved as .pcap.\n"
    )

    # corrupt_length.pcap: three good packets, then a record header claiming 0x7fffffff bytes.
    good3 = b"".join(pcap_record(i, p) for i, p in enumerate(pkts[:3]))
    bad = struct.pack("<IIII", T0, 3000, 0x7FFFFFFF, 0x7FFFFFFF) + pkts[3]
    (HERE / "corrupt_length.pcap").write_bytes(pcap_header() + good3 + bad)

    # corrupt_block.pcapng: three good EPBs, then a block whose total length (13) is not a
    # multiple of 4.  corrupt_block_short.pcapng: the same with a length (8) below 12.
    good3_ng = b"".join(epb(i, p) for i, p in enumerate(pkts[:3]))
    rest = epb(3, pkts[3])
    (HERE / "corrupt_block.pcapng").write_bytes(
        pcapng_head() + good3_ng + rest[:4] + struct.pack("<I", 13) + rest[8:]
    )
    (HERE / "corrupt_block_short.pcapng").write_bytes(
        pcapng_head() + good3_ng + rest[:4] + struct.pack("<I", 8) + rest[8:]
    )

    # edge_cases.pcap: valid pcap, frames that are counted rather than recorded.
    edge = b"".join(
        struct.pack("<IIII", T0, i * 1000, len(data), wire) + data
        for i, (data, wire) in enumerate(edge_cases())
    )
    (HERE / "edge_cases.pcap").write_bytes(pcap_header() + edge)

    # empty.pcap / empty.pcapng: headers only, no packets.
    (HERE / "empty.pcap").write_bytes(pcap_header())
    (HERE / "empty.pcapng").write_bytes(pcapng_head())


if __name__ == "__main__":
    main()
