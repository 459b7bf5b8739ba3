"""Collecting records from many files, then cross-linking them into an ``Inventory``.

Loaders ``add`` records; the same resource seen twice (``az network nic list`` and an ARM
export, say) merges field by field, later non-empty values winning and id lists uniting.
``finish`` then fills each link from whichever side the input gave (a NIC's
``loadBalancerBackendAddressPools`` or the pool's ``backendIPConfigurations``; a subnet's
``natGateway`` or the NAT gateway's ``subnets``), resolves references that only differ in
subscription / resource group (ARM templates), and warns about references to resources
that were not loaded.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from typing import Any

import polars as pl

from analyze.inventory.model import (
    Allowlist,
    BackendPool,
    Firewall,
    Frontend,
    Inventory,
    IpConfig,
    KnownRange,
    LbRule,
    LoadBalancer,
    NatGateway,
    Nic,
    PrivateEndpoint,
    Probe,
    Proxy,
    PublicIp,
    PublicIpPrefix,
    Route,
    RouteTable,
    ScaleSet,
    Subnet,
    Vm,
    Vnet,
    empty_service_tags,
    id_name,
    id_parent,
    vmss_instance_id,
)

_TABLE_OF: dict[type, str] = {
    Vm: "vms",
    ScaleSet: "scale_sets",
    Nic: "nics",
    IpConfig: "ipconfigs",
    PublicIp: "public_ips",
    PublicIpPrefix: "public_ip_prefixes",
    LoadBalancer: "load_balancers",
    Frontend: "frontends",
    BackendPool: "pools",
    LbRule: "rules",
    Probe: "probes",
    NatGateway: "nat_gateways",
    Firewall: "firewalls",
    RouteTable: "route_tables",
    Subnet: "subnets",
    Vnet: "vnets",
    PrivateEndpoint: "private_endpoints",
    Proxy: "proxies",
    Allowlist: "allowlists",
    KnownRange: "known_ranges",
}


def _empty(value: Any) -> bool:
    return value is None or value == () or value == ""


def merge(old: Any, new: Any) -> Any:
    """Field-wise merge of two records of one resource: new non-empty values win, lists unite."""
    changes = {}
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if _empty(b):
            continue
        if isinstance(a, tuple) and isinstance(b, tuple):
            b = tuple(dict.fromkeys(a + b))
        changes[f.name] = b
    if isinstance(old, LbRule) and isinstance(new, LbRule):
        # False is also what a source that omits the field gives (templates leave defaults
        # out), so a True seen anywhere is kept: outbound SNAT was disabled on purpose.
        changes["disable_outbound_snat"] = old.disable_outbound_snat or new.disable_outbound_snat
    return dataclasses.replace(old, **changes)


class Builder:
    """Accumulates records from every loader; ``finish()`` returns the ``Inventory``."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in _TABLE_OF.values()}
        self.names: dict[str, str] = {}
        self.warnings: list[str] = []
        self.service_tags: list[pl.DataFrame] = []
        # Effective routes come without a NIC id: keyed by the NIC name (the file stem).
        self.effective_routes: dict[str, tuple[tuple[Route, ...], str]] = {}

    def add(self, record: Any) -> None:
        """Add (or merge) one record."""
        table = self.tables[_TABLE_OF[type(record)]]
        key = record.id if hasattr(record, "id") else record.name.lower()
        if hasattr(record, "id"):
            self.names.setdefault(key, record.name)
        table[key] = merge(table[key], record) if key in table else record

    def name(self, rid: str | None, original: str | None) -> None:
        """Remember how a referenced id was spelled (for messages about missing resources)."""
        if rid and original:
            self.names.setdefault(rid, id_name(original))

    def warn(self, message: str) -> None:
        """Record a warning (once)."""
        if message not in self.warnings:
            self.warnings.append(message)

    # -- linking --------------------------------------------------------------------------

    def finish(self) -> Inventory:
        """Cross-link the tables and return the frozen ``Inventory``."""
        t = self.tables
        self._resolve_suffixes()
        self._attach_effective_routes()

        # ipconfigs <- pools (backendIPConfigurations) / NAT rules (backendIPConfiguration)
        extra_pools: dict[str, list[str]] = defaultdict(list)
        for pool in t["pools"].values():
            for ipc in pool.ipconfig_ids:
                extra_pools[ipc].append(pool.id)
        extra_nat: dict[str, list[str]] = defaultdict(list)
        for rule in t["rules"].values():
            if rule.kind == "inbound_nat" and rule.ipconfig_id:
                extra_nat[rule.ipconfig_id].append(rule.id)
        for ipc_id in set(extra_pools) | set(extra_nat):
            ipc = t["ipconfigs"].get(ipc_id)
            if ipc is None:
                continue
            t["ipconfigs"][ipc_id] = dataclasses.replace(
                ipc,
                pool_ids=tuple(dict.fromkeys(ipc.pool_ids + tuple(extra_pools[ipc_id]))),
                nat_rule_ids=tuple(dict.fromkeys(ipc.nat_rule_ids + tuple(extra_nat[ipc_id]))),
            )
        # pools <- ipconfigs
        members: dict[str, list[str]] = defaultdict(list)
        for ipc in t["ipconfigs"].values():
            for pool_id in ipc.pool_ids:
                members[pool_id].append(ipc.id)
        for pool_id, ids in members.items():
            pool = t["pools"].get(pool_id)
            if pool is not None:
                t["pools"][pool_id] = dataclasses.replace(
                    pool, ipconfig_ids=tuple(dict.fromkeys(pool.ipconfig_ids + tuple(ids)))
                )
        # NICs <- ipconfigs / VMs; VMs <- NICs
        for ipc in t["ipconfigs"].values():
            if ipc.nic_id not in t["nics"]:
                self.warn(
                    f"{ipc.source}: ipconfig {ipc.name} belongs to NIC "
                    f"{self._n(ipc.nic_id)}, which was not loaded"
                )
        for vm in t["vms"].values():
            for nic_id in vm.nic_ids:
                nic = t["nics"].get(nic_id)
                if nic is None:
                    self.warn(
                        f"{vm.source}: VM {vm.name} references NIC {self._n(nic_id)}, which was "
                        "not loaded (add `az network nic list`), so it gets no prediction"
                    )
                elif nic.vm_id is None:
                    t["nics"][nic_id] = dataclasses.replace(nic, vm_id=vm.id)
        nics_of_vm: dict[str, list[str]] = defaultdict(list)
        for nic in t["nics"].values():
            vm_id = nic.vm_id or vmss_instance_id(nic.id)
            if vm_id:
                nics_of_vm[vm_id].append(nic.id)
        for vm_id, nic_ids in nics_of_vm.items():
            vm = t["vms"].get(vm_id)
            if vm is not None:
                t["vms"][vm_id] = dataclasses.replace(
                    vm, nic_ids=tuple(dict.fromkeys(vm.nic_ids + tuple(nic_ids)))
                )
        # subnets <- NAT gateways / route tables; NAT gateways <- subnets
        for attr, table, back in (
            ("nat_gateway_id", "nat_gateways", "subnet_ids"),
            ("route_table_id", "route_tables", "subnet_ids"),
        ):
            for owner in t[table].values():
                for sid in getattr(owner, back):
                    sub = t["subnets"].get(sid)
                    if sub is not None and getattr(sub, attr) is None:
                        t["subnets"][sid] = dataclasses.replace(sub, **{attr: owner.id})
        for sub in t["subnets"].values():
            ngw = t["nat_gateways"].get(sub.nat_gateway_id) if sub.nat_gateway_id else None
            if ngw is not None and sub.id not in ngw.subnet_ids:
                t["nat_gateways"][ngw.id] = dataclasses.replace(
                    ngw, subnet_ids=ngw.subnet_ids + (sub.id,)
                )
        # public IPs <- NAT gateways (natGateway back-reference)
        for ngw in t["nat_gateways"].values():
            for pid in ngw.public_ip_ids:
                pip = t["public_ips"].get(pid)
                if pip is not None and pip.nat_gateway_id is None:
                    t["public_ips"][pid] = dataclasses.replace(pip, nat_gateway_id=ngw.id)
        self._warn_missing()
        tags = (
            pl.concat(self.service_tags, how="vertical")
            if self.service_tags
            else empty_service_tags()
        )
        return Inventory(
            **{name: dict(table) for name, table in t.items()},
            service_tags=tags,
            names=dict(self.names),
            warnings=tuple(self.warnings),
        )

    def _n(self, rid: str | None) -> str:
        if rid is None:
            return "?"
        name = self.names.get(rid) or id_name(rid)
        if "/ipconfigurations/" in rid:  # an ipconfig means little without its NIC
            nic = rid.split("/ipconfigurations/")[0]
            return f"{self.names.get(nic) or id_name(nic)}/{name}"
        return name

    def _attach_effective_routes(self) -> None:
        nics = self.tables["nics"]
        for key, (routes, where) in self.effective_routes.items():
            hits = [n for n in nics.values() if n.name.lower() == key or n.id == key]
            if not hits:
                self.warn(
                    f"{where}: effective routes for NIC {key!r} (from the file name), "
                    "which was not loaded; name the file after the NIC"
                )
            for nic in hits:
                nics[nic.id] = dataclasses.replace(nic, effective_routes=routes)

    def _resolve_suffixes(self) -> None:
        """Point references at loaded ids that differ only in subscription / resource group.

        ARM templates build ids with ``resourceId()`` for a deployment we do not know, while
        their externally-referenced resources keep real ids, so ``/providers/...`` suffixes
        are the reliable part.  A suffix is used only when it is unique.
        """
        index: dict[str, list[str]] = defaultdict(list)
        for table in self.tables.values():
            for rid in table:
                if "/providers/" in rid:
                    index[rid.rsplit("/providers/", 1)[1]].append(rid)
        loaded = {rid for table in self.tables.values() for rid in table}

        def fix(rid: str | None) -> str | None:
            if rid is None or rid in loaded or "/providers/" not in rid:
                return rid
            hits = index.get(rid.rsplit("/providers/", 1)[1], [])
            if len(hits) == 1:
                self.names.setdefault(hits[0], self.names.get(rid, id_name(hits[0])))
                return hits[0]
            return rid

        for name, table in self.tables.items():
            if name in ("proxies", "allowlists", "known_ranges"):
                continue
            for key, rec in list(table.items()):
                changes: dict[str, Any] = {}
                for fname in _ref_fields(type(rec)):
                    value = getattr(rec, fname)
                    new: Any = (
                        tuple(fix(v) or v for v in value) if isinstance(value, tuple) else fix(value)
                    )
                    if new != value:
                        changes[fname] = new
                if changes:
                    table[key] = dataclasses.replace(rec, **changes)

    def _warn_missing(self) -> None:
        t = self.tables
        checks: list[tuple[str, str, str, str]] = [
            # (table, field, target table, what)
            ("ipconfigs", "subnet_id", "subnets", "subnet"),
            ("ipconfigs", "public_ip_id", "public_ips", "public IP"),
            ("ipconfigs", "pool_ids", "pools", "backend pool"),
            ("ipconfigs", "nat_rule_ids", "rules", "inbound NAT rule"),
            ("ipconfigs", "nat_pool_ids", "rules", "inbound NAT pool"),
            ("frontends", "public_ip_id", "public_ips", "public IP"),
            ("frontends", "public_ip_prefix_id", "public_ip_prefixes", "public IP prefix"),
            ("subnets", "nat_gateway_id", "nat_gateways", "NAT gateway"),
            ("subnets", "route_table_id", "route_tables", "route table"),
            ("nat_gateways", "public_ip_ids", "public_ips", "public IP"),
            ("nat_gateways", "public_ip_prefix_ids", "public_ip_prefixes", "public IP prefix"),
            ("firewalls", "public_ip_ids", "public_ips", "public IP"),
            ("rules", "frontend_ids", "frontends", "frontend"),
            ("rules", "ipconfig_id", "ipconfigs", "ipconfig"),
            ("pools", "ipconfig_ids", "ipconfigs", "ipconfig"),
            ("rules", "pool_ids", "pools", "backend pool"),
            ("vms", "scale_set_id", "scale_sets", "scale set"),
        ]
        for table, fname, target, what in checks:
            for rec in t[table].values():
                value = getattr(rec, fname)
                for rid in value if isinstance(value, tuple) else (value,):
                    if rid and rid not in t[target]:
                        if target == "scale_sets":
                            continue  # scale sets only add the orchestration mode
                        self.warn(
                            f"{rec.source}: {_label(table)} {rec.name} references {what} "
                            f"{self._n(rid)} ({rid}), which was not loaded"
                        )
        # LB children whose load balancer is missing: SKU unknown.
        for table in ("frontends", "pools", "rules"):
            for rec in t[table].values():
                if rec.lb_id not in t["load_balancers"]:
                    self.warn(
                        f"{rec.source}: {_label(table)} {rec.name} belongs to load balancer "
                        f"{self._n(rec.lb_id)}, which was not loaded (SKU unknown)"
                    )


def _label(table: str) -> str:
    return {
        "ipconfigs": "ipconfig",
        "frontends": "frontend",
        "subnets": "subnet",
        "nat_gateways": "NAT gateway",
        "firewalls": "firewall",
        "rules": "rule",
        "pools": "backend pool",
        "vms": "VM",
    }.get(table, table)


def lb_child_id(lb_id: str, collection: str, name: str) -> str:
    """Id of a load balancer child (``frontendipconfigurations``, ``backendaddresspools``...)."""
    return f"{lb_id}/{collection.lower()}/{name.lower()}"


__all__ = ["Builder", "id_parent", "lb_child_id", "merge"]


@functools.cache
def _ref_fields(record_type: type) -> tuple[str, ...]:
    """Fields of a record type that hold references (``*_id``, ``*_ids``; not ``id``)."""
    return tuple(
        f.name for f in dataclasses.fields(record_type)
        if f.name != "id" and (f.name.endswith("_id") or f.name.endswith("_ids"))
    )  # fmt: skip
