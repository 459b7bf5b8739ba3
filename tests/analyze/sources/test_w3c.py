"""analyze/sources/w3c.py: W3C extended logs (IIS, App Service) -> records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from polars.testing import assert_schema_equal

from analyze.sources import w3c
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"


def run(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    scan = w3c.scan([path])
    records, rejects, skipped = pl.collect_all([scan.records, scan.rejects, scan.skipped])
    assert_schema_equal(records.schema, SCHEMA)
    return records, rejects, int(skipped["skipped"].sum())


def test_two_fields_blocks_in_one_file() -> None:
    records, rejects, skipped = run(LOGS / "w3c_appservice.log")
    assert rejects.height == 0
    assert skipped == 8  # two blocks of #Software / #Version / #Date / #Fields
    cols = ("src_ip", "dst_ip", "dst_port", "http_method", "http_host", "http_path",
            "http_status", "http_user_agent", "http_xff")  # fmt: skip
    assert records.select(cols).rows() == [
        ("127.0.0.1", None, 80, "GET", "localhost", "/", 200,
         "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:57.0) Gecko/20100101 Firefox/57.0", None),
        ("203.0.113.40", None, 443, "POST", "shop.example.com", "/api/orders?id=7", 201,
         "curl/8.5.0", None),
        ("168.63.129.16", "10.0.0.4", 80, "GET", None, "/health", 200, None, None),
        ("10.0.1.5", "10.0.0.4", 443, "GET", None, "/login", 302, "Mozilla/5.0",
         "198.51.100.23:54321"),
    ]  # fmt: skip
    assert records["ts"][0] == dt.datetime(2018, 1, 1, 9, 10, 11, tzinfo=dt.UTC)
    assert records["origin"].to_list()[2] == [f"{LOGS / 'w3c_appservice.log'}:11"]


def test_lines_that_do_not_fit_the_header_are_rejects(tmp_path: Path) -> None:
    path = tmp_path / "u_ex.log"
    path.write_text(
        "2026-01-01 00:00:00 GET / 192.0.2.1\n"  # before any #Fields
        "#Fields: date time cs-method cs-uri-stem c-ip\n"
        "2026-01-01 00:00:01 GET / 192.0.2.2\n"
        "2026-01-01 00:00:02 GET / 192.0.2.3 extra\n"
    )
    records, rejects, _ = run(path)
    assert records["src_ip"].to_list() == ["192.0.2.2"]
    assert rejects["lineno"].to_list() == [1, 4]
