"""Findings: what is wrong with what was observed, and what to change (issue 5, item 3).

Five kinds, from classified records (``analyze.classify.classify``):

* ``allowlist_miss``: connections from addresses the allowlist does not accept, with the
  candidate VMs' predicted reason and fixes (the article's case: pool membership without
  rules gives default SNAT, which no allowlist can hold);
* ``unexpected_egress``: the observed class or address differs from the prediction of
  every candidate VM: an inventory address no VM is predicted to use, or evidence
  attributed to a VM arriving from somewhere its prediction does not give;
* ``egress_ip_changed``: the default SNAT address of one VM changed over time (evidence
  attributed to it with ``--from VM``, or the only VM predicted to use default SNAT);
* ``snat_pressure``: concurrent connections from one SNAT address to one destination
  ip:port reaching ``PRESSURE_FRACTION`` of the ports preallocated for it, or a source
  port reused to the same destination within the release hold time (docs/azure-egress.md
  §2.4: load balancer 240 s after FIN / 15 s after RST; NAT gateway 65 s / 16 s);
* ``auth_failures``: SSH authentication failures per source address and class; flagged
  as password guessing at ``GUESS_FAILURES`` within ``GUESS_WINDOW`` (Zeek's defaults).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final, Literal, get_args

import polars as pl

from analyze.classify import AddressIndex, classify_addresses
from analyze.inventory.model import Allowlist, Inventory
from analyze.predict import Prediction, default_snat_ports

Kind = Literal["allowlist_miss", "unexpected_egress", "egress_ip_changed", "snat_pressure", "auth_failures"]
"""What a finding is about."""

Severity = Literal["info", "low", "medium", "high", "critical"]
"""How bad, in increasing order (``SEVERITIES``); ``--fail-on`` compares with ``at_least``."""

KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)

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

_FAILED: Final = ("failed", "invalid_user", "max_attempts")
_FIXED: Final = ("lb_frontend", "instance_public_ip", "nat_gateway", "firewall")
_MAX_EVIDENCE: Final = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem, with the evidence for it and what to change."""

    kind: Kind
    """What it is about."""
    severity: Severity
    """How bad."""
    vms: tuple[str, ...]
    """VMs concerned (candidates or the attributed VM); may be empty for foreign addresses."""
    src_ips: tuple[str, ...]
    """Observed source addresses concerned."""
    message: str
    """One or two sentences naming addresses, classes, resources and the predicted reason."""
    fixes: tuple[str, ...] = ()
    """Concrete changes."""
    first_ts: dt.datetime | None = None
    """First connection of the evidence."""
    last_ts: dt.datetime | None = None
    """Last connection of the evidence."""
    count: int = 0
    """Connections (or events: port reuses, failures) behind the finding."""
    destination: str | None = None
    """``ip:port`` for SNAT findings."""
    evidence: tuple[str, ...] = ()
    """Up to five ``origin`` entries to look at."""

    def at_least(self, severity: Severity) -> bool:
        """Whether this finding is as bad as ``severity`` or worse."""
        return SEVERITIES.index(self.severity) >= SEVERITIES.index(severity)


