"""Reports of an analysis: terminal text, JSON, CSV, Parquet and a self-contained HTML page.

Everything shown comes from the input (user names, paths, user agents) and is treated as
hostile: the terminal view escapes control characters, the HTML escapes every value, and
CSV cells that a spreadsheet would run as a formula are quoted with a leading ``'``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from typing import TYPE_CHECKING, Any, Final, Literal

import polars as pl

from analyze.html import render_html
from capture.output import escape_control, flatten, render_table, to_json_rows

if TYPE_CHECKING:
    from analyze.pipeline import Analysis

ReportFormat = Literal["table", "json", "csv", "parquet", "html"]
REPORT_FORMATS: Final[tuple[ReportFormat, ...]] = ("table", "json", "csv", "parquet", "html")

CONNECTION_COLUMNS: Final = (
    "ts", "src_ip", "src_port", "dst_port", "service", "state", "class", "via", "resource",
    "candidate_vms", "confidence", "allowed", "ssh_user", "http_method", "http_path",
    "http_status", "evidence",
)  # fmt: skip
ADDRESS_COLUMNS: Final = (
    "src_ip", "class", "via", "resource", "candidate_vms", "service_tag", "confidence",
    "allowed", "first_seen", "last_seen", "connections", "by_service", "by_state", "users",
    "user_agents",
)  # fmt: skip
TABLE_ROWS: Final = 50
"""Connection rows shown in the terminal view (all of them are in the other formats)."""


def finding_dict(f: Any) -> dict[str, Any]:
    """A finding as a JSON-ready dict."""
    raw = dataclasses.asdict(f) if dataclasses.is_dataclass(f) else dict(vars(f))
    return {k: _jsonable(v) for k, v in raw.items()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (list, tuple, frozenset, set)):
        return [_jsonable(x) for x in (sorted(v) if isinstance(v, (set, frozenset)) else v)]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def to_json(a: Analysis) -> dict[str, Any]:
    """The JSON document: ``addresses``, ``connections``, ``findings``, ``evidence``."""
    return {
        "addresses": to_json_rows(a.addresses),
        "connections": to_json_rows(a.connections),
        "findings": [finding_dict(f) for f in a.findings],
        "evidence": [_jsonable(dataclasses.asdict(e)) for e in a.evidence],
    }


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def guard_csv(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``) with ``'``."""
    exprs = []
    for name, dtype in df.schema.items():
        if dtype == pl.String:
            col = pl.col(name)
            risky = pl.lit(False)
            for ch in _FORMULA_START:
                risky = risky | col.str.starts_with(ch)
            exprs.append(pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name))
        else:
            exprs.append(pl.col(name))
    return df.select(exprs)


def render(a: Analysis, fmt: ReportFormat) -> bytes:
    """The report in ``fmt``; CSV and Parquet hold the classified connection rows."""
    if fmt == "json":
        return (json.dumps(to_json(a), indent=2, ensure_ascii=False) + "\n").encode()
    if fmt == "csv":
        return guard_csv(flatten(a.connections)).write_csv().encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        a.connections.write_parquet(buf)
        return buf.getvalue()
    if fmt == "html":
        return render_html(a).encode()
    return render_text(a).encode()


# --- terminal ---------------------------------------------------------------------------


def render_text(a: Analysis) -> str:
    """Findings first, then addresses, connections (first rows) and the evidence."""
    out = io.StringIO()
    out.write(f"== findings ({len(a.findings)})\n")
    if not a.findings:
        out.write("none: every connection matches the inventory and the allowlist\n")
    for f in a.findings:
        d = finding_dict(f)
        vms = ", ".join(d.get("vms") or []) or "-"
        ips = ", ".join(d.get("src_ips") or []) or "-"
        out.write(f"[{d['severity']}] {d['kind']}: vms {vms}; addresses {ips}\n")
        out.write(f"  {escape_control(d['message'])}\n")
        for fix in d.get("fixes") or []:
            out.write(f"  fix: {escape_control(fix)}\n")
    out.write(f"\n== addresses ({a.addresses.height})\n")
    out.write(render_table(a.addresses, ADDRESS_COLUMNS))
    shown = a.connections.head(TABLE_ROWS)
    more = a.connections.height - shown.height
    out.write(f"\n== connections ({a.connections.height}{f', first {TABLE_ROWS} shown' if more > 0 else ''})\n")
    out.write(render_table(shown, CONNECTION_COLUMNS))
    out.write(f"\n== evidence ({len(a.evidence)})\n")
    ev = pl.DataFrame([dataclasses.asdict(e) for e in a.evidence]) if a.evidence else pl.DataFrame()
    if ev.height:
        ev = ev.with_columns(pl.col("sha256").str.slice(0, 16))
        out.write(render_table(ev, ("path", "kind", "log_type", "size", "records", "skipped",
                                    "rejects", "first_ts", "last_ts", "sha256")))  # fmt: skip
    if a.clock_offset is not None:
        out.write(f"\nclock offset, logs minus capture: {a.clock_offset.total_seconds():+.3f} s\n")
    return out.getvalue()
