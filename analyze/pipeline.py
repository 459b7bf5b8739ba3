"""The main job: evidence + inventory -> classified connections, addresses, findings.

``run`` is what ``egresslens analyze`` and ``egresslens demo`` call: load the inventory and
predict every VM's egress, read the evidence, merge what several sources say about one
connection, classify every source address, and find what is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analyze.classify import classify
from analyze.correlate import Correlation, correlate
from analyze.evidence import EvidenceFile, load_evidence
from analyze.findings import Finding, find
from analyze.inventory import Allowlist, Inventory, load, load_allowlist
from analyze.predict import Prediction, predict
from capture.errors import UsageError


@dataclass(slots=True)
class Analysis:
    """What ``analyze`` found, ready for a report."""

    connections: pl.DataFrame
    """Classified connection rows (the record columns plus class, via, resource, ...)."""
    addresses: pl.DataFrame
    """One row per source address: class, resource, first/last seen, counts, users."""
    findings: list[Finding]
    evidence: list[EvidenceFile]
    predictions: list[Prediction]
    inventory: Inventory
    allowlist: Allowlist | None = None
    clock_offset: dt.timedelta | None = None
    """Logs' clock minus the capture's, estimated from matched pairs (None: no pairs)."""
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def resolve_allowlist(inv: Inventory, spec: str | None) -> Allowlist | None:
    """``--allowlist``: a name in the inventory, or a file; default: the inventory's only one.

    Raises:
        UsageError: no allowlist of that name and no such file.
    """
    if spec is None:
        lists = list(inv.allowlists.values())
        return lists[0] if len(lists) == 1 else None
    found = inv.allowlist(spec)
    if found is not None:
        return found
    if Path(spec).is_file():
        return load_allowlist(spec)
    names = ", ".join(sorted(a.name for a in inv.allowlists.values())) or "none loaded"
    raise UsageError(f"--allowlist {spec!r}: no allowlist of that name ({names}) and no such file")


def summarize_addresses(connections: pl.DataFrame) -> pl.DataFrame:
    """Per source address: its classification and what came from it."""
    if connections.height == 0:
        return pl.DataFrame(schema={"src_ip": pl.String, "class": pl.String, "connections": pl.UInt32})
    c = pl.col
    return (
        connections.group_by("src_ip")
        .agg(
            c("class").first(),
            c("via").first(),
            c("resource").first(),
            c("candidate_vms").first(),
            c("service_tag").first(),
            c("confidence").first(),
            c("allowed").first(),
            c("ts").min().alias("first_seen"),
            c("ts").max().alias("last_seen"),
            pl.len().alias("connections"),
            c("service").cast(pl.String).value_counts(sort=True).alias("by_service"),
            c("state").cast(pl.String).value_counts(sort=True).alias("by_state"),
            c("ssh_user").drop_nulls().unique().sort().alias("users"),
            c("http_user_agent").drop_nulls().unique().sort().alias("user_agents"),
        )
        .with_columns(
            by_service=c("by_service").list.eval(
                pl.element().struct.field("service") + ":" + pl.element().struct.field("count").cast(pl.String)
            ),
            by_state=c("by_state").list.eval(
                pl.element().struct.field("state") + ":" + pl.element().struct.field("count").cast(pl.String)
            ),
        )
        .sort("first_seen", "src_ip")
    )


def _allowed(connections: pl.DataFrame, allowlist: Allowlist | None) -> pl.DataFrame:
    """``allowed`` per row: True / False by the allowlist, null without one."""
    if allowlist is None or connections.height == 0:
        return connections.with_columns(allowed=pl.lit(None, dtype=pl.Boolean))
    verdict = {}
    for ip, tag in connections.select("src_ip", "service_tag").unique().iter_rows():
        verdict[(ip, tag)] = allowlist.allows(ip, frozenset([tag]) if tag else None)
    keys = pl.DataFrame(
        [(ip, tag, v) for (ip, tag), v in verdict.items()],
        schema={"src_ip": pl.String, "service_tag": pl.String, "allowed": pl.Boolean},
        orient="row",
    )
    return connections.join(keys, on=["src_ip", "service_tag"], how="left", nulls_equal=True, maintain_order="left")


def run(
    evidence: Sequence[str],
    inventory: Sequence[str],
    *,
    allowlist: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    vm: str | None = None,
    src: str | None = None,
    from_vm: Mapping[str, str] | None = None,
    observer: str | None = None,
    year: int | None = None,
    tz: str = "UTC",
) -> Analysis:
    """Analyze ``evidence`` against ``inventory``.

    Args:
        evidence: captures, records folders, logs, folders and globs of them.
        inventory: inventory sources (YAML, az / ARM JSON, Service Tags, allowlists).
        allowlist: the allowlist to check against (name in the inventory, or a file).
        since, until: keep connections in this time window.
        vm: keep connections whose candidate VMs include this one.
        src: keep connections from this source address or CIDR.
        from_vm: evidence path -> the VM it is known to come from (``--from VM``).
        observer, year, tz: as for ``logs read``.

    Raises:
        InputError, InventoryError, UsageError: bad input, one line naming where.
    """
    inv = load(inventory)
    predictions = predict(inv)
    allow = resolve_allowlist(inv, allowlist)
    ev = load_evidence(evidence, observer=observer, year=year, tz=tz)
    return analyze_records(
        ev.records, inv, predictions, allow, since=since, until=until, vm=vm, src=src,
        attributions=_attributions(from_vm or {}, ev.files), evidence=ev.files,
        notes=list(inv.warnings) + ev.notes, errors=ev.errors,
    )  # fmt: skip


def classify_partition(
    records: pl.DataFrame | pl.LazyFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    allow: Allowlist | None,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    vm: str | None = None,
    src: str | None = None,
) -> tuple[pl.DataFrame, Correlation]:
    """Correlate and classify one partition of evidence (all of it, or one observer's).

    The store engines (``analyze.fleet``) map this over observers; ``analyze_records``
    calls it once on everything.
    """
    merged = correlate(records)
    rows = classify(merged.records, inv, predictions).collect()
    rows = _allowed(rows, allow)
    if since is not None:
        rows = rows.filter(pl.col("ts") >= since)
    if until is not None:
        rows = rows.filter(pl.col("ts") < until)
    if src is not None:
        rows = rows.filter(_in_network(src))
    if vm is not None:
        rows = rows.filter(pl.col("candidate_vms").list.contains(vm))
    return rows, merged


def finish(
    rows: pl.DataFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    allow: Allowlist | None,
    *,
    attributions: Mapping[str, str] | None = None,
    evidence: Sequence[EvidenceFile] = (),
    clock_offset: dt.timedelta | None = None,
    notes: Sequence[str] = (),
    errors: Sequence[str] = (),
) -> Analysis:
    """Classified rows (of one partition or many) -> findings and the ``Analysis``."""
    rows = rows.sort("ts", "src_ip", maintain_order=True)
    findings = find(rows, inv, predictions, allowlist=allow, attributions=dict(attributions or {}))
    return Analysis(
        connections=rows,
        addresses=summarize_addresses(rows),
        findings=findings,
        evidence=list(evidence),
        predictions=list(predictions),
        inventory=inv,
        allowlist=allow,
        clock_offset=clock_offset,
        notes=list(notes),
        errors=list(errors),
    )


def analyze_records(
    records: pl.DataFrame | pl.LazyFrame,
    inventory: Inventory,
    predictions: Sequence[Prediction],
    allowlist: Allowlist | None,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    vm: str | None = None,
    src: str | None = None,
    attributions: Mapping[str, str] | None = None,
    evidence: Sequence[EvidenceFile] = (),
    notes: Sequence[str] = (),
    errors: Sequence[str] = (),
) -> Analysis:
    """Analyze connection records already loaded (from files or a store)."""
    rows, merged = classify_partition(
        records, inventory, predictions, allowlist, since=since, until=until, vm=vm, src=src
    )
    return finish(
        rows, inventory, predictions, allowlist, attributions=attributions, evidence=evidence,
        clock_offset=merged.clock_offset, notes=notes, errors=errors,
    )  # fmt: skip


def _in_network(spec: str) -> pl.Expr:
    import ipaddress

    try:
        net = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        raise UsageError(f"--src {spec!r}: not an address or CIDR") from None
    if net.num_addresses == 1:
        return pl.col("src_ip") == str(net.network_address)
    members = pl.col("src_ip").map_batches(
        # A CIDR test per distinct address; ipaddress is the reference for containment.
        lambda s: pl.Series([_contains(net, ip) for ip in s.to_list()], dtype=pl.Boolean),
        return_dtype=pl.Boolean,
    )
    return members


def _contains(net: object, ip: str | None) -> bool:
    import ipaddress

    if ip is None:
        return False
    try:
        return ipaddress.ip_address(ip) in net  # type: ignore[operator]
    except ValueError:
        return False


def _attributions(from_vm: Mapping[str, str], files: Sequence[EvidenceFile]) -> dict[str, str]:
    """Origin file -> VM, for every evidence file under a path given with ``--from``."""
    out: dict[str, str] = {}
    for spec, vm in from_vm.items():
        root = Path(spec)
        for f in files:
            p = Path(f.path)
            if p == root or root in p.parents:
                out[f.path] = vm
    return out
