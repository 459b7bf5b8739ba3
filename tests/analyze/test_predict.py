"""analyze/predict.py: one test per decision-table row and per modifier (docs/azure-egress.md §1).

Every expectation below is read off the fixture and the table by hand: the fixture's comment
says which row it exercises, and the expected addresses are the ones written in it.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any, get_args

import hypothesis.strategies as st
import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_schema_equal

from analyze.cli import cli
from analyze.inventory import load
from analyze.inventory.build import Builder
from analyze.inventory.load import load_document
from analyze.predict import (
    BASIC_RETIRED,
    PREDICTION_SCHEMA,
    ROWS,
    Prediction,
    default_snat_ports,
    frame,
    predict,
)
from capture.errors import UsageError
from capture.schema import EgressClass

ROOT = Path(__file__).resolve().parents[2]
INV = ROOT / "tests" / "data" / "inventory"
ARTICLE = ROOT / "pcaps" / "inventory" / "article.yaml"

JSON_KEYS = [
    "vm", "nic", "ipconfig", "private_ip", "destination", "class", "via", "resource",
    "expected_ips", "row", "confidence", "reason", "fixes", "snat_ports", "family", "protocols",
    "paths",
]  # fmt: skip


def one(preds: list[Prediction], vm: str, ipconfig: str = "ipconfig1", nic: str | None = None) -> Prediction:
    hits = [p for p in preds if p.vm == vm and p.ipconfig == ipconfig and (nic is None or p.nic == nic)]
    assert len(hits) == 1, [(p.vm, p.nic, p.ipconfig) for p in preds]
    return hits[0]


# (fixture, vm, destination, class, via, expected_ips, row, confidence, snat_ports)
ROW_CASES: list[tuple[str, str, str | None, str, str | None, list[str], str, str, int | None]] = [
    ("row_A", "vm1", "10.0.1.5", "private", None, ["10.0.0.4"], "A", "documented", None),
    ("row_B", "vm1", "52.239.184.180", "private", None, ["10.0.0.4"], "B", "documented", None),
    ("row_C", "vm1", "10.1.0.10", "private", None, ["10.0.0.4"], "C", "inferred", None),
    ("row_C", "vm1", "192.168.7.1", "private", None, ["10.0.0.4"], "C", "inferred", None),
    ("row_C", "vm1", "10.0.200.1", "private", None, ["10.0.0.4"], "C", "inferred", None),
    ("row_1", "vm1", None, "firewall", None, ["20.0.1.1"], "1", "documented", None),
    ("row_2", "vm1", None, "forced_tunnel", None, [], "2", "documented", None),
    ("row_3", "vm1", None, "nat_gateway", None, ["20.0.0.10", "20.0.2.0/30"], "3", "documented", None),
    ("row_4", "vm1", None, "instance_public_ip", None, ["20.0.0.4"], "4", "documented", None),
    ("row_5", "vm1", None, "lb_frontend", "outbound_rule", ["20.1.2.4"], "5", "documented", 10000),
    ("row_5", "vm2", None, "lb_frontend", "outbound_rule", ["20.1.2.4"], "5", "documented", 10000),
    ("row_6", "vm1", None, "lb_frontend", "lb_rule", ["20.1.2.3"], "6", "documented", 1024),
    ("row_7", "vm1", None, "none", None, [], "7", "documented", None),
    ("row_7", "vm2", None, "none", None, [], "7", "documented", None),
    ("row_8", "vm1", None, "none", None, [], "8", "documented", None),
    ("row_8", "vm2", None, "none", None, [], "8", "documented", None),
    ("row_9", "vm1", None, "default_snat", None, [], "9", "documented", None),
    ("row_10", "Test2VM", None, "lb_frontend", "lb_rule", ["40.125.161.55"], "10", "documented", 1024),
    ("row_11", "Test2VM", None, "lb_frontend", "nat_rule", ["40.125.161.55"], "11", "empirical", 1024),
    ("row_12", "Test2VM", None, "default_snat", None, [], "12", "documented", None),
    ("row_13", "vm1", None, "default_snat", None, [], "13", "documented", None),
    ("row_14", "vm1", None, "default_snat", None, [], "14", "documented", None),
    ("row_15", "vm1", None, "none", None, [], "15", "documented", None),
    ("row_15", "vm2", None, "none", None, [], "15", "documented", None),
]


@pytest.mark.parametrize(
    ("fixture", "vm", "dest", "cls", "via", "ips", "row", "confidence", "snat"),
    ROW_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in ROW_CASES],
)
def test_decision_table_row(
    fixture: str, vm: str, dest: str | None, cls: str, via: str | None, ips: list[str],
    row: str, confidence: str, snat: int | None,
) -> None:  # fmt: skip
    inv = load([INV / "rows" / f"{fixture}.yaml"])
    assert inv.warnings == ()
    p = one(predict(inv, dest), vm)
    assert (p.egress_class, p.via, list(p.expected_ips), p.row, p.confidence, p.snat_ports) == (
        cls, via, ips, row, confidence, snat,
    )  # fmt: skip
    assert p.destination == dest


def test_decision_table_lists_every_row_once() -> None:
    from analyze.predict import DECISION_TABLE

    def expand(spec: str) -> list[str]:
        out: list[str] = []
        for part in spec.split(","):
            lo, _, hi = part.strip().partition("-")
            if hi and lo.isdigit():
                out += [str(i) for i in range(int(lo), int(hi) + 1)]
            elif hi:
                out += [chr(c) for c in range(ord(lo), ord(hi) + 1)]
            else:
                out.append(lo)
        return out

    listed = [row for spec, _, _ in DECISION_TABLE for row in expand(spec)]
    assert sorted(listed) == sorted(ROWS)


def test_every_row_has_a_case() -> None:
    assert {c[6] for c in ROW_CASES} | {c[7] for c in EGRESS_CASES} == set(ROWS)


@pytest.mark.parametrize(
    ("fixture", "expected_row"),
    [("row_A", "4"), ("row_B", "3"), ("row_C", "4")],
)
def test_private_rows_need_a_destination(fixture: str, expected_row: str) -> None:
    # Without --destination the same VM falls through to its internet egress.
    inv = load([INV / "rows" / f"{fixture}.yaml"])
    assert one(predict(inv), "vm1").row == expected_row


def test_destination_outside_private_ranges_is_internet_egress() -> None:
    inv = load([INV / "rows" / "row_B.yaml"])
    p = one(predict(inv, "52.239.1.1"), "vm1")  # AzureCloud, but not the Storage tag
    assert (p.egress_class, p.row, p.expected_ips) == ("nat_gateway", "3", ("20.0.0.10",))


def test_row_1_reason_names_route_table_and_firewall() -> None:
    p = one(predict(load([INV / "rows" / "row_1.yaml"])), "vm1")
    assert "rt-fw" in p.reason and "fw1" in p.reason and "10.2.0.4" in p.reason
    assert p.resource == "fw1"


def test_row_1_unknown_appliance_has_no_address() -> None:
    doc = yaml.safe_load((INV / "rows" / "row_1.yaml").read_text())
    doc.pop("firewalls")
    p = one(predict(_inv(doc)), "vm1")
    assert (p.egress_class, p.row, p.expected_ips, p.resource) == ("firewall", "1", (), "NVA 10.2.0.4")


def test_row_2_uses_effective_routes_and_ignores_invalid_ones() -> None:
    p = one(predict(load([INV / "rows" / "row_2.yaml"])), "vm1")
    assert "forced tunnelling" in p.reason and p.resource is None


def test_row_7_fixes_name_the_outbound_rule_and_nat_rule_limit() -> None:
    preds = predict(load([INV / "rows" / "row_7.yaml"]))
    vm1, vm2 = one(preds, "vm1"), one(preds, "vm2")
    assert "pool1" in vm1.reason and "lb1" in vm1.reason
    assert vm1.fixes[0] == "add an outbound rule on lb1 for backend pool pool1 on frontend fe-in"
    assert "inbound NAT rule" in vm2.reason
    assert "on Standard an inbound NAT rule gives no egress" in vm2.fixes[0]
    assert any("NAT gateway" in f and "vnet1/app" in f for f in vm2.fixes)


def test_row_6_prefers_explicit_outbound_rule() -> None:
    p = one(predict(load([INV / "rows" / "row_6.yaml"])), "vm1")
    assert "disableOutboundSnat=true" in p.fixes[0] and "pool1" in p.fixes[0]


@pytest.mark.parametrize("fixture", ["row_10", "row_11", "row_12", "row_13"])
def test_basic_fixes_say_retired_and_name_the_standard_equivalent(fixture: str) -> None:
    inv = load([INV / "rows" / f"{fixture}.yaml"])
    p = predict(inv)[0]
    assert p.fixes[0].startswith(BASIC_RETIRED)
    assert "Standard" in p.fixes[0]
    assert "2025-09-30" in BASIC_RETIRED


def test_row_11_cites_the_2018_test() -> None:
    p = one(predict(load([INV / "rows" / "row_11.yaml"])), "Test2VM")
    assert "2018 Azure China test" in p.reason and "no Microsoft document" in p.reason
    assert any("on Standard an inbound NAT rule gives no egress" in f for f in p.fixes)


def test_row_15_reasons() -> None:
    preds = predict(load([INV / "rows" / "row_15.yaml"]))
    assert "defaultOutboundAccess=false" in one(preds, "vm1").reason
    assert "Flexible scale set flex" in one(preds, "vm2").reason


# --- modifiers (§1.2) ----------------------------------------------------------------------


def test_group_rule_availability_set_with_standard_member() -> None:
    preds = predict(load([INV / "modifiers" / "group_rule.yaml"]))
    vm1, vm2, vm3 = one(preds, "vm1"), one(preds, "vm2"), one(preds, "vm3")
    assert (vm1.egress_class, vm1.row) == ("lb_frontend", "5")
    assert (vm2.egress_class, vm2.row, vm2.modifiers) == ("none", "7", ("group_rule",))
    assert "availability set as1" in vm2.reason and "VM vm1" in vm2.reason
    assert (vm3.egress_class, vm3.row) == ("default_snat", "14")  # standalone: untouched


def test_group_rule_standard_internal() -> None:
    vm2 = one(predict(load([INV / "rows" / "row_8.yaml"])), "vm2")
    assert vm2.modifiers == ("group_rule",)


def test_standard_rule_protocol_limits_snat() -> None:
    preds = predict(load([INV / "modifiers" / "protocol.yaml"]))
    std, basic = one(preds, "vm1"), one(preds, "vm2")
    assert std.protocols == ("udp",) and "udp_only" in std.modifiers and "UDP" in std.reason
    assert basic.protocols == ("tcp", "udp")  # Basic SNATs both, whatever the rule says
    tcp = one(predict(load([INV / "rows" / "row_6.yaml"])), "vm1")
    assert tcp.protocols == ("tcp",) and "tcp_only" in tcp.modifiers


def test_several_frontends_give_several_candidates() -> None:
    p = one(predict(load([INV / "modifiers" / "multiple_frontends.yaml"])), "vm1")
    assert p.expected_ips == ("20.1.2.3", "20.1.2.5")
    assert "multiple_frontends" in p.modifiers
    assert p.resource == "lb1/fe-a, lb1/fe-b"


def test_secondary_ipconfig_gets_no_lb_outbound() -> None:
    preds = predict(load([INV / "modifiers" / "secondary.yaml"]))
    first, second = one(preds, "vm1", "ipconfig1"), one(preds, "vm1", "ipconfig2")
    assert (first.egress_class, first.row) == ("lb_frontend", "10")
    assert (second.egress_class, second.row, second.confidence) == ("default_snat", "12", "inferred")
    assert second.modifiers == ("secondary_ipconfig",)


def test_multi_nic_public_ip_turns_off_default_outbound_for_the_vm() -> None:
    preds = predict(load([INV / "modifiers" / "multi_nic.yaml"]))
    back = one(preds, "vm1", nic="vm1-back")
    front = one(preds, "vm1", nic="vm1-front")
    assert (back.egress_class, back.row, back.confidence, back.modifiers) == (
        "none", "15", "inferred", ("multi_nic",),
    )  # fmt: skip
    assert front.expected_ips == ("20.0.0.4",)


def test_missing_references_warn_and_lower_confidence() -> None:
    inv = load([INV / "modifiers" / "missing.yaml"])
    assert len(inv.warnings) == 2
    assert any("NAT gateway ngw-elsewhere" in w and "not loaded" in w for w in inv.warnings)
    assert any("backend pool pool1" in w and "otherlb" in w for w in inv.warnings)
    preds = predict(inv)
    vm1, vm2 = one(preds, "vm1"), one(preds, "vm2")
    assert (vm1.egress_class, vm1.expected_ips, vm1.confidence) == ("nat_gateway", (), "inferred")
    assert "Not loaded: NAT gateway ngw-elsewhere" in vm1.reason
    assert vm2.confidence == "inferred" and "otherlb/pool1" in vm2.reason


# --- SNAT ports (§2) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ports"),
    [(1, 1024), (50, 1024), (51, 512), (100, 512), (101, 256), (200, 256), (201, 128),
     (400, 128), (401, 64), (800, 64), (801, 32), (1000, 32), (1001, None)],
)  # fmt: skip
def test_default_snat_port_table(size: int, ports: int | None) -> None:
    assert default_snat_ports(size) == ports


def _pool_inventory(n_vms: int, *, outbound_ports: int | None, frontends: int = 1) -> dict[str, Any]:
    fes = [{"name": f"fe{i}", "public_ip": f"20.1.2.{i + 1}"} for i in range(frontends)]
    lb: dict[str, Any] = {
        "name": "lb1", "sku": "Standard", "frontends": fes,
        "pools": [{"name": "pool1", "members": [f"vm{i}" for i in range(n_vms)]}],
    }  # fmt: skip
    if outbound_ports is None:
        lb["rules"] = [
            {"name": f"r{i}", "frontend": f"fe{i}", "pool": "pool1", "protocol": "Tcp"}
            for i in range(frontends)
        ]
    else:
        lb["outbound_rules"] = [
            {"name": "egress", "frontends": ["fe0"], "pool": "pool1",
             "allocated_outbound_ports": outbound_ports}
        ]  # fmt: skip
    return {
        "vnets": [{"name": "v", "address_space": ["10.0.0.0/16"],
                   "subnets": [{"name": "s", "prefix": "10.0.0.0/16"}]}],
        "load_balancers": [lb],
        "vms": [{"name": f"vm{i}", "private_ip": f"10.0.{i // 250}.{i % 250 + 4}", "subnet": "v/s"}
                for i in range(n_vms)],
    }  # fmt: skip


def _inv(doc: dict[str, Any]) -> Any:
    builder = Builder()
    load_document(doc, "test.yaml", "test", builder)
    return builder.finish()


@pytest.mark.parametrize(
    ("n_vms", "outbound_ports", "frontends", "expected"),
    [
        (60, 0, 1, 512),  # allocatedOutboundPorts 0: the default table by pool size
        (60, 8000, 1, 8000),  # explicit allocation wins
        (60, None, 1, 512),  # implicit SNAT, one frontend: the table
        (60, None, 2, 1024),  # per frontend, up to 1024 (2024 text, §2.1)
        (150, None, 2, 512),
        (150, None, 3, 768),
    ],
)
def test_snat_ports_per_ipconfig(n_vms: int, outbound_ports: int | None, frontends: int, expected: int) -> None:
    preds = predict(_inv(_pool_inventory(n_vms, outbound_ports=outbound_ports, frontends=frontends)))
    assert {p.snat_ports for p in preds} == {expected}


# --- the article's three cases ([R17]) ------------------------------------------------------


def _article(**lb_extra: Any) -> dict[str, Any]:
    doc = yaml.safe_load(ARTICLE.read_text())
    doc["load_balancers"][0].update(copy.deepcopy(lb_extra))
    return doc


def test_article_pool_only_is_default_snat_not_allowed() -> None:
    inv = load([ARTICLE])
    assert inv.warnings == ()
    preds = predict(inv, allowlist=inv.allowlist("web-app"))
    t2 = one(preds, "Test2VM")
    assert (t2.egress_class, t2.row, t2.expected_ips, t2.allowed) == ("default_snat", "12", (), False)
    assert "40.125.161.55" in t2.reason and "mylb" in t2.reason and "mybackendpool" in t2.reason
    assert "outbound rule" in t2.fixes[0] and "retired" in t2.fixes[0]
    lbvm = one(preds, "lbvm")
    assert (lbvm.egress_class, lbvm.expected_ips, lbvm.allowed) == (
        "instance_public_ip", ("42.159.94.123",), False,
    )  # fmt: skip
    assert lbvm.fixes[-1] == "add 42.159.94.123 to allowlist web-app"


def test_article_inbound_nat_rule_gives_frontend_allowed() -> None:
    doc = _article(nat_rules=[{"name": "ssh", "frontend": "LoadBalancerFrontEnd", "target": "Test2VM",
                               "protocol": "Tcp", "frontend_port": 50001, "backend_port": 22}])  # fmt: skip
    inv = _inv(doc)
    t2 = one(predict(inv, allowlist=inv.allowlist("web-app")), "Test2VM")
    assert (t2.egress_class, t2.via, t2.expected_ips, t2.allowed, t2.confidence) == (
        "lb_frontend", "nat_rule", ("40.125.161.55",), True, "empirical",
    )  # fmt: skip


def test_article_lb_rule_with_failing_probe_gives_frontend_allowed() -> None:
    doc = _article(
        probes=[{"name": "myhealthprobe", "protocol": "Tcp", "port": 80, "healthy": False}],
        rules=[{"name": "http", "frontend": "LoadBalancerFrontEnd", "pool": "mybackendpool",
                "protocol": "Tcp", "frontend_port": 80, "backend_port": 80, "probe": "myhealthprobe"}],
    )  # fmt: skip
    inv = _inv(doc)
    t2 = one(predict(inv, allowlist=inv.allowlist("web-app")), "Test2VM")
    assert (t2.egress_class, t2.via, t2.expected_ips, t2.allowed, t2.row) == (
        "lb_frontend", "lb_rule", ("40.125.161.55",), True, "10",
    )  # fmt: skip
    assert "myhealthprobe is failing" in t2.reason


# --- az CLI and ARM JSON give the same predictions ------------------------------------------

# row -> [(vm, class, via, expected_ips, row, confidence, snat)]; the JSON fixtures carry the
# NAT gateway's public IP only (no prefix), otherwise the same resources as rows/*.yaml.
JSON_CASES: dict[str, list[tuple[str, str, str | None, list[str], str, str, int | None]]] = {
    "3": [("vm1", "nat_gateway", None, ["20.0.0.10"], "3", "documented", None)],
    "4": [("vm1", "instance_public_ip", None, ["20.0.0.4"], "4", "documented", None)],
    "5": [("vm1", "lb_frontend", "outbound_rule", ["20.1.2.4"], "5", "documented", 10000),
          ("vm2", "lb_frontend", "outbound_rule", ["20.1.2.4"], "5", "documented", 10000)],
    "6": [("vm1", "lb_frontend", "lb_rule", ["20.1.2.3"], "6", "documented", 1024)],
    "7": [("vm1", "none", None, [], "7", "documented", None),
          ("vm2", "none", None, [], "7", "documented", None)],
    "10": [("Test2VM", "lb_frontend", "lb_rule", ["40.125.161.55"], "10", "documented", 1024)],
    "11": [("Test2VM", "lb_frontend", "nat_rule", ["40.125.161.55"], "11", "empirical", 1024)],
    "12": [("Test2VM", "default_snat", None, [], "12", "documented", None)],
}  # fmt: skip


@pytest.mark.parametrize("shape", ["az", "arm"])
@pytest.mark.parametrize("row", sorted(JSON_CASES, key=int))
def test_json_shapes(shape: str, row: str) -> None:
    inv = load([INV / shape / f"row_{row}.json"])
    assert inv.warnings == ()
    preds = predict(inv)
    got = [
        (p.vm, p.egress_class, p.via, list(p.expected_ips), p.row, p.confidence, p.snat_ports)
        for p in preds
    ]
    assert got == JSON_CASES[row]


def test_mixed_casing_and_upper_case_ids() -> None:
    inv = load([INV / "mixed_casing.json"])
    assert inv.warnings == ()
    preds = predict(inv)
    vm1, vm2 = one(preds, "VM1"), one(preds, "vm2")
    assert (vm1.egress_class, vm1.row, vm1.expected_ips, vm1.protocols) == (
        "lb_frontend", "6", ("20.1.2.3",), ("tcp",),
    )  # fmt: skip
    assert (vm2.egress_class, vm2.expected_ips) == ("instance_public_ip", ("20.0.0.5",))


def test_exported_template() -> None:
    inv = load([INV / "exported_template.json"])
    assert inv.warnings == ()
    p = one(predict(inv), "vm1")
    # allocatedOutboundPorts 0 -> default table, pool of 1 -> 1024
    assert (p.egress_class, p.via, p.expected_ips, p.row, p.snat_ports) == (
        "lb_frontend", "outbound_rule", ("20.1.2.4",), "5", 1024,
    )  # fmt: skip


# --- API surface ------------------------------------------------------------------------------


def test_frame_keys_are_exactly_the_json_keys() -> None:
    inv = load([ARTICLE])
    df = frame(predict(inv))
    assert df.columns == JSON_KEYS
    assert_schema_equal(df.schema, PREDICTION_SCHEMA)
    with_allowed = frame(predict(inv, allowlist=inv.allowlist("web-app")), with_allowed=True)
    assert with_allowed.columns == [*JSON_KEYS, "allowed"]
    assert with_allowed.get_column("allowed").to_list() == [False, False]


def test_bad_destination_and_unknown_vm_are_usage_errors() -> None:
    inv = load([ARTICLE])
    with pytest.raises(UsageError, match="not an IP address: 'nope'"):
        predict(inv, "nope")
    with pytest.raises(UsageError, match="no such VM"):
        predict(inv, vm="ghost")
    assert [p.vm for p in predict(inv, vm="test2vm")] == ["Test2VM"]


def test_allowed_is_unknown_when_a_service_tag_rule_cannot_be_resolved() -> None:
    doc = yaml.safe_load((INV / "rows" / "row_6.yaml").read_text())
    doc["allowlists"] = [{"name": "paas", "entries": ["AzureCloud"]}]
    inv = _inv(doc)
    assert one(predict(inv, allowlist=inv.allowlist("paas")), "vm1").allowed is None
    doc["service_tags"] = [{"name": "AzureCloud", "prefixes": ["20.0.0.0/8"]}]
    inv = _inv(doc)
    assert one(predict(inv, allowlist=inv.allowlist("paas")), "vm1").allowed is True


# --- property: every ipconfig gets exactly one prediction ------------------------------------

_names = st.sampled_from(["a", "b", "c"])


@st.composite
def inventories(draw: st.DrawFn) -> dict[str, Any]:
    n_vms = draw(st.integers(1, 6))
    subnets = [
        {"name": f"s{i}", "prefix": f"10.0.{i}.0/24", "prefixes": [f"fd00:0:0:{i}::/64"],
         **({"nat_gateway": "ngw"} if draw(st.booleans()) and i == 0 else {}),
         **({"route_table": "rt"} if draw(st.booleans()) and i == 1 else {}),
         **({"default_outbound_access": draw(st.booleans())} if draw(st.booleans()) else {})}
        for i in range(3)
    ]  # fmt: skip
    lbs = []
    for j in range(draw(st.integers(0, 2))):
        public = draw(st.booleans())
        fe = {"name": "fe", "public_ip": f"20.0.{j}.1"} if public else {
            "name": "fe", "private_ip": f"10.0.2.{200 + j}", "subnet": "v/s2"}
        members = draw(st.lists(st.integers(0, n_vms - 1), max_size=n_vms, unique=True))
        lb: dict[str, Any] = {
            "name": f"lb{j}", "sku": draw(st.sampled_from(["Basic", "Standard"])),
            "frontends": [fe],
            "pools": [{"name": "p", "members": [f"vm{m}" for m in members]},
                      {"name": "ip", "addresses": [f"10.0.0.{4 + m}" for m in members[:1]]}],
        }  # fmt: skip
        if draw(st.booleans()):
            lb["rules"] = [{"name": "r", "frontend": "fe", "pool": "p",
                            "protocol": draw(st.sampled_from(["Tcp", "Udp", "All"])),
                            "disable_outbound_snat": draw(st.booleans())}]  # fmt: skip
        if draw(st.booleans()) and n_vms:
            lb["nat_rules"] = [{"name": "n", "frontend": "fe", "target": f"vm{draw(st.integers(0, n_vms - 1))}"}]
        if draw(st.booleans()) and public:
            lb["outbound_rules"] = [{"name": "o", "frontends": ["fe"], "pool": "p",
                                     "allocated_outbound_ports": draw(st.sampled_from([0, 1024]))}]  # fmt: skip
        lbs.append(lb)
    vms = []
    for i in range(n_vms):
        nics = []
        for k in range(draw(st.integers(1, 2))):
            ipcs = [
                {"name": f"ip{c}", "private_ip": f"10.0.{k}.{4 + i * 4 + c}", "subnet": f"v/s{k}",
                 **({"public_ip": f"52.0.{i}.{k * 4 + c + 1}"} if draw(st.booleans()) else {})}
                for c in range(draw(st.integers(1, 2)))
            ]  # fmt: skip
            if draw(st.booleans()):  # a dual-stack NIC: its IPv6 ipconfig is secondary
                ipcs.append({"name": "ip6", "primary": False, "private_ip": f"fd00:0:0:{k}::{i + 4}",
                             "subnet": f"v/s{k}",
                             **({"public_ip": f"2001:db8:{i}::{k + 1}"} if draw(st.booleans()) else {})})  # fmt: skip
            nic: dict[str, Any] = {"name": f"vm{i}-nic{k}", "ipconfigs": ipcs}
            forwarding = draw(st.sampled_from([None, True, False]))
            if forwarding is not None:
                nic["ip_forwarding"] = forwarding
            nics.append(nic)
        vm: dict[str, Any] = {"name": f"vm{i}", "nics": nics}
        group = draw(st.sampled_from([None, "as1", "ss"]))
        if group == "as1":
            vm["availability_set"] = "as1"
        elif group == "ss":
            vm["scale_set"] = "ss"
        vms.append(vm)
    return {
        "vnets": [{"name": "v", "address_space": ["10.0.0.0/16"], "subnets": subnets}],
        "nat_gateways": [{"name": "ngw", "sku": draw(st.sampled_from(["Standard", "StandardV2"])),
                          "public_ips": ["20.9.9.9", "2001:db8:9::9"]}],
        "route_tables": [{"name": "rt", "routes": [
            {"prefix": prefix, "next_hop": draw(st.sampled_from(["VirtualAppliance", "Internet"])),
             "next_hop_ip": draw(st.sampled_from(["10.0.2.4", "10.0.0.4"]))}
            for prefix in draw(st.sampled_from([["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"]]))]}],
        "scale_sets": [{"name": "ss", "orchestration": draw(st.sampled_from(["Uniform", "Flexible"]))}],
        "load_balancers": lbs,
        "vms": vms,
        "allowlists": [{"name": "al", "entries": ["20.0.0.0/16"]}],
    }  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=inventories(), dest=st.sampled_from([None, "10.0.1.9", "8.8.8.8", "2001:db8:ffff::9"]))
def test_every_ipconfig_gets_exactly_one_prediction(doc: dict[str, Any], dest: str | None) -> None:
    inv = _inv(doc)
    preds = predict(inv, dest, allowlist=inv.allowlist("al"))
    assert sorted(p.ipconfig_id for p in preds) == sorted(inv.ipconfigs)
    for p in preds:
        assert p.egress_class in get_args(EgressClass)
        assert p.row in ROWS
        assert p.reason.endswith(".") or "partly a guess" in p.reason
        if p.egress_class in ("default_snat", "none", "forced_tunnel"):
            assert p.expected_ips == ()
        if p.egress_class == "default_snat":
            assert p.allowed is False
        if p.egress_class != "private":
            assert all(ipaddress.ip_network(a).version == p.family for a in p.expected_ips), p
        assert set(p.protocols) >= {proto for proto, _ in p.paths}
        for ip in p.expected_ips:
            ipaddress.ip_network(ip)
    df = frame(preds, with_allowed=True)
    assert df.height == len(inv.ipconfigs)


# --- CLI --------------------------------------------------------------------------------------


def test_cli_predict_prints_the_article_diagnosis() -> None:
    result = CliRunner().invoke(cli, ["predict", "--inventory", str(ARTICLE), "--allowlist", "web-app"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    first_row = out.splitlines()[1].split()
    assert first_row[:2] == ["Test2VM", "default_snat"]  # problems first
    assert "not to mylb's frontend LoadBalancerFrontEnd (40.125.161.55)" in out
    assert "fix: " + BASIC_RETIRED in out


def test_cli_predict_json_keys_and_allowlist_file(tmp_path: Path) -> None:
    allow = tmp_path / "lb.txt"
    allow.write_text("40.125.161.55\n")
    result = CliRunner().invoke(
        cli, ["predict", "--inventory", str(INV / "rows" / "row_10.yaml"), "--format", "json",
              "--allowlist", str(allow)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and list(rows[0]) == [*JSON_KEYS, "allowed"]
    assert rows[0]["allowed"] is True and rows[0]["expected_ips"] == ["40.125.161.55"]
    assert rows[0]["class"] == "lb_frontend" and rows[0]["row"] == "10"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_predict_writes_files(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"p.{fmt}"
    result = CliRunner().invoke(cli, ["predict", "--inventory", str(ARTICLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    df = pl.read_csv(out) if fmt == "csv" else pl.read_parquet(out)
    assert df.columns == JSON_KEYS and df.height == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--allowlist", "nope"], "--allowlist 'nope': no such allowlist or file (web-app)"),
        (["--destination", "300.1.1.1"], "not an IP address"),
        (["--vm", "ghost"], "no such VM"),
    ],
)
def test_cli_predict_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["predict", "--inventory", str(ARTICLE), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_cli_predict_bad_inventory_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(cli, ["predict", "--inventory", str(INV / "broken" / "bad_ip.yaml")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: {INV / 'broken' / 'bad_ip.yaml'}: $.vms[1].private_ip: not an IP address: '10.0.0.999'"]


def test_nat_gateway_on_the_firewall_subnet_takes_the_firewalls_egress() -> None:
    doc = yaml.safe_load((INV / "rows" / "row_1.yaml").read_text())
    doc["vnets"][1]["subnets"][0]["nat_gateway"] = "ngw-hub"
    doc["nat_gateways"].append({"name": "ngw-hub", "public_ips": ["20.0.3.3"]})
    p = one(predict(_inv(doc)), "vm1")
    assert (p.egress_class, p.row, p.expected_ips, p.resource) == ("firewall", "1", ("20.0.3.3",), "fw1")
    assert "ngw-hub" in p.reason


def test_secondary_ipconfig_of_a_standard_member_has_no_egress() -> None:
    doc = yaml.safe_load((INV / "modifiers" / "secondary.yaml").read_text())
    doc["load_balancers"][0]["sku"] = "Standard"
    preds = predict(_inv(doc))
    first, second = one(preds, "vm1", "ipconfig1"), one(preds, "vm1", "ipconfig2")
    assert (first.row, first.expected_ips) == ("6", ("40.125.161.55",))
    assert (second.egress_class, second.row, second.confidence) == ("none", "7", "inferred")
    assert "secondary ipconfig" in second.reason


def test_basic_member_behind_a_nat_gateway_is_flagged() -> None:
    doc = yaml.safe_load((INV / "rows" / "row_10.yaml").read_text())
    doc["vnets"][0]["subnets"][0]["nat_gateway"] = "ngw"
    doc["nat_gateways"] = [{"name": "ngw", "public_ips": ["20.0.0.10"]}]
    p = one(predict(_inv(doc)), "Test2VM")
    assert (p.egress_class, p.expected_ips) == ("nat_gateway", ("20.0.0.10",))
    assert "cannot be used with a NAT gateway" in p.fixes[0]


def test_service_tags_from_yaml_and_json_combine() -> None:
    inv = load([INV / "rows" / "row_B.yaml", INV / "ServiceTags_Public_20260105.json"])
    assert inv.service_tags.height == 2 + 6
    assert inv.tags_containing("13.68.120.65") == {"azurecloud", "azurecloud.eastus2", "storage.eastus2"}
    # the JSON file's Storage.eastus2 prefix also counts for the service endpoint (row B)
    assert one(predict(inv, "13.68.120.65"), "vm1").row == "B"


def test_cli_predict_refuses_a_folder_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["predict", "--inventory", str(ARTICLE), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "predictions go to a file, not a folder" in result.output


def test_basic_inbound_nat_pool_is_row_11_inferred() -> None:
    doc = yaml.safe_load((INV / "rows" / "row_11.yaml").read_text())
    lb = doc["load_balancers"][0]
    del lb["nat_rules"]
    lb["nat_pools"] = [{"name": "ssh-pool", "frontend": "LoadBalancerFrontEnd", "protocol": "Tcp",
                        "frontend_port_range": [50000, 50099], "backend_port": 22}]  # fmt: skip
    vm = doc["vms"][0]
    vm["nics"] = [{"name": "t-nic", "ipconfigs": [{"name": "ipconfig1", "private_ip": vm.pop("private_ip"),
                   "subnet": vm.pop("subnet"), "nat_pools": ["mylb/ssh-pool"]}]}]  # fmt: skip
    lb["pools"] = [{"name": "mybackendpool", "members": ["t-nic/ipconfig1"]}]
    p = one(predict(_inv(doc)), "Test2VM")
    assert (p.egress_class, p.via, p.row, p.confidence, p.expected_ips) == (
        "lb_frontend", "nat_rule", "11", "inferred", ("40.125.161.55",),
    )  # fmt: skip
    assert "inbound NAT pool ssh-pool" in p.reason


# --- second pass: families, routes, appliances, protocols, regions (issue 13) ----------------

EGRESS = INV / "egress"

# (fixture, vm, ipconfig, destination, class, via, expected_ips, row, modifiers)
EGRESS_CASES: list[tuple[str, str, str, str | None, str, str | None, list[str], str, tuple[str, ...]]] = [
    # IPv6: a Standard NAT gateway is IPv4 only, and IPv6 has no default outbound access.
    ("row_16", "vm1", "ipconfig1", None, "nat_gateway", None, ["20.0.0.10"], "3", ()),
    ("row_16", "vm1", "ipconfig-v6", None, "none", None, [], "16", ()),
    ("row_16", "vm2", "ipconfig-v6", None, "instance_public_ip", None, ["2001:db8:4::4"], "4", ()),
    ("row_16", "vm2", "ipconfig1", None, "default_snat", None, [], "14", ()),
    # A destination of the other family is not this ipconfig's traffic.
    ("dual_stack_tutorial", "vm-1", "ipconfig-ipv4", "2001:db8:ffff::1", "none", None, [], "20", ()),
    ("dual_stack_tutorial", "vm-1", "ipconfig-ipv6", "2001:db8:ffff::1", "lb_frontend", "outbound_rule",
     ["2001:db8:100::10"], "5", ("ipv6_secondary",)),
    # Split default routes to an NVA beat the NAT gateway and a 0.0.0.0/0 -> Internet route.
    ("appliances", "vm1", "ipconfig1", None, "firewall", None, ["20.0.5.5"], "17", ()),
    ("appliances", "vm2", "ipconfig1", None, "firewall", None, ["20.0.6.6"], "17", ("ip_forwarding_assumed",)),
    ("appliances", "vm3", "ipconfig1", None, "none", None, [], "18", ()),
    ("appliances", "vm4", "ipconfig1", None, "forced_tunnel", None, [], "19", ()),
    ("appliances", "vm5", "ipconfig1", None, "firewall", None, ["20.0.2.2"], "1", ()),
    # The NVA's own ipconfig is predicted like any other.
    ("appliances", "nva2", "ipconfig1", None, "nat_gateway", None, ["20.0.6.6"], "3", ()),
    # Service endpoints by region: Storage covers West Europe and its pair North Europe.
    ("service_endpoints", "vm1", "ipconfig1", "52.239.1.9", "private", None, ["10.0.0.4"], "B", ()),
    ("service_endpoints", "vm1", "ipconfig1", "52.239.2.9", "private", None, ["10.0.0.4"], "B", ()),
    ("service_endpoints", "vm1", "ipconfig1", "52.239.3.9", "firewall", None, ["20.0.9.9"], "17", ()),
    ("service_endpoints", "vm2", "ipconfig1", "52.239.3.9", "private", None, ["10.0.1.4"], "B", ()),
    ("service_endpoints", "vm3", "ipconfig1", "52.239.4.9", "private", None, ["10.0.2.4"], "B", ()),
    ("service_endpoints", "vm3", "ipconfig1", "52.239.1.9", "default_snat", None, [], "14", ()),
    # VNet-level StandardV2 NAT gateway, per family; Flexible scale set members.
    ("scale_sets_and_vnet_nat", "vm1", "ipconfig1", None, "nat_gateway", None, ["20.0.0.20"], "3",
     ("vnet_nat_gateway",)),
    ("scale_sets_and_vnet_nat", "vm1", "ipconfig-v6", None, "nat_gateway", None, ["2001:db8:20::20"], "3",
     ("vnet_nat_gateway",)),
    ("scale_sets_and_vnet_nat", "vm2", "ipconfig1", None, "default_snat", None, [], "14", ("flex_added",)),
    ("scale_sets_and_vnet_nat", "vm3", "ipconfig1", None, "none", None, [], "15", ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fixture", "vm", "ipconfig", "dest", "cls", "via", "ips", "row", "mods"),
    EGRESS_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in EGRESS_CASES],
)
def test_second_pass_rows_native(
    fixture: str, vm: str, ipconfig: str, dest: str | None, cls: str, via: str | None,
    ips: list[str], row: str, mods: tuple[str, ...],
) -> None:  # fmt: skip
    inv = load([EGRESS / f"{fixture}.yaml"])
    assert inv.warnings == ()
    p = one(predict(inv, dest), vm, ipconfig)
    assert (p.egress_class, p.via, list(p.expected_ips), p.row, p.modifiers) == (cls, via, ips, row, mods)


def test_dual_stack_tutorial() -> None:
    """Microsoft's tutorial: NAT gateway for IPv4, an LB outbound rule on an IPv6 frontend for IPv6."""
    preds = predict(load([EGRESS / "dual_stack_tutorial.yaml"]))
    v4, v6 = one(preds, "vm-1", "ipconfig-ipv4"), one(preds, "vm-1", "ipconfig-ipv6")
    assert (v4.egress_class, v4.expected_ips, v4.row, v4.family) == ("nat_gateway", ("20.0.0.10",), "3", 4)
    assert (v6.egress_class, v6.via, v6.expected_ips, v6.row, v6.family) == (
        "lb_frontend", "outbound_rule", ("2001:db8:100::10",), "5", 6,
    )  # fmt: skip
    assert v6.confidence == "documented"  # outbound rules take IPv6 secondary ipconfigs


