"""analyze/inventory/build.py: merging records and linking both sides of a reference."""

from __future__ import annotations

from analyze.inventory import BackendPool, IpConfig, LbRule, PublicIp, Subnet
from analyze.inventory.build import Builder, merge

P = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network"


def test_merge_keeps_known_values_and_unites_lists() -> None:
    a = IpConfig(id="i", name="ipconfig1", nic_id="n", private_ip="10.0.0.4", pool_ids=("p1",))
    b = IpConfig(id="i", name="ipconfig1", nic_id="n", public_ip_id="pip", pool_ids=("p2", "p1"))
    got = merge(a, b)
    assert (got.private_ip, got.public_ip_id, got.pool_ids) == ("10.0.0.4", "pip", ("p1", "p2"))
    r1 = LbRule(id="r", name="r", lb_id="l", kind="load_balancing", disable_outbound_snat=True)
    assert merge(r1, LbRule(id="r", name="r", lb_id="l", kind="load_balancing")).disable_outbound_snat


def test_links_from_either_side() -> None:
    b = Builder()
    ipc = f"{P}/networkinterfaces/n/ipconfigurations/ipconfig1"
    b.add(IpConfig(id=ipc, name="ipconfig1", nic_id=f"{P}/networkinterfaces/n"))
    b.add(BackendPool(id=f"{P}/loadbalancers/l/backendaddresspools/p", name="p",
                      lb_id=f"{P}/loadbalancers/l", ipconfig_ids=(ipc,)))  # fmt: skip
    b.add(LbRule(id=f"{P}/loadbalancers/l/inboundnatrules/ssh", name="ssh",
                 lb_id=f"{P}/loadbalancers/l", kind="inbound_nat", ipconfig_id=ipc))  # fmt: skip
    inv = b.finish()
    got = inv.ipconfigs[ipc]
    assert got.pool_ids == (f"{P}/loadbalancers/l/backendaddresspools/p",)
    assert got.nat_rule_ids == (f"{P}/loadbalancers/l/inboundnatrules/ssh",)
    # the NIC and the load balancer were not loaded
    assert sorted(w.split(": ", 1)[1] for w in inv.warnings) == [
        "backend pool p belongs to load balancer l, which was not loaded (SKU unknown)",
        "ipconfig ipconfig1 belongs to NIC n, which was not loaded",
        "rule ssh belongs to load balancer l, which was not loaded (SKU unknown)",
    ]


def test_suffix_resolution_only_when_unique() -> None:
    b = Builder()
    b.add(PublicIp(id="/subscriptions/a/resourcegroups/x/providers/microsoft.network/publicipaddresses/p", name="p"))
    b.add(Subnet(id=f"{P}/virtualnetworks/v/subnets/s", name="s", vnet_id=f"{P}/virtualnetworks/v"))
    b.add(IpConfig(id="i", name="i", nic_id="n", subnet_id=f"{P}/virtualnetworks/v/subnets/s",
                   public_ip_id="/subscriptions/b/resourcegroups/y/providers/microsoft.network/publicipaddresses/p"))  # fmt: skip
    inv = b.finish()
    assert inv.ipconfigs["i"].public_ip_id == "/subscriptions/a/resourcegroups/x/providers/microsoft.network/publicipaddresses/p"
    b.add(PublicIp(id="/subscriptions/c/resourcegroups/z/providers/microsoft.network/publicipaddresses/p", name="p"))
    b.add(IpConfig(id="j", name="j", nic_id="n",
                   public_ip_id="/subscriptions/b/resourcegroups/y/providers/microsoft.network/publicipaddresses/p"))  # fmt: skip
    inv = b.finish()
    assert inv.ipconfigs["j"].public_ip_id.startswith("/subscriptions/b/")  # type: ignore[union-attr]  # ambiguous: left alone
    assert any("references public IP p" in w for w in inv.warnings)
