"""Zeek conn.log, TSV or JSON lines; https://docs.zeek.org/en/master/scripts/base/protocols/conn/main.zeek.html

TSV files are read by their ``#fields`` header (a file may hold several header blocks),
never by position; ``-`` (unset) and ``(empty)`` become null.  JSON lines carry the same
dotted keys (``id.orig_h``) with unset fields omitted.  Zeek's ``uid`` is the ``conn_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import polars as pl

from analyze.sources._common import (
    Scan,
    concat_scans,
    conform,
    empty_scan,
    header_field,
    header_skips,
    lookup,
    from_epoch_seconds,
    in_range,
    rejects_of,
    scan_lines,
    with_header,
)
from capture.schema import SCHEMA

__all__ = ["CONN_STATES", "NAME", "SCHEMA", "looks_like", "looks_like_json", "scan"]

NAME: Final = "zeek"

CONN_STATES: Final[dict[str, str]] = {
    "S0": "attempt",
    "REJ": "rejected",
    "S1": "established",
    "SF": "closed",
    "S2": "closed",
    "S3": "closed",
    "RSTO": "reset",
    "RSTR": "reset",
    "RSTOS0": "attempt",
    "RSTRH": "partial",
    "SH": "attempt",
    "SHR": "partial",
    "OTH": "partial",
}
"""Zeek ``conn_state`` -> record ``state``."""

_FIELDS: Final = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
    "duration", "orig_bytes", "resp_bytes", "conn_state", "orig_pkts", "resp_pkts",
)  # fmt: skip


def looks_like(lines: Sequence[str]) -> bool:
    """True for a Zeek TSV log (``#separator`` / ``#fields`` headers)."""
    return any(line.startswith("#fields\t") for line in lines) or bool(
        lines and lines[0].startswith("#separator")
    )


def looks_like_json(lines: Sequence[str]) -> bool:
    """True for Zeek JSON lines (``uid`` and ``id.orig_h`` keys)."""
    return bool(lines) and all('"id.orig_h"' in line and '"uid"' in line for line in lines[:5])


def _records(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Columns named after Zeek fields (strings, nulls for unset) -> record schema."""
    service = pl.col("service")
    where = pl.concat_str(pl.col("source"), pl.lit(":"), pl.col("lineno").cast(pl.String))
    return frame.select(
        conn_id=pl.col("uid"),
        ts=pl.col("_ts"),
        evidence=pl.concat_list(pl.lit(NAME)),
        src_ip=pl.col("id.orig_h"),
        src_port=pl.col("id.orig_p").cast(pl.UInt16, strict=False),
        dst_ip=pl.col("id.resp_h"),
        dst_port=pl.col("id.resp_p").cast(pl.UInt16, strict=False),
        proto=pl.when(pl.col("proto").is_in(["tcp", "udp", "icmp"]))
        .then(pl.col("proto"))
        .otherwise(pl.lit("other")),
        service=pl.when(service.str.contains(r"(?:^|,)ssh(?:,|$)"))
        .then(pl.lit("ssh"))
        .when(service.str.contains(r"(?:^|,)(?:ssl|tls)(?:,|$)"))
        .then(pl.lit("https"))
        .when(service.str.contains(r"(?:^|,)http(?:,|$)"))
        .then(pl.lit("http"))
        .when(service.is_not_null())
        .then(pl.lit("other")),
        state=lookup(pl.col("conn_state"), CONN_STATES, pl.String()),
        duration=(pl.col("duration").cast(pl.Float64, strict=False) * 1_000_000)
        .round()
        .cast(pl.Int64)
        .cast(pl.Duration("us")),
        orig_bytes=pl.col("orig_bytes").cast(pl.UInt64, strict=False),
        resp_bytes=pl.col("resp_bytes").cast(pl.UInt64, strict=False),
        orig_pkts=pl.col("orig_pkts").cast(pl.UInt64, strict=False),
        resp_pkts=pl.col("resp_pkts").cast(pl.UInt64, strict=False),
        origin=pl.concat_list(where),
    )


def _ts() -> pl.Expr:
    """``ts`` as Zeek writes it: epoch seconds (TSV, JSON) or ISO 8601 (JSON with
    ``use_json_iso8601``); null for a time that cannot be a date."""
    epoch = pl.col("ts").cast(pl.Float64, strict=False)
    iso = pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_zone="UTC")
    ts = pl.coalesce(from_epoch_seconds(epoch), iso.dt.cast_time_unit("us"))
    return pl.when(in_range(ts)).then(ts)


def _dated(ok: pl.Expr) -> pl.Expr:
    """``ok`` and, where the line has a time, that time is a date (else a reject)."""
    return ok & (pl.col("ts").is_null() | pl.col("_ts").is_not_null())


def _unset(expr: pl.Expr) -> pl.Expr:
    return pl.when(~expr.is_in(["-", "(empty)"])).then(expr)


def _scan_tsv(path: Path) -> tuple[Scan, list[str]]:
    lines, notes = scan_lines(path)
    framed = with_header(lines, "#fields\t", "\t").with_columns(
        values=pl.col("line").str.split("\t")
    )
    data = framed.filter(~pl.col("is_header") & (pl.col("line").str.strip_chars() != ""))
    fits = (pl.col("names").list.len() == pl.col("values").list.len()).fill_null(False)
    parsed = data.with_columns(
        **{f: _unset(header_field(pl.col("names"), pl.col("values"), f)) for f in _FIELDS}
    ).with_columns(_ts=_ts()).with_columns(
        ok=_dated(fits & pl.col("uid").is_not_null() & pl.col("id.orig_h").is_not_null())
    )
    records = _records(parsed.filter(pl.col("ok")))
    scan = Scan(
        records=conform(records),
        rejects=rejects_of(parsed.filter(~pl.col("ok"))),
        skipped=header_skips(framed, path),
    )
    return scan, notes


def _scan_json(path: Path) -> tuple[Scan, list[str]]:
    lines, notes = scan_lines(path)
    data = lines.filter(pl.col("line").str.strip_chars() != "")
    parsed = data.with_columns(
        **{f: pl.col("line").str.json_path_match(f"$['{f}']") for f in _FIELDS}
    ).with_columns(_ts=_ts()).with_columns(
        ok=_dated(pl.col("uid").is_not_null() & pl.col("id.orig_h").is_not_null())
    )
    scan = Scan(
        records=conform(_records(parsed.filter(pl.col("ok")))),
        rejects=rejects_of(parsed.filter(~pl.col("ok"))),
        skipped=lines.select(
            pl.lit(str(path)).alias("source"),
            (pl.col("line").str.strip_chars() == "").sum().cast(pl.UInt32).alias("skipped"),
        ),
    )
    return scan, notes


def scan(paths: Sequence[Path], *, observer: str | None = None, json: bool = False) -> Scan:
    """Read Zeek conn.log files (TSV, or JSON lines with ``json=True``) into records.

    Args:
        paths: conn.log files (``.gz`` or not).
        observer: host name of the Zeek sensor.
        json: the files are JSON lines.

    Returns:
        A lazy ``Scan``; a row that does not fit its ``#fields`` header is a reject.

    Raises:
        InputError: a file cannot be read.
    """
    if not paths:
        return empty_scan()
    results = [(_scan_json if json else _scan_tsv)(Path(p)) for p in paths]
    merged = concat_scans([s for s, _ in results])
    records = merged.records.with_columns(observer=pl.lit(observer, pl.String))
    notes = tuple(n for _, ns in results for n in ns)
    return Scan(records=records, rejects=merged.rejects, skipped=merged.skipped, notes=notes)
