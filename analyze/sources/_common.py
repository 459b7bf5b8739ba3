"""Shared plumbing of the log sources: line framing, the ``Scan`` result, record conformance.

Every source module turns one or more files into a ``Scan``: connection records in
``capture.schema.SCHEMA``, rejected lines (``source``, ``lineno``, ``line``), a count of
lines deliberately skipped, and human notes (assumed year / zone, truncated gzip, ...).
"""

from __future__ import annotations

import atexit
import datetime as dt
import codecs
import gzip
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from capture.errors import InputError
from capture.schema import SCHEMA

REJECTS_SCHEMA: Final = pl.Schema({"source": pl.String, "lineno": pl.UInt32, "line": pl.String})
"""Lines a scanner could not read: file, 1-based line number, text."""

IP_RE: Final = r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?)"
"""An IPv4 or IPv6 literal (optionally with a zone), as logs print them.

Patterns here spell classes in ASCII (``[0-9]``, ``[^ ]``) rather than ``\\d`` / ``\\S``: in the
Rust regex crate those are Unicode classes whose large automata make capture extraction
several times slower.
"""

MAX_EPOCH_S: Final = 253_402_300_800
"""9999-12-31 24:00:00 UTC as Unix seconds: times from 1970 up to here are dates we keep."""


def in_range(ts: pl.Expr) -> pl.Expr:
    """True where ``ts`` (a UTC datetime) lies in 1970..9999, the years a log line can have.

    A time outside them (or one that could not be parsed) makes its line a reject.
    """
    low = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    high = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    bounds = (pl.lit(low).dt.cast_time_unit("us"), pl.lit(high).dt.cast_time_unit("us"))
    return ts.is_between(*bounds).fill_null(False)


def from_epoch_seconds(seconds: pl.Expr) -> pl.Expr:
    """A UTC datetime from Unix seconds (float), null outside 1970..9999 (never an overflow)."""
    ok = seconds.is_between(0, MAX_EPOCH_S - 1)
    micros = (pl.when(ok).then(seconds) * 1_000_000).round().cast(pl.Int64, strict=False)
    return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")


_CHUNK: Final = 1 << 24
MAX_LINE: Final = 1 << 20
"""Longest line kept whole (bytes); longer ones are cut here, become rejects and a note,
so a hostile 1 GB line costs neither its size in memory nor a crash."""
_WINDOW: Final = MAX_LINE // 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """What a source module makes of its files; nothing is read until collected."""

    records: pl.LazyFrame
    """Connection records in ``SCHEMA``, one per connection (auth.log) or request/flow."""
    rejects: pl.LazyFrame
    """Lines that match no known template, in ``REJECTS_SCHEMA``."""
    skipped: pl.LazyFrame
    """One row per file: ``source`` and ``skipped`` (lines of no interest, e.g. other daemons)."""
    notes: tuple[str, ...] = field(default=())
    """Assumptions and repairs to print on stderr (assumed zone, truncated gzip, ...)."""


def empty_scan(notes: Iterable[str] = ()) -> Scan:
    """A ``Scan`` with no rows, for empty inputs."""
    return Scan(
        records=SCHEMA.to_frame().lazy(),
        rejects=REJECTS_SCHEMA.to_frame().lazy(),
        skipped=pl.LazyFrame(schema={"source": pl.String, "skipped": pl.UInt32}),
        notes=tuple(notes),
    )


def concat_scans(scans: Sequence[Scan]) -> Scan:
    """One ``Scan`` out of several (several files or types)."""
    if not scans:
        return empty_scan()
    return Scan(
        records=pl.concat([s.records for s in scans], how="vertical"),
        rejects=pl.concat([s.rejects for s in scans], how="vertical"),
        skipped=pl.concat([s.skipped for s in scans], how="vertical"),
        notes=tuple(n for s in scans for n in s.notes),
    )


def scan_each(
    paths: Sequence[Path], scan_one: Callable[[Path], tuple[Scan, list[str]]]
) -> Scan:
    """One ``Scan`` of several files read one by one (``scan_one`` returns a file's scan and
    its notes)."""
    if not paths:
        return empty_scan()
    results = [scan_one(Path(p)) for p in paths]
    merged = concat_scans([s for s, _ in results])
    notes = tuple(n for _, ns in results for n in ns)
    return Scan(records=merged.records, rejects=merged.rejects, skipped=merged.skipped, notes=notes)


def header_skips(framed: pl.LazyFrame, path: Path) -> pl.LazyFrame:
    """``source``, ``skipped``: the header (``is_header``) and blank lines of one file."""
    return framed.select(
        pl.lit(str(path)).alias("source"),
        (pl.col("is_header") | (pl.col("line").str.strip_chars() == ""))
        .sum()
        .cast(pl.UInt32)
        .alias("skipped"),
    )


def conform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Select ``SCHEMA``'s columns in order, casting those present and null-filling the rest."""
    have = set(lf.collect_schema().names())
    return lf.select(
        [
            pl.col(name).cast(dtype) if name in have else pl.lit(None, dtype).alias(name)
            for name, dtype in SCHEMA.items()
        ]
    )


