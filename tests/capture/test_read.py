"""capture.read: bundled captures against their hand-declared records, backends agreeing,
bad input reported, filters."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_schema_equal

from capture.errors import CorruptCapture, NotACapture
from capture.read import read_capture, read_captures
from capture.schema import SCHEMA

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
DATA = ROOT / "tests" / "data"
EXPECTED = json.loads((PCAPS / "expected.json").read_text())["files"]
SAMPLES = sorted(EXPECTED)

COMPARED = (
    "src_ip", "src_port", "dst_ip", "dst_port", "proto", "service", "state", "orig_pkts",
    "resp_pkts", "orig_bytes", "resp_bytes", "ssh_client", "ssh_server", "http_method",
    "http_host", "http_path", "http_status", "http_user_agent", "http_xff",
)  # fmt: skip


def _rows(records: pl.DataFrame) -> list[dict[str, object]]:
    out = []
    for row in records.iter_rows(named=True):
        r = {k: row[k] for k in COMPARED}
        r["ts"] = row["ts"]
        r["duration_us"] = row["duration"] // dt.timedelta(microseconds=1)
        r["origin"] = row["origin"]
        out.append(r)
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_records_match_hand_declared_expectations(name: str) -> None:
    path = str(PCAPS / name)
    records, warnings = read_capture(path)
    assert_schema_equal(records.schema, SCHEMA)
    expected = EXPECTED[name]["records"]
    got = _rows(records)
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        for k in COMPARED:
            assert g[k] == e[k], (name, e["origin"], k)
        assert g["ts"] == dt.datetime.fromisoformat(e["ts"].replace("Z", "+00:00"))
        assert g["duration_us"] == e["duration_us"]
        assert g["origin"] == [f"{path}#{e['first_packet']}"]
    assert records["evidence"].to_list() == [["pcap"]] * records.height
    assert records["observer"].null_count() == records.height


@pytest.mark.parametrize("name", SAMPLES)
def test_skipped_packets_are_counted(name: str) -> None:
    result = read_captures([str(PCAPS / name)])
    want = EXPECTED[name]["stats"]
    s = result.stats
    assert (s.packets, s.tcp, s.udp, s.non_ip, s.fragments, s.malformed) == (
        want["packets"], want["tcp"], want["udp"], want["non_ip"], want["fragments"],
        want["malformed"],
    )  # fmt: skip
    assert {str(k): v for k, v in s.other_ip.items()} == want["other_ip"]
    if want["non_ip"]:
        assert any("non-IP packets skipped" in w for w in result.warnings)


@pytest.mark.parametrize("name", SAMPLES + ["../tests/data/edge_cases.pcap"])
def test_fast_path_equals_full_scapy_decode(name: str) -> None:
    path = str(PCAPS / name)
    fast = read_captures([path])
    ref = read_captures([path], backend="scapy")
    assert_frame_equal(fast.records, ref.records)
    assert fast.stats == ref.stats


@pytest.mark.parametrize("name", SAMPLES)
def test_chunk_boundaries_do_not_change_records(name: str) -> None:
    path = str(PCAPS / name)
    whole, _ = read_capture(path)
    # 200-byte windows put nearly every packet of a connection in a different chunk.
    pieces, _ = read_capture(path, chunk_bytes=200)
    assert_frame_equal(whole, pieces)


def test_stdin_and_gzip_give_the_same_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    plain = PCAPS / "ethernet_vlan.pcap"
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a, _ = read_capture(str(plain))
    b, _ = read_capture(str(gz))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(plain.read_bytes())))
    c, _ = read_capture("-")
    cols = [c_ for c_ in SCHEMA.names() if c_ not in ("conn_id", "origin")]
    assert_frame_equal(a.select(cols), b.select(cols))
    assert_frame_equal(a.select(cols), c.select(cols))
    assert c["origin"][0].to_list()[0].startswith("stdin#")


def test_observer_is_recorded() -> None:
    result = read_captures([str(PCAPS / "ethernet_vlan.pcap")], observer="web1")
    assert set(result.records["observer"].to_list()) == {"web1"}


def test_ports_keep_only_matching_connections() -> None:
    path = str(PCAPS / "ethernet_vlan.pcap")
    everything = read_captures([path]).records
    only22 = read_captures([path], ports=frozenset({22})).records
    assert 0 < only22.height < everything.height
    assert all(22 in (r["src_port"], r["dst_port"]) for r in only22.iter_rows(named=True))


# --- broken input -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["truncated.pcap", "truncated.pcapng"])
def test_truncated_capture_gives_partial_records_and_a_warning(name: str) -> None:
    path = str(DATA / name)
    result = read_captures([path])
    assert result.errors == []
    assert any(w.startswith(f"{path}: truncated after 5 packets") for w in result.warnings)
    assert result.records.height == 1
    row = result.records.row(0, named=True)
    assert (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"]) == (
        "203.0.113.50", 51000, "192.0.2.20", 22
    )
    assert (row["service"], row["state"], row["orig_pkts"], row["orig_bytes"]) == (
        "ssh", "established", 3, 21
    )
    assert (row["resp_pkts"], row["resp_bytes"], row["ssh_server"]) == (2, 23, "SSH-2.0-OpenSSH_9.2p1")


def test_not_a_capture_names_the_file() -> None:
    path = str(DATA / "not_a_capture.pcap")
    with pytest.raises(NotACapture, match=r"not_a_capture\.pcap: not a pcap or pcapng"):
        read_capture(path)


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("corrupt_length.pcap", "packet 4 at byte offset 252"),
        ("corrupt_block.pcapng", "byte offset 324"),
        ("corrupt_block_short.pcapng", "byte offset 324"),
    ],
)
def test_corrupt_length_stops_that_file_and_others_go_on(name: str, where: str) -> None:
    bad = str(DATA / name)
    good = str(PCAPS / "ethernet_vlan.pcap")
    with pytest.raises(CorruptCapture, match=where):
        read_capture(bad)
    result = read_captures([bad, good])
    assert len(result.errors) == 1 and name in result.errors[0] and where in result.errors[0]
    # The packets before the bad record still count, and the next file was read whole.
    from_bad = result.records.filter(pl.col("origin").list.first().str.starts_with(bad))
    assert from_bad.height == 1
    assert from_bad.row(0, named=True)["orig_pkts"] == 2
    from_good = result.records.filter(pl.col("origin").list.first().str.starts_with(good))
    assert from_good.height == len(EXPECTED["ethernet_vlan.pcap"]["records"])


@pytest.mark.parametrize("name", ["empty.pcap", "empty.pcapng"])
def test_empty_capture_gives_no_records_and_no_error(name: str) -> None:
    result = read_captures([str(DATA / name)])
    assert result.records.height == 0 and result.errors == [] and result.warnings == []
    assert_schema_equal(result.records.schema, SCHEMA)


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", SAMPLES)
def test_tshark_backend_gives_the_same_records(name: str) -> None:
    path = str(PCAPS / name)
    fast = read_captures([path])
    shark = read_captures([path], backend="tshark")
    assert_frame_equal(fast.records, shark.records)
