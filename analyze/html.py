"""The HTML report: one self-contained page that tells an analysis' story in one picture.

The verdict comes first (who leaves from which address, which allowlist refuses it, the first
fix), then the egress paths per VM as a diagram laid out by Graphviz ``dot``, a timeline of
connections per class with the incidents on it, the incidents with their fixes, one card
per VM, and the top rows of the address and connection tables (the full tables are the
report folder's Parquet files, so the page stays small at any volume).

Everything shown comes from the input (VM and resource names, user names, paths) and is
escaped; the page carries no script, a strict Content-Security-Policy, and fetches nothing
when viewed.  Every step that grows with the input is a polars expression; the Python loops
below run over bounded things (time bins, the top rows, the nodes drawn).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from capture.output import escape_control

if TYPE_CHECKING:
    from analyze.pipeline import Analysis
    from analyze.predict import Prediction

__all__ = ["CLASS_COLORS", "TOP_N", "Timeline", "incident", "render_html", "timeline"]

TOP_N: Final = 100
"""Rows of the address and connection tables inlined in the page."""
DIAGRAM_ADDRESSES: Final = 40
"""Addresses drawn as their own node at most; the others are summarized per class."""
DIAGRAM_VMS: Final = 30
"""VMs drawn at most (those with the most connections)."""
VM_CARDS: Final = 50
"""VM cards shown at most (VMs with connections first)."""
MARKERS: Final = 6
"""Incidents marked on the timeline at most (the worst)."""
BINS: Final = 60
"""About this many time bins in the timeline."""
FULL_TABLES: Final = "connections.parquet and addresses.parquet"
"""Where the complete tables are: the report folder (``-o DIR/``) of ``analyze``."""

CLASS_COLORS: Final = {
    "lb_frontend": "#1f77b4", "instance_public_ip": "#2ca02c", "nat_gateway": "#9467bd",
    "firewall": "#8c564b", "default_snat": "#d62728", "private": "#7f7f7f",
    "forced_tunnel": "#e377c2", "none": "#bcbd22", "local": "#c7a600", "external": "#17becf",
    "unknown": "#aaaaaa",
}  # fmt: skip
CLASS_LABELS: Final = {
    "lb_frontend": "load balancer frontend", "instance_public_ip": "instance public IP",
    "nat_gateway": "NAT gateway address", "firewall": "firewall address",
    "default_snat": "default SNAT address", "private": "private address",
    "forced_tunnel": "forced tunnel", "none": "no egress", "local": "local address",
    "external": "external address", "unknown": "unknown address",
}  # fmt: skip
SEVERITY_COLORS: Final = {
    "critical": "#6a0000", "high": "#c62828", "medium": "#e65100", "low": "#9e7c00", "info": "#546e7a",
}  # fmt: skip
_HELD: Final = ("lb_frontend", "instance_public_ip", "nat_gateway", "firewall", "private")
"""Classes of addresses the inventory holds (each drawn as its own node)."""
_NICE_STEPS: Final = tuple(
    dt.timedelta(seconds=s)
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
              86400, 172800, 604800, 1209600, 2592000, 7776000, 31536000)
)  # fmt: skip


def _e(value: Any) -> str:
    """Text for HTML: control characters made visible, then markup escaped."""
    return html.escape(escape_control("" if value is None else str(value)))


def _label(cls: str | None) -> str:
    return CLASS_LABELS.get(cls or "", cls or "?")


def _addresses(cls: str | None, n: int) -> str:
    """``157 external addresses``, ``1 load balancer frontend address``."""
    base = _label(cls)
    base += "" if base.endswith("address") else " address"
    return f"{n:,} {base}{'' if n == 1 else 'es'}"


def _ts(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime(fmt)
    return "" if value is None else str(value)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


# --- incidents ------------------------------------------------------------------------------


def incident(f: Any, number: int) -> dict[str, Any]:
    """A finding or incident of either shape as a dict with the incident keys.

    Args:
        f: a ``Finding`` (dataclass), an incident, or a mapping.
        number: its 1-based place, for the id when it has none (``F1``, ``F2``, ...).

    Returns:
        ``id``, ``kind``, ``severity``, ``vms``, ``src_ips``, ``address_count``, ``count``,
        ``first_ts``, ``last_ts``, ``message``, ``fixes``, ``evidence``, ``class``, ``via``,
        ``resource``, ``allowlist``, ``services``, ``destination`` (missing ones as fallbacks).
    """
    if isinstance(f, Mapping):
        raw = dict(f)
    elif dataclasses.is_dataclass(f) and not isinstance(f, type):
        raw = {x.name: getattr(f, x.name) for x in dataclasses.fields(f)}
    else:
        raw = dict(vars(f))
    src_ips = [str(x) for x in raw.get("src_ips") or ()]
    return {
        "id": str(raw.get("id") or f"F{number}"),
        "kind": str(raw.get("kind") or "finding"),
        "severity": str(raw.get("severity") or "info"),
        "vms": [str(x) for x in raw.get("vms") or ()],
        "src_ips": src_ips,
        "address_count": int(raw.get("address_count") or len(src_ips)),
        "count": int(raw.get("count") or 0),
        "first_ts": raw.get("first_ts"),
        "last_ts": raw.get("last_ts"),
        "message": str(raw.get("message") or ""),
        "fixes": [str(x) for x in raw.get("fixes") or ()],
        "evidence": [str(x) for x in raw.get("evidence") or ()],
        "class": raw.get("class") or raw.get("class_") or raw.get("egress_class"),
        "via": raw.get("via"),
        "resource": raw.get("resource"),
        "allowlist": raw.get("allowlist"),
        "services": [str(x) for x in raw.get("services") or ()],
        "destination": raw.get("destination"),
    }


def _incidents(a: Analysis, addresses: pl.DataFrame) -> list[dict[str, Any]]:
    """The first ``TOP_N`` findings (worst first) as incident dicts, class and resource filled
    from the addresses."""
    out = [incident(f, i) for i, f in enumerate(a.findings[:TOP_N], 1)]
    firsts = {ip for d in out if d["class"] is None and d["src_ips"] for ip in d["src_ips"][:1]}
    known: dict[str, dict[str, Any]] = {}
    if firsts and "class" in addresses.columns:
        cols = [c for c in ("src_ip", "class", "via", "resource") if c in addresses.columns]
        known = {r["src_ip"]: r for r in addresses.filter(pl.col("src_ip").is_in(sorted(firsts))).select(cols).to_dicts()}
    allowlist = getattr(getattr(a, "allowlist", None), "name", None)
    for d in out:
        row = known.get(d["src_ips"][0]) if d["src_ips"] else None
        if d["class"] is None and row:
            d["class"], d["via"] = row.get("class"), d["via"] or row.get("via")
            d["resource"] = d["resource"] or row.get("resource")
        if d["allowlist"] is None and d["kind"] == "allowlist_miss":
            d["allowlist"] = allowlist
    return out


# --- the verdict ----------------------------------------------------------------------------


def _names(items: Sequence[str], total: int | None = None, limit: int = 3) -> str:
    shown = [f"<b>{_e(x)}</b>" for x in items[:limit]]
    more = max((total if total is not None else len(items)) - len(shown), 0)
    if more:
        shown.append(f"{more:,} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _sentence(d: Mapping[str, Any]) -> str:
    vms, cls = d["vms"], d["class"]
    addrs = _names(d["src_ips"], d["address_count"])
    what = _e(_label(cls)) + ("es" if d["address_count"] > 1 and _label(cls).endswith("address") else "")
    res = f" ({_e(d['resource'])})" if d.get("resource") else ""
    who = _names(vms) if vms else None
    verb = "leave" if len(vms) > 1 else "leaves"
    if d["kind"] == "allowlist_miss":
        allow = f"allowlist <b>{_e(d['allowlist'])}</b>" if d.get("allowlist") else "the allowlist"
        if who:
            return f"{who} {verb} from {what} {addrs}{res}, which {allow} does not accept."
        return f"{what.capitalize()} {addrs}{res} {'are' if d['address_count'] > 1 else 'is'} not accepted by {allow}."
    if d["kind"] == "unexpected_egress":
        subject = who or "Connections"
        return f"{subject} also arrived from {what} {addrs}{res}, which the inventory does not predict."
    if d["kind"] == "egress_ip_changed":
        return f"The default SNAT address of {who or 'a VM'} changed: {addrs}."
    if d["kind"] == "snat_pressure":
        dest = f" to {_e(d['destination'])}" if d.get("destination") else ""
        return f"SNAT ports run short on {addrs}{dest}{' for ' + who if who else ''}."
    if d["kind"] == "auth_failures":
        return (f"{_e(_addresses(cls, d['address_count']))} failed SSH authentication {d['count']:,} "
                f"{'time' if d['count'] == 1 else 'times'}, for example {addrs}.")  # fmt: skip
    first = d["message"].split(". ")[0].rstrip(".")
    return f"{_e(first)}."


def _verdict(incidents: Sequence[Mapping[str, Any]], total: int) -> str:
    if not incidents:
        return ('<section id="verdict" class="verdict ok"><p>Every connection matches the inventory\'s '
                "predictions and the allowlist: nothing to fix.</p></section>")  # fmt: skip
    worst = incidents[0]["severity"]
    # Incidents that read the same (kind, class, resource, allowlist, VMs) make one sentence.
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for d in incidents:
        key = (d["kind"], d["class"], d["resource"], d["allowlist"], tuple(d["vms"]))
        if key in groups:
            g = groups[key]
            g["src_ips"] = g["src_ips"] + d["src_ips"]
            g["address_count"] += d["address_count"]
            g["count"] += d["count"]
            g["merged"] += 1
        elif len(groups) < 3:
            groups[key] = {**d, "merged": 1}
    top = list(groups.values())
    text = " ".join(_sentence(d) for d in top)
    fix = next((d["fixes"][0] for d in top if d["fixes"]), None)
    more = total - sum(d["merged"] for d in top)
    parts = [f'<section id="verdict" class="verdict sev-border-{_e(worst)}"><p>{text}</p>']
    if fix:
        parts.append(f'<p class="fix"><b>First fix:</b> {_e(fix)}</p>')
    if more > 0:
        parts.append(f"<p>{_plural(more, 'more incident')} below.</p>")
    parts.append("</section>")
    return "".join(parts)


def _context(a: Analysis, now: dt.datetime) -> str:
    conns = a.connections
    rows: list[tuple[str, str]] = []
    if conns.height and "observer" in conns.columns:
        obs = conns.select(pl.col("observer").drop_nulls().unique().sort()).to_series()
        rows.append(("observers", _list_text(obs.head(10).to_list(), obs.len()) or "not named"))
    files = [e.path for e in a.evidence]
    rows.append(("evidence", _list_text([f.rsplit("/", 1)[-1] for f in files[:8]], len(files)) or "none"))
    if conns.height:
        span = conns.select(pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b")).row(0)
        rows.append(("time range", f"{_e(_ts(span[0]))} to {_e(_ts(span[1]))} UTC"))
    sources = _inventory_sources(a)
    rows.append(("inventory", _list_text([s.rsplit("/", 1)[-1] for s in sources[:8]], len(sources)) or "none"))
    allow = getattr(a, "allowlist", None)
    rows.append(("allowlist", _e(allow.name) if allow is not None else "none (no allowlist verdicts)"))
    offset = getattr(a, "clock_offset", None)
    if offset is not None:
        rows.append(("clock offset", f"logs minus capture {offset.total_seconds():+.3f} s"))
    rows.append(("egresslens", _e(_version())))
    rows.append(("generated", _e(_ts(now)) + " UTC"))
    cells = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl id="context" class="context">{cells}</dl>'


def _list_text(items: Sequence[Any], total: int) -> str:
    text = ", ".join(_e(x) for x in items)
    return text + (f" and {total - len(items):,} more" if total > len(items) else "")


def _inventory_sources(a: Analysis) -> list[str]:
    inv = getattr(a, "inventory", None)
    if inv is None:
        return []
    found: set[str] = set()
    for f in dataclasses.fields(inv):
        value = getattr(inv, f.name)
        if isinstance(value, Mapping):
            # ``source`` is "file: $.json.path"; the file is what the reader wants.
            found.update(str(s).split(": ", 1)[0] for s in (getattr(x, "source", "") for x in value.values()) if s)
        elif isinstance(value, pl.DataFrame) and "source" in value.columns:
            names = value.get_column("source").cast(pl.String).drop_nulls().str.split(": ").list.first().unique()
            found.update(str(x) for x in names.to_list())
    return sorted(found)


def _version() -> str:
    try:
        return metadata.version("egresslens")
    except metadata.PackageNotFoundError:
        return "unknown"


# --- egress paths -------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Graph:
    """What the diagram draws: bounded numbers of nodes and edges, ready for ``dot``."""

    vms: list[str]
    addresses: list[dict[str, Any]]
    """Address rows drawn as their own node (src_ip, class, resource, allowed, connections...)."""
    summaries: list[dict[str, Any]]
    """Per class: addresses, connections, allowed (True/False/None) of the rest."""
    pairs: list[dict[str, Any]]
    """(vm, src_ip, connections, first_seen, last_seen) observed."""
    predictions: dict[str, list[Prediction]]


_ADDRESS_FALLBACKS: Final = {
    "class": pl.String(), "via": pl.String(), "resource": pl.String(), "service_tag": pl.String(),
    "candidate_vms": pl.List(pl.String()), "allowed": pl.Boolean(), "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"), "connections": pl.UInt32(),
}  # fmt: skip


def _normalized(addresses: pl.DataFrame) -> pl.DataFrame:
    """The addresses table with every column the diagram and the cards read (null when absent)."""
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in _ADDRESS_FALLBACKS.items() if c not in addresses.columns]
    return addresses.with_columns(missing).with_columns(
        pl.col("class").cast(pl.String), pl.col("connections").fill_null(1).cast(pl.UInt32),
        pl.col("candidate_vms").cast(pl.List(pl.String)),
    )  # fmt: skip


def _pairs(addresses: pl.DataFrame, incidents: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """(vm, src_ip) observed: the address' candidate VMs, and the VMs incidents tie to it."""
    schema = {"vm": pl.String, "src_ip": pl.String}
    parts = [addresses.select(pl.col("candidate_vms").alias("vm"), "src_ip").explode("vm").drop_nulls("vm")]
    tied = [(vm, ip) for d in incidents for vm in d["vms"][:DIAGRAM_VMS] for ip in d["src_ips"][:DIAGRAM_ADDRESSES]]
    parts.append(pl.DataFrame(tied, schema=schema, orient="row"))
    pairs = pl.concat([p.select("vm", "src_ip") for p in parts]).unique()
    return pairs.join(addresses.select("src_ip"), on="src_ip", how="semi")


