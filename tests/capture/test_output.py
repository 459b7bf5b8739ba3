"""capture.output: the one writer for every command that outputs rows."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import polars as pl
import pytest

from capture.errors import UsageError
from capture.schema import SCHEMA
from capture.output import format_bytes, guess_format, render_table, resolve, write


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


# --- the -o rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "fmt", "kind", "want"),
    [
        (None, None, "stdout", "table"), ("-", "json", "stdout", "json"), ("x.ndjson", None, "file", "ndjson"),
        ("x.JSON", None, "file", "json"), ("x.parquet", None, "file", "parquet"), ("x.txt", "table", "file", "table"),
        ("x.csv", "json", "file", "json"), ("recs/", None, "folder", "parquet"),
    ],
)  # fmt: skip
def test_the_o_rule(out: str | None, fmt: str | None, kind: str, want: str) -> None:
    target = resolve(out, fmt)
    assert (target.kind, target.fmt) == (kind, want)


def test_an_existing_folder_is_a_folder_output(tmp_path: Path) -> None:
    assert resolve(str(tmp_path), None).kind == "folder"
    with pytest.raises(UsageError, match="predictions go to a file, not a folder"):
        resolve(str(tmp_path), None, folder=None, what="predictions")
    with pytest.raises(UsageError, match="written as Parquet files; drop --format json"):
        resolve(str(tmp_path), "json")


@pytest.mark.parametrize(
    ("out", "fmt", "message"),
    [
        ("json", None, "use --format json"),  # the az habit: -o json
        ("x.xlsx", None, r"cannot tell the format from \.xlsx; use one of \.json, .*or give --format"),
        ("report", None, "a name without extension"),
        ("x.html", None, "does not write html"),
        ("x.csv", "html", "--format html: not a format of this command"),
    ],
)  # fmt: skip
def test_the_o_rule_refuses_what_it_cannot_tell(out: str, fmt: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve(out, fmt)


class _Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_binary_formats_refuse_a_terminal_but_not_a_pipe() -> None:
    with pytest.raises(UsageError, match="refusing to write binary data to a terminal"):
        resolve(None, "parquet", stdout=_Terminal())
    assert resolve(None, "parquet", stdout=io.BytesIO()).fmt == "parquet"
    assert resolve(None, "json", stdout=_Terminal()).fmt == "json"


# --- CSV formula guard ----------------------------------------------------------------------


def test_csv_cells_that_a_spreadsheet_would_run_get_a_quote() -> None:
    cells = ["=cmd|' /C calc'!A0", "+1+2", "-x", "@SUM(A1)", "\tTAB", "\rCR", "-5", "+1.5e3", "3.25",
             "plain", "a=b", None]  # fmt: skip
    df = pl.DataFrame({"ua": cells, "n": list(range(-6, 6)), "tags": [[c or "x", "y"] for c in cells]})
    back = pl.read_csv(format_bytes(df, "csv", None), infer_schema=False)
    assert back["ua"].to_list() == [
        "'=cmd|' /C calc'!A0", "'+1+2", "'-x", "'@SUM(A1)", "'\tTAB", "'\rCR", "-5", "+1.5e3", "3.25",
        "plain", "a=b", None,
    ]  # fmt: skip
    assert back["n"].to_list()[:2] == ["-6", "-5"]  # numbers are numbers, never quoted
    assert back["tags"][0] == "'=cmd|' /C calc'!A0;y"  # a joined list is one cell, guarded too


# --- files: modes, short writes -------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_modes_the_umask_gives_whatever_the_format(tmp_path: Path, umask: int, mode: int) -> None:
    import os

    old = os.umask(umask)
    try:
        for name in ("t.json", "t.csv", "t.parquet", "t.txt"):
            write(frame(), "table" if name.endswith(".txt") else None, str(tmp_path / name))
        in_folder = Path(write(SCHEMA.to_frame(), None, f"{tmp_path / 'rec'}/"))
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir() if p.is_file()}
    assert modes == dict.fromkeys(("t.json", "t.csv", "t.parquet", "t.txt"), mode)
    assert in_folder.parent == tmp_path / "rec" and in_folder.stat().st_mode & 0o777 == mode


class _ShortWrites(io.BytesIO):
    """A pipe that takes at most 5 bytes per write, as a buffered stdout does when the reader is slow."""

    def write(self, data) -> int:  # type: ignore[no-untyped-def,override]
        return super().write(bytes(data[:5]))


def test_short_writes_are_completed() -> None:
    from capture.output import write_all

    sink = _ShortWrites()
    write_all(sink, b"0123456789abcdefghij!")
    assert sink.getvalue() == b"0123456789abcdefghij!"


def test_a_reader_gone_mid_write_is_an_error_not_a_clean_short_output() -> None:
    from capture.output import write_all

    class Closed(_ShortWrites):
        calls = 0

        def write(self, data) -> int:  # type: ignore[no-untyped-def,override]
            self.calls += 1
            if self.calls > 1:
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(data)

    with pytest.raises(BrokenPipeError):
        write_all(Closed(), b"0123456789")
