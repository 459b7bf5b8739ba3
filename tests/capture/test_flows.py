"""capture.flows: the chunked (polars) builder and the packet-by-packet FlowTable agree on
any packet sequence, however the packets fall into chunks; and the rules on small cases."""

from __future__ import annotations

import struct
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from capture.flows import FlowTable, finalize
from capture.packets import ACK, FIN, PSH, RST, SYN, TCP, UDP, PacketRecord
from capture.read import read_capture

HOSTS = ["203.0.113.5", "198.51.100.10", "192.0.2.1"]
PORTS = [22, 80, 40000, 40001]
FLAGS = [SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK, RST, RST | ACK, 0]


def _ip(src: str, dst: str, proto: int, l4: bytes) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0,
        bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))),
    ) + l4  # fmt: skip


def write_pcap(path: Path, packets: list[tuple[int, str, str, int, int, int, int, bytes]]) -> None:
    """Raw-IP pcap (linktype 101) from (ts_us, src, dst, sport, dport, proto, flags, payload)."""
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for ts, src, dst, sport, dport, proto, flags, payload in packets:
            if proto == TCP:
                l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, flags, 1024, 0, 0) + payload
            else:
                l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            frame = _ip(src, dst, proto, l4)
            fh.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
            fh.write(frame)


packet = st.tuples(
    st.integers(0, 2_000_000),  # time jitter: timestamps need not be monotonic
    st.sampled_from(HOSTS),
    st.sampled_from(HOSTS),
    st.sampled_from(PORTS),
    st.sampled_from(PORTS),
    st.sampled_from([TCP, TCP, TCP, UDP]),
    st.sampled_from(FLAGS),
    st.sampled_from([b"", b"", b"SSH-2.0-x\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK\r\n", b"zz"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(packet, min_size=1, max_size=60), st.sampled_from([60, 150, 400, 1 << 20]))
def test_chunked_builder_equals_flow_table(tmp_path: Path, pkts: list, chunk: int) -> None:
    base = 1_700_000_000_000_000
    rows = [(base + i * 1000 + jitter, s, d, sp, dp, pr, fl if pr == TCP else 0, pay)
            for i, (jitter, s, d, sp, dp, pr, fl, pay) in enumerate(pkts)]  # fmt: skip
    path = tmp_path / "p.pcap"
    write_pcap(path, rows)
    fast, _ = read_capture(str(path), chunk_bytes=chunk)

    table = FlowTable()
    for i, (ts, s, d, sp, dp, pr, fl, pay) in enumerate(rows, start=1):
        table.add(PacketRecord(index=i, ts_ns=ts * 1000, src=s, dst=d, sport=sp, dport=dp,
                               proto=pr, flags=fl, payload_len=len(pay), payload=pay))  # fmt: skip
    ref = finalize(table.aggregates(), name=str(path), observer=None)
    assert_frame_equal(fast, ref)


def _records(*pkts: tuple[str, str, int, int, int, int]) -> pl.DataFrame:
    """Records from (src, dst, sport, dport, flags, payload_len) TCP packets, 1 ms apart."""
    table = FlowTable()
    for i, (s, d, sp, dp, fl, n) in enumerate(pkts, start=1):
        table.add(PacketRecord(index=i, ts_ns=i * 1_000_000, src=s, dst=d, sport=sp, dport=dp,
                               proto=TCP, flags=fl, payload_len=n, payload=b"x" * n))  # fmt: skip
    return finalize(table.aggregates(), name="t", observer=None)


C, S = "203.0.113.5", "198.51.100.10"


def test_reused_four_tuple_after_fin_is_a_new_connection() -> None:
    recs = _records(
        (C, S, 40000, 22, SYN, 0), (S, C, 22, 40000, SYN | ACK, 0), (C, S, 40000, 22, FIN | ACK, 0),
        (S, C, 22, 40000, FIN | ACK, 0), (C, S, 40000, 22, SYN, 0), (S, C, 22, 40000, SYN | ACK, 0),
    )  # fmt: skip
    assert recs["state"].to_list() == ["closed", "established"]
    assert recs["origin"].to_list() == [["t#1"], ["t#5"]]


def test_retransmitted_syn_is_the_same_connection() -> None:
    recs = _records((C, S, 40000, 22, SYN, 0), (C, S, 40000, 22, SYN, 0))
    assert recs.height == 1 and recs["orig_pkts"].to_list() == [2]
    assert recs["state"].to_list() == ["attempt"]


def test_rst_answering_a_syn_is_rejected_and_after_handshake_is_reset() -> None:
    rejected = _records((C, S, 40000, 22, SYN, 0), (S, C, 22, 40000, RST | ACK, 0))
    assert rejected["state"].to_list() == ["rejected"]
    reset = _records((C, S, 40000, 80, SYN, 0), (S, C, 80, 40000, SYN | ACK, 0), (C, S, 40000, 80, RST, 0))
    assert reset["state"].to_list() == ["reset"]


def test_midstream_originator_is_the_side_not_on_the_lower_port() -> None:
    recs = _records((S, C, 22, 40000, PSH | ACK, 100), (C, S, 40000, 22, ACK, 0))
    row = recs.row(0, named=True)
    assert (row["src_ip"], row["src_port"], row["state"]) == (C, 40000, "partial")
    assert (row["orig_bytes"], row["resp_bytes"]) == (0, 100)


def test_synack_decides_the_originator_over_ports() -> None:
    # The capture starts at the SYN-ACK: its sender (port 50000) is the responder.
    recs = _records((C, S, 50000, 1000, SYN | ACK, 0), (S, C, 1000, 50000, ACK, 0))
    row = recs.row(0, named=True)
    assert (row["src_ip"], row["src_port"], row["dst_port"]) == (S, 1000, 50000)


def test_thousands_of_flows_grow_the_table_and_stay_apart(tmp_path: Path) -> None:
    # 5,000 DNS-like UDP flows, one query and one answer each: the compiled table starts
    # at 4,096 slots and 1,024 connections, so it grows (and rehashes) several times.
    rows = []
    for i in range(5_000):
        t = 1_700_000_000_000_000 + 10 * i
        rows.append((t, C, S, 10_000 + i, 53, UDP, 0, b"q"))
        rows.append((t + 5, S, C, 53, 10_000 + i, UDP, 0, b"answer"))
    path = tmp_path / "many.pcap"
    write_pcap(path, rows)
    recs, _ = read_capture(str(path))
    assert recs.height == 5_000
    assert recs["src_port"].to_list() == list(range(10_000, 15_000))
    assert set(recs["state"].to_list()) == {"established"}
    assert (recs["orig_bytes"].sum(), recs["resp_bytes"].sum()) == (5_000, 30_000)
    assert set(recs["orig_pkts"].to_list()) == set(recs["resp_pkts"].to_list()) == {1}


def test_ipv4_and_ipv6_with_the_same_integers_are_different_flows(tmp_path: Path) -> None:
    # 203.0.113.5 and ::203.0.113.5 (::cb00:7105) hold the same 32 bits; so do the servers.
    tcp = struct.pack("!HHIIBBHHH", 40000, 22, 1, 0, 0x50, SYN, 1024, 0, 0)
    v4 = _ip(C, "192.0.2.1", TCP, tcp)
    v6 = struct.pack("!IHBB", 0x60000000, len(tcp), TCP, 64) + bytes(12) + bytes([203, 0, 113, 5])
    v6 += bytes(12) + bytes([192, 0, 2, 1]) + tcp
    path = tmp_path / "mixed.pcap"
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i, frame in enumerate([v4, v6, v4]):
            fh.write(struct.pack("<IIII", 1_700_000_000, i, len(frame), len(frame)) + frame)
    recs, _ = read_capture(str(path))
    assert recs["src_ip"].to_list() == [C, "::cb00:7105"]
    assert recs["dst_ip"].to_list() == ["192.0.2.1", "::c000:201"]
    assert recs["orig_pkts"].to_list() == [2, 1]
