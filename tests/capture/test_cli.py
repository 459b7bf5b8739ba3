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


# --- issue 16: folders, pipes, outputs, exit statuses ---------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def egresslens(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "analyze", *args], env=ENV, capture_output=True,
                          timeout=120, **kwargs)  # type: ignore[call-overload]  # fmt: skip


def test_a_records_folder_it_wrote_reads_back(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    assert run("capture", "read", SAMPLE, "-o", f"{folder}/").exit_code == 0
    back = run("capture", "read", f"{folder}/", "--format", "json")
    assert back.exit_code == 0, back.output
    first = json.loads(run("capture", "read", SAMPLE, "--format", "json").stdout)
    assert json.loads(back.stdout) == first


def test_a_folder_of_captures_skips_the_rest_in_one_note(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# notes\n")
    (tmp_path / "a.pcap").write_bytes(Path(SAMPLE).read_bytes())
    (tmp_path / "b.pcap.gz").write_bytes((ROOT / "pcaps" / "ethernet.pcap.gz").read_bytes())
    result = run("capture", "read", str(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert {r["origin"][0].split("#")[0] for r in json.loads(result.stdout)} == {
        str(tmp_path / "a.pcap"), str(tmp_path / "b.pcap.gz")}  # fmt: skip
    assert "skipped 1 file(s) that are not captures or records (README.md)" in result.stderr


def test_an_unreadable_file_among_others_is_status_3_and_strict_stops_at_once(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    result = run("capture", "read", str(DATA / "not_a_capture.pcap"), SAMPLE, "-o", str(out))
    assert result.exit_code == 3
    assert "Error: " in result.stderr and "not_a_capture.pcap: not a pcap" in result.stderr
    assert len(json.loads(out.read_text())) == 3
    strict = run("capture", "read", str(DATA / "not_a_capture.pcap"), SAMPLE, "-o", str(tmp_path / "y.json"), "--strict")
    assert strict.exit_code == 2 and not (tmp_path / "y.json").exists()
    nothing = run("capture", "read", str(DATA / "not_a_capture.pcap"), str(DATA / "empty.pcap.missing"))
    assert nothing.exit_code == 2  # nothing could be read


@pytest.mark.parametrize("out", ["json", "x.xlsx", "csv"])
def test_o_with_a_bare_word_or_unknown_extension_is_a_usage_error(out: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["capture", "read", SAMPLE, "-o", str(tmp_path / out) if "." in out else out])
    assert result.exit_code == 2 and "--format" in result.stderr
    assert not (tmp_path / out).exists() and not Path(out).exists()


def test_csv_of_records_holds_no_live_formula(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text('203.0.113.9 - - [26/Nov/2026:11:07:41 +0000] "GET / HTTP/1.1" 200 5 "-" "=cmd|\' /C calc\'!A0"\n')
    result = run("logs", "read", str(log), "--format", "csv")
    assert result.exit_code == 0, result.output
    frame = pl.read_csv(result.stdout.encode(), infer_schema=False)
    assert frame["http_user_agent"].to_list() == ["'=cmd|' /C calc'!A0"]


def test_parquet_refuses_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "analyze", "capture", "read", SAMPLE, "--format", "parquet"],
                              env=ENV, stdout=follower, stderr=subprocess.PIPE, timeout=120)  # fmt: skip
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 2
    assert b"refusing to write binary data to a terminal" in proc.stderr


def test_stdin_through_a_real_pipe_gzip_too() -> None:
    for data in (Path(SAMPLE).read_bytes(), (ROOT / "pcaps" / "ethernet.pcap.gz").read_bytes()):
        proc = subprocess.Popen([sys.executable, "-m", "analyze", "capture", "read", "-", "--format", "ndjson"],
                                env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        out, err = proc.communicate(data, timeout=120)
        assert proc.returncode == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        assert rows and all(r["origin"][0].startswith("stdin#") for r in rows)


def test_a_closed_stdout_ends_quietly_with_status_141() -> None:
    # Enough output to overflow the pipe: the reader (head) goes away after 10 bytes.
    cmd = [sys.executable, "-m", "analyze", "capture", "read", *[SAMPLE] * 150, "--format", "ndjson"]
    writer = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None
    head = writer.stdout.read(10)
    writer.stdout.close()
    _, err = writer.communicate(timeout=120)
    assert head.startswith(b'{"conn_id"')
    assert writer.returncode == 141, err
    assert b"Traceback" not in err and b"Broken pipe" not in err and b"Exception ignored" not in err


def test_live_takes_o_and_keeps_out(tmp_path: Path) -> None:
    for flag, name in (("-o", "a"), ("--out", "b")):
        result = egresslens("capture", "live", "--replay", SAMPLE, flag, str(tmp_path / name), "--no-pcap")
        assert result.returncode == 0, result.stderr
        assert list((tmp_path / name).glob("records-*.parquet"))


@pytest.mark.parametrize(
    ("statuses", "want"),
    [((0,), 0), ((3, 1), 1), ((1, 2), 2), ((3, 2, 1), 2), ((3, 0), 3), ((141, 2), 141), ((), 0)],
)
def test_when_several_statuses_apply_2_beats_1_and_1_beats_3(statuses: tuple[int, ...], want: int) -> None:
    from capture.cli import worst

    assert worst(statuses) == want


def test_input_status_nothing_read_is_2_some_is_3() -> None:
    from capture.cli import input_status

    assert input_status(unreadable=2, read=0) == 2
    assert input_status(unreadable=1, read=1) == 3
    assert input_status(unreadable=0, read=1, partial=True) == 3
    assert input_status(unreadable=0, read=1) == 0