def _graph(a: Analysis, addresses: pl.DataFrame, incidents: Sequence[Mapping[str, Any]]) -> _Graph:
    c = pl.col
    ad = _normalized(addresses)
    pairs = _pairs(ad, incidents)
    tied = pairs.select("src_ip").unique().with_columns(tied=pl.lit(True))
    ranked = (
        ad.join(tied, on="src_ip", how="left")
        .with_columns(own=c("tied").fill_null(False) | c("class").is_in(_HELD) | c("resource").is_not_null())
        .with_columns(drawn=c("own") & (c("connections").rank("ordinal", descending=True).over("own") <= DIAGRAM_ADDRESSES))
    )  # fmt: skip
    cols = ["src_ip", "class", "via", "resource", "service_tag", "allowed", "connections", "first_seen", "last_seen"]
    drawn = (
        ranked.filter(c("drawn"))
        .sort("connections", descending=True)
        .unique("src_ip", keep="first", maintain_order=True)  # an address with two classes: one node
        .sort("first_seen", "src_ip", nulls_last=True)
    )
    summaries = (
        ranked.filter(~c("drawn"))
        .group_by("class", "allowed")
        .agg(pl.len().alias("addresses"), c("connections").sum().alias("connections"), c("own").sum().alias("own"))
        .sort("class", "allowed", nulls_last=True)
    )
    pair_rows = (
        pairs.join(drawn.select(cols), on="src_ip", how="inner")
        .with_columns(total=c("connections").sum().over("vm"))
        .sort("total", "vm", "first_seen", descending=[True, False, False], nulls_last=True)
    )
    vms = pair_rows.select(c("vm").unique(maintain_order=True)).to_series().head(DIAGRAM_VMS).to_list()
    pair_rows = pair_rows.filter(c("vm").is_in(vms))
    preds: dict[str, list[Prediction]] = {}
    shown = set(vms)
    for p in getattr(a, "predictions", None) or []:
        if p.vm in shown and p.destination is None:
            preds.setdefault(p.vm, []).append(p)
    return _Graph(vms=vms, addresses=drawn.select(cols).to_dicts(), summaries=summaries.to_dicts(),
                  pairs=pair_rows.to_dicts(), predictions=preds)  # fmt: skip


