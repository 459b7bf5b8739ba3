"""Findings: incidents, what a person fixes, computed as group-bys over classified records.

A finding is an *incident*: every connection and address behind one problem with one fix,
rolled up by its kind's key (DESIGN.md "Findings are incidents"; README "The main job").
Each carries the top ``--top`` source addresses by connections, ``address_count`` (every
distinct address it covers: the rest are in the addresses table) and the fixes once.

Five kinds, and the key each rolls up by:

* ``allowlist_miss`` -- allowlist + class + via + resource + candidate VM set (the services
  inside are listed): connections the allowlist does not accept from an address the
  inventory or the Service Tags tie to us (a VM's predicted egress, an inventory egress
  resource, or an Azure-owned address).  A stranger's address is no allowlist miss: an
  allowlist is about our own egress.  ``local`` sources never are.
* ``unexpected_egress`` -- (a) an inventory egress address no VM is predicted to use, or an
  inventory address that is no egress path: class + via + resource; (b) a VM's private
  address where its predictions for the destination say otherwise: VM set; (c) evidence
  attributed to a VM (``--from``) arriving from an address its prediction does not give:
  VM + class + resource.
* ``egress_ip_changed`` -- the VM: its default SNAT addresses over time (evidence attributed
  to it, or the only VM predicted to use default SNAT).
* ``snat_pressure`` -- signal (concurrency / port reuse) + class + resource + destination:
  concurrent connections from one SNAT address to one destination ip:port reaching
  ``PRESSURE_FRACTION`` of its preallocated ports, or a source port reused to the same
  destination within the hold time (docs/azure-egress.md §2.4).
* ``auth_failures`` -- service + the VM set of the addresses (strangers: the empty set):
  every address with at least one failed authentication is in exactly one.  Password
  guessing (``GUESS_FAILURES`` within ``GUESS_WINDOW``, Zeek's defaults, from any one
  address) sets the severity, not membership.

Incidents are ordered by severity (worst first), then ``address_count``, then ``count``;
their ids are ``F1``, ``F2``, ... in that order.  ``Incidents.tag`` adds to connection rows
the ``findings`` column (ids of the incidents each row belongs to) by joins on small
membership tables (distinct addresses, address + destination), never by a loop.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Final, Literal, get_args

import polars as pl

from analyze.classify import CONFIDENCE, AddressIndex, address_table, parse_addresses
from analyze.inventory.model import Allowlist, Inventory
from analyze.predict import Prediction, default_snat_ports
from capture.schema import SERVICE

Kind = Literal["allowlist_miss", "unexpected_egress", "egress_ip_changed", "snat_pressure", "auth_failures"]
"""What a finding is about."""

Severity = Literal["info", "low", "medium", "high", "critical"]
"""How bad, in increasing order (``SEVERITIES``); ``--fail-on`` compares with ``at_least``."""

KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)

TOP_N: Final = 20
"""Source addresses listed per incident by default (``--top``); the rest are counted."""
PRESSURE_FRACTION: Final = 0.8
"""Share of the preallocated SNAT ports in concurrent use to one destination that is pressure."""
HOLD: Final[Mapping[str, tuple[dt.timedelta, dt.timedelta]]] = {
    "lb_frontend": (dt.timedelta(seconds=240), dt.timedelta(seconds=15)),
    "default_snat": (dt.timedelta(seconds=240), dt.timedelta(seconds=15)),
    "nat_gateway": (dt.timedelta(seconds=65), dt.timedelta(seconds=16)),
}
"""SNAT port hold before reuse to the same destination, (after FIN, after RST), per class (§2.4)."""
NAT_GATEWAY_PORTS: Final = 64_512
"""SNAT ports per NAT gateway public IP (§2.3)."""
GUESS_FAILURES: Final = 30
"""SSH authentication failures from one address that make password guessing ..."""
GUESS_WINDOW: Final = dt.timedelta(minutes=30)
"""... within this window (Zeek's ``SSH::password_guesses_limit`` and ``guessing_timeout``)."""

FAILED: Final = ("failed", "invalid_user", "max_attempts")
"""``ssh_auth`` outcomes that are a failed authentication."""
_FIXED: Final = ("lb_frontend", "instance_public_ip", "nat_gateway", "firewall")
_MAX_EVIDENCE: Final = 5
_SEP: Final = "\x1f"
_MAX_TS: Final = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One incident: the connections and addresses behind one problem, and what to change."""

    id: str
    """``F1``, ``F2``, ... in report order."""
    kind: Kind
    """What it is about."""
    severity: Severity
    """How bad."""
    vms: tuple[str, ...]
    """VMs concerned (candidates or the attributed VM); empty for strangers' addresses."""
    src_ips: tuple[str, ...]
    """The top source addresses by connections (at most ``--top``)."""
    address_count: int
    """Every distinct source address the incident covers (``src_ips`` is the top of them)."""
    count: int
    """Connections behind the incident (port reuse: the connections that reused a port)."""
    first_ts: dt.datetime | None
    """First connection."""
    last_ts: dt.datetime | None
    """Last connection."""
    message: str
    """One or two sentences naming addresses, classes, resources and the predicted reason."""
    fixes: tuple[str, ...] = ()
    """Concrete changes, once per incident; the first is the one that matters first."""
    evidence: tuple[str, ...] = ()
    """Up to five ``origin`` entries to look at."""
    egress_class: str | None = None
    """Roll-up key: the source class (``class`` in JSON)."""
    via: str | None = None
    """Roll-up key: ``lb_frontend`` construct."""
    resource: str | None = None
    """Roll-up key: the inventory resource of the addresses."""
    allowlist: str | None = None
    """Roll-up key (``allowlist_miss``): the allowlist."""
    services: tuple[str, ...] = ()
    """Services of the connections (a roll-up key of ``auth_failures``)."""
    destination: str | None = None
    """``ip:port`` for SNAT incidents."""

    def at_least(self, severity: Severity) -> bool:
        """Whether this finding is as bad as ``severity`` or worse."""
        return SEVERITIES.index(self.severity) >= SEVERITIES.index(severity)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the schema other outputs code against (``class``, not ``egress_class``)."""
        return {
            "id": self.id, "kind": self.kind, "severity": self.severity, "class": self.egress_class,
            "via": self.via, "resource": self.resource, "allowlist": self.allowlist,
            "services": list(self.services), "vms": list(self.vms), "address_count": self.address_count,
            "src_ips": list(self.src_ips), "count": self.count, "first_ts": self.first_ts,
            "last_ts": self.last_ts, "destination": self.destination, "message": self.message,
            "fixes": list(self.fixes), "evidence": list(self.evidence),
        }  # fmt: skip


FINDINGS_SCHEMA: Final = pl.Schema(
    {
        "id": pl.String(), "kind": pl.String(), "severity": pl.String(), "class": pl.String(),
        "via": pl.String(), "resource": pl.String(), "allowlist": pl.String(),
        "services": pl.List(pl.String()), "vms": pl.List(pl.String()), "address_count": pl.UInt32(),
        "src_ips": pl.List(pl.String()), "count": pl.UInt32(), "first_ts": pl.Datetime("us", "UTC"),
        "last_ts": pl.Datetime("us", "UTC"), "destination": pl.String(), "message": pl.String(),
        "fixes": pl.List(pl.String()), "evidence": pl.List(pl.String()),
    }
)  # fmt: skip
"""``Finding.to_dict`` as a frame (the report folder's findings table)."""

SUMMARY_COLUMNS: Final = pl.Schema(
    {
        "first_seen": pl.Datetime("us", "UTC"),
        "last_seen": pl.Datetime("us", "UTC"),
        "connections": pl.UInt32(),
        "by_service": pl.List(pl.String()),
        "by_state": pl.List(pl.String()),
        "users": pl.List(pl.String()),
        "user_agents": pl.List(pl.String()),
    }
)
"""Per-address counts of the addresses table, after the classification columns."""


def frame(findings: Sequence[Finding]) -> pl.DataFrame:
    """Findings as a frame in ``FINDINGS_SCHEMA``."""
    return pl.DataFrame([f.to_dict() for f in findings], schema=FINDINGS_SCHEMA)


# --- helpers -----------------------------------------------------------------------------------


def _collect_each(plans: Sequence[pl.LazyFrame]) -> list[pl.DataFrame]:
    """Collect plans one by one, each streaming.  ``pl.collect_all`` would compute a
    subplan they share (the classified records) once and hold it in memory."""
    return [p.collect() for p in plans]


def _by_vm(predictions: Sequence[Prediction]) -> dict[str, list[Prediction]]:
    out: dict[str, list[Prediction]] = defaultdict(list)
    for p in predictions:
        out[p.vm or p.nic].append(p)
    return out


def _ts(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, dt.datetime) else "?"


def _reasons(vms: Sequence[str], preds: Mapping[str, list[Prediction]]) -> tuple[str, tuple[str, ...]]:
    """The predicted reasons and fixes of ``vms``, deduplicated."""
    reasons, fixes = [], []
    for vm in vms:
        for p in preds.get(vm, []):
            reasons.append(p.reason)
            fixes.extend(p.fixes)
    return " ".join(dict.fromkeys(reasons)), tuple(dict.fromkeys(fixes))


def _what(row: Mapping[str, Any], top: int) -> str:
    """``139.217.1.1 (default_snat, AzureCloud.chinanorth2)``, or ``3 addresses (...): a, b, c``."""
    bits = [str(row["class"])]
    if row.get("via"):
        bits[0] += f" via {row['via']}"
    if row.get("resource"):
        bits.append(str(row["resource"]))
    if row.get("_tag"):
        bits.append(str(row["_tag"]))
    ips = list(row["src_ips"])
    if row["address_count"] == 1 and ips:
        return f"{ips[0]} ({', '.join(bits)})"
    shown = ", ".join(ips[: min(top, 5)])
    more = row["address_count"] - min(len(ips), 5)
    return f"{row['address_count']:,} addresses ({', '.join(bits)}): {shown}" + (f" and {more:,} more" if more > 0 else "")


def _attributed_vm(attributions: Mapping[str, str]) -> pl.Expr:
    """The VM a row is attributed to by any of its origins' files (path or file name), else null."""
    if not attributions:
        return pl.lit(None, pl.String())
    keys = {str(k): v for k, v in attributions.items()}
    keys |= {PurePath(k).name: v for k, v in attributions.items() if PurePath(k).name not in keys}
    file = pl.element().str.replace(r"(?::[0-9]+|#[0-9]+)$", "")
    by_path = file.replace_strict(keys, default=None, return_dtype=pl.String())
    by_name = file.str.replace(r"^.*/", "").replace_strict(keys, default=None, return_dtype=pl.String())
    return pl.col("origin").list.eval(pl.coalesce(by_path, by_name)).list.drop_nulls().list.first()


def _joined(col: str) -> pl.Expr:
    return pl.col(col).list.sort().list.join(",").fill_null("")


def _key(*parts: pl.Expr | str) -> pl.Expr:
    exprs = [pl.col(p) if isinstance(p, str) else p for p in parts]
    return pl.concat_str([e.cast(pl.String).fill_null("") for e in exprs], separator=_SEP)


# --- the incidents -----------------------------------------------------------------------------


@dataclass(slots=True)
class Incidents:
    """What ``incidents`` returns: the findings, the addresses table, and how to tag rows."""

    findings: list[Finding]
    addresses: pl.DataFrame
    """One row per source address (and class): its classification, allowlist verdict and
    counts (``SUMMARY_COLUMNS``), in first-seen order."""
    members: list[tuple[tuple[str, ...], pl.DataFrame, pl.Expr | None]] = field(default_factory=list)
    """(join keys, keys + ``_fid``, the row condition): which rows belong to which incident."""
    address_sets: pl.DataFrame = field(default_factory=pl.DataFrame)
    """``src_ip`` -> ``_set``: a small integer naming the set of address-level incidents."""
    set_ids: pl.DataFrame = field(default_factory=pl.DataFrame)
    """``_set`` -> ``_ids``: the incident ids of each set."""
    attributions: Mapping[str, str] = field(default_factory=dict)
    only_default_vm: str | None = None

    def tag(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """``rows`` (classified) plus the ``findings`` column: List(String) of incident ids."""
        lf = rows.with_columns(_who_expr(self.attributions, self.only_default_vm).alias("_who"))
        if self.attributions:
            lf = lf.with_columns(_attributed_vm(self.attributions).alias("_vm"))
        parts = []
        if self.address_sets.height:
            # The join over every row carries a small integer, no list (lists are slow to join).
            lf = lf.join(self.address_sets.lazy(), on="src_ip", how="left").join(
                self.set_ids.lazy(), on="_set", how="left")
            parts.append(pl.when(pl.col("class") != "local").then(pl.col("_ids")))
        for i, (on, table, when) in enumerate(self.members):
            if table.height == 0:
                continue
            name = f"_f{i}"
            lf = lf.join(table.lazy().rename({"_fid": name}), on=list(on), how="left")
            parts.append(pl.when(when).then(pl.col(name)) if when is not None else pl.col(name))
        if parts:
            ids = pl.concat_list(parts).list.drop_nulls()
        else:
            ids = pl.lit([], pl.List(pl.String()))
        drop = [c for c in lf.collect_schema().names() if c.startswith("_f") or c in ("_who", "_vm", "_set", "_ids")]
        return lf.with_columns(ids.alias("findings")).drop(drop)


def _who_expr(attributions: Mapping[str, str], only: str | None) -> pl.Expr:
    """The VM whose default SNAT address a row shows: attributed (``--from``), or the only default SNAT VM."""
    who = _attributed_vm(attributions)
    if only is not None:
        who = pl.coalesce(who, pl.when(pl.col("candidate_vms").list.contains(pl.lit(only))).then(pl.lit(only)))
    return pl.when(pl.col("class") == "default_snat").then(who)


def find(
    classified: pl.DataFrame | pl.LazyFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    allowlist: Allowlist | None = None,
    attributions: Mapping[str, str] | None = None,
    index: AddressIndex | None = None,
    top: int = TOP_N,
) -> list[Finding]:
    """Every incident of the five kinds, worst first (see ``incidents``)."""
    return incidents(classified, inv, predictions, allowlist=allowlist, attributions=attributions,
                     index=index, top=top).findings  # fmt: skip


def incidents(
    classified: pl.DataFrame | pl.LazyFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    allowlist: Allowlist | None = None,
    attributions: Mapping[str, str] | None = None,
    index: AddressIndex | None = None,
    top: int = TOP_N,
    address_info: pl.DataFrame | None = None,
) -> Incidents:
    """Roll classified records up into incidents, in a few group-bys over the records.

    Args:
        classified: Records in ``analyze.classify.CLASSIFIED_SCHEMA`` (lazy is best: it is
            scanned a few times, each pass streaming).
        inv: The inventory they were classified with.
        predictions: Its predictions.
        allowlist: What the destination accepts; no ``allowlist_miss`` without one.
        attributions: Evidence file (path as in ``origin``, or its file name) -> VM that
            produced it (``--from VM``).
        index: The ``AddressIndex`` used for classifying, to reuse.
        top: Source addresses listed per incident.
        address_info: ``analyze.classify.address_table`` of the distinct source addresses,
            if already computed (owner VMs, Service Tags, allowlist verdict).

    Returns:
        The findings (ordered, with ids), the addresses table and the membership tables.
    """
    attributions = dict(attributions or {})
    preds = _by_vm(predictions)
    index = index or AddressIndex.build(inv, predictions)
    only = index.default_snat_vms[0] if len(index.default_snat_vms) == 1 else None
    lf = classified.lazy().with_columns(_who_expr(attributions, only).alias("_who"))
    if attributions:
        lf = lf.with_columns(_attributed_vm(attributions).alias("_vm"))
    c = pl.col
    # Per address, service and state: numbers from the rows in one pass (no list column is
    # aggregated: `first()` of a list and `value_counts` in a group-by are slow); rolled up
    # per address in memory, classification joined afterwards.
    fine_plan = lf.group_by("src_ip", "class", "service", "state").agg(
        c("ts").min().alias("first_seen"),
        c("ts").max().alias("last_seen"),
        pl.len().cast(pl.UInt32).alias("connections"),
        c("ssh_user").drop_nulls().unique().alias("users"),
        c("http_user_agent").drop_nulls().unique().alias("user_agents"),
        c("ssh_auth").is_in(FAILED).sum().alias("_failed"),
    )
    who_plan = (
        lf.filter(c("_who").is_not_null())
        .group_by("_who", "src_ip")
        .agg(c("ts").min().alias("first"), c("ts").max().alias("last"), pl.len().cast(pl.UInt32).alias("n"))
    )
    # without --from and without a single default SNAT VM nobody's default SNAT address is known
    plans = [fine_plan, who_plan if attributions or only is not None else who_plan.head(0)]
    if attributions:
        plans.append(
            lf.filter(c("_vm").is_not_null())
            .group_by("_vm", "src_ip", "class")
            .agg(*(c(x).first() for x in ("via", "resource", "service_tag")),
                 c("ts").min().alias("first"), c("ts").max().alias("last"), pl.len().cast(pl.UInt32).alias("n"))
        )
    fine, who, *rest = _collect_each(plans)
    failed_rows = lf.filter(c("ssh_auth").is_in(FAILED) & c("src_ip").is_not_null() & (c("class") != "local"))
    if fine.get_column("_failed").sum():
        failed = _collect_each(_auth_plans(failed_rows))
    else:
        failed = [pl.DataFrame(schema=q.collect_schema()) for q in _auth_plans(failed_rows)]
    summary = fine.group_by("src_ip", "class").agg(
        c("first_seen").min(), c("last_seen").max(), c("connections").sum().cast(pl.UInt32),
        c("users").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
        c("user_agents").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
    )
    for name in ("service", "state"):
        listed = (
            fine.group_by("src_ip", "class", name).agg(c("connections").sum().alias("n"), c("first_seen").min().alias("t"))
            .sort(["n", "t"], descending=[True, False])
            .group_by("src_ip", "class", maintain_order=True)
            .agg((c(name).cast(pl.String).fill_null("-") + ":" + c("n").cast(pl.String)).alias(f"by_{name}"))
        )
        summary = summary.join(listed, on=["src_ip", "class"], how="left", nulls_equal=True)
    if address_info is None:
        ips = summary.lazy().select(c("src_ip").fill_null("").alias("ip")).unique()
        address_info = address_table(ips, index, allowlist).collect()
    info = address_info.select(
        c("ip").alias("src_ip"), "via", "resource", "candidate_vms", "service_tag", "region", "confidence", "proxy",
        "owner_vms", "service_tags", "allowed", "ip_version",
    ).unique("src_ip")
    local = c("class") == "local"
    summary = (
        summary.with_columns(c("src_ip").fill_null(""))
        .join(info, on="src_ip", how="left")
        .with_columns(
            c("src_ip").replace("", None),
            *(pl.when(~local).then(c(x)).alias(x) for x in ("via", "resource", "proxy")),
            *(pl.when(local).then(pl.lit([], pl.List(pl.String()))).otherwise(c(x)).alias(x)
              for x in ("candidate_vms", "owner_vms")),
            pl.when(local).then(pl.lit("strong", CONFIDENCE)).otherwise(c("confidence")).alias("confidence"),
        )
        .select("src_ip", "class", "via", "resource", "candidate_vms", "service_tag", "region", "confidence",
                "proxy", *SUMMARY_COLUMNS.names(), "owner_vms", "service_tags", "allowed", "ip_version")
        .sort("first_seen", "src_ip", nulls_last=True)
    )  # fmt: skip
    out: list[dict[str, Any]] = []
    members: list[tuple[tuple[str, ...], pl.DataFrame, pl.Expr | None]] = []
    address_keys: list[pl.DataFrame] = []
    if allowlist is not None:
        rows, m = _allowlist_misses(summary, allowlist, preds, top)
        out += rows
        address_keys.append(m)
    rows, m = _unexpected_held(summary, preds, top)
    out += rows
    address_keys.append(m)
    rows, m = _unexpected_private(summary, preds, top)
    out += rows
    address_keys.append(m)
    if attributions:
        rows, m = _unexpected_attributed(rest[0], preds, top)
        out += rows
        members.append((("_vm", "src_ip"), m, None))
    rows, m = _ip_changes(who, preds, top)
    out += rows
    members.append((("_who", "src_ip"), m, None))
    if summary.filter(c("class").is_in(list(HOLD))).height:
        rows, snat_members = _snat_pressure(lf, predictions, preds, top)
        out += rows
        members += snat_members
    rows, m = _auth_failures(*failed, top=top)
    out += rows
    members.append((("src_ip", "service"), m, c("ssh_auth").is_in(FAILED) & (c("class") != "local")))
    _evidence(lf, out)
    findings, ids = _ordered(out)
    # Address-level incidents: each address's set of ids as one small integer key, so the
    # join over every row carries no list; the sets' lists are joined from a tiny table.
    by_address = pl.concat([k for k in address_keys if k.height], how="vertical") if any(
        k.height for k in address_keys) else pl.DataFrame(schema={"src_ip": pl.String(), "_key": pl.String()})  # fmt: skip
    by_address = by_address.join(ids, on="_key").drop("_key")
    sets = pl.DataFrame(schema={"src_ip": pl.String(), "_set": pl.UInt32()})
    combos = pl.DataFrame(schema={"_set": pl.UInt32(), "_ids": pl.List(pl.String())})
    if by_address.height:
        grouped = by_address.group_by("src_ip").agg(c("_fid").sort_by("_n").alias("_ids"))
        combos = grouped.select(c("_ids").unique()).with_row_index("_set")
        sets = grouped.join(combos, on="_ids").select("src_ip", "_set")
    resolved = []
    for on, table, when in members:
        if "_key" in table.columns:
            table = table.join(ids.select("_key", "_fid"), on="_key").drop("_key").unique(list(on))
        resolved.append((on, table, when))
    addresses = summary
    return Incidents(findings=findings, addresses=addresses, members=resolved, address_sets=sets,
                     set_ids=combos, attributions=attributions, only_default_vm=only)  # fmt: skip


def _evidence(lf: pl.LazyFrame, incidents: list[dict[str, Any]], per_incident: int = 3) -> None:
    """Set each incident's ``evidence``: the origins of its earliest connections, from its
    first ``per_incident`` top addresses.  One pass reading only the rows of those few
    addresses (a filter on a short address list, before any join), never a per-row list
    aggregation over all the evidence."""
    wanted = sorted({ip for r in incidents for ip in list(r["src_ips"])[:per_incident] if ip is not None})
    for r in incidents:
        r["evidence"] = []
    if not wanted:
        return
    c = pl.col
    rows = (
        lf.filter(c("src_ip").is_in(pl.Series(wanted, dtype=pl.String()).implode()))
        .select("src_ip", "ts", "origin", "ssh_auth", "dst_ip", "dst_port", "class")
        .collect()
        .with_columns((c("dst_ip").fill_null("?") + ":" + c("dst_port").cast(pl.String)).alias("destination"))
        .sort("ts", nulls_last=True)
    )  # fmt: skip
    for r in incidents:
        pick = rows.filter(c("src_ip").is_in(pl.Series(list(r["src_ips"])[:per_incident], dtype=pl.String()).implode()))
        if r["kind"] == "auth_failures":
            pick = pick.filter(c("ssh_auth").is_in(FAILED))
        elif r.get("destination"):
            pick = pick.filter(c("destination") == r["destination"])
        origins = pick.head(_MAX_EVIDENCE).get_column("origin").list.explode(keep_nulls=False, empty_as_null=False)
        r["evidence"] = origins.drop_nulls().head(_MAX_EVIDENCE).to_list()


def _ordered(rows: list[dict[str, Any]]) -> tuple[list[Finding], pl.DataFrame]:
    """Sort incidents (severity, address_count, count, then kind and time), number them."""
    rows = sorted(rows, key=lambda r: (
        -SEVERITIES.index(r["severity"]), -r["address_count"], -r["count"], KINDS.index(r["kind"]),
        r["first_ts"] or _MAX_TS, tuple(r["src_ips"]), r["_key"],
    ))  # fmt: skip
    findings = []
    for n, r in enumerate(rows, 1):
        findings.append(Finding(
            id=f"F{n}", kind=r["kind"], severity=r["severity"], vms=tuple(r["vms"]), src_ips=tuple(r["src_ips"]),
            address_count=r["address_count"], count=r["count"], first_ts=r["first_ts"], last_ts=r["last_ts"],
            message=r["message"], fixes=tuple(dict.fromkeys(r["fixes"])), evidence=tuple(r["evidence"]),
            egress_class=r.get("class"), via=r.get("via"), resource=r.get("resource"),
            allowlist=r.get("allowlist"), services=tuple(r.get("services") or ()), destination=r.get("destination"),
        ))  # fmt: skip
    ids = pl.DataFrame(
        {"_key": [r["_key"] for r in rows], "_fid": [f.id for f in findings], "_n": list(range(1, len(rows) + 1))},
        schema={"_key": pl.String(), "_fid": pl.String(), "_n": pl.UInt32()},
    )
    return findings, ids


def _rollup(members: pl.DataFrame, top: int, *, n: str = "connections", first: str = "first_seen",
            last: str = "last_seen", extra: Sequence[pl.Expr] = ()) -> pl.DataFrame:  # fmt: skip
    """``members`` (one row per address and ``_key``) -> one row per ``_key``: the incident's numbers."""
    c = pl.col
    return (
        members.group_by("_key")
        .agg(
            c("src_ip").n_unique().cast(pl.UInt32).alias("address_count"),
            c(n).sum().cast(pl.UInt32).alias("count"),
            c(first).min().alias("first_ts"),
            c(last).max().alias("last_ts"),
            c("src_ip").sort_by([c(n), c("src_ip")], descending=[True, False]).head(top).alias("src_ips"),
            *extra,
        )
        .sort("_key")
    )


def _services(col: str = "by_service") -> pl.Expr:
    names = pl.col(col).list.eval(pl.element().str.replace(r":[0-9]+$", "")).list.explode(
        keep_nulls=False, empty_as_null=False)
    return names.filter(names != "-").unique().sort().alias("services")


# --- allowlist_miss ----------------------------------------------------------------------------


def _allowlist_misses(
    summary: pl.DataFrame, allowlist: Allowlist, preds: Mapping[str, list[Prediction]], top: int
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    c = pl.col
    tied = (
        (c("candidate_vms").list.len() > 0) | (c("owner_vms").list.len() > 0)
        | c("class").is_in([*_FIXED, "default_snat"]) | c("service_tag").is_not_null()
    )  # fmt: skip
    missed = summary.filter((c("allowed") == False) & tied & (c("class") != "local")).with_columns(  # noqa: E712
        _key("class", "via", "resource", _joined("candidate_vms")).alias("_key")
    )
    if missed.height == 0:
        return [], pl.DataFrame(schema={"src_ip": pl.String(), "_key": pl.String()})
    rolled = _rollup(missed, top, extra=[
        c("class").first().cast(pl.String), c("via").first().cast(pl.String), c("resource").first(),
        c("candidate_vms").first().list.sort().alias("vms"),
        c("service_tag").unique().alias("_tags"), _services(),
    ])  # fmt: skip
    out = []
    for row in rolled.iter_rows(named=True):
        tags = [t for t in row["_tags"] if t]
        row["_tag"] = tags[0] if len(tags) == 1 and len(row["_tags"]) == 1 else None
        vms = tuple(row["vms"])
        reason, fixes = _reasons(vms, preds)
        cls = row["class"]
        one = row["src_ips"][0] if row["address_count"] == 1 else None
        if cls == "default_snat":
            fixes = (*fixes, f"do not add {one or 'these addresses'} to {allowlist.name}: a default SNAT address "
                             "is not yours and changes when the VM is redeployed")  # fmt: skip
        elif cls in _FIXED or vms:
            fixes = (*fixes, f"or add {one or 'these addresses'} to allowlist {allowlist.name}")
        severity: Severity = "high" if vms else ("medium" if cls in _FIXED else "low")
        services = ", ".join(row["services"])
        verb = "is" if row["address_count"] == 1 else "are"
        message = (
            f"{_what(row, top)} {verb} not accepted by allowlist {allowlist.name}: {row['count']:,} connection(s)"
            + (f" ({services})" if services else "")
            + f" from {_ts(row['first_ts'])} to {_ts(row['last_ts'])}."
            + (f" Candidate VMs: {', '.join(vms)}. Predicted: {reason}" if vms else "")
        )
        out.append(row | {"kind": "allowlist_miss", "severity": severity, "vms": vms, "message": message,
                          "fixes": fixes, "allowlist": allowlist.name})  # fmt: skip
    return out, missed.select("src_ip", "_key")


# --- unexpected_egress -------------------------------------------------------------------------


def _unexpected_held(
    summary: pl.DataFrame, preds: Mapping[str, list[Prediction]], top: int
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    """An inventory egress address that no VM is predicted to use (stale inventory or a gap
    in the model), or an inventory address that is no egress path at all."""
    c = pl.col
    held = summary.filter(
        (c("class").is_in(_FIXED) & (c("candidate_vms").list.len() == 0))
        | ((c("class") == "unknown") & c("resource").is_not_null() & c("proxy").is_null())
    ).with_columns(_key(pl.lit("held"), "class", "via", "resource").alias("_key"))
    if held.height == 0:
        return [], pl.DataFrame(schema={"src_ip": pl.String(), "_key": pl.String()})
    rolled = _rollup(held, top, extra=[
        c("class").first().cast(pl.String), c("via").first().cast(pl.String), c("resource").first(),
        c("owner_vms").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique().sort().alias("vms"), _services(),
    ])  # fmt: skip
    out = []
    for row in rolled.iter_rows(named=True):
        owners = tuple(row["vms"])
        said = "; ".join(
            f"{vm} is predicted {p.egress_class}" + (f" ({', '.join(p.expected_ips)})" if p.expected_ips else "")
            for vm in owners for p in preds.get(vm, [])
        )  # fmt: skip
        _, fixes = _reasons(owners, preds)
        what = "no VM is predicted to egress from it" if row["class"] != "unknown" else "it is no VM egress path"
        message = (
            f"{_what(row, top)} {'is' if row['address_count'] == 1 else 'are'} held by the inventory, but {what}"
            + (f": {said}." if said else ".")
            + " The inventory is stale, or the model misses a path."
        )
        out.append(row | {"kind": "unexpected_egress", "severity": "medium", "vms": owners, "message": message,
                          "fixes": (*fixes, "reload the inventory (az ... list) and compare")})  # fmt: skip
    return out, held.select("src_ip", "_key")


def _unexpected_private(
    summary: pl.DataFrame, preds: Mapping[str, list[Prediction]], top: int
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    """A VM's own private address, where its predictions for a destination (predict
    --destination) say the path is not private.  Internet-bound predictions say nothing
    about private paths, so they are not compared."""
    c = pl.col
    per_vm = pl.DataFrame(
        [(vm, sum(p.destination is not None for p in ps), sum(p.destination is not None and p.egress_class == "private"
                                                              for p in ps)) for vm, ps in preds.items()],
        schema={"vm": pl.String(), "n_dest": pl.UInt32(), "n_private": pl.UInt32()}, orient="row",
    )  # fmt: skip
    private = summary.filter((c("class") == "private") & (c("candidate_vms").list.len() > 0))
    if private.height == 0 or per_vm.height == 0:
        return [], pl.DataFrame(schema={"src_ip": pl.String(), "_key": pl.String()})
    bad = (
        private.select("src_ip", c("candidate_vms").alias("vm")).explode("vm")
        .join(per_vm, on="vm", how="left")
        .group_by("src_ip").agg(c("n_dest").sum(), c("n_private").sum())
        .filter((c("n_dest") > 0) & (c("n_private") == 0))
    )  # fmt: skip
    private = private.join(bad.select("src_ip"), on="src_ip", how="semi").with_columns(
        _key(pl.lit("private"), _joined("candidate_vms")).alias("_key")
    )
    if private.height == 0:
        return [], pl.DataFrame(schema={"src_ip": pl.String(), "_key": pl.String()})
    rolled = _rollup(private, top, extra=[
        c("class").first().cast(pl.String), c("resource").first(), c("candidate_vms").first().list.sort().alias("vms"),
        _services(),
    ])  # fmt: skip
    out = []
    for row in rolled.iter_rows(named=True):
        vms = tuple(row["vms"])
        ps = [p for vm in vms for p in preds.get(vm, []) if p.destination is not None]
        reason, fixes = _reasons(vms, preds)
        out.append(row | {
            "kind": "unexpected_egress", "severity": "medium", "vms": vms,
            "message": f"{_what(row, top)} arrives on its private address, but the path to "
                       f"{ps[0].destination} is predicted {ps[0].egress_class}: {reason}",
            "fixes": (*fixes, "check peerings, private endpoints and routes this inventory does not show"),
        })  # fmt: skip
    return out, private.select("src_ip", "_key")


def _predicted_ranges(preds: Mapping[str, list[Prediction]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per VM: its predicted classes, and its expected addresses as integer ranges (v4 / v6 halves)."""
    classes = pl.DataFrame(
        [(vm, p.egress_class) for vm, ps in preds.items() for p in ps],
        schema={"_vm": pl.String(), "class": pl.String()}, orient="row",
    ).unique()  # fmt: skip
    ranges = []
    for vm, ps in preds.items():
        for p in ps:
            for text in p.expected_ips:
                try:
                    net = ipaddress.ip_network(text, strict=False)
                except ValueError:
                    continue
                lo, hi = int(net.network_address), int(net.broadcast_address)
                if net.version == 4:
                    ranges.append((vm, 4, 0, lo, 0, hi))
                else:
                    ranges.append((vm, 6, lo >> 64, lo & (2**64 - 1), hi >> 64, hi & (2**64 - 1)))
    schema = {"_vm": pl.String(), "v": pl.UInt8(), "s_hi": pl.UInt64(), "s_lo": pl.UInt64(),
              "e_hi": pl.UInt64(), "e_lo": pl.UInt64()}  # fmt: skip
    return classes, pl.DataFrame(ranges, schema=schema, orient="row")


def _unexpected_attributed(
    attributed: pl.DataFrame, preds: Mapping[str, list[Prediction]], top: int
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    """Evidence attributed to a VM, from an address its prediction does not give."""
    c = pl.col
    empty = pl.DataFrame(schema={"_vm": pl.String(), "src_ip": pl.String(), "_key": pl.String()})
    if attributed.height == 0:
        return [], empty
    classes, ranges = _predicted_ranges(preds)
    rows = attributed.with_columns(c("class").cast(pl.String))
    keys = parse_addresses(rows.select("_vm", "src_ip", c("src_ip").alias("ip")).lazy()).collect()
    # 128-bit (or 32-bit) keys as two halves: IPv4 in the low half.
    keys = keys.with_columns(
        pl.when(c("ip_version") == 4).then(pl.lit(0, pl.UInt64)).otherwise(c("hi")).alias("a_hi"),
        pl.when(c("ip_version") == 4).then(c("k4").cast(pl.UInt64)).otherwise(c("lo")).alias("a_lo"),
    )
    inside = (
        keys.join(ranges, on="_vm")
        .filter(
            (c("ip_version") == c("v"))
            & ((c("a_hi") > c("s_hi")) | ((c("a_hi") == c("s_hi")) & (c("a_lo") >= c("s_lo"))))
            & ((c("a_hi") < c("e_hi")) | ((c("a_hi") == c("e_hi")) & (c("a_lo") <= c("e_lo"))))
        )
        .select("_vm", "src_ip").unique()
    )  # fmt: skip
    known = rows.join(classes, on=["_vm", "class"], how="semi")
    ok = pl.concat([
        known.filter(~c("class").is_in(_FIXED)).select("_vm", "src_ip"),
        known.filter(c("class").is_in(_FIXED)).join(inside, on=["_vm", "src_ip"], how="semi").select("_vm", "src_ip"),
    ])  # fmt: skip
    bad = rows.join(ok, on=["_vm", "src_ip"], how="anti", nulls_equal=True).with_columns(
        _key(pl.lit("from"), "_vm", "class", "resource").alias("_key")
    )
    if bad.height == 0:
        return [], empty
    rolled = _rollup(bad, top, n="n", first="first", last="last", extra=[
        c("_vm").first().alias("vm"), c("class").first(), c("via").first().cast(pl.String), c("resource").first(),
        c("service_tag").unique().alias("_tags"),
    ])  # fmt: skip
    out = []
    for row in rolled.iter_rows(named=True):
        vm = row["vm"]
        tags = [t for t in row["_tags"] if t]
        row["_tag"] = tags[0] if len(tags) == 1 and len(row["_tags"]) == 1 else None
        ps = preds.get(vm, [])
        reason, fixes = _reasons([vm], preds)
        message = (
            f"Evidence from {vm} arrives from {_what(row, top)}, but {vm} is predicted "
            + ", ".join(sorted(f"{p.egress_class}" + (f" ({', '.join(p.expected_ips)})" if p.expected_ips else "")
                               for p in ps)) + f". Predicted: {reason}"
        )  # fmt: skip
        out.append(row | {"kind": "unexpected_egress", "severity": "high", "vms": (vm,), "message": message,
                          "fixes": (*fixes, "check the inventory for changes this model does not know")})  # fmt: skip
    return out, bad.select("_vm", "src_ip", "_key")


# --- egress_ip_changed -------------------------------------------------------------------------


def _ip_changes(
    who: pl.DataFrame, preds: Mapping[str, list[Prediction]], top: int
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    c = pl.col
    empty = pl.DataFrame(schema={"_who": pl.String(), "src_ip": pl.String(), "_key": pl.String()})
    changed = who.filter(c("src_ip").n_unique().over("_who") >= 2).with_columns(_key(pl.lit("ip"), "_who").alias("_key"))
    if changed.height == 0:
        return [], empty
    rolled = _rollup(changed, top, n="n", first="first", last="last", extra=[
        c("_who").first().alias("vm"),
        pl.struct("src_ip", "first", "last", "n").sort_by("first").head(top).alias("_story"),
    ])  # fmt: skip
    out = []
    for row in rolled.iter_rows(named=True):
        vm = row["vm"]
        story = " -> ".join(
            f"{s['src_ip']} ({_ts(s['first'])} to {_ts(s['last'])}, {s['n']} connection(s))" for s in row["_story"]
        )
        if row["address_count"] > len(row["_story"]):
            story += f" -> ... {row['address_count'] - len(row['_story']):,} more"
        _, fixes = _reasons([vm], preds)
        out.append(row | {
            "kind": "egress_ip_changed", "severity": "medium", "vms": (vm,), "class": "default_snat",
            "src_ips": [s["src_ip"] for s in row["_story"]],
            "message": f"The default SNAT address of {vm} changed: {story}. Default outbound addresses "
                       "are Azure's and change when the VM is stopped, redeployed or resized.",
            "fixes": (*fixes, "give it an explicit egress (NAT gateway, outbound rule or public IP) and allowlist that"),
        })  # fmt: skip
    return out, changed.select("_who", "src_ip", "_key")


# --- snat_pressure -----------------------------------------------------------------------------


def _capacities(predictions: Sequence[Prediction]) -> pl.DataFrame:
    """(vm, class) -> the fewest SNAT ports predicted for it (§2)."""
    rows = [(p.vm or p.nic, p.egress_class, p.snat_ports) for p in predictions if p.snat_ports]
    return (
        pl.DataFrame(rows, schema={"vm": pl.String(), "class": pl.String(), "ports": pl.Int64()}, orient="row")
        .group_by("vm", "class").agg(pl.col("ports").min())
    )  # fmt: skip


def _snat_pressure(
    lf: pl.LazyFrame, predictions: Sequence[Prediction], preds: Mapping[str, list[Prediction]], top: int
) -> tuple[list[dict[str, Any]], list[tuple[tuple[str, ...], pl.DataFrame, pl.Expr | None]]]:
    c = pl.col
    key = ["src_ip", "dst_ip", "dst_port"]
    snat = lf.filter(c("class").is_in(list(HOLD)) & c("ts").is_not_null() & c("dst_port").is_not_null())
    # The fewest ports any SNAT address can have: a destination with fewer connections
    # cannot be under pressure, so only the others' rows are read into memory.
    floor = min([NAT_GATEWAY_PORTS, default_snat_ports(1) or NAT_GATEWAY_PORTS,
                 *(p.snat_ports for p in predictions if p.snat_ports)])  # fmt: skip
    # Both prefilters count by a 64-bit hash of the key (a fixed-size key: no strings held
    # per distinct key); a collision only lets a few more rows through to the exact checks.
    port_key = [*key, "src_port"]
    hashed = snat.with_columns(
        pl.struct(key).hash().alias("_h3"),
        pl.struct(port_key).hash().alias("_h4"),
    )
    # One pass: connections per (destination, source port) hash, with the destination's hash.
    quads = (
        hashed.group_by("_h4").agg(pl.len().alias("_n"), c("_h3").first(), c("src_port").is_not_null().all().alias("_p"))
        .collect()
    )
    busy = (
        quads.group_by("_h3").agg(c("_n").sum()).filter(c("_n") >= PRESSURE_FRACTION * floor).select("_h3").lazy()
    )
    again = quads.filter((c("_n") >= 2) & c("_p")).select("_h4").lazy()
    del quads
    cols = [*port_key, "ts", "duration", "state", "class", "via", "resource", "candidate_vms", "origin"]
    # The keys first (small), then only their rows: one query using `hashed` twice would
    # cache every SNAT row in memory.
    busy_keys, again_keys = _collect_each([busy, again])
    reads = []
    if busy_keys.height:
        reads.append(hashed.join(busy_keys.lazy(), on="_h3", how="semi").select(cols))
    if again_keys.height:
        reads.append(hashed.filter(c("src_port").is_not_null()).join(again_keys.lazy(), on="_h4", how="semi").select(cols))
    got = iter(_collect_each(reads))
    empty = pl.DataFrame(schema=snat.select(cols).collect_schema())
    busy_rows = next(got) if busy_keys.height else empty
    reused_rows = next(got) if again_keys.height else empty
    out: list[dict[str, Any]] = []
    members: list[tuple[tuple[str, ...], pl.DataFrame, pl.Expr | None]] = []
    capacity_of = _capacities(predictions)
    first_of = [c(x).first() for x in ("class", "via", "resource", "candidate_vms")]
    # 1. concurrency: +1 at the start, -1 at the end of every connection
    conns = busy_rows.with_columns((c("ts") + c("duration").fill_null(dt.timedelta(0))).alias("end"))
    events = pl.concat([
        conns.select(*key, c("ts").alias("t"), pl.lit(1, pl.Int64).alias("d")),
        conns.select(*key, c("end").alias("t"), pl.lit(-1, pl.Int64).alias("d")),
    ])  # fmt: skip
    peaks = (
        events.sort(*key, "t", "d")  # an end at the same instant as a start frees the port first
        .with_columns(c("d").cum_sum().over(key).alias("open"))
        .group_by(key)
        .agg(c("open").max().alias("peak"), c("t").sort_by("open").last().alias("at"))
    )
    triples = (
        conns.group_by(key).agg(*first_of, pl.len().alias("n"), c("ts").min().alias("first"),
                                c("ts").max().alias("last"))
        .join(peaks, on=key)
    )  # fmt: skip
    need = (
        triples.select(*key, "class", c("candidate_vms").alias("vm")).explode("vm")
        .with_columns(c("class").cast(pl.String))
        .join(capacity_of, on=["vm", "class"], how="left")
        .with_columns(
            pl.when(c("class") == "nat_gateway").then(NAT_GATEWAY_PORTS)
            .when(c("ports").is_not_null()).then(c("ports"))
            .when((c("class") == "default_snat") & c("vm").is_not_null()).then(default_snat_ports(1) or 0)
            .alias("ports")
        )
        .group_by(key).agg(
            pl.when(c("class").first() == "nat_gateway").then(pl.lit(NAT_GATEWAY_PORTS, pl.Int64))
            .otherwise(c("ports").sum()).alias("capacity"))
    )  # fmt: skip
    pressed = (
        triples.join(need, on=key)
        .filter((c("capacity") > 0) & (c("peak") >= PRESSURE_FRACTION * c("capacity")))
        .with_columns(
            (c("dst_ip").fill_null("?") + ":" + c("dst_port").cast(pl.String)).alias("destination"),
        )
        .with_columns(_key(pl.lit("conc"), "class", "via", "resource", "destination").alias("_key"))
    )  # fmt: skip
    if pressed.height:
        rolled = _rollup(pressed, top, n="n", first="first", last="last", extra=[
            *(c(x).first().cast(pl.String) for x in ("class", "via", "resource", "destination")),
            c("candidate_vms").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique().sort().alias("vms"),
            c("peak").max(), c("at").sort_by("peak").last(), c("capacity").sort_by("peak").last(),
            c("src_ip").sort_by("peak").last().alias("_worst"),
        ])  # fmt: skip
        for row in rolled.iter_rows(named=True):
            vms = tuple(row["vms"])
            _, fixes = _reasons(vms, preds)
            one = {**row, "address_count": 1, "src_ips": [row["_worst"]]}
            extra = f" ({row['address_count']:,} addresses under pressure)" if row["address_count"] > 1 else ""
            out.append(row | {
                "kind": "snat_pressure", "severity": "high", "vms": vms,
                "message": f"{row['peak']} concurrent connections from {_what(one, top)} to {row['destination']} at "
                           f"{_ts(row['at'])}: {row['peak'] / row['capacity']:.0%} of the {row['capacity']} SNAT ports "
                           f"preallocated for it{extra}. New connections to this destination fail or time out "
                           "when they run out.",
                "fixes": ("reuse connections (keep-alive, pooling) to this destination",
                          "raise allocatedOutboundPorts on the outbound rule, add frontend IPs, or use a NAT gateway",
                          *fixes),
            })  # fmt: skip
        members.append((tuple(key), pressed.select(*key, "_key"), None))
    # 2. a source port reused to the same destination before the hold time ran out
    fin = c("class").cast(pl.String).replace_strict({k: h[0] for k, h in HOLD.items()}, return_dtype=pl.Duration("us"))
    rst = c("class").cast(pl.String).replace_strict({k: h[1] for k, h in HOLD.items()}, return_dtype=pl.Duration("us"))
    reuse = (
        reused_rows.with_columns((c("ts") + c("duration").fill_null(dt.timedelta(0))).alias("end"))
        .sort(*port_key, "ts")
        .with_columns(
            c("end").shift().over(port_key).alias("prev_end"),
            c("state").shift().over(port_key).alias("prev_state"),
        )
        .with_columns(
            pl.when(c("prev_state").is_in(["reset", "rejected"])).then(rst)
            .when(c("prev_state") == "closed").then(fin)
            .alias("hold")
        )  # fmt: skip
        .filter(c("prev_end").is_not_null() & (c("ts") - c("prev_end") < c("hold")))
        .with_columns((c("dst_ip").fill_null("?") + ":" + c("dst_port").cast(pl.String)).alias("destination"))
        .with_columns(_key(pl.lit("reuse"), "class", "via", "resource", "destination").alias("_key"))
    )  # fmt: skip
    if reuse.height:
        per_ip = reuse.group_by("_key", *key).agg(
            *first_of, c("destination").first(), pl.len().alias("n"), c("ts").min().alias("first"),
            c("ts").max().alias("last"),
            (c("ts") - c("prev_end")).min().alias("gap"), c("src_port").unique().sort().alias("ports"),
        )  # fmt: skip
        rolled = _rollup(per_ip, top, n="n", first="first", last="last", extra=[
            *(c(x).first().cast(pl.String) for x in ("class", "via", "resource", "destination")),
            c("candidate_vms").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique().sort().alias("vms"),
            c("gap").min(), c("ports").list.explode(keep_nulls=False, empty_as_null=False).unique().sort().head(10).alias("ports"),
        ])  # fmt: skip
        for row in rolled.iter_rows(named=True):
            vms = tuple(row["vms"])
            fin_s, rst_s = (int(h.total_seconds()) for h in HOLD[row["class"]])
            out.append(row | {
                "kind": "snat_pressure", "severity": "medium", "vms": vms,
                "message": f"{_what(row, top)} reused source port(s) {', '.join(map(str, row['ports']))} to "
                           f"{row['destination']} {row['count']} time(s), as soon as {row['gap'].total_seconds():g} s "
                           f"after the previous connection ended (a port is held {fin_s} s after FIN, {rst_s} s "
                           "after RST): the SNAT port exhaustion signature.",
                "fixes": ("reuse connections (keep-alive, pooling) to this destination",
                          "raise allocatedOutboundPorts or add frontend IPs / a NAT gateway"),
            })  # fmt: skip
        members.append((tuple(key), per_ip.select(*key, "_key"), None))
    return out, members


# --- auth_failures -----------------------------------------------------------------------------


def _auth_plans(failed: pl.LazyFrame) -> list[pl.LazyFrame]:
    """The group-bys behind ``auth_failures``: per incident, per address in it, and the guessers.

    Guessing is ``GUESS_FAILURES`` failures within ``GUESS_WINDOW`` from one address, i.e.
    (times sorted) some failure whose ``GUESS_FAILURES - 1``-th successor is less than the
    window later: one shift, no rolling window, and only for addresses with that many
    failures.  The peak count (for the message) is then computed for the guessers alone.
    """
    c = pl.col
    keyed = failed.with_columns(_key(pl.lit("auth"), "service", _joined("candidate_vms")).alias("_key"))
    per_key = keyed.group_by("_key").agg(
        pl.len().cast(pl.UInt32).alias("count"), c("ts").min().alias("first_ts"), c("ts").max().alias("last_ts"),
        c("src_ip").n_unique().cast(pl.UInt32).alias("address_count"),
        c("service").first().cast(pl.String).alias("_service"),
        c("candidate_vms").first().list.sort().alias("vms"),
        c("ssh_user").drop_nulls().unique().sort().head(11).alias("users"),
        c("ssh_auth").cast(pl.String).unique().sort().alias("outcomes"),
        c("class").cast(pl.String).unique().sort().alias("_classes"), c("resource").first(),
        c("service_tag").unique().alias("_tags"),
    )
    per_address = keyed.group_by("_key", "src_ip", "service").agg(pl.len().cast(pl.UInt32).alias("n"))
    window = pl.lit(GUESS_WINDOW, pl.Duration("us"))
    times = (
        failed.select("src_ip", "ts")
        .filter(pl.len().over("src_ip") >= GUESS_FAILURES)
        .sort("src_ip", "ts")
    )
    guessers = (
        times.with_columns(((c("ts").shift(-(GUESS_FAILURES - 1)).over("src_ip") - c("ts")) < window).alias("g"))
        .group_by("src_ip").agg(c("g").any())
        .filter(c("g")).select("src_ip")
    )
    peaks = (
        times.join(guessers, on="src_ip", how="semi")
        .rolling("ts", period=f"{int(GUESS_WINDOW.total_seconds())}s", group_by="src_ip")
        .agg(pl.len().alias("peak"))
        .group_by("src_ip").agg(c("peak").max().cast(pl.UInt32))
    )  # fmt: skip
    return [per_key, per_address, peaks]


def _auth_failures(
    per_key: pl.DataFrame, per_address: pl.DataFrame, peaks: pl.DataFrame, *, top: int
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    c = pl.col
    empty = pl.DataFrame(schema={"src_ip": pl.String(), "service": SERVICE, "_key": pl.String()})
    if per_key.height == 0:
        return [], empty
    members = per_address.join(peaks, on="src_ip", how="left")
    tops = (
        members.group_by("_key").agg(
            c("src_ip").sort_by([c("n"), c("src_ip")], descending=[True, False]).head(top).alias("src_ips"),
            c("peak").max().fill_null(0).alias("peak"), c("peak").is_not_null().sum().alias("guessers"),
        )
    )  # fmt: skip
    rolled = per_key.join(tops, on="_key").sort("_key")
    minutes = int(GUESS_WINDOW.total_seconds() // 60)
    out = []
    for row in rolled.iter_rows(named=True):
        vm_list = tuple(row["vms"] or ())
        classes = [str(x) for x in row["_classes"] if x is not None]
        row["class"] = classes[0] if len(classes) == 1 else ", ".join(classes) or "unknown"
        tags = [t for t in row["_tags"] if t]
        row["_tag"] = tags[0] if len(tags) == 1 and len(row["_tags"]) == 1 else None
        users = row["users"]
        guessing = row["peak"] >= GUESS_FAILURES
        severity: Severity = "high" if guessing else ("low" if vm_list else "info")
        who = _what(row, top)
        if row["address_count"] > 1 and row["guessers"]:
            who += f"; {row['guessers']:,} of them guessing"
        message = (
            f"{row['count']:,} failed {row['_service'].upper() if row['_service'] else 'SSH'} authentication(s) "
            f"({', '.join(row['outcomes'])}) from {who}"
            + (f" as {', '.join(users[:10])}" + (" ..." if len(users) > 10 else "") if users else "")
            + (f": password guessing ({row['peak']} failures within {minutes} minutes from one address)."
               if guessing else ".")
            + (f" It is the egress address of {', '.join(vm_list)}." if vm_list else "")
        )  # fmt: skip
        fixes = (
            ("block the addresses (NSG, fail2ban) and allow SSH keys only",)
            if guessing and not vm_list
            else (f"check the SSH key / user configured on {', '.join(vm_list)}",) if vm_list else ()
        )
        out.append(row | {"kind": "auth_failures", "severity": severity, "vms": vm_list, "message": message,
                          "fixes": fixes, "services": [row["_service"]] if row["_service"] else []})  # fmt: skip
    return out, per_address.select("src_ip", "service", "_key")


__all__ = [
    "FAILED",
    "FINDINGS_SCHEMA",
    "GUESS_FAILURES",
    "GUESS_WINDOW",
    "HOLD",
    "KINDS",
    "NAT_GATEWAY_PORTS",
    "PRESSURE_FRACTION",
    "SEVERITIES",
    "SUMMARY_COLUMNS",
    "TOP_N",
    "Finding",
    "Incidents",
    "Kind",
    "Severity",
    "find",
    "frame",
    "incidents",
]
