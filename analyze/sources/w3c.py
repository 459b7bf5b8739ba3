"""W3C extended log files (IIS, Azure App Service HTTP logs); https://www.w3.org/TR/WD-logfile.html

Columns are declared by ``#Fields:`` header lines, which may come again mid-file (an app
restart) with a different list; every data line is read with the last one.  Values are
space-separated, ``+`` stands for a space, ``-`` for empty, and ``date time`` are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import polars as pl

from analyze.sources._common import (
    Scan,
    conform,
    header_field,
    header_skips,
    origin,
    in_range,
    rejects_of,
    scan_each,
    scan_lines,
    with_header,
)
from capture.schema import SCHEMA

__all__ = ["NAME", "SCHEMA", "looks_like", "scan"]

NAME: Final = "w3c"


def looks_like(lines: Sequence[str]) -> bool:
    """True when the file starts with W3C directives."""
    return any(line.startswith("#Fields:") for line in lines) and any(
        line.startswith(("#Software:", "#Version:", "#Date:", "#Fields:")) for line in lines[:1]
    )


def _value(name: str) -> pl.Expr:
    value = header_field(pl.col("names"), pl.col("values"), name)
    return pl.when(value != "-").then(value)


def _scan_one(path: Path, observer: str | None) -> tuple[Scan, list[str]]:
    lines, notes = scan_lines(path)
    framed = with_header(lines, "#Fields:", " ").with_columns(
        values=pl.col("line").str.split(" ")
    )
    data = framed.filter(~pl.col("is_header") & (pl.col("line").str.strip_chars() != ""))
    fits = pl.col("names").list.len() == pl.col("values").list.len()
    date_time = pl.concat_str(_value("date"), pl.lit(" "), _value("time"))
    query = _value("cs-uri-query")
    ts = date_time.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_zone="UTC")
    parsed = data.with_columns(ts=ts.dt.cast_time_unit("us")).with_columns(
        # a time that cannot be a date (Feb 30, hour 25) makes the line a reject
        ok=fits.fill_null(False) & _value("c-ip").is_not_null()
        & (date_time.is_null() | in_range(pl.col("ts"))),
    )  # fmt: skip
    records = parsed.filter(pl.col("ok")).select(
        **origin(NAME),
        ts=pl.col("ts"),
        observer=pl.coalesce(_value("s-computername"), pl.lit(observer, pl.String)),
        src_ip=_value("c-ip"),
        src_port=_value("c-port").cast(pl.UInt16, strict=False),
        dst_ip=_value("s-ip"),
        dst_port=_value("s-port").cast(pl.UInt16, strict=False),
        proto=pl.lit("tcp"),
        service=pl.lit("http"),
        http_method=_value("cs-method").cast(pl.Categorical),
        http_host=_value("cs-host"),
        http_path=pl.concat_str(
            _value("cs-uri-stem"),
            pl.when(query.is_not_null()).then(pl.lit("?") + query).otherwise(pl.lit("")),
        ),
        http_status=_value("sc-status").cast(pl.UInt16, strict=False),
        http_user_agent=_value("cs(User-Agent)").str.replace_all("+", " ", literal=True),
        http_xff=_value("cs(X-Forwarded-For)").str.replace_all("+", " ", literal=True),
    )
    scan = Scan(
        records=conform(records),
        rejects=rejects_of(parsed.filter(~pl.col("ok"))),
        skipped=header_skips(framed, path),
    )
    return scan, notes


def scan(paths: Sequence[Path], *, observer: str | None = None) -> Scan:
    """Read W3C extended logs into one record per request.

    Args:
        paths: log files (``.gz`` or not).
        observer: host name when the log has no ``s-computername``.

    Returns:
        A lazy ``Scan``; a line that does not fit its ``#Fields:`` header is a reject.

    Raises:
        InputError: a file cannot be read.
    """
    return scan_each(paths, lambda p: _scan_one(p, observer))
