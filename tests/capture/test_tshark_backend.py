"""capture.tshark_backend: tshark's per-packet facts equal a plain scapy decode's."""

from __future__ import annotations

import io
import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from capture.errors import CorruptCapture, NotACapture, ToolMissing
from capture.packets import PAYLOAD_HEAD, TCP, UDP, DecodeStats, PacketRecord
from capture.tshark_backend import iter_packets

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
DATA = ROOT / "tests" / "data"
EXPECTED = json.loads((PCAPS / "expected.json").read_text())["files"]
SAMPLES = sorted(EXPECTED)

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]


# --- the reference: scapy's readers and IP/TCP/UDP layers, link headers cut by hand ------


def _network_layer(linktype: int, data: bytes) -> bytes | None:
    """The IPv4/IPv6 packet inside a frame of one of the sample link types, else None."""
    if linktype == 1:
        pos = 12
        while data[pos : pos + 2] in (b"\x81\x00", b"\x88\xa8"):
            pos += 4
        return data[pos + 2 :] if data[pos : pos + 2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 113:
        return data[16:] if data[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 276:
        return data[20:] if data[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 101:
        return data
    if linktype == 0:
        family = struct.unpack("<I", data[:4])[0]
        return data[4:] if family in (2, 24, 28, 30) else None
    if linktype == 239:
        pos = 4
        while pos + 4 <= len(data):
            length, kind = struct.unpack_from("<HH", data, pos)
            if kind == 9:
                return data[pos + 4 : pos + length]
            pos += length + (-length % 4)
        return None
    raise AssertionError(f"sample uses unexpected link type {linktype}")


def scapy_records(path: Path) -> list[PacketRecord]:
    """Decode ``path`` with scapy (no egresslens code involved)."""
    from scapy.all import IP, TCP as ScapyTCP, UDP as ScapyUDP, IPv6  # noqa: N811
    from scapy.utils import RawPcapNgReader, RawPcapReader

    out = []
    reader: Any = RawPcapReader(str(path))
    try:
        for index, (data, meta) in enumerate(reader, start=1):
            if isinstance(reader, RawPcapNgReader):
                linktype = meta.linktype
                ts_ns = ((meta.tshigh << 32) | meta.tslow) * 1_000_000_000 // meta.tsresol
            else:
                linktype = reader.linktype
                ts_ns = meta.sec * 1_000_000_000 + meta.usec * (1 if reader.nano else 1_000)
            net = _network_layer(linktype, data)
            if net is None:
                continue
            pkt: Any = IP(net) if net[0] >> 4 == 4 else IPv6(net)
            seg = pkt.getlayer(ScapyTCP) if pkt.haslayer(ScapyTCP) else pkt.getlayer(ScapyUDP)
            if seg is None or seg.underlayer is not pkt and not _only_ext_headers(pkt, seg):
                continue
            if seg.name == "TCP":
                if pkt.version == 4:
                    ip_payload = pkt.len - pkt.ihl * 4
                else:
                    ip_payload = pkt.plen - _ext_len(pkt, seg)
                payload_len = ip_payload - seg.dataofs * 4
                proto, flags = TCP, int(seg.flags) & 0xFF
            else:
                payload_len = seg.len - 8
                proto, flags = UDP, 0
            payload = bytes(seg.payload)[: min(payload_len, PAYLOAD_HEAD)]
            out.append(
                PacketRecord(
                    index=index, ts_ns=ts_ns, src=pkt.src, dst=pkt.dst, sport=seg.sport,
                    dport=seg.dport, proto=proto, flags=flags, payload_len=payload_len,
                    payload=payload,
                )
            )  # fmt: skip
    finally:
        reader.close()
    return out


def _only_ext_headers(pkt: Any, seg: Any) -> bool:
    """Whether only IPv6 extension headers sit between ``pkt`` and ``seg``."""
    layer = pkt.payload
    while layer is not seg:
        if not type(layer).__name__.startswith("IPv6ExtHdr"):
            return False
        layer = layer.payload
    return True


def _ext_len(pkt: Any, seg: Any) -> int:
    return len(bytes(pkt.payload)) - len(bytes(seg))


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_packets_equal_a_plain_scapy_decode(name: str) -> None:
    stats = DecodeStats()
    got = list(iter_packets(str(PCAPS / name), stats))
    want = scapy_records(PCAPS / name)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w, (name, g.index)


@pytest.mark.parametrize("name", SAMPLES)
def test_stats_count_what_is_not_tcp_or_udp(name: str) -> None:
    stats = DecodeStats()
    list(iter_packets(str(PCAPS / name), stats))
    want = EXPECTED[name]["stats"]
    assert stats.packets == want["packets"]
    assert (stats.tcp, stats.udp, stats.non_ip) == (want["tcp"], want["udp"], want["non_ip"])
    assert {str(k): v for k, v in stats.other_ip.items()} == want["other_ip"]
    assert (stats.fragments, stats.malformed, stats.filtered) == (0, 0, 0)
    assert not stats.unsupported_linktype


def test_timestamps_keep_nanoseconds() -> None:
    got = list(iter_packets(str(PCAPS / "rawip_ns_le.pcap"), DecodeStats()))
    assert got[0].ts_ns == 1_768_478_400_123_456_789
    assert {p.ts_ns % 1000 for p in got} == {789}


def test_snaplen_cut_packet_keeps_header_length() -> None:
    got = list(iter_packets(str(PCAPS / "ethernet_be.pcap"), DecodeStats()))
    cut = next(p for p in got if p.index == 6)
    # 1200 bytes on the wire, 256 - 14 (Ethernet) - 20 (IP) - 20 (TCP) captured.
    assert (cut.payload_len, len(cut.payload)) == (1200, 202)


def test_ipv6_extension_headers_are_skipped() -> None:
    got = list(iter_packets(str(PCAPS / "rawip_ns_le.pcap"), DecodeStats()))
    request = next(p for p in got if p.index == 7)
    assert (request.src, request.dport, request.proto) == ("2001:db8:1::10", 80, TCP)
    assert request.payload.startswith(b"GET / HTTP/1.1\r\n")


def test_bpf_filters_frames_before_decoding() -> None:
    stats = DecodeStats()
    got = list(iter_packets(str(PCAPS / "ethernet_vlan.pcap"), stats, bpf="tcp port 22"))
    assert got and all(22 in (p.sport, p.dport) for p in got)
    want = [p for p in scapy_records(PCAPS / "ethernet_vlan.pcap") if 22 in (p.sport, p.dport)]
    assert got == want
    assert stats.filtered == stats.packets - len(got)


def _write_pcap(path: Path, linktype: int, frames: list[bytes], wirelen: dict[int, int]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for i, data in enumerate(frames):
            wire = wirelen.get(i, len(data))
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(data), wire))
            f.write(data)


def test_edge_packets_are_counted_not_recorded() -> None:
    """Fragments, tunnels, ICMP errors, extension headers, AH, MPLS, cut frames."""
    path = DATA / "edge_cases.pcap"
    stats = DecodeStats()
    got = list(iter_packets(str(path), stats))
    assert [(p.index, p.src, p.proto, p.payload_len) for p in got] == [
        (1, "192.0.2.1", TCP, 380),  # first fragment: TCP header present
        (6, "2001:db8::1", UDP, 40),
        (9, "2001:db8::1", TCP, 0),
        (11, "::ffff:c000:201", TCP, 0),  # ipaddress's text, not tshark's
        (12, "192.0.2.1", UDP, 62),  # the outer UDP, not the tunnelled TCP
    ]
    assert (stats.packets, stats.tcp, stats.udp) == (16, 3, 2)
    assert (stats.fragments, stats.non_ip, stats.malformed) == (3, 2, 3)
    assert stats.other_ip == {4: 1, 1: 1, 58: 1}


def test_unsupported_link_type_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "wlan.pcap"
    _write_pcap(path, 105, [b"\x08\x00" + bytes(30)], {})
    stats = DecodeStats()
    assert list(iter_packets(str(path), stats)) == []
    assert stats.unsupported_linktype == {105: 1}


def test_truncated_capture_gives_the_packets_before_the_cut() -> None:
    for name in ("truncated.pcap", "truncated.pcapng"):
        stats = DecodeStats()
        got = list(iter_packets(str(DATA / name), stats))
        assert [p.index for p in got] == [1, 2, 3, 4, 5]
        assert stats.packets == 5


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("corrupt_length.pcap", r"corrupt_length\.pcap: after packet 3: .*2147483647"),
        ("corrupt_block.pcapng", r"corrupt_block\.pcapng: after packet 3"),
        ("corrupt_block_short.pcapng", r"corrupt_block_short\.pcapng: after packet 3"),
    ],
)
def test_corrupt_capture_raises_after_the_good_packets(name: str, match: str) -> None:
    got: list[PacketRecord] = []
    with pytest.raises(CorruptCapture, match=match):
        for p in iter_packets(str(DATA / name), DecodeStats()):
            got.append(p)
    assert [p.index for p in got] == [1, 2, 3]


def test_not_a_capture_names_the_file() -> None:
    with pytest.raises(NotACapture, match=r"not_a_capture\.pcap: not a pcap"):
        list(iter_packets(str(DATA / "not_a_capture.pcap"), DecodeStats()))


@pytest.mark.parametrize("name", ["empty.pcap", "empty.pcapng"])
def test_empty_capture_gives_nothing(name: str) -> None:
    stats = DecodeStats()
    assert list(iter_packets(str(DATA / name), stats)) == []
    assert stats.packets == 0


def test_stopping_early_closes_tshark_cleanly() -> None:
    packets = iter_packets(str(PCAPS / "ethernet_vlan.pcap"), DecodeStats())
    first = next(packets)
    packets.close()  # type: ignore[attr-defined]
    assert first.index == 2


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (PCAPS / "sll2.pcap").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    got = list(iter_packets("-", DecodeStats()))
    assert got == scapy_records(PCAPS / "sll2.pcap")


def test_missing_tshark_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="apt-get install tshark"):
        list(iter_packets(str(PCAPS / "sll2.pcap"), DecodeStats()))
