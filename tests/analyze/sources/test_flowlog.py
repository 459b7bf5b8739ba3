"""analyze/sources/flowlog.py: Azure NSG (v1, v2) and VNet flow logs -> records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_schema_equal

from analyze.sources import flowlog
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
COLS = ("src_ip", "src_port", "dst_ip", "dst_port", "proto", "state", "duration", "orig_pkts",
        "resp_pkts", "observer")  # fmt: skip


def run(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    scan = flowlog.scan([path])
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert_schema_equal(records.schema, SCHEMA)
    return records, rejects, scan.notes


def ts(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def test_nsg_v2_begin_continue_end_is_one_record() -> None:
    records, rejects, _ = run(LOGS / "nsg_flow_v2.json")
    assert rejects.height == 0
    assert records.select(COLS).rows() == [
        # B at ...377, C at ...400 (10/8 packets), E at ...410 (4/3): summed
        ("203.0.113.50", 50000, "10.0.0.4", 22, "tcp", "closed", dt.timedelta(seconds=33), 14, 11,
         "000D3AF87856"),
        ("1.128.0.0", 59932, "1.128.0.1", 443, "tcp", "closed", dt.timedelta(0), 1, 1,
         "000D3AF87856"),
        ("198.51.100.77", 40001, "10.0.0.4", 3389, "tcp", "rejected", dt.timedelta(0), 0, 0,
         "000D3AF87856"),
    ]  # fmt: skip
    assert records["ts"].to_list() == [ts(1542110377), ts(1542110379), ts(1542110411)]
    assert records["origin"][0].to_list() == [f"{LOGS / 'nsg_flow_v2.json'}:2"]


def test_nsg_v1_has_no_counts() -> None:
    records, rejects, _ = run(LOGS / "nsg_flow_v1.json")
    assert rejects.height == 0
    assert records.select("src_ip", "dst_port", "state", "orig_pkts", "duration").rows() == [
        ("163.28.66.17", 3389, "established", None, dt.timedelta(0)),
        ("42.119.146.95", 5358, "rejected", None, dt.timedelta(seconds=14)),
    ]


def test_vnet_flow_log_in_milliseconds() -> None:
    records, rejects, _ = run(LOGS / "vnet_flow.json")
    assert rejects.height == 0
    assert records.select(COLS).rows() == [
        ("101.33.218.153", 55188, "10.0.0.6", 22, "tcp", "rejected", dt.timedelta(0), 0, 0,
         "112233445566"),
        ("10.0.0.6", 23956, "192.0.2.180", 443, "tcp", "closed", dt.timedelta(milliseconds=7), 3,
         2, "112233445566"),
    ]  # fmt: skip
    assert records["ts"][0] == dt.datetime(2022, 9, 14, 8, 59, 58, 65000, tzinfo=dt.UTC)


def test_bad_tuples_are_rejects_and_broken_json_is_a_note(tmp_path: Path) -> None:
    path = tmp_path / "PT1H.json"
    path.write_text(
        '{"records":[{"properties":{"Version":2,"flows":[{"rule":"r","flows":[{"mac":"M",'
        '"flowTuples":["1542110379,1.2.3.4,10.0.0.4,1,22,T,I,A,B,,,,","garbage"]}]}]}}]}'
    )
    records, rejects, _ = run(path)
    assert records["src_ip"].to_list() == ["1.2.3.4"]
    assert rejects.select("lineno", "line").rows() == [(2, "garbage")]
    broken = tmp_path / "cut.json"
    broken.write_text('{"records":[{"properties":')
    records, rejects, notes = run(broken)
    assert records.height == 0 and rejects.height == 1
    assert any("not a flow log JSON document" in n for n in notes)


@pytest.mark.parametrize("doc", ["5", "[]", '{"records": 5}', '"x"', '{"records": [{"properties": 5}]}'])
def test_json_of_the_wrong_shape_is_one_reject_not_a_crash(tmp_path: Path, doc: str) -> None:
    from analyze.sources import flowlog

    blob = tmp_path / "PT1H.json"
    blob.write_text(doc)
    scan = flowlog.scan([blob])
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert records.height == 0
    assert rejects.height == 1 and rejects["source"].to_list() == [str(blob)]
    assert any("not a flow log JSON document" in n for n in scan.notes)
