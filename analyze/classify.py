"""Classify observed source addresses: which egress path of which VMs produced them.

The inverse of prediction (docs/azure-egress.md §1.4).  Every record's ``src_ip`` gets
exactly one DESIGN.md class, from three layers, first hit wins:

1. **the inventory**: public IPs and prefixes (labelled by their owner: LB frontend,
   instance public IP, NAT gateway, firewall), ipconfig private addresses, subnets, VNet
   address spaces and peered prefixes (``private``), private endpoints, known ranges
   (``onprem``: ``private``; others: ``external`` with the range as resource).  The most
   specific inventory entry wins; an address the inventory holds that is no VM egress
   (Application Gateway, unattached public IP, a proxy) is ``unknown`` with its resource
   named and confidence ``strong``.
2. **Service Tags**: an Azure-owned address the inventory does not hold is ``default_snat``
   (a candidate: AzureCloud holds every tenant's addresses).
3. otherwise ``external`` when Service Tags are loaded, ``unknown`` when not.

``service_tag`` and ``region`` name the most specific tag holding the address whatever the
class (an LB frontend is in ``AzureCloud.<region>`` too).  Unparseable text is ``unknown``
with scope ``invalid``; ``::ffff:a.b.c.d`` is the IPv4 address it maps.

How: the work is done once per *distinct* address, then joined back to the records.
Address text becomes integer keys in polars expressions (IPv4 ``UInt32``; IPv6 as two
``UInt64`` halves, since ``UInt128`` is unstable).  Each layer's CIDRs are flattened once,
in ``AddressIndex.build``, into non-overlapping ranges whose label is the innermost
(most specific) block; lookups are ``join_asof`` on the sorted range starts, then a
check against the range end.  IPv6 blocks up to /64 are flattened on the high half;
longer ones (Azure gives /124-/127 public prefixes, the inventory /128 addresses) are
looked up by exact high half plus a range check on the low half.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

import polars as pl

from analyze.inventory.addresses import address_table as inventory_addresses
from analyze.inventory.model import ANY_TAGS, Allowlist, Inventory
from analyze.predict import Prediction
from capture.schema import EGRESS_CLASS, EGRESS_VIA, SCHEMA

Confidence = Literal["strong", "weak"]
"""``strong``: the inventory holds the address, or a default SNAT candidate whose tag region
matches a VM predicted to use default SNAT there.  ``weak``: anything else."""

Scope = Literal[
    "global", "private", "shared", "loopback", "link_local", "multicast", "unspecified",
    "reserved", "invalid",
]  # fmt: skip
"""What kind of address it is by itself (RFC 6890), independent of the inventory.

