"""capture.packets: the per-packet seam and the skip counters."""

from __future__ import annotations

from collections import Counter

from capture.packets import DecodeStats, PacketRecord, ip_text


def test_stats_merge_and_notes_name_the_file() -> None:
    a = DecodeStats(packets=10, tcp=5, non_ip=2, other_ip=Counter({1: 3}))
    b = DecodeStats(packets=4, udp=1, fragments=1, malformed=2, unsupported_linktype=Counter({147: 3}))
    a.merge(b)
    assert (a.packets, a.tcp, a.udp, a.non_ip, a.fragments, a.malformed) == (14, 5, 1, 2, 1, 2)
    assert a.notes("f.pcap") == [
        "f.pcap: 3 packets of unsupported link type 147 skipped",
        "f.pcap: 2 non-IP packets skipped",
        "f.pcap: 3 IP packets of protocol 1 (not TCP/UDP) skipped",
        "f.pcap: 1 non-first IP fragments skipped",
        "f.pcap: 2 packets too short for their headers skipped",
    ]
    assert DecodeStats().notes("x") == []


def test_packet_record_is_frozen() -> None:
    import dataclasses

    import pytest

    p = PacketRecord(index=1, ts_ns=0, src="192.0.2.1", dst="192.0.2.2", sport=1, dport=2,
                     proto=6, flags=2, payload_len=0, payload=b"")  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.index = 2  # type: ignore[misc]


def test_ip_text_is_canonical() -> None:
    assert ip_text(False, 0, 0xC0000201) == "192.0.2.1"
    assert ip_text(True, 0x20010DB8 << 32, 1) == "2001:db8::1"
    assert ip_text(True, 0, 0xFFFF_C0000201) == "::ffff:192.0.2.1"
