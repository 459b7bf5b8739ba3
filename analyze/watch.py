"""``egresslens watch``: the tool's ``tail -f``.

Follows log files (through rotation and truncation, like ``tail -F``) and/or a live capture,
and reports each new connection as it happens, classified against the inventory (class,
resource, allowed or not), plus findings as they trigger.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analyze.classify import classify
from analyze.findings import Finding, find
from analyze.inventory import Allowlist, Inventory
from analyze.predict import Prediction
from analyze.sources import detect_type, read_logs
from capture.output import escape_control
from capture.schema import SCHEMA

POLL_S = 0.5


@dataclass(slots=True)
class Follower:
    """One followed file: where we are in it, and which file (inode) that is."""

    path: Path
    start_at_end: bool = True
    position: int = 0
    inode: int | None = None
    kind: str | None = None
    partial: bytes = b""
    """An unfinished last line, kept until its newline arrives."""

    def poll(self) -> list[bytes]:
        """Complete new lines since the last poll (reopening after rotation or truncation)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []  # rotated away, the new file not created yet
        if self.inode is None:
            self.inode = st.st_ino
            self.position = st.st_size if self.start_at_end else 0
        elif st.st_ino != self.inode or st.st_size < self.position:
            # Rotated (a new file under the name) or truncated (copytruncate): start over.
            self.inode = st.st_ino
            self.position = 0
            self.partial = b""
        if st.st_size == self.position:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.position)
            data = fh.read(min(st.st_size - self.position, 64 << 20))
        self.position += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [line for line in lines if line.strip()]


@dataclass(slots=True)
class Watcher:
    """Classifies new records as they come and remembers what it has reported."""

    inventory: Inventory
    predictions: Sequence[Prediction]
    allowlist: Allowlist | None
    emit: Callable[[str], None]
    seen: list[pl.DataFrame] = field(default_factory=list)
    reported: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    connections: int = 0

    def records(self, records: pl.DataFrame) -> None:
        """Classify and print ``records``; print findings that are new."""
        if records.height == 0:
            return
        rows = classify(records, self.inventory, self.predictions).collect()
        for row in rows.iter_rows(named=True):
            self.connections += 1
            self.emit(describe(row, self.allowlist))
        self.seen.append(rows)
        everything = pl.concat(self.seen, how="diagonal_relaxed")
        for f in find(everything, self.inventory, self.predictions, allowlist=self.allowlist):
            key = (f.kind, tuple(sorted(f.src_ips)))
            if key not in self.reported:
                self.reported.add(key)
                self.emit(f"FINDING [{f.severity}] {f.kind}: {f.message}")
                for fix in f.fixes:
                    self.emit(f"  fix: {fix}")


def describe(row: dict[str, object], allowlist: Allowlist | None) -> str:
    """One line per connection: when, what, from where, its class and whether allowed."""
    ts = row["ts"]
    when = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if hasattr(ts, "strftime") else str(ts)
    src = f"{row['src_ip']}:{row['src_port']}" if row.get("src_port") is not None else str(row["src_ip"])
    dport = f":{row['dst_port']}" if row.get("dst_port") is not None else ""
    evidence = ",".join(str(e) for e in (row.get("evidence") or []))
    parts = [when, evidence, str(row.get("service") or "-"), f"{src} -> {row.get('dst_ip') or ''}{dport}",
             f"class={row['class']}"]  # fmt: skip
    if row.get("via"):
        parts.append(f"via={row['via']}")
    if row.get("resource"):
        parts.append(f"resource={row['resource']}")
    vms = row.get("candidate_vms") or []
    if vms:
        parts.append("vms=" + ",".join(str(v) for v in vms))  # type: ignore[union-attr]
    parts.append(f"confidence={row.get('confidence')}")
    if allowlist is not None:
        tag = row.get("service_tag")
        ok = allowlist.allows(str(row["src_ip"]), frozenset([str(tag)]) if tag else None)
        parts.append({True: "ALLOWED", False: "NOT-ALLOWED", None: "allowed=unknown"}[ok])
    if row.get("ssh_user"):
        parts.append(f"user={row['ssh_user']} auth={row.get('ssh_auth')}")
    if row.get("http_method"):
        parts.append(f"{row['http_method']} {row.get('http_path')} {row.get('http_status') or ''}".rstrip())
    return escape_control(" ".join(parts))


def parse_lines(path: Path, kind: str, lines: list[bytes], *, year: int | None, tz: str,
                observer: str | None) -> pl.DataFrame:  # fmt: skip
    """Records from new lines of ``path`` (of log type ``kind``), via a scratch file."""
    with tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False) as tmp:
        tmp.write(b"\n".join(lines) + b"\n")
        name = tmp.name
    try:
        # The year of syslog lines without one: the followed file's own modification time.
        mtime = path.stat().st_mtime if path.exists() else time.time()
        os.utime(name, (mtime, mtime))
        result = read_logs([name], type=kind, year=year, tz=tz, observer=observer)  # type: ignore[arg-type]
        records = result.records.collect()
    finally:
        os.unlink(name)
    # Point provenance at the followed file, not the scratch file.
    return records.with_columns(
        origin=pl.col("origin").list.eval(pl.element().str.replace(f"^{_re(name)}", str(path)))
    ).select(SCHEMA.names())


def _re(text: str) -> str:
    import re

    return re.escape(text)


def follow(
    files: Sequence[str],
    watcher: Watcher,
    *,
    from_start: bool = False,
    stop: threading.Event,
    year: int | None = None,
    tz: str = "UTC",
    observer: str | None = None,
) -> None:
    """Poll ``files`` until ``stop`` is set, feeding new records to ``watcher``."""
    followers = [Follower(Path(f), start_at_end=not from_start) for f in files]
    while not stop.is_set():
        for fol in followers:
            lines = fol.poll()
            if not lines:
                continue
            if fol.kind is None:
                fol.kind = detect_type(fol.path) or "authlog"
            watcher.records(parse_lines(fol.path, fol.kind, lines, year=year, tz=tz, observer=observer))
        stop.wait(POLL_S)
