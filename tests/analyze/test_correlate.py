"""Correlation of captured connections with their log lines (analyze/correlate.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from polars.testing import assert_schema_equal

from analyze.correlate import correlate
from capture.errors import UsageError
from capture.schema import SCHEMA
from tests.analyze.records_factory import T0, frame, make_conn


def auth(**kw: object) -> dict[str, object]:
    """An auth.log record: no destination, no packets, the user and the outcome."""
    base = dict(evidence=["authlog"], dst_ip=None, dst_port=None, duration=None, ssh_user="root",
                ssh_auth="failed", ssh_method="password")  # fmt: skip
    return make_conn(**{**base, **kw})


def line(**kw: object) -> dict[str, object]:
    """An access-log line: no source port."""
    base = dict(evidence=["weblog"], src_port=None, dst_ip=None, dst_port=None, service="http",
                state=None, duration=None, http_method="GET", http_path="/", http_status=200)  # fmt: skip
    return make_conn(**{**base, **kw})


def web_conn(**kw: object) -> dict[str, object]:
    """A captured HTTP connection whose first request is ``GET /``."""
    base = dict(service="http", dst_port=80, http_method="GET", http_path="/", duration=dt.timedelta(seconds=30))
    return make_conn(**{**base, **kw})


def test_ssh_capture_and_auth_record_merge_and_the_offset_is_estimated() -> None:
    recs = frame(
        make_conn(conn_id="c1", src_ip="139.217.1.1", src_port=50000, ts=0, origin=["a.pcap#1"]),
        auth(conn_id="a1", src_ip="139.217.1.1", src_port=50000, ts=3, origin=["auth.log:1"],
             ssh_user="root", ssh_auth="accepted"),  # fmt: skip
        make_conn(conn_id="c2", src_ip="139.217.1.2", src_port=50001, ts=10),
        auth(conn_id="a2", src_ip="139.217.1.2", src_port=50001, ts=14, ssh_user="git"),
        make_conn(conn_id="c3", src_ip="139.217.1.3", src_port=50002, ts=20),
        auth(conn_id="a3", src_ip="139.217.1.3", src_port=50002, ts=23.5, ssh_user="bob"),
        auth(conn_id="a4", src_ip="139.217.1.9", src_port=50009, ts=30),  # logged only
        make_conn(conn_id="c5", src_ip="139.217.1.5", src_port=50005, ts=40),  # captured only
    )
    c = correlate(recs)
    # log - capture: 3, 4, 3.5 s; the median is 3.5 s
    assert c.clock_offset == dt.timedelta(seconds=3.5)
    assert c.offset_from == "ssh"
    assert dict(c.pairs) == {"offset": 3, "ssh": 3, "http": 0}
    assert_schema_equal(c.records.schema, SCHEMA)
    rows = c.records.select("conn_id", "ts", "evidence", "origin", "ssh_user", "ssh_auth", "dst_ip").rows()
    assert rows[0] == ("c1", T0, ["pcap", "authlog"], ["a.pcap#1", "auth.log:1"], "root", "accepted", "10.0.0.4")
    assert [r[0] for r in rows] == ["c1", "c2", "c3", "a4", "c5"]
    assert [r[4] for r in rows] == ["root", "git", "bob", "root", None]


@pytest.mark.parametrize(("log_at", "merged"), [(2.0, True), (2.5, False)], ids=["at_tolerance", "past_tolerance"])
def test_tolerance_after_the_offset(log_at: float, merged: bool) -> None:
    recs = frame(
        # an unambiguous pair fixes the offset at +0 s ...
        make_conn(conn_id="c0", src_ip="198.51.100.1", src_port=1000, ts=0),
        auth(conn_id="a0", src_ip="198.51.100.1", src_port=1000, ts=0),
        make_conn(conn_id="c0b", src_ip="198.51.100.2", src_port=1001, ts=5),
        auth(conn_id="a0b", src_ip="198.51.100.2", src_port=1001, ts=5),
        # ... and this port is used twice, so it is not one of the pairs
        make_conn(conn_id="c1", src_ip="198.51.100.3", src_port=2000, ts=100),
        make_conn(conn_id="c2", src_ip="198.51.100.3", src_port=2000, ts=500),
        auth(conn_id="a1", src_ip="198.51.100.3", src_port=2000, ts=100 + log_at),
    )
    c = correlate(recs, tolerance="2s")
    assert c.clock_offset == dt.timedelta(0)
    assert c.pairs["offset"] == 2
    ids = c.records.get_column("conn_id").to_list()
    assert ("a1" not in ids) is merged


def test_observer_must_agree_when_both_have_one() -> None:
    recs = frame(
        make_conn(conn_id="c1", src_ip="203.0.113.1", src_port=1, ts=0, observer="web1"),
        auth(conn_id="a1", src_ip="203.0.113.1", src_port=1, ts=0, observer="web2"),
        make_conn(conn_id="c2", src_ip="203.0.113.2", src_port=2, ts=0, observer=None),
        auth(conn_id="a2", src_ip="203.0.113.2", src_port=2, ts=0, observer="web2"),
    )
    c = correlate(recs)
    assert c.records.select("conn_id", "observer").rows() == [("a1", "web2"), ("c1", "web1"), ("c2", "web2")]


def test_no_pairs_means_no_offset_and_nothing_merged() -> None:
    c = correlate(frame(make_conn(src_ip="203.0.113.1", src_port=1), auth(src_ip="203.0.113.2", src_port=2)))
    assert c.clock_offset is None and c.offset_from is None
    assert c.records.height == 2
    assert "unknown" in c.note


def test_access_log_lines_attach_to_their_http_connection() -> None:
    recs = frame(
        web_conn(conn_id="h1", src_ip="20.1.2.4", ts=0, origin=["w.pcap#1"]),
        line(conn_id="l1", src_ip="20.1.2.4", ts=0.5, origin=["access.log:1"], http_user_agent="curl/8"),
        line(conn_id="l2", src_ip="20.1.2.4", ts=20, http_path="/b", origin=["access.log:2"]),  # keep-alive
        line(conn_id="l3", src_ip="20.1.2.4", ts=33, http_path="/c"),  # past the end (30 s + 2 s)
        line(conn_id="l4", src_ip="20.1.2.5", ts=1),  # another address
    )
    c = correlate(recs)
    assert c.offset_from == "http" and c.clock_offset == dt.timedelta(seconds=0.5)
    assert c.pairs["http"] == 2
    got = c.records.select("conn_id", "evidence", "origin", "http_path", "http_user_agent").rows()
    assert got == [
        ("h1", ["pcap", "weblog"], ["w.pcap#1", "access.log:1", "access.log:2"], "/", "curl/8"),
        ("l4", ["weblog"], [got[1][2][0]], "/", None),
        ("l3", ["weblog"], [got[2][2][0]], "/c", None),
    ]


def test_a_line_prefers_the_connection_with_its_request_line() -> None:
    recs = frame(
        web_conn(conn_id="h1", src_ip="20.0.0.40", ts=0, http_path="/a"),
        web_conn(conn_id="h2", src_ip="20.0.0.40", ts=1, http_path="/b"),
        line(conn_id="l1", src_ip="20.0.0.40", ts=1.5, http_path="/a"),
    )
    c = correlate(recs)
    assert c.records.select("conn_id", "evidence").rows() == [("h1", ["pcap", "weblog"]), ("h2", ["pcap"])]


def test_bad_tolerance_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'two seconds'"):
        correlate(frame(make_conn()), tolerance="two seconds")
