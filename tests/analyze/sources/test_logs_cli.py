"""``egresslens logs read`` (analyze/cli.py, logs section): options, exits, stderr counts."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from polars.testing import assert_schema_equal

from analyze.cli import cli
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help_texts() -> None:
    code, out, _ = invoke("logs", "--help")
    assert code == 0 and "Logs -> connection records" in out
    code, out, _ = invoke("logs", "read", "--help")
    assert code == 0
    for option in ("--type", "--log-format", "--field-map", "--year", "--tz", "--observer",
                   "--rejects", "--strict", "--format", "--output"):  # fmt: skip
        assert option in out


def test_ndjson_to_stdout_and_counts_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    shutil.copy(LOGS / "auth_ok.log", path)
    stamp = dt.datetime(2026, 3, 8, tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    code, out, err = invoke("logs", "read", str(path), "--format", "ndjson", "--tz", "UTC")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 7
    assert rows[0]["src_ip"] == "192.0.2.10" and rows[0]["ts"] == "2026-03-07T18:53:20.000000Z"
    assert "7 records, 0 rejected lines, 4 skipped" in err
    assert "read as UTC" in err


def test_parquet_output_streams_in_the_record_schema(tmp_path: Path) -> None:
    out = tmp_path / "web.parquet"
    code, _, err = invoke("logs", "read", str(LOGS / "nginx_combined.log"), "-o", str(out))
    assert code == 0, err
    frame = pl.read_parquet(out)
    assert_schema_equal(frame.schema, SCHEMA)
    assert frame.height == 8
    assert not list(tmp_path.glob(".*partial"))


def test_records_folder(tmp_path: Path) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    code, _, err = invoke("logs", "read", str(LOGS / "zeek_conn.log"), "-o", f"{folder}/")
    assert code == 0, err
    (written,) = folder.glob("*.parquet")
    assert pl.read_parquet(written).height == 3


def test_rejects_strict_and_rejects_file(tmp_path: Path) -> None:
    garbage = str(LOGS / "auth_mixed_garbage.log")
    code, _, err = invoke("logs", "read", garbage, "--format", "csv", "-o", str(tmp_path / "r.csv"))
    assert code == 0
    assert "2 rejected lines" in err and "first reject:" in err and ":2:" in err
    rejects = tmp_path / "rejects.csv"
    code, _, err = invoke(
        "logs", "read", garbage, "--strict", "--rejects", str(rejects), "-o", str(tmp_path / "x.csv")
    )
    assert code == 1
    assert pl.read_csv(rejects)["lineno"].to_list() == [2, 3]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("logs", "read", str(tmp_path / "missing.log"))
    assert code == 2 and "no such file" in err and "Traceback" not in err
    odd = tmp_path / "odd.txt"
    odd.write_text("hello\n")
    code, _, err = invoke("logs", "read", str(odd))
    assert code == 2 and "give --type" in err
    code, _, err = invoke("logs", "read", str(LOGS / "auth_ok.log"), "--tz", "Nowhere/Land")
    assert code == 2 and "unknown time zone" in err
    code, _, err = invoke("logs", "read", str(LOGS / "caddy.json"), "--field-map", "bogus")
    assert code == 2 and "--field-map" in err


def test_log_format_option() -> None:
    fmt = '%a %{remote}p %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
    code, out, err = invoke(
        "logs", "read", str(LOGS / "apache_custom.log"), "--type", "apache", "--log-format", fmt,
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["src_ip"], row["src_port"]) == ("192.0.2.82", 40100)