def _matches(p: Prediction, row: Mapping[str, Any]) -> bool:
    """Whether the observed address is what prediction ``p`` gives."""
    if str(p.egress_class) != row.get("class"):
        return False
    if p.expected_ips and row["src_ip"] in p.expected_ips:
        return True
    res = (row.get("resource") or "").lower()
    return p.resource is None or not res or p.resource.lower() in res or res in p.resource.lower()


def _dot_str(*lines: Any) -> str:
    """A DOT string literal of ``lines`` (escaped for DOT; Graphviz escapes the SVG text)."""
    parts = [escape_control(str(x)).replace("\\", "\\\\").replace('"', '\\"') for x in lines if x not in (None, "")]
    return '"' + "\\n".join(parts) + '"'


def _predicted_text(preds: Sequence[Prediction]) -> list[str]:
    if not preds:
        return ["predicted: no prediction", "(not in the inventory)"]
    lines = []
    for p in {(p.egress_class, p.via, p.resource): p for p in preds}.values():
        head = f"predicted: {_label(str(p.egress_class))}" + (f" via {p.via}" if p.via else "")
        lines.append(head)
        if p.resource:
            lines.append(str(p.resource))
        if p.expected_ips:
            lines.append(", ".join(p.expected_ips[:3]))
        elif p.egress_class == "default_snat":
            lines.append("an Azure-owned address, unknown in advance")
    return lines


