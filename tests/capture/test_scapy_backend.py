"""capture.scapy_backend: the reference decode, packet by packet."""

from __future__ import annotations

from pathlib import Path

from capture.packets import DecodeStats
from capture.scapy_backend import iter_packets

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"


def test_nflog_and_bsd_null_are_decoded_where_scapy_has_no_layer() -> None:
    for name in ("nflog.pcap", "loopback_null.pcap"):
        stats = DecodeStats()
        packets = list(iter_packets(str(PCAPS / name), stats))
        assert packets and stats.tcp + stats.udp == len(packets)
        assert all(p.index >= 1 and p.ts_ns > 1_700_000_000 * 10**9 for p in packets)


def test_packets_carry_header_lengths_and_payload_heads() -> None:
    stats = DecodeStats()
    packets = list(iter_packets(str(PCAPS / "ethernet_vlan.pcap"), stats))
    banners = [p for p in packets if p.payload.startswith(b"SSH-")]
    assert banners and all(p.payload_len >= len(p.payload) for p in packets)
    assert stats.non_ip == 2 and dict(stats.other_ip) == {1: 1}