def test_ipv6_rows_never_give_an_ipv4_address() -> None:
    for fixture in ("row_16", "dual_stack_tutorial", "scale_sets_and_vnet_nat"):
        for p in predict(load([EGRESS / f"{fixture}.yaml"])):
            assert all(ipaddress.ip_network(a).version == p.family for a in p.expected_ips), p


def test_split_routes_name_both_halves() -> None:
    p = one(predict(load([EGRESS / "appliances.yaml"])), "vm1")
    assert "0.0.0.0/1, 128.0.0.0/1" in p.reason and "nva1" in p.reason
    assert p.resource == "nva1"


def test_split_routes_covering_part_of_the_internet_say_so() -> None:
    doc = yaml.safe_load((EGRESS / "appliances.yaml").read_text())
    rt = next(r for r in doc["route_tables"] if r["name"] == "rt-split")
    rt["routes"] = [r for r in rt["routes"] if r["name"] != "high"]  # only 0.0.0.0/1 to the NVA
    p = one(predict(_inv(doc)), "vm1")
    # 0.0.0.0/1 holds the larger share of public IPv4 (10/8 and 100.64/10 are below, but
    # 172.16/12, 192.168/16 and 224/3 above): the NVA still carries most of it.
    assert (p.egress_class, p.row, p.modifiers) == ("firewall", "17", ("split_routes",))
    assert "of it; give --destination" in p.reason
    # To an address above 128.0.0.0 the 0.0.0.0/0 -> Internet route wins: the NAT gateway.
    q = one(predict(_inv(doc), "198.51.100.7"), "vm1")
    assert (q.egress_class, q.expected_ips) == ("nat_gateway", ("20.0.0.10",))