``private``: RFC 1918 / IPv6 ULA ``fc00::/7``; ``shared``: RFC 6598 ``100.64.0.0/10``;
``reserved``: ``240.0.0.0/4`` and ``0.0.0.0/8`` but ``0.0.0.0``; ``invalid``: not an
address at all."""

CONFIDENCE: Final = pl.Enum(list(get_args(Confidence)))
SCOPE: Final = pl.Enum(list(get_args(Scope)))

ADDRESS_COLUMNS: Final = pl.Schema(
    {
        # DESIGN.md class: never null.
        "class": EGRESS_CLASS,
        # lb_frontend only: outbound_rule, lb_rule or nat_rule.
        "via": EGRESS_VIA,
        # The inventory resource holding the address: "mylb/LoadBalancerFrontEnd",
        # "vm1-nic/ipconfig1", "ngw1", "vnet1/app", a known range's name; null otherwise.
        "resource": pl.String(),
        # VMs whose predicted egress produces this address (for `private`: the VM whose
        # ipconfig address it is, none for the rest of a subnet / VNet; for `default_snat`:
        # the VMs predicted default SNAT, region-matched when regions are known).
        "candidate_vms": pl.List(pl.String()),
        # Most specific Service Tag holding the address (any class); null if none.
        "service_tag": pl.String(),
        # That tag's region; null for global tags and when no tag holds the address.
        "region": pl.String(),
        "confidence": CONFIDENCE,
        "scope": SCOPE,
        # 4 or 6 (4 for ::ffff:-mapped IPv4); null when invalid.
        "ip_version": pl.UInt8(),
        # Name of the inventory proxy this address belongs to (its XFF is trusted).
        "proxy": pl.String(),
    }
)
"""Per-address classification columns (added to records, and returned by ``classify_addresses``)."""

CLIENT_COLUMNS: Final = pl.Schema(
    {
        # When the TCP peer (src_ip) is an inventory proxy and the request has an
        # X-Forwarded-For: the client address (rightmost entry that is not a proxy itself),
        # classified like src_ip.  Null on every other row.
        "client_ip": pl.String(),
        "client_class": EGRESS_CLASS,
        "client_via": EGRESS_VIA,
        "client_resource": pl.String(),
        "client_candidate_vms": pl.List(pl.String()),
        "client_service_tag": pl.String(),
        "client_region": pl.String(),
        "client_confidence": CONFIDENCE,
    }
)
"""Classification of the X-Forwarded-For client behind an inventory proxy."""

CLASSIFIED_SCHEMA: Final = pl.Schema({**SCHEMA, **ADDRESS_COLUMNS, **CLIENT_COLUMNS})
"""What ``classify`` returns: the record schema, then ``ADDRESS_COLUMNS``, then ``CLIENT_COLUMNS``."""

ADDRESSES_SCHEMA: Final = pl.Schema(
    {
        "ip": pl.String(),
        **ADDRESS_COLUMNS,
        # VMs attached to the owning inventory resource whatever their prediction (pool
        # members, the NIC's VM): who *could* be behind it if the inventory is stale.
        # Not on every record: findings look it up for the few addresses that need it.
        "owner_vms": pl.List(pl.String()),
        # Every Service Tag holding the address, general to specific (``Allowlist.allows``).
        "service_tags": pl.List(pl.String()),
    }
)
"""What ``classify_addresses`` returns: the address, its columns, its owners and its tags."""

_V4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_RE = rf"^{_V4_OCTET}(?:\.{_V4_OCTET}){{3}}$"
_V6_FULL_RE = r"^(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$"
_U64: Final = pl.UInt64()
_LABEL: Final = pl.UInt32()

# --- text -> integer keys ---------------------------------------------------------------


def _v4_int(dotted: pl.Expr) -> pl.Expr:
    """Dotted quad (already validated) -> UInt32."""
    parts = dotted.str.split_exact(".", 3)
    octets = [parts.struct.field(f"field_{i}").cast(pl.UInt32) for i in range(4)]
    return (octets[0] * 16777216 + octets[1] * 65536 + octets[2] * 256 + octets[3]).cast(pl.UInt32)


def _parse(lf: pl.LazyFrame, column: str = "ip") -> pl.LazyFrame:
    """Add ``ip_version``, ``k4`` (UInt32), ``hi`` / ``lo`` (UInt64) parsed from ``column``.

    Accepts every textual form Python's ``ipaddress`` does (compressed, exploded, upper
    case, an IPv4 tail in IPv6), plus a ``%scope`` zone id, which it drops.  IPv4-mapped
    IPv6 (``::ffff:0:0/96``) becomes IPv4.  Anything else gets null keys and version.
    Each step is its own ``with_columns`` so that no sub-expression is repeated.
    """
    s, tail, head, zeros, full = (pl.col(f"_p_{n}") for n in ("s", "tail", "head", "zeros", "full"))
    lf = lf.with_columns(
        pl.col(column).str.strip_chars().str.to_lowercase().str.replace(r"%.*$", "").alias("_p_s")
    ).with_columns(
        pl.when(s.str.contains(_V4_RE)).then(s).alias("_p_v4"),
        # an IPv4 tail of an IPv6 address
        s.str.extract(r":([0-9]+\.[0-9.]*)$", 1).alias("_p_tail"),
    ).with_columns(
        tail.str.contains(_V4_RE).alias("_p_tail_ok"),
    ).with_columns(
        # the tail becomes two zero groups here and is added to `lo` below
        pl.when(tail.is_null()).then(s)
        .when(pl.col("_p_tail_ok")).then(s.str.replace(r"[0-9.]+$", "0:0"))
        .alias("_p_head"),
    ).with_columns(
        (8 - head.str.count_matches("[0-9a-f]+").cast(pl.Int32)).alias("_p_zeros"),
    ).with_columns(
        (
            head.str.contains(r"^(?:::|[0-9a-f])[0-9a-f:]*$")
            & (head.str.count_matches("::") <= 1)
            & ~head.str.contains(r"[^:]:$")
            & (~head.str.contains("::") | (zeros >= 1))
        ).alias("_p_plain"),
        # "::" becomes as many zero groups as are missing
        pl.when(head.str.contains("::"))
        .then(
            head.str.replace("::", pl.lit(":0" * 8).str.slice(0, 2 * zeros.clip(0, 8)) + ":", literal=True)
            .str.strip_chars(":")
        )
        .otherwise(head)
        .alias("_p_full"),
    ).with_columns(
        pl.when(pl.col("_p_plain") & full.str.contains(_V6_FULL_RE)).then(full).str.split_exact(":", 7).alias("_p_g"),
    ).with_columns(
        pl.col("_p_g").struct.field(f"field_{i}").str.to_integer(base=16, strict=False).cast(_U64).alias(f"_p_g{i}")
        for i in range(8)
    ).with_columns(
        sum((pl.col(f"_p_g{i}") * (1 << (48 - 16 * i)) for i in range(4)), pl.lit(0, _U64)).alias("_p_hi"),
        (
            sum((pl.col(f"_p_g{i + 4}") * (1 << (48 - 16 * i)) for i in range(4)), pl.lit(0, _U64))
            + pl.when(pl.col("_p_tail_ok")).then(_v4_int(tail).cast(_U64)).otherwise(0)
        ).alias("_p_lo"),
        _v4_int(pl.col("_p_v4")).alias("_p_k4"),
    ).with_columns(
        ((pl.col("_p_hi") == 0) & (pl.col("_p_lo") // (1 << 32) == 0xFFFF)).alias("_p_mapped"),
    )
    hi, lo, mapped, v4 = pl.col("_p_hi"), pl.col("_p_lo"), pl.col("_p_mapped"), pl.col("_p_k4")
    return lf.with_columns(
        pl.when(v4.is_not_null()).then(4).when(mapped).then(4).when(hi.is_not_null()).then(6)
        .cast(pl.UInt8).alias("ip_version"),
        pl.when(v4.is_not_null()).then(v4).when(mapped).then((lo % (1 << 32)).cast(pl.UInt32)).alias("k4"),
        pl.when(v4.is_null() & ~mapped).then(hi).alias("hi"),
        pl.when(v4.is_null() & ~mapped).then(lo).alias("lo"),
    ).drop(pl.selectors.starts_with("_p_"))


def _scope() -> pl.Expr:
    """RFC 6890 scope from the parsed keys (see ``Scope``)."""
    k4, hi, lo = pl.col("k4"), pl.col("hi"), pl.col("lo")

    def in4(net: str) -> pl.Expr:
        n = ipaddress.IPv4Network(net)
        return k4.is_between(int(n.network_address), int(n.broadcast_address))

    def in6(net: str) -> pl.Expr:
        n = ipaddress.IPv6Network(net)
        assert n.prefixlen <= 64
        return hi.is_between(int(n.network_address) >> 64, int(n.broadcast_address) >> 64)

    v4 = (
        pl.when(k4 == 0).then(pl.lit("unspecified"))
        .when(in4("127.0.0.0/8")).then(pl.lit("loopback"))
        .when(in4("10.0.0.0/8") | in4("172.16.0.0/12") | in4("192.168.0.0/16")).then(pl.lit("private"))
        .when(in4("100.64.0.0/10")).then(pl.lit("shared"))
        .when(in4("169.254.0.0/16")).then(pl.lit("link_local"))
        .when(in4("224.0.0.0/4")).then(pl.lit("multicast"))
        .when(in4("240.0.0.0/4") | in4("0.0.0.0/8")).then(pl.lit("reserved"))
        .otherwise(pl.lit("global"))
    )  # fmt: skip
    v6 = (
        pl.when((hi == 0) & (lo == 0)).then(pl.lit("unspecified"))
        .when((hi == 0) & (lo == 1)).then(pl.lit("loopback"))
        .when(in6("fc00::/7")).then(pl.lit("private"))
        .when(in6("fe80::/10")).then(pl.lit("link_local"))
        .when(in6("ff00::/8")).then(pl.lit("multicast"))
        .otherwise(pl.lit("global"))
    )  # fmt: skip
    version = pl.col("ip_version")
    return (
        pl.when(version == 4).then(v4).when(version == 6).then(v6).otherwise(pl.lit("invalid"))
        .cast(SCOPE)
    )  # fmt: skip


# --- range sets ----------------------------------------------------------------------------

_V4_RANGES = pl.Schema({"start": pl.UInt32(), "end": pl.UInt32(), "label": _LABEL})
_V6_WIDE = pl.Schema({"start": _U64, "end": _U64, "label": _LABEL})
_V6_NARROW = pl.Schema({"hi": _U64, "lo_start": _U64, "lo_end": _U64, "plen": pl.UInt8(), "label": _LABEL})


_Block = tuple[int, int, int, int]
"""A CIDR as integers: (version, first address, last address, prefix length)."""


def _cidr(text: str) -> _Block:
    """CIDR or address text -> ``_Block``; IPv4 without ``ipaddress`` (it is 10x slower).

    Raises:
        ValueError: not an address or CIDR.
    """
    head, _, bits = text.strip().partition("/")
    parts = head.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts) and (not bits or bits.isdigit()):
        octets = [int(p) for p in parts]
        plen = int(bits) if bits else 32
        if max(octets) <= 255 and plen <= 32:
            value = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
            size = 1 << (32 - plen)
            first = value & ~(size - 1) & 0xFFFFFFFF
            return 4, first, first + size - 1, plen
    net = ipaddress.ip_network(text.strip(), strict=False)
    return net.version, int(net.network_address), int(net.broadcast_address), net.prefixlen


def _within(inner: _Block, outer: _Block) -> bool:
    return inner[0] == outer[0] and outer[1] <= inner[1] and inner[2] <= outer[2]


def _flatten(blocks: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """CIDR blocks ``(start, end, label)`` -> non-overlapping ranges, innermost block wins.

    CIDR blocks either nest or are disjoint, so one sweep in (start, widest first) order
    with a stack of the blocks still open cuts them into ranges that each belong to the
    innermost block.  Identical blocks: the first one given wins (callers order by
    priority).
    """
    order = sorted(range(len(blocks)), key=lambda i: (blocks[i][0], -blocks[i][1], i))
    out: list[tuple[int, int, int]] = []
    stack: list[tuple[int, int]] = []  # (end, label)
    cursor = 0
    last: tuple[int, int] | None = None
    for i in order:
        start, end, label = blocks[i]
        if (start, end) == last:
            continue  # an identical block given later loses
        last = (start, end)
        while stack and stack[-1][0] < start:
            top_end, top_label = stack.pop()
            if cursor <= top_end:
                out.append((cursor, top_end, top_label))
            cursor = top_end + 1
        if stack and cursor <= start - 1:
            out.append((cursor, start - 1, stack[-1][1]))
        cursor = start
        stack.append((end, label))
    while stack:
        top_end, top_label = stack.pop()
        if cursor <= top_end:
            out.append((cursor, top_end, top_label))
        cursor = top_end + 1
    return out


@dataclass(frozen=True, slots=True)
class _RangeSet:
    """One layer's CIDRs, flattened for ``join_asof`` (IPv4, IPv6 by high half, long IPv6)."""

    v4: pl.DataFrame
    v6_wide: pl.DataFrame
    v6_narrow: pl.DataFrame

    @classmethod
    def build(cls, blocks: Iterable[tuple[_Block, int]]) -> _RangeSet:
        """``blocks``: (block, label) in priority order (first wins on identical blocks)."""
        v4: list[tuple[int, int, int]] = []
        wide: list[tuple[int, int, int]] = []
        narrow: list[tuple[int, int, int, int, int]] = []
        for (version, first, last, plen), label in blocks:
            if version == 4:
                v4.append((first, last, label))
            elif plen <= 64:
                wide.append((first >> 64, last >> 64, label))
            else:
                narrow.append((first >> 64, first & (2**64 - 1), last & (2**64 - 1), plen, label))
        return cls(
            v4=pl.DataFrame(_flatten(v4), schema=_V4_RANGES, orient="row").set_sorted("start"),
            v6_wide=pl.DataFrame(_flatten(wide), schema=_V6_WIDE, orient="row").set_sorted("start"),
            v6_narrow=pl.DataFrame(narrow, schema=_V6_NARROW, orient="row"),
        )

    @property
    def empty(self) -> bool:
        return self.v4.height + self.v6_wide.height + self.v6_narrow.height == 0

    def lookup_v4(self, lf: pl.LazyFrame, name: str) -> pl.LazyFrame:
        """``lf`` sorted by ``k4`` -> plus column ``name``: the label of the range holding it."""
        if self.v4.height == 0:
            return lf.with_columns(pl.lit(None, _LABEL).alias(name))
        return (
            lf.join_asof(self.v4.lazy(), left_on="k4", right_on="start", strategy="backward")
            .with_columns(pl.when(pl.col("k4") <= pl.col("end")).then(pl.col("label")).alias(name))
            .drop("start", "end", "label")
        )

    def lookup_v6(self, lf: pl.LazyFrame, name: str) -> pl.LazyFrame:
        """``lf`` sorted by ``hi`` (unique ``ip``) -> plus column ``name``."""
        if self.v6_wide.height:
            lf = (
                lf.join_asof(self.v6_wide.lazy(), left_on="hi", right_on="start", strategy="backward")
                .with_columns(pl.when(pl.col("hi") <= pl.col("end")).then(pl.col("label")).alias(name))
                .drop("start", "end", "label")
            )
        else:
            lf = lf.with_columns(pl.lit(None, _LABEL).alias(name))
        if self.v6_narrow.height:
            best = (
                lf.select("ip", "hi", "lo")
                .join(self.v6_narrow.lazy(), on="hi")
                .filter(pl.col("lo").is_between(pl.col("lo_start"), pl.col("lo_end")))
                .group_by("ip")
                .agg(pl.col("label").sort_by("plen", descending=True).first().alias("_narrow"))
            )
            lf = (
                lf.join(best, on="ip", how="left", maintain_order="left")
                .with_columns(pl.coalesce("_narrow", name).alias(name))
                .drop("_narrow")
                .set_sorted("hi")  # kept by maintain_order; the next layer's join_asof needs it
            )
        return lf