def _addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as classify read it: stripped, no ``%zone``, IPv4-mapped IPv6 as IPv4."""
    ip = ipaddress.ip_address(text.strip().split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _span(df: pl.DataFrame) -> dict[str, object]:
    """first/last ts, count and evidence of a group of rows."""
    origins = df.get_column("origin").explode().drop_nulls().head(_MAX_EVIDENCE).to_list()
    return {
        "first_ts": df.get_column("ts").min(),
        "last_ts": df.get_column("ts").max(),
        "count": df.height,
        "evidence": tuple(origins),
    }


def _by_vm(predictions: Sequence[Prediction]) -> dict[str, list[Prediction]]:
    out: dict[str, list[Prediction]] = defaultdict(list)
    for p in predictions:
        out[p.vm or p.nic].append(p)
    return out


def _ts(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, dt.datetime) else "?"


def _what(row: Mapping[str, object]) -> str:
    """``139.217.1.1 (default_snat, AzureCloud.chinanorth2)``."""
    bits = [str(row["class"])]
    if row.get("via"):
        bits[0] += f" via {row['via']}"
    if row.get("resource"):
        bits.append(str(row["resource"]))
    if row.get("service_tag"):
        bits.append(str(row["service_tag"]))
    return f"{row['src_ip']} ({', '.join(bits)})"


def _reasons(vms: Sequence[str], preds: Mapping[str, list[Prediction]]) -> tuple[str, tuple[str, ...]]:
    """The predicted reasons and fixes of ``vms``, deduplicated."""
    reasons, fixes = [], []
    for vm in vms:
        for p in preds.get(vm, []):
            reasons.append(p.reason)
            fixes.extend(p.fixes)
    return " ".join(dict.fromkeys(reasons)), tuple(dict.fromkeys(fixes))


def _attributed(df: pl.DataFrame, attributions: Mapping[str, str]) -> pl.Series:
    """The VM each row is attributed to by its origin's file (path or file name), else null."""
    keys = {str(k): v for k, v in attributions.items()}
    keys |= {PurePath(k).name: v for k, v in attributions.items() if PurePath(k).name not in keys}
    files = (
        df.select(pl.int_range(pl.len()).alias("_i"), "origin")
        .explode("origin")
        .with_columns(pl.col("origin").str.replace(r"(?::[0-9]+|#[0-9]+)$", "").alias("file"))
        .with_columns(
            pl.col("file").replace_strict(keys, default=None, return_dtype=pl.String()).alias("vm"),
            pl.col("file").str.replace(r"^.*/", "").replace_strict(keys, default=None, return_dtype=pl.String())
            .alias("vm_by_name"),
        )  # fmt: skip
        .group_by("_i")
        .agg(pl.coalesce("vm", "vm_by_name").drop_nulls().first())
    )
    return (
        pl.DataFrame({"_i": pl.int_range(df.height, eager=True)})
        .join(files, on="_i", how="left", maintain_order="left")
        .get_column("vm")
    )


def find(
    classified: pl.DataFrame | pl.LazyFrame,
    inv: Inventory,
    predictions: Sequence[Prediction],
    *,
    allowlist: Allowlist | None = None,
    attributions: Mapping[str, str] | None = None,
    index: AddressIndex | None = None,
) -> list[Finding]:
    """Every finding of the five kinds, worst first.

    Args:
        classified: Records in ``analyze.classify.CLASSIFIED_SCHEMA``.
        inv: The inventory they were classified with.
        predictions: Its predictions.
        allowlist: What the destination accepts; no ``allowlist_miss`` without one.
        attributions: Evidence file (path as in ``origin``, or its file name) -> VM that
            produced it (``--from VM``).
        index: The ``AddressIndex`` used for classifying, to reuse.

    Returns:
        Findings sorted by severity (worst first), kind, then first time seen.
    """
    df = classified.lazy().collect()
    preds = _by_vm(predictions)
    index = index or AddressIndex.build(inv, predictions)
    vm_of = (
        _attributed(df, attributions) if attributions else pl.Series("vm", [None] * df.height, dtype=pl.String())
    )
    df = df.with_columns(vm_of.alias("_vm"))
    out: list[Finding] = []
    if allowlist is not None:
        out += _allowlist_misses(df, inv, preds, allowlist, index)
    out += _unexpected(df, inv, preds, index)
    out += _ip_changes(df, preds, index)
    out += _snat_pressure(df, predictions)
    out += _auth_failures(df)
    return sorted(
        out,
        key=lambda f: (
            -SEVERITIES.index(f.severity), KINDS.index(f.kind),
            f.first_ts or dt.datetime.max.replace(tzinfo=dt.UTC), f.src_ips,
        ),
    )  # fmt: skip


# --- allowlist_miss ----------------------------------------------------------------------------


