"""analyze.html: the page tells the story (verdict, egress paths, timeline), stays small at
volume, keeps hostile content inert, and renders in headless Chromium as asserted from its DOM."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

import analyze.html as page_mod
from analyze.evidence import EvidenceFile
from analyze.html import TOP_N, incident, render_html, timeline
from analyze.pipeline import run
from analyze.report import render

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo"
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
XSS = '<script>alert("ua")</script>'
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed (make sysdeps)")


@dataclass(frozen=True)
class _Finding:
    """Today's finding shape (no id, no address_count, no class)."""

    kind: str
    severity: str
    vms: tuple[str, ...]
    src_ips: tuple[str, ...]
    message: str
    fixes: tuple[str, ...] = field(default_factory=tuple)
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None
    count: int = 0


def _prediction(vm: str, cls: str, resource: str | None = None, ips: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(vm=vm, nic=f"{vm}-nic", destination=None, egress_class=cls, via=None, resource=resource,
                           expected_ips=ips, row="12", confidence="documented", reason=f"reason for {vm}",
                           fixes=(), allowed=None)  # fmt: skip


def analysis() -> SimpleNamespace:
    rows = [
        (T0, "139.219.8.21", 50412, 22, "ssh", "closed", "default_snat", None, None, ["Test2VM"], "strong", False, "azureuser", None),
        (T0 + dt.timedelta(minutes=1), "139.219.8.21", 50414, 80, "http", "closed", "default_snat", None, None, ["Test2VM"], "strong", False, None, XSS),
        (T0 + dt.timedelta(minutes=5), "42.159.94.123", 40122, 22, "ssh", "closed", "instance_public_ip", None, "lbvm-pip", [XSS], "strong", False, "\x1b[31mroot", None),
        (T0 + dt.timedelta(minutes=30), "40.125.161.55", 1025, 22, "ssh", "closed", "lb_frontend", "nat_rule", "mylb/fe", ["Test2VM"], "strong", True, "=cmd|' /C calc'!A0", None),
    ]
    connections = pl.DataFrame(
        rows,
        schema={"ts": pl.Datetime("us", "UTC"), "src_ip": pl.String, "src_port": pl.UInt16, "dst_port": pl.UInt16,
                "service": pl.String, "state": pl.String, "class": pl.String, "via": pl.String, "resource": pl.String,
                "candidate_vms": pl.List(pl.String), "confidence": pl.String, "allowed": pl.Boolean,
                "ssh_user": pl.String, "http_user_agent": pl.String},
        orient="row",
    )  # fmt: skip
    addresses = connections.group_by("src_ip").agg(
        pl.col("class", "via", "resource", "candidate_vms", "allowed").first(),
        pl.col("ts").min().alias("first_seen"), pl.col("ts").max().alias("last_seen"), pl.len().alias("connections"),
    )  # fmt: skip
    findings = [
        _Finding("allowlist_miss", "high", ("Test2VM",), ("139.219.8.21",), f"refused {XSS}", ("add an outbound rule",),
                 T0, T0 + dt.timedelta(minutes=1), 2),  # fmt: skip
        _Finding("unexpected_egress", "medium", ("Test2VM",), ("40.125.161.55",), "observed lb_frontend"),
    ]
    evidence = [EvidenceFile(path=f"/x/{XSS}.pcap", kind="pcap", log_type=None, sha256="ab" * 32, size=10,
                             first_ts=T0, last_ts=T0, records=4, skipped=0, rejects=0)]  # fmt: skip
    predictions = [_prediction("Test2VM", "default_snat"), _prediction(XSS, "instance_public_ip", "lbvm-pip", ("42.159.94.123",))]
    return SimpleNamespace(connections=connections, addresses=addresses, findings=findings, evidence=evidence,
                           predictions=predictions, inventory=None, allowlist=SimpleNamespace(name="web<app>"),
                           clock_offset=dt.timedelta(seconds=0.25), notes=[f"note {XSS}"])  # fmt: skip


# --- the incident adapter -------------------------------------------------------------------


def test_incident_reads_today_s_findings_with_fallbacks() -> None:
    d = incident(_Finding("allowlist_miss", "high", ("Test2VM",), ("1.2.3.4", "1.2.3.5"), "m", ("fix",)), 3)
    assert d["id"] == "F3" and d["address_count"] == 2 and d["count"] == 0
    assert d["vms"] == ["Test2VM"] and d["fixes"] == ["fix"] and d["class"] is None and d["services"] == []


def test_incident_reads_incidents_with_their_own_fields() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Incident:
        id: str
        kind: str
        severity: str
        vms: tuple[str, ...]
        src_ips: tuple[str, ...]
        address_count: int
        count: int
        message: str
        class_: str
        allowlist: str
        services: tuple[str, ...]

    d = incident(Incident(id="F7", kind="auth_failures", severity="medium", vms=(), src_ips=("9.9.9.9",),
                          address_count=200_000, count=1_000_000, message="m", class_="external",
                          allowlist="web-app", services=("ssh",)), 1)  # fmt: skip
    assert (d["id"], d["address_count"], d["count"], d["class"], d["services"]) == ("F7", 200_000, 1_000_000, "external", ["ssh"])
    assert incident({"kind": "x", "class": "default_snat", "src_ips": ["a"]}, 2)["class"] == "default_snat"


# --- timeline -------------------------------------------------------------------------------


def test_timeline_bins_add_up_and_stack_per_bin() -> None:
    t = timeline(analysis().connections)
    assert t is not None
    totals = dict(t.counts.group_by("class").agg(pl.col("n").sum()).iter_rows())
    assert totals == {"default_snat": 2, "instance_public_ip": 1, "lb_frontend": 1}
    # 30 minutes of data: ticks every 5 minutes from 09:00, the range ends on a tick.
    assert (t.start, t.step) == (T0, dt.timedelta(minutes=5)) and t.end >= T0 + dt.timedelta(minutes=30)
    assert (t.end - t.start) / t.step >= 3 and t.step % t.width == dt.timedelta(0)
    per_bin = t.counts.group_by("bin").agg(pl.col("y1").max(), pl.col("n").sum())
    assert (per_bin["y1"] == per_bin["n"]).all()
    assert (t.counts["y1"] - t.counts["y0"] == t.counts["n"]).all()


def test_timeline_of_one_instant_still_has_three_steps() -> None:
    one = analysis().connections.head(1)
    t = timeline(one)
    assert t is not None and (t.end - t.start) / t.step >= 3 and t.counts["n"].to_list() == [1]
    assert timeline(one.clear()) is None


# --- the page -------------------------------------------------------------------------------


def test_html_escapes_everything_and_is_self_contained() -> None:
    page = render_html(analysis(), now=NOW)  # type: ignore[arg-type]
    assert XSS not in page and "&lt;script&gt;" in page and "<script" not in page
    assert "\x1b" not in page and "web&lt;app&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "default-src 'none'" in page
    assert render(analysis(), "html").decode().startswith("<!DOCTYPE html>")  # type: ignore[arg-type]


def test_severity_of_every_level_has_a_color() -> None:
    a = analysis()
    a.findings = [_Finding("snat_pressure", s, (), ("1.1.1.1",), "m") for s in ("info", "low", "medium", "high", "critical")]
    page = render_html(a, now=NOW)  # type: ignore[arg-type]
    for s in ("info", "low", "medium", "high", "critical"):
        assert f'<span class="sev sev-{s}">' in page
        assert re.search(rf"\.sev-{s}\{{background:#[0-9a-f]{{6}}\}}", page)


def test_without_dot_the_paths_are_a_list_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_mod.shutil, "which", lambda _name: None)
    page = render_html(analysis(), now=NOW)  # type: ignore[arg-type]
    paths = page[page.index('<div id="paths">'):]
    assert "Graphviz <code>dot</code> was not found" in paths and "<b>Test2VM</b>" in paths
    assert "139.219.8.21 (default SNAT address, as predicted)" in paths