# --- the index -----------------------------------------------------------------------------

_INV_LABELS = pl.Schema(
    {
        "inv_label": _LABEL,
        "inv_class": EGRESS_CLASS,
        "inv_via": EGRESS_VIA,
        "inv_resource": pl.String(),
        "inv_candidates": pl.List(pl.String()),
        "inv_owners": pl.List(pl.String()),
    }
)
_TAG_LABELS = pl.Schema(
    {
        "tag_label": _LABEL,
        "tag_name": pl.String(),
        "tag_region": pl.String(),
        "tag_chain": pl.List(pl.String()),
        "tag_candidates": pl.List(pl.String()),
        "tag_strong": pl.Boolean(),
    }
)
_PROXY_LABELS = pl.Schema({"proxy_label": _LABEL, "proxy_name": pl.String()})


def _norm_region(text: str | None) -> str | None:
    """``China North 2`` / ``chinanorth2`` -> ``chinanorth2``; empty -> None."""
    if not text:
        return None
    return "".join(text.split()).lower() or None


def vm_regions(inv: Inventory, regions: Mapping[str, str] | None = None) -> dict[str, str]:
    """VM name -> normalized region, from ``regions`` (VM name -> region) and the inventory.

    The inventory model has no VM location yet; a ``location`` / ``region`` attribute on
    ``Vm`` is used when a loader adds one.  ``regions`` wins; names match case-insensitively.
    """
    out: dict[str, str] = {}
    for vm in inv.vms.values():
        where = _norm_region(getattr(vm, "location", None) or getattr(vm, "region", None))
        if where:
            out[vm.name.lower()] = where
    for name, where in (regions or {}).items():
        r = _norm_region(where)
        if r:
            out[name.lower()] = r
    return out


