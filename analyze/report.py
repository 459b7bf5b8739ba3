"""Reports of an analysis: the verdict, terminal text, JSON, CSV, Parquet, the report folder
(``write_folder``) and a self-contained HTML page.

Everything shown comes from the input (user names, paths, user agents) and is treated as
hostile: the terminal view escapes control characters, the HTML escapes every value, and
CSV cells that a spreadsheet would run as a formula are quoted with a leading ``'``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import polars as pl

from analyze.findings import SEVERITIES
from capture.output import (
    atomic_write_bytes, atomic_write_parquet, check_overwrite, escape_control, format_bytes, render_table,
    to_json_rows,
)  # fmt: skip

if TYPE_CHECKING:
    from analyze.pipeline import Analysis

ReportFormat = Literal["table", "json", "csv", "parquet", "html"]
REPORT_FORMATS: Final[tuple[ReportFormat, ...]] = ("table", "json", "csv", "parquet", "html")

CONNECTION_COLUMNS: Final = (
    "ts", "src_ip", "src_port", "dst_port", "service", "state", "class", "via", "resource",
    "candidate_vms", "confidence", "allowed", "ssh_user", "http_method", "http_path",
    "http_status", "evidence", "findings",
)  # fmt: skip
ADDRESS_COLUMNS: Final = (
    "src_ip", "class", "via", "resource", "candidate_vms", "service_tag", "confidence",
    "allowed", "first_seen", "last_seen", "connections", "by_service", "by_state", "users",
    "user_agents",
)  # fmt: skip


SCREEN: Final = 10
"""Incidents and addresses per class shown in the terminal view without ``--all``."""
FOLDER_FILES: Final = ("connections.parquet", "addresses.parquet", "findings.json", "evidence.json", "summary.json")
"""What ``write_folder`` writes (plus ``report.html`` with ``html=True``)."""


def finding_dict(f: Any) -> dict[str, Any]:
    """A finding as a JSON-ready dict (``Finding.to_dict``: ``id``, ``kind``, ``class``, ...)."""
    if hasattr(f, "to_dict"):
        raw = f.to_dict()
    else:
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


def render(a: Analysis, fmt: ReportFormat, *, full: bool = False) -> bytes:
    """The report in ``fmt``; CSV and Parquet hold the classified connection rows (with
    their ``findings`` ids); ``full``: the terminal view without its per-section limits."""
    if fmt == "json":
        return (json.dumps(to_json(a), indent=2, ensure_ascii=False) + "\n").encode()
    if fmt in ("csv", "parquet"):
        return format_bytes(a.connections, fmt, None)  # the one writer (its CSV formula guard)
    if fmt == "html":
        return _html(a).encode()
    return render_text(a, full=full).encode()


def _html(a: Analysis) -> str:
    """The HTML page (``analyze.html``)."""
    from analyze.html import render_html

    return render_html(a)


# --- the verdict and the terminal --------------------------------------------------------


def summary(a: Analysis) -> dict[str, Any]:
    """The numbers of the verdict: VMs, addresses, connections, incidents by severity, the first fix."""
    findings = [finding_dict(f) for f in a.findings]
    by_severity: dict[str, int] = {}
    for f in findings:
        by_severity[f["severity"]] = by_severity.get(f["severity"], 0) + 1
    addresses = a.addresses
    vms: set[str] = set()
    if "candidate_vms" in addresses.columns and addresses.height:
        vms = set(addresses.get_column("candidate_vms").list.explode(keep_nulls=False, empty_as_null=False)
                  .drop_nulls().unique().to_list())  # fmt: skip
    for f in findings:
        vms |= set(f.get("vms") or [])
    n_conn = getattr(a, "n_connections", None)
    if not n_conn:
        n_conn = (int(addresses.get_column("connections").sum() or 0) if "connections" in addresses.columns
                  else a.connections.height)  # fmt: skip
    n_addr = addresses.get_column("src_ip").n_unique() if "src_ip" in addresses.columns else addresses.height
    first = findings[0] if findings else None
    fix = (first.get("fixes") or [None])[0] if first else None
    return {
        "vms": len(vms), "addresses": n_addr, "connections": n_conn, "incidents": len(findings),
        "by_severity": {s: by_severity[s] for s in reversed(SEVERITIES) if s in by_severity},
        "first_incident": first["id"] if first and "id" in first else None, "fix_first": fix,
        "allowlist": getattr(getattr(a, "allowlist", None), "name", None),
        "clock_offset_s": a.clock_offset.total_seconds() if getattr(a, "clock_offset", None) is not None else None,
        "notes": list(getattr(a, "notes", [])), "errors": list(getattr(a, "errors", [])),
    }  # fmt: skip


def verdict(a: Analysis) -> str:
    """One line: ``3 VMs, 3 addresses, 6 connections: 3 incidents (2 high, 1 medium). Fix first (F1): ...``."""
    s = summary(a)
    sev = ", ".join(f"{n} {k}" for k, n in s["by_severity"].items())
    line = (
        f"{s['vms']:,} VM(s), {s['addresses']:,} address(es), {s['connections']:,} connection(s): "
        f"{s['incidents']:,} incident(s)" + (f" ({sev})" if sev else "") + "."
    )
    if s["fix_first"]:
        line += f" Fix first ({s['first_incident'] or 'the first incident'}): {s['fix_first']}"
    elif not s["incidents"]:
        line += " Every connection matches the inventory and the allowlist."
    return escape_control(line)


def render_text(a: Analysis, *, full: bool = False) -> str:
    """The verdict, then the incidents, the top addresses per class, the first connections
    and the evidence; each section a screenful unless ``full``, saying what was left out."""
    out = io.StringIO()
    out.write(f"verdict: {verdict(a)}\n\n")
    limit = None if full else SCREEN
    shown_findings = a.findings if limit is None else a.findings[:limit]
    out.write(f"== findings ({len(a.findings)})\n")
    if not a.findings:
        out.write("none: every connection matches the inventory and the allowlist\n")
    for f in shown_findings:
        d = finding_dict(f)
        vms = ", ".join(d.get("vms") or []) or "-"
        ips = list(d.get("src_ips") or [])
        n_addr = d.get("address_count", len(ips))
        head = ", ".join(ips[:5]) + (f" and {n_addr - min(len(ips), 5):,} more" if n_addr > min(len(ips), 5) else "")
        label = f"{d['id']} " if d.get("id") else ""
        out.write(f"{label}[{d['severity']}] {d['kind']}: vms {escape_control(vms)}; "
                  f"{n_addr:,} address(es) {escape_control(head) or '-'}")  # fmt: skip
        if "count" in d:
            out.write(f"; {d['count']:,} connection(s)")
        out.write("\n")
        out.write(f"  {escape_control(d['message'])}\n")
        for fix in d.get("fixes") or []:
            out.write(f"  fix: {escape_control(fix)}\n")
    if len(shown_findings) < len(a.findings):
        out.write(f"... {len(a.findings) - len(shown_findings):,} more incident(s): --all, --format json, "
                  "or findings.json in -o DIR/\n")  # fmt: skip
    addresses = a.addresses
    out.write(f"\n== addresses ({addresses.height:,}" + ("" if full else f", top {SCREEN} per class by connections")
              + ")\n")  # fmt: skip
    top = addresses
    if not full and {"class", "connections", "src_ip"} <= set(addresses.columns) and addresses.height:
        top = (
            addresses.sort(["connections", "src_ip"], descending=[True, False], nulls_last=True)
            .filter(pl.int_range(pl.len()).over("class") < SCREEN)
            .sort(pl.col("class").cast(pl.String), "connections", descending=[False, True])
        )
    out.write(render_table(top, ADDRESS_COLUMNS))
    if top.height < addresses.height:
        out.write(f"... {addresses.height - top.height:,} more address(es): --all, --format json, "
                  "or addresses.parquet in -o DIR/\n")  # fmt: skip
    rows = getattr(a, "rows", None)
    total = getattr(a, "n_connections", None) or (a.connections.height if rows is None else 0)
    if full:
        shown = a.connections
    elif rows is not None:
        shown = rows.sort("ts", "src_ip", nulls_last=True).head(SCREEN).collect()
    else:
        shown = a.connections.sort("ts").head(SCREEN)
    out.write(f"\n== connections ({total:,}" + (f", first {shown.height} by time" if shown.height < total else "") + ")\n")
    out.write(render_table(shown, CONNECTION_COLUMNS))
    if shown.height < total:
        out.write(f"... {total - shown.height:,} more connection(s): --all, --format json|csv|parquet, "
                  "or connections.parquet in -o DIR/\n")  # fmt: skip
    out.write(f"\n== evidence ({len(a.evidence)})\n")
    ev = pl.DataFrame([dataclasses.asdict(e) for e in a.evidence]) if a.evidence else pl.DataFrame()
    if ev.height:
        ev = ev.with_columns(pl.col("sha256").str.slice(0, 16))
        out.write(render_table(ev, ("path", "kind", "log_type", "size", "records", "skipped",
                                    "rejects", "first_ts", "last_ts", "sha256")))  # fmt: skip
    if a.clock_offset is not None:
        out.write(f"\nclock offset, logs minus capture: {a.clock_offset.total_seconds():+.3f} s\n")
    return out.getvalue()


# --- the report folder -------------------------------------------------------------------


def write_folder(a: Analysis, folder: Path, *, html: bool = False, progress: Callable[[str], None] | None = None) -> list[Path]:
    """The report folder: ``FOLDER_FILES`` (and ``report.html`` with ``html``).

    ``connections.parquet`` is streamed from ``a.rows`` (the plan from the evidence on), so
    memory does not follow the number of connections; the other files are the small
    tables.  Each file is written under a temporary name and renamed; an existing file is
    kept unless ``--force``.

    Returns:
        The files written.
    """
    say = progress or (lambda _text: None)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in FOLDER_FILES] + ([folder / "report.html"] if html else [])
    for p in paths:
        check_overwrite(p)
    conn = folder / "connections.parquet"
    tmp = folder / f".{conn.name}.partial"
    say(f"writing {conn}")
    rows = getattr(a, "rows", None)
    try:
        if rows is not None:
            rows.sink_parquet(tmp)
        else:
            a.connections.write_parquet(tmp)
        os.replace(tmp, conn)
    finally:
        tmp.unlink(missing_ok=True)
    say(f"writing {folder / 'addresses.parquet'} and the JSON files")
    atomic_write_parquet(a.addresses, folder / "addresses.parquet")

    def dump(doc: Any) -> bytes:
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()

    atomic_write_bytes(folder / "findings.json", dump([finding_dict(f) for f in a.findings]))
    atomic_write_bytes(folder / "evidence.json", dump([_jsonable(dataclasses.asdict(e)) for e in a.evidence]))
    doc = summary(a) | {"verdict": verdict(a), "files": [p.name for p in paths]}
    atomic_write_bytes(folder / "summary.json", dump(doc))
    if html:
        say(f"writing {folder / 'report.html'}")
        atomic_write_bytes(folder / "report.html", _html(a).encode())
    return paths
