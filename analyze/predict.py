"""Egress prediction: for every NIC ipconfig, the source address a destination will see.

Implements the decision table of docs/azure-egress.md §1.1 (rows A-C, 1-15, first match
wins, precedence UDR/NVA > NAT gateway > instance public IP > Standard outbound rule >
implicit LB SNAT > default outbound > none), its §1.2 modifiers (group rule for
availability sets / scale sets touched by a Standard LB, protocol-limited SNAT, several
frontends, secondary ipconfigs, multi-NIC VMs) and the SNAT port allocation of §2.  Class
names are DESIGN.md's (``capture.schema.EgressClass``).

Each ``Prediction`` says which row matched, how sure that row is (``documented`` by
Microsoft, ``empirical`` from a published test, ``inferred``), one sentence naming the
resources, and SKU-aware fixes (Basic load balancers and Basic public IPs are retired since
2025-09-30, so Basic fixes name the Standard equivalent).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, Protocol, get_args

import polars as pl

from analyze.inventory.model import (
    Allowlist,
    Inventory,
    IpConfig,
    LbRule,
    LoadBalancer,
    Route,
    Subnet,
    in_networks,
)
from capture.errors import UsageError
from capture.schema import EGRESS_CLASS, EGRESS_VIA, EgressClass, EgressVia

Confidence = Literal["documented", "empirical", "inferred"]
"""How sure a prediction is: a Microsoft doc says it, a published test showed it, or our reading."""

CONFIDENCE: Final = pl.Enum(list(get_args(Confidence)))

ROWS: Final[dict[str, Confidence]] = {
    "A": "documented",  # private endpoint [R13]
    "B": "documented",  # service endpoint [R26]
    "C": "inferred",  # same / peered VNet, on-premises: no SNAT on private routing [R29]
    "1": "documented",  # UDR 0.0.0.0/0 -> VirtualAppliance [R13]
    "2": "documented",  # forced tunnelling [R13]
    "3": "documented",  # NAT gateway [R11][R13]
    "4": "documented",  # instance public IP [R1]-[R4]
    "5": "documented",  # Standard outbound rule [R4]-[R6]
    "6": "documented",  # Standard LB rule, implicit SNAT [R2][R3][R5][R6]
    "7": "documented",  # Standard public LB without outbound -> none [R5][R6]
    "8": "documented",  # Standard internal LB only -> none [R2][R5]
    "9": "documented",  # Standard IP-based pool -> default outbound [R6][R20]
    "10": "documented",  # Basic LB rule -> frontend [R1][R2][R17]
    "11": "empirical",  # Basic inbound NAT rule only -> frontend (2018 Azure China test) [R17]
    "12": "documented",  # Basic pool only -> default SNAT [R1][R2][R17]
    "13": "documented",  # Basic internal only -> default SNAT [R2]
    "14": "documented",  # default outbound access [R8][R9]
    "15": "documented",  # private subnet / VMSS Flex -> none [R8][R9][R10]
}
"""Decision-table rows and the confidence each carries before modifiers."""

BASIC_RETIRED: Final = "Basic load balancers and Basic public IPs are retired since 2025-09-30"

PREDICTION_SCHEMA: Final = pl.Schema(
    {
        "vm": pl.String(),
        "nic": pl.String(),
        "ipconfig": pl.String(),
        "private_ip": pl.String(),
        "destination": pl.String(),
        "class": EGRESS_CLASS,
        "via": EGRESS_VIA,
        "resource": pl.String(),
        # Addresses (or prefixes, as CIDR) the destination will see; empty when Azure picks.
        "expected_ips": pl.List(pl.String()),
        "row": pl.String(),
        "confidence": CONFIDENCE,
        "reason": pl.String(),
        "fixes": pl.List(pl.String()),
        "snat_ports": pl.Int64(),
    }
)
"""The prediction frame (``--format json|csv|parquet``); ``allowed`` is added with an allowlist."""

TABLE_COLUMNS: Final = (
    "vm", "class", "expected_ips", "allowed", "via", "resource", "row", "confidence",
    "snat_ports", "nic", "ipconfig", "private_ip", "destination",
)  # fmt: skip
"""Columns of the terminal table, most important first (reasons and fixes follow it)."""

_DEFAULT_PORTS: Final = ((50, 1024), (100, 512), (200, 256), (400, 128), (800, 64), (1000, 32))

SERVICE_ENDPOINT_TAGS: Final = {
    "microsoft.storage": "storage",
    "microsoft.sql": "sql",
    "microsoft.keyvault": "azurekeyvault",
    "microsoft.web": "appservice",
    "microsoft.eventhub": "eventhub",
    "microsoft.servicebus": "servicebus",
    "microsoft.azurecosmosdb": "azurecosmosdb",
    "microsoft.containerregistry": "azurecontainerregistry",
    "microsoft.cognitiveservices": "cognitiveservicesmanagement",
}
"""Service endpoint service -> the Service Tag (prefix of ``Tag.region``) of its addresses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """The expected egress of one NIC ipconfig (to one destination, or to the internet)."""

    vm: str | None
    """VM name (None for a NIC whose VM is not known)."""
    nic: str
    """NIC name."""
    ipconfig: str
    """IP configuration name."""
    ipconfig_id: str
    """Canonical id of the ipconfig."""
    private_ip: str | None
    """The ipconfig's private address."""
    destination: str | None
    """The destination predicted for; None means "the internet"."""
    egress_class: EgressClass
    """DESIGN.md class."""
    via: EgressVia | None
    """For ``lb_frontend``: outbound rule, LB rule or NAT rule."""
    resource: str | None
    """LB/frontend, public IP, NAT gateway or firewall that gives the address."""
    expected_ips: tuple[str, ...]
    """Candidate source addresses (prefixes as CIDR); empty when Azure picks the address."""
    row: str
    """Decision-table row (``A``-``C``, ``1``-``15``)."""
    confidence: Confidence
    """How sure: the row's confidence, lowered by undocumented modifiers or missing input."""
    reason: str
    """One sentence naming the resources."""
    fixes: tuple[str, ...] = ()
    """Concrete changes, SKU-aware."""
    snat_ports: int | None = None
    """SNAT ports preallocated per ipconfig (§2); None when not preallocated (ILPIP, NAT GW, default)."""
    protocols: tuple[str, ...] = ("tcp", "udp")
    """Transports that get this egress (Standard LB rules SNAT only their own protocol)."""
    modifiers: tuple[str, ...] = ()
    """§1.2 modifiers that shaped the prediction (``group_rule``, ``tcp_only``, ...)."""
    missing: tuple[str, ...] = ()
    """Referenced resources that were not loaded and the prediction depends on."""
    allowed: bool | None = None
    """With an allowlist: whether the destination accepts it (None when unknown)."""