def _vm_key(p: Prediction) -> str:
    return p.vm or p.nic


@dataclass(frozen=True, slots=True)
class AddressIndex:
    """Everything ``classify`` looks addresses up in, built once per inventory and predictions.

    Build with ``AddressIndex.build``; pass it to ``classify`` / ``classify_addresses`` to
    classify many batches (``watch``) without rebuilding.
    """

    inventory: _RangeSet
    """Inventory blocks, most specific wins."""
    inventory_labels: pl.DataFrame
    """One row per inventory block (``_INV_LABELS``)."""
    tags: _RangeSet
    """Service Tag prefixes, most specific tag wins."""
    tag_labels: pl.DataFrame
    """One row per distinct (tag, chain) (``_TAG_LABELS``)."""
    proxies: _RangeSet
    """Inventory proxies' addresses."""
    proxy_labels: pl.DataFrame
    """Proxy names (``_PROXY_LABELS``)."""
    has_tags: bool
    """Whether Service Tags were loaded (decides ``external`` vs ``unknown``)."""
    default_snat_vms: tuple[str, ...] = field(default=())
    """VMs predicted to use default SNAT."""

    @classmethod
    def build(
        cls,
        inv: Inventory,
        predictions: Sequence[Prediction],
        *,
        regions: Mapping[str, str] | None = None,
    ) -> AddressIndex:
        """Flatten the inventory, the Service Tags and the proxies into lookup ranges.

        Args:
            inv: The loaded inventory.
            predictions: ``analyze.predict.predict(inv, ...)``: decides ``candidate_vms``.
            regions: VM name -> Azure region (``chinanorth2``), for matching default SNAT
                candidates to ``AzureCloud.<region>`` tags; the inventory model has no VM
                location yet.

        Returns:
            The index.
        """
        produced = _producers(predictions)
        inv_blocks, inv_rows = _inventory_blocks(inv, produced)
        tag_blocks, tag_rows, default_vms = _tag_blocks(inv, predictions, vm_regions(inv, regions))
        proxy_blocks: list[tuple[_Block, int]] = []
        proxy_rows: list[dict[str, Any]] = []
        for proxy in inv.proxies.values():
            label = len(proxy_rows)
            proxy_rows.append({"proxy_label": label, "proxy_name": proxy.name})
            for text in proxy.addresses:
                proxy_blocks.append((_cidr(text), label))
        return cls(
            inventory=_RangeSet.build(inv_blocks),
            inventory_labels=_columns(inv_rows, _INV_LABELS),
            tags=_RangeSet.build(tag_blocks),
            tag_labels=_columns(tag_rows, _TAG_LABELS),
            proxies=_RangeSet.build(proxy_blocks),
            proxy_labels=pl.DataFrame(proxy_rows, schema=_PROXY_LABELS),
            has_tags=inv.service_tags.height > 0,
            default_snat_vms=default_vms,
        )


