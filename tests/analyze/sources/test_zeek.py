"""analyze/sources/zeek.py: Zeek conn.log (TSV and JSON) -> records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_schema_equal

from analyze.sources import zeek
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
COLS = ("conn_id", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "service", "state",
        "duration", "orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts")  # fmt: skip
FIRST = ("CHhAvVGS1DHFjwGM9", "192.0.2.10", 46038, "10.0.0.4", 22, "tcp", "ssh", "closed",
         dt.timedelta(seconds=3.5), 2100, 3300, 20, 18)  # fmt: skip
SECOND = ("C4J4Th3PJpwUYZZ6gc", "198.51.100.4", 50122, "10.0.0.4", 80, "tcp", None, "attempt",
          None, None, None, 1, 0)  # fmt: skip


def run(path: Path, json: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    scan = zeek.scan([path], json=json, observer="sensor1")
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert_schema_equal(records.schema, SCHEMA)
    return records, rejects


def test_tsv_by_header_with_two_blocks_and_unset_fields() -> None:
    records, rejects = run(LOGS / "zeek_conn.log", json=False)
    assert rejects.height == 0
    assert records.select(COLS).rows()[:2] == [FIRST, SECOND]
    # the second block has fewer columns, in its own order
    third = records.row(2, named=True)
    assert (third["src_ip"], third["dst_port"], third["service"], third["state"]) == (
        "2001:db8::9", 443, "https", "reset",
    )  # fmt: skip
    assert third["duration"] is None
    assert records["ts"][0] == dt.datetime(2026, 3, 7, 21, 46, 40, 123456, tzinfo=dt.UTC)
    assert records["observer"].to_list() == ["sensor1"] * 3
    assert records["evidence"][0].to_list() == ["zeek"]


def test_json_lines() -> None:
    records, rejects = run(LOGS / "zeek_conn.json", json=True)
    assert rejects.height == 0
    assert records.select(COLS).rows() == [FIRST, SECOND]


@pytest.mark.parametrize(
    ("conn_state", "state"),
    [("S0", "attempt"), ("REJ", "rejected"), ("SF", "closed"), ("S1", "established"),
     ("RSTO", "reset"), ("OTH", "partial"), ("XYZ", None)],
)  # fmt: skip
def test_conn_state_mapping(tmp_path: Path, conn_state: str, state: str | None) -> None:
    path = tmp_path / "conn.log"
    path.write_text(
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tconn_state\n"
        f"1.0\tCabc\t192.0.2.1\t1\t192.0.2.2\t2\ttcp\t{conn_state}\n"
    )
    records, _ = run(path, json=False)
    assert records["state"].to_list() == [state]


def test_rows_that_do_not_fit_the_header_are_rejects(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_text(
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\n"
        "1.0\tCa\t192.0.2.1\t1\t192.0.2.2\t2\n"
        "1.0\tCb\t192.0.2.1\t1\n"
    )
    records, rejects = run(path, json=False)
    assert records["conn_id"].to_list() == ["Ca"]
    assert rejects["lineno"].to_list() == [3]
