"""The main job: evidence + inventory -> classified connections, addresses, incidents.

``run`` is what ``egresslens analyze`` and ``egresslens demo`` call: load the inventory and
predict every VM's egress, read the evidence, merge what several sources say about one
connection, then ``analyze_records``: push the filters down, classify the distinct source
addresses once, roll the findings up into incidents (a few group-bys) and keep the
per-connection rows as one lazy plan (``Analysis.rows``) that the report folder streams.
A store (``analyze --store``) calls ``analyze_records`` on its own records scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analyze.classify import AddressIndex, address_table, classify, own_addresses, parse_addresses
from analyze.correlate import Correlation, correlate
from analyze.evidence import Evidence, EvidenceFile, load_evidence
from analyze.findings import TOP_N, Finding, incidents
from analyze.inventory import Allowlist, Inventory, load, load_allowlist
from analyze.predict import Prediction, predict
from capture.errors import UsageError


Progress = Callable[[str], None]
"""Told what long work is under way (``reading 1,234 MB of evidence``); the CLI shows it."""


@dataclass(slots=True)
class Analysis:
    """What ``analyze`` found, ready for a report."""

    rows: pl.LazyFrame
    """The plan of the classified connection rows (the record columns plus class, via,
    resource, ..., ``allowed`` and ``findings``): streamed by the report folder."""
    addresses: pl.DataFrame
    """One row per source address (and class): class, resource, allowlist verdict,
    first/last seen, counts, users."""
    findings: list[Finding]
    """Incidents, worst first, ids ``F1``..."""
    evidence: list[EvidenceFile]
    predictions: list[Prediction]
    inventory: Inventory
    allowlist: Allowlist | None = None
    clock_offset: dt.timedelta | None = None
    """Logs' clock minus the capture's, estimated from matched pairs (None: no pairs)."""
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    top: int = TOP_N
    """Source addresses listed per incident (``--top``)."""
    n_connections: int = 0
    """Connections behind the report (after the filters)."""
    _connections: pl.DataFrame | None = None

    @property
    def connections(self) -> pl.DataFrame:
        """Every connection row, in memory, by time (computed once; the folder streams ``rows``)."""
        if self._connections is None:
            self._connections = self.rows.collect().sort("ts", "src_ip", "conn_id", nulls_last=True)
        return self._connections


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
    log_type: str = "auto",
    strict: bool = False,
    top: int = TOP_N,
    progress: Progress | None = None,
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
        log_type, strict: as for ``load_evidence`` (``--type``, ``--strict``).
        top: source addresses listed per incident (``--top``).
        progress: told what is under way (the CLI shows it on a terminal).

    Raises:
        InputError, InventoryError, UsageError: bad input, one line naming where.
    """
    say = progress or (lambda _text: None)
    say("loading the inventory")
    inv = load(inventory)
    predictions = predict(inv)
    allow = resolve_allowlist(inv, allowlist)
    say("reading the evidence")
    ev = _scan_records(evidence) or load_evidence(
        evidence, observer=observer, year=year, tz=tz, log_type=log_type, exclude=inventory, strict=strict
    )
    size = sum(f.size for f in ev.files)
    say(f"read {size / 1e6:,.1f} MB of evidence: {sum(f.records for f in ev.files):,} records; correlating")
    merged = correlate(ev.records)
    return analyze_records(
        merged.records, inv, predictions, allowlist=allow, since=since, until=until, vm=vm, src=src,
        attributions=_attributions(from_vm or {}, ev.files), top=top, evidence=ev.files,
        notes=list(inv.warnings) + ev.notes, errors=ev.errors, clock_offset=merged.clock_offset,
        progress=progress,
    )  # fmt: skip