def _allowlist_misses(
    df: pl.DataFrame, inv: Inventory, preds: Mapping[str, list[Prediction]], allowlist: Allowlist,
    index: AddressIndex,
) -> list[Finding]:  # fmt: skip
    seen = df.filter(pl.col("src_ip").is_not_null() & pl.col("ip_version").is_not_null())
    if seen.height == 0:
        return []
    tags = classify_addresses(seen.get_column("src_ip").unique(), inv, [], index=index)
    loaded = index.has_tags
    refused = []
    for ip, chain in tags.select("ip", "service_tags").iter_rows():
        if allowlist.allows(str(_addr(ip)), frozenset(t.lower() for t in chain) if loaded else None) is False:
            refused.append(ip)
    out = []
    for (ip,), rows in seen.filter(pl.col("src_ip").is_in(refused)).group_by("src_ip"):
        row = rows.row(0, named=True)
        vms = tuple(sorted(set(rows.get_column("candidate_vms").explode().drop_nulls().to_list())))
        reason, fixes = _reasons(vms, preds)
        cls = row["class"]
        if cls == "default_snat":
            fixes = (*fixes, f"do not add {ip} to {allowlist.name}: a default SNAT address is not "
                             "yours and changes when the VM is redeployed")  # fmt: skip
        elif cls in _FIXED or vms:
            fixes = (*fixes, f"or add {ip} to allowlist {allowlist.name}")
        severity: Severity = "high" if vms else ("medium" if cls in _FIXED else "low")
        services = ", ".join(sorted(str(s) for s in rows.get_column("service").drop_nulls().unique()))
        span = _span(rows)
        message = (
            f"{_what(row)} is not accepted by allowlist {allowlist.name}: {rows.height} connection(s)"
            + (f" ({services})" if services else "")
            + f" from {_ts(span['first_ts'])} to {_ts(span['last_ts'])}."
            + (f" Candidate VMs: {', '.join(vms)}. Predicted: {reason}" if vms else "")
        )
        out.append(Finding(kind="allowlist_miss", severity=severity, vms=vms, src_ips=(ip,),
                           message=message, fixes=fixes, **span))  # type: ignore[arg-type]  # fmt: skip
    return out


# --- unexpected_egress -------------------------------------------------------------------------


def _predicted_ips(ps: Sequence[Prediction]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(ip, strict=False) for p in ps for ip in p.expected_ips]


