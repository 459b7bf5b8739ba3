"""analyze/inventory/native.py: the hand-written YAML format (docs/inventory.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyze.inventory import load
from analyze.inventory.native import detect, nid
from capture.errors import InventoryError

ROOT = Path(__file__).resolve().parents[3]
ARTICLE = ROOT / "pcaps" / "inventory" / "article.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    return path


def test_article_tables() -> None:
    inv = load([ARTICLE])
    assert inv.warnings == ()
    assert sorted(vm.name for vm in inv.vms.values()) == ["Test2VM", "lbvm"]
    lb = inv.load_balancers[nid("loadBalancers", "mylb")]
    assert lb.sku == "Basic"
    pool = inv.pools[nid("loadBalancers", "mylb", "backendAddressPools", "mybackendpool")]
    test2 = f"{nid('networkInterfaces', 'Test2VM-nic')}/ipconfigurations/ipconfig1"
    assert pool.ipconfig_ids == (test2,)
    # the pool membership written on the pool side shows on the ipconfig too
    assert inv.ipconfigs[test2].pool_ids == (pool.id,)
    assert inv.ipconfigs[test2].private_ip == "10.0.0.5"
    fe = next(iter(inv.frontends.values()))
    assert inv.public_ips[fe.public_ip_id].address == "40.125.161.55"  # type: ignore[index]
    assert [r for r in inv.rules.values()] == []
    assert inv.allowlist("WEB-APP") is not None
    assert inv.vms[nid("virtualMachines", "Test2VM")].availability_set_id == nid("availabilitySets", "myavset")


def test_inline_addresses_become_public_ips_named_after_their_owner(tmp_path: Path) -> None:
    inv = load([_write(tmp_path, """
vms:
  - {name: vm1, private_ip: 10.0.0.4, public_ip: 20.0.0.4, public_ip_sku: Standard}
nat_gateways:
  - {name: ngw, public_ips: [20.0.0.9], public_ip_prefixes: [20.0.1.0/31]}
""")])
    pips = {p.name: (p.address, p.sku) for p in inv.public_ips.values()}
    assert pips == {"vm1-pip": ("20.0.0.4", "Standard"), "ngw-1-pip": ("20.0.0.9", "Standard")}
    assert [p.prefix for p in inv.public_ip_prefixes.values()] == ["20.0.1.0/31"]


def test_bare_subnet_names_resolve_when_unique(tmp_path: Path) -> None:
    text = """
vnets:
  - {name: v1, address_space: [10.0.0.0/16], subnets: [{name: app, prefix: 10.0.0.0/24}]}
  - {name: v2, address_space: [10.1.0.0/16], subnets: [{name: app, prefix: 10.1.0.0/24}, {name: db, prefix: 10.1.1.0/24}]}
vms:
  - {name: vm1, private_ip: 10.1.1.4, subnet: db}
"""
    inv = load([_write(tmp_path, text)])
    ipc = next(iter(inv.ipconfigs.values()))
    assert ipc.subnet_id == nid("virtualNetworks", "v2", "subnets", "db")
    with pytest.raises(InventoryError, match=r"\$\.vms\[0\]\.subnet: subnet 'app' is ambiguous"):
        load([_write(tmp_path, text.replace("subnet: db", "subnet: app"))])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("load_balancers:\n  - {name: lb1}\n", r"\$\.load_balancers\[0\]: missing 'sku'"),
        ("load_balancers:\n  - {name: lb1, sku: Premium}\n", r"\$\.load_balancers\[0\]\.sku: unknown SKU 'Premium'"),
        ("vms:\n  - {name: vm1, private_ip: 10.0.0.4, nics: [{name: n}]}\n", "either nics or the single-NIC shorthand"),
        ("load_balancers:\n  - {name: lb1, sku: Basic, pools: [{name: p, members: [ghost]}]}\n",
         r"pools\[0\]: 'ghost' is not a VM of this file"),
        ("vms:\n  - {name: vm1, pools: [pool1]}\n", r"\$\.vms\[0\]\.pools\[0\]: write it as lb/name"),
        ("scale_sets:\n  - {name: s, orchestration: Elastic}\n", r"orchestration: unknown orchestration 'Elastic'"),
        ("allowlists:\n  - {name: a, entries: [10.0.0.0/33]}\n", r"\$\.allowlists\[0\]\.entries\[0\]: not an address"),
        ("proxies:\n  - {name: p, kind: cdn}\n", r"\$\.proxies\[0\]\.kind: unknown proxy kind 'cdn'"),
    ],
)
def test_errors_name_the_yaml_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        load([_write(tmp_path, text)])


def test_detect() -> None:
    assert detect({"vms": []})
    assert not detect({"vms": [], "id": "/x"})  # an Azure object that happens to have a vms key
    assert detect({"vms": [], "load_balancer": []})  # a typo: native, so the error is precise
    assert not detect({})


def test_two_inline_addresses_of_one_vm_stay_two_public_ips(tmp_path: Path) -> None:
    # A dual-stack NIC: the IPv4 and the IPv6 ipconfig each have an inline public IP.
    path = tmp_path / "inv.yaml"
    path.write_text(
        "vms:\n"
        "  - name: vm1\n"
        "    nics:\n"
        "      - name: vm1-nic\n"
        "        ip_forwarding: true\n"
        "        ipconfigs:\n"
        "          - {name: v4, private_ip: 10.0.0.4, public_ip: 20.0.0.4}\n"
        "          - {name: v6, version: IPv6, private_ip: 'fd00::4', public_ip: '2001:db8::4'}\n"
    )
    inv = load([path])
    ipcs = {i.name: i for i in inv.ipconfigs.values()}
    assert inv.public_ips[ipcs["v4"].public_ip_id].address == "20.0.0.4"
    assert inv.public_ips[ipcs["v6"].public_ip_id].address == "2001:db8::4"
    assert inv.public_ips[ipcs["v6"].public_ip_id].name == "vm1-pip2"
    assert (ipcs["v4"].family, ipcs["v6"].family, ipcs["v6"].version) == (4, 6, 6)
    assert next(iter(inv.nics.values())).ip_forwarding is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vms: [{name: a, nics: [{name: n, ipconfigs: [{name: c, version: IPv5}]}]}]", "expected IPv4 or IPv6"),
        ("vnets: [{name: v, subnets: [{name: s, service_endpoints: [{service: X, where: y}]}]}]", "unknown key 'where'"),
        ("vnets: [{name: v, subnets: [{name: s, service_endpoints: [3]}]}]", "expected a service name"),
    ],
)
def test_new_keys_reject_bad_values(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(InventoryError, match=message):
        load([path])