def test_forwarding_off_says_so_in_the_fix() -> None:
    p = one(predict(load([EGRESS / "appliances.yaml"])), "vm3")
    assert "IP forwarding is off on NIC nva3-nic" in p.reason
    assert p.fixes and "enableIPForwarding=true" in p.fixes[0]


def test_appliance_chain_and_forwarding_warning_in_the_reason() -> None:
    p = one(predict(load([EGRESS / "appliances.yaml"])), "vm2")
    assert "which is nva2 (nva2-nic/ipconfig1); its own egress: Subnet hub/egress uses NAT gateway" in p.reason
    assert "IP forwarding on NIC nva2-nic is not given: assumed on." in p.reason


def test_routing_loop_between_appliances_is_no_egress() -> None:
    doc = yaml.safe_load((EGRESS / "appliances.yaml").read_text())
    # nva1's own subnet now routes everything back to nva2, whose subnet routes to nva1.
    doc["vnets"][1]["subnets"][0]["route_table"] = "rt-nva2"
    doc["vnets"][1]["subnets"][1]["route_table"] = "rt-split"
    doc["vnets"][1]["subnets"][1].pop("nat_gateway")
    p = one(predict(_inv(doc)), "vm1")
    assert p.egress_class == "none" and "routing_loop" in p.modifiers


