"""Log sources: every log format a destination host is likely to have, as connection records.

One module per format, each exporting ``SCHEMA`` (the record schema) and
``scan(paths, ...) -> Scan``: ``authlog`` (auth.log / secure, syslog text and
``journalctl -o short-iso``), ``journal`` (``journalctl -o json``), ``weblog`` (nginx /
Apache access logs, custom formats, JSON lines), ``w3c`` (IIS, App Service), ``zeek``
(conn.log TSV / JSON) and ``flowlog`` (Azure NSG and VNet flow logs).  ``read_logs`` is the
entry point: it detects each file's type from its content and merges the results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

import polars as pl

from analyze.sources import authlog, flowlog, journal, w3c, weblog, zeek
from analyze.sources._common import REJECTS_SCHEMA, Scan, concat_scans, head_lines
from capture.errors import InputError, UsageError

__all__ = [
    "LOG_TYPES",
    "REJECTS_SCHEMA",
    "LogRead",
    "LogType",
    "Scan",
    "detect_type",
    "read_logs",
]

LogType = Literal[
    "auto", "authlog", "journal", "nginx", "apache", "jsonlog", "w3c", "zeek", "zeekjson",
    "nsgflow", "vnetflow",
]  # fmt: skip
"""What ``--type`` accepts; ``auto`` detects each file's type from its first lines."""

LOG_TYPES: Final[tuple[str, ...]] = get_args(LogType)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRead:
    """The lazy result of reading a set of log files."""

    records: pl.LazyFrame
    """Connection records in ``capture.schema.SCHEMA``, sorted by ``ts`` within each type."""
    rejects: pl.LazyFrame
    """Unreadable lines in ``REJECTS_SCHEMA`` (``source``, ``lineno``, ``line``)."""
    skipped: pl.LazyFrame
    """Per file: ``source``, ``skipped`` (lines of no interest, e.g. other daemons)."""
    notes: tuple[str, ...]
    """Assumptions and repairs to show the user (assumed zone and year, cut gzip, ...)."""
    types: Mapping[str, str]
    """The type each file was read as."""


def detect_type(path: Path) -> str | None:
    """The log type of ``path`` from its first non-empty lines; None for an empty file.

    Raises:
        InputError: the file cannot be read or its type is not recognized.
    """
    lines = head_lines(path)
    if not lines:
        return None
    if journal.looks_like(lines):
        return "journal"
    if zeek.looks_like_json(lines):
        return "zeekjson"
    if zeek.looks_like(lines):
        return "zeek"
    if w3c.looks_like(lines):
        return "w3c"
    if flowlog.looks_like(lines):
        return "nsgflow"
    if weblog.looks_like_json(lines):
        return "jsonlog"
    if authlog.looks_like(lines):
        return "authlog"
    if weblog.looks_like(lines):
        return "nginx"
    raise InputError(
        f"{path}: cannot tell the log type from line 1 {lines[0][:80]!r}; give --type"
    )


def read_logs(
    paths: Sequence[str | Path],
    *,
    type: LogType = "auto",  # noqa: A002 (mirrors --type)
    log_format: str | None = None,
    field_map: str | None = None,
    year: int | None = None,
    tz: str = "UTC",
    observer: str | None = None,
) -> LogRead:
    """Read log files of any supported type into connection records (lazily).

    Args:
        paths: log files; a rotated set (``auth.log``, ``auth.log.1``, ``auth.log.2.gz``) may
            be given in any order.
        type: the type of every file, or ``auto`` to detect each file's type.
        log_format: nginx ``log_format`` / Apache ``LogFormat`` string (or ``combined``,
            ``common``, ``vhost_combined``) for access logs.
        field_map: ``KEY=json.path,...`` for JSON access logs.
        year: year of the first line of each syslog file (default: from the file's mtime).
        tz: zone of syslog timestamps that carry none (default UTC).
        observer: host name for evidence that names none (access logs, flow logs).

    Returns:
        A ``LogRead``; nothing has been parsed yet beyond the type sniffing.

    Raises:
        UsageError: an unknown type or option value.
        InputError: a missing file or one whose type cannot be told.
    """
    if type not in LOG_TYPES:
        raise UsageError(f"--type: unknown log type {type!r}; choose one of {', '.join(LOG_TYPES)}")
    if year is not None and not 1970 <= year <= 9999:
        raise UsageError(f"--year: {year} is out of range")
    groups: dict[str, list[Path]] = {}
    notes: list[str] = []
    types: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        kind = detect_type(path) if type == "auto" else type
        if kind is None:
            notes.append(f"{path}: empty file, no records")
            types[str(path)] = "empty"
            continue
        types[str(path)] = kind
        groups.setdefault(kind, []).append(path)
    fields = weblog.parse_field_map(field_map) if field_map or "jsonlog" in groups else None
    scans: list[Scan] = []
    for kind, files in groups.items():
        if kind == "authlog":
            scans.append(authlog.scan(files, year=year, tz=tz, observer=observer))
        elif kind == "journal":
            scans.append(journal.scan(files, observer=observer))
        elif kind in ("nginx", "apache"):
            scans.append(weblog.scan(files, log_format=log_format, observer=observer))
        elif kind == "jsonlog":
            scans.append(weblog.scan(files, json=True, field_map=fields, observer=observer))
        elif kind == "w3c":
            scans.append(w3c.scan(files, observer=observer))
        elif kind in ("zeek", "zeekjson"):
            scans.append(zeek.scan(files, json=kind == "zeekjson", observer=observer))
        else:  # nsgflow, vnetflow: one parser reads both layouts
            scans.append(flowlog.scan(files, observer=observer))
    merged = concat_scans(scans)
    return LogRead(
        records=merged.records,
        rejects=merged.rejects,
        skipped=merged.skipped,
        notes=tuple(notes) + merged.notes,
        types=types,
    )
