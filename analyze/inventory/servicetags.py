"""Azure Service Tags JSON (``ServiceTags_Public_*.json``, China, Government; ``az network
list-service-tags``).

Spec: https://learn.microsoft.com/azure/virtual-network/service-tags-overview and
docs/azure-egress.md §4.  Every prefix becomes one row of ``SERVICE_TAGS_SCHEMA`` with its
tag, region and system service; IPv4 rows carry integer ``start`` / ``end`` for range joins.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from analyze.inventory.model import SERVICE_TAGS_SCHEMA
from analyze.inventory.node import Node
from capture.errors import InventoryError, clip

NAME = "service-tags"
"""Loader name, for messages."""


def detect(doc: Any) -> bool:
    """Whether ``doc`` is a Service Tags file or API response."""
    if not isinstance(doc, Mapping):
        return False
    keys = {k.lower(): v for k, v in doc.items() if isinstance(k, str)}
    values = keys.get("values")
    return isinstance(values, list) and ("cloud" in keys or "changenumber" in keys)


def rows(tag: str, region: str, system_service: str, prefixes: Iterable[str], where: str) -> list[dict[str, Any]]:
    """Rows of ``SERVICE_TAGS_SCHEMA`` for one tag; InventoryError naming ``where`` on junk."""
    out = []
    for i, text in enumerate(prefixes):
        try:
            net = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            raise InventoryError(f"{where}[{i}]: not a CIDR: {clip(text)}") from None
        v4 = net.version == 4
        out.append(
            {
                "tag": tag,
                "region": region,
                "system_service": system_service,
                "prefix": str(net),
                "ip_version": net.version,
                "start": int(net.network_address) if v4 else None,
                "end": int(net.broadcast_address) if v4 else None,
                "prefix_len": net.prefixlen,
            }
        )
    return out


def frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows -> a frame in ``SERVICE_TAGS_SCHEMA``."""
    return pl.DataFrame(records, schema=SERVICE_TAGS_SCHEMA)


def load(doc: Mapping[str, Any], source: str) -> pl.DataFrame:
    """Read a Service Tags document into a frame in ``SERVICE_TAGS_SCHEMA``."""
    node = Node(doc, "$", source)
    records: list[dict[str, Any]] = []
    for tag in node.objs("values"):
        name = tag.text("name", "id")
        if name is None:
            raise tag.error("service tag without a name")
        key = next(
            (k for k in ("addressPrefixes",) if tag.has(k)), "addressPrefixes"
        )
        records += rows(
            name,
            tag.text("region") or "",
            tag.text("systemService") or "",
            tag.strs(key),
            f"{source}: {tag.path}.properties.{key}",
        )
    return frame(records)


RANGES_SCHEMA = pl.Schema(
    {
        # A non-overlapping IPv4 range, first and last address as integers.
        "start": pl.UInt32(),
        "end": pl.UInt32(),
        # The most specific tag holding the range (longest prefix; ties: first by name).
        "tag": pl.String(),
        "region": pl.String(),
        # Every tag holding the range, general to specific.
        "tags": pl.List(pl.String()),
    }
)


def flatten(tags: pl.DataFrame) -> pl.DataFrame:
    """IPv4 prefixes of ``tags`` as non-overlapping ranges labelled by their most specific tag.

    Service Tags nest (AzureCloud ⊃ AzureCloud.region ⊃ Service.region); CIDRs either nest
    or are disjoint, so one sweep over the prefixes sorted by (start, widest first) with a
    stack of the prefixes still open cuts them into ranges that each belong to the innermost
    one.  The result is sorted by ``start``, ready for ``join_asof`` (then drop matches past
    ``end``).

    Args:
        tags: A frame in ``SERVICE_TAGS_SCHEMA``.

    Returns:
        A frame in ``RANGES_SCHEMA``.
    """
    v4 = (
        tags.filter(pl.col("ip_version") == 4)
        .select("start", "end", pl.col("tag", "region").cast(pl.String))
        .group_by("start", "end")
        .agg(pl.col("tag").sort(), pl.col("region").sort_by("tag"))
        .sort(["start", "end"], descending=[False, True])
    )
    out: list[tuple[int, int, str, str, list[str]]] = []
    stack: list[tuple[int, list[str], str, str, list[str]]] = []  # end, tags so far, tag, region
    cursor = 0

    def emit(first: int, last: int, frame: tuple[int, list[str], str, str, list[str]]) -> None:
        if first <= last:
            out.append((first, last, frame[2], frame[3], frame[1]))

    for start, end, names, regions in v4.iter_rows():
        while stack and stack[-1][0] < start:
            top = stack.pop()
            emit(cursor, top[0], top)
            cursor = top[0] + 1
        if stack:
            emit(cursor, start - 1, stack[-1])
        cursor = start
        outer = stack[-1][1] if stack else []
        stack.append((end, outer + list(names), names[0], regions[0], []))
    while stack:
        top = stack.pop()
        emit(cursor, top[0], top)
        cursor = top[0] + 1
    return pl.DataFrame(out, schema=RANGES_SCHEMA, orient="row")
