"""capture.output: the one writer for every command that outputs rows."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import polars as pl
import pytest

from capture.errors import UsageError
from capture.output import format_bytes, guess_format, render_table, write


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [dt.datetime(2026, 1, 15, 10, 0, 0, 2000, tzinfo=dt.UTC)],
            "user": ["evil\x1b[31mred\x07"],
            "tags": [["a", "b"]],
            "duration": [dt.timedelta(milliseconds=3500)],
        }
    )


def test_json_times_are_iso_utc_and_durations_seconds() -> None:
    rows = json.loads(format_bytes(frame(), "json", None))
    assert rows == [{"ts": "2026-01-15T10:00:00.002000Z", "user": "evil\x1b[31mred\x07", "tags": ["a", "b"], "duration": 3.5}]


def test_table_escapes_control_characters_and_ansi() -> None:
    text = render_table(frame())
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[31mred\\x07" in text


def test_csv_joins_lists_and_formats_times() -> None:
    text = format_bytes(frame(), "csv", None).decode()
    assert "a;b" in text and "2026-01-15T10:00:00.002000Z" in text and ",3.5" in text


@pytest.mark.parametrize(
    ("out", "fmt", "want"),
    [("x.json", None, "json"), ("x.csv", None, "csv"), ("x.jsonl", None, "ndjson"),
     ("x.parquet", None, "parquet"), (None, None, "table"), ("-", None, "table"), ("x.csv", "json", "json")],
)  # fmt: skip
def test_format_from_extension(out: str | None, fmt: str | None, want: str) -> None:
    assert guess_format(out, fmt) == want  # type: ignore[arg-type]


def test_write_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write(frame(), None, str(target))
    assert json.loads(target.read_text())[0]["user"].startswith("evil")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_stdout_target() -> None:
    buf = io.BytesIO()
    assert write(frame(), "ndjson", "-", stdout=buf) == "stdout"
    assert json.loads(buf.getvalue())["tags"] == ["a", "b"]


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown format"):
        format_bytes(frame(), "xml", None)  # type: ignore[arg-type]


def test_devices_and_pipes_are_written_in_place_not_replaced(tmp_path: Path) -> None:
    # A FIFO stands in for /dev/null or /dev/stdout: a rename over it would replace the
    # node with a regular file (as once happened to this machine's /dev/null).
    import os
    import stat
    import threading

    from capture.output import atomic_write_bytes, atomic_write_parquet

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    for write_it in (lambda: atomic_write_bytes(fifo, b"hello"), lambda: atomic_write_parquet(frame(), fifo)):
        reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
        reader.start()
        write_it()
        reader.join(timeout=10)
        assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert got[0] == b"hello" and got[1].startswith(b"PAR1")
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]
