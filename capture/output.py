"""Writing out: terminal table, JSON, NDJSON, CSV, Parquet, HTML bytes and records folders.

The one writer of every command (STYLE.md lesson 19), so that the guards live in one place:

* **The ``-o`` rule** (``resolve``): the format comes from ``--format``, else from the
  extension of ``-o`` (``.json``, ``.ndjson``/``.jsonl``, ``.csv``, ``.parquet``, ``.html``),
  else the table; an unknown extension or a bare word such as ``json`` is a usage error
  that suggests ``--format``; ``-o DIR/`` (or an existing folder) is a folder; ``-`` or no
  ``-o`` is stdout, which refuses binary formats when it is a terminal.
* **CSV cells** a spreadsheet would run as a formula (a leading ``=``, ``+``, ``-``, ``@``,
  tab or CR) get a leading ``'``, unless the cell is a plain number.
* **Files** are written under a temporary name in the same folder and renamed into place,
  so a reader never sees half a file; an existing file is replaced only with ``--force``;
  new files get the modes the umask gives (like ``open``), whatever the format.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from dataclasses import dataclass
from typing import IO, Any, Final, Literal

import polars as pl

from capture.errors import UsageError
from capture.schema import SCHEMA

Format = Literal["table", "json", "ndjson", "csv", "parquet", "html"]
FORMATS: Final[tuple[Format, ...]] = ("table", "json", "ndjson", "csv", "parquet")
"""The formats of commands that output rows (``html`` is only ``analyze``'s)."""
EXTENSIONS: Final[dict[str, Format]] = {
    ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv",
    ".parquet": "parquet", ".html": "html",
}  # fmt: skip
"""``-o`` extensions and the format each one means."""
BINARY: Final = frozenset({"parquet"})
"""Formats that are never written to a terminal."""

TABLE_COLUMNS: Final = (
    "ts", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "service", "state",
    "orig_pkts", "resp_pkts", "ssh_client", "http_method", "http_host", "http_path",
    "http_status",
)  # fmt: skip


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def to_json_rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: times ISO 8601 UTC with ``Z``, durations in seconds."""
    return [_jsonable(row) for row in df.iter_rows(named=True)]


def flatten(df: pl.DataFrame) -> pl.DataFrame:
    """CSV-ready columns: lists joined with ';', times ISO 8601 UTC, durations in seconds,
    enums as text, structs as JSON."""
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List):
            exprs.append(col.cast(pl.List(pl.String)).list.join(";"))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
        elif isinstance(dtype, pl.Duration):
            exprs.append((col.dt.total_microseconds() / 1_000_000).round(6).alias(name))
        elif isinstance(dtype, (pl.Enum, pl.Categorical)):
            exprs.append(col.cast(pl.String))
        elif isinstance(dtype, pl.Struct):
            exprs.append(col.struct.json_encode())
        else:
            exprs.append(col)
    return df.select(exprs)


def escape_control(text: str) -> str:
    """Input text is attacker-controlled (user names, paths): control characters and
    escape sequences never reach the analyst's terminal."""
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
        return text.encode("unicode_escape").decode("ascii")
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value)
    text = escape_control(str(value))
    return text if len(text) <= 48 else text[:45] + "..."