def test_without_connections_the_page_says_so() -> None:
    a = analysis()
    a.connections, a.findings = a.connections.clear(), []
    a.addresses = a.addresses.clear()
    page = render_html(a, now=NOW)  # type: ignore[arg-type]
    assert "nothing to fix" in page and "No connections" in page


def test_only_the_top_rows_are_inlined_with_a_note_naming_the_parquet_files() -> None:
    n = TOP_N + 57
    a = analysis()
    ips = [f"198.51.100.{i % 250}" if i < 250 else f"10.1.{i // 250}.{i % 250}" for i in range(n)]
    a.connections = pl.DataFrame({"ts": [T0 + dt.timedelta(seconds=i) for i in range(n)], "src_ip": ips,
                                  "class": ["external"] * n}, schema_overrides={"ts": pl.Datetime("us", "UTC")})  # fmt: skip
    a.addresses = a.connections.group_by("src_ip").agg(pl.col("class").first(), pl.len().alias("connections"),
                                                        pl.col("ts").min().alias("first_seen"))  # fmt: skip
    page = render_html(a, now=NOW)  # type: ignore[arg-type]
    assert page.count('<tr class="address">') == TOP_N and page.count('<tr class="connection">') == TOP_N
    assert f"of {n:,}" in page and "connections.parquet and addresses.parquet" in page
    if shutil.which("dot"):  # external addresses tied to no VM: one summary node, no node per address
        svg = page[page.index('id="paths"'):page.index("</svg>")]
        assert svg.count('class="node summary"') == 1 and svg.count('class="node address"') == 0
        assert f"{n:,} external addresses" in svg