def analyze_records(
    records: pl.LazyFrame | pl.DataFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    allowlist: Allowlist | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    vm: str | None = None,
    src: str | None = None,
    attributions: Mapping[str, str] | None = None,
    top: int = TOP_N,
    index: AddressIndex | None = None,
    evidence: Sequence[EvidenceFile] = (),
    notes: Sequence[str] = (),
    errors: Sequence[str] = (),
    clock_offset: dt.timedelta | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Everything after the evidence is read: filter, classify, roll up incidents.

    ``records`` is scanned a few times (own addresses, distinct sources, the incidents'
    group-bys); the per-connection rows stay a lazy plan (``Analysis.rows``) that the
    report folder streams, so memory follows the distinct-address tables, not the number
    of connections.

    Args:
        records: Connection records in ``capture.schema.SCHEMA`` (already correlated:
            ``analyze.correlate.correlate``), lazy or in memory.
        inv: The inventory; ``predictions`` its ``predict(inv)``.
        allowlist: What the destination accepts (no ``allowlist_miss`` without one).
        since, until: keep connections in ``[since, until)`` (pushed down to the records).
        vm: keep connections whose candidate VMs include this one (after classifying).
        src: keep connections from this address or CIDR (pushed down to the records).
        attributions: evidence file (as in ``origin``) -> the VM it comes from (``--from``).
        top: source addresses listed per incident.
        index: a prebuilt ``AddressIndex`` for ``inv`` and ``predictions``.
        evidence, notes, errors, clock_offset: carried into the ``Analysis``.
        progress: told what is under way.

    Raises:
        UsageError: ``src`` is not an address or CIDR.
    """
    index = index or AddressIndex.build(inv, predictions)  # once, for both steps
    classified, addresses = classify_records(
        records, inv, predictions, allowlist=allowlist, since=since, until=until, vm=vm, src=src,
        index=index, progress=progress,
    )  # fmt: skip
    return roll_up(
        classified, addresses, inv, predictions, allowlist=allowlist, attributions=attributions, top=top,
        index=index, evidence=evidence, notes=notes, errors=errors, clock_offset=clock_offset, progress=progress,
    )  # fmt: skip


def classify_records(
    records: pl.LazyFrame | pl.DataFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    allowlist: Allowlist | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    vm: str | None = None,
    src: str | None = None,
    index: AddressIndex | None = None,
    progress: Progress | None = None,
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """Correlated records -> (the plan of the classified rows, the distinct addresses' table),
    with the filters pushed down (``--vm`` after classifying). Arguments as for
    ``analyze_records``."""
    say = progress or (lambda _text: None)
    lf = records.lazy()
    if since is not None:
        lf = lf.filter(pl.col("ts") >= since)
    if until is not None:
        lf = lf.filter(pl.col("ts") < until)
    if src is not None:
        lf = _src_filter(lf, src)
    index = index or AddressIndex.build(inv, predictions)
    own = own_addresses(lf).collect()
    distinct = lf.select(pl.col("src_ip").fill_null("").alias("ip")).unique()
    addresses = address_table(distinct, index, allowlist).collect()
    say(f"classified {addresses.height:,} distinct source addresses; rolling up incidents")
    classified = classify(lf, inv, predictions, index=index, addresses=addresses, own=own)
    if vm is not None:
        classified = classified.filter(pl.col("candidate_vms").list.contains(pl.lit(vm)))
    return classified, addresses


def roll_up(
    classified: pl.LazyFrame,
    addresses: pl.DataFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    allowlist: Allowlist | None = None,
    attributions: Mapping[str, str] | None = None,
    top: int = TOP_N,
    index: AddressIndex | None = None,
    evidence: Sequence[EvidenceFile] = (),
    notes: Sequence[str] = (),
    errors: Sequence[str] = (),
    clock_offset: dt.timedelta | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Classified rows and their addresses' table -> incidents and the ``Analysis``."""
    say = progress or (lambda _text: None)
    index = index or AddressIndex.build(inv, predictions)
    found = incidents(classified, inv, predictions, allowlist=allowlist, attributions=attributions,
                      index=index, top=top, address_info=addresses)  # fmt: skip
    n = int(found.addresses.get_column("connections").sum() or 0)
    say(f"{n:,} connections, {found.addresses.height:,} addresses, {len(found.findings)} incidents")
    return Analysis(
        rows=found.tag(classified),
        addresses=found.addresses,
        findings=found.findings,
        evidence=list(evidence),
        predictions=list(predictions),
        inventory=inv,
        allowlist=allowlist,
        clock_offset=clock_offset,
        notes=list(notes),
        errors=list(errors),
        top=top,
        n_connections=n,
    )


# --- the store engines (analyze.fleet): one partition at a time, then one roll-up ----------


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
    index: AddressIndex | None = None,
) -> tuple[pl.DataFrame, Correlation]:
    """Correlate and classify one partition of evidence (one observer's): what
    ``analyze.fleet`` maps over partitions, locally or on Ray."""
    merged = correlate(records)
    classified, _ = classify_records(
        merged.records, inv, predictions, allowlist=allow, since=since, until=until, vm=vm, src=src, index=index
    )
    return classified.collect(), merged


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
    top: int = TOP_N,
    index: AddressIndex | None = None,
) -> Analysis:
    """The partitions' classified rows together -> incidents and the ``Analysis``."""
    index = index or AddressIndex.build(inv, predictions)
    distinct = rows.lazy().select(pl.col("src_ip").fill_null("").alias("ip")).unique()
    addresses = address_table(distinct, index, allow).collect()
    return roll_up(
        rows.lazy(), addresses, inv, predictions, allowlist=allow, attributions=attributions, top=top,
        index=index, evidence=evidence, notes=notes, errors=errors, clock_offset=clock_offset,
    )  # fmt: skip