def test_azure_firewall_does_not_snat_private_ranges() -> None:
    inv = load([EGRESS / "appliances.yaml"])
    p = one(predict(inv, "172.20.0.9"), "vm5")  # RFC 1918, reached through fw2
    assert (p.egress_class, p.expected_ips, p.modifiers) == ("private", ("10.0.4.4",), ("firewall_no_snat",))
    q = one(predict(inv, "198.51.100.7"), "vm5")
    assert q.expected_ips == ("20.0.2.2",)


def test_service_endpoint_destination_stays_private_despite_routes() -> None:
    # vm1's subnet sends 0.0.0.0/0 to an NVA; its Storage service endpoint still wins.
    p = one(predict(load([EGRESS / "service_endpoints.yaml"]), "52.239.1.9"), "vm1")
    assert (p.egress_class, p.row) == ("private", "B")
    assert "service tag storage.westeurope" in p.reason


def test_protocol_per_frontend_paths_and_allowed_for_tcp() -> None:
    inv = load([EGRESS / "protocol_per_frontend.yaml"])
    preds = predict(inv, allowlist=inv.allowlist("web"))
    for vm, row, tcp, udp in (("vm1", "6", "20.1.2.3", "20.1.2.5"), ("vm2", "5", "20.1.3.3", "20.1.3.5")):
        p = one(preds, vm)
        assert p.row == row and "protocol_per_frontend" in p.modifiers
        assert (p.expected_for("tcp"), p.expected_for("udp"), p.expected_for("icmp")) == ((tcp,), (udp,), ())
        assert p.allowed is True  # a TCP connection is judged against the TCP path
        assert p.allowed_by_protocol == (("tcp", True), ("udp", False))
        assert not any("to allowlist" in f for f in p.fixes)