@needs_dot
def test_hostile_names_in_the_diagram_stay_text() -> None:
    page = render_html(analysis(), now=NOW)  # type: ignore[arg-type]
    svg = page[page.index('id="paths"'):page.index("</svg>")]
    assert 'class="node vm"' in svg and "<script" not in svg and "&lt;script&gt;" in svg


@pytest.mark.parametrize("name", ['x" onload="alert(1)', "x onmouseover=alert(1)", "<a href='javascript:x'>y</a>",
                                  "a\\\"b\\N\\G", "&#60;script&#62;", "]]><script>1</script>"])  # fmt: skip
def test_no_name_becomes_markup(name: str) -> None:
    a = analysis()
    a.connections = a.connections.with_columns(pl.lit([name]).alias("candidate_vms"), pl.lit(name).alias("resource"))
    a.addresses = a.addresses.with_columns(pl.lit([name]).alias("candidate_vms"), pl.lit(name).alias("resource"))
    a.predictions = [_prediction(name, "default_snat", name)]
    page = render_html(a, now=NOW)  # type: ignore[arg-type]
    tree = _Tree(page)
    tags = {n.tag for n in tree.root.iter()}
    assert not tags & {"script", "a", "foreignobject", "iframe", "img"}
    attrs = {k for n in tree.root.iter() for k in n.attrs}
    assert not any(k.startswith("on") or k.endswith("href") for k in attrs), attrs
    assert tree.by_id("paths") is not None


# --- headless Chromium ----------------------------------------------------------------------


class _Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: _Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[_Node] = []
        self.text: list[str] = []

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Any:
        yield self
        for c in self.children:
            yield from c.iter()

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)

    def find(self, tag: str | None = None, cls: str | None = None) -> list[_Node]:
        return [n for n in self.iter() if (tag is None or n.tag == tag) and (cls is None or cls in n.classes())]