_SEP: Final = "\x1f"


def _columns(rows: list[dict[str, Any]], schema: pl.Schema) -> pl.DataFrame:
    """Rows -> frame, column by column.

    List-of-string columns travel as one joined string each and are split by polars:
    building 50k small Python lists into a list column costs seconds.
    """
    lists = [name for name, dtype in schema.items() if dtype == pl.List(pl.String())]
    plain = {name: [r[name] for r in rows] for name in schema.names() if name not in lists}
    joined = {name: [_SEP.join(r[name]) for r in rows] for name in lists}
    overrides = {n: schema[n] for n in plain} | {n: pl.String() for n in lists}
    return pl.DataFrame({**plain, **joined}, schema_overrides=overrides).select(
        pl.col(name).str.split(_SEP).list.filter(pl.element() != "") if name in lists else pl.col(name)
        for name in schema.names()
    )


def _producers(predictions: Sequence[Prediction]) -> tuple[dict[tuple[int, int, int], set[str]], list[tuple[_Block, str]]]:
    """Expected addresses -> VMs: exact blocks by (version, first, last), and prefixes."""
    exact: dict[tuple[int, int, int], set[str]] = defaultdict(set)
    prefixes: list[tuple[_Block, str]] = []
    for p in predictions:
        for text in p.expected_ips:
            try:
                block = _cidr(text)
            except ValueError:
                continue
            exact[block[:3]].add(_vm_key(p))
            if block[1] != block[2]:
                prefixes.append((block, _vm_key(p)))
    return exact, prefixes


def _inventory_blocks(
    inv: Inventory, produced: tuple[dict[tuple[int, int, int], set[str]], list[tuple[_Block, str]]]
) -> tuple[list[tuple[_Block, int]], list[dict[str, Any]]]:
    exact, prefixes = produced
    blocks: list[tuple[_Block, int]] = []
    rows: list[dict[str, Any]] = []

    def add(text: str, cls: str | None, via: str | None, resource: str | None, owners: Iterable[str]) -> None:
        block = _cidr(text)
        owners = sorted(set(owners))
        if cls == "private":
            candidates = set(owners)  # no SNAT: the address is the VM's own
        else:
            candidates = set(exact.get(block[:3], ()))
            candidates |= {vm for pfx, vm in prefixes if _within(block, pfx)}
        label = len(rows)
        rows.append({
            "inv_label": label, "inv_class": cls or "unknown", "inv_via": via,
            "inv_resource": resource, "inv_candidates": sorted(candidates), "inv_owners": owners,
        })  # fmt: skip
        blocks.append((block, label))

    for row in inventory_addresses(inv).iter_rows(named=True):
        add(row["network"], row["class"], row["via"], row["resource"] or row["public_ip"], row["vms"])
    for proxy in inv.proxies.values():
        # An inventory public IP of the proxy (App Gateway) came first and wins.
        for text in proxy.addresses:
            add(text, "unknown", None, proxy.name, ())
    for pe in inv.private_endpoints.values():
        for text in pe.addresses:
            add(text, "private", None, pe.name, ())
    # An address of a subnet / VNet that is no ipconfig's: the range is named, but no VM
    # list (it is nobody's address; and a /9 subnet would list every VM on every row).
    for sub in inv.subnets.values():
        for text in sub.prefixes:
            add(text, "private", None,
                f"{inv.name_of(sub.vnet_id)}/{sub.name}", ())  # fmt: skip
    for vnet in inv.vnets.values():
        for text in vnet.address_space:
            add(text, "private", None, vnet.name, ())
        for text in vnet.peered_prefixes:
            add(text, "private", None, f"{vnet.name} peering", ())
    for rng in inv.known_ranges.values():
        add(rng.prefix, "private" if rng.kind == "onprem" else "external",
            None, rng.name, ())  # fmt: skip
    return blocks, rows


def _tag_rank(tag: str, region: str, service: str, prefix_len: int) -> tuple[int, int, int, int]:
    """Specificity of a tag prefix: longer prefix, then regional, then a service, then dots."""
    return (prefix_len, bool(region), bool(service), tag.count("."))


