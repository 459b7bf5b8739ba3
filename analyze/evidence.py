"""Evidence for ``analyze`` and ``logs read``: any mix of captures, records folders and logs.

Each input is listed with its sha256, size, time range and counts, so a second run can
prove it read the same bytes.  Inputs are only ever opened for reading.

How inputs are sorted out (``plan``):

* ``-`` is stdin, copied once to a private temporary file and named ``stdin`` in every
  message and ``origin``; what it holds (a capture, a log of any type, gzip or not) is
  told from its content.
* A file named on the command line is evidence: a capture, a records (``.parquet``) file,
  else a log (a log whose type cannot be told is an error for that file).
* A folder is walked (not hidden files, not recursive): a folder holding ``*.parquet``
  files is a records folder; in any other folder the captures and the logs whose type is
  detected are evidence, and the rest (READMEs, the inventory files given with
  ``--inventory``, JSON that is not a known log) is skipped and counted in one note.

One unreadable file does not stop the others: its error is kept (``Evidence.errors``) and
the rest is read, unless ``strict`` asks to stop at once.
"""

from __future__ import annotations

import atexit
import datetime as dt
import glob
import gzip
import hashlib
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from capture.errors import EgresslensError, InputError
from capture.pcapfile import is_capture
from capture.schema import SCHEMA

EvidenceKind = Literal["pcap", "records", "log"]

STDIN: str = "stdin"
"""The name stdin goes by in messages and ``origin`` (as ``capture read -`` names it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceFile:
    """One input file and what was read from it."""

    path: str
    kind: EvidenceKind
    """How it was read: a capture, a records file (Parquet) or a log."""
    log_type: str | None
    """The detected log type (``authlog``, ``nginx``...), for logs."""
    sha256: str
    size: int
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None
    records: int
    skipped: int
    """Lines or packets of no interest (other daemons, non-IP packets)."""
    rejects: int
    """Lines that could not be read (logs) or packets too short for their headers."""


@dataclass(slots=True)
class Evidence:
    """All records of all inputs, and the inputs themselves."""

    records: pl.DataFrame
    files: list[EvidenceFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Warnings and assumptions to show (truncated capture, assumed zone and year...)."""
    errors: list[str] = field(default_factory=list)
    """Inputs that could not be read at all."""


@dataclass(slots=True)
class Plan:
    """The inputs sorted out, before anything but their first bytes is read."""

    captures: list[Path] = field(default_factory=list)
    records: list[Path] = field(default_factory=list)
    """Records folders and single records files."""
    logs: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    """Files met in folders that are not evidence."""

    def skipped_note(self) -> str | None:
        """One note for every skipped file (None when there are none)."""
        if not self.skipped:
            return None
        names = ", ".join(p.name for p in self.skipped[:6]) + (", ..." if len(self.skipped) > 6 else "")
        return f"skipped {len(self.skipped)} file(s) that are not evidence ({names})"


# --- stdin ----------------------------------------------------------------------------------

_SPOOL: dict[str, Path] = {}


