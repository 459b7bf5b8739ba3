"""capture.fastpath: header decoding corner cases, checked against the scapy backend where
scapy decodes them, and against hand-computed counts."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from capture.read import read_captures

SRC, DST = bytes([203, 0, 113, 5]), bytes([192, 0, 2, 20])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")


def tcp(sport: int = 40000, dport: int = 22, flags: int = 0x02, payload: bytes = b"", doff: int = 5) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, doff << 4, flags, 1024, 0, 0) + b"\0" * (4 * (doff - 5)) + payload


def ipv4(l4: bytes, proto: int = 6, frag: int = 0, ihl: int = 5, total: int | None = None) -> bytes:
    opts = b"\x01" * (4 * (ihl - 5))
    length = 4 * ihl + len(l4) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, frag, 64, proto, 0, SRC, DST) + opts + l4


def ipv6(payload: bytes, nh: int) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, SRC6, DST6) + payload


def ext(nh: int, body_len8: int = 0) -> bytes:
    return bytes([nh, body_len8]) + b"\0" * (6 + 8 * body_len8)


def pcap(path: Path, linktype: int, frames: list[bytes]) -> str:
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, f in enumerate(frames):
            fh.write(struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f)
    return str(path)


def test_ipv4_fragments_and_malformed_headers_are_counted(tmp_path: Path) -> None:
    frames = [
        ipv4(tcp()),  # SYN: one record
        ipv4(b"\0" * 16, frag=0x0010),  # non-first fragment (offset 16*8)
        ipv4(tcp(), ihl=4),  # IHL below 5
        ipv4(tcp(doff=3)),  # TCP data offset below 5
        ipv4(tcp()[:12]),  # TCP header cut short
        ipv4(tcp(), ihl=6),  # with options: fine
        ipv4(b"\x08\0\0\0\0\0\0\0", proto=1),  # ICMP
        ipv4(b"x" * 8, proto=50),  # ESP
    ]
    result = read_captures([pcap(tmp_path / "x.pcap", 101, frames)])
    s = result.stats
    assert (s.packets, s.tcp, s.fragments, s.malformed) == (8, 2, 1, 3)
    assert dict(s.other_ip) == {1: 1, 50: 1}
    assert result.records.height == 1 and result.records["orig_pkts"].to_list() == [2]


def test_ipv6_extension_chain_to_tcp(tmp_path: Path) -> None:
    # hop-by-hop -> destination options -> routing (24 bytes, one address) -> TCP
    chain = ext(60) + ext(43) + ext(6, 2) + tcp(flags=0x02)
    frames = [
        ipv6(chain, 0),
        ipv6(bytes([6, 0]) + struct.pack("!H", 0) + b"\0" * 4 + tcp(dport=80, flags=0x02), 44),  # first fragment
        ipv6(bytes([6, 0]) + struct.pack("!H", 8 << 3) + b"\0" * 4 + b"z" * 8, 44),  # non-first fragment
        ipv6(bytes([6, 1]) + b"\0" * 10 + tcp(dport=443, flags=0x02), 51),  # AH: (1+2)*4 = 12 bytes
    ]
    path = pcap(tmp_path / "x.pcap", 229, frames)
    fast = read_captures([path])
    assert fast.stats.tcp == 3 and fast.stats.fragments == 1
    assert sorted(fast.records["dst_port"].to_list()) == [22, 80, 443]
    assert set(fast.records["src_ip"].to_list()) == {"2001:db8::1"}
    ref = read_captures([path], backend="scapy")
    assert_frame_equal(fast.records, ref.records)


@pytest.mark.parametrize(
    ("linktype", "header"),
    [
        (0, struct.pack("<I", 2)),  # NULL, little-endian host
        (0, struct.pack(">I", 2)),  # NULL, big-endian host
        (108, struct.pack(">I", 2)),  # LOOP: always network order
        (113, struct.pack("!HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800)),  # SLL
        (276, struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\0" * 8)),  # SLL2
        (1, b"\2" * 12 + struct.pack("!HHHHH", 0x88A8, 10, 0x8100, 20, 0x0800)),  # QinQ
    ],
)
def test_link_layers(tmp_path: Path, linktype: int, header: bytes) -> None:
    path = pcap(tmp_path / "x.pcap", linktype, [header + ipv4(tcp())])
    result = read_captures([path])
    assert result.stats.tcp == 1 and result.records["dst_port"].to_list() == [22]
    assert_frame_equal(result.records, read_captures([path], backend="scapy").records)


def test_unsupported_link_type_is_counted_and_reported(tmp_path: Path) -> None:
    path = pcap(tmp_path / "x.pcap", 147, [b"\0" * 40] * 3)  # LINKTYPE_USER0
    result = read_captures([path])
    assert dict(result.stats.unsupported_linktype) == {147: 3}
    assert any("3 packets of unsupported link type 147 skipped" in w for w in result.warnings)
    assert result.records.height == 0


def test_snaplen_cut_keeps_header_lengths(tmp_path: Path) -> None:
    frame = ipv4(tcp(flags=0x18, payload=b"A" * 1000))
    with (tmp_path / "x.pcap").open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 96, 101))
        fh.write(struct.pack("<IIII", 1, 0, 96, len(frame)) + frame[:96])
    result = read_captures([str(tmp_path / "x.pcap")])
    assert result.records["orig_bytes"].to_list() == [1000]