def _tag_blocks(
    inv: Inventory, predictions: Sequence[Prediction], regions: Mapping[str, str]
) -> tuple[list[tuple[_Block, int]], list[dict[str, Any]], tuple[str, ...]]:
    defaults = sorted({_vm_key(p) for p in predictions if p.egress_class == "default_snat"})
    tags = inv.service_tags
    if tags.height == 0:
        return [], [], tuple(defaults)
    # All tags with the same prefix, most specific first: the prefix's label and chain.
    same: dict[str, list[tuple[tuple[int, int, int, int], str, str]]] = defaultdict(list)
    cols = tags.select(
        pl.col("prefix"), pl.col("tag", "region", "system_service").cast(pl.String).fill_null(""),
        pl.col("prefix_len"),
    )  # fmt: skip
    for prefix, tag, region, service, plen in cols.iter_rows():
        same[prefix].append((_tag_rank(tag, region, service, plen), tag, region))
    bounds = {p: _cidr(p) for p in same}
    # The chain of an address = tags of every prefix holding it; for allowlists we only
    # need the set, so each prefix's chain is its own tags plus its enclosing prefixes' tags.
    order = sorted(same, key=lambda p: (bounds[p][0], bounds[p][1], -bounds[p][2]))
    chain_of: dict[str, tuple[str, ...]] = {}
    stack: list[tuple[_Block, tuple[str, ...]]] = []
    for p in order:
        while stack and not _within(bounds[p], stack[-1][0]):
            stack.pop()
        outer = stack[-1][1] if stack else ()
        own = tuple(t for _, t, _ in sorted(same[p]))  # general to specific
        chain = tuple(dict.fromkeys(outer + own))
        chain_of[p] = chain
        stack.append((bounds[p], chain))
    has_region = {vm: r for vm, r in regions.items()}
    rows: list[dict[str, Any]] = []
    labels: dict[tuple[str, tuple[str, ...]], int] = {}
    blocks: list[tuple[_Block, int]] = []
    for p in order:
        _, tag, region = max(same[p])
        key = (tag, chain_of[p])
        if key not in labels:
            where = _norm_region(region)
            if where is None:
                cands, strong = defaults, False
            else:
                cands = [vm for vm in defaults if has_region.get(vm.lower(), where) == where]
                strong = any(has_region.get(vm.lower()) == where for vm in defaults)
            labels[key] = len(rows)
            rows.append({
                "tag_label": labels[key], "tag_name": tag, "tag_region": region or None,
                "tag_chain": list(chain_of[p]), "tag_candidates": cands, "tag_strong": strong,
            })  # fmt: skip
        blocks.append((bounds[p], labels[key]))
    return blocks, rows, tuple(defaults)


# --- classification ------------------------------------------------------------------------


def _allows(allowlist: Allowlist, has_tags: bool) -> pl.Expr:
    """``Allowlist.allows`` as one expression over the parsed keys and ``tag_chain``.

    The rules in their evaluation order become one ``when/then`` chain: the first rule that
    matches decides; a rule that cannot be decided (a service tag without Service Tags
    loaded, a VNet rule) gives null; no match denies.  Null for text that is no address.
    """
    c = pl.col
    rules = sorted(
        range(len(allowlist.rules)),
        key=lambda i: (allowlist.rules[i].priority is None, allowlist.rules[i].priority or 0, i),
    )
    chain = c("tag_chain").list.eval(pl.element().str.to_lowercase())
    verdict: pl.Expr = pl.lit(False)
    for i in reversed(rules):
        rule = allowlist.rules[i]
        allow = pl.lit(rule.action == "allow")
        if rule.network is not None:
            net = ipaddress.ip_network(rule.network, strict=False)
            first, last = int(net.network_address), int(net.broadcast_address)
            if net.version == 4:
                hit = (c("ip_version") == 4) & c("k4").is_between(first, last)
            else:
                s_hi, s_lo, e_hi, e_lo = first >> 64, first & (2**64 - 1), last >> 64, last & (2**64 - 1)
                hi, lo = c("hi"), c("lo")
                hit = (
                    (c("ip_version") == 6)
                    & ((hi > s_hi) | ((hi == s_hi) & (lo >= s_lo)))
                    & ((hi < e_hi) | ((hi == e_hi) & (lo <= e_lo)))
                )
            verdict = pl.when(hit).then(allow).otherwise(verdict)
        elif rule.tag is not None:
            tag = rule.tag.lower()
            if tag in ANY_TAGS:
                verdict = allow
            elif not has_tags:
                verdict = pl.lit(None, pl.Boolean)
            else:
                verdict = pl.when(chain.list.contains(pl.lit(tag)).fill_null(False)).then(allow).otherwise(verdict)
        else:
            verdict = pl.lit(None, pl.Boolean)
    return pl.when(c("ip_version").is_not_null()).then(verdict.cast(pl.Boolean))


_LOCAL_SCOPES: Final = ("loopback", "link_local")


def _classify_distinct(
    ips: pl.LazyFrame, index: AddressIndex, allowlist: Allowlist | None = None, *, with_allowed: bool = False
) -> pl.LazyFrame:
    """``ips`` (one column ``ip``, distinct, may hold a null) -> ``ip`` + ``ADDRESSES_SCHEMA``
    columns (+ ``allowed`` with ``with_allowed``)."""
    parsed = _parse(ips)
    v4 = parsed.filter(pl.col("ip_version") == 4).sort("k4")
    v6 = parsed.filter(pl.col("ip_version") == 6).sort("hi")
    bad = parsed.filter(pl.col("ip_version").is_null())
    sets = (("_inv", index.inventory), ("_tag", index.tags), ("_proxy", index.proxies))
    for name, rs in sets:
        v4 = rs.lookup_v4(v4, name)
        v6 = rs.lookup_v6(v6, name)
    bad = bad.with_columns(pl.lit(None, _LABEL).alias(name) for name, _ in sets)
    cols = ["ip", "ip_version", "k4", "hi", "lo", "_inv", "_tag", "_proxy"]
    found = pl.concat([v4.select(cols), v6.select(cols), bad.select(cols)], how="vertical")
    found = (
        found.join(index.inventory_labels.lazy(), left_on="_inv", right_on="inv_label", how="left")
        .join(index.tag_labels.lazy(), left_on="_tag", right_on="tag_label", how="left")
        .join(index.proxy_labels.lazy(), left_on="_proxy", right_on="proxy_label", how="left")
    )
    found = found.with_columns(_scope().alias("scope"))
    local = pl.col("scope").is_in(_LOCAL_SCOPES)
    in_inv = pl.col("_inv").is_not_null() & ~local
    in_tag = pl.col("_tag").is_not_null() & ~local
    cls = (
        pl.when(local).then(pl.lit("local", EGRESS_CLASS))
        .when(in_inv).then(pl.col("inv_class"))
        .when(in_tag).then(pl.lit("default_snat", EGRESS_CLASS))
        .when(pl.col("ip_version").is_null()).then(pl.lit("unknown", EGRESS_CLASS))
        .otherwise(pl.lit("external" if index.has_tags else "unknown", EGRESS_CLASS))
    )  # fmt: skip
    empty = pl.lit([], pl.List(pl.String()))
    strong = in_inv | local | (in_tag & pl.col("tag_strong"))
    allowed = (
        [_allows(allowlist, index.has_tags).alias("allowed")] if allowlist is not None
        else [pl.lit(None, pl.Boolean).alias("allowed")]
    ) if with_allowed else []  # fmt: skip
    return found.select(
        "ip",
        cls.alias("class"),
        pl.col("inv_via").alias("via"),
        pl.when(~local).then(pl.col("inv_resource")).alias("resource"),
        pl.when(in_inv).then(pl.col("inv_candidates"))
        .when(in_tag).then(pl.col("tag_candidates")).otherwise(empty).alias("candidate_vms"),
        pl.col("tag_name").alias("service_tag"),
        pl.col("tag_region").alias("region"),
        pl.when(strong).then(pl.lit("strong")).otherwise(pl.lit("weak")).cast(CONFIDENCE).alias("confidence"),
        "scope",
        "ip_version",
        pl.when(~local).then(pl.col("proxy_name")).alias("proxy"),
        pl.when(in_inv).then(pl.col("inv_owners")).otherwise(empty).alias("owner_vms"),
        pl.when(in_tag).then(pl.col("tag_chain")).otherwise(empty).alias("service_tags"),
        *allowed,
    )  # fmt: skip


