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
from analyze.findings import find
from analyze.inventory import Allowlist, Inventory
from analyze.predict import Prediction
from analyze.sources import detect_type, read_logs
from capture.errors import EgresslensError
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
    lines_before: int = 0
    """Complete lines of the current file before the last batch ``poll`` returned."""
    _consumed: int = 0

    def poll(self) -> list[bytes]:
        """Complete new lines since the last poll (reopening after rotation or truncation)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []  # rotated away, the new file not created yet
        if self.inode is None:
            self.inode = st.st_ino
            self.position = st.st_size if self.start_at_end else 0
            if self.start_at_end:  # line numbers stay the file's: count what is skipped
                with self.path.open("rb") as fh:
                    self._consumed = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
        elif st.st_ino != self.inode or st.st_size < self.position:
            # Rotated (a new file under the name) or truncated (copytruncate): start over.
            self.inode = st.st_ino
            self.position = 0
            self.partial = b""
            self._consumed = 0
        if st.st_size == self.position:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.position)
            data = fh.read(min(st.st_size - self.position, 64 << 20))
        self.position += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        self.lines_before = self._consumed
        self._consumed += len(lines)
        # Blank lines are kept so that line numbers stay those of the file.
        return lines if any(line.strip() for line in lines) else []


@dataclass(slots=True)
class Watcher:
    """Classifies new records as they come and remembers what it has reported."""

    inventory: Inventory
    predictions: Sequence[Prediction]
    allowlist: Allowlist | None
    emit: Callable[[str], None]
    seen: list[pl.DataFrame] = field(default_factory=list)
    reported: set[tuple[object, ...]] = field(default_factory=set)
    """Incidents printed, by their roll-up key and severity: a new address joining one is
    not a new incident, a higher severity is."""
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
            key = (f.kind, f.severity, f.egress_class, f.via, f.resource, f.allowlist, f.vms, f.destination,
                   f.services if f.kind == "auth_failures" else ())  # fmt: skip
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
                observer: str | None, first_line: int = 1) -> pl.DataFrame:  # fmt: skip
    """Records from new lines of ``path`` (of log type ``kind``) starting at its line
    ``first_line``, via a scratch file; ``origin`` names the followed file and its lines."""
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
    # Point provenance and ids at the followed file and its own line numbers, so that
    # they are those ``logs read`` gives on the same file.
    line = pl.element().str.extract(f"^{_re(name)}:([0-9]+)$").cast(pl.Int64) + (first_line - 1)
    id_parts = pl.col("conn_id").str.extract_groups(f"^(?<kind>[a-z]+):{_re(name)}:(?<line>[0-9]+)$")
    id_line = id_parts.struct.field("line").cast(pl.Int64) + (first_line - 1)
    fixed_id = pl.concat_str(id_parts.struct.field("kind"), pl.lit(f":{path}:"), id_line.cast(pl.String))
    return records.with_columns(
        origin=pl.col("origin").list.eval(pl.lit(f"{path}:") + line.cast(pl.String)),
        conn_id=pl.coalesce(fixed_id, pl.col("conn_id")),
    ).select(SCHEMA.names())


def _re(text: str) -> str:
    import re

    return re.escape(text)


def follow(
    files: Sequence[str],
    emit: Callable[[pl.DataFrame], object],
    *,
    from_start: bool = False,
    stop: threading.Event,
    duration: float | None = None,
    year: int | None = None,
    tz: str = "UTC",
    observer: str | None = None,
    on_error: Callable[[str], object] | None = None,
    log_type: str = "auto",
    ready: threading.Event | None = None,
) -> None:
    """Poll ``files`` until ``stop`` is set (or ``duration`` seconds pass), handing the
    records of each batch of new lines to ``emit``.

    ``ready`` is set once every file's starting point is taken: a line written after that
    is seen, whenever the first poll comes.

    A file that cannot be read (its type cannot be told, it cannot be opened) is reported
    once to ``on_error`` as one line and no longer followed; when no file is left, the
    follow ends.  Without ``on_error`` the error is raised.
    """
    forced = None if log_type == "auto" else log_type
    followers = [Follower(Path(f), start_at_end=not from_start, kind=forced) for f in files]
    for fol in followers:
        if fol.start_at_end:
            try:
                fol.poll()  # takes the position at the end; what was there stays unread
            except OSError:
                pass  # reported by the first poll of the loop
    if ready is not None:
        ready.set()
    started = time.monotonic()
    while followers and not stop.is_set() and (duration is None or time.monotonic() - started < duration):
        for fol in list(followers):
            try:
                lines = fol.poll()
                if not lines:
                    continue
                if fol.kind is None:
                    fol.kind = detect_type(fol.path) or "authlog"
                batch = parse_lines(fol.path, fol.kind, lines, year=year, tz=tz, observer=observer,
                                    first_line=fol.lines_before + 1)  # fmt: skip
            except (EgresslensError, OSError, pl.exceptions.PolarsError) as exc:
                if on_error is None:
                    raise
                on_error(_one_line(fol.path, exc))
                followers.remove(fol)
                continue
            emit(batch)
        stop.wait(POLL_S)


def _one_line(path: Path, exc: BaseException) -> str:
    """A reader failure as one line naming the file."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text if text.startswith(str(path)) else f"{path}: {text}"


def follow_records(
    files: Sequence[str],
    emit: Callable[[pl.DataFrame], object],
    *,
    duration: float | None = None,
    year: int | None = None,
    tz: str = "UTC",
    observer: str | None = None,
    on_error: Callable[[str], object] | None = None,
    log_type: str = "auto",
) -> int:
    """``logs read --follow``: the files' existing records, then new ones as they come.

    Stops on SIGINT / SIGTERM, after ``duration`` seconds, or when no file can be read any
    more (each failure goes to ``on_error``, see ``follow``); returns how many were emitted.
    """
    import signal

    stop = threading.Event()
    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    shown = 0

    def count(records: pl.DataFrame) -> None:
        nonlocal shown
        if records.height:
            emit(records)
            shown += records.height

    try:
        follow(files, count, from_start=True, stop=stop, duration=duration, year=year, tz=tz,
               observer=observer, on_error=on_error, log_type=log_type)  # fmt: skip
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return shown
