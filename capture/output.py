"""Writing rows out: terminal table, JSON, NDJSON, CSV, Parquet and records folders.

One renderer for every command that outputs rows (``capture read``, ``logs read``,
``predict``, ``analyze``): the CLI parses ``--format`` / ``-o`` and calls ``write``.
Files are written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, Final, Literal

import polars as pl

from capture.errors import UsageError
from capture.schema import SCHEMA

Format = Literal["table", "json", "ndjson", "csv", "parquet"]
FORMATS: Final[tuple[Format, ...]] = ("table", "json", "ndjson", "csv", "parquet")

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
    import stat

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder + rename
    (a device or pipe such as ``/dev/null`` is written in place)."""
    if is_special(path):
        with path.open("wb") as fh:
            fh.write(data)
        return
    check_overwrite(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet to ``path`` atomically (a device or pipe in place)."""
    if is_special(path):
        with path.open("wb") as fh:
            df.write_parquet(fh)
        return
    check_overwrite(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_records_folder(df: pl.DataFrame, folder: Path, stem: str = "records") -> Path:
    """Add ``df`` (record schema) to the records folder ``folder`` as one new Parquet file."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"{stem}-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    atomic_write_parquet(df.select(SCHEMA.names()).cast(dict(SCHEMA)), path)
    return path


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
        return flatten(df).write_csv().encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        df.write_parquet(buf)
        return buf.getvalue()
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def guess_format(out: str | None, fmt: Format | None) -> Format:
    """``--format`` if given, else from the extension of ``-o``, else ``table``."""
    if fmt:
        return fmt
    if out and out != "-":
        suffix = Path(out).suffix.lower().lstrip(".")
        if suffix in ("json", "ndjson", "csv", "parquet"):
            return suffix  # type: ignore[return-value]
        if suffix == "jsonl":
            return "ndjson"
    return "table"


def write(
    df: pl.DataFrame,
    fmt: Format | None,
    out: str | None,
    *,
    table_columns: Sequence[str] | None = None,
    stdout: IO[bytes] | None = None,
) -> str:
    """Write ``df`` to ``out`` (a file, ``-``/None for stdout, or ``DIR/`` for a records folder).

    Returns:
        Where the rows went, for the status line.
    """
    if out and (out.endswith(os.sep) or Path(out).is_dir()):
        path = write_records_folder(df, Path(out))
        return str(path)
    resolved = guess_format(out, fmt)
    if resolved == "parquet" and out and out != "-":
        atomic_write_parquet(df, Path(out))
        return out
    data = format_bytes(df, resolved, table_columns)
    if not out or out == "-":
        target = stdout or sys.stdout.buffer
        target.write(data)
        target.flush()
        return "stdout"
    atomic_write_bytes(Path(out), data)
    return out