def test_frame_carries_family_protocols_and_paths() -> None:
    preds = predict(load([EGRESS / "protocol_per_frontend.yaml"]))
    row = frame(preds).filter(pl.col("vm") == "vm1").row(0, named=True)
    assert row["family"] == 4 and row["protocols"] == ["tcp", "udp"]
    assert row["paths"] == [{"protocol": "tcp", "ips": ["20.1.2.3"]}, {"protocol": "udp", "ips": ["20.1.2.5"]}]


# The same rows from az CLI (flattened) and ARM (``properties``) JSON, in mixed key casing
# and upper-case ids; tests/data/inventory/egress/*.json were written by hand for this.
# (files, vm, ipconfig, destination, class, expected_ips, row, modifiers)
JSON_EGRESS_CASES: list[tuple[tuple[str, ...], str, str, str | None, str, list[str], str, tuple[str, ...]]] = [
    (("families.arm.json",), "vm-1", "ipconfig-ipv4", None, "nat_gateway", ["20.0.0.10"], "3", ()),
    (("families.arm.json",), "vm-1", "ipconfig-ipv6", None, "lb_frontend", ["2001:db8:100::10"], "5", ("ipv6_secondary",)),
    (("families.arm.json",), "vm-1", "ipconfig-ipv4", "2001:db8:ffff::1", "none", [], "20", ()),
    (("families.arm.json",), "vm-3", "ipconfig-v6", None, "none", [], "16", ()),
    (("families.arm.json",), "vm-2", "ipconfig1", None, "nat_gateway", ["20.0.0.20"], "3", ("vnet_nat_gateway",)),
    (("families.arm.json",), "vm-2", "ipconfig-v6", None, "nat_gateway", ["2001:db8:20::20"], "3", ("vnet_nat_gateway",)),
    (("appliances.az.json",), "vm1", "ipconfig1", None, "firewall", ["20.0.5.5"], "17", ()),
    (("appliances.az.json",), "vm2", "ipconfig1", None, "firewall", ["20.0.6.6"], "17", ("ip_forwarding_assumed",)),
    (("appliances.az.json",), "vm3", "ipconfig1", None, "none", [], "18", ()),
    (("appliances.az.json",), "vm4", "ipconfig1", None, "forced_tunnel", [], "19", ()),
    # fw2 has a management ipconfig: that alone is not forced tunnelling.
    (("appliances.az.json",), "vm5", "ipconfig1", None, "firewall", ["20.0.2.2"], "1", ()),
    (("appliances.az.json",), "vm5", "ipconfig1", "192.168.4.4", "private", ["10.0.4.4"], "1", ("firewall_no_snat",)),
    (("protocols_regions.az.json",), "vm4", "ipconfig1", None, "lb_frontend", ["20.1.2.3", "20.1.2.5"], "6",
     ("protocol_per_frontend",)),
    (("protocols_regions.az.json",), "vm5", "ipconfig1", None, "lb_frontend", ["20.1.3.3", "20.1.3.5"], "5",
     ("protocol_per_frontend",)),
    (("protocols_regions.az.json", "storage_tags.yaml"), "vm1", "ipconfig1", "52.239.2.9", "private", ["10.0.0.4"], "B", ()),
    (("protocols_regions.az.json", "storage_tags.yaml"), "vm1", "ipconfig1", "52.239.3.9", "default_snat", [], "14", ()),
    (("protocols_regions.az.json", "storage_tags.yaml"), "vm2", "ipconfig1", "52.239.3.9", "private", ["10.0.1.4"], "B", ()),
    (("protocols_regions.az.json", "storage_tags.yaml"), "vm3", "ipconfig1", "52.239.4.9", "private", ["10.0.2.4"], "B", ()),
    (("protocols_regions.az.json", "storage_tags.yaml"), "vm3", "ipconfig1", "52.239.1.9", "default_snat", [], "14", ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "vm", "ipconfig", "dest", "cls", "ips", "row", "mods"),
    JSON_EGRESS_CASES,
    ids=[f"{c[0][0]}-{c[1]}-{c[2]}-{c[3]}" for c in JSON_EGRESS_CASES],
)
def test_second_pass_rows_json(
    files: tuple[str, ...], vm: str, ipconfig: str, dest: str | None, cls: str, ips: list[str],
    row: str, mods: tuple[str, ...],
) -> None:  # fmt: skip
    inv = load([EGRESS / f for f in files])
    p = one(predict(inv, dest), vm, ipconfig)
    assert (p.egress_class, list(p.expected_ips), p.row, p.modifiers) == (cls, ips, row, mods)


