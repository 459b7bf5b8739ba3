"""``egresslens capture read``: formats, outputs, exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_schema_equal

from analyze.cli import cli
from capture.schema import SCHEMA

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(ROOT / "pcaps" / "ethernet_vlan.pcap")
DATA = ROOT / "tests" / "data"


def run(*args: str, input: bytes | None = None) -> "object":
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_json_is_an_array_keyed_by_schema_columns_with_iso_utc_times() -> None:
    result = run("capture", "read", SAMPLE, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 3
    assert list(rows[0]) == list(SCHEMA.names())
    assert rows[0]["ts"] == "2026-01-15T10:00:00.002000Z"
    assert rows[0]["evidence"] == ["pcap"] and rows[0]["origin"] == [f"{SAMPLE}#2"]
    assert "3 connection records" in result.stderr


def test_ndjson_one_object_per_line() -> None:
    result = run("capture", "read", SAMPLE, "--format", "ndjson")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(json.loads(line)["proto"] == "tcp" for line in lines)


def test_csv_flattens_lists() -> None:
    result = run("capture", "read", SAMPLE, "--format", "csv")
    frame = pl.read_csv(result.stdout.encode())
    assert frame.height == 3 and frame["evidence"].to_list() == ["pcap"] * 3


def test_parquet_file_and_records_folder(tmp_path: Path) -> None:
    out = tmp_path / "conns.parquet"
    assert run("capture", "read", SAMPLE, "-o", str(out)).exit_code == 0
    assert_schema_equal(pl.read_parquet(out).schema, SCHEMA)
    folder = tmp_path / "records"
    assert run("capture", "read", SAMPLE, "-o", f"{folder}/").exit_code == 0
    files = list(folder.glob("*.parquet"))
    assert len(files) == 1 and not list(folder.glob(".*.tmp"))
    assert pl.read_parquet(files[0]).height == 3


def test_stdin_dash() -> None:
    data = Path(SAMPLE).read_bytes()
    result = run("capture", "read", "-", "--format", "json", input=data)
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["origin"] == ["stdin#2"]


def test_table_view_is_the_default() -> None:
    result = run("capture", "read", SAMPLE)
    header = result.stdout.splitlines()[0].split()
    assert header[:4] == ["ts", "src_ip", "src_port", "dst_ip"]


def test_not_a_capture_is_one_line_and_exit_2() -> None:
    result = run("capture", "read", str(DATA / "not_a_capture.pcap"))
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "not_a_capture.pcap: not a pcap or pcapng" in errors[0]
    assert "Traceback" not in result.output


def test_missing_file_is_one_line_and_exit_2() -> None:
    result = run("capture", "read", "/nonexistent/x.pcap")
    assert result.exit_code == 2
    assert "/nonexistent/x.pcap: cannot open" in result.stderr


def test_corrupt_file_reports_and_the_others_are_written(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    result = run("capture", "read", str(DATA / "corrupt_length.pcap"), SAMPLE, "-o", str(out))
    assert result.exit_code == 3  # partial input: the others are read
    assert "corrupt_length.pcap: packet 4" in result.stderr
    assert len(json.loads(out.read_text())) == 4  # 1 from before the corruption + 3


def test_truncated_file_warns_and_exits_3() -> None:
    result = run("capture", "read", str(DATA / "truncated.pcap"), "--format", "json")
    assert result.exit_code == 3
    assert "truncated after 5 packets" in result.stderr
    assert len(json.loads(result.stdout)) == 1


@pytest.mark.parametrize("ports", ["22,abc", "0", "70000"])
def test_bad_ports_are_usage_errors(ports: str) -> None:
    result = run("capture", "read", SAMPLE, "--ports", ports)
    assert result.exit_code == 2 and "--ports" in result.stderr


def test_observer_option() -> None:
    result = run("capture", "read", SAMPLE, "--observer", "web1", "--format", "json")
    assert {r["observer"] for r in json.loads(result.stdout)} == {"web1"}


def test_existing_output_is_not_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    out.write_text("precious")
    refused = run("capture", "read", SAMPLE, "-o", str(out))
    assert refused.exit_code == 2 and "exists; use --force" in refused.stderr
    assert out.read_text() == "precious"
    assert run("capture", "read", SAMPLE, "-o", str(out), "--force").exit_code == 0
    assert len(json.loads(out.read_text())) == 3