def address_table(ips: pl.LazyFrame, index: AddressIndex, allowlist: Allowlist | None = None) -> pl.LazyFrame:
    """Classify distinct addresses, with the allowlist's verdict.

    Args:
        ips: One column ``ip``, distinct (a null address as ``""``).
        index: The ``AddressIndex``.
        allowlist: The allowlist to check against; ``allowed`` is null without one.

    Returns:
        ``ip`` + ``ADDRESSES_SCHEMA`` columns + ``allowed`` (``Allowlist.allows`` for every
        address at once: by range and by the address's Service Tags).
    """
    return _classify_distinct(ips, index, allowlist, with_allowed=True)


def parse_addresses(lf: pl.LazyFrame, column: str = "ip") -> pl.LazyFrame:
    """Add integer keys parsed from ``column``: ``ip_version``, ``k4`` (IPv4), ``hi`` / ``lo`` (IPv6)."""
    return _parse(lf, column)


def classify_addresses(
    ips: pl.Series | Sequence[str | None],
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    regions: Mapping[str, str] | None = None,
    index: AddressIndex | None = None,
) -> pl.DataFrame:
    """Classify addresses on their own (one row per distinct input, in first-seen order).

    Args:
        ips: Address texts (nulls and junk allowed: they are ``unknown`` / ``invalid``).
        inv: The inventory.
        predictions: Its predictions (decide ``candidate_vms``).
        regions: VM name -> region; see ``AddressIndex.build``.
        index: A prebuilt ``AddressIndex`` (then ``inv`` / ``predictions`` / ``regions``
            are not read again).

    Returns:
        A frame in ``ADDRESSES_SCHEMA``.
    """
    index = index or AddressIndex.build(inv, predictions, regions=regions)
    series = ips if isinstance(ips, pl.Series) else pl.Series(list(ips), dtype=pl.String())
    distinct = pl.DataFrame({"ip": series.cast(pl.String).unique(maintain_order=True)})
    out = _classify_distinct(distinct.lazy(), index)
    return distinct.lazy().join(out, on="ip", how="left", nulls_equal=True, maintain_order="left").collect()


_XFF_ENTRY = r"^\[?([0-9A-Fa-f:.]+(?:%[^\]]*)?)\]?(?::[0-9]+)?$"


def _xff_entry() -> pl.Expr:
    """One X-Forwarded-For entry -> the address: drops ``[...]``, a ``:port`` (App Gateway adds one)."""
    e = pl.element().str.strip_chars().str.strip_chars('"')
    ipv4_port = e.str.extract(r"^([0-9.]+):[0-9]+$", 1)
    bracketed = e.str.extract(r"^\[([^\]]+)\](?::[0-9]+)?$", 1)
    return pl.coalesce(bracketed, ipv4_port, e)


def _clients(proxied: pl.LazyFrame, index: AddressIndex) -> pl.LazyFrame:
    """Distinct ``http_xff`` of proxied rows -> ``http_xff`` + ``CLIENT_COLUMNS``.

    The client is the rightmost entry that is not an inventory proxy itself (entries left
    of it are whatever the client claimed, so not trusted); if every entry is a proxy, the
    leftmost one.
    """
    entries = (
        proxied.select(pl.col("http_xff").unique())
        .with_columns(entry=pl.col("http_xff").str.split(",").list.eval(_xff_entry()))
        .with_columns(pos=pl.int_ranges(pl.col("entry").list.len()))
        .explode("entry", "pos")
        .filter(pl.col("entry") != "")
    )
    distinct = entries.select(pl.col("entry").alias("ip")).unique()
    classified = _classify_distinct(distinct, index)
    picked = (
        entries.join(classified.select("ip", "proxy"), left_on="entry", right_on="ip", how="left")
        .group_by("http_xff")
        .agg(
            pl.coalesce(
                pl.col("entry").filter(pl.col("proxy").is_null()).sort_by(
                    pl.col("pos").filter(pl.col("proxy").is_null()), descending=True
                ).first(),
                pl.col("entry").sort_by("pos").first(),
            ).alias("client_ip")
        )
    )
    return picked.join(classified, left_on="client_ip", right_on="ip", how="left").select(
        "http_xff",
        "client_ip",
        *(pl.col(c).alias(f"client_{c}") for c in
          ("class", "via", "resource", "candidate_vms", "service_tag", "region", "confidence")),
    )  # fmt: skip


