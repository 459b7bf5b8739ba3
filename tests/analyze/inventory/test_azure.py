"""analyze/inventory/azure.py: az CLI and ARM shapes of docs/azure-egress.md §3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analyze.inventory import load

SUB = "00000000-0000-0000-0000-000000000000"
N = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Network"
C = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute"
n = N.lower()

# §3.1, verbatim but for $N
LB_SHOW = {
    "id": f"{N}/loadBalancers/lb1", "name": "lb1", "location": "eastus",
    "sku": {"name": "Standard", "tier": "Regional"},
    "frontendIPConfigurations": [
        {"id": f"{N}/loadBalancers/lb1/frontendIPConfigurations/fe-in", "name": "fe-in",
         "publicIPAddress": {"id": f"{N}/publicIPAddresses/pip-in"},
         "loadBalancingRules": [{"id": f"{N}/loadBalancers/lb1/loadBalancingRules/http"}],
         "inboundNatRules": [{"id": f"{N}/loadBalancers/lb1/inboundNatRules/ssh-vm1"}]},
        {"id": f"{N}/loadBalancers/lb1/frontendIPConfigurations/fe-out", "name": "fe-out",
         "publicIPPrefix": {"id": f"{N}/publicIPPrefixes/pfx-out"},
         "outboundRules": [{"id": f"{N}/loadBalancers/lb1/outboundRules/egress"}]}],
    "backendAddressPools": [
        {"id": f"{N}/loadBalancers/lb1/backendAddressPools/pool1", "name": "pool1",
         "backendIPConfigurations": [{"id": f"{N}/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1"}],
         "loadBalancingRules": [{"id": f"{N}/loadBalancers/lb1/loadBalancingRules/http"}],
         "outboundRules": [{"id": f"{N}/loadBalancers/lb1/outboundRules/egress"}]}],
    "loadBalancingRules": [
        {"name": "http", "protocol": "Tcp", "frontendPort": 80, "backendPort": 80,
         "frontendIPConfiguration": {"id": f"{N}/loadBalancers/lb1/frontendIPConfigurations/fe-in"},
         "backendAddressPool": {"id": f"{N}/loadBalancers/lb1/backendAddressPools/pool1"},
         "probe": {"id": f"{N}/loadBalancers/lb1/probes/hp"},
         "disableOutboundSnat": True, "idleTimeoutInMinutes": 4, "enableTcpReset": True}],
    "inboundNatRules": [
        {"name": "ssh-vm1", "protocol": "Tcp", "frontendPort": 50001, "backendPort": 22,
         "frontendIPConfiguration": {"id": f"{N}/loadBalancers/lb1/frontendIPConfigurations/fe-in"},
         "backendIPConfiguration": {"id": f"{N}/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1"}}],
    "outboundRules": [
        {"name": "egress", "protocol": "All", "allocatedOutboundPorts": 10000,
         "idleTimeoutInMinutes": 15, "enableTcpReset": False,
         "frontendIPConfigurations": [{"id": f"{N}/loadBalancers/lb1/frontendIPConfigurations/fe-out"}],
         "backendAddressPool": {"id": f"{N}/loadBalancers/lb1/backendAddressPools/pool1"}}],
    "probes": [{"name": "hp", "protocol": "Tcp", "port": 80, "intervalInSeconds": 5, "numberOfProbes": 2}],
}  # fmt: skip


def _load(tmp_path: Path, *docs: Any, names: tuple[str, ...] = ()) -> Any:
    paths = []
    for i, doc in enumerate(docs):
        path = tmp_path / (names[i] if i < len(names) else f"doc{i}.json")
        path.write_text(json.dumps(doc))
        paths.append(path)
    return load(paths)


def test_lb_show(tmp_path: Path) -> None:
    inv = _load(tmp_path, LB_SHOW)
    lb = f"{n}/loadbalancers/lb1"
    assert inv.load_balancers[lb].sku == "Standard"
    fe_in, fe_out = inv.frontends[f"{lb}/frontendipconfigurations/fe-in"], inv.frontends[f"{lb}/frontendipconfigurations/fe-out"]
    assert fe_in.public_ip_id == f"{n}/publicipaddresses/pip-in" and fe_in.is_public
    assert fe_out.public_ip_prefix_id == f"{n}/publicipprefixes/pfx-out"
    rules = {r.name: r for r in inv.rules.values()}
    assert rules["http"].kind == "load_balancing" and rules["http"].disable_outbound_snat is True
    assert rules["http"].id == f"{lb}/loadbalancingrules/http"  # id synthesized: the CLI omits it
    assert rules["http"].probe_id == f"{lb}/probes/hp"
    assert rules["ssh-vm1"].ipconfig_id == f"{n}/networkinterfaces/vm1-nic/ipconfigurations/ipconfig1"
    assert (rules["ssh-vm1"].frontend_port, rules["ssh-vm1"].backend_port) == (50001, 22)
    assert rules["egress"].allocated_outbound_ports == 10000
    assert rules["egress"].frontend_ids == (fe_out.id,)
    assert inv.pools[f"{lb}/backendaddresspools/pool1"].ipconfig_ids == (
        f"{n}/networkinterfaces/vm1-nic/ipconfigurations/ipconfig1",
    )
    # pip-in, pfx-out and the NIC were not loaded: the frontends, the pool and the NAT
    # rule each say so
    assert len(inv.warnings) == 4
    assert any("frontend fe-out references public IP prefix pfx-out" in w for w in inv.warnings)
    assert any("backend pool pool1 references ipconfig vm1-nic/ipconfig1" in w for w in inv.warnings)
    assert any("rule ssh-vm1 references ipconfig vm1-nic/ipconfig1" in w for w in inv.warnings)


def test_ip_based_and_new_style_pools(tmp_path: Path) -> None:
    doc = {"id": f"{N}/loadBalancers/lb2", "name": "lb2", "type": "Microsoft.Network/loadBalancers",
           "sku": {"name": "Standard"}, "properties": {"backendAddressPools": [
               {"name": "ips", "properties": {"loadBalancerBackendAddresses": [
                   {"name": "a", "properties": {"ipAddress": "10.0.0.4", "virtualNetwork": {"id": f"{N}/virtualNetworks/v"}}}]}},
               {"name": "nics", "properties": {"loadBalancerBackendAddresses": [
                   {"name": "b", "properties": {"networkInterfaceIPConfiguration": {"id": f"{N}/networkInterfaces/x/ipConfigurations/ipconfig1"}}}]}}]}}  # fmt: skip
    inv = _load(tmp_path, doc)
    pools = {p.name: p for p in inv.pools.values()}
    assert pools["ips"].addresses == ("10.0.0.4",) and pools["ips"].ipconfig_ids == ()
    assert pools["nics"].ipconfig_ids == (f"{n}/networkinterfaces/x/ipconfigurations/ipconfig1",)


def test_vm_list_d_and_nic_list_link_both_ways(tmp_path: Path) -> None:
    vms = [{"id": f"{C}/virtualMachines/vm1", "name": "vm1", "resourceGroup": "rg1",
            "powerState": "VM running", "privateIps": "10.0.0.4,10.0.1.4", "publicIps": "",
            "availabilitySet": {"id": f"{C}/availabilitySets/AS1"},
            "networkProfile": {"networkInterfaces": [{"id": f"{N}/networkInterfaces/vm1-nic", "primary": True}]}}]  # fmt: skip
    nics = [{"id": f"{N}/networkInterfaces/vm1-nic", "name": "vm1-nic", "primary": True,
             "ipConfigurations": [{"id": f"{N}/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1",
                                   "name": "ipconfig1", "privateIpAddress": "10.0.0.4", "primary": True}]}]  # fmt: skip
    inv = _load(tmp_path, vms, nics)
    nic = inv.nics[f"{n}/networkinterfaces/vm1-nic"]
    assert nic.vm_id == f"{C.lower()}/virtualmachines/vm1"  # filled from the VM side
    (ipc,) = inv.ipconfigs.values()
    assert inv.vm_name(ipc) == "vm1"
    assert inv.vms[nic.vm_id].availability_set_id == f"{C.lower()}/availabilitysets/as1"


def test_vm_list_ip_addresses_gives_public_ips(tmp_path: Path) -> None:
    doc = [{"virtualMachine": {"name": "vm1", "resourceGroup": "rg1", "network": {
        "privateIpAddresses": ["10.0.0.4"],
        "publicIpAddresses": [{"id": f"{N}/publicIPAddresses/vm1-pip", "name": "vm1-pip",
                               "ipAddress": "52.1.2.3", "ipAllocationMethod": "Static"}]}}}]  # fmt: skip
    inv = _load(tmp_path, doc)
    assert [(p.name, p.address) for p in inv.public_ips.values()] == [("vm1-pip", "52.1.2.3")]


def test_vmss_flexible_and_uniform_instances(tmp_path: Path) -> None:
    ss = f"{C}/virtualMachineScaleSets/ss"
    show = {"id": ss, "name": "ss", "type": "Microsoft.Compute/virtualMachineScaleSets",
            "orchestrationMode": "Uniform", "virtualMachineProfile": {}}  # fmt: skip
    nic_id = f"{ss}/virtualMachines/0/networkInterfaces/ss-nic"
    nic_list = [{"id": nic_id, "name": "ss-nic", "primary": True, "ipConfigurations": [
        {"id": f"{nic_id}/ipConfigurations/ipc", "name": "ipc", "privateIPAddress": "10.0.0.7",
         "publicIPAddress": {"id": f"{nic_id}/ipConfigurations/ipc/publicIPAddresses/pub"}}]}]  # fmt: skip
    instance_pips = [{"id": f"{nic_id}/ipConfigurations/ipc/publicIPAddresses/pub", "name": "pub",
                      "ipAddress": "52.9.9.9", "ipConfiguration": {"id": f"{nic_id}/ipConfigurations/ipc"}}]  # fmt: skip
    inv = _load(tmp_path, show, nic_list, instance_pips)
    assert inv.warnings == ()
    assert inv.scale_sets[ss.lower()].orchestration == "Uniform"
    (ipc,) = inv.ipconfigs.values()
    assert inv.vm_name(ipc) == "ss_0"
    assert inv.public_ips[ipc.public_ip_id].address == "52.9.9.9"
    flex = {"id": f"{C}/virtualMachineScaleSets/fx", "name": "fx", "properties": {"orchestrationMode": "Flexible"}}
    assert _load(tmp_path, flex).scale_sets[f"{C.lower()}/virtualmachinescalesets/fx"].orchestration == "Flexible"


def test_effective_routes_attach_to_the_nic_named_by_the_file(tmp_path: Path) -> None:
    nic = {"id": f"{N}/networkInterfaces/vm1-nic", "name": "vm1-nic",
           "ipConfigurations": [{"name": "ipconfig1", "privateIPAddress": "10.0.0.4"}]}  # fmt: skip
    routes = {"nextLink": None, "value": [
        {"source": "Default", "state": "Active", "addressPrefix": ["10.0.0.0/16"], "nextHopType": "VnetLocal", "nextHopIpAddress": []},
        {"source": "User", "state": "Active", "addressPrefix": ["0.0.0.0/0"], "nextHopType": "VirtualAppliance", "nextHopIpAddress": ["10.1.0.4"]}]}  # fmt: skip
    inv = _load(tmp_path, nic, routes, names=("nics.json", "vm1-nic.routes.json"))
    got = inv.nics[f"{n}/networkinterfaces/vm1-nic"].effective_routes
    assert [(r.prefixes, r.next_hop_type, r.next_hop_ip, r.origin) for r in got] == [
        (("10.0.0.0/16",), "VnetLocal", None, "Default"),
        (("0.0.0.0/0",), "VirtualAppliance", "10.1.0.4", "User"),
    ]
    inv = _load(tmp_path, nic, routes, names=("nics.json", "other.json"))
    assert any("effective routes for NIC 'other'" in w for w in inv.warnings)


def test_nat_gateway_subnets_back_reference_links_the_subnet(tmp_path: Path) -> None:
    vnet = {"id": f"{N}/virtualNetworks/v", "name": "v", "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"id": f"{N}/virtualNetworks/v/subnets/app", "name": "app", "addressPrefix": "10.0.0.0/24",
                         "defaultOutboundAccess": False, "serviceEndpoints": [{"service": "Microsoft.Storage", "locations": ["eastus"]}]}]}  # fmt: skip
    ngw = {"id": f"{N}/natGateways/ngw1", "name": "ngw1", "sku": {"name": "StandardV2"},
           "publicIpAddresses": [{"id": f"{N}/publicIPAddresses/ngw-pip"}],
           "subnets": [{"id": f"{N}/virtualNetworks/v/subnets/app"}]}  # fmt: skip
    pip = {"id": f"{N}/publicIPAddresses/ngw-pip", "name": "ngw-pip", "ipAddress": "20.0.0.10"}
    inv = _load(tmp_path, [vnet, ngw, pip])
    sub = inv.subnets[f"{n}/virtualnetworks/v/subnets/app"]
    assert sub.nat_gateway_id == f"{n}/natgateways/ngw1"
    assert (sub.default_outbound_access, sub.service_endpoints) == (False, ("Microsoft.Storage",))
    assert inv.nat_gateways[sub.nat_gateway_id].sku == "StandardV2"
    assert inv.public_ips[f"{n}/publicipaddresses/ngw-pip"].nat_gateway_id == sub.nat_gateway_id


def test_firewall_and_private_endpoint_nic(tmp_path: Path) -> None:
    fw = {"id": f"{N}/azureFirewalls/fw1", "name": "fw1", "properties": {"ipConfigurations": [
        {"name": "c", "properties": {"privateIPAddress": "10.2.0.4",
                                     "publicIPAddress": {"id": f"{N}/publicIPAddresses/fw-pip"},
                                     "subnet": {"id": f"{N}/virtualNetworks/hub/subnets/AzureFirewallSubnet"}}}]}}  # fmt: skip
    pe_nic = {"id": f"{N}/networkInterfaces/pe.nic.1", "name": "pe.nic.1",
              "privateEndpoint": {"id": f"{N}/privateEndpoints/pe1"},
              "ipConfigurations": [{"name": "privateEndpointIpConfig", "privateIPAddress": "10.0.1.5"}]}  # fmt: skip
    inv = _load(tmp_path, [fw, pe_nic])
    (firewall,) = inv.firewalls.values()
    assert (firewall.private_ip, firewall.public_ip_ids) == ("10.2.0.4", (f"{n}/publicipaddresses/fw-pip",))
    assert inv.nics == {} and inv.ipconfigs == {}  # not a VM's NIC: no prediction
    assert [pe.addresses for pe in inv.private_endpoints.values()] == [("10.0.1.5",)]


def test_unknown_resource_types_are_warnings(tmp_path: Path) -> None:
    doc = [{"id": f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/sa1",
            "name": "sa1", "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2"}]  # fmt: skip
    inv = _load(tmp_path, doc)
    assert inv.warnings == (
        "skipped 1 resource of types not read for egress: Microsoft.Storage/storageAccounts "
        f"(1, first at {tmp_path / 'doc0.json'}: $[0])",
    )


def test_route_list_items_join_their_route_table(tmp_path: Path) -> None:
    rt = f"{N}/routeTables/rt1"
    table = {"id": rt, "name": "rt1", "routes": [{"id": f"{rt}/routes/r1", "name": "r1",
             "addressPrefix": "10.9.0.0/16", "nextHopType": "VnetLocal"}],
             "subnets": [{"id": f"{N}/virtualNetworks/v/subnets/app"}]}  # fmt: skip
    routes = [{"id": f"{rt}/routes/default", "name": "default", "addressPrefix": "0.0.0.0/0",
               "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.2.0.4"}]  # fmt: skip
    inv = _load(tmp_path, table, routes, table)  # loading the table twice adds nothing
    (got,) = inv.route_tables.values()
    assert [(r.name, r.prefixes, r.next_hop_type, r.next_hop_ip) for r in got.routes] == [
        ("r1", ("10.9.0.0/16",), "VnetLocal", None),
        ("default", ("0.0.0.0/0",), "VirtualAppliance", "10.2.0.4"),
    ]
    assert got.subnet_ids == (f"{n}/virtualnetworks/v/subnets/app",)
