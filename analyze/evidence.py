"""Evidence for ``analyze``: any mix of captures, records folders and logs, as one table.

Each input is listed with its sha256, size, time range and counts, so a second run can
prove it read the same bytes.  Inputs are only ever opened for reading.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from capture.errors import InputError
from capture.pcapfile import is_capture
from capture.schema import SCHEMA

EvidenceKind = Literal["pcap", "records", "log"]


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


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def expand(paths: Sequence[str]) -> list[Path]:
    """Files named by ``paths``: files as given, globs expanded, folders opened.

    A folder holding Parquet files is a records folder (its ``*.parquet``); any other
    folder stands for the files in it (not hidden, not recursive).
    """
    out: list[Path] = []
    for raw in paths:
        if any(ch in raw for ch in "*?["):
            hits = sorted(glob.glob(raw))
            if not hits:
                raise InputError(f"{raw}: no file matches")
            out.extend(Path(h) for h in hits)
            continue
        path = Path(raw)
        if path.is_dir():
            parquet = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
            files = parquet or sorted(
                p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
            )
            out.extend(files)
        elif path.exists():
            out.append(path)
        else:
            raise InputError(f"{raw}: no such file or folder")
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
) -> Evidence:
    """Read every input into records in ``SCHEMA``.

    Captures are read with the fast path; ``*.parquet`` files as records (a live
    capture's repeated rows collapse to the latest per ``conn_id``); everything else as
    logs whose type is detected from content (rotated sets are read together).

    Raises:
        InputError: a path that names nothing.
    """
    from analyze.sources import read_logs
    from capture.read import read_captures

    files = expand(paths)
    evidence = Evidence(records=SCHEMA.to_frame())
    frames: list[pl.DataFrame] = []
    logs: list[Path] = []
    parquet: list[Path] = []
    for path in files:
        if path.suffix == ".parquet":
            parquet.append(path)
        elif is_capture(path):
            result = read_captures([str(path)], observer=observer)
            evidence.notes.extend(result.warnings)
            evidence.errors.extend(result.errors)
            s = result.stats
            first, last = _time_range(result.records)
            evidence.files.append(
                EvidenceFile(
                    path=str(path), kind="pcap", log_type=None, sha256=sha256_of(path),
                    size=path.stat().st_size, first_ts=first, last_ts=last,
                    records=result.records.height,
                    skipped=s.non_ip + s.fragments + sum(s.other_ip.values())
                    + sum(s.unsupported_linktype.values()),
                    rejects=s.malformed,
                )  # fmt: skip
            )
            frames.append(result.records)
        else:
            logs.append(path)
    if parquet:
        frames.append(_read_parquet(parquet, evidence))
    if logs:
        frames.append(_read_logs(logs, evidence, observer=observer, year=year, tz=tz, read_logs=read_logs))
    if frames:
        evidence.records = pl.concat(frames, how="vertical").sort("ts", maintain_order=True)
    return evidence


def _read_parquet(paths: list[Path], evidence: Evidence) -> pl.DataFrame:
    from capture.records import latest_rows, read_records_file

    frames = []
    for folder, members in _by_folder(paths).items():
        loaded = [read_records_file(p) for p in members]
        for p, one in zip(members, loaded, strict=True):
            first, last = _time_range(one)
            evidence.files.append(
                EvidenceFile(
                    path=str(p), kind="records", log_type=None, sha256=sha256_of(p),
                    size=p.stat().st_size, first_ts=first, last_ts=last, records=one.height,
                    skipped=0, rejects=0,
                )  # fmt: skip
            )
        # A whole records folder: a live capture's repeated rows of one connection collapse
        # to the latest; files picked one by one are taken as they are.
        whole = len(members) == len([p for p in folder.glob("*.parquet") if not p.name.startswith(".")])
        frames.append(latest_rows(sorted_frames(members, loaded)) if whole else pl.concat(loaded, how="vertical"))
    return pl.concat(frames, how="vertical")


def sorted_frames(members: list[Path], loaded: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Frames in file-name order (the order a records folder was written in)."""
    return [f for _, f in sorted(zip(members, loaded, strict=True), key=lambda pair: pair[0].name)]


def _by_folder(paths: list[Path]) -> dict[Path, list[Path]]:
    out: dict[Path, list[Path]] = {}
    for p in paths:
        out.setdefault(p.parent, []).append(p)
    return out


def _read_logs(
    paths: list[Path], evidence: Evidence, *, observer: str | None, year: int | None, tz: str,
    read_logs: object,
) -> pl.DataFrame:  # fmt: skip
    result = read_logs(paths, observer=observer, year=year, tz=tz)  # type: ignore[operator]
    records, rejects, skipped = pl.collect_all([result.records, result.rejects, result.skipped])
    records = records.select(SCHEMA.names()).cast(dict(SCHEMA))
    evidence.notes.extend(result.notes)
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
        key = str(path)
        st = stats.get(key, {})
        evidence.files.append(
            EvidenceFile(
                path=key, kind="log", log_type=result.types.get(key), sha256=sha256_of(path),
                size=path.stat().st_size, first_ts=st.get("first"), last_ts=st.get("last"),
                records=int(st.get("n", 0)), skipped=int(skip_counts.get(key, 0)),
                rejects=int(reject_counts.get(key, 0)),
            )  # fmt: skip
        )
        if reject_counts.get(key):
            evidence.notes.append(f"{key}: {reject_counts[key]:,} lines could not be read (rejects)")
    return records
