"""analyze/sources/journal.py: journalctl -o json exports -> sshd connection records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from polars.testing import assert_schema_equal

from analyze.sources import journal
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"


def test_journal_json_gives_connections() -> None:
    scan = journal.scan([LOGS / "journal.json"])
    records, rejects, skipped = pl.collect_all([scan.records, scan.rejects, scan.skipped])
    assert_schema_equal(records.schema, SCHEMA)
    assert rejects.height == 0
    assert int(skipped["skipped"].sum()) == 1  # systemd-logind
    cols = ("src_ip", "src_port", "observer", "ssh_user", "ssh_auth", "ssh_method", "state")
    assert records.select(cols).rows() == [
        ("203.0.113.5", 51000, "deb12", "admin", "accepted", "publickey", "closed"),
        ("198.51.100.20", 40000, "deb12", "oracle", "invalid_user", "password", "closed"),
    ]
    # __REALTIME_TIMESTAMP 1709633472000000 us; last line of the first connection at ...500 s
    first = records.row(0, named=True)
    assert first["ts"] == dt.datetime(2024, 3, 5, 10, 11, 12, tzinfo=dt.UTC)
    assert first["duration"] == dt.timedelta(seconds=28)
    assert first["origin"] == [f"{LOGS / 'journal.json'}:1"]


def test_lines_that_are_not_journal_objects_are_rejects(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text('{"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"sshd"}\nnot json\n')
    scan = journal.scan([path])
    assert scan.rejects.collect()["lineno"].to_list() == [1, 2]