def test_json_protocol_paths_match_the_native_fixture() -> None:
    native = {p.vm: p.paths for p in predict(load([EGRESS / "protocol_per_frontend.yaml"]))}
    js = {p.vm: p.paths for p in predict(load([EGRESS / "protocols_regions.az.json"]))}
    assert js["vm4"] == native["vm1"] and js["vm5"] == native["vm2"]


def test_json_reads_families_forwarding_locations_and_snat_ranges() -> None:
    inv = load([EGRESS / "families.arm.json", EGRESS / "appliances.az.json", EGRESS / "protocols_regions.az.json"])
    by_name = {i.name: i for i in inv.ipconfigs.values() if i.nic_id.endswith("vm-3-nic")}
    assert (by_name["ipconfig1"].family, by_name["ipconfig-v6"].version) == (4, 6)
    pip6 = next(p for p in inv.public_ips.values() if p.name == "public-ip-ipv6")
    assert (pip6.version, pip6.family) == (6, 6)
    fwd = {n.name: n.ip_forwarding for n in inv.nics.values() if n.name.startswith("nva")}
    assert fwd == {"nva1-nic": True, "nva2-nic": None, "nva3-nic": False}
    vnet = next(v for v in inv.vnets.values() if v.name == "vnet1")
    assert vnet.location == "West Europe"
    sub_a = next(s for s in inv.subnets.values() if s.name == "a" and s.vnet_id == vnet.id)
    assert sub_a.endpoint_locations == (("Microsoft.Storage", ("westeurope", "northeurope")),)
    fw2 = next(f for f in inv.firewalls.values() if f.name == "fw2")
    assert fw2.snat_private_ranges == ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
    ngw = next(g for g in inv.nat_gateways.values() if g.name == "ngw-v2")
    assert ngw.vnet_id is not None and ngw.vnet_id.endswith("/virtualnetworks/vnet-2")