def default_snat_ports(pool_size: int) -> int | None:
    """SNAT ports per ipconfig by backend pool size (§2.1), None above 1,000 instances."""
    for limit, ports in _DEFAULT_PORTS:
        if pool_size <= limit:
            return ports
    return None


# --- the engine ------------------------------------------------------------------------------


class _Make(Protocol):
    """Builds one ipconfig's ``Prediction`` (the closure in ``_Engine.predict``)."""

    def __call__(
        self, cls: EgressClass, row: str, reason: str, *, via: EgressVia | None = ...,
        resource: str | None = ..., ips: Sequence[str] = ..., fixes: Sequence[str] = ...,
        snat: int | None = ..., protocols: tuple[str, ...] = ..., modifiers: Sequence[str] = ...,
        confidence: Confidence | None = ..., also_missing: Sequence[str] = ...,
    ) -> Prediction: ...  # fmt: skip


StdTouch = tuple[LoadBalancer, bool]
"""A Standard load balancer a VM is a NIC-based member of (or NAT target), and whether it is public."""


class _Engine:
    def __init__(self, inv: Inventory) -> None:
        self.inv = inv
        self.ipcs_of_vm: dict[str, list[IpConfig]] = defaultdict(list)
        for ipc in inv.ipconfigs.values():
            vm = inv.vm_of(ipc)
            self.ipcs_of_vm[vm or ipc.nic_id].append(ipc)
        self.members: dict[str, list[str]] = defaultdict(list)  # group -> vm keys
        for key in self.ipcs_of_vm:
            self.members[self.group(key)].append(key)
        # Standard LB associations per VM: (lb, public?) from NIC-based pools and NAT rules.
        self.std_touch: dict[str, list[StdTouch]] = defaultdict(list)
        for key, ipcs in self.ipcs_of_vm.items():
            for ipc in ipcs:
                for lb in self.lbs_of(ipc):
                    if lb.sku == "Standard":
                        self.std_touch[key].append((lb, self.lb_public(lb.id)))

    # -- structure ---------------------------------------------------------------------------

    def group(self, vm_key: str) -> str:
        """Availability set / scale set of a VM, else the VM: Azure applies SKU rules per group."""
        vm = self.inv.vms.get(vm_key)
        if vm is not None and (vm.availability_set_id or vm.scale_set_id):
            return vm.availability_set_id or vm.scale_set_id  # type: ignore[return-value]
        if "/virtualmachinescalesets/" in vm_key and "/virtualmachines/" in vm_key:
            return vm_key.split("/virtualmachines/")[0]
        return vm_key

    def lb_public(self, lb_id: str) -> bool:
        return any(fe.is_public for fe in self.inv.frontends.values() if fe.lb_id == lb_id)

    def pools_of(self, ipc: IpConfig) -> list[str]:
        return [p for p in ipc.pool_ids if p in self.inv.pools]

    def nat_rules_of(self, ipc: IpConfig) -> list[LbRule]:
        rules = [self.inv.rules[r] for r in ipc.nat_rule_ids + ipc.nat_pool_ids if r in self.inv.rules]
        pools = set(self.pools_of(ipc))
        rules += [
            r for r in self.inv.rules.values()
            if r.kind == "inbound_nat" and set(r.pool_ids) & pools and r not in rules
        ]  # fmt: skip
        return rules

    def lbs_of(self, ipc: IpConfig) -> list[LoadBalancer]:
        ids = [self.inv.pools[p].lb_id for p in self.pools_of(ipc)]
        ids += [r.lb_id for r in self.nat_rules_of(ipc)]
        return [self.inv.load_balancers[i] for i in dict.fromkeys(ids) if i in self.inv.load_balancers]

    def pool_rules(self, pools: Iterable[str], kind: str) -> list[LbRule]:
        wanted = set(pools)
        return [r for r in self.inv.rules.values() if r.kind == kind and set(r.pool_ids) & wanted]

    def pool_size(self, pool_ids: Iterable[str]) -> int:
        vms = set()
        for pid in pool_ids:
            pool = self.inv.pools.get(pid)
            if pool is None:
                continue
            for ipc_id in pool.ipconfig_ids:
                ipc = self.inv.ipconfigs.get(ipc_id)
                vms.add((self.inv.vm_of(ipc) if ipc else None) or ipc_id)
            vms |= set(pool.addresses)
        return max(len(vms), 1)

    def sku(self, lb_id: str) -> str:
        lb = self.inv.load_balancers.get(lb_id)
        return (lb.sku if lb else None) or "Basic"

    def frontend_ips(self, fe_ids: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
        """(addresses, frontend names, missing) of public frontends."""
        ips: list[str] = []
        names: list[str] = []
        missing: list[str] = []
        for fid in dict.fromkeys(fe_ids):
            fe = self.inv.frontends.get(fid)
            if fe is None:
                missing.append(f"frontend {self.inv.name_of(fid)}")
                continue
            names.append(fe.name)
            got = self.inv.public_addresses(fe.public_ip_id, fe.public_ip_prefix_id)
            if not got:
                missing.append(
                    f"public IP {self.inv.name_of(fe.public_ip_id or fe.public_ip_prefix_id)}"
                )
            ips += got
        return list(dict.fromkeys(ips)), names, missing

    def public_frontend(self, rule: LbRule) -> bool:
        fes = [self.inv.frontends.get(f) for f in rule.frontend_ids]
        return any(fe is not None and fe.is_public for fe in fes)

    def subnet_label(self, sub: Subnet | None, sid: str | None) -> str:
        if sub is not None:
            return f"{self.inv.name_of(sub.vnet_id)}/{sub.name}"
        if sid:
            parts = sid.split("/")
            return f"{self.inv.name_of('/'.join(parts[:-2]))}/{self.inv.name_of(sid)}"
        return "?"

    # -- one ipconfig ----------------------------------------------------------------------------

    def predict(self, ipc: IpConfig, dest: str | None) -> Prediction:
        inv = self.inv
        vm_key = inv.vm_of(ipc) or ipc.nic_id
        vm_name = inv.vm_name(ipc)
        nic_name = inv.name_of(ipc.nic_id) or "?"
        who = f"{vm_name} ({nic_name}/{ipc.name})" if vm_name else f"NIC {nic_name}/{ipc.name}"
        sub = inv.subnets.get(ipc.subnet_id) if ipc.subnet_id else None
        sub_label = self.subnet_label(sub, ipc.subnet_id)
        missing: list[str] = []
        if ipc.subnet_id is None:
            missing.append("the ipconfig's subnet (not given)")
        elif sub is None:
            missing.append(f"subnet {sub_label}")
        base = dict(
            vm=vm_name, nic=nic_name, ipconfig=ipc.name, ipconfig_id=ipc.id,
            private_ip=ipc.private_ip, destination=dest,
        )  # fmt: skip

        def make(
            cls: EgressClass, row: str, reason: str, *, via: EgressVia | None = None,
            resource: str | None = None, ips: Sequence[str] = (), fixes: Sequence[str] = (),
            snat: int | None = None, protocols: tuple[str, ...] = ("tcp", "udp"),
            modifiers: Sequence[str] = (), confidence: Confidence | None = None,
            also_missing: Sequence[str] = (),
        ) -> Prediction:  # fmt: skip
            missing.extend(also_missing)
            conf = confidence or ROWS[row]
            text = reason
            if missing:
                text += f" Not loaded: {', '.join(dict.fromkeys(missing))}, so this is partly a guess."
                conf = "inferred" if conf == "documented" else conf
            return Prediction(
                **base, egress_class=cls, via=via, resource=resource,  # type: ignore[arg-type]
                expected_ips=tuple(ips), row=row, confidence=conf, reason=text,
                fixes=tuple(fixes), snat_ports=snat, protocols=protocols,
                modifiers=tuple(modifiers), missing=tuple(dict.fromkeys(missing)),
            )  # fmt: skip

        # -- rows A-C: the destination is reached privately ---------------------------------
        if dest is not None and ipc.private_ip:
            hit = self._private_path(ipc, sub, dest)
            if hit is not None:
                row, why = hit
                return make(
                    "private", row,
                    f"{who} reaches {dest} {why}, so the destination sees its private "
                    f"address {ipc.private_ip} (no SNAT).",
                    ips=[ipc.private_ip], resource=None, protocols=("tcp", "udp", "icmp"),
                )  # fmt: skip

        # -- rows 1-2: route override ---------------------------------------------------------
        nic = inv.nics.get(ipc.nic_id)
        routes: tuple[Route, ...] = ()
        origin = ""
        if nic is not None and nic.effective_routes is not None:
            routes, origin = nic.effective_routes, f"the effective routes of {nic_name}"
        elif sub is not None and sub.route_table_id:
            rt = inv.route_tables.get(sub.route_table_id)
            if rt is None:
                missing.append(f"route table {inv.name_of(sub.route_table_id)}")
            else:
                routes, origin = rt.routes, f"route table {rt.name} on subnet {sub_label}"
        route, prefix = _best_route(routes, dest)
        if route is not None:
            hop = route.next_hop_type.lower()
            if hop == "virtualappliance":
                return self._appliance(make, who, route, prefix, origin)
            if hop == "virtualnetworkgateway":
                return make(
                    "forced_tunnel", "2",
                    f"{origin[0].upper()}{origin[1:]} send {prefix} to the VPN / ExpressRoute "
                    f"gateway (forced tunnelling), so {who} leaves through on-premises: the "
                    "source is your on-premises edge NAT address, which the Azure inventory "
                    "does not hold.",
                )  # fmt: skip
            if hop == "none":
                return make(
                    "none", "1",
                    f"{origin[0].upper()}{origin[1:]} drop {prefix} (next hop None), so {who} "
                    "has no egress to it.",
                    fixes=[f"remove or change the {prefix} route with next hop None ({origin})"],
                    confidence="inferred",
                )  # fmt: skip

        # -- row 3: NAT gateway ----------------------------------------------------------------
        if sub is not None and sub.nat_gateway_id:
            ngw = inv.nat_gateways.get(sub.nat_gateway_id)
            ngw_name = inv.name_of(sub.nat_gateway_id)
            ips: list[str] = []
            if ngw is None:
                missing.append(f"NAT gateway {ngw_name}")
            else:
                for pid in ngw.public_ip_ids:
                    got = inv.public_addresses(pid, None)
                    ips += got
                    if not got:
                        missing.append(f"public IP {inv.name_of(pid)}")
                for pid in ngw.public_ip_prefix_ids:
                    got = inv.public_addresses(None, pid)
                    ips += got
                    if not got:
                        missing.append(f"public IP prefix {inv.name_of(pid)}")
            several = " (one picked at random per connection)" if len(ips) > 1 else ""
            fixes = []
            basic = [lb.name for lb in self.lbs_of(ipc) if lb.sku == "Basic"]
            if basic:
                fixes.append(
                    f"{BASIC_RETIRED}, and Basic load balancer {', '.join(basic)} cannot be used "
                    f"with a NAT gateway: upgrade it to Standard"
                )
            return make(
                "nat_gateway", "3",
                f"Subnet {sub_label} uses NAT gateway {ngw_name}, which takes precedence over "
                f"instance public IPs and load balancers, so {who} leaves from "
                f"{_ips(ips)}{several}; flows opened before it was attached keep their old address.",
                resource=ngw_name, ips=ips, fixes=fixes,
                protocols=("tcp", "udp", "icmp") if ngw and ngw.sku == "StandardV2" else ("tcp", "udp"),
            )  # fmt: skip

        # -- row 4: instance public IP ---------------------------------------------------------
        if ipc.public_ip_id:
            pip = inv.public_ips.get(ipc.public_ip_id)
            pip_name = inv.name_of(ipc.public_ip_id)
            ips = [pip.address] if pip is not None and pip.address else []
            if pip is None:
                missing.append(f"public IP {pip_name}")
            elif not pip.address:
                missing.append(f"the address of public IP {pip_name} (dynamic, deallocated?)")
            fixes = []
            if pip is not None and pip.sku == "Basic":
                fixes.append(
                    f"{BASIC_RETIRED}: upgrade public IP {pip_name} to Standard SKU "
                    "(a static address is kept)"
                )
            return make(
                "instance_public_ip", "4",
                f"{who} has instance public IP {pip_name} ({_ips(ips)}): 1:1 NAT with all "
                "ports, whether or not the VM is load balanced.",
                resource=pip_name, ips=ips, fixes=fixes, protocols=("tcp", "udp", "icmp"),
            )  # fmt: skip

        # -- load balancers ------------------------------------------------------------------------
        for pid in ipc.pool_ids:
            if pid not in inv.pools:
                missing.append(f"backend pool {inv.name_of(pid.split('/backendaddresspools/')[0])}/{inv.name_of(pid)}")
        for rid in ipc.nat_rule_ids:
            if rid not in inv.rules:
                missing.append(f"inbound NAT rule {inv.name_of(rid)}")
        pools = self.pools_of(ipc)
        primary = ipc.primary is not False
        modifiers: list[str] = []
        if not primary and (pools or ipc.nat_rule_ids):
            modifiers.append("secondary_ipconfig")
        sku_guess = any(
            (lb := inv.load_balancers.get(inv.pools[p].lb_id)) is not None and lb.sku is None
            for p in pools
        )
        if sku_guess:
            missing.append("the load balancer's SKU (taken as Basic, the old default)")
        if primary:
            pred = self._lb_rows(make, who, ipc, pools, modifiers)
            if pred is not None:
                return pred

        # -- rows 7-8: Standard LB without outbound, for this VM or its group -----------------
        touch = self.std_touch.get(vm_key, [])
        group = self.group(vm_key)
        group_touch = [
            (lb, pub, other)
            for other in self.members[group] if other != vm_key
            for lb, pub in self.std_touch.get(other, [])
        ]  # fmt: skip
        if touch or group_touch:
            return self._std_none(make, who, ipc, sub, sub_label, touch, group_touch, group, modifiers)

        # -- rows 9, 12-15: default outbound, if still eligible ---------------------------------
        return self._default(make, who, ipc, sub, sub_label, vm_key, pools, modifiers)

    # -- helpers for the rows ---------------------------------------------------------------------

    def _private_path(self, ipc: IpConfig, sub: Subnet | None, dest: str) -> tuple[str, str] | None:
        inv = self.inv
        vnet = inv.vnets.get(sub.vnet_id) if sub is not None else None
        reach = {sub.vnet_id} if sub is not None else set()
        if vnet is not None:
            reach |= set(vnet.peered_vnet_ids)
        for pe in inv.private_endpoints.values():
            pe_vnet = "/".join(pe.subnet_id.split("/")[:-2]) if pe.subnet_id else None
            if dest in pe.addresses and (pe_vnet is None or pe_vnet in reach):
                return "A", f"through private endpoint {pe.name}"
        if sub is not None and sub.service_endpoints:
            tags = inv.tags_containing(dest) or frozenset()
            for service in sub.service_endpoints:
                tag = SERVICE_ENDPOINT_TAGS.get(service.lower())
                hit = sorted(t for t in tags if tag and (t == tag or t.startswith(tag + ".")))
                if hit:
                    return "B", (
                        f"through the {service} service endpoint of subnet "
                        f"{self.subnet_label(sub, sub.id)} ({dest} is in service tag {hit[-1]})"
                    )
        if vnet is not None and in_networks(dest, vnet.address_space):
            return "C", f"inside its own VNet {vnet.name}"
        for vid in sorted(reach - {sub.vnet_id if sub else ""}):
            peer = inv.vnets.get(vid)
            if peer is not None and in_networks(dest, peer.address_space):
                return "C", f"over the peering to VNet {peer.name}"
        if vnet is not None and in_networks(dest, vnet.peered_prefixes):
            return "C", f"over a peering of VNet {vnet.name}"
        for rng in inv.known_ranges.values():
            if rng.kind == "onprem" and in_networks(dest, [rng.prefix]):
                return "C", f"on-premises range {rng.name} ({rng.prefix}) over VPN / ExpressRoute"
        return None

    def _appliance(self, make: _Make, who: str, route: Route, prefix: str, origin: str) -> Prediction:
        inv = self.inv
        fw = next(
            (f for f in inv.firewalls.values() if f.private_ip and f.private_ip == route.next_hop_ip),
            None,
        )
        hop = route.next_hop_ip or "?"
        lead = f"{origin[0].upper()}{origin[1:]} send {prefix} to virtual appliance {hop}"
        if fw is None:
            return make(
                "firewall", "1",
                f"{lead}, so {who} leaves from that appliance's egress address, which the "
                "inventory does not hold (load the firewall / NVA to know it).",
                resource=f"NVA {hop}",
            )  # fmt: skip
        fw_sub = inv.subnets.get(fw.subnet_id) if fw.subnet_id else None
        if fw_sub is not None and fw_sub.nat_gateway_id:
            ngw = inv.nat_gateways.get(fw_sub.nat_gateway_id)
            ips = []
            if ngw is not None:
                for pid in ngw.public_ip_ids:
                    ips += inv.public_addresses(pid, None)
                for pid in ngw.public_ip_prefix_ids:
                    ips += inv.public_addresses(None, pid)
            return make(
                "firewall", "1",
                f"{lead} (Azure Firewall {fw.name}), whose subnet uses NAT gateway "
                f"{inv.name_of(fw_sub.nat_gateway_id)}, so {who} leaves from {_ips(ips)}.",
                resource=fw.name, ips=ips,
            )  # fmt: skip
        ips = list(fw.addresses)
        for pid in fw.public_ip_ids:
            ips += inv.public_addresses(pid, None)
        several = " (one of them; the choice is not documented consistently)" if len(ips) > 1 else ""
        return make(
            "firewall", "1",
            f"{lead} (Azure Firewall {fw.name}), so {who} leaves from the firewall's public "
            f"IP {_ips(ips)}{several}.",
            resource=fw.name, ips=ips,
        )  # fmt: skip

    def _lb_rows(
        self, make: _Make, who: str, ipc: IpConfig, pools: list[str], modifiers: list[str]
    ) -> Prediction | None:
        inv = self.inv
        n = inv.name_of
        # row 5: Standard outbound rule
        outbound = [r for r in self.pool_rules(pools, "outbound") if self.sku(r.lb_id) == "Standard"]
        if outbound:
            ips, fes, miss = self.frontend_ips(fe for r in outbound for fe in r.frontend_ids)
            rule = outbound[0]
            pool = next(p for p in rule.pool_ids if p in pools)
            ports = rule.allocated_outbound_ports
            snat = ports if ports else default_snat_ports(self.pool_size(rule.pool_ids))
            mods = list(modifiers)
            extra = ""
            if len(outbound) > 1:
                mods.append("multiple_pools")
                extra += (" It is in several outbound rules' pools: which one wins depends on "
                          "the order the pools were joined, so expect any of them.")  # fmt: skip
            if len(ips) > 1:
                mods.append("multiple_frontends")
                extra += " Frontend IPs are consumed one at a time, so expect mostly the first."
            protos = _protocols(rule.protocol)
            if protos != ("tcp", "udp"):
                mods.append(f"{protos[0]}_only")
                extra += f" The rule is {rule.protocol}-only, so only {rule.protocol} gets SNAT."
            return make(
                "lb_frontend", "5",
                f"{who} is in backend pool {n(pool)} of Standard load balancer {n(rule.lb_id)}, "
                f"whose outbound rule {rule.name} SNATs it to frontend {', '.join(fes)} "
                f"({_ips(ips)}).{extra}",
                via="outbound_rule", resource=_lb_resource(n(rule.lb_id), fes), ips=ips,
                snat=snat, protocols=protos, modifiers=mods, also_missing=miss,
            )  # fmt: skip
        # row 6: Standard LB rule with implicit SNAT
        std_rules = [
            r for r in self.pool_rules(pools, "load_balancing")
            if self.sku(r.lb_id) == "Standard" and not r.disable_outbound_snat and self.public_frontend(r)
        ]  # fmt: skip
        if std_rules:
            ips, fes, miss = self.frontend_ips(fe for r in std_rules for fe in r.frontend_ids)
            rule = std_rules[0]
            lb = n(rule.lb_id)
            pool = next(p for p in rule.pool_ids if p in pools)
            protos = tuple(sorted({p for r in std_rules for p in _protocols(r.protocol)}))
            mods = list(modifiers)
            extra = ""
            if protos != ("tcp", "udp"):
                mods.append(f"{protos[0]}_only")
                extra += (f" SNAT is only for {'/'.join(p.upper() for p in protos)}, the "
                          "rules' protocol: other traffic gets no egress.")  # fmt: skip
            if len(ips) > 1:
                mods.append("multiple_frontends")
                extra += " With several rule frontends, Standard uses all of them at once."
            n_fe = len({fe for r in std_rules for fe in r.frontend_ids})
            tier = default_snat_ports(self.pool_size(rule.pool_ids))
            snat = min(1024, tier * n_fe) if tier else None
            names = ", ".join(r.name for r in std_rules)
            fe0 = fes[0] if fes else "?"
            return make(
                "lb_frontend", "6",
                f"{who} is in backend pool {n(pool)} of Standard load balancer {lb}, and "
                f"load-balancing rule {names} (outbound SNAT not disabled) gives it implicit "
                f"SNAT through frontend {', '.join(fes)} ({_ips(ips)}).{extra}",
                via="lb_rule", resource=_lb_resource(lb, fes), ips=ips, snat=snat,
                protocols=protos, modifiers=mods, also_missing=miss,
                fixes=[
                    f"prefer an explicit outbound rule: set disableOutboundSnat=true on "
                    f"{names} and add an outbound rule (protocol All) for backend pool "
                    f"{n(pool)} on frontend {fe0}, which also sets the SNAT ports"
                ],
            )  # fmt: skip
        # row 10: Basic LB rule
        basic_rules = [
            r for r in self.pool_rules(pools, "load_balancing")
            if self.sku(r.lb_id) == "Basic" and self.public_frontend(r)
        ]  # fmt: skip
        if basic_rules:
            ips, fes, miss = self.frontend_ips(fe for r in basic_rules for fe in r.frontend_ids)
            rule = basic_rules[0]
            lb = n(rule.lb_id)
            pool = next(p for p in rule.pool_ids if p in pools)
            mods = list(modifiers)
            extra = ""
            probe = self.inv.probes.get(rule.probe_id) if rule.probe_id else None
            if probe is not None and probe.healthy is False:
                extra += f" Probe {probe.name} is failing, which does not matter for outbound."
            if len(ips) > 1:
                mods.append("multiple_frontends")
                extra += " With several frontends Basic uses one, chosen at random."
            return make(
                "lb_frontend", "10",
                f"{who} is in backend pool {n(pool)} of Basic load balancer {lb}, and "
                f"load-balancing rule {rule.name} covers that pool, so Azure SNATs it to "
                f"frontend {', '.join(fes)} ({_ips(ips)}) for TCP and UDP, whatever the rule's "
                f"protocol.{extra}",
                via="lb_rule", resource=_lb_resource(lb, fes), ips=ips,
                snat=default_snat_ports(self.pool_size(rule.pool_ids)), modifiers=mods,
                also_missing=miss,
                fixes=[
                    f"{BASIC_RETIRED}: upgrade {lb} (and its public IP) to Standard, set "
                    f"disableOutboundSnat=true on {rule.name} and add an outbound rule for "
                    f"backend pool {n(pool)} on frontend {fes[0] if fes else '?'}, the Standard "
                    "equivalent that keeps this address"
                ],
            )  # fmt: skip
        # row 11: Basic inbound NAT rule only (empirical)
        nat = [r for r in self.nat_rules_of(ipc) if self.sku(r.lb_id) == "Basic" and self.public_frontend(r)]
        if nat:
            ips, fes, miss = self.frontend_ips(fe for r in nat for fe in r.frontend_ids)
            rule = nat[0]
            lb = n(rule.lb_id)
            via_pool = rule.kind == "inbound_nat_pool"
            conf: Confidence = "inferred" if via_pool else "empirical"
            what = "inbound NAT pool" if via_pool else "inbound NAT rule"
            pool_hint = f"backend pool {n(pools[0])}" if pools else "a backend pool"
            return make(
                "lb_frontend", "11",
                f"{who} has {what} {rule.name} on Basic load balancer {lb} and no "
                f"load-balancing rule; the 2018 Azure China test saw such a VM egress from the "
                f"NAT rule's frontend {', '.join(fes)} ({_ips(ips)}), but no Microsoft document "
                "states it.",
                via="nat_rule", resource=_lb_resource(lb, fes), ips=ips, confidence=conf,
                snat=default_snat_ports(self.pool_size(pools)) if pools else 1024,
                modifiers=modifiers, also_missing=miss,
                fixes=[
                    f"{BASIC_RETIRED}: upgrade {lb} to Standard and add an outbound rule for "
                    f"{pool_hint} on frontend {fes[0] if fes else '?'}; on Standard an inbound "
                    "NAT rule gives no egress at all",
                    "do not rely on NAT-rule egress: it is empirical and undocumented",
                ],
            )  # fmt: skip
        return None

    def _std_none(
        self, make: _Make, who: str, ipc: IpConfig, sub: Subnet | None, sub_label: str,
        touch: list[StdTouch], group_touch: list[tuple[LoadBalancer, bool, str]], group: str,
        modifiers: list[str],
    ) -> Prediction:  # fmt: skip
        n = self.inv.name_of
        own_public = [lb for lb, pub in touch if pub]
        own_internal = [lb for lb, pub in touch if not pub]
        ngw_fix = f"attach a NAT gateway (Standard public IP) to subnet {sub_label} and allowlist its address"
        mods = list(modifiers)
        if own_public or (not own_internal and any(pub for _, pub, _ in group_touch)):
            lb = own_public[0] if own_public else next(lb for lb, pub, _ in group_touch if pub)
            pools = [p for p in self.pools_of(ipc) if self.inv.pools[p].lb_id == lb.id]
            pool = n(pools[0]) if pools else None
            fe = next(
                (f.name for f in self.inv.frontends.values() if f.lb_id == lb.id and f.is_public), "?"
            )
            if own_public:
                nat_only = not pools and any(r.lb_id == lb.id for r in self.nat_rules_of(ipc))
                if "secondary_ipconfig" in mods:
                    why = (f"{who} is a secondary ipconfig, which gets no outbound through a load "
                           f"balancer, and its VM is associated with Standard load balancer {lb.name}")  # fmt: skip
                elif nat_only:
                    why = (f"{who} is only the target of inbound NAT rules of Standard load balancer "
                           f"{lb.name}, and inbound NAT rules give no outbound")  # fmt: skip
                else:
                    why = (f"{who} is in backend pool {pool} of Standard load balancer {lb.name}, "
                           "which has no outbound rule and no load-balancing rule with outbound "
                           "SNAT for it")  # fmt: skip
            else:
                mods.append("group_rule")
                _, _, other = next(t for t in group_touch if t[0].id == lb.id)
                why = (f"{who} shares {self._group_label(group)} with "
                       f"{self._vm_label(other)}, which is associated with Standard load balancer "
                       f"{lb.name}, so the whole group follows Standard rules")  # fmt: skip
            target = f"backend pool {pool}" if pool else f"a backend pool of {lb.name} holding it"
            return make(
                "none", "7",
                f"{why}; a Standard load balancer member has no default outbound access, so "
                "it has no internet egress.",
                resource=None, modifiers=mods,
                confidence="inferred" if "secondary_ipconfig" in mods else None,
                fixes=[
                    f"add an outbound rule on {lb.name} for {target} on frontend {fe}"
                    + (" (on Standard an inbound NAT rule gives no egress)" if own_public and not pools else ""),
                    ngw_fix,
                ],
            )  # fmt: skip
        lb = own_internal[0] if own_internal else group_touch[0][0]
        if not own_internal:
            mods.append("group_rule")
        return make(
            "none", "8",
            f"{who} is behind Standard internal load balancer {lb.name}"
            + ("" if own_internal else f" through {self._group_label(group)}")
            + ", which gives no outbound and turns off default outbound access for the whole "
            "availability set / scale set, so it has no internet egress.",
            resource=None, modifiers=mods,
            fixes=[ngw_fix, "or add a Standard public load balancer with an outbound rule for these VMs"],
        )  # fmt: skip

    def _group_label(self, group: str) -> str:
        kind = "scale set" if "/virtualmachinescalesets/" in group else "availability set"
        return f"{kind} {self.inv.name_of(group)}"

    def _vm_label(self, vm_key: str) -> str:
        vm = self.inv.vms.get(vm_key)
        return f"VM {vm.name if vm else self.inv.name_of(vm_key)}"

    def _default(
        self, make: _Make, who: str, ipc: IpConfig, sub: Subnet | None, sub_label: str,
        vm_key: str, pools: list[str], modifiers: list[str],
    ) -> Prediction:  # fmt: skip
        inv = self.inv
        n = inv.name_of
        mods = list(modifiers)
        ngw_fix = f"attach a NAT gateway (Standard public IP) to subnet {sub_label} and allowlist its address"
        pip_fix = f"or give {ipc.name} a Standard public IP (instance-level)"
        # eligibility for default outbound access
        vm = inv.vms.get(vm_key)
        scale_set = inv.scale_sets.get(vm.scale_set_id) if vm and vm.scale_set_id else None
        other_pip = [
            o for o in self.ipcs_of_vm.get(vm_key, []) if o.id != ipc.id and o.public_ip_id
            and o.nic_id != ipc.nic_id
        ]  # fmt: skip
        if sub is not None and sub.default_outbound_access is False:
            return make(
                "none", "15",
                f"{who} is in private subnet {sub_label} (defaultOutboundAccess=false) and nothing "
                "explicit gives it egress, so it has no internet egress.",
                fixes=[ngw_fix, pip_fix], modifiers=mods,
            )  # fmt: skip
        if scale_set is not None and scale_set.orchestration == "Flexible":
            return make(
                "none", "15",
                f"{who} is an instance of Flexible scale set {scale_set.name}, which gets no "
                "default outbound access, and nothing explicit gives it egress.",
                fixes=[ngw_fix, "or add a Standard load balancer with an outbound rule for the scale set"],
                modifiers=mods,
            )  # fmt: skip
        if other_pip:
            mods.append("multi_nic")
            return make(
                "none", "15",
                f"{who} has no egress path of its own, and NIC {n(other_pip[0].nic_id)} of the same "
                "VM has a public IP, which turns off default outbound access for the whole VM; "
                "what this NIC then uses is undocumented (probably nothing).",
                fixes=[ngw_fix, pip_fix], modifiers=mods, confidence="inferred",
            )  # fmt: skip
        unknown = "an Azure-owned default outbound address, unknown in advance (it changes when the VM is redeployed)"
        retire_note = (
            "make egress explicit: default outbound access is off for subnets created with API "
            "2025-07-01 or later, and may go away"
        )
        conf: Confidence | None = "inferred" if "secondary_ipconfig" in mods else None
        secondary = (
            f" As a secondary ipconfig, {ipc.name} gets no outbound through a load balancer."
            if "secondary_ipconfig" in mods
            else ""
        )
        # row 9: Standard IP-based pool
        if ipc.private_ip:
            for pool in inv.pools.values():
                if ipc.private_ip in pool.addresses and self.sku(pool.lb_id) == "Standard":
                    lb = n(pool.lb_id)
                    return make(
                        "default_snat", "9",
                        f"{who}'s address {ipc.private_ip} is in IP-based backend pool {pool.name} "
                        f"of Standard load balancer {lb}; an IP-based pool behaves like Basic with "
                        f"default outbound, so Azure SNATs it to {unknown}.",
                        fixes=[
                            f"make {pool.name} a NIC-based pool and add an outbound rule on {lb} for it",
                            ngw_fix,
                        ],
                        modifiers=mods,
                    )  # fmt: skip
        basic = [inv.pools[p] for p in pools if self.sku(inv.pools[p].lb_id) == "Basic"]
        public = [p for p in basic if self.lb_public(p.lb_id)]
        if public:
            pool = public[0]
            lb = n(pool.lb_id)
            fes = [f for f in inv.frontends.values() if f.lb_id == pool.lb_id and f.is_public]
            fe = fes[0] if fes else None
            fe_ips = inv.public_addresses(fe.public_ip_id, fe.public_ip_prefix_id) if fe else []
            fe_text = f"frontend {fe.name} ({_ips(fe_ips)})" if fe else "frontend"
            fe_pip = n(fe.public_ip_id) if fe and fe.public_ip_id else None
            return make(
                "default_snat", "12",
                f"{who} is in backend pool {pool.name} of Basic load balancer {lb}, but {lb} has "
                f"no load-balancing rule or inbound NAT rule for it, so Azure SNATs it to "
                f"{unknown}, not to {lb}'s {fe_text}.{secondary}",
                fixes=[
                    f"{BASIC_RETIRED}: upgrade {lb}"
                    + (f" and public IP {fe_pip}" if fe_pip else "")
                    + f" to Standard, then add an outbound rule for backend pool {pool.name} on "
                    f"{fe_text} so {self._short(who)} egresses from it",
                    f"(on the retired Basic SKU, a load-balancing rule for {pool.name} would also "
                    f"make it egress from {_ips(fe_ips)}; its probe need not be healthy)",
                    ngw_fix,
                ],
                modifiers=mods, confidence=conf,
            )  # fmt: skip
        if basic:
            lb = n(basic[0].lb_id)
            return make(
                "default_snat", "13",
                f"{who} is behind Basic internal load balancer {lb} only, which gives no outbound "
                f"of its own, so Azure SNATs it to {unknown}.{secondary}",
                fixes=[f"{BASIC_RETIRED}: upgrade {lb} to Standard and " + ngw_fix, pip_fix],
                modifiers=mods, confidence=conf,
            )  # fmt: skip
        return make(
            "default_snat", "14",
            f"{who} has no NAT gateway, instance public IP, load balancer outbound or route "
            f"override, so Azure SNATs it to {unknown}.{secondary}",
            fixes=[ngw_fix, pip_fix, retire_note], modifiers=mods, confidence=conf,
        )  # fmt: skip

    @staticmethod
    def _short(who: str) -> str:
        return who.split(" (", 1)[0]


def _lb_resource(lb: str | None, fes: list[str]) -> str:
    return ", ".join(f"{lb}/{fe}" for fe in fes) if fes else str(lb)


def _ips(ips: Sequence[str]) -> str:
    return ", ".join(ips) if ips else "address unknown"


def _protocols(protocol: str | None) -> tuple[str, ...]:
    if protocol is None or protocol.lower() == "all":
        return ("tcp", "udp")
    return (protocol.lower(),)


def _best_route(routes: Sequence[Route], dest: str | None) -> tuple[Route | None, str]:
    """The route that carries traffic to ``dest`` (internet: ``0.0.0.0/0``); longest prefix wins."""
    best: tuple[int, int, Route, str] | None = None
    origin_rank = {"user": 0, "virtualnetworkgateway": 1, "default": 2}
    ip = ipaddress.ip_address(dest) if dest else None
    for route in routes:
        if not route.active:
            continue
        for prefix in route.prefixes:
            net = ipaddress.ip_network(prefix, strict=False)
            if ip is None:
                if net.prefixlen != 0 or net.version != 4:
                    continue
            elif net.version != ip.version or ip not in net:
                continue
            key = (-net.prefixlen, origin_rank.get((route.origin or "user").lower(), 0))
            if best is None or key < best[:2]:
                best = (*key, route, prefix)
    return (best[2], best[3]) if best else (None, "")


# --- public API ------------------------------------------------------------------------------


def predict(
    inventory: Inventory,
    destination: str | None = None,
    *,
    allowlist: Allowlist | None = None,
    vm: str | None = None,
) -> list[Prediction]:
    """Predict the egress of every NIC ipconfig of ``inventory``.

    Args:
        inventory: What ``analyze.inventory.load`` returned.
        destination: Destination address; enables rows A-C (private paths) and
            destination-specific routes.  None predicts for the internet.
        allowlist: If given, fills ``Prediction.allowed`` (a default outbound address is
            never allowed: it is not known in advance) and adds the allowlist fix.
        vm: Only ipconfigs of this VM (name, case-insensitive).

    Returns:
        Exactly one prediction per ipconfig, sorted by VM, NIC and ipconfig name.

    Raises:
        UsageError: ``destination`` is not an IP address, or ``vm`` matches no VM.
    """
    dest = None
    if destination is not None:
        try:
            dest = str(ipaddress.ip_address(destination.strip()))
        except ValueError:
            raise UsageError(f"--destination: not an IP address: {destination!r}") from None
    engine = _Engine(inventory)
    ipcs = list(inventory.ipconfigs.values())
    if vm is not None:
        ipcs = [i for i in ipcs if (inventory.vm_name(i) or "").lower() == vm.lower()]
        if not ipcs:
            known = sorted({inventory.vm_name(i) or "?" for i in inventory.ipconfigs.values()})
            raise UsageError(f"--vm {vm!r}: no such VM in the inventory (known: {', '.join(known)})")
    out = [engine.predict(ipc, dest) for ipc in ipcs]
    if allowlist is not None:
        out = [_judge(p, allowlist, inventory) for p in out]
    return sorted(out, key=lambda p: ((p.vm or "").lower(), p.nic.lower(), p.ipconfig.lower()))


def _judge(pred: Prediction, allowlist: Allowlist, inv: Inventory) -> Prediction:
    if pred.egress_class in ("default_snat", "none"):
        return replace(pred, allowed=False)
    if not pred.expected_ips:
        return replace(pred, allowed=None)
    verdicts: list[bool | None] = []
    refused: list[str] = []
    for ip in pred.expected_ips:
        net = ipaddress.ip_network(ip, strict=False)
        ends = {str(net.network_address), str(net.broadcast_address)}
        answers = [allowlist.allows(a, inv.tags_containing(a)) for a in sorted(ends)]
        verdict = False if False in answers else (None if None in answers else True)
        verdicts.append(verdict)
        if verdict is False:
            refused.append(ip)
    allowed = False if False in verdicts else (None if None in verdicts else True)
    fixes = pred.fixes
    if refused:
        fixes = (*fixes, f"add {', '.join(refused)} to allowlist {allowlist.name}")
    return replace(pred, allowed=allowed, fixes=fixes)


def frame(predictions: Sequence[Prediction], *, with_allowed: bool = False) -> pl.DataFrame:
    """Predictions as a frame in ``PREDICTION_SCHEMA`` (+ ``allowed`` when ``with_allowed``).

    The column names and order are exactly the keys of ``predict --format json``.
    """
    schema = pl.Schema(PREDICTION_SCHEMA)
    if with_allowed:
        schema["allowed"] = pl.Boolean()
    rows = []
    for p in predictions:
        row = {
            "vm": p.vm, "nic": p.nic, "ipconfig": p.ipconfig, "private_ip": p.private_ip,
            "destination": p.destination, "class": p.egress_class, "via": p.via,
            "resource": p.resource, "expected_ips": list(p.expected_ips), "row": p.row,
            "confidence": p.confidence, "reason": p.reason, "fixes": list(p.fixes),
            "snat_ports": p.snat_ports,
        }  # fmt: skip
        if with_allowed:
            row["allowed"] = p.allowed
        rows.append(row)
    return pl.DataFrame(rows, schema=schema)


_IMPORTANCE: Final = {"none": 0, "default_snat": 1, "forced_tunnel": 2}


def by_importance(predictions: Sequence[Prediction]) -> list[Prediction]:
    """Problems first: refused by the allowlist, no egress, default SNAT, then the rest."""
    return sorted(
        predictions,
        key=lambda p: (
            p.allowed is not False,
            _IMPORTANCE.get(p.egress_class, 3),
            (p.vm or "").lower(),
            p.nic.lower(),
            p.ipconfig.lower(),
        ),
    )


def explain(predictions: Sequence[Prediction]) -> str:
    """The why and the fix of each prediction, as text under the terminal table."""
    lines = []
    for p in predictions:
        head = f"{p.vm or '-'} {p.nic}/{p.ipconfig}: {p.egress_class}"
        if p.allowed is not None:
            head += ", allowed" if p.allowed else ", NOT allowed"
        lines.append(f"{head} (row {p.row}, {p.confidence})")
        lines.append(f"  why: {p.reason}")
        lines += [f"  fix: {fix}" for fix in p.fixes]
    return "\n".join(lines) + ("\n" if lines else "")


__all__ = [
    "BASIC_RETIRED",
    "CONFIDENCE",
    "PREDICTION_SCHEMA",
    "ROWS",
    "TABLE_COLUMNS",
    "Confidence",
    "Prediction",
    "by_importance",
    "default_snat_ports",
    "explain",
    "frame",
    "predict",
]
