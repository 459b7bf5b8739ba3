"""The address table: every address the inventory owns, labelled by its owner.

This is the inventory side of classification (docs/azure-egress.md §1.4 step 1-2): a
public IP or prefix is labelled from whoever references it (LB frontend, NIC ipconfig, NAT
gateway, firewall), and every ipconfig's private address is ``private``.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any

import polars as pl

from analyze.inventory.model import ADDRESS_SCHEMA, Inventory


def address_table(inv: Inventory) -> pl.DataFrame:
    """Every address the inventory owns, for classifying observed source IPs.

    One row per public IP, public IP prefix, firewall address and ipconfig private
    address (IPv4 and IPv6), in ``ADDRESS_SCHEMA``: the address or CIDR, its integer range
    (IPv4), the DESIGN.md class and ``via`` of its owner (``lb_frontend`` via the rule kind
    that gives egress, ``instance_public_ip``, ``nat_gateway``, ``firewall``, ``private``),
    the owner resource and the VMs attached to that owner.  Sorted by family, then ``start``.
    """
    vm_of_ipc = {ipc.id: inv.vm_name(ipc) or inv.name_of(ipc.nic_id) for ipc in inv.ipconfigs.values()}
    lb_vms: dict[str, set[str]] = defaultdict(set)
    for pool in inv.pools.values():
        lb_vms[pool.lb_id] |= {vm_of_ipc[i] for i in pool.ipconfig_ids if vm_of_ipc.get(i)}  # type: ignore[misc]
    for rule in inv.rules.values():
        if rule.ipconfig_id and vm_of_ipc.get(rule.ipconfig_id):
            lb_vms[rule.lb_id].add(vm_of_ipc[rule.ipconfig_id])  # type: ignore[arg-type]
    subnet_vms: dict[str, set[str]] = defaultdict(set)
    for ipc in inv.ipconfigs.values():
        if ipc.subnet_id and vm_of_ipc.get(ipc.id):
            subnet_vms[ipc.subnet_id].add(vm_of_ipc[ipc.id])  # type: ignore[arg-type]

    owners: dict[str, tuple[str, str | None, str, str, str, list[str]]] = {}
    # (class, via, owner_kind, resource, resource_id, vms) keyed by public IP / prefix id

    for fe in inv.frontends.values():
        lb = inv.load_balancers.get(fe.lb_id)
        basic = lb is not None and lb.sku == "Basic"
        kinds = set()
        for rule in inv.rules.values():
            if fe.id not in rule.frontend_ids:
                continue
            if rule.kind == "outbound":
                kinds.add("outbound_rule")
            elif rule.kind == "load_balancing" and (basic or not rule.disable_outbound_snat):
                kinds.add("lb_rule")
            elif rule.kind in ("inbound_nat", "inbound_nat_pool") and basic:
                kinds.add("nat_rule")
        via = next((v for v in ("outbound_rule", "lb_rule", "nat_rule") if v in kinds), None)
        entry = (
            "lb_frontend", via, "load_balancer",
            f"{inv.name_of(fe.lb_id)}/{fe.name}", fe.id, sorted(lb_vms[fe.lb_id]),
        )  # fmt: skip
        for rid in (fe.public_ip_id, fe.public_ip_prefix_id):
            if rid:
                owners[rid] = entry
    for ipc in inv.ipconfigs.values():
        if ipc.public_ip_id:
            vm = vm_of_ipc.get(ipc.id)
            # Named by the public IP, as predict names it: one vocabulary in every output.
            owners[ipc.public_ip_id] = (
                "instance_public_ip", None, "nic",
                inv.name_of(ipc.public_ip_id) or f"{inv.name_of(ipc.nic_id)}/{ipc.name}",
                ipc.id, [vm] if vm else [],
            )  # fmt: skip
    vnet_subnets: dict[str, list[str]] = defaultdict(list)
    for sub in inv.subnets.values():
        vnet_subnets[sub.vnet_id].append(sub.id)
    for ngw in inv.nat_gateways.values():
        served = list(ngw.subnet_ids) + (vnet_subnets.get(ngw.vnet_id, []) if ngw.vnet_id else [])
        vms = sorted({v for s in served for v in subnet_vms[s]})
        for rid in ngw.public_ip_ids + ngw.public_ip_prefix_ids:
            owners[rid] = ("nat_gateway", None, "nat_gateway", ngw.name, ngw.id, vms)
    for fw in inv.firewalls.values():
        vms = sorted(_firewall_vms(inv, fw.private_ip, vm_of_ipc))
        for rid in fw.public_ip_ids:
            owners[rid] = ("firewall", None, "firewall", fw.name, fw.id, vms)

    rows: list[dict[str, Any]] = []
    for pip in inv.public_ips.values():
        if not pip.address:
            continue
        own = owners.get(pip.id) or _other(inv, pip.owner_id, pip.nat_gateway_id)
        rows.append(_row(pip.address, own, pip.name))
    for pfx in inv.public_ip_prefixes.values():
        if not pfx.prefix:
            continue
        own = owners.get(pfx.id) or _other(inv, None, pfx.nat_gateway_id)
        rows.append(_row(pfx.prefix, own, pfx.name))
    for fw in inv.firewalls.values():
        vms = sorted(_firewall_vms(inv, fw.private_ip, vm_of_ipc))
        for address in fw.addresses:
            rows.append(_row(address, ("firewall", None, "firewall", fw.name, fw.id, vms), None))
    for ipc in inv.ipconfigs.values():
        if ipc.private_ip:
            vm = vm_of_ipc.get(ipc.id)
            own = ("private", None, "nic", f"{inv.name_of(ipc.nic_id)}/{ipc.name}", ipc.id,
                   [vm] if vm else [])  # fmt: skip
            rows.append(_row(ipc.private_ip, own, None))
    return (
        pl.DataFrame(rows, schema=ADDRESS_SCHEMA)
        .sort("ip_version", "start", "network", nulls_last=True)
    )


def _firewall_vms(inv: Inventory, private_ip: str | None, vm_of_ipc: dict[str, str | None]) -> set[str]:
    if private_ip is None:
        return set()
    out = set()
    for ipc in inv.ipconfigs.values():
        sub = inv.subnets.get(ipc.subnet_id) if ipc.subnet_id else None
        rt = inv.route_tables.get(sub.route_table_id) if sub and sub.route_table_id else None
        nic = inv.nics.get(ipc.nic_id)
        routes = (nic.effective_routes if nic and nic.effective_routes is not None else None) or (
            rt.routes if rt else ()
        )
        vm = vm_of_ipc.get(ipc.id)
        if vm and any(r.next_hop_ip == private_ip for r in routes):
            out.add(vm)
    return out


def _other(
    inv: Inventory, owner_id: str | None, nat_gateway_id: str | None
) -> tuple[str | None, None, str, str | None, str | None, list[str]]:
    if nat_gateway_id:
        return ("nat_gateway", None, "nat_gateway", inv.name_of(nat_gateway_id), nat_gateway_id, [])
    if owner_id:
        # Back-reference to something we did not load: label from the id's shape (§1.4).
        if "/frontendipconfigurations/" in owner_id:
            lb = owner_id.split("/frontendipconfigurations/")[0]
            return ("lb_frontend", None, "load_balancer", inv.name_of(lb), owner_id, [])
        if "/azurefirewallipconfigurations/" in owner_id:
            fw = owner_id.split("/azurefirewallipconfigurations/")[0]
            return ("firewall", None, "firewall", inv.name_of(fw), owner_id, [])
        if "/networkinterfaces/" in owner_id and "/ipconfigurations/" in owner_id:
            return ("instance_public_ip", None, "nic", inv.name_of(owner_id), owner_id, [])
        return (None, None, "other", inv.name_of(owner_id), owner_id, [])
    return (None, None, "unattached", None, None, [])


def _row(address: str, owner: tuple[Any, ...], public_ip: str | None) -> dict[str, Any]:
    net = ipaddress.ip_network(address, strict=False)
    v4 = net.version == 4
    cls, via, kind, resource, rid, vms = owner
    return {
        "network": str(net),
        "ip_version": net.version,
        "start": int(net.network_address) if v4 else None,
        "end": int(net.broadcast_address) if v4 else None,
        "prefix_len": net.prefixlen,
        "class": cls,
        "via": via,
        "owner_kind": kind,
        "resource": resource,
        "resource_id": rid,
        "public_ip": public_ip,
        "vms": list(vms),
    }


__all__ = ["address_table"]
