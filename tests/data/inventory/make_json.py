"""Write the az-CLI and ARM JSON fixtures of decision-table rows 3-7 and 10-12.

Run from the repository root:  .venv/bin/python tests/data/inventory/make_json.py

The resources below are written by hand in the shapes of docs/azure-egress.md §3 (the
`az network lb show` / `nic show` / `public-ip show` / `nat gateway show` / `vnet show` /
`az vm list -d` examples), with the same names and addresses as the native YAML fixtures
in rows/, so the tests can expect identical predictions.  `az/` gets the CLI shape
(`properties` flattened; rows 3, 5, 10 and 12 use the old msrest key casing such as
`privateIpAddress`, `frontendIpConfigurations`); `arm/` gets the REST / Resource Graph
shape (fields under `properties`, `type` on every resource), wrapped in a REST
`{"value": [...]}` page or an `az graph query` `{"data": [...]}` page for some rows.
This script only reshapes input; it does not import egresslens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SUB = "00000000-0000-0000-0000-000000000000"
RG = f"/subscriptions/{SUB}/resourceGroups/rg1"
N = f"{RG}/providers/Microsoft.Network"
C = f"{RG}/providers/Microsoft.Compute"

TOP = {"id", "name", "type", "location", "sku", "zones", "tags", "etag"}
CHILD_LISTS = {
    "ipconfigurations", "frontendipconfigurations", "backendaddresspools",
    "loadbalancingrules", "inboundnatrules", "outboundrules", "probes", "subnets",
    "virtualnetworkpeerings", "routes",
}  # fmt: skip
CLI_ONLY = {"privateips", "publicips", "fqdns", "macaddresses", "powerstate", "resourcegroup"}


def ref(rid: str) -> dict[str, str]:
    return {"id": rid}


def vnet(name: str, space: str, subnets: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"{N}/virtualNetworks/{name}", "name": name, "location": "eastus",
        "type": "Microsoft.Network/virtualNetworks",
        "addressSpace": {"addressPrefixes": [space]},
        "subnets": [
            {"id": f"{N}/virtualNetworks/{name}/subnets/{s['name']}", **s} for s in subnets
        ],
        "virtualNetworkPeerings": [],
    }  # fmt: skip


def pip(name: str, address: str, sku: str, owner: str | None = None) -> dict[str, Any]:
    return {
        "id": f"{N}/publicIPAddresses/{name}", "name": name, "location": "eastus",
        "type": "Microsoft.Network/publicIPAddresses",
        "sku": {"name": sku, "tier": "Regional"}, "ipAddress": address,
        "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4",
        "idleTimeoutInMinutes": 4, "ipConfiguration": ref(owner) if owner else None,
        "natGateway": None, "ipTags": [],
    }  # fmt: skip


def vm(name: str, nic: str, private: str, public: str = "", aset: str | None = None) -> dict[str, Any]:
    """`az vm list -d` shape."""
    return {
        "id": f"{C}/virtualMachines/{name}", "name": name, "resourceGroup": "rg1",
        "location": "eastus", "type": "Microsoft.Compute/virtualMachines",
        "powerState": "VM running", "privateIps": private, "publicIps": public, "fqdns": "",
        "macAddresses": "00-0D-3A-1B-C7-21",
        "availabilitySet": ref(f"{C}/availabilitySets/{aset}") if aset else None,
        "networkProfile": {"networkInterfaces": [{"id": f"{N}/networkInterfaces/{nic}", "primary": True}]},
    }  # fmt: skip


def nic(name: str, vm_name: str, private: str, *, old: bool, public: str | None = None,
        pools: tuple[str, ...] = (), nat_rules: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    priv_key = "privateIpAddress" if old else "privateIPAddress"
    pub_key = "publicIpAddress" if old else "publicIPAddress"
    ipc: dict[str, Any] = {
        "id": f"{N}/networkInterfaces/{name}/ipConfigurations/ipconfig1", "name": "ipconfig1",
        "primary": True, priv_key: private, "privateIPAllocationMethod": "Dynamic",
        "privateIPAddressVersion": "IPv4", "subnet": ref(f"{N}/virtualNetworks/vnet1/subnets/app"),
        "loadBalancerBackendAddressPools": [ref(p) for p in pools],
        "loadBalancerInboundNatRules": [ref(r) for r in nat_rules],
    }  # fmt: skip
    if public:
        ipc[pub_key] = ref(f"{N}/publicIPAddresses/{public}")
    return {
        "id": f"{N}/networkInterfaces/{name}", "name": name, "location": "eastus",
        "type": "Microsoft.Network/networkInterfaces", "primary": True,
        "virtualMachine": ref(f"{C}/virtualMachines/{vm_name}"), "enableIPForwarding": False,
        "ipConfigurations": [ipc],
    }  # fmt: skip


def lb(name: str, sku: str, *, old: bool, frontends: list[dict[str, Any]], pools: list[str],
       rules: list[dict[str, Any]] = (), nat_rules: list[dict[str, Any]] = (),  # type: ignore[assignment]
       outbound: list[dict[str, Any]] = (), probes: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]  # fmt: skip
    lb_id = f"{N}/loadBalancers/{name}"
    fe_key = "frontendIpConfigurations" if old else "frontendIPConfigurations"
    pub_key = "publicIpAddress" if old else "publicIPAddress"
    return {
        "id": lb_id, "name": name, "location": "eastus",
        "type": "Microsoft.Network/loadBalancers", "sku": {"name": sku, "tier": "Regional"},
        fe_key: [
            {"id": f"{lb_id}/frontendIPConfigurations/{fe['name']}", "name": fe["name"],
             pub_key: ref(f"{N}/publicIPAddresses/{fe['pip']}")}
            for fe in frontends
        ],
        "backendAddressPools": [
            {"id": f"{lb_id}/backendAddressPools/{p}", "name": p} for p in pools
        ],
        "loadBalancingRules": [
            {"id": f"{lb_id}/loadBalancingRules/{r['name']}", "name": r["name"],
             "protocol": r.get("protocol", "Tcp"), "frontendPort": 80, "backendPort": 80,
             "frontendIPConfiguration": ref(f"{lb_id}/frontendIPConfigurations/{r['fe']}"),
             "backendAddressPool": ref(f"{lb_id}/backendAddressPools/{r['pool']}"),
             **({"probe": ref(f"{lb_id}/probes/{r['probe']}")} if r.get("probe") else {}),
             "disableOutboundSnat": r.get("disable", False), "idleTimeoutInMinutes": 4,
             "enableTcpReset": sku == "Standard"}
            for r in rules
        ],
        "inboundNatRules": [
            {"id": f"{lb_id}/inboundNatRules/{r['name']}", "name": r["name"], "protocol": "Tcp",
             "frontendPort": r["port"], "backendPort": 22,
             "frontendIPConfiguration": ref(f"{lb_id}/frontendIPConfigurations/{r['fe']}"),
             "backendIPConfiguration": ref(f"{N}/networkInterfaces/{r['nic']}/ipConfigurations/ipconfig1")}
            for r in nat_rules
        ],
        "outboundRules": [
            {"id": f"{lb_id}/outboundRules/{r['name']}", "name": r["name"], "protocol": "All",
             "allocatedOutboundPorts": r["ports"], "idleTimeoutInMinutes": 15,
             "enableTcpReset": False,
             "frontendIPConfigurations": [ref(f"{lb_id}/frontendIPConfigurations/{f}") for f in r["fes"]],
             "backendAddressPool": ref(f"{lb_id}/backendAddressPools/{r['pool']}")}
            for r in outbound
        ],
        "probes": [
            {"id": f"{lb_id}/probes/{p['name']}", "name": p["name"], "protocol": "Tcp",
             "port": 80, "intervalInSeconds": 5, "numberOfProbes": 2}
            for p in probes
        ],
    }  # fmt: skip


def natgw(name: str, pips: list[str], subnets: list[str]) -> dict[str, Any]:
    return {
        "id": f"{N}/natGateways/{name}", "name": name, "location": "eastus",
        "type": "Microsoft.Network/natGateways", "sku": {"name": "Standard"},
        "idleTimeoutInMinutes": 4, "publicIpAddresses": [ref(f"{N}/publicIPAddresses/{p}") for p in pips],
        "subnets": [ref(s) for s in subnets],
    }  # fmt: skip


APP = f"{N}/virtualNetworks/vnet1/subnets/app"
LB1 = f"{N}/loadBalancers/lb1"
MYLB = f"{N}/loadBalancers/mylb"


def rows() -> dict[str, tuple[bool, list[dict[str, Any]]]]:
    """row -> (old key casing?, resources)."""
    out: dict[str, tuple[bool, list[dict[str, Any]]]] = {}
    old = True
    out["3"] = (old, [
        vnet("vnet1", "10.0.0.0/16", [{"name": "app", "addressPrefix": "10.0.0.0/24",
                                       "natGateway": ref(f"{N}/natGateways/ngw1")}]),
        natgw("ngw1", ["ngw-pip"], [APP]),
        pip("ngw-pip", "20.0.0.10", "Standard"),
        pip("vm1-pip", "20.0.0.4", "Standard", f"{N}/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1"),
        vm("vm1", "vm1-nic", "10.0.0.4", "20.0.0.4"),
        nic("vm1-nic", "vm1", "10.0.0.4", old=old, public="vm1-pip"),
    ])  # fmt: skip
    old = False
    out["4"] = (old, [
        vnet("vnet1", "10.0.0.0/16", [{"name": "app", "addressPrefix": "10.0.0.0/24"}]),
        pip("vm1-pip", "20.0.0.4", "Standard", f"{N}/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1"),
        pip("pip-in", "20.1.2.3", "Standard", f"{LB1}/frontendIPConfigurations/fe-in"),
        lb("lb1", "Standard", old=old, frontends=[{"name": "fe-in", "pip": "pip-in"}], pools=["pool1"],
           rules=[{"name": "http", "fe": "fe-in", "pool": "pool1"}]),
        vm("vm1", "vm1-nic", "10.0.0.4", "20.0.0.4"),
        nic("vm1-nic", "vm1", "10.0.0.4", old=old, public="vm1-pip", pools=(f"{LB1}/backendAddressPools/pool1",)),
    ])  # fmt: skip
    old = True
    out["5"] = (old, [
        vnet("vnet1", "10.0.0.0/16", [{"name": "app", "addressPrefix": "10.0.0.0/24"}]),
        pip("pip-in", "20.1.2.3", "Standard", f"{LB1}/frontendIPConfigurations/fe-in"),
        pip("pip-out", "20.1.2.4", "Standard", f"{LB1}/frontendIPConfigurations/fe-out"),
        lb("lb1", "Standard", old=old,
           frontends=[{"name": "fe-in", "pip": "pip-in"}, {"name": "fe-out", "pip": "pip-out"}],
           pools=["pool1"], probes=[{"name": "hp"}],
           rules=[{"name": "http", "fe": "fe-in", "pool": "pool1", "probe": "hp", "disable": True}],
           outbound=[{"name": "egress", "fes": ["fe-out"], "pool": "pool1", "ports": 10000}]),
        vm("vm1", "vm1-nic", "10.0.0.4"),
        vm("vm2", "vm2-nic", "10.0.0.5"),
        nic("vm1-nic", "vm1", "10.0.0.4", old=old, pools=(f"{LB1}/backendAddressPools/pool1",)),
        nic("vm2-nic", "vm2", "10.0.0.5", old=old, pools=(f"{LB1}/backendAddressPools/pool1",)),
    ])  # fmt: skip
    old = False
    out["6"] = (old, [
        vnet("vnet1", "10.0.0.0/16", [{"name": "app", "addressPrefix": "10.0.0.0/24"}]),
        pip("pip-in", "20.1.2.3", "Standard", f"{LB1}/frontendIPConfigurations/fe-in"),
        lb("lb1", "Standard", old=old, frontends=[{"name": "fe-in", "pip": "pip-in"}], pools=["pool1"],
           rules=[{"name": "http", "fe": "fe-in", "pool": "pool1"}]),
        vm("vm1", "vm1-nic", "10.0.0.4"),
        nic("vm1-nic", "vm1", "10.0.0.4", old=old, pools=(f"{LB1}/backendAddressPools/pool1",)),
    ])  # fmt: skip
    out["7"] = (old, [
        vnet("vnet1", "10.0.0.0/16", [{"name": "app", "addressPrefix": "10.0.0.0/24"}]),
        pip("pip-in", "20.1.2.3", "Standard", f"{LB1}/frontendIPConfigurations/fe-in"),
        lb("lb1", "Standard", old=old, frontends=[{"name": "fe-in", "pip": "pip-in"}], pools=["pool1"],
           rules=[{"name": "http", "fe": "fe-in", "pool": "pool1", "disable": True}],
           nat_rules=[{"name": "ssh-vm2", "fe": "fe-in", "port": 50001, "nic": "vm2-nic"}]),
        vm("vm1", "vm1-nic", "10.0.0.4"),
        vm("vm2", "vm2-nic", "10.0.0.5"),
        nic("vm1-nic", "vm1", "10.0.0.4", old=old, pools=(f"{LB1}/backendAddressPools/pool1",)),
        nic("vm2-nic", "vm2", "10.0.0.5", old=old, nat_rules=(f"{LB1}/inboundNatRules/ssh-vm2",)),
    ])  # fmt: skip
    old = True
    basic_pip = pip("mylb-pip", "40.125.161.55", "Basic", f"{MYLB}/frontendIPConfigurations/LoadBalancerFrontEnd")
    fes = [{"name": "LoadBalancerFrontEnd", "pip": "mylb-pip"}]
    pool = (f"{MYLB}/backendAddressPools/mybackendpool",)
    base = [
        vnet("vnet1", "10.0.0.0/16", [{"name": "app", "addressPrefix": "10.0.0.0/24"}]),
        basic_pip,
        vm("Test2VM", "test2vm-nic", "10.0.0.5", aset="myavset"),
    ]
    out["10"] = (old, [*base,
        lb("mylb", "Basic", old=old, frontends=fes, pools=["mybackendpool"], probes=[{"name": "hp"}],
           rules=[{"name": "http", "fe": "LoadBalancerFrontEnd", "pool": "mybackendpool", "probe": "hp"}]),
        nic("test2vm-nic", "Test2VM", "10.0.0.5", old=old, pools=pool),
    ])  # fmt: skip
    old = False
    out["11"] = (old, [*base,
        lb("mylb", "Basic", old=old, frontends=fes, pools=["mybackendpool"],
           nat_rules=[{"name": "ssh", "fe": "LoadBalancerFrontEnd", "port": 50001, "nic": "test2vm-nic"}]),
        nic("test2vm-nic", "Test2VM", "10.0.0.5", old=old, pools=pool,
            nat_rules=(f"{MYLB}/inboundNatRules/ssh",)),
    ])  # fmt: skip
    old = True
    out["12"] = (old, [*base,
        lb("mylb", "Basic", old=old, frontends=fes, pools=["mybackendpool"]),
        nic("test2vm-nic", "Test2VM", "10.0.0.5", old=old, pools=pool),
    ])  # fmt: skip
    return out


def to_arm(obj: Any, *, resource: bool = True) -> Any:
    """CLI shape -> ARM shape: non-envelope fields go under `properties`, recursively."""
    if isinstance(obj, list):
        return [to_arm(o) for o in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, value in obj.items():
        low = key.lower()
        if low in CLI_ONLY:
            continue
        if low in CHILD_LISTS and isinstance(value, list):
            value = [to_arm(v) for v in value]
        elif low == "networkprofile":
            value = dict(value)
        if low in TOP:
            out[key] = value
        elif resource:
            props[key] = value
        else:
            out[key] = value
    if props:
        out["properties"] = props
    return out


def main() -> None:
    for folder in ("az", "arm"):
        (HERE / folder).mkdir(exist_ok=True)
    for row, (_, resources) in rows().items():
        cli = json.dumps(resources, indent=1) + "\n"
        (HERE / "az" / f"row_{row}.json").write_text(cli)
        arm = [to_arm(r) for r in resources]
        wrapped: Any
        if row in ("6", "11"):
            wrapped = {"value": arm, "nextLink": None}  # REST list response
        elif row in ("7", "12"):
            wrapped = {"count": len(arm), "data": arm, "skip_token": None, "total_records": len(arm)}
        else:
            wrapped = arm
        (HERE / "arm" / f"row_{row}.json").write_text(json.dumps(wrapped, indent=1) + "\n")


if __name__ == "__main__":
    main()