def _src_filter(lf: pl.LazyFrame, spec: str) -> pl.LazyFrame:
    """Rows whose ``src_ip`` is ``spec`` (an address, or inside a CIDR), on parsed integer keys.

    Raises:
        UsageError: ``spec`` is not an address or CIDR.
    """
    import ipaddress

    try:
        net = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        raise UsageError(f"--src {spec!r}: not an address or CIDR") from None
    first, last = int(net.network_address), int(net.broadcast_address)
    c = pl.col
    if net.version == 4:
        inside = (c("ip_version") == 4) & c("k4").is_between(first, last)
    else:
        s_hi, s_lo, e_hi, e_lo = first >> 64, first & (2**64 - 1), last >> 64, last & (2**64 - 1)
        hi, lo = c("hi"), c("lo")
        inside = (
            (c("ip_version") == 6)
            & ((hi > s_hi) | ((hi == s_hi) & (lo >= s_lo)))
            & ((hi < e_hi) | ((hi == e_hi) & (lo <= e_lo)))
        )
    names = lf.collect_schema().names()
    return parse_addresses(lf, "src_ip").filter(inside.fill_null(False)).select(names)


def _scan_records(paths: Sequence[str]) -> Evidence | None:
    """Evidence that is only records files (``*.parquet``), as one lazy scan; else None.

    Nothing is read into memory: each file's count and time range come from a scan, and
    the rows stay a plan that every later step streams.  A whole records folder keeps the
    latest row of each ``conn_id`` (a live capture re-writes long connections), as
    ``load_evidence`` does; files named one by one are taken as they are.

    Raises:
        InputError: a file that is not in the record schema.
    """
    from analyze.evidence import expand, sha256_of
    from capture.records import scan_records_file
    from capture.schema import SCHEMA

    files = expand(paths)
    if not files or any(p.suffix != ".parquet" for p in files):
        return None
    out = Evidence(records=SCHEMA.to_frame())
    scans = []
    for seq, path in enumerate(files):
        scan = scan_records_file(path)
        n, first, last = scan.select(pl.len(), pl.col("ts").min().alias("_first"), pl.col("ts").max().alias("_last")).collect().row(0)
        out.files.append(EvidenceFile(
            path=str(path), kind="records", log_type=None, sha256=sha256_of(path), size=path.stat().st_size,
            first_ts=first, last_ts=last, records=n, skipped=0, rejects=0,
        ))  # fmt: skip
        scans.append((path, seq, scan))
    whole = {
        p.parent for p, _, _ in scans
        if len([q for q in p.parent.glob("*.parquet") if not q.name.startswith(".")])
        == len([q for q, _, _ in scans if q.parent == p.parent])
    }  # fmt: skip
    plain = [scan for p, _, scan in scans if p.parent not in whole]
    for folder in sorted(whole):
        tagged = pl.concat([
            scan.with_columns(pl.lit(seq, pl.UInt64).alias("_seq"), pl.int_range(pl.len(), dtype=pl.UInt64).alias("_row"))
            for p, seq, scan in sorted(scans, key=lambda t: t[0].name) if p.parent == folder
        ])  # fmt: skip
        order = pl.col("_seq") * (1 << 40) + pl.col("_row")
        # The latest row's key per conn_id first (small without repeated ids), then one
        # pass over the rows: a plan using `tagged` twice would cache it in memory.
        latest = tagged.filter(pl.col("conn_id").is_not_null()).group_by("conn_id").agg(order.max().alias("_kmax"))
        latest_keys = latest.collect()
        if latest_keys.height == 0:
            plain.append(tagged.select(SCHEMA.names()))
            continue
        plain.append(
            tagged.join(latest_keys.lazy(), on="conn_id", how="left")
            .filter(pl.col("conn_id").is_null() | (order == pl.col("_kmax")))
            .select(SCHEMA.names())
        )
    out.records = pl.concat(plain, how="vertical")  # type: ignore[assignment]
    return out


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
