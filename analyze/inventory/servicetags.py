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