class _Tree(HTMLParser):
    """The dumped DOM as a tree (stdlib only)."""

    VOID = {"meta", "br", "col", "img", "input", "link", "hr"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.cur = _Node("#root", {}, None)
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(_Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        n: _Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.text.append(data)

    def by_id(self, ident: str) -> _Node:
        return next(n for n in self.root.iter() if n.attrs.get("id") == ident)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Test-only: measures the layout at 1280 px and writes it into the DOM for --dump-dom.  The
# page's own CSP forbids scripts, so the copy under test drops that meta tag.
_PROBE = """<script>
(function () {
  var w = window.innerWidth, wide = [];
  document.querySelectorAll('body *').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.right > w + 0.5 || r.width > w + 0.5) wide.push(el.tagName + '#' + el.id + '.' + el.getAttribute('class'));
  });
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({width: w, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 20)});
  document.body.appendChild(out);
})();
</script>"""


def _dump_dom(html_text: str, tmp: Path, *, probe: bool) -> str:
    path = tmp / ("probe.html" if probe else "page.html")
    if probe:
        html_text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html_text)
        html_text = html_text.replace("</body>", _PROBE + "</body>")
    path.write_text(html_text, encoding="utf-8")
    profile = tempfile.mkdtemp(prefix="el-chromium-")
    try:
        return subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--hide-scrollbars", "--window-size=1280,900", "--dump-dom", path.as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_page() -> str:
    evidence = [str(DEMO / n) for n in ("webapp-vm.pcap", "auth.log", "access.log")]
    inventory = [str(DEMO / "inventory.yaml"), str(DEMO / "ServiceTags_Public_lab.json")]
    return render_html(run(evidence, inventory, allowlist="web-app"), now=NOW)


# The recorded sample (pcaps/demo/README.md): Test2VM first from the lab's default SNAT
# address, then (after the NAT rule) from mylb's frontend; lbvm from its instance public IP.
SNAT, LBVM_IP, FRONTEND = "203.0.113.129", "192.0.2.123", "203.0.113.55"
DEMO_PAIRS = {("Test2VM", SNAT), ("lbvm", LBVM_IP), ("Test2VM", FRONTEND)}


@needs_dot
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (CI installs Debian's chromium)")
def test_demo_page_in_headless_chromium(demo_page: str, tmp_path: Path) -> None:
    assert "<script" not in demo_page
    dom = _Tree(_dump_dom(demo_page, tmp_path, probe=True))

    verdict = " ".join(dom.by_id("verdict").all_text().split())
    for word in ("Test2VM", "web-app", "default SNAT address", SNAT):
        assert word in verdict, verdict
    assert verdict.index("Test2VM") < verdict.index(SNAT)

    paths = dom.by_id("paths")
    assert paths.tag == "svg" or paths.children[0].tag == "svg"
    nodes = {n.find("title")[0].all_text(): n for n in paths.find("g", "node")}
    label = {k: [t.all_text() for t in n.find("text")] for k, n in nodes.items()}
    vms = {k: label[k][0] for k, n in nodes.items() if "vm" in n.classes()}
    addrs = {k: label[k][0] for k, n in nodes.items() if "address" in n.classes()}
    assert sorted(vms.values()) == ["Test2VM", "lbvm"]
    assert sorted(addrs.values()) == sorted([SNAT, LBVM_IP, FRONTEND])
    addr_text = {label[k][0]: " ".join(label[k]) for k in addrs}
    assert "mylb/LoadBalancerFrontEnd" in addr_text[FRONTEND] and "lbvm-pip" in addr_text[LBVM_IP]
    edges = {}
    for e in paths.find("g", "pair"):
        tail, head = e.find("title")[0].all_text().split("->")
        edges[(vms[tail], addrs[head])] = e.classes()
    assert set(edges) == DEMO_PAIRS
    # the article's before/after: default SNAT as predicted, the frontend not predicted
    assert "match" in edges[("Test2VM", SNAT)] and "mismatch" in edges[("Test2VM", FRONTEND)]
    verdict_nodes = [" ".join(label[k]) for k, n in nodes.items() if "verdict" in n.classes()]
    assert sorted(verdict_nodes) == ["web-app accepts", "web-app refuses"]

    tl = dom.by_id("timeline")
    svg = tl if tl.tag == "svg" else tl.children[0]
    assert svg.tag == "svg"
    ticks = [t.all_text().strip() for t in svg.find("text", "tick")]
    assert len([t for t in ticks if re.fullmatch(r"\d\d:\d\d:\d\d", t)]) >= 3, ticks
    assert "UTC" in " ".join(t.all_text() for t in svg.find("text", "axis-title"))
    marks: dict[str, int] = {}
    for r in svg.find("rect", "mark"):
        marks[r.attrs["data-class"]] = marks.get(r.attrs["data-class"], 0) + int(r.attrs["data-count"])
        assert r.find("title") and "connection" in r.find("title")[0].all_text()
    assert marks == {"default_snat": 2, "instance_public_ip": 2, "lb_frontend": 2}
    assert len(svg.find("g", "incident-mark")) == 3

    assert len(dom.root.find("tr", "finding")) == 3
    assert {n.find("h3")[0].all_text() for n in dom.root.find("article", "vm-card")} == {"Test2VM", "lbvm"}
    context = dom.by_id("context").all_text()
    assert "webapp-vm" in context and "inventory.yaml" in context and "2026-12-01 12:00:00 UTC" in context

    probe = json.loads(dom.by_id("probe").all_text())
    assert probe["width"] == 1280 and probe["scroll"] <= 1280 and probe["wide"] == []


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (CI installs Debian's chromium)")
def test_the_page_s_csp_blocks_scripts(demo_page: str, tmp_path: Path) -> None:
    """A script that got into the page would not run: the probe stays out with the CSP on."""
    text = demo_page.replace("</body>", _PROBE + "</body>")
    dom = _dump_dom(text, tmp_path, probe=False)
    assert 'id="probe"' not in dom and 'id="verdict"' in dom


def test_json_and_html_agree_on_the_connections(demo_page: str) -> None:
    marks: dict[str, int] = {}
    for cls, n in re.findall(r'<rect class="mark" data-class="([^"]+)" data-count="(\d+)"', demo_page):
        marks[cls] = marks.get(cls, 0) + int(n)
    evidence = [str(DEMO / n) for n in ("webapp-vm.pcap", "auth.log", "access.log")]
    inventory = [str(DEMO / "inventory.yaml"), str(DEMO / "ServiceTags_Public_lab.json")]
    doc = json.loads(render(run(evidence, inventory, allowlist="web-app"), "json"))
    by_class: dict[str, int] = {}
    for row in doc["connections"]:
        by_class[row["class"]] = by_class.get(row["class"], 0) + 1
    assert marks == by_class


@needs_dot
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (CI installs Debian's chromium)")
def test_long_hostile_values_wrap_instead_of_widening_the_page(tmp_path: Path) -> None:
    a = analysis()
    long = "/" + "A" * 3000
    a.connections = a.connections.with_columns(
        pl.lit(long).alias("http_path"), pl.lit("u" * 500).alias("ssh_user"),
        pl.lit([long[:400]]).alias("candidate_vms"),
    )  # fmt: skip
    a.findings = [_Finding("allowlist_miss", "high", (long[:300],), ("139.219.8.21",), long, (long,))]
    dom = _Tree(_dump_dom(render_html(a, now=NOW), tmp_path, probe=True))  # type: ignore[arg-type]
    probe = json.loads(dom.by_id("probe").all_text())
    assert probe["scroll"] <= 1280 and probe["wide"] == [], probe


def test_addresses_tied_to_a_vm_or_held_by_the_inventory_get_a_node_the_rest_a_summary() -> None:
    a = analysis()
    extra = pl.DataFrame(
        {"src_ip": ["198.51.100.7", "198.51.100.8", "192.0.2.50"], "class": ["external", "external", "nat_gateway"],
         "via": [None, None, None], "resource": [None, None, "natgw1"], "candidate_vms": [[], [], []],
         "allowed": [False, False, None], "first_seen": [T0] * 3, "last_seen": [T0] * 3, "connections": [4, 1, 2]},
        schema_overrides={"candidate_vms": pl.List(pl.String), "via": pl.String, "allowed": pl.Boolean,
                          "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
                          "connections": pl.UInt32},
    )  # fmt: skip
    addresses = pl.concat([a.addresses, extra.select(a.addresses.columns).cast(dict(a.addresses.schema))])
    g = page_mod._graph(a, addresses, [incident(f, i) for i, f in enumerate(a.findings, 1)])  # type: ignore[arg-type]
    # 139.219.8.21 and 42.159.94.123 have candidate VMs, 40.125.161.55 (a frontend) and
    # 192.0.2.50 (a NAT gateway) are held by the inventory; the two external ones are not.
    assert sorted(r["src_ip"] for r in g.addresses) == ["139.219.8.21", "192.0.2.50", "40.125.161.55", "42.159.94.123"]
    assert [(s["class"], s["addresses"], s["connections"]) for s in g.summaries] == [("external", 2, 5)]
    assert {(p["vm"], p["src_ip"]) for p in g.pairs} == {("Test2VM", "139.219.8.21"), (XSS, "42.159.94.123"),
                                                         ("Test2VM", "40.125.161.55")}  # fmt: skip
    assert g.vms[0] == "Test2VM"  # the most connections first


def test_timeline_reads_naive_times_as_utc() -> None:
    conns = analysis().connections.with_columns(pl.col("ts").dt.replace_time_zone(None))
    t = timeline(conns)
    assert t is not None and t.start == T0 and int(t.counts["n"].sum()) == 4