def origin(kind: str) -> dict[str, pl.Expr]:
    """``conn_id`` (``kind:file:line``), ``origin`` (``[file:line]``) and ``evidence``.

    The id is stable across runs on the same file; rows are keyed by their first line.
    """
    where = pl.concat_str(pl.col("source"), pl.lit(":"), pl.col("lineno").cast(pl.String))
    return {
        "conn_id": pl.concat_str(pl.lit(f"{kind}:"), where),
        "origin": pl.concat_list(where),
        "evidence": pl.concat_list(pl.lit(kind)),
    }


def rejects_of(lf: pl.LazyFrame) -> pl.LazyFrame:
    """``lf`` reduced to the rejects columns."""
    return lf.select(
        pl.col("source").cast(pl.String),
        pl.col("lineno").cast(pl.UInt32),
        pl.col("line").cast(pl.String),
    )


def skipped_count(lf: pl.LazyFrame, source: str) -> pl.LazyFrame:
    """One row: ``source`` and how many rows of ``lf`` there are."""
    return lf.select(pl.lit(source).alias("source"), pl.len().cast(pl.UInt32).alias("skipped"))


# --- reading lines -------------------------------------------------------------------------

_TMPDIR: list[Path] = []


def _scratch() -> Path:
    """A private temporary folder removed at exit (repaired copies of odd inputs)."""
    if not _TMPDIR:
        path = Path(tempfile.mkdtemp(prefix="egresslens-logs-"))
        atexit.register(shutil.rmtree, path, True)
        _TMPDIR.append(path)
    return _TMPDIR[0]


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _has_long_line(chunk: bytes) -> bool:
    """Whether ``chunk`` holds a stretch of ``_WINDOW`` bytes without a newline.

    Looks once per ``_WINDOW`` bytes for the next newline (a few hundred bytes away in a
    real log), so it costs almost nothing; every line of ``MAX_LINE`` bytes or more covers
    one of the windows it checks.
    """
    return any(chunk.find(b"\n", p, p + _WINDOW) < 0 for p in range(0, len(chunk) - _WINDOW + 1, _WINDOW))


