"""Records folders: directories of Parquet files in the record schema (DESIGN.md).

``capture read -o DIR/``, ``capture live --out DIR`` and ``logs read -o DIR/`` write them;
``analyze`` reads them.  A live capture writes a long connection again at each rotation
under the same ``conn_id`` (``state=open`` until it ends): readers keep the latest row, so
nothing is counted twice.  Files sort by name in the order they were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from capture.errors import InputError
from capture.schema import SCHEMA


def record_files(folder: Path) -> list[Path]:
    """The folder's complete record files, oldest first (temporary files are ignored)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a records folder")
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def scan_records_file(path: Path) -> pl.LazyFrame:
    """One Parquet records file as a scan, checked against and cast to the record schema
    (only its metadata is read here).

    Raises:
        InputError: not readable as Parquet, or not in the record schema.
    """
    try:
        scan = pl.scan_parquet(path)
        names = scan.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet records file: {exc}") from exc
    if "src_host" not in names:  # written before the column existed: no host names
        scan = scan.with_columns(src_host=pl.lit(None, pl.String))
        names.append("src_host")
    missing = [c for c in SCHEMA.names() if c not in names]
    if missing:
        raise InputError(f"{path}: not in the record schema (missing {', '.join(missing)})")
    return scan.select(SCHEMA.names()).cast(dict(SCHEMA))


def read_records_file(path: Path) -> pl.DataFrame:
    """One Parquet records file, checked against and cast to the record schema.

    Raises:
        InputError: not readable as Parquet, or not in the record schema.
    """
    scan = scan_records_file(path)
    try:
        return scan.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet records file: {exc}") from exc


def read_folder(folder: Path) -> pl.DataFrame:
    """All records of a folder, one row per ``conn_id`` (the latest written wins).

    Raises:
        InputError: the folder does not exist, or a file is not in the record schema.
    """
    files = record_files(folder)
    if not files:
        return SCHEMA.to_frame()
    return latest_rows([read_records_file(path) for path in files])


def latest_rows(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Frames of one folder, oldest first, as one table with the latest row per ``conn_id``."""
    if not frames:
        return SCHEMA.to_frame()
    tagged = [f.with_columns(_seq=pl.lit(i), _row=pl.int_range(pl.len())) for i, f in enumerate(frames)]
    return (
        pl.concat(tagged, how="vertical")
        .sort("_seq", "_row")
        .unique(subset="conn_id", keep="last", maintain_order=True)
        .sort("ts", "_seq", "_row")
        .drop("_seq", "_row")
    )


@dataclass(slots=True)
class Inputs:
    """What a list of capture-side inputs holds, sorted out before anything is read."""

    captures: list[str] = field(default_factory=list)
    """pcap / pcapng files (``-`` is stdin); a named file that is not one stays here, for
    the reader to report."""
    records: list[Path] = field(default_factory=list)
    """Records folders and single records (``.parquet``) files."""
    skipped: list[Path] = field(default_factory=list)
    """Files met in a folder that are not captures or records (READMEs, logs, ...), or the
    other files of a records folder (a live capture's raw pcaps hold the same connections)."""


def split_inputs(paths: Sequence[str]) -> Inputs:
    """Sort ``paths`` into captures, records and skipped files.

    A folder holding ``*.parquet`` files is a records folder; any other folder stands for
    the captures in it (not hidden, not recursive).
    """
    from capture.pcapfile import is_capture

    out = Inputs()
    for raw in paths:
        path = Path(raw)
        if raw != "-" and path.is_dir():
            members = sorted(p for p in path.iterdir() if not p.name.startswith("."))
            if record_files(path):
                out.records.append(path)
                out.skipped.extend(p for p in members if p.suffix != ".parquet")
                continue
            for member in members:
                if member.is_file() and is_capture(member):
                    out.captures.append(str(member))
                else:
                    out.skipped.append(member)
        elif raw != "-" and path.suffix == ".parquet":
            out.records.append(path)
        else:
            out.captures.append(raw)
    return out


def read_records(path: Path) -> pl.DataFrame:
    """A records folder (latest row per ``conn_id``) or one records file.

    Raises:
        InputError: not readable, or not in the record schema.
    """
    return read_folder(path) if path.is_dir() else read_records_file(path)
