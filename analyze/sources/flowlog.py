"""Azure NSG (v1, v2) and VNet flow logs; https://learn.microsoft.com/azure/network-watcher/vnet-flow-logs-overview

Both are JSON blobs ``{"records": [...]}``.  NSG tuples sit under
``records[].properties.flows[].flows[].flowTuples`` as
``ts,src,dst,sport,dport,T|U,I|O,A|D[,B|C|E,pkts_s2d,bytes_s2d,pkts_d2s,bytes_d2s]``;
VNet tuples under ``records[].flowRecords.flows[].flowGroups[].flowTuples`` as
``ts,src,dst,sport,dport,proto#,I|O,B|C|E|D,encryption,pkts_s2d,bytes_s2d,pkts_d2s,bytes_d2s``.
Timestamps are epoch seconds or milliseconds, told apart by magnitude.  Tuples of one
5-tuple (begin, continuing, end) become one record; ``origin`` is ``file:N`` with N the
tuple's ordinal in the file.  Flow-log byte counts include headers, so only the packet
counts are kept (the schema's byte columns are payload bytes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import polars as pl

from analyze.sources._common import (
    REJECTS_SCHEMA,
    Scan,
    conform,
    origin,
    from_epoch_seconds,
    rejects_of,
    scan_each,
    scan_lines,
)
from capture.errors import clip
from capture.schema import SCHEMA

__all__ = ["DOCUMENT", "NAME", "SCHEMA", "looks_like", "scan"]

NAME: Final = "flowlog"

_TUPLES: Final = pl.List(pl.String)
DOCUMENT: Final = pl.Struct(
    {
        "records": pl.List(
            pl.Struct(
                {
                    "time": pl.String,
                    "macAddress": pl.String,
                    "properties": pl.Struct(
                        {
                            "Version": pl.Int64,
                            "flows": pl.List(
                                pl.Struct(
                                    {
                                        "rule": pl.String,
                                        "flows": pl.List(
                                            pl.Struct({"mac": pl.String, "flowTuples": _TUPLES})
                                        ),
                                    }
                                )
                            ),
                        }
                    ),
                    "flowRecords": pl.Struct(
                        {
                            "flows": pl.List(
                                pl.Struct(
                                    {
                                        "aclID": pl.String,
                                        "flowGroups": pl.List(
                                            pl.Struct({"rule": pl.String, "flowTuples": _TUPLES})
                                        ),
                                    }
                                )
                            )
                        }
                    ),
                }
            )
        )
    }
)
"""The parts of an NSG / VNet flow log blob that are read (other keys are ignored)."""

_TUPLE_RE: Final = (
    r"^(?<ts>[0-9]+),(?<src>[^,]+),(?<dst>[^,]+),(?<sport>[0-9]*),(?<dport>[0-9]*),"
    r"(?<proto>[A-Za-z0-9]+),(?<dir>[IO]),(?<flag>[ADBCE])"
    r"(?:,(?<state>[A-Z_]*)(?:,(?<p1>[0-9]*),(?<b1>[0-9]*),(?<p2>[0-9]*),(?<b2>[0-9]*))?)?$"
)
_PROTO: Final = {"T": "tcp", "U": "udp", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmp"}


def looks_like(lines: Sequence[str]) -> bool:
    """True for a flow log blob (``records`` with flow tuples)."""
    head = "".join(lines)[:4096]
    markers = ("flowTuples", "NetworkSecurityGroupFlowEvent", "FlowLogFlowEvent", "flowRecords")
    return '"records"' in head and any(m in head for m in markers)


def _tuples(doc: pl.LazyFrame) -> pl.LazyFrame:
    """The document -> one row per tuple: ``observer``, ``tuple`` (text), ``vnet`` (bool)."""
    rec = doc.select(r=pl.col("doc").struct.field("records")).explode("r").unnest("r")
    nsg = (
        rec.select(f=pl.col("properties").struct.field("flows"))
        .explode("f")
        .select(g=pl.col("f").struct.field("flows"))
        .explode("g")
        .select(
            observer=pl.col("g").struct.field("mac"),
            tuple=pl.col("g").struct.field("flowTuples"),
            vnet=pl.lit(False),
        )
    )
    vnet = (
        rec.select(
            mac=pl.col("macAddress"), f=pl.col("flowRecords").struct.field("flows")
        )
        .explode("f")
        .select("mac", g=pl.col("f").struct.field("flowGroups"))
        .explode("g")
        .select(
            observer=pl.col("mac"),
            tuple=pl.col("g").struct.field("flowTuples"),
            vnet=pl.lit(True),
        )
    )
    both = pl.concat([nsg, vnet]).explode("tuple").filter(pl.col("tuple").is_not_null())
    return both.with_row_index("lineno", offset=1)


def _none_skipped(path: Path) -> pl.LazyFrame:
    """A blob has no lines to skip: one row with zero."""
    return pl.LazyFrame(
        {"source": [str(path)], "skipped": [0]}, schema={"source": pl.String, "skipped": pl.UInt32}
    )


def _scan_one(path: Path, observer: str | None) -> tuple[Scan, list[str]]:
    lines, notes = scan_lines(path)
    # Validate the JSON once up front: a broken blob becomes one reject and a note,
    # not an exception in the middle of the lazy plan.
    text = "\n".join(lines.select("line").collect().to_series().to_list())
    try:
        parsed = json.loads(text)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("records"), list):
            raise ValueError("expected an object with a \"records\" list")
        # Decoded now, not in the lazy plan: a document of the wrong shape is a reject
        # here rather than a ComputeError when the records are collected.
        doc = pl.DataFrame({"text": [text]}).select(
            doc=pl.col("text").str.json_decode(DOCUMENT)
        ).lazy()
    except (json.JSONDecodeError, ValueError, pl.exceptions.PolarsError) as exc:
        where = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else (
            str(exc).splitlines()[0][:120]
        )  # fmt: skip
        notes.append(f"{path}: not a flow log JSON document ({where})")
        bad = pl.LazyFrame(
            {"source": [str(path)], "lineno": [getattr(exc, "lineno", 1)], "line": [clip(text, 200)]},
            schema=REJECTS_SCHEMA,
        )
        return Scan(
            records=SCHEMA.to_frame().lazy(),
            rejects=bad,
            skipped=_none_skipped(path),
        ), notes
    tuples = _tuples(doc).with_columns(
        source=pl.lit(str(path)),
        _t=pl.col("tuple").str.extract_groups(_TUPLE_RE),
    ).unnest("_t")
    raw = pl.col("ts").cast(pl.Int64, strict=False)
    # epoch seconds, or milliseconds (VNet flow logs); a time past 9999 is no date: a reject
    seconds = pl.when(raw > 100_000_000_000).then(raw / 1_000).otherwise(raw)
    ok = pl.col("ts").is_not_null() & from_epoch_seconds(seconds).is_not_null()
    micros = pl.when(raw > 100_000_000_000).then(raw * 1_000).otherwise(raw * 1_000_000)
    # NSG: flag is the decision (A/D) and state follows; VNet: flag is the state (B/C/E/D).
    state_letter = pl.when(pl.col("vnet")).then(pl.col("flag")).otherwise(
        pl.when(pl.col("flag") == "D").then(pl.lit("D")).otherwise(pl.col("state"))
    )
    flows = tuples.filter(ok).with_columns(
        t=pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC"),
        st=state_letter,
        observer=pl.coalesce(pl.lit(observer, pl.String), pl.col("observer")),
    )
    key = ["observer", "src", "dst", "sport", "dport", "proto"]
    records = (
        flows.group_by(key)
        .agg(
            ts=pl.col("t").min(),
            last=pl.col("t").max(),
            lineno=pl.col("lineno").min(),
            source=pl.col("source").first(),
            st=pl.col("st").sort_by("t", "lineno").last(),
            orig_pkts=pl.col("p1").cast(pl.UInt64, strict=False).sum(),
            resp_pkts=pl.col("p2").cast(pl.UInt64, strict=False).sum(),
            counted=pl.col("p1").is_not_null().any(),
        )
        .with_columns(
            **origin(NAME),
            duration=pl.col("last") - pl.col("ts"),
            src_ip=pl.col("src"),
            dst_ip=pl.col("dst"),
            src_port=pl.col("sport").cast(pl.UInt16, strict=False),
            dst_port=pl.col("dport").cast(pl.UInt16, strict=False),
            proto=pl.col("proto").replace_strict(_PROTO, default="other"),
            state=pl.col("st").replace_strict(
                {"D": "rejected", "E": "closed", "B": "established", "C": "established"},
                default="established",
            ),
            orig_pkts=pl.when(pl.col("counted")).then(pl.col("orig_pkts")),
            resp_pkts=pl.when(pl.col("counted")).then(pl.col("resp_pkts")),
        )
    )
    scan = Scan(
        records=conform(records).sort("ts", "conn_id"),
        rejects=rejects_of(tuples.filter(~ok).rename({"tuple": "line"})),
        skipped=_none_skipped(path),
    )
    return scan, notes


def scan(paths: Sequence[Path], *, observer: str | None = None) -> Scan:
    """Read NSG / VNet flow log blobs into one record per flow 5-tuple.

    Args:
        paths: ``PT1H.json`` blobs (``.gz`` or not).
        observer: name to record as observer (default: the NIC MAC address of the flow).

    Returns:
        A lazy ``Scan``; malformed tuples are rejects (``lineno`` = tuple ordinal).

    Raises:
        InputError: a file cannot be read.
    """
    return scan_each(paths, lambda p: _scan_one(p, observer))