def own_addresses(records: pl.LazyFrame) -> pl.LazyFrame:
    """Each observer's own addresses: the distinct ``(observer, dst_ip)`` of its connections.

    A null observer is keyed as ``""`` (a pcap read without ``--observer``).
    """
    return (
        records.select(pl.col("observer").fill_null("").alias("_obs"), pl.col("dst_ip").alias("_own"))
        .drop_nulls("_own")
        .unique()
    )


def classify(
    records: pl.LazyFrame | pl.DataFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    regions: Mapping[str, str] | None = None,
    index: AddressIndex | None = None,
    addresses: pl.DataFrame | pl.LazyFrame | None = None,
    own: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """Classify every record's ``src_ip`` (and the X-Forwarded-For client behind a proxy).

    Works on the distinct addresses, then joins the result back.  Row order is not kept
    (polars' streaming joins do not; sort the result, e.g. by ``ts``, before output).
    A source that is its observer's own address (the ``dst_ip`` of the same observer's
    connections) is ``local``, as loopback and link-local sources are.

    Args:
        records: Connection records in ``capture.schema.SCHEMA`` (extra columns are kept,
            after the record columns).
        inv: The inventory (with Service Tags, if any were loaded).
        predictions: ``predict(inv, ...)`` for it: decides ``candidate_vms`` and which VMs
            are default SNAT candidates.
        regions: VM name -> Azure region, for region-matching default SNAT candidates.
        index: A prebuilt ``AddressIndex`` to reuse.
        addresses: ``address_table`` of the records' distinct addresses, if already
            computed (its ``allowed`` column is kept).
        own: ``own_addresses(records)``, collected, if already computed.

    Returns:
        A lazy frame in ``CLASSIFIED_SCHEMA`` (plus any extra input columns at the end),
        one row per input row.
    """
    index = index or AddressIndex.build(inv, predictions, regions=regions)
    lf = records.lazy()
    extra = [c for c in lf.collect_schema().names() if c not in CLASSIFIED_SCHEMA]
    # A null address is keyed as "" (both are `unknown`, scope `invalid`): a join with
    # nulls_equal=True is not streamed, and would hold every record in memory.
    key = pl.col("src_ip").fill_null("")
    if addresses is None:
        distinct = lf.select(key.alias("ip")).unique()
        table = _classify_distinct(distinct, index).drop("owner_vms", "service_tags").collect()
    else:
        table = addresses.lazy().drop("owner_vms", "service_tags", strict=False).collect()
        extra += [c for c in table.columns if c not in CLASSIFIED_SCHEMA and c != "ip"]
    # The hot join carries no list: each distinct candidate_vms list becomes a small
    # integer, and the lists come back from a table of a few rows (joining 1M address
    # rows with their lists was most of classify's time).
    sets = table.select(pl.col("candidate_vms").unique()).with_row_index("_vmset")
    table = table.join(sets, on="candidate_vms", how="left", nulls_equal=True).drop("candidate_vms")
    # No maintain_order: keeping the input order made the 10M-record join 2.5x slower.
    out = lf.join(table.lazy(), left_on=key, right_on="ip", how="left").join(
        sets.lazy(), on="_vmset", how="left"
    ).drop("_vmset")
    own_table = own if own is not None else own_addresses(lf).collect()
    if own_table.height:
        observers = own_table.get_column("_obs").unique()
        if observers.len() == 1:
            # One observer (one host's evidence): a hash lookup, no join.
            local = (pl.col("observer").fill_null("") == observers[0]) & key.is_in(own_table.get_column("_own").implode())
        else:
            out = out.join(
                own_table.lazy().with_columns(pl.lit(True).alias("_local")),
                left_on=[pl.col("observer").fill_null(""), key], right_on=["_obs", "_own"], how="left",
            )
            local = pl.col("_local").fill_null(False)
        out = out.with_columns(local.alias("_local")).with_columns(
            pl.when(pl.col("_local")).then(pl.lit("local", EGRESS_CLASS)).otherwise(pl.col("class")).alias("class"),
            *(pl.when(~pl.col("_local")).then(pl.col(name)).alias(name) for name in ("via", "resource", "proxy")),
            pl.when(pl.col("_local")).then(pl.lit([], pl.List(pl.String()))).otherwise(pl.col("candidate_vms"))
            .alias("candidate_vms"),
            pl.when(pl.col("_local")).then(pl.lit("strong", CONFIDENCE)).otherwise(pl.col("confidence"))
            .alias("confidence"),
        ).drop("_local")
    if index.proxies.empty:
        out = out.with_columns(pl.lit(None, dtype).alias(name) for name, dtype in CLIENT_COLUMNS.items())
    else:
        proxied = out.filter(pl.col("proxy").is_not_null() & pl.col("http_xff").is_not_null())
        clients = _clients(proxied, index)
        out = out.join(clients, on="http_xff", how="left").with_columns(
            pl.when(pl.col("proxy").is_not_null()).then(pl.col(name)).alias(name) for name in CLIENT_COLUMNS
        )
    return out.select(*CLASSIFIED_SCHEMA.names(), *extra)


__all__ = [
    "ADDRESSES_SCHEMA",
    "ADDRESS_COLUMNS",
    "CLASSIFIED_SCHEMA",
    "CLIENT_COLUMNS",
    "CONFIDENCE",
    "SCOPE",
    "AddressIndex",
    "address_table",
    "own_addresses",
    "parse_addresses",
    "Confidence",
    "Scope",
    "classify",
    "classify_addresses",
    "vm_regions",
]
