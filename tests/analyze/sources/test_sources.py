"""analyze/sources/__init__.py: type detection, read_logs, and the surface every module shares."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import pkgutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_schema_equal

import analyze.sources as sources
from analyze.sources import read_logs
from capture.errors import InputError, UsageError
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
MODULES = sorted(
    m.name for m in pkgutil.iter_modules(sources.__path__) if not m.name.startswith("_")
)


@pytest.mark.parametrize("name", MODULES)
def test_every_source_module_has_the_same_surface(name: str) -> None:
    module = importlib.import_module(f"analyze.sources.{name}")
    assert module.SCHEMA is SCHEMA
    assert callable(module.scan)
    assert {"SCHEMA", "scan", "NAME"} <= set(module.__all__)
    assert all(hasattr(module, n) for n in module.__all__)
    first = (module.__doc__ or "").splitlines()[0]
    assert "http" in first, "the first docstring line names the format and links its spec"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("auth_ok.log", "authlog"), ("auth_rfc3339.log", "authlog"),
        ("journal.json", "journal"), ("nginx_combined.log", "nginx"),
        ("apache_vhost_combined.log", "nginx"), ("apache_common.log", "nginx"),
        ("nginx_json.log", "jsonlog"), ("caddy.json", "jsonlog"),
        ("w3c_appservice.log", "w3c"), ("zeek_conn.log", "zeek"), ("zeek_conn.json", "zeekjson"),
        ("nsg_flow_v1.json", "nsgflow"), ("vnet_flow.json", "nsgflow"),
    ],
)  # fmt: skip
def test_detect_type(name: str, kind: str) -> None:
    assert sources.detect_type(LOGS / name) == kind


def test_clean_fixtures_read_together_give_zero_rejects() -> None:
    clean = [p for p in sorted(LOGS.iterdir()) if "garbage" not in p.name and "custom" not in p.name]
    result = read_logs(clean)
    records, rejects = pl.collect_all([result.records, result.rejects])
    assert rejects.height == 0
    assert_schema_equal(records.schema, SCHEMA)
    assert set(records["evidence"].list.first().unique()) == {
        "authlog", "weblog", "w3c", "zeek", "flowlog",
    }  # fmt: skip
    assert result.types[str(LOGS / "journal.json")] == "journal"


def test_empty_file_is_a_note_not_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "access.log"
    empty.write_text("")
    result = read_logs([empty])
    assert result.records.collect().height == 0
    assert result.notes == (f"{empty}: empty file, no records",)


def test_unknown_content_names_the_file_and_asks_for_type(tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("hello world\n")
    with pytest.raises(InputError, match=r"odd.txt: cannot tell the log type.*--type"):
        read_logs([odd])


def test_missing_file_and_bad_options() -> None:
    with pytest.raises(InputError, match="no such file"):
        read_logs(["/nonexistent/auth.log"])
    with pytest.raises(UsageError, match="--type"):
        read_logs([LOGS / "auth_ok.log"], type="syslog")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--year"):
        read_logs([LOGS / "auth_ok.log"], year=12)


def test_explicit_type_overrides_detection() -> None:
    result = read_logs([LOGS / "apache_common.log"], type="apache")
    assert result.types == {str(LOGS / "apache_common.log"): "apache"}
    assert result.records.collect().height == 2


def test_a_megabyte_line_is_just_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        "Mar  7 10:00:00 h sshd[1]: " + "A" * 1_000_000 + "\n"
        "Mar  7 10:00:01 h sshd[2]: Accepted password for u from 192.0.2.1 port 1 ssh2\n"
    )
    stamp = dt.datetime(2026, 3, 8, tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    result = read_logs([path])
    records, rejects = pl.collect_all([result.records, result.rejects])
    assert records["src_port"].to_list() == [1]
    assert rejects["lineno"].to_list() == [1]


def test_a_file_that_changes_format_halfway(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_text(
        '192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
        "#Fields: date time c-ip\n"
        "2026-01-01 00:00:00 192.0.2.2\n"
    )
    result = read_logs([path])
    records, rejects = pl.collect_all([result.records, result.rejects])
    assert records["src_ip"].to_list() == ["192.0.2.1"]
    assert rejects["lineno"].to_list() == [2, 3]


# --- one line whose time cannot be a date is a reject, in every format (issue 15) ------------

_W3C_HEAD = "#Software: IIS\n#Fields: date time cs-method cs-uri-stem c-ip sc-status\n"
_ZEEK_HEAD = (
    "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"
)
_NSG = (
    '{{"records":[{{"time":"2018-11-13T12:00:35Z","resourceId":"/X/NETWORKSECURITYGROUPS/N",'
    '"properties":{{"Version":2,"flows":[{{"rule":"r","flows":[{{"mac":"00","flowTuples":['
    '"{bad},192.0.2.1,10.0.0.4,40000,22,T,I,A,B,,,,",'
    '"1542110379,192.0.2.2,10.0.0.4,40001,22,T,I,A,B,,,,"]}}]}}]}}}}]}}'
)
BAD_DATES = [
    ("nginx", '192.0.2.1 - - [30/Feb/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "x"\n'
              '192.0.2.2 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "x"\n', 1),
    ("nginx", '192.0.2.1 - - [10/Oct/2026:25:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "x"\n'
              '192.0.2.2 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "x"\n', 1),
    ("jsonlog", '{"remote_addr":"192.0.2.1","time_iso8601":"2026-13-01T00:00:00+00:00","status":"200"}\n'
                '{"remote_addr":"192.0.2.2","time_iso8601":"2026-10-01T00:00:00+00:00","status":"200"}\n', 1),
    ("w3c", _W3C_HEAD + "2026-02-30 10:00:00 GET / 192.0.2.1 200\n2026-02-03 10:00:00 GET / 192.0.2.2 200\n", 3),
    ("zeek", _ZEEK_HEAD + "1e300\tC1\t192.0.2.1\t1\t10.0.0.4\t22\ttcp\n"
             "1772920000.5\tC2\t192.0.2.2\t2\t10.0.0.4\t22\ttcp\n", 4),
    ("zeekjson", '{"ts":"2026-02-30T10:00:00Z","uid":"C1","id.orig_h":"192.0.2.1"}\n'
                 '{"ts":1772920000.5,"uid":"C2","id.orig_h":"192.0.2.2"}\n', 1),
    ("authlog", "Jan  0 10:00:01 h sshd[1]: Accepted password for u from 192.0.2.1 port 1 ssh2\n"
                "Jan  1 10:00:01 h sshd[2]: Accepted password for u from 192.0.2.2 port 2 ssh2\n", 1),
    ("nsgflow", _NSG.format(bad="99999999999999999"), None),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "body", "lineno"), BAD_DATES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_DATES)])
def test_a_time_that_cannot_be_a_date_costs_only_its_line(
    tmp_path: Path, kind: str, body: str, lineno: int | None
) -> None:
    path = tmp_path / "input.log"
    path.write_text(body)
    result = read_logs([path], type=kind, year=2026)  # type: ignore[arg-type]
    records, rejects = pl.collect_all([result.records, result.rejects])
    assert records["src_ip"].to_list() == ["192.0.2.2"]
    assert rejects.height == 1
    if lineno is not None:
        assert rejects["lineno"].to_list() == [lineno]
