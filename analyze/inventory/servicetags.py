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
    """Read a Service Tags document into a frame in ``SERVICE_TAGS_SCHEMA``.

    One Python step per tag (a few thousand); the ~100,000 prefixes are parsed as one
    frame by ``parse_prefixes``.
    """
    node = Node(doc, "$", source)
    names: list[str] = []
    regions: list[str] = []
    services: list[str] = []
    paths: list[str] = []
    prefixes: list[list[str]] = []
    for tag in node.objs("values"):
        name = tag.text("name", "id")
        if name is None:
            raise tag.error("service tag without a name")
        names.append(name)
        regions.append(tag.text("region") or "")
        services.append(tag.text("systemService") or "")
        paths.append(f"{source}: {tag.path}.properties.addressPrefixes")
        prefixes.append(tag.strs("addressPrefixes"))
    per_tag = pl.DataFrame(
        {"tag": names, "region": regions, "system_service": services, "where": paths,
         "text": prefixes},
        schema={"tag": pl.String, "region": pl.String, "system_service": pl.String,
                "where": pl.String, "text": pl.List(pl.String)},
    )  # fmt: skip
    flat = (
        per_tag.with_columns(pl.int_ranges(pl.col("text").list.len()).alias("i"))
        .explode("text", "i")
        .drop_nulls("text")
    )
    parsed = pl.concat([flat, parse_prefixes(flat.get_column("text"))], how="horizontal")
    bad = parsed.filter(~pl.col("ok"))
    if bad.height:
        where, i, text = bad.row(0, named=True)["where"], bad["i"][0], bad["text"][0]
        raise InventoryError(f"{where}[{i}]: not a CIDR: {clip(text)}")
    return parsed.select(
        pl.col(c).cast(t) for c, t in SERVICE_TAGS_SCHEMA.items()
    )


_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_V4_RE = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(\d{{1,3}}))?$"
_V6_RE = r"^([0-9a-f:]+)(?:/(\d{1,3}))?$"


def parse_prefixes(texts: pl.Series) -> pl.DataFrame:
    """CIDR texts -> ``prefix``, ``ip_version``, ``start``, ``end``, ``prefix_len``, ``ok``.

    Whole-column string and integer expressions, the same answers as
    ``ipaddress.ip_network(text, strict=False)`` (tested against it): IPv4 host bits are
    masked and the prefix is written canonically; IPv6 prefixes are checked (hex groups of
    at most four digits, eight groups or one ``::``) and kept as written, lower case.  The
    rare IPv6 forms this does not read (an embedded dotted IPv4 tail) go to ``ipaddress``.
    ``ok`` is false for text that is not a CIDR.
    """
    t = pl.col("t")
    frame = pl.DataFrame({"t": texts.cast(pl.String).str.strip_chars().str.to_lowercase()})
    v4 = t.str.extract_groups(_V4_RE)
    frame = frame.with_columns(v4.alias("m4"))
    octets = [pl.col("m4").struct.field(str(k)).cast(pl.Int64, strict=False) for k in (1, 2, 3, 4)]
    plen4 = pl.col("m4").struct.field("5").cast(pl.Int64, strict=False).fill_null(32)
    addr4 = (octets[0] * (1 << 24)) + (octets[1] * (1 << 16)) + (octets[2] * (1 << 8)) + octets[3]
    size4 = pl.lit(2, pl.Int64).pow(32 - plen4.clip(0, 32))
    start4 = addr4 - (addr4 % size4)
    ok4 = (
        pl.col("m4").struct.field("1").is_not_null()
        & (plen4 <= 32)
    )
    m6 = t.str.extract_groups(_V6_RE)
    addr6 = pl.col("m6").struct.field("1")
    plen6 = pl.col("m6").struct.field("2").cast(pl.Int64, strict=False).fill_null(128)
    groups = addr6.str.split(":").list.eval(pl.element().filter(pl.element() != "")).list.len()
    doubles = addr6.str.count_matches("::")
    ok6 = (
        addr6.is_not_null()
        & ~addr6.str.contains("[0-9a-f]{5}|:::")
        & (plen6 <= 128)
        & (
            ((doubles == 0) & (groups == 8) & ~addr6.str.contains("^:|:$"))
            | ((doubles == 1) & (groups <= 7) & ~addr6.str.contains("^:[^:]|[^:]:$"))
        )
    )
    frame = frame.with_columns(m6.alias("m6")).with_columns(
        ok4.fill_null(False).alias("ok4"), ok6.fill_null(False).alias("ok6"),
        start4.alias("start4"), plen4.alias("plen4"), plen6.alias("plen6"),
    )  # fmt: skip
    out = frame.select(
        pl.when("ok4")
        .then(
            pl.concat_str(
                [(pl.col("start4") // (1 << s) % 256).cast(pl.String) for s in (24, 16, 8, 0)],
                separator=".",
            )
            + "/" + pl.col("plen4").cast(pl.String)
        )
        .when("ok6")
        .then(pl.col("m6").struct.field("1") + "/" + pl.col("plen6").cast(pl.String))
        .alias("prefix"),
        pl.when("ok4").then(4).when("ok6").then(6).cast(pl.UInt8).alias("ip_version"),
        pl.when("ok4").then(pl.col("start4")).cast(pl.UInt32).alias("start"),
        pl.when("ok4")
        .then(pl.col("start4") + pl.lit(2, pl.Int64).pow(32 - pl.col("plen4")) - 1)
        .cast(pl.UInt32)
        .alias("end"),
        pl.when("ok4").then("plen4").when("ok6").then("plen6").cast(pl.UInt8).alias("prefix_len"),
        (pl.col("ok4") | pl.col("ok6")).alias("ok"),
        pl.col("t"),
    )
    # Dotted IPv4 tails in IPv6 text ("::ffff:1.2.3.4/128"): rare; let ipaddress read them.
    odd = out.with_row_index("row").filter(~pl.col("ok") & pl.col("t").str.contains(":"))
    if odd.height:
        fixes = []
        for row, text in odd.select("row", "t").iter_rows():
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError:
                continue
            if net.version == 6:
                fixes.append((row, str(net), net.prefixlen))
        if fixes:
            fix = pl.DataFrame(fixes, schema={"row": pl.UInt32, "fp": pl.String, "fl": pl.UInt8}, orient="row")
            out = (
                out.with_row_index("row").join(fix, on="row", how="left", maintain_order="left")
                .with_columns(
                    pl.coalesce("prefix", "fp").alias("prefix"),
                    pl.when(pl.col("fp").is_not_null()).then(6).otherwise("ip_version").cast(pl.UInt8).alias("ip_version"),
                    pl.coalesce("prefix_len", "fl").alias("prefix_len"),
                    (pl.col("ok") | pl.col("fp").is_not_null()).alias("ok"),
                )
                .drop("row", "fp", "fl")
            )  # fmt: skip
    return out.drop("t")


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