def render_table(df: pl.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A plain aligned text table of ``columns`` (those present), for terminals."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    rows = [[_cell(v) for v in row] for row in df.select(cols).iter_rows()]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


_FORCE: ContextVar[bool] = ContextVar("egresslens_force", default=False)


@contextmanager
def overwriting(force: bool) -> Iterator[None]:
    """Within this block, outputs may replace existing files only when ``force``."""
    token = _FORCE.set(force)
    try:
        yield
    finally:
        _FORCE.reset(token)


def is_special(path: Path) -> bool:
    """A device, FIFO or socket (``/dev/null``, ``/dev/stdout``, a named pipe): written to
    in place, never replaced by a renamed file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_overwrite(path: Path) -> None:
    """Refuse to replace an existing output file unless ``--force`` was given.

    Raises:
        UsageError: ``path`` is an existing regular file.
    """
    if path.exists() and not is_special(path) and not _FORCE.get():
        raise UsageError(f"{path}: exists; use --force to overwrite it")


def _temporary(path: Path) -> Path:
    """A new, empty, private-to-this-write file beside ``path``, created with the modes
    the umask gives (``mkstemp`` would make it 0600 whatever the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; rename it over ``path`` when the
    block ends cleanly, remove it otherwise.

    Raises:
        UsageError: ``path`` exists and ``--force`` was not given.
    """
    check_overwrite(path)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder + rename
    (a device or pipe such as ``/dev/null`` is written in place)."""
    if is_special(path):
        with path.open("wb") as fh:
            fh.write(data)
        return
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fh.write(data)


def atomic_write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet to ``path`` atomically (a device or pipe in place)."""
    if is_special(path):
        with path.open("wb") as fh:
            df.write_parquet(fh)
        return
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)


def sink_parquet(lf: pl.LazyFrame, path: Path, *also: pl.LazyFrame) -> list[pl.DataFrame]:
    """Stream ``lf`` to the Parquet file ``path`` atomically, without building it in memory;
    the frames ``also`` are collected in the same pass and returned."""
    if is_special(path):
        return _sink_special(lf, path, also)
    with atomic_path(path) as tmp:
        done = pl.collect_all([lf.sink_parquet(tmp, lazy=True), *also])
    return list(done[1:])


def _sink_special(lf: pl.LazyFrame, path: Path, also: Sequence[pl.LazyFrame]) -> list[pl.DataFrame]:
    frames = pl.collect_all([lf, *also])
    with path.open("wb") as fh:
        frames[0].write_parquet(fh)
    return list(frames[1:])


def records_file_name(folder: Path, stem: str = "records") -> Path:
    """A new file name in a records folder: names sort in the order they were written."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return folder / f"{stem}-{stamp}-{uuid.uuid4().hex[:8]}.parquet"


def conform_records(lf: pl.LazyFrame | pl.DataFrame) -> Any:
    """Records in the record schema's column order and types (what a records folder holds)."""
    return lf.select(SCHEMA.names()).cast(dict(SCHEMA))


def write_records_folder(df: pl.DataFrame, folder: Path, stem: str = "records") -> Path:
    """Add ``df`` (record schema) to the records folder ``folder`` as one new Parquet file."""
    path = records_file_name(folder, stem)
    atomic_write_parquet(conform_records(df), path)
    return path


_PLAIN_NUMBER: Final = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def guard_csv(df: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would evaluate as a formula (a leading ``=``, ``+``, ``-``,
    ``@``, tab or CR) get a leading ``'``; a plain number (``-5``, ``+1.5e3``) stays as it is."""
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            # The first character decides for almost every cell; only those few are then
            # checked for being a plain number (cheaper than a regex over every cell).
            starts = col.str.head(1).is_in(_FORMULA_START)
            risky = pl.when(starts).then(~col.str.contains(_PLAIN_NUMBER)).otherwise(False)
            exprs.append(pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name))
        else:
            exprs.append(col)
    return df.select(exprs)


def format_bytes(df: pl.DataFrame, fmt: Format, table_columns: Sequence[str] | None) -> bytes:
    """Serialize ``df`` in ``fmt``."""
    if fmt == "table":
        return render_table(df, table_columns).encode()
    if fmt == "json":
        return (json.dumps(to_json_rows(df), indent=2, ensure_ascii=False) + "\n").encode()
    if fmt == "ndjson":
        rows = to_json_rows(df)
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if fmt == "csv":
        return guard_csv(flatten(df)).write_csv().encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        df.write_parquet(buf)
        return buf.getvalue()
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --- the -o rule ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how a command's output goes, as ``--format`` and ``-o`` decided."""

    kind: Literal["stdout", "file", "folder"]
    fmt: Format
    """The format (``parquet`` for a folder)."""
    path: Path | None = None
    """The file or folder; None for stdout."""

    @property
    def where(self) -> str:
        """For status lines: the path, or ``stdout``."""
        return str(self.path) if self.path is not None else "stdout"


def _is_terminal(stream: IO[bytes] | None) -> bool:
    try:
        return bool((stream or sys.stdout).isatty())
    except (AttributeError, ValueError):
        return False


def resolve(
    out: str | None,
    fmt: str | None,
    *,
    formats: Sequence[str] = FORMATS,
    folder: str | None = "a records folder",
    what: str = "the rows",
    stdout: IO[bytes] | None = None,
) -> Target:
    """Apply the ``-o`` rule.

    Args:
        out: the ``-o`` value: None or ``-`` for stdout, ``DIR/`` or an existing folder for
            a folder, else a file.
        fmt: the ``--format`` value, if given.
        formats: the formats this command writes.
        folder: what a folder output is for this command (for messages); None when the
            command does not write folders.
        what: what the command writes, for messages (``predictions``).
        stdout: the stream standing for stdout (to tell whether it is a terminal).

    Raises:
        UsageError: a format the command does not write, an ``-o`` whose extension says
            nothing (or a bare format name), a folder where none is written, or a binary
            format to a terminal.
    """
    choices = ", ".join(formats)
    if fmt is not None and fmt not in formats:
        raise UsageError(f"--format {fmt}: not a format of this command; choose one of {choices}")
    if out is None or out == "-":
        chosen = fmt or "table"
        if chosen in BINARY and _is_terminal(stdout):
            raise UsageError(
                f"--format {chosen}: refusing to write binary data to a terminal; "
                f"give -o FILE.{chosen} or redirect stdout"
            )
        return Target("stdout", chosen)  # type: ignore[arg-type]
    path = Path(out)
    if out.endswith(("/", os.sep)) or path.is_dir():
        if folder is None:
            raise UsageError(f"-o {out}: {what} go to a file, not a folder (-o FILE.json, ...)")
        if fmt not in (None, "parquet"):
            raise UsageError(f"-o {out}: {folder} is written as Parquet files; drop --format {fmt}")
        return Target("folder", "parquet", path)
    if fmt is not None:
        return Target("file", fmt, path)  # type: ignore[arg-type]
    if is_special(path):  # /dev/stdout, a named pipe: like stdout
        return Target("file", "table", path)
    ext = path.suffix.lower()
    found = EXTENSIONS.get(ext)
    if found is None:
        if not ext and out.lower() in (*FORMATS, "html", "jsonl", "yaml", "tsv", "text"):
            raise UsageError(
                f"-o {out}: a file named {out!r}? to choose the format, use --format "
                f"{out.lower()} (and -o FILE to write to a file)"
            )
        known = ", ".join(e for e, f in EXTENSIONS.items() if f in formats)
        raise UsageError(
            f"-o {out}: cannot tell the format from {ext or 'a name without extension'}; "
            f"use one of {known}, or give --format ({choices})"
        )
    if found not in formats:
        raise UsageError(f"-o {out}: this command does not write {found}; choose one of {choices}")
    return Target("file", found, path)


def guess_format(out: str | None, fmt: Format | None) -> Format:
    """The format the ``-o`` rule gives (``parquet`` for a folder)."""
    return resolve(out, fmt, formats=(*FORMATS, "html")).fmt


def write_all(stream: IO[bytes], data: bytes) -> None:
    """Write all of ``data`` and flush.

    A buffered stream whose pipe reader goes away mid-write reports a short count instead
    of an error; writing the rest then raises ``BrokenPipeError``, which the CLI turns into
    a quiet exit, so ``| head`` never looks like a clean, complete run.
    """
    view = memoryview(data)
    while view:
        n = stream.write(view)
        view = view[n if n is not None else 0 :]
    stream.flush()


def emit(target: Target, data: bytes, *, stdout: IO[bytes] | None = None) -> str:
    """Write ready bytes to ``target`` (a file atomically, or stdout).

    Returns:
        Where they went, for the status line.
    """
    if target.kind == "folder":
        raise UsageError(f"-o {target.path}/: this output is one file, not a folder")
    if target.path is None:
        write_all(stdout or sys.stdout.buffer, data)
        return "stdout"
    atomic_write_bytes(target.path, data)
    return str(target.path)


def write_to(
    df: pl.DataFrame,
    target: Target,
    *,
    table_columns: Sequence[str] | None = None,
    stdout: IO[bytes] | None = None,
    stem: str = "records",
) -> str:
    """Write ``df`` to a resolved ``target``; returns where it went."""
    if target.kind == "folder":
        assert target.path is not None
        return str(write_records_folder(df, target.path, stem))
    if target.fmt == "parquet" and target.path is not None:
        atomic_write_parquet(df, target.path)
        return str(target.path)
    return emit(target, format_bytes(df, target.fmt, table_columns), stdout=stdout)


def write_lazy(
    lf: pl.LazyFrame,
    target: Target,
    *also: pl.LazyFrame,
    table_columns: Sequence[str] | None = None,
) -> tuple[str, int, list[pl.DataFrame]]:
    """Write the rows of ``lf`` to ``target``, collecting ``also`` in the same pass.

    Parquet files and records folders are streamed (memory stays bounded whatever the
    input size); other formats are built in memory first.

    Returns:
        Where the rows went, how many there were, and the frames ``also``.
    """
    if target.fmt == "parquet" and target.path is not None:
        folder = target.kind == "folder"
        path = records_file_name(target.path) if folder else target.path
        done = sink_parquet(conform_records(lf) if folder else lf, path, *also)
        return str(path), pl.scan_parquet(path).select(pl.len()).collect().item(), done
    frames = pl.collect_all([lf, *also])
    return write_to(frames[0], target, table_columns=table_columns), frames[0].height, list(frames[1:])


def write(
    df: pl.DataFrame,
    fmt: Format | None,
    out: str | None,
    *,
    table_columns: Sequence[str] | None = None,
    stdout: IO[bytes] | None = None,
    formats: Sequence[str] = FORMATS,
) -> str:
    """Write ``df`` to ``out`` by the ``-o`` rule (a file, ``-``/None for stdout, or
    ``DIR/`` for a records folder).

    Returns:
        Where the rows went, for the status line.

    Raises:
        UsageError: see ``resolve``; an existing file without ``--force``.
    """
    target = resolve(out, fmt, formats=formats, stdout=stdout)
    return write_to(df, target, table_columns=table_columns, stdout=stdout)