def _unexpected(
    df: pl.DataFrame, inv: Inventory, preds: Mapping[str, list[Prediction]], index: AddressIndex
) -> list[Finding]:
    out = []
    # 1. An inventory egress address that no VM is predicted to use (stale inventory or a
    #    gap in the model), or an inventory address that is no egress path at all.
    held = df.filter(
        (pl.col("class").is_in(_FIXED) & (pl.col("candidate_vms").list.len() == 0))
        | ((pl.col("class") == "unknown") & pl.col("resource").is_not_null() & pl.col("proxy").is_null())
    )
    owner_of = dict(
        classify_addresses(held.get_column("src_ip").unique(), inv, [], index=index)
        .select("ip", "owner_vms").iter_rows()
    ) if held.height else {}  # fmt: skip
    for (ip,), rows in held.group_by("src_ip"):
        row = rows.row(0, named=True)
        owners = tuple(owner_of.get(ip) or ())
        said = "; ".join(
            f"{vm} is predicted {p.egress_class}" + (f" ({', '.join(p.expected_ips)})" if p.expected_ips else "")
            for vm in owners for p in preds.get(vm, [])
        )  # fmt: skip
        reason, fixes = _reasons(owners, preds)
        what = "no VM is predicted to egress from it" if row["class"] != "unknown" else "it is no VM egress path"
        message = (
            f"{_what(row)} is held by the inventory, but {what}"
            + (f": {said}." if said else ".")
            + " The inventory is stale, or the model misses a path."
        )
        out.append(Finding(
            kind="unexpected_egress", severity="medium", vms=owners, src_ips=(ip,), message=message,
            fixes=(*fixes, "reload the inventory (az ... list) and compare"), **_span(rows),  # type: ignore[arg-type]
        ))  # fmt: skip
    # 2. A VM's own private address, where its predictions for a destination (predict
    #    --destination) say the path is not private.  Internet-bound predictions say
    #    nothing about private paths, so they are not compared.
    private = df.filter((pl.col("class") == "private") & (pl.col("candidate_vms").list.len() > 0))
    for (ip,), rows in private.group_by("src_ip"):
        row = rows.row(0, named=True)
        vms = tuple(row["candidate_vms"])
        ps = [p for vm in vms for p in preds.get(vm, []) if p.destination is not None]
        if not ps or any(p.egress_class == "private" for p in ps):
            continue
        reason, fixes = _reasons(vms, preds)
        out.append(Finding(
            kind="unexpected_egress", severity="medium", vms=vms, src_ips=(ip,),
            message=f"{_what(row)} arrives on its private address, but the path to "
                    f"{ps[0].destination} is predicted {ps[0].egress_class}: {reason}",
            fixes=(*fixes, "check peerings, private endpoints and routes this inventory does not show"),
            **_span(rows),  # type: ignore[arg-type]
        ))  # fmt: skip
    # 3. Evidence attributed to a VM, from an address its prediction does not give.
    for (vm,), rows in df.filter(pl.col("_vm").is_not_null()).group_by("_vm"):
        ps = preds.get(vm, [])
        classes = {p.egress_class for p in ps}
        nets = _predicted_ips(ps)
        bad = []
        for (ip,), sub in rows.group_by("src_ip"):
            cls = sub.row(0, named=True)["class"]
            if cls not in classes:
                bad.append((ip, sub))
            elif cls in _FIXED and ip is not None:
                addr = _addr(ip)
                if not any(addr.version == n.version and addr in n for n in nets):
                    bad.append((ip, sub))
        for ip, sub in bad:
            row = sub.row(0, named=True)
            reason, fixes = _reasons([vm], preds)
            message = (
                f"Evidence from {vm} arrives from {_what(row)}, but {vm} is predicted "
                + ", ".join(sorted(f"{p.egress_class}" + (f" ({', '.join(p.expected_ips)})" if p.expected_ips else "")
                                   for p in ps)) + f". Predicted: {reason}"
            )  # fmt: skip
            out.append(Finding(
                kind="unexpected_egress", severity="high", vms=(vm,), src_ips=(str(ip),), message=message,
                fixes=(*fixes, "check the inventory for changes this model does not know"), **_span(sub),  # type: ignore[arg-type]
            ))  # fmt: skip
    return out


# --- egress_ip_changed -------------------------------------------------------------------------


