"""Saved captures -> connection records: the library function behind ``capture read``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from capture.errors import CorruptCapture, InputError
from capture.fastpath import decode
from capture.flows import ChunkedBuilder, FlowTable, finalize
from capture.packets import DecodeStats, PacketRecord
from capture.pcapfile import CaptureFile, display_name
from capture.schema import SCHEMA

Backend = Literal["fast", "scapy", "tshark"]


@dataclass(slots=True)
class ReadResult:
    """Records from all files, plus what the user must be told."""

    records: pl.DataFrame
    """Connection records (``SCHEMA``), file by file, each in first-packet order."""
    stats: DecodeStats = field(default_factory=DecodeStats)
    """Packet counts over all files."""
    files: int = 0
    warnings: list[str] = field(default_factory=list)
    """Partial input and skipped packets: the output is still usable."""
    errors: list[str] = field(default_factory=list)
    """Files (or their remainder) that could not be read: exit non-zero."""

    def summary(self) -> str:
        """One status line: files, packets, connections."""
        return (
            f"{self.files} file(s), {self.stats.packets:,} packets "
            f"({self.stats.tcp:,} TCP, {self.stats.udp:,} UDP) -> "
            f"{self.records.height:,} connection records"
        )


def _fast_aggregates(
    path: str, stats: DecodeStats, bpf: object, chunk_bytes: int | None
) -> tuple[pl.DataFrame, str | None]:
    builder = ChunkedBuilder()
    with CaptureFile(path, **({"chunk_bytes": chunk_bytes} if chunk_bytes else {})) as cf:
        try:
            for chunk in cf.chunks():
                keep = None
                if bpf is not None:
                    buf = chunk.buf
                    keep = np.fromiter(
                        (
                            bpf.matches(lt, buf[o : o + c], w)  # type: ignore[attr-defined]
                            for lt, o, c, w in zip(
                                chunk.linktype.tolist(), chunk.off.tolist(),
                                chunk.caplen.tolist(), chunk.wirelen.tolist(), strict=True,
                            )
                        ),
                        dtype=bool,
                        count=len(chunk),
                    )  # fmt: skip
                builder.add(decode(chunk, stats, keep), chunk.buf)
        except CorruptCapture as exc:
            exc.partial = builder.aggregates()  # type: ignore[attr-defined]
            raise
        return builder.aggregates(), cf.truncated


def _table_aggregates(packets: Iterable[PacketRecord]) -> pl.DataFrame:
    table = FlowTable()
    try:
        for p in packets:
            table.add(p)
    except CorruptCapture as exc:
        exc.partial = table.aggregates()  # type: ignore[attr-defined]
        raise
    return table.aggregates()


def read_capture(
    path: str,
    *,
    backend: Backend = "fast",
    observer: str | None = None,
    bpf: object = None,
    stats: DecodeStats | None = None,
    chunk_bytes: int | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Records of one capture file and its warnings.

    ``chunk_bytes`` sets how much of the file the fast path handles at a time (tests use
    tiny chunks to put a connection's packets in different chunks).

    Raises:
        NotACapture: the file is not a capture.
        CorruptCapture: a record length is impossible; ``exc.partial_records`` holds the
            records of the packets before it.
    """
    stats = stats if stats is not None else DecodeStats()
    name = display_name(path)
    file_stats = DecodeStats()
    warnings: list[str] = []
    try:
        if backend == "fast":
            aggs, truncated = _fast_aggregates(path, file_stats, bpf, chunk_bytes)
            if truncated:
                warnings.append(truncated)
        elif backend == "scapy":
            from capture.scapy_backend import iter_packets as scapy_packets

            aggs = _table_aggregates(scapy_packets(path, file_stats, bpf=bpf))
        else:
            from capture.tshark_backend import iter_packets as tshark_packets

            expr = getattr(bpf, "expression", None)
            aggs = _table_aggregates(tshark_packets(path, file_stats, bpf=expr))
    except CorruptCapture as exc:
        partial = getattr(exc, "partial", None)
        exc.partial_records = (  # type: ignore[attr-defined]
            finalize(partial, name=name, observer=observer) if partial is not None else None
        )
        raise
    finally:
        stats.merge(file_stats)
        warnings_from_stats = file_stats.notes(name)
    warnings.extend(warnings_from_stats)
    return finalize(aggs, name=name, observer=observer), warnings


def read_captures(
    paths: Sequence[str],
    *,
    backend: Backend = "fast",
    observer: str | None = None,
    ports: frozenset[int] | None = None,
    bpf: str | None = None,
) -> ReadResult:
    """Read every capture in ``paths``; a bad file is reported and the others go on.

    Args:
        paths: pcap / pcapng files, optionally gzip-compressed; ``-`` is stdin.
        backend: ``fast`` (vectorized), ``scapy`` (reference decode) or ``tshark``.
        observer: destination host name recorded on every record.
        ports: keep only connections with one of these ports on either side.
        bpf: a tcpdump filter expression applied to packets before anything else.
    """
    flt = None
    if bpf:
        from capture.bpf import Filter

        flt = Filter(bpf)
    result = ReadResult(records=SCHEMA.to_frame())
    frames: list[pl.DataFrame] = []
    for path in paths:
        result.files += 1
        try:
            records, warnings = read_capture(
                path, backend=backend, observer=observer, bpf=flt, stats=result.stats
            )
        except CorruptCapture as exc:
            partial = getattr(exc, "partial_records", None)
            if partial is not None and partial.height:
                frames.append(partial)
                result.errors.append(f"{exc} (kept the {partial.height:,} connections before it)")
            else:
                result.errors.append(str(exc))
            continue
        except InputError as exc:
            result.errors.append(str(exc))
            continue
        frames.append(records)
        result.warnings.extend(warnings)
    if frames:
        result.records = pl.concat(frames, how="vertical")
    if ports:
        wanted = pl.Series(sorted(ports), dtype=pl.UInt16)
        result.records = result.records.filter(
            pl.col("src_port").is_in(wanted) | pl.col("dst_port").is_in(wanted)
        )
    return result