def spool_stdin(*, decompress: bool = False) -> Path:
    """stdin, copied once (in blocks) to a private temporary file that is removed at exit.

    Readers of logs and inventories need a file; a pipe can be read only once, so every
    ``-`` of one command is this same copy.  ``decompress`` undoes gzip (inventories; the
    capture and log readers undo it themselves and note a stream cut short).
    """
    key = "gunzip" if decompress else "raw"
    if key in _SPOOL:
        return _SPOOL[key]
    folder = Path(tempfile.mkdtemp(prefix="egresslens-stdin-"))
    atexit.register(shutil.rmtree, folder, True)
    target = folder / STDIN
    source = sys.stdin.buffer
    if "raw" in _SPOOL:  # stdin already consumed: read the first copy
        source = _SPOOL["raw"].open("rb")
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    if decompress:
        with target.open("rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        if gz:
            plain = folder / f"{STDIN}.plain"
            try:
                with gzip.open(target, "rb") as src, plain.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (OSError, EOFError) as exc:
                raise InputError(f"{STDIN}: gzip data is corrupt or cut short: {exc}") from exc
            target = plain
    _SPOOL[key] = target
    return target


def display(path: Path | str) -> str:
    """How a path is shown: the stdin copy is ``stdin``."""
    text = str(path)
    for spooled in _SPOOL.values():
        text = text.replace(str(spooled), STDIN)
    return text


def rename_stdin(frame: pl.LazyFrame | pl.DataFrame, *columns: str) -> pl.LazyFrame | pl.DataFrame:
    """Name the stdin copy ``stdin`` in ``columns`` (String or List(String)) of ``frame``."""
    if not _SPOOL:
        return frame
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    exprs = []
    for name in columns:
        if name not in schema:
            continue
        is_list = isinstance(schema[name], pl.List)
        expr = pl.element() if is_list else pl.col(name)
        for spooled in _SPOOL.values():
            expr = expr.str.replace(str(spooled), STDIN, literal=True)
        exprs.append(pl.col(name).list.eval(expr).alias(name) if is_list else expr.alias(name))
    return frame.with_columns(exprs) if exprs else frame


@contextmanager
def _stdin_from(path: Path) -> Iterator[None]:
    """Let the capture reader read the stdin copy as ``-``, so its records and ids are
    named ``stdin`` exactly as ``capture read -`` names them."""
    saved = sys.stdin
    with path.open("r", encoding="latin-1") as fh:
        sys.stdin = fh
        try:
            yield
        finally:
            sys.stdin = saved


# --- sorting inputs out ---------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_log(path: Path) -> bool:
    """Whether a file met in a folder is a log of a known type (or an empty file)."""
    from analyze.sources import detect_type

    try:
        detect_type(path)
    except EgresslensError:
        return False
    return True


def plan(paths: Sequence[str], *, exclude: Sequence[str] = ()) -> Plan:
    """Sort ``paths`` (files, folders, globs, ``-``) into captures, records, logs and
    skipped files.

    Args:
        paths: the evidence arguments.
        exclude: files never taken as evidence (the ``--inventory`` sources).

    Raises:
        InputError: a path that names nothing, or a glob that matches nothing.
    """
    skip = {Path(p).resolve() for p in exclude if p != "-"}
    out = Plan()
    for raw in paths:
        if raw == "-":
            _named(spool_stdin(), out)
            continue
        if any(ch in raw for ch in "*?["):
            hits = sorted(glob.glob(raw))
            if not hits:
                raise InputError(f"{raw}: no file matches")
            for hit in hits:
                _folder(Path(hit), out, skip) if Path(hit).is_dir() else _named(Path(hit), out)
            continue
        path = Path(raw)
        if path.is_dir():
            _folder(path, out, skip)
        elif path.exists():
            _named(path, out)
        else:
            raise InputError(f"{raw}: no such file or folder")
    return out


def _named(path: Path, out: Plan) -> None:
    if path.suffix == ".parquet":
        out.records.append(path)
    elif is_capture(path):
        out.captures.append(path)
    else:
        out.logs.append(path)


def _folder(folder: Path, out: Plan, skip: set[Path]) -> None:
    members = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    parquet = [p for p in members if p.suffix == ".parquet" and p.is_file()]
    if parquet:  # a records folder; its other files (a live capture's pcaps) hold the same
        out.records.append(folder)
        out.skipped.extend(p for p in members if p not in parquet)
        return
    for member in members:
        if not member.is_file() or member.resolve() in skip:
            out.skipped.append(member)
        elif is_capture(member):
            out.captures.append(member)
        elif _is_log(member):
            out.logs.append(member)
        else:
            out.skipped.append(member)


def expand(paths: Sequence[str]) -> list[Path]:
    """Files named by ``paths``: files as given, globs expanded, folders opened (their
    evidence files; records folders as their ``*.parquet``)."""
    p = plan(paths)
    files = [*p.captures, *p.logs]
    for r in p.records:
        files.extend(sorted(x for x in r.glob("*.parquet") if not x.name.startswith(".")) if r.is_dir() else [r])
    return sorted(files, key=lambda x: (str(x.parent), x.name)) if files else []


# --- reading --------------------------------------------------------------------------------


@dataclass(slots=True)
class LogInputs:
    """``logs read``'s inputs, read lazily: logs and records folders as one record table."""

    records: pl.LazyFrame
    rejects: pl.LazyFrame
    skipped: pl.LazyFrame
    notes: list[str] = field(default_factory=list)
    """The skipped-files note and the readers' notes (assumed year, a gzip cut short...)."""
    errors: list[str] = field(default_factory=list)
    """Inputs that could not be read."""
    read: int = 0
    """Inputs that could be read."""
    size: int = 0
    """Bytes of logs to read."""


def scan_log_inputs(
    paths: Sequence[str],
    *,
    log_type: str = "auto",
    log_format: str | None = None,
    field_map: str | None = None,
    year: int | None = None,
    tz: str = "UTC",
    observer: str | None = None,
    strict: bool = False,
) -> LogInputs:
    """Logs, folders of them and records folders (``-`` is stdin) as lazy records; a file
    whose type cannot be told or a records file that cannot be read is an error of its own
    (the first one is raised with ``strict``); captures met are skipped.

    Raises:
        InputError: a path that names nothing; with ``strict``, the first unreadable input.
    """
    from analyze.sources import REJECTS_SCHEMA, detect_type, read_logs
    from capture.records import read_records

    p = plan(paths)
    p.skipped.extend(p.captures)  # captures are analyze's or capture read's
    out = LogInputs(
        records=SCHEMA.to_frame().lazy(), rejects=pl.LazyFrame(schema=REJECTS_SCHEMA),
        skipped=pl.LazyFrame(schema={"source": pl.String, "skipped": pl.UInt32}),
    )  # fmt: skip
    if note := p.skipped_note():
        out.notes.append(note)
    if not (p.logs or p.records):
        out.errors.append(f"{', '.join(display(x) for x in paths)}: no logs or records found")
    logs = []
    for path in p.logs:
        try:
            if log_type == "auto":
                detect_type(path)
        except EgresslensError as exc:
            if strict:
                raise InputError(display(str(exc))) from exc
            out.errors.append(display(str(exc)))
            continue
        logs.append(path)
    frames = []
    for item in p.records:
        try:
            frames.append(read_records(item).lazy())
        except InputError as exc:
            if strict:
                raise
            out.errors.append(str(exc))
    if logs:
        result = read_logs(logs, type=log_type, log_format=log_format, field_map=field_map,  # type: ignore[arg-type]
                           year=year, tz=tz, observer=observer)  # fmt: skip
        out.notes.extend(display(n) for n in result.notes)
        out.records = rename_stdin(result.records, "conn_id", "origin")  # type: ignore[assignment]
        out.rejects = rename_stdin(result.rejects, "source")  # type: ignore[assignment]
        out.skipped = rename_stdin(result.skipped, "source")  # type: ignore[assignment]
        out.size = sum(path.stat().st_size for path in logs)
    if frames:
        out.records = pl.concat([out.records.select(SCHEMA.names()).cast(dict(SCHEMA)), *frames], how="vertical")
    out.read = len(logs) + len(frames)
    return out


def _time_range(records: pl.DataFrame) -> tuple[dt.datetime | None, dt.datetime | None]:
    if records.height == 0:
        return None, None
    return records["ts"].min(), records["ts"].max()  # type: ignore[return-value]


def load_evidence(
    paths: Sequence[str],
    *,
    observer: str | None = None,
    year: int | None = None,
    tz: str = "UTC",
    log_type: str = "auto",
    exclude: Sequence[str] = (),
    strict: bool = False,
) -> Evidence:
    """Read every input into records in ``SCHEMA``.

    Captures are read with the fast path; records folders and ``*.parquet`` files as
    records (a live capture's repeated rows collapse to the latest per ``conn_id``); logs
    by their type, detected from content unless ``log_type`` forces one (rotated sets are
    read together).

    Args:
        paths: captures, records folders, logs, folders and globs of them; ``-`` is stdin.
        observer, year, tz: as for ``logs read``.
        log_type: ``auto``, or the type of every log.
        exclude: files never taken as evidence (the inventory sources).
        strict: stop at the first file that cannot be read instead of going on.

    Raises:
        InputError: a path that names nothing; with ``strict``, the first unreadable file.
    """
    p = plan(paths, exclude=exclude)
    evidence = Evidence(records=SCHEMA.to_frame())
    if note := p.skipped_note():
        evidence.notes.append(note)
    if not (p.captures or p.records or p.logs):
        evidence.errors.append(f"{', '.join(display(x) for x in paths)}: no evidence (captures, records or logs) found")
    frames: list[pl.DataFrame] = []
    for path in p.captures:
        frames.extend(_read_capture(path, evidence, observer=observer, strict=strict))
    if p.records:
        frames.append(_read_parquet(p.records, evidence, strict=strict))
    if p.logs:
        frames.append(_read_logs(p.logs, evidence, observer=observer, year=year, tz=tz,
                                 log_type=log_type, strict=strict))  # fmt: skip
    frames = [f for f in frames if f.height]
    if frames:
        evidence.records = pl.concat(frames, how="vertical").sort("ts", maintain_order=True)
    return evidence


def _read_capture(path: Path, evidence: Evidence, *, observer: str | None, strict: bool) -> list[pl.DataFrame]:
    from capture.read import read_captures

    is_stdin = path in _SPOOL.values()
    if is_stdin:
        with _stdin_from(path):
            result = read_captures(["-"], observer=observer)
    else:
        result = read_captures([str(path)], observer=observer)
    if strict and result.errors:
        raise InputError(result.errors[0])
    evidence.notes.extend(result.warnings)
    evidence.errors.extend(result.errors)
    if result.errors and not result.records.height:
        return []
    s = result.stats
    first, last = _time_range(result.records)
    evidence.files.append(
        EvidenceFile(
            path=STDIN if is_stdin else str(path), kind="pcap", log_type=None,
            sha256=sha256_of(path), size=path.stat().st_size, first_ts=first, last_ts=last,
            records=result.records.height,
            skipped=s.non_ip + s.fragments + sum(s.other_ip.values())
            + sum(s.unsupported_linktype.values()),
            rejects=s.malformed,
        )  # fmt: skip
    )
    return [result.records]


def _read_parquet(paths: list[Path], evidence: Evidence, *, strict: bool) -> pl.DataFrame:
    from capture.records import latest_rows, read_records_file, record_files

    frames = []
    for item in paths:
        members = record_files(item) if item.is_dir() else [item]
        loaded = []
        for member in members:
            try:
                one = read_records_file(member)
            except InputError as exc:
                if strict:
                    raise
                evidence.errors.append(str(exc))
                continue
            loaded.append(one)
            first, last = _time_range(one)
            evidence.files.append(
                EvidenceFile(
                    path=str(member), kind="records", log_type=None, sha256=sha256_of(member),
                    size=member.stat().st_size, first_ts=first, last_ts=last, records=one.height,
                    skipped=0, rejects=0,
                )  # fmt: skip
            )
        if not loaded:
            continue
        # A whole records folder: a live capture's repeated rows of one connection collapse
        # to the latest; files picked one by one are taken as they are.
        frames.append(latest_rows(loaded) if item.is_dir() else pl.concat(loaded, how="vertical"))
    return pl.concat(frames, how="vertical") if frames else SCHEMA.to_frame()


def _read_logs(
    paths: list[Path], evidence: Evidence, *, observer: str | None, year: int | None, tz: str,
    log_type: str, strict: bool,
) -> pl.DataFrame:  # fmt: skip
    """All logs together (a rotated set must be read as one); a file whose type cannot be
    told is an error of its own; when reading them together fails, file by file, so that
    one unreadable file does not stop the others."""
    from analyze.sources import detect_type

    readable = []
    for path in paths:
        try:
            if log_type == "auto":
                detect_type(path)
        except EgresslensError as exc:
            if strict:
                raise InputError(_one_line(exc)) from exc
            evidence.errors.append(_one_line(exc))
            continue
        readable.append(path)
    if not readable:
        return SCHEMA.to_frame()
    try:
        return _read_log_batch(readable, evidence, observer=observer, year=year, tz=tz, log_type=log_type)
    except (EgresslensError, pl.exceptions.PolarsError, OSError) as exc:
        if strict:
            raise InputError(_one_line(exc)) from exc
        if len(readable) == 1:
            evidence.errors.append(_one_line(exc, readable[0]))
            return SCHEMA.to_frame()
    frames = []
    for path in readable:
        try:
            frames.append(_read_log_batch([path], evidence, observer=observer, year=year, tz=tz, log_type=log_type))
        except (EgresslensError, pl.exceptions.PolarsError, OSError) as exc:
            evidence.errors.append(_one_line(exc, path))
    return pl.concat(frames, how="vertical") if frames else SCHEMA.to_frame()


def _one_line(exc: BaseException, path: Path | None = None) -> str:
    text = display(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if isinstance(exc, EgresslensError) or path is None:
        return text
    return f"{display(path)}: cannot read: {text}"


def _read_log_batch(
    paths: list[Path], evidence: Evidence, *, observer: str | None, year: int | None, tz: str,
    log_type: str,
) -> pl.DataFrame:  # fmt: skip
    from analyze.sources import read_logs

    result = read_logs(paths, type=log_type, observer=observer, year=year, tz=tz)  # type: ignore[arg-type]
    records, rejects, skipped = pl.collect_all([result.records, result.rejects, result.skipped])
    records = rename_stdin(records.select(SCHEMA.names()).cast(dict(SCHEMA)), "conn_id", "origin")
    rejects = rename_stdin(rejects, "source")
    skipped = rename_stdin(skipped, "source")
    evidence.notes.extend(display(n) for n in result.notes)
    by_file = (
        records.select(
            file=pl.col("origin").list.first().str.replace(r":\d+$", ""),
            ts=pl.col("ts"),
        )
        .group_by("file")
        .agg(n=pl.len(), first=pl.col("ts").min(), last=pl.col("ts").max())
    )
    stats = {row["file"]: row for row in by_file.iter_rows(named=True)}
    reject_counts = dict(rejects.group_by("source").len().iter_rows()) if rejects.height else {}
    skip_counts = (
        {r["source"]: r["skipped"] for r in skipped.iter_rows(named=True)} if skipped.height else {}
    )
    for path in paths:
        key = display(path)
        st = stats.get(key, {})
        evidence.files.append(
            EvidenceFile(
                path=key, kind="log", log_type=result.types.get(str(path)), sha256=sha256_of(path),
                size=path.stat().st_size, first_ts=st.get("first"), last_ts=st.get("last"),
                records=int(st.get("n", 0)), skipped=int(skip_counts.get(key, 0)),
                rejects=int(reject_counts.get(key, 0)),
            )  # fmt: skip
        )
        if reject_counts.get(key):
            evidence.notes.append(f"{key}: {reject_counts[key]:,} lines could not be read (rejects)")
    return records  # type: ignore[return-value]