def _plain_is_readable(path: Path) -> bool:
    """True when the file decodes as UTF-8 and has no line near ``MAX_LINE`` bytes long
    (checked in large chunks, ASCII fast path)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if _has_long_line(chunk):
                return False
            if chunk.isascii():
                continue
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


class _LineCutter:
    """Streams text through, cutting every line to ``MAX_LINE`` characters."""

    def __init__(self) -> None:
        self.run = 0  # characters of the current line written so far
        self.lineno = 1
        self.cut: list[int] = []

    def __call__(self, text: str) -> str:
        if self.run + len(text) <= MAX_LINE and "\n" not in text:
            self.run += len(text)
            return text
        out = []
        for i, piece in enumerate(text.split("\n")):
            if i:
                out.append("\n")
                self.lineno += 1
                self.run = 0
            room = MAX_LINE - self.run
            if len(piece) > room:
                if room > 0 or not self.cut or self.cut[-1] != self.lineno:
                    if not self.cut or self.cut[-1] != self.lineno:
                        self.cut.append(self.lineno)
                piece = piece[: max(room, 0)]
            self.run += len(piece)
            out.append(piece)
        return "".join(out)


def _repair(path: Path, gz: bool) -> tuple[Path, list[str]]:
    """Stream ``path`` (gzip or not) into a UTF-8 copy; undecodable bytes become ``\\xNN``.

    A gzip file cut short gives the lines before the cut and a note.
    """
    notes: list[str] = []
    target = _scratch() / f"{len(list(_scratch().iterdir()))}-{path.name}.txt"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
    bad = False
    opener = gzip.open if gz else open
    cutter = _LineCutter()
    with opener(path, "rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        try:
            # read1: a gzip stream cut short still yields what came before the cut.
            while chunk := (src.read1(1 << 18) if gz else src.read(_CHUNK)):
                text = decoder.decode(chunk)
                bad = bad or "\\x" in text and not chunk.isascii()
                dst.write(cutter(text))
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            notes.append(f"{path}: gzip stream cut short ({exc}); read the lines before the cut")
        dst.write(cutter(decoder.decode(b"", final=True)))
    if bad:
        notes.append(f"{path}: not valid UTF-8; undecodable bytes kept as \\xNN escapes")
    if cutter.cut:
        shown = ", ".join(str(n) for n in cutter.cut[:5]) + (" ..." if len(cutter.cut) > 5 else "")
        notes.append(
            f"{path}: {len(cutter.cut):,} line(s) longer than {MAX_LINE:,} bytes cut to that length "
            f"(line {shown})"
        )
    return target, notes


def scan_lines(path: Path) -> tuple[pl.LazyFrame, list[str]]:
    """Lines of ``path`` as ``source``, ``lineno`` (1-based) and ``line``, plus notes.

    Plain UTF-8 files stream straight from disk.  gzip files and files that are not valid
    UTF-8 are first copied into a repaired temporary file (bounded memory), so that a
    stray byte or a cut-short download never stops the read.

    Raises:
        InputError: the file does not exist or cannot be read.
    """
    try:
        gz = _is_gzip(path)
        if gz or not _plain_is_readable(path):
            readable, notes = _repair(path, gz)
        else:
            readable, notes = path, []
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lf = pl.scan_lines(readable, row_index_name="lineno", row_index_offset=1).select(
        pl.lit(str(path)).alias("source"), pl.col("lineno"), pl.col("line")
    )
    return lf, notes


def head_lines(path: Path, n: int = 20) -> list[str]:
    """The first ``n`` non-empty lines of ``path`` (gzip or not), for sniffing the format."""
    try:
        opener = gzip.open if _is_gzip(path) else open
        out: list[str] = []
        with opener(path, "rb") as fh:
            while len(out) < n:
                raw = fh.readline(4096)  # bounded: a hostile line is not read whole
                if not raw:
                    break
                if not raw.endswith(b"\n"):  # skip the rest of a long line
                    while (more := fh.readline(1 << 16)) and not more.endswith(b"\n"):
                        pass
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                if text.strip():
                    out.append(text)
        return out
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return out
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


_ROTATED = re.compile(r"^(?P<base>.+?)(?:[.-](?P<n>\d+))?(?:\.gz)?$")


def chronological(paths: Sequence[Path]) -> list[Path]:
    """Order a rotated set oldest first: ``auth.log.2.gz``, ``auth.log.1``, ``auth.log``.

    logrotate numbers older files higher; date-suffixed sets (``secure-20260101``) sort by
    their date.  Files of different bases keep their relative order.
    """

    def key(item: tuple[int, Path]) -> tuple[int, str, int, int, int]:
        index, path = item
        m = _ROTATED.match(path.name)
        assert m is not None  # the pattern matches any name
        n = m.group("n")
        if n is None:
            rank = (1, 0)  # the live file is the newest
        elif len(n) >= 8:
            rank = (0, int(n))  # dateext: a larger date is newer
        else:
            rank = (0, -int(n))  # logrotate: a larger number is older
        first = min(i for i, p in enumerate(paths) if _base(p) == _base(path))
        return (first, _base(path), *rank, index)

    return [p for _, p in sorted(enumerate(paths), key=key)]


def _base(path: Path) -> str:
    m = _ROTATED.match(path.name)
    assert m is not None
    return str(path.parent / m.group("base"))


def header_field(names: pl.Expr, values: pl.Expr, name: str) -> pl.Expr:
    """The value under column ``name`` of a row, where ``names`` is the row's header list.

    For formats that declare their columns in header lines that may change mid-file
    (W3C ``#Fields:``, Zeek ``#fields``): each row carries the last header seen.
    """
    index = names.list.eval(pl.element() == name).list.arg_max()
    return pl.when(names.list.contains(name)).then(values.list.get(index, null_on_oob=True))


def with_header(lines: pl.LazyFrame, marker: str, separator: str) -> pl.LazyFrame:
    """Add ``names`` (the last ``marker`` header's field list) and ``is_header`` to each line."""
    header = pl.col("line").str.starts_with(marker)
    return lines.with_columns(
        is_header=pl.col("line").str.starts_with("#"),
        names=pl.when(header)
        .then(pl.col("line").str.strip_prefix(marker).str.strip_chars().str.split(separator))
        .forward_fill(),
    )


def lookup(expr: pl.Expr, table: Mapping[object, object], dtype: pl.DataType) -> pl.Expr:
    """``expr`` mapped through ``table`` (others -> null), as a when/then chain.

    Used on per-line columns instead of ``replace`` / ``replace_strict``, which in polars
    2.1 run outside the streaming engine and so hold the whole input in memory.
    """
    chain: pl.Expr | None = None
    for key, value in table.items():
        cond = expr == key
        chain = (pl.when(cond) if chain is None else chain.when(cond)).then(  # type: ignore[attr-defined]
            pl.lit(value, dtype)
        )
    return pl.lit(None, dtype) if chain is None else chain.otherwise(pl.lit(None, dtype))


def enum_lookup(expr: pl.Expr, table: Mapping[str, object], dtype: pl.DataType) -> pl.Expr:
    """String ``expr`` mapped through ``table`` (others -> null), streaming-safe and cheap.

    The string is cast once to an Enum of the keys; the chain then tests small integers, one
    branch per distinct *value* (``lookup`` compares strings once per key; ``replace`` and
    ``gather`` leave the streaming engine and hold the whole input in memory).
    """
    keys = list(table)
    index = expr.cast(pl.Enum(keys), strict=False).to_physical()
    by_value: dict[object, list[int]] = {}
    for i, key in enumerate(keys):
        by_value.setdefault(table[key], []).append(i)
    chain: pl.Expr | None = None
    for value, indices in by_value.items():
        cond = index == indices[0] if len(indices) == 1 else index.is_in(indices)
        chain = (pl.when(cond) if chain is None else chain.when(cond)).then(  # type: ignore[attr-defined]
            pl.lit(value, dtype)
        )
    return pl.lit(None, dtype) if chain is None else chain.otherwise(pl.lit(None, dtype))
