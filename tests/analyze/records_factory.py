"""The one factory of connection records for analyze tests (STYLE lesson 10).

``make_conn(**overrides)`` gives one record as a dict with every ``SCHEMA`` column: an
established SSH connection captured from a pcap, unless overridden.  ``frame(*rows)``
builds the frame in ``SCHEMA``.  Timestamps may be given as ``datetime`` or as seconds
after ``T0``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from capture.schema import SCHEMA

T0 = dt.datetime(2026, 3, 7, 18, 53, 20, tzinfo=dt.UTC)
"""The default connection time."""

_counter = 0


def at(seconds: float) -> dt.datetime:
    """``T0`` plus ``seconds``."""
    return T0 + dt.timedelta(seconds=seconds)


def make_conn(**overrides: Any) -> dict[str, Any]:
    """One record; keys of ``overrides`` must be ``SCHEMA`` columns.

    ``ts`` may be a number of seconds after ``T0``; ``conn_id`` and ``origin`` default to
    a fresh id and ``["cap.pcap#<n>"]``.
    """
    global _counter
    _counter += 1
    unknown = set(overrides) - set(SCHEMA.names())
    if unknown:
        raise KeyError(f"not record columns: {sorted(unknown)}")
    row: dict[str, Any] = {name: None for name in SCHEMA.names()}
    row.update(
        conn_id=f"C{_counter:06d}",  # zero-padded: sorting by it gives creation order
        ts=T0,
        observer="web1",
        evidence=["pcap"],
        src_ip="203.0.113.7",
        src_port=40000 + _counter % 20000,
        dst_ip="10.0.0.4",
        dst_port=22,
        proto="tcp",
        service="ssh",
        state="closed",
        duration=dt.timedelta(seconds=5),
        origin=[f"cap.pcap#{_counter}"],
    )
    row.update(overrides)
    if isinstance(row["ts"], int | float):
        row["ts"] = at(row["ts"])
    return row


def frame(*rows: dict[str, Any]) -> pl.DataFrame:
    """Records -> a frame in ``SCHEMA``."""
    return pl.DataFrame(list(rows), schema=SCHEMA)
