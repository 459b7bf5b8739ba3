"""analyze/sources/weblog.py: access logs -> one record per request (values read off the fixtures)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_schema_equal

from analyze.sources import weblog
from capture.errors import UsageError
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
UTC = dt.UTC


def run(name: str, **kw: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    scan = weblog.scan([LOGS / name], **kw)  # type: ignore[arg-type]
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert_schema_equal(records.schema, SCHEMA)
    return records, rejects


COLS = ("src_ip", "src_port", "http_method", "http_path", "http_status", "http_user_agent", "http_xff")


def rows(records: pl.DataFrame) -> list[tuple[object, ...]]:
    return records.select(COLS).rows()


def test_nginx_combined_edge_lines() -> None:
    records, rejects = run("nginx_combined.log")
    assert rejects.height == 0
    assert rows(records) == [
        ("203.0.113.7", None, "GET", "/index.html", 200, "Mozilla/5.0 (X11; Linux x86_64)", None),
        ("2001:db8::1", None, "POST", "/api/v1/items?id=3", 201, "curl/8.5.0", None),
        ("127.0.0.1", None, None, None, 400, None, None),  # empty request ""
        # an XFF list in the first column: the last hop is the TCP peer
        ("127.0.0.1", None, "GET", "/ocelot", 200,
         "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.12; rv:49.0) Gecko/20100101 Firefox/49.0",
         "10.0.0.2, 10.0.0.1"),
        ("10.2.1.185", None, "GET", "/assets/xxxx?q=100", 200, "Amazon CloudFront",
         "10.5.102.222, 199.96.1.1, 204.246.1.1"),
        # escaped quotes stay inside their field; the third quoted field is X-Forwarded-For
        ("198.51.100.9", None, "GET", '/q?s=\\"quoted\\"', 404, 'agent \\"with\\" quotes',
         "192.0.2.50, 10.1.1.1"),
        ("198.51.100.10", None, None, None, 400, None, None),  # TLS bytes on the HTTP port
        ("198.51.100.11", None, None, None, 400, None, None),  # SSH banner, extra fields
    ]  # fmt: skip
    first = records.row(0, named=True)
    assert first["ts"] == dt.datetime(2026, 10, 10, 13, 55, 36, tzinfo=UTC)
    assert records.row(1, named=True)["ts"] == dt.datetime(2026, 10, 10, 11, 55, 37, tzinfo=UTC)
    assert first["evidence"] == ["weblog"] and first["service"] == "http"
    assert first["origin"] == [f"{LOGS / 'nginx_combined.log'}:1"]


def test_formats_md_section_5_lines_verbatim() -> None:
    records, rejects = run("access_formats_md.log")
    assert rejects.height == 0
    assert records.select("src_ip", "http_path", "http_status", "http_xff").rows() == [
        ("127.0.0.1", "/ocelot", 200, "10.0.0.2, 10.0.0.1"),
        ("127.0.0.1", None, 400, None),
    ]


def test_apache_vhost_combined_and_common() -> None:
    records, rejects = run("apache_vhost_combined.log")
    assert rejects.height == 0
    assert records.select("src_ip", "http_host", "http_path", "http_status").rows() == [
        ("203.0.113.70", "www.example.com", "/apache_pb.gif", 200),
        ("2001:db8::71", "shop.example.com", "/cart", 302),
    ]
    records, rejects = run("apache_common.log")
    assert rejects.height == 0
    assert records.select("src_ip", "http_path", "http_status", "http_user_agent").rows() == [
        ("192.0.2.72", "/apache_pb.gif", 200, None),
        ("192.0.2.73", "/missing", 404, None),
    ]


NGINX_CUSTOM = (
    '$remote_addr:$remote_port - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" $request_time '
    "$upstream_response_time $upstream_addr"
)


def test_nginx_log_format_with_remote_port_and_upstream_lists() -> None:
    records, rejects = run("nginx_custom.log", log_format=NGINX_CUSTOM)
    assert rejects.height == 0
    assert rows(records) == [
        ("198.51.100.80", 51234, "GET", "/api/health", 200, "kube-probe/1.29", None),
        ("198.51.100.81", 40022, "POST", "/login", 401, "Mozilla/5.0 (X11)", "203.0.113.9, 10.1.0.4"),
    ]


def test_apache_logformat_with_remote_port() -> None:
    fmt = '%a %{remote}p %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
    records, rejects = run("apache_custom.log", log_format=fmt)
    assert rejects.height == 0
    assert rows(records) == [("192.0.2.82", 40100, "GET", "/index.html", 200, "Wget/1.21", None)]
    assert records["ts"].to_list() == [dt.datetime(2026, 10, 11, 9, tzinfo=UTC)]


def test_lines_that_do_not_fit_a_custom_format_are_rejects() -> None:
    records, rejects = run("nginx_combined.log", log_format=NGINX_CUSTOM)
    assert records.height == 0
    assert rejects["lineno"].to_list() == list(range(1, 9))


@pytest.mark.parametrize(
    ("fmt", "sample", "expected"),
    [
        ("combined", '192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"',
         {"client": "192.0.2.1", "status": "200", "ua": "ua"}),
        ("common", '192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 -',
         {"client": "192.0.2.1", "request": "GET / HTTP/1.1"}),
        ('$remote_addr "$host" $status', '2001:db8::1 "a b" 204',
         {"client": "2001:db8::1", "host": "a b", "status": "204"}),
        ("%h %>s %{X-Forwarded-For}i", "192.0.2.9 502 198.51.100.1",
         {"client": "192.0.2.9", "status": "502", "xff": "198.51.100.1"}),
    ],
)  # fmt: skip
def test_compile_log_format(fmt: str, sample: str, expected: dict[str, str]) -> None:
    pattern = weblog.compile_log_format(fmt)
    got = pl.Series([sample]).str.extract_groups(pattern).to_list()[0]
    assert {k: got[k] for k in expected} == expected


def test_compile_log_format_needs_a_variable_and_the_client() -> None:
    with pytest.raises(UsageError, match="no \\$variable"):
        weblog.compile_log_format("just text")
    with pytest.raises(UsageError, match="client"):
        weblog.scan([LOGS / "nginx_combined.log"], log_format="$status $request")


def test_nginx_json_lines() -> None:
    records, rejects = run("nginx_json.log", json=True)
    assert rejects.height == 0
    assert records.select(*COLS, "http_host").rows() == [
        ("203.0.113.90", 55001, "GET", "/a?b=c", 200, "curl/8.5.0", None, "api.example.com"),
        ("2001:db8::91", 55002, "POST", "/upload", 413, "python-requests/2.31", "198.51.100.5",
         "api.example.com"),
    ]  # fmt: skip
    assert records["ts"].to_list() == [
        dt.datetime(2026, 10, 11, 10, tzinfo=UTC), dt.datetime(2026, 10, 11, 8, 0, 1, tzinfo=UTC),
    ]  # fmt: skip


def test_caddy_json_and_field_map() -> None:
    records, rejects = run("caddy.json", json=True)
    assert rejects.height == 0
    assert rows(records) == [
        ("203.0.113.95", 41566, "GET", "/index.html", 200, "Mozilla/5.0", "198.51.100.20")
    ]
    assert records["ts"].to_list() == [dt.datetime(2022, 3, 9, 21, 30, 1, 524102, tzinfo=UTC)]
    mapped = weblog.parse_field_map("src_ip=request.host")
    records, _ = run("caddy.json", json=True, field_map=mapped)
    assert records["src_ip"].to_list() == ["example.com"]


def test_field_map_errors_name_the_pair() -> None:
    with pytest.raises(UsageError, match="'nope=x'"):
        weblog.parse_field_map("src_ip=a,nope=x")


def test_observer_option() -> None:
    records, _ = run("apache_common.log", observer="web7")
    assert records["observer"].to_list() == ["web7", "web7"]


@pytest.mark.parametrize("bad", ["src_ip=a[", "ts=$..[?(@"])
def test_field_map_with_a_broken_json_path_is_a_usage_error(bad: str) -> None:
    from analyze.sources.weblog import parse_field_map
    from capture.errors import UsageError

    with pytest.raises(UsageError, match="--field-map: .* is not a JSON path"):
        parse_field_map(bad)