def _dot_source(g: _Graph, allowlist: str | None) -> str:
    out = [
        "digraph paths {",
        'graph [rankdir=LR, bgcolor="transparent", fontname="Helvetica", nodesep=0.18, ranksep=0.45, newrank=true];',
        'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, fillcolor="#ffffff", '
        'color="#999999", margin="0.08,0.04"];',
        'edge [fontname="Helvetica", fontsize=9, color="#666666", arrowsize=0.6];',
    ]
    heads = ["VM", "predicted egress", "observed source address", f"allowlist {allowlist}" if allowlist else "allowlist"]
    shown = [i for i in range(4) if g.vms or i >= 2]
    for i in shown:
        out.append(f'h{i} [label={_dot_str(heads[i])}, shape=plaintext, style="", fontsize=11, fontcolor="#444444", '
                   'class="head"];')  # fmt: skip
    out.append(" -> ".join(f"h{i}" for i in shown) + " [style=invis];")
    vm_id = {vm: f"v{i}" for i, vm in enumerate(g.vms)}
    addr_id = {row["src_ip"]: f"a{i}" for i, row in enumerate(g.addresses)}
    for vm, nid in vm_id.items():
        out.append(f'{nid} [label={_dot_str(vm)}, class="vm", fillcolor="#eef3fb", color="#4a6fa5", penwidth=1.4];')
        preds = g.predictions.get(vm, [])
        out.append(f'p{nid} [label={_dot_str(*_predicted_text(preds))}, class="predicted", style="rounded,dashed", '
                   'fontcolor="#333333"];')  # fmt: skip
        out.append(f'{nid} -> p{nid} [style=dashed, class="prediction", color="#999999"];')
    verdicts: dict[Any, str] = {}

    def verdict_node(allowed: Any) -> str:
        if allowed not in verdicts:
            nid = f"w{len(verdicts)}"
            verdicts[allowed] = nid
            text, color, fill = {
                True: ("accepts", "#2e7d32", "#e8f5e9"), False: ("refuses", "#c62828", "#ffebee"),
            }.get(allowed, ("no verdict" if allowlist else "no allowlist", "#777777", "#f5f5f5"))  # fmt: skip
            label = f"{allowlist} {text}" if allowlist and allowed is not None else text
            css = {True: "accepted", False: "refused"}.get(allowed, "unknown")
            out.append(f'{nid} [label={_dot_str(label)}, class="verdict {css}", color="{color}", fillcolor="{fill}", '
                       f'fontcolor="{color}"];')  # fmt: skip
        return verdicts[allowed]

    for row in g.addresses:
        nid = addr_id[row["src_ip"]]
        cls = row.get("class") or "unknown"
        sub = row.get("resource") or row.get("service_tag") or ""
        label = _dot_str(row["src_ip"], f"{_label(cls)}" + (f" via {row['via']}" if row.get("via") else ""), sub,
                         _plural(int(row.get("connections") or 0), "connection"))  # fmt: skip
        color = CLASS_COLORS.get(cls, "#444444")
        out.append(f'{nid} [label={label}, class="address", color="{color}", penwidth=1.6];')
        out.append(f'{nid} -> {verdict_node(row.get("allowed"))} [class="verdict-edge", color="{color}"];')
    for i, s in enumerate(g.summaries):
        cls = s.get("class") or "unknown"
        color = CLASS_COLORS.get(cls, "#444444")
        label = _dot_str(_addresses(cls, int(s["addresses"])),
                         _plural(int(s["connections"] or 0), "connection"),
                         "(not tied to a VM)" if not s.get("own") else "(the rest of the table)")  # fmt: skip
        out.append(f's{i} [label={label}, class="summary", color="{color}", style="rounded,filled,dashed"];')
        out.append(f's{i} -> {verdict_node(s.get("allowed"))} [class="verdict-edge", color="{color}"];')
    for row in g.pairs:
        vm, ip = row["vm"], row["src_ip"]
        preds = g.predictions.get(vm, [])
        ok = any(_matches(p, row) for p in preds)
        span = f"{_ts(row.get('first_seen'), '%H:%M:%S')}-{_ts(row.get('last_seen'), '%H:%M:%S')}"
        text = ("as predicted" if ok else "NOT predicted") + f", {span}"
        style = 'color="#2e7d32", fontcolor="#2e7d32"' if ok else 'color="#c62828", fontcolor="#c62828", penwidth=2.2'
        out.append(f'{vm_id[vm]} -> {addr_id[ip]} [class="pair {"match" if ok else "mismatch"}", minlen=2, '
                   f'label={_dot_str(text)}, {style}];')  # fmt: skip
    # Each column top to bottom: its head, then the VMs' order (invisible edges inside a
    # rank=same group keep that order, so Test2VM's before and after read downwards).
    first_vm = {}
    for row in g.pairs:
        first_vm.setdefault(row["src_ip"], vm_id[row["vm"]])
    vm_order = {n: i for i, n in enumerate(vm_id.values())}
    addr_nodes = sorted(addr_id, key=lambda ip: vm_order.get(first_vm.get(ip, ""), len(vm_order)))
    ranks = [
        ["h0", *vm_id.values()], ["h1", *(f"p{n}" for n in vm_id.values())],
        ["h2", *(addr_id[ip] for ip in addr_nodes), *(f"s{i}" for i in range(len(g.summaries)))],
        ["h3", *verdicts.values()],
    ]  # fmt: skip
    for r in ranks:
        if len(r) == 1:
            continue
        out.append("{ rank=same; " + "; ".join(r) + "; }")
        if len(r) > 2:
            out.append(" -> ".join(r[1:]) + " [style=invis];")
    out.append("}")
    return "\n".join(out)


