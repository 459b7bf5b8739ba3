"""analyze/inventory/addresses.py: the address table classification starts from (§1.4)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_schema_equal

from analyze.inventory import ADDRESS_SCHEMA, load
from analyze.inventory.addresses import address_table

ROOT = Path(__file__).resolve().parents[3]
INV = ROOT / "tests" / "data" / "inventory"


def _rows(path: Path) -> list[tuple[object, ...]]:
    table = address_table(load([path]))
    assert_schema_equal(table.schema, ADDRESS_SCHEMA)
    return table.select("network", "class", "via", "owner_kind", "resource", "vms").rows()


def test_article() -> None:
    # 10.0.0.4/5 private, then by address: 40.125.161.55 (LB frontend without any rule: no
    # via), 42.159.94.123 (lbvm's instance public IP)
    assert _rows(ROOT / "pcaps" / "inventory" / "article.yaml") == [
        ("10.0.0.4/32", "private", None, "nic", "lbvm-nic/ipconfig1", ["lbvm"]),
        ("10.0.0.5/32", "private", None, "nic", "Test2VM-nic/ipconfig1", ["Test2VM"]),
        ("40.125.161.55/32", "lb_frontend", None, "load_balancer", "mylb/LoadBalancerFrontEnd", ["Test2VM"]),
        ("42.159.94.123/32", "instance_public_ip", None, "nic", "lbvm-pip", ["lbvm"]),
    ]


def test_frontend_via_comes_from_its_rules() -> None:
    rows = {r[0]: r[1:3] for r in _rows(INV / "rows" / "row_5.yaml")}
    assert rows["20.1.2.4/32"] == ("lb_frontend", "outbound_rule")
    assert rows["20.1.2.3/32"] == ("lb_frontend", None)  # its only rule disables outbound SNAT
    rows = {r[0]: r[1:3] for r in _rows(INV / "rows" / "row_11.yaml")}
    assert rows["40.125.161.55/32"] == ("lb_frontend", "nat_rule")


def test_nat_gateway_prefix_and_firewall() -> None:
    rows = {r[0]: r for r in _rows(INV / "rows" / "row_3.yaml")}
    assert rows["20.0.2.0/30"][1:5] == ("nat_gateway", None, "nat_gateway", "ngw1")
    assert rows["20.0.0.10/32"][5] == ["vm1"]
    fw = {r[0]: r for r in _rows(INV / "rows" / "row_1.yaml")}["20.0.1.1/32"]
    assert fw[1:] == ("firewall", None, "firewall", "fw1", ["vm1"])


def test_integer_ranges_for_range_joins() -> None:
    table = address_table(load([INV / "rows" / "row_3.yaml"]))
    prefix = table.filter(pl.col("network") == "20.0.2.0/30").row(0, named=True)
    base = 20 * 2**24 + 2 * 2**8
    assert (prefix["start"], prefix["end"], prefix["prefix_len"]) == (base, base + 3, 30)
    assert table.get_column("start").is_sorted()


def test_ipv6_frontends_addresses_and_prefixes_classify_ipv6_sources() -> None:
    from analyze.classify import classify_addresses
    from analyze.predict import predict

    root = Path(__file__).resolve().parents[3] / "tests" / "data" / "inventory" / "egress"
    inv = load([root / "families.arm.json"])
    table = address_table(inv)
    v6 = table.filter(pl.col("ip_version") == 6)
    assert set(v6.get_column("network")) >= {"2001:db8:100::10/128", "2001:db8:20::20/128"}
    # The VNet-level NAT gateway lists the VMs of every subnet of its VNet.
    ngw = table.filter(pl.col("resource") == "ngw-v2")
    assert ngw.get_column("vms").to_list() == [["vm-2"], ["vm-2"]]
    got = classify_addresses(
        ["2001:db8:100::10", "2001:db8:20::20", "fd00:db8:deca:deed::4"], inv, predict(inv)
    ).select("ip", "class", "via", "candidate_vms")
    rows = {r["ip"]: (r["class"], r["via"], r["candidate_vms"]) for r in got.iter_rows(named=True)}
    assert rows == {
        "2001:db8:100::10": ("lb_frontend", "outbound_rule", ["vm-1"]),
        "2001:db8:20::20": ("nat_gateway", None, ["vm-2"]),
        "fd00:db8:deca:deed::4": ("private", None, ["vm-1"]),
    }