def _ip_changes(df: pl.DataFrame, preds: Mapping[str, list[Prediction]], index: AddressIndex) -> list[Finding]:
    only = index.default_snat_vms[0] if len(index.default_snat_vms) == 1 else None
    vm = pl.col("_vm")
    if only is not None:
        vm = pl.coalesce(vm, pl.when(pl.col("candidate_vms").list.contains(pl.lit(only))).then(pl.lit(only)))
    rows = df.filter(pl.col("class") == "default_snat").with_columns(vm.alias("_who")).filter(
        pl.col("_who").is_not_null()
    )
    out = []
    for (who,), sub in rows.group_by("_who"):
        spans = (
            sub.group_by("src_ip")
            .agg(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"), pl.len().alias("n"))
            .sort("first")
        )
        if spans.height < 2:
            continue
        story = " -> ".join(
            f"{ip} ({_ts(first)} to {_ts(last)}, {n} connection(s))" for ip, first, last, n in spans.iter_rows()
        )
        _, fixes = _reasons([who], preds)
        out.append(Finding(
            kind="egress_ip_changed", severity="medium", vms=(who,),
            src_ips=tuple(spans.get_column("src_ip").to_list()),
            message=f"The default SNAT address of {who} changed: {story}. Default outbound addresses "
                    "are Azure's and change when the VM is stopped, redeployed or resized.",
            fixes=(*fixes, "give it an explicit egress (NAT gateway, outbound rule or public IP) and allowlist that"),
            **_span(sub),  # type: ignore[arg-type]
        ))  # fmt: skip
    return out


# --- snat_pressure -----------------------------------------------------------------------------


def _capacity(cls: str, vms: Sequence[str], preds: Mapping[str, list[Prediction]]) -> int | None:
    """SNAT ports preallocated behind one address for the VMs that share it (§2)."""
    if cls == "nat_gateway":
        return NAT_GATEWAY_PORTS
    ports = []
    for vm in vms:
        got = [p.snat_ports for p in preds.get(vm, []) if p.egress_class == cls and p.snat_ports]
        if got:
            ports.append(min(got))
        elif cls == "default_snat":
            ports.append(default_snat_ports(1) or 0)  # a standalone VM's tier (§2.1); "minimal" today
    return sum(ports) or None


def _snat_pressure(df: pl.DataFrame, predictions: Sequence[Prediction]) -> list[Finding]:
    preds = _by_vm(predictions)
    snat = df.filter(pl.col("class").is_in(list(HOLD)) & pl.col("ts").is_not_null() & pl.col("dst_port").is_not_null())
    out = []
    key = ["src_ip", "dst_ip", "dst_port"]
    # 1. concurrency: +1 at the start, -1 at the end of every connection
    conns = snat.with_columns((pl.col("ts") + pl.col("duration").fill_null(dt.timedelta(0))).alias("end"))
    events = pl.concat([
        conns.select(*key, pl.col("ts").alias("t"), pl.lit(1, pl.Int64).alias("d")),
        conns.select(*key, pl.col("end").alias("t"), pl.lit(-1, pl.Int64).alias("d")),
    ])  # fmt: skip
    peaks = (
        events.sort(*key, "t", "d")  # an end at the same instant as a start frees the port first
        .with_columns(pl.col("d").cum_sum().over(key).alias("open"))
        .group_by(key)
        .agg(pl.col("open").max().alias("peak"), pl.col("t").sort_by("open").last().alias("at"))
    )
    for ip, dst_ip, dst_port, peak, at in peaks.iter_rows():
        rows = snat.filter((pl.col("src_ip") == ip) & (pl.col("dst_ip") == dst_ip) & (pl.col("dst_port") == dst_port))
        row = rows.row(0, named=True)
        vms = tuple(row["candidate_vms"] or ())
        capacity = _capacity(row["class"], vms, preds)
        if capacity is None or peak < PRESSURE_FRACTION * capacity:
            continue
        _, fixes = _reasons(vms, preds)
        out.append(Finding(
            kind="snat_pressure", severity="high", vms=vms, src_ips=(ip,), destination=f"{dst_ip}:{dst_port}",
            message=f"{peak} concurrent connections from {_what(row)} to {dst_ip}:{dst_port} at {_ts(at)}: "
                    f"{peak / capacity:.0%} of the {capacity} SNAT ports preallocated for it. New connections "
                    "to this destination fail or time out when they run out.",
            fixes=("reuse connections (keep-alive, pooling) to this destination",
                   "raise allocatedOutboundPorts on the outbound rule, add frontend IPs, or use a NAT gateway",
                   *fixes),
            **_span(rows),  # type: ignore[arg-type]
        ))  # fmt: skip
    # 2. a source port reused to the same destination before the hold time ran out
    fin = pl.col("class").replace_strict({c: h[0] for c, h in HOLD.items()}, return_dtype=pl.Duration("us"))
    rst = pl.col("class").replace_strict({c: h[1] for c, h in HOLD.items()}, return_dtype=pl.Duration("us"))
    port_key = [*key, "src_port"]
    reuse = (
        conns.filter(pl.col("src_port").is_not_null())
        .sort(*port_key, "ts")
        .with_columns(
            pl.col("end").shift().over(port_key).alias("prev_end"),
            pl.col("state").shift().over(port_key).alias("prev_state"),
        )
        .with_columns(
            pl.when(pl.col("prev_state").is_in(["reset", "rejected"])).then(rst)
            .when(pl.col("prev_state") == "closed").then(fin)
            .alias("hold")
        )  # fmt: skip
        .filter(pl.col("prev_end").is_not_null() & (pl.col("ts") - pl.col("prev_end") < pl.col("hold")))
    )
    for (ip, dst_ip, dst_port), rows in reuse.group_by(key):
        row = rows.row(0, named=True)
        vms = tuple(row["candidate_vms"] or ())
        gap = rows.select((pl.col("ts") - pl.col("prev_end")).min()).item()
        ports = rows.get_column("src_port").unique().sort().to_list()
        fin_s, rst_s = (int(h.total_seconds()) for h in HOLD[row["class"]])
        out.append(Finding(
            kind="snat_pressure", severity="medium", vms=vms, src_ips=(ip,), destination=f"{dst_ip}:{dst_port}",
            message=f"{_what(row)} reused source port(s) {', '.join(map(str, ports[:10]))} to {dst_ip}:{dst_port} "
                    f"{rows.height} time(s), as soon as {gap.total_seconds():g} s after the previous connection "
                    f"ended (a port is held {fin_s} s after FIN, {rst_s} s after RST): the SNAT port "
                    "exhaustion signature.",
            fixes=("reuse connections (keep-alive, pooling) to this destination",
                   "raise allocatedOutboundPorts or add frontend IPs / a NAT gateway"),
            **_span(rows),  # type: ignore[arg-type]
        ))  # fmt: skip
    return out


# --- auth_failures -----------------------------------------------------------------------------


def _auth_failures(df: pl.DataFrame) -> list[Finding]:
    failed = df.filter(pl.col("ssh_auth").is_in(_FAILED) & pl.col("src_ip").is_not_null()).sort("ts")
    if failed.height == 0:
        return []
    peaks = (
        failed.rolling("ts", period=f"{int(GUESS_WINDOW.total_seconds())}s", group_by="src_ip")
        .agg(pl.len().alias("n"))
        .group_by("src_ip")
        .agg(pl.col("n").max().alias("peak"))
    )
    peak_of = dict(peaks.iter_rows())
    out = []
    for (ip,), rows in failed.group_by("src_ip"):
        row = rows.row(0, named=True)
        vms = tuple(sorted(set(rows.get_column("candidate_vms").explode().drop_nulls().to_list())))
        users = sorted(set(rows.get_column("ssh_user").drop_nulls().to_list()))
        guessing = peak_of[ip] >= GUESS_FAILURES
        minutes = int(GUESS_WINDOW.total_seconds() // 60)
        severity: Severity = "high" if guessing else ("low" if vms else "info")
        message = (
            f"{rows.height} failed SSH authentication(s) from {_what(row)}"
            + (f" as {', '.join(users[:10])}" + (" ..." if len(users) > 10 else "") if users else "")
            + (f": password guessing ({peak_of[ip]} failures within {minutes} minutes)." if guessing else ".")
            + (f" It is the egress address of {', '.join(vms)}." if vms else "")
        )
        fixes = (
            ("block the address (NSG, fail2ban) and allow SSH keys only",)
            if guessing and not vms
            else (f"check the SSH key / user configured on {', '.join(vms)}",) if vms else ()
        )
        out.append(Finding(kind="auth_failures", severity=severity, vms=vms, src_ips=(ip,), message=message,
                           fixes=fixes, **_span(rows)))  # type: ignore[arg-type]  # fmt: skip
    return out


__all__ = [
    "GUESS_FAILURES",
    "GUESS_WINDOW",
    "HOLD",
    "KINDS",
    "NAT_GATEWAY_PORTS",
    "PRESSURE_FRACTION",
    "SEVERITIES",
    "Finding",
    "Kind",
    "Severity",
    "find",
]