_SVG_ROOT = re.compile(r"<svg\b[^>]*>", re.S)
_UNSAFE = re.compile(r"<script|<foreignObject|<a\b|\son[a-z]+\s*=|href\s*=|javascript:", re.I)


def _run_dot(source: str) -> str | None:
    """``dot -Tsvg`` of ``source`` as a bare ``<svg>`` element, or None without a usable dot."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    try:
        done = subprocess.run([dot, "-Tsvg"], input=source.encode(), capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    svg = done.stdout.decode("utf-8", "replace")
    start = svg.find("<svg")
    if start < 0:
        return None
    svg = re.sub(r"<!--.*?-->", "", svg[start:], flags=re.S)
    svg = svg.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    if _UNSAFE.search(svg):  # Graphviz emits none of these without URL attributes: refuse, to be sure.
        return None
    svg = re.sub(r"<title>paths</title>", "", svg, count=1)
    return _SVG_ROOT.sub(
        lambda m: m.group(0)[:-1] + ' id="paths" role="img" aria-label="egress paths: VM, predicted egress, '
        'observed source address, allowlist verdict">', svg, count=1,
    )  # fmt: skip


def _paths(a: Analysis, addresses: pl.DataFrame, incidents: Sequence[Mapping[str, Any]]) -> str:
    if addresses.height == 0:
        return '<div id="paths"><p>No connections, so no egress paths to draw.</p></div>'
    g = _graph(a, addresses, incidents)
    allow = getattr(getattr(a, "allowlist", None), "name", None)
    svg = _run_dot(_dot_source(g, allow))
    legend = (
        '<p class="note">'
        + ("Solid arrows: observed (VM, source address) pairs, green where the inventory predicts that address, "
           "red where it does not; dashed: the prediction." if g.pairs else "No observed address is tied to a VM.")
        + (f" At most {DIAGRAM_ADDRESSES} addresses tied to a VM or held by the inventory are drawn one by one; "
           "dashed boxes summarize the rest per class." if g.summaries else "")
        + "</p>"
    )  # fmt: skip
    if svg is not None:
        return f'<div class="diagram">{svg}</div>{legend}'
    return _paths_list(g) + legend


def _paths_list(g: _Graph) -> str:
    """Without Graphviz: the same content as a list."""
    items = []
    by_vm: dict[str, list[dict[str, Any]]] = {}
    for row in g.pairs:
        by_vm.setdefault(row["vm"], []).append(row)
    for vm in g.vms:
        pred = "; ".join(_predicted_text(g.predictions.get(vm, [])))
        obs = ", ".join(f"{_e(r['src_ip'])} ({_e(_label(r.get('class')))}"
                        f"{', ' + _e(r['resource']) if r.get('resource') else ''}, "
                        f"{'as predicted' if any(_matches(p, r) for p in g.predictions.get(vm, [])) else 'NOT predicted'})"
                        for r in by_vm.get(vm, []))  # fmt: skip
        items.append(f"<li><b>{_e(vm)}</b>: {_e(pred)}; observed {obs}</li>")
    for s in g.summaries:
        items.append(f"<li>{_e(_addresses(s.get('class'), int(s['addresses'])))}, "
                     f"{_plural(int(s['connections'] or 0), 'connection')}</li>")  # fmt: skip
    return ('<div id="paths"><p class="note">Graphviz <code>dot</code> was not found (Debian package graphviz): '
            f"the egress paths as a list.</p><ul>{''.join(items)}</ul></div>")  # fmt: skip


# --- timeline -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Timeline:
    """Connections per class in equal time bins over a range with round ends."""

    start: dt.datetime
    """Start of the range (a multiple of ``step``)."""
    end: dt.datetime
    """End of the range."""
    step: dt.timedelta
    """Between two labelled ticks."""
    width: dt.timedelta
    """Of one bin (``step`` divided evenly)."""
    counts: pl.DataFrame
    """``bin`` (Int64), ``class`` (String), ``n`` (UInt32), ``y0``/``y1`` stacked offsets."""


def timeline(connections: pl.DataFrame, bins: int = BINS) -> Timeline | None:
    """Connections per class per time bin, stacked (None without connections).

    Args:
        connections: classified rows with ``ts`` and ``class``.
        bins: about how many bins.
    """
    if connections.height == 0:
        return None
    lo, hi = connections.select(pl.col("ts").min(), pl.col("ts").max().alias("hi")).row(0)
    span = hi - lo
    step = next((s for s in _NICE_STEPS if span / s <= 8), _NICE_STEPS[-1])
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    lo, hi = (v if v.tzinfo else v.replace(tzinfo=dt.UTC) for v in (lo, hi))
    start = epoch + ((lo - epoch) // step) * step
    # Round the end up to a tick (at least three steps, so the axis always has labelled ticks).
    n_steps = max(-(-(hi - start + dt.timedelta(microseconds=1)) // step), 3)
    end = start + n_steps * step
    per = max(bins // n_steps, 1)
    width = step / per
    width_us = max(int(width / dt.timedelta(microseconds=1)), 1)
    order = {c: i for i, c in enumerate(CLASS_COLORS)}
    dtype = connections.schema["ts"]
    naive = isinstance(dtype, pl.Datetime) and dtype.time_zone is None
    ts_utc = pl.col("ts").dt.replace_time_zone("UTC") if naive else pl.col("ts").dt.convert_time_zone("UTC")
    counts = (
        connections.lazy()
        .select(
            ((ts_utc - pl.lit(start)).dt.total_microseconds() // width_us)
            .cast(pl.Int64).alias("bin"),
            pl.col("class").cast(pl.String).fill_null("unknown"),
        )
        .group_by("bin", "class")
        .agg(pl.len().alias("n"))
        .with_columns(pl.col("class").replace_strict(order, default=len(order), return_dtype=pl.Int32).alias("_o"))
        .sort("bin", "_o", "class")
        .with_columns(pl.col("n").cum_sum().over("bin").alias("y1"))
        .with_columns((pl.col("y1") - pl.col("n")).alias("y0"))
        .drop("_o")
        .collect()
    )
    return Timeline(start=start, end=end, step=step, width=width, counts=counts)


def _duration(d: dt.timedelta) -> str:
    s = d.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s * 1000:.3g} ms"


def _timeline_svg(a: Analysis, incidents: Sequence[Mapping[str, Any]]) -> str:
    t = timeline(a.connections)
    if t is None:
        return '<figure id="timeline"><p>No connections.</p></figure>'
    marked = [d for d in incidents if isinstance(d.get("first_ts"), dt.datetime)][:MARKERS]
    # One row per marked incident above the plot, so their bands never overlap.
    w, ph, left, right, bottom = 960, 180, 56, 34, 52
    top = 26 + 12 * len(marked)
    h, pw = top + ph + bottom, w - left - right
    total = (t.end - t.start).total_seconds()
    peak = int(t.counts.get_column("y1").max() or 1)  # type: ignore[arg-type]

    def x(when: Any) -> float:
        if not isinstance(when, dt.datetime):
            return float(left)
        return left + pw * min(max((when - t.start).total_seconds() / total, 0.0), 1.0)

    def y(n: float) -> float:
        return top + ph - ph * n / peak

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
             'aria-label="connections per class over time, UTC" font-family="sans-serif" font-size="11">']  # fmt: skip
    bw = pw * (t.width.total_seconds() / total)
    for b, cls, n, y1, y0 in t.counts.select("bin", "class", "n", "y1", "y0").iter_rows():
        x0 = left + b * bw
        t0 = t.start + b * t.width
        parts.append(
            f'<rect class="mark" data-class="{_e(cls)}" data-count="{n}" x="{x0:.2f}" y="{y(y1):.2f}" '
            f'width="{max(bw - 0.5, 0.8):.2f}" height="{max(y(y0) - y(y1), 0.5):.2f}" '
            f'fill="{CLASS_COLORS.get(cls, "#444444")}"><title>{_e(cls)}: {_plural(n, "connection")}, '
            f"{_e(_ts(t0))} to {_e(_ts(t0 + t.width, '%H:%M:%S'))} UTC</title></rect>"
        )
    # axes
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>')
    for n in sorted({0, peak // 2, peak}):
        parts.append(f'<line x1="{left - 4}" y1="{y(n):.1f}" x2="{left}" y2="{y(n):.1f}" stroke="#444"/>'
                     f'<text class="ytick" x="{left - 6}" y="{y(n) + 4:.1f}" text-anchor="end">{n:,}</text>')  # fmt: skip
    fmt = "%H:%M:%S" if t.step < dt.timedelta(minutes=1) else ("%H:%M" if t.step < dt.timedelta(days=1) else "%b %d")
    k, last_day = 0, None
    when = t.start
    while when <= t.end:
        day = when.strftime("%Y-%m-%d")
        tx = x(when)
        parts.append(f'<line x1="{tx:.1f}" y1="{top + ph}" x2="{tx:.1f}" y2="{top + ph + 5}" stroke="#444"/>')
        parts.append(f'<text class="tick" x="{tx:.1f}" y="{top + ph + 17}" text-anchor="middle">{_e(when.strftime(fmt))}</text>')
        if day != last_day and fmt != "%b %d":
            parts.append(f'<text class="tick-date" x="{tx:.1f}" y="{top + ph + 30}" text-anchor="middle" '
                         f'fill="#666">{_e(day)}</text>')  # fmt: skip
            last_day = day
        k += 1
        when = t.start + k * t.step
    parts.append(f'<text class="axis-title" x="{left + pw / 2:.0f}" y="{h - 6}" text-anchor="middle" fill="#333">'
                 f"time (UTC); bars: connections per {_e(_duration(t.width))}, stacked by class</text>")  # fmt: skip
    # incidents: a band from first to last connection, labelled with the incident's id
    for i, d in enumerate(marked):
        x0, x1 = x(d["first_ts"]), x(d.get("last_ts") or d["first_ts"])
        x1 = max(x1, x0 + 2)
        row = 26 + 12 * i
        color = SEVERITY_COLORS.get(d["severity"], "#444444")
        tip = (f"{d['id']} {d['severity']} {d['kind']}: {_plural(d['count'], 'connection')}, "
               f"{_ts(d['first_ts'])} to {_ts(d.get('last_ts'))} UTC")  # fmt: skip
        tx, anchor = (x1 + 4, "start") if x1 < left + pw - 30 else (x0 - 4, "end")
        parts.append(
            f'<g class="incident-mark"><title>{_e(tip)}</title>'
            f'<line x1="{x0:.1f}" y1="{row}" x2="{x0:.1f}" y2="{top + ph}" stroke="{color}" stroke-dasharray="3,3"/>'
            f'<rect x="{x0:.1f}" y="{row - 3}" width="{x1 - x0:.1f}" height="6" fill="{color}"/>'
            f'<text x="{tx:.1f}" y="{row + 3}" text-anchor="{anchor}" fill="{color}" font-weight="bold">'
            f"{_e(d['id'])}</text></g>"
        )
    parts.append(f'<text x="{left}" y="14" fill="#333">peak: {_plural(peak, "connection")} per bin</text>')
    parts.append("</svg>")
    totals = t.counts.group_by("class").agg(pl.col("n").sum()).sort("n", "class", descending=[True, False]).iter_rows()
    legend = "".join(
        f'<li><span class="swatch" style="background:{CLASS_COLORS.get(cls, "#444444")}"></span>'
        f"{_e(cls)} {n:,}</li>" for cls, n in totals
    )  # fmt: skip
    return f'<figure id="timeline">{"".join(parts)}<figcaption><ul class="legend">{legend}</ul></figcaption></figure>'


# --- tables ---------------------------------------------------------------------------------


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return _ts(v, "%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(v, (list, tuple)):
        return ", ".join(_cell(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items())
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


_NOWRAP: Final = ("src_ip", "class", "service", "state")
"""Short values kept on one line in the tables (like timestamps)."""


def _table(df: pl.DataFrame, columns: Sequence[str], row_class: str, table_id: str) -> str:
    cols = [c for c in columns if c in df.columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    kinds = {c: "ts" if isinstance(df.schema[c], pl.Datetime) or c in _NOWRAP else "" for c in cols}
    rows = []
    for row in df.select(cols).iter_rows():
        cells = "".join(
            f'<td class="{k}">{_e(_cell(v))}</td>' if (k := kinds[c]) else f"<td>{_e(_cell(v))}</td>"
            for c, v in zip(cols, row, strict=True)
        )
        rows.append(f'<tr class="{row_class}">{cells}</tr>')
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _incident_table(incidents: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for d in incidents:
        sev = d["severity"]
        fixes = "".join(f"<li>{_e(x)}</li>" for x in d["fixes"])
        ips = _list_text(d["src_ips"][:5], d["address_count"])
        what = _label(d["class"]) + (f" via {d['via']}" if d.get("via") else "") if d.get("class") else ""
        rows.append(
            f'<tr class="finding severity-{_e(sev)}"><td><b>{_e(d["id"])}</b></td>'
            f'<td><span class="sev sev-{_e(sev)}">{_e(sev)}</span></td>'
            f"<td>{_e(d['kind'])}<br><small>{_e(what)}{'<br>' + _e(d['resource']) if d.get('resource') else ''}"
            f"</small></td><td>{_e(', '.join(d['vms']))}</td><td>{ips}</td>"
            f"<td class=\"num\">{d['count']:,}</td>"
            f'<td class="ts">{_e(_ts(d["first_ts"]))}<br>{_e(_ts(d["last_ts"]))}</td>'
            f'<td>{_e(d["message"])}{"<ul class=fixes>" + fixes + "</ul>" if fixes else ""}</td></tr>'
        )
    head = ("<tr><th>id</th><th>severity</th><th>kind</th><th>VMs</th><th>addresses</th><th>connections</th>"
            "<th>first / last (UTC)</th><th>what, and the fix</th></tr>")  # fmt: skip
    widths = "".join(f'<col style="width:{w}">' for w in ("3em", "5.5em", "11em", "8em", "9em", "7.5em", "11.5em", "auto"))
    return (f'<table id="incidents" class="fixed"><colgroup>{widths}</colgroup><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _vm_cards(a: Analysis, addresses: pl.DataFrame, incidents: Sequence[Mapping[str, Any]]) -> str:
    preds: dict[str, list[Prediction]] = {}
    for p in getattr(a, "predictions", None) or []:
        if p.destination is None:
            preds.setdefault(p.vm or p.nic, []).append(p)
    ad = _normalized(addresses)
    observed = (
        _pairs(ad, incidents)
        .join(ad.select("src_ip", "class", "resource", "allowed", "connections"), on="src_ip", how="inner")
        .sort("connections", "src_ip", descending=[True, False])
        .group_by("vm", maintain_order=True)
        .agg(pl.all().head(5), pl.len().alias("n_addresses"), pl.col("connections").sum().alias("total"))
        .sort("total", "vm", descending=[True, False])
    )
    seen = {r["vm"]: r for r in observed.head(VM_CARDS).to_dicts()}
    order = list(seen) + sorted(v for v in preds if v not in seen)
    cards = []
    for vm in order[:VM_CARDS]:
        plist = preds.get(vm, [])
        lines = []
        for p in plist:
            what = f"{_label(str(p.egress_class))}" + (f" via {p.via}" if p.via else "") + (f", {p.resource}" if p.resource else "")
            ips = f" ({', '.join(p.expected_ips[:3])})" if p.expected_ips else ""
            allowed = {True: " allowed", False: " not allowed", None: ""}[p.allowed]
            lines.append(f"<p><b>Predicted</b> {_e(what + ips)}; row {_e(p.row)}, {_e(p.confidence)}{_e(allowed)}.</p>"
                         f'<p class="reason">{_e(p.reason)}</p>')  # fmt: skip
        if not plist:
            lines.append("<p><b>Predicted</b>: the inventory has no prediction for it.</p>")
        row = seen.get(vm)
        if row:
            obs = []
            for ip, cls, res, ok, n in zip(row["src_ip"], row["class"], row["resource"], row["allowed"],
                                           row["connections"], strict=True):  # fmt: skip
                match = any(_matches(p, {"src_ip": ip, "class": cls, "resource": res}) for p in plist)
                verdict = {True: '<span class="ok">allowed</span>', False: '<span class="bad">not allowed</span>'}.get(ok, "")
                obs.append(f"<li><b>{_e(ip)}</b> {_e(_label(cls))}{' ' + _e(res) if res else ''}, "
                           f"{_plural(int(n or 0), 'connection')}; {'as predicted' if match else '<b>not predicted</b>'}"
                           f"{'; ' + verdict if verdict else ''}</li>")  # fmt: skip
            more = row["n_addresses"] - len(obs)
            lines.append(f"<p><b>Observed</b> {_plural(int(row['total']), 'connection')} from "
                         f"{_plural(int(row['n_addresses']), 'address', 'addresses')}:</p><ul>{''.join(obs)}</ul>"
                         + (f"<p>and {more:,} more addresses</p>" if more > 0 else ""))  # fmt: skip
        else:
            lines.append("<p><b>Observed</b>: no connections.</p>")
        cards.append(f'<article class="vm-card"><h3>{_e(vm)}</h3>{"".join(lines)}</article>')
    note = f'<p class="note">{VM_CARDS} of {len(order):,} VMs shown.</p>' if len(order) > VM_CARDS else ""
    return f'<div id="vms" class="cards">{"".join(cards) or "<p>No VMs in the inventory.</p>"}</div>{note}'


ADDRESS_COLUMNS: Final = (
    "src_ip", "class", "via", "resource", "candidate_vms", "service_tag", "allowed", "first_seen",
    "last_seen", "connections", "by_service", "users",
)  # fmt: skip
CONNECTION_COLUMNS: Final = (
    "ts", "src_ip", "src_port", "dst_port", "service", "state", "class", "resource", "candidate_vms",
    "allowed", "ssh_user", "http_path", "evidence",
)  # fmt: skip
EVIDENCE_COLUMNS: Final = ("path", "kind", "log_type", "size", "records", "skipped", "rejects", "first_ts", "last_ts")


def _limit_lists(df: pl.DataFrame, n: int = 5) -> pl.DataFrame:
    lists = [c for c, t in df.schema.items() if isinstance(t, pl.List)]
    return df.with_columns(pl.col(c).list.head(n) for c in lists)


def _top_tables(a: Analysis, addresses: pl.DataFrame) -> str:
    out = []
    n_addr, n_conn = addresses.height, a.connections.height
    top_addr = addresses.sort("connections", "src_ip", descending=[True, False]) if "connections" in addresses.columns else addresses
    top_addr = _limit_lists(top_addr.head(TOP_N))
    note_a = (f"The {TOP_N} addresses with the most connections of {n_addr:,}; the full tables are the report folder's "
              f"Parquet files ({FULL_TABLES}, written by <code>analyze -o DIR/</code>).") if n_addr > TOP_N else ""  # fmt: skip
    out.append(f"<h2>Addresses ({n_addr:,})</h2>" + (f'<p class="note">{note_a}</p>' if note_a else "")
               + _table(top_addr, ADDRESS_COLUMNS, "address", "addresses"))  # fmt: skip
    conns = _limit_lists(a.connections.head(TOP_N))
    note_c = (f"The first {TOP_N} of {n_conn:,} connections in time order; the others are not inlined: see the "
              f"report folder's Parquet files ({FULL_TABLES}).") if n_conn > TOP_N else ""  # fmt: skip
    out.append(f"<h2>Connections ({n_conn:,})</h2>" + (f'<p class="note">{note_c}</p>' if note_c else "")
               + _table(conns, CONNECTION_COLUMNS, "connection", "connections"))  # fmt: skip
    if a.evidence:
        ev = pl.DataFrame([dataclasses.asdict(e) for e in a.evidence[:TOP_N]])
        more = len(a.evidence) - ev.height
        out.append(f"<h2>Evidence ({len(a.evidence):,})</h2>" + _table(ev, EVIDENCE_COLUMNS, "evidence", "evidence")
                   + (f'<p class="note">and {more:,} more files</p>' if more > 0 else ""))  # fmt: skip
    notes = list(getattr(a, "notes", []) or [])
    if notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes[:TOP_N])
        extra = f"<li>and {len(notes) - TOP_N:,} more</li>" if len(notes) > TOP_N else ""
        out.append(f'<h2>Notes ({len(notes):,})</h2><ul id="notes">{items}{extra}</ul>')
    return "".join(out)


_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}"
    "main{max-width:1200px;margin:0 auto;padding:16px 20px;box-sizing:border-box;overflow-wrap:anywhere}"
    "h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #ddd}"
    ".verdict{background:#fff;border-left:6px solid #c62828;padding:8px 14px;font-size:16px;line-height:1.45}"
    ".verdict.ok{border-color:#2e7d32}.verdict p{margin:6px 0}.verdict .fix{font-size:14px}"
    + "".join(f".sev-border-{k}{{border-color:{v}}}.sev-{k}{{background:{v}}}" for k, v in SEVERITY_COLORS.items())
    + ".sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;white-space:nowrap}"
    ".context{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;font-size:13px;color:#444;"
    "margin:10px 0}.context dt{font-weight:bold}.context dd{margin:0;overflow-wrap:anywhere}"
    ".diagram,figure{margin:0;overflow:hidden}svg{max-width:100%;height:auto;display:block}"
    ".legend{list-style:none;padding:0;margin:4px 0;font-size:12px}.legend li{display:inline-block;margin-right:14px}"
    ".swatch{display:inline-block;width:10px;height:10px;margin-right:4px}"
    ".note{font-size:12px;color:#555}"
    "table{border-collapse:collapse;width:100%;font-size:12px;background:#fff}"
    "td,th{border:1px solid #ddd;padding:3px 5px;vertical-align:top;text-align:left;overflow-wrap:anywhere}"
    "th{background:#f0f0f0;overflow-wrap:normal}table.fixed{table-layout:fixed}.ts{white-space:nowrap;overflow-wrap:normal}.num{text-align:right}"
    "ul.fixes{margin:4px 0;padding-left:18px}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:10px}"
    ".vm-card{background:#fff;border:1px solid #ccd;border-radius:6px;padding:6px 12px;font-size:13px;"
    "overflow-wrap:anywhere}.vm-card h3{margin:4px 0;font-size:15px}.vm-card ul{padding-left:18px;margin:4px 0}"
    ".reason{color:#555}.ok{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}"
)


def render_html(a: Analysis, *, now: dt.datetime | None = None) -> str:
    """One self-contained page (no script, nothing fetched): verdict, paths, timeline, tables.

    Args:
        a: the analysis.
        now: the generation time shown (default: the current time).
    """
    now = now or dt.datetime.now(dt.UTC)
    addresses = a.addresses
    incidents = _incidents(a, addresses)
    n_conn, n_addr = a.connections.height, addresses.height
    n_inc = len(a.findings)
    summary = f"{_plural(n_conn, 'connection')} from {_plural(n_addr, 'address', 'addresses')}; " + _plural(
        n_inc, "incident"
    )
    inc_note = (f'<p class="note">The {len(incidents)} worst of {n_inc:,} incidents; all of them are in '
                "<code>--format json</code> and the report folder.</p>" if n_inc > len(incidents) else "")  # fmt: skip
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>egresslens report</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>egresslens report</h1><p class=\"note\">{summary}.</p>"
        + _verdict(incidents, len(a.findings))
        + _context(a, now)
        + "<h2>Egress paths per VM</h2>"
        + _paths(a, addresses, incidents)
        + "<h2>Connections over time, by class</h2>"
        + _timeline_svg(a, incidents)
        + f"<h2>Incidents ({n_inc:,})</h2>"
        + inc_note
        + (_incident_table(incidents) if incidents else "<p>None.</p>")
        + "<h2>VMs</h2>"
        + _vm_cards(a, addresses, incidents)
        + _top_tables(a, addresses)
        + "</main></body></html>\n"
    )
