"""sshd in ``journalctl -o json`` exports; https://www.freedesktop.org/software/systemd/man/latest/systemd.journal-fields.html

Each line is one JSON object with string values: ``__REALTIME_TIMESTAMP`` (microseconds
since the epoch), ``_HOSTNAME``, ``SYSLOG_IDENTIFIER`` (``sshd`` / ``sshd-session``),
``_PID`` / ``SYSLOG_PID`` and ``MESSAGE``.  The messages go through the same sshd templates
as auth.log (``authlog.sshd_scan``).  ``journalctl -o short-iso`` output is syslog text and
is read by ``authlog``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import polars as pl

from analyze.sources._common import Scan, chronological, empty_scan, scan_lines
from analyze.sources.authlog import sshd_scan
from capture.schema import SCHEMA

__all__ = ["NAME", "SCHEMA", "looks_like", "scan"]

NAME: Final = "journal"


def looks_like(lines: Sequence[str]) -> bool:
    """True when the first lines are journal JSON objects."""
    return bool(lines) and all(
        line.lstrip().startswith("{") and "__REALTIME_TIMESTAMP" in line for line in lines[:5]
    )


def _get(key: str) -> pl.Expr:
    return pl.col("line").str.json_path_match(f"$.{key}")


def scan(paths: Sequence[Path], *, observer: str | None = None) -> Scan:
    """Read ``journalctl -o json`` exports into connection records.

    Args:
        paths: export files (``.gz`` or not).
        observer: host name for entries without ``_HOSTNAME``.

    Returns:
        A lazy ``Scan``.

    Raises:
        InputError: a file cannot be read.
    """
    if not paths:
        return empty_scan()
    frames, notes = [], []
    ordered = chronological([Path(p) for p in paths])
    for index, path in enumerate(ordered):
        lines, file_notes = scan_lines(path)
        notes += file_notes
        micros = _get("__REALTIME_TIMESTAMP").cast(pl.Int64, strict=False)
        prog = _get("SYSLOG_IDENTIFIER")
        frame = lines.filter(pl.col("line").str.strip_chars() != "").with_columns(
            aware=pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC"),
            naive=pl.lit(None, pl.Datetime("us")),
            bsd=pl.lit(None, pl.String),
            iso=pl.lit(None, pl.String),
            host=_get("_HOSTNAME"),
            prog=prog,
            pid=pl.coalesce(_get("_PID"), _get("SYSLOG_PID")),
            msg=_get("MESSAGE"),
        )
        frame = frame.with_columns(
            kind0=pl.when(pl.col("aware").is_null() | pl.col("msg").is_null())
            .then(pl.lit("reject"))
            .when(~pl.col("prog").is_in(["sshd", "sshd-session"]).fill_null(False))
            .then(pl.lit("skip")),
            seq=(index << 32) + pl.col("lineno").cast(pl.Int64),
        )
        frames.append(frame)
    return sshd_scan(
        pl.concat(frames, how="vertical"),
        sources=[str(p) for p in ordered],
        observer=observer,
        notes=notes,
    )
