"""Egress prediction: for every NIC ipconfig, the source address a destination will see.

Implements the decision table of docs/azure-egress.md §1.1 (rows A-C, 1-15; first match
wins; precedence UDR/NVA > NAT gateway > instance public IP > Standard outbound rule >
implicit LB SNAT > default outbound > none) and its second pass in docs/egress-rows.md
(rows 16-20: address families, appliances, Azure Firewall forced tunnelling; routes by
longest prefix; protocol per frontend; service endpoint regions), per address family; its
§1.2 modifiers (group rule for availability sets / scale sets touched by a Standard LB,
protocol-limited SNAT, several frontends, secondary ipconfigs, multi-NIC VMs) and the SNAT
port allocation of §2.  Class
names are DESIGN.md's (``capture.schema.EgressClass``).

``DECISION_TABLE`` (at the end of the engine) is the table of contents: one small function
per row group of §1.1, tried in precedence order, each returning a ``Prediction`` or None,
with its reasons and fixes beside it.

Each ``Prediction`` says which row matched, how sure that row is (``documented`` by
Microsoft, ``empirical`` from a published test, ``inferred``), one sentence naming the
resources, and SKU-aware fixes (Basic load balancers and Basic public IPs are retired since
2025-09-30, so Basic fixes name the Standard equivalent).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal, get_args

import polars as pl

from analyze.inventory.model import (
    IANA_PRIVATE_RANGES,
    Allowlist,
    Family,
    Firewall,
    Inventory,
    IpConfig,
    LbRule,
    LoadBalancer,
    Route,
    Subnet,
    Vnet,
    in_networks,
)
from analyze.inventory.model import family as family_of
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
    "16": "documented",  # IPv6 ipconfig without an explicit IPv6 path -> none [R8][R9] [E1]
    "17": "inferred",  # UDR to an inventory VM (NVA): that VM's own egress [R29] [E4]
    "18": "documented",  # UDR to a NIC with IP forwarding off -> dropped [R29] [E4]
    "19": "documented",  # Azure Firewall, forced tunnelling on its subnet -> forced_tunnel [E5]
    "20": "inferred",  # destination of the other address family: not this ipconfig's traffic
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
        "family": pl.UInt8(),
        # Transports that get this egress ("tcp", "udp", "icmp").
        "protocols": pl.List(pl.String()),
        # Per transport: the addresses it leaves from (differs with per-protocol LB rules).
        "paths": pl.List(pl.Struct({"protocol": pl.String(), "ips": pl.List(pl.String())})),
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
    "microsoft.storage.global": "storage",
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

REGION_PAIRS: Final = {
    "eastus": "westus", "westus": "eastus", "eastus2": "centralus", "centralus": "eastus2",
    "northcentralus": "southcentralus", "southcentralus": "northcentralus",
    "westus2": "westcentralus", "westcentralus": "westus2", "westus3": "eastus",
    "canadacentral": "canadaeast", "canadaeast": "canadacentral",
    "brazilsouth": "southcentralus", "brazilsoutheast": "brazilsouth",
    "northeurope": "westeurope", "westeurope": "northeurope",
    "uksouth": "ukwest", "ukwest": "uksouth", "francecentral": "francesouth",
    "francesouth": "francecentral", "germanywestcentral": "germanynorth",
    "germanynorth": "germanywestcentral", "switzerlandnorth": "switzerlandwest",
    "switzerlandwest": "switzerlandnorth", "norwayeast": "norwaywest", "norwaywest": "norwayeast",
    "swedencentral": "swedensouth", "swedensouth": "swedencentral",
    "eastasia": "southeastasia", "southeastasia": "eastasia", "japaneast": "japanwest",
    "japanwest": "japaneast", "koreacentral": "koreasouth", "koreasouth": "koreacentral",
    "australiaeast": "australiasoutheast", "australiasoutheast": "australiaeast",
    "australiacentral": "australiacentral2", "australiacentral2": "australiacentral",
    "centralindia": "southindia", "southindia": "centralindia", "westindia": "southindia",
    "southafricanorth": "southafricawest", "southafricawest": "southafricanorth",
    "uaenorth": "uaecentral", "uaecentral": "uaenorth",
    "chinanorth": "chinaeast", "chinaeast": "chinanorth", "chinanorth2": "chinaeast2",
    "chinaeast2": "chinanorth2", "chinanorth3": "chinaeast3", "chinaeast3": "chinanorth3",
}  # fmt: skip
"""Azure region -> its paired region ("Azure region pairs", docs/egress-rows.md [E8]); ``Microsoft.Storage``
service endpoints cover the VNet's region and this pair."""


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
    """With an allowlist: whether the destination accepts it (None when unknown); judged
    for TCP (SSH and HTTP are TCP) when the prediction has TCP, else for its protocols."""
    family: Family = 4
    """Address family of the ipconfig: every expected address is of this family."""
    paths: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Per transport, when it differs by protocol (a TCP rule on frontend A, a UDP rule on
    frontend B): ``(("tcp", (A,)), ("udp", (B,)))``.  Empty: every protocol in
    ``protocols`` leaves from any of ``expected_ips``.  Use ``expected_for``."""
    allowed_by_protocol: tuple[tuple[str, bool | None], ...] = ()
    """With an allowlist: the verdict per protocol of ``protocols``."""

    def expected_for(self, protocol: str) -> tuple[str, ...]:
        """The addresses a ``protocol`` (``tcp``, ``udp``, ``icmp``) connection leaves from.

        Empty when that protocol gets no egress here, or when Azure picks the address.
        """
        proto = protocol.lower()
        if self.paths:
            return dict(self.paths).get(proto, ())
        return self.expected_ips if proto in self.protocols else ()


def default_snat_ports(pool_size: int) -> int | None:
    """SNAT ports per ipconfig by backend pool size (§2.1), None above 1,000 instances."""
    for limit, ports in _DEFAULT_PORTS:
        if pool_size <= limit:
            return ports
    return None


# --- the engine: shared lookups ----------------------------------------------------------------

StdTouch = tuple[LoadBalancer, bool]
"""A Standard load balancer a VM is a NIC-based member of (or NAT target), and whether it is public."""


class _Engine:
    """Lookups over one inventory that every row needs, built once per ``predict`` call."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv
        self.ipcs_of_vm: dict[str, list[IpConfig]] = defaultdict(list)
        for ipc in inv.ipconfigs.values():
            vm = inv.vm_of(ipc)
            self.ipcs_of_vm[vm or ipc.nic_id].append(ipc)
        self.members: dict[str, list[str]] = defaultdict(list)  # group -> vm keys
        for key in self.ipcs_of_vm:
            self.members[self.group(key)].append(key)
        # StandardV2 NAT gateways attached at the VNet level.
        self.vnet_ngw: dict[str, str] = {g.vnet_id: g.id for g in inv.nat_gateways.values() if g.vnet_id}
        # Appliances: ipconfigs by private address, for VirtualAppliance next hops.
        self.by_private_ip: dict[str, IpConfig] = {
            i.private_ip: i for i in inv.ipconfigs.values() if i.private_ip
        }
        self.internet_routes: dict[tuple[tuple[Route, ...], int], _Internet | None] = {}
        self.following: list[str] = []  # ipconfig ids of appliances being followed (loops)
        # Standard LB associations per VM: (lb, public?) from NIC-based pools and NAT rules.
        self.std_touch: dict[str, list[StdTouch]] = defaultdict(list)
        for key, ipcs in self.ipcs_of_vm.items():
            for ipc in ipcs:
                for lb in self.lbs_of(ipc):
                    if lb.sku == "Standard":
                        self.std_touch[key].append((lb, self.lb_public(lb.id)))

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

    def fits(self, fe_id: str, fam: int) -> bool:
        """Whether frontend ``fe_id`` can carry ``fam`` traffic (unknown family: assumed so)."""
        fe = self.inv.frontends.get(fe_id)
        return fe is None or self.inv.frontend_family(fe) in (None, fam)

    def frontend_ips(self, fe_ids: Iterable[str], fam: int = 4) -> tuple[list[str], list[str], list[str]]:
        """(addresses, frontend names, missing) of the public frontends of family ``fam``."""
        ips: list[str] = []
        names: list[str] = []
        missing: list[str] = []
        for fid in dict.fromkeys(fe_ids):
            if not self.fits(fid, fam):
                continue
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

    def public_frontend(self, rule: LbRule, fam: int = 4) -> bool:
        fes = [self.inv.frontends.get(f) for f in rule.frontend_ids if self.fits(f, fam)]
        return any(fe is not None and fe.is_public for fe in fes)

    def for_family(self, rules: Iterable[LbRule], fam: int) -> list[LbRule]:
        """The rules with a frontend of family ``fam`` (outbound and LB rules go by frontend)."""
        return [r for r in rules if any(self.fits(f, fam) for f in r.frontend_ids)]

    def internet_route(self, routes: tuple[Route, ...], fam: int) -> _Internet | None:
        """Which route carries the public internet of family ``fam`` (cached per route set)."""
        key = (routes, fam)
        if key not in self.internet_routes:
            self.internet_routes[key] = _internet_route(routes, fam)
        return self.internet_routes[key]

    def routes_of(self, ipc: IpConfig, sub: Subnet | None, missing: list[str]) -> tuple[tuple[Route, ...], str]:
        """(routes, where they come from) for an ipconfig: effective routes, else the subnet's UDRs."""
        inv = self.inv
        nic = inv.nics.get(ipc.nic_id)
        if nic is not None and nic.effective_routes is not None:
            return nic.effective_routes, f"the effective routes of {inv.name_of(ipc.nic_id)}"
        return self.subnet_routes(sub, missing)

    def subnet_routes(self, sub: Subnet | None, missing: list[str]) -> tuple[tuple[Route, ...], str]:
        """(UDRs, where they come from) of a subnet's route table; ``((), "")`` without one."""
        inv = self.inv
        if sub is not None and sub.route_table_id:
            rt = inv.route_tables.get(sub.route_table_id)
            if rt is None:
                missing.append(f"route table {inv.name_of(sub.route_table_id)}")
            else:
                return rt.routes, f"route table {rt.name} on subnet {self.subnet_label(sub, sub.id)}"
        return (), ""

    def subnet_label(self, sub: Subnet | None, sid: str | None) -> str:
        if sub is not None:
            return f"{self.inv.name_of(sub.vnet_id)}/{sub.name}"
        if sid:
            parts = sid.split("/")
            return f"{self.inv.name_of('/'.join(parts[:-2]))}/{self.inv.name_of(sid)}"
        return "?"

    def group_label(self, group: str) -> str:
        kind = "scale set" if "/virtualmachinescalesets/" in group else "availability set"
        return f"{kind} {self.inv.name_of(group)}"

    def vm_label(self, vm_key: str) -> str:
        vm = self.inv.vms.get(vm_key)
        return f"VM {vm.name if vm else self.inv.name_of(vm_key)}"

    def case(self, ipc: IpConfig, dest: str | None) -> _Case:
        inv = self.inv
        vm_name = inv.vm_name(ipc)
        nic_name = inv.name_of(ipc.nic_id) or "?"
        sub = inv.subnets.get(ipc.subnet_id) if ipc.subnet_id else None
        c = _Case(
            ipc=ipc, dest=dest, vm_key=inv.vm_of(ipc) or ipc.nic_id, vm_name=vm_name,
            nic_name=nic_name, sub=sub, sub_label=self.subnet_label(sub, ipc.subnet_id),
            who=f"{vm_name} ({nic_name}/{ipc.name})" if vm_name else f"NIC {nic_name}/{ipc.name}",
            family=ipc.family,
        )  # fmt: skip
        if ipc.subnet_id is None:
            c.missing.append("the ipconfig's subnet (not given)")
        elif sub is None:
            c.missing.append(f"subnet {c.sub_label}")
        return c

    def predict(self, ipc: IpConfig, dest: str | None) -> Prediction:
        """Try the row groups of ``DECISION_TABLE`` in order; the last one always answers."""
        c = self.case(ipc, dest)
        for _rows, _what, rule in DECISION_TABLE:
            pred = rule(self, c)
            if pred is not None:
                return pred
        raise AssertionError("the default-outbound rows always answer")  # pragma: no cover


@dataclass(slots=True, kw_only=True)
class _Case:
    """One ipconfig under prediction: what the rows read, and ``make`` to answer."""

    ipc: IpConfig
    dest: str | None
    vm_key: str
    vm_name: str | None
    nic_name: str
    who: str
    """``vm1 (vm1-nic/ipconfig1)``: how reasons name the ipconfig."""
    sub: Subnet | None
    sub_label: str
    family: Family = 4
    """The ipconfig's address family: each row looks only at paths of this family."""
    missing: list[str] = field(default_factory=list)
    """Referenced resources that were not loaded (each row group adds what it looked for)."""
    lb: _LbFacts | None = None
    """Load balancer facts, computed by the first LB row group that needs them."""

    @property
    def ngw_fix(self) -> str:
        return f"attach a NAT gateway (Standard public IP) to subnet {self.sub_label} and allowlist its address"

    def make(
        self, cls: EgressClass, row: str, reason: str, *, via: EgressVia | None = None,
        resource: str | None = None, ips: Sequence[str] = (), fixes: Sequence[str] = (),
        snat: int | None = None, protocols: tuple[str, ...] = ("tcp", "udp"),
        modifiers: Sequence[str] = (), confidence: Confidence | None = None,
        also_missing: Sequence[str] = (), paths: Sequence[tuple[str, tuple[str, ...]]] = (),
    ) -> Prediction:  # fmt: skip
        self.missing.extend(also_missing)
        conf = confidence or ROWS[row]
        text = reason
        if self.missing:
            text += f" Not loaded: {', '.join(dict.fromkeys(self.missing))}, so this is partly a guess."
            conf = "inferred" if conf == "documented" else conf
        ipc = self.ipc
        return Prediction(
            vm=self.vm_name, nic=self.nic_name, ipconfig=ipc.name, ipconfig_id=ipc.id,
            private_ip=ipc.private_ip, destination=self.dest, egress_class=cls, via=via,
            resource=resource, expected_ips=tuple(ips), row=row, confidence=conf, reason=text,
            fixes=tuple(fixes), snat_ports=snat, protocols=protocols,
            modifiers=tuple(modifiers), missing=tuple(dict.fromkeys(self.missing)),
            family=self.family, paths=tuple(paths),
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class _LbFacts:
    """What the load balancer rows (5-13) share about one ipconfig."""

    pools: list[str]
    """Loaded NIC-based pools the ipconfig is in."""
    primary: bool
    """Eligible for LB outbound: primary ipconfigs, and IPv6 secondary ones (outbound rules
    take them; a dual-stack NIC's IPv6 ipconfig is always secondary).  Other secondary
    ipconfigs get no outbound through a load balancer."""
    modifiers: list[str]
    """``secondary_ipconfig`` (or ``ipv6_secondary``) for a secondary one in a pool or NAT rule."""


def _lb_facts(e: _Engine, c: _Case) -> _LbFacts:
    if c.lb is not None:
        return c.lb
    inv, ipc = e.inv, c.ipc
    for pid in ipc.pool_ids:
        if pid not in inv.pools:
            c.missing.append(f"backend pool {inv.name_of(pid.split('/backendaddresspools/')[0])}/{inv.name_of(pid)}")
    for rid in ipc.nat_rule_ids:
        if rid not in inv.rules:
            c.missing.append(f"inbound NAT rule {inv.name_of(rid)}")
    pools = e.pools_of(ipc)
    primary = ipc.primary is not False
    modifiers: list[str] = []
    if not primary and (pools or ipc.nat_rule_ids):
        modifiers.append("ipv6_secondary" if c.family == 6 else "secondary_ipconfig")
    sku_guess = any(
        (lb := inv.load_balancers.get(inv.pools[p].lb_id)) is not None and lb.sku is None
        for p in pools
    )
    if sku_guess:
        c.missing.append("the load balancer's SKU (taken as Basic, the old default)")
    c.lb = _LbFacts(pools=pools, primary=primary or c.family == 6, modifiers=modifiers)
    return c.lb


# --- rows A-C: the destination is reached privately --------------------------------------------


def _other_family(e: _Engine, c: _Case) -> Prediction | None:
    """Row 20: an IPv4 ipconfig does not carry IPv6 traffic, and the other way round."""
    if c.dest is None or family_of(c.dest) == c.family:
        return None
    return c.make(
        "none", "20",
        f"{c.who} is an IPv{c.family} ipconfig, and {c.dest} is an IPv{family_of(c.dest)} "
        f"address: traffic to it leaves from the VM's IPv{family_of(c.dest)} ipconfig, if it "
        "has one, not from this one.",
        protocols=(),
    )  # fmt: skip


def _private_paths(e: _Engine, c: _Case) -> Prediction | None:
    """Rows A-C: private endpoint, service endpoint, own / peered VNet, on-premises."""
    if c.dest is None or not c.ipc.private_ip:
        return None
    hit = _private_path(e, c.sub, c.dest)
    if hit is None:
        return None
    row, why = hit
    return c.make(
        "private", row,
        f"{c.who} reaches {c.dest} {why}, so the destination sees its private "
        f"address {c.ipc.private_ip} (no SNAT).",
        ips=[c.ipc.private_ip], resource=None, protocols=("tcp", "udp", "icmp"),
    )  # fmt: skip


def _private_path(e: _Engine, sub: Subnet | None, dest: str) -> tuple[str, str] | None:
    inv = e.inv
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
            regions = _endpoint_regions(service, sub, vnet)
            hit = sorted(
                t for t in tags
                if tag and (t == tag or t.startswith(tag + "."))
                and (regions is None or t.partition(".")[2] in regions)
            )  # fmt: skip
            if hit:
                return "B", (
                    f"through the {service} service endpoint of subnet "
                    f"{e.subnet_label(sub, sub.id)} ({dest} is in service tag {hit[-1]})"
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


def _endpoint_regions(service: str, sub: Subnet, vnet: Vnet | None) -> set[str] | None:
    """Regions (lower case, no spaces) whose ``Tag.region`` addresses a service endpoint
    covers; None when any region does (``Microsoft.Storage.Global``, ``*``, region unknown)."""
    given = dict((s.lower(), locs) for s, locs in sub.endpoint_locations).get(service.lower())
    norm = lambda text: "".join(text.split()).lower()  # noqa: E731  ("West Europe" -> westeurope)
    if given:
        return None if "*" in given else {norm(x) for x in given}
    if service.lower() == "microsoft.storage.global" or vnet is None or not vnet.location:
        return None
    home = norm(vnet.location)
    if service.lower() == "microsoft.storage":
        return {home, REGION_PAIRS.get(home, home)}
    if service.lower() == "microsoft.sql":
        return {home}  # "applies only to Azure service traffic within a virtual network's region"
    return None


# --- rows 1-2: a route overrides the internet path ---------------------------------------------


def _route_override(e: _Engine, c: _Case) -> Prediction | None:
    """Rows 1-2, 17-19: the route that carries the traffic goes to an appliance, a gateway or nowhere.

    With a destination: its longest-prefix match.  Without: the route that carries most of
    the public internet of the ipconfig's family (split defaults such as ``0.0.0.0/1`` +
    ``128.0.0.0/1`` count together).
    """
    routes, origin = e.routes_of(c.ipc, c.sub, c.missing)
    if not routes:
        return None
    split = ""
    if c.dest is not None:
        route, prefix = _best_route(routes, c.dest)
    else:
        net = e.internet_route(routes, c.family)
        if net is None:
            return None
        route, prefix = net.route, net.prefixes
        if net.share < 1:
            split = (f" (routes split the public internet: this path carries {net.share:.0%} of it; "
                     "give --destination for one address)")  # fmt: skip
    if route is None:
        return None
    hop = route.next_hop_type.lower()
    if hop == "virtualappliance":
        return _appliance(e, c, route, prefix, origin, split)
    if hop == "virtualnetworkgateway":
        return c.make(
            "forced_tunnel", "2",
            f"{origin[0].upper()}{origin[1:]} send {prefix} to the VPN / ExpressRoute "
            f"gateway (forced tunnelling), so {c.who} leaves through on-premises: the "
            f"source is your on-premises edge NAT address, which the Azure inventory "
            f"does not hold.{split}",
            modifiers=["split_routes"] if split else (),
        )  # fmt: skip
    if hop == "none":
        return c.make(
            "none", "1",
            f"{origin[0].upper()}{origin[1:]} drop {prefix} (next hop None), so {c.who} "
            f"has no egress to it.{split}",
            fixes=[f"remove or change the {prefix} route with next hop None ({origin})"],
            confidence="inferred", modifiers=["split_routes"] if split else (),
        )  # fmt: skip
    return None


def _appliance(e: _Engine, c: _Case, route: Route, prefix: str, origin: str, split: str = "") -> Prediction:
    """Rows 1, 17-19: a ``VirtualAppliance`` next hop; the appliance's own egress is the source."""
    inv = e.inv
    hop = route.next_hop_ip or "?"
    mods = ["split_routes"] if split else []
    lead = f"{origin[0].upper()}{origin[1:]} send {prefix} to virtual appliance {hop}{split}"
    fw = next(
        (f for f in inv.firewalls.values() if f.private_ip and f.private_ip == route.next_hop_ip),
        None,
    )
    if fw is not None:
        return _azure_firewall(e, c, fw, lead, mods)
    nva = e.by_private_ip.get(route.next_hop_ip or "")
    if nva is None:
        return c.make(
            "firewall", "1",
            f"{lead}, so {c.who} leaves from that appliance's egress address, which the "
            "inventory does not hold (load the firewall / NVA to know it).",
            resource=f"NVA {hop}", modifiers=mods,
        )  # fmt: skip
    return _nva(e, c, nva, lead, mods)


def _nva(e: _Engine, c: _Case, nva: IpConfig, lead: str, mods: list[str]) -> Prediction:
    """Rows 17-18: the next hop is an inventory NIC: follow it, unless it does not forward."""
    inv = e.inv
    nic = inv.nics.get(nva.nic_id)
    label = f"{inv.vm_name(nva) or 'NIC'} ({inv.name_of(nva.nic_id)}/{nva.name})"
    forwarding = nic.ip_forwarding if nic is not None else None
    if forwarding is False:
        return c.make(
            "none", "18",
            f"{lead}, which is {label}, but IP forwarding is off on NIC "
            f"{inv.name_of(nva.nic_id)}, so Azure drops what it would forward: {c.who} has "
            "no egress there.",
            fixes=[f"enable IP forwarding on NIC {inv.name_of(nva.nic_id)} (enableIPForwarding=true) "
                   "and in the appliance's OS, or change the route"],  # fmt: skip
            modifiers=mods, protocols=(),
        )  # fmt: skip
    if nva.id in e.following or len(e.following) >= 4:
        return c.make(
            "none", "17",
            f"{lead}, which is {label}, whose own egress routes back through appliances "
            "already on the path: a routing loop, so no egress.",
            modifiers=[*mods, "routing_loop"], protocols=(),
        )  # fmt: skip
    e.following.append(nva.id)
    try:
        own = e.predict(nva, c.dest)
    finally:
        e.following.pop()
    assumed = ""
    if forwarding is None:
        mods.append("ip_forwarding_assumed")
        assumed = f" IP forwarding on NIC {inv.name_of(nva.nic_id)} is not given: assumed on."
    chain = f"{lead}, which is {label}; its own egress: {own.reason}{assumed}"
    if own.egress_class in ("none", "forced_tunnel"):
        loop = ["routing_loop"] if "routing_loop" in own.modifiers else []
        return c.make(own.egress_class, "17", chain, modifiers=[*mods, *loop], fixes=own.fixes, protocols=own.protocols)
    return c.make(
        "firewall", "17", chain, resource=inv.vm_name(nva) or inv.name_of(nva.nic_id),
        ips=own.expected_ips, modifiers=mods, protocols=own.protocols, paths=own.paths,
        confidence="inferred", also_missing=own.missing,
    )  # fmt: skip


def _azure_firewall(e: _Engine, c: _Case, fw: Firewall, lead: str, mods: list[str]) -> Prediction:
    """Rows 1 and 19: Azure Firewall SNATs to its public IPs (or its subnet's NAT gateway),
    not for its private ranges, and not at all when its own subnet is force-tunnelled."""
    inv = e.inv
    lead = f"{lead} (Azure Firewall {fw.name})"
    private = fw.snat_private_ranges if fw.snat_private_ranges is not None else IANA_PRIVATE_RANGES
    if c.dest is not None and c.ipc.private_ip and in_networks(c.dest, private):
        return c.make(
            "private", "1",
            f"{lead}, which does not SNAT destinations in its private ranges ({', '.join(private)}), "
            f"so {c.dest} sees {c.who}'s private address {c.ipc.private_ip}.",
            resource=fw.name, ips=[c.ipc.private_ip], modifiers=[*mods, "firewall_no_snat"],
        )  # fmt: skip
    fw_sub = inv.subnets.get(fw.subnet_id) if fw.subnet_id else None
    fw_routes, fw_origin = e.subnet_routes(fw_sub, [])
    tunnel = e.internet_route(fw_routes, c.family) if fw_routes else None
    if tunnel is not None and tunnel.route is not None and tunnel.route.next_hop_type.lower() != "internet":
        return c.make(
            "forced_tunnel", "19",
            f"{lead}, and {fw_origin} sends {tunnel.prefixes} to "
            f"{tunnel.route.next_hop_type} {tunnel.route.next_hop_ip or ''}".rstrip()
            + f" (forced tunnelling), so {c.who} leaves through that next hop, not from the "
            "firewall's public IPs: the source is the on-premises / next hop's egress address.",
            resource=fw.name, modifiers=mods,
        )  # fmt: skip
    if fw_sub is not None and fw_sub.nat_gateway_id:
        ngw = inv.nat_gateways.get(fw_sub.nat_gateway_id)
        ips = []
        if ngw is not None:
            for pid in ngw.public_ip_ids:
                ips += inv.public_addresses(pid, None, c.family)
            for pid in ngw.public_ip_prefix_ids:
                ips += inv.public_addresses(None, pid, c.family)
        return c.make(
            "firewall", "1",
            f"{lead}, whose subnet uses NAT gateway "
            f"{inv.name_of(fw_sub.nat_gateway_id)}, so {c.who} leaves from {_ips(ips)}.",
            resource=fw.name, ips=ips, modifiers=mods,
        )  # fmt: skip
    ips = [a for a in fw.addresses if family_of(a) == c.family]
    for pid in fw.public_ip_ids:
        ips += inv.public_addresses(pid, None, c.family)
    several = " (one of them; the choice is not documented consistently)" if len(ips) > 1 else ""
    return c.make(
        "firewall", "1",
        f"{lead}, so {c.who} leaves from the firewall's public IP {_ips(ips)}{several}.",
        resource=fw.name, ips=ips, modifiers=mods,
    )  # fmt: skip


# --- row 3: NAT gateway ------------------------------------------------------------------------


def _nat_gateway(e: _Engine, c: _Case) -> Prediction | None:
    """Row 3: a NAT gateway on the subnet beats instance public IPs and load balancers."""
    inv, sub = e.inv, c.sub
    if sub is None:
        return None
    ngw_id = sub.nat_gateway_id or e.vnet_ngw.get(sub.vnet_id)
    if not ngw_id:
        return None
    ngw = inv.nat_gateways.get(ngw_id)
    ngw_name = inv.name_of(ngw_id)
    mods = [] if sub.nat_gateway_id else ["vnet_nat_gateway"]
    if c.family == 6 and (ngw is None or ngw.sku != "StandardV2"):
        return None  # a Standard NAT gateway is IPv4 only [E2]
    ips: list[str] = []
    missing: list[str] = []
    if ngw is None:
        missing.append(f"NAT gateway {ngw_name}")
    else:
        for pid, pfx in [(p, None) for p in ngw.public_ip_ids] + [(None, p) for p in ngw.public_ip_prefix_ids]:
            got = inv.public_addresses(pid, pfx)
            mine = [a for a in got if family_of(a) == c.family]
            ips += mine
            if not got and inv.public_family(pid, pfx) in (None, c.family):
                what = "public IP" if pid else "public IP prefix"
                missing.append(f"{what} {inv.name_of(pid or pfx)}")
        if not ips and not missing:
            return None  # a StandardV2 gateway without an address of this family: no help
    c.missing.extend(missing)
    several = " (one picked at random per connection)" if len(ips) > 1 else ""
    fixes = []
    basic = [lb.name for lb in e.lbs_of(c.ipc) if lb.sku == "Basic"]
    if basic:
        fixes.append(
            f"{BASIC_RETIRED}, and Basic load balancer {', '.join(basic)} cannot be used "
            f"with a NAT gateway: upgrade it to Standard"
        )
    return c.make(
        "nat_gateway", "3",
        ("Subnet" if sub.nat_gateway_id else f"VNet {inv.name_of(sub.vnet_id)} of subnet")
        + f" {c.sub_label} uses NAT gateway {ngw_name}, which takes precedence over "
        f"instance public IPs and load balancers, so {c.who} leaves from "
        f"{_ips(ips)}{several}; flows opened before it was attached keep their old address.",
        resource=ngw_name, ips=ips, fixes=fixes, modifiers=mods,
        protocols=("tcp", "udp", "icmp") if ngw and ngw.sku == "StandardV2" else ("tcp", "udp"),
    )  # fmt: skip


# --- row 4: instance public IP -----------------------------------------------------------------


def _instance_ip(e: _Engine, c: _Case) -> Prediction | None:
    """Row 4: a public IP on the ipconfig: 1:1 NAT, whatever load balancers say."""
    inv, ipc = e.inv, c.ipc
    if not ipc.public_ip_id:
        return None
    pip = inv.public_ips.get(ipc.public_ip_id)
    pip_name = inv.name_of(ipc.public_ip_id)
    ips = [pip.address] if pip is not None and pip.address else []
    if pip is None:
        c.missing.append(f"public IP {pip_name}")
    elif not pip.address:
        c.missing.append(f"the address of public IP {pip_name} (dynamic, deallocated?)")
    fixes = []
    if pip is not None and pip.sku == "Basic":
        fixes.append(
            f"{BASIC_RETIRED}: upgrade public IP {pip_name} to Standard SKU "
            "(a static address is kept)"
        )
    return c.make(
        "instance_public_ip", "4",
        f"{c.who} has instance public IP {pip_name} ({_ips(ips)}): 1:1 NAT with all "
        "ports, whether or not the VM is load balanced.",
        resource=pip_name, ips=ips, fixes=fixes, protocols=("tcp", "udp", "icmp"),
    )  # fmt: skip


# --- rows 5, 6, 10, 11: a load balancer gives outbound -----------------------------------------


def _lb_outbound(e: _Engine, c: _Case) -> Prediction | None:
    """Rows 5, 6, 10, 11 in that order, for a primary ipconfig in a pool or NAT rule."""
    facts = _lb_facts(e, c)
    if not facts.primary:
        return None
    for row in (_row_5_outbound_rule, _row_6_standard_lb_rule, _row_10_basic_lb_rule, _row_11_basic_nat_rule):
        pred = row(e, c, facts)
        if pred is not None:
            return pred
    return None


def _by_protocol(e: _Engine, rules: Sequence[LbRule], fam: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Per transport, the frontend addresses of the rules that cover it (rule order kept)."""
    out = []
    for proto in ("tcp", "udp"):
        fe_ids = [fe for r in rules if proto in _protocols(r.protocol) for fe in r.frontend_ids]
        if fe_ids:
            out.append((proto, tuple(e.frontend_ips(fe_ids, fam)[0])))
    return tuple(out)


def _row_5_outbound_rule(e: _Engine, c: _Case, facts: _LbFacts) -> Prediction | None:
    n = e.inv.name_of
    pools = facts.pools
    outbound = e.for_family(
        (r for r in e.pool_rules(pools, "outbound") if e.sku(r.lb_id) == "Standard"), c.family
    )
    if not outbound:
        return None
    # One outbound rule per frontend and protocol: a TCP rule and a UDP rule for the same
    # pool are two paths, not two candidates for every connection.
    paths = _by_protocol(e, outbound, c.family)
    per_protocol = len({ips for _, ips in paths}) > 1
    same_proto = any(
        sum(1 for r in outbound if proto in _protocols(r.protocol)) > 1 for proto in ("tcp", "udp")
    )
    rule = outbound[0]
    ips, fes, miss = e.frontend_ips((fe for r in outbound for fe in r.frontend_ids), c.family)
    pool = next(p for p in rule.pool_ids if p in pools)
    ports = rule.allocated_outbound_ports
    snat = ports if ports else default_snat_ports(e.pool_size(rule.pool_ids))
    mods = list(facts.modifiers)
    extra = ""
    if same_proto:
        mods.append("multiple_pools")
        extra += (" It is in several outbound rules' pools: which one wins depends on "
                  "the order the pools were joined, so expect any of them.")  # fmt: skip
    if len(ips) > 1 and not per_protocol:
        mods.append("multiple_frontends")
        extra += " Frontend IPs are consumed one at a time, so expect mostly the first."
    protos = tuple(sorted({p for r in outbound for p in _protocols(r.protocol)}))
    if protos != ("tcp", "udp"):
        mods.append(f"{protos[0]}_only")
        extra += f" The rule is {rule.protocol}-only, so only {rule.protocol} gets SNAT."
    names = rule.name
    if per_protocol:
        mods.append("protocol_per_frontend")
        names = ", ".join(r.name for r in outbound)
        extra += " Each protocol has its own rule: " + "; ".join(
            f"{proto.upper()} leaves from {_ips(list(got))}" for proto, got in paths
        ) + "."
    if "ipv6_secondary" in mods:
        extra += " As an IPv6 ipconfig it may be secondary: outbound rules take IPv6 secondary ipconfigs."
    return c.make(
        "lb_frontend", "5",
        f"{c.who} is in backend pool {n(pool)} of Standard load balancer {n(rule.lb_id)}, "
        f"whose outbound rule {names} SNATs it to frontend {', '.join(fes)} "
        f"({_ips(ips)}).{extra}",
        via="outbound_rule", resource=_lb_resource(n(rule.lb_id), fes), ips=ips,
        snat=snat, protocols=protos, modifiers=mods, also_missing=miss,
        paths=paths if per_protocol else (),
    )  # fmt: skip


def _row_6_standard_lb_rule(e: _Engine, c: _Case, facts: _LbFacts) -> Prediction | None:
    n = e.inv.name_of
    pools = facts.pools
    std_rules = [
        r for r in e.pool_rules(pools, "load_balancing")
        if e.sku(r.lb_id) == "Standard" and not r.disable_outbound_snat and e.public_frontend(r, c.family)
    ]  # fmt: skip
    if not std_rules:
        return None
    ips, fes, miss = e.frontend_ips((fe for r in std_rules for fe in r.frontend_ids), c.family)
    paths = _by_protocol(e, std_rules, c.family)
    per_protocol = len({got for _, got in paths}) > 1
    rule = std_rules[0]
    lb = n(rule.lb_id)
    pool = next(p for p in rule.pool_ids if p in pools)
    protos = tuple(sorted({p for r in std_rules for p in _protocols(r.protocol)}))
    mods = list(facts.modifiers)
    extra = ""
    if protos != ("tcp", "udp"):
        mods.append(f"{protos[0]}_only")
        extra += (f" SNAT is only for {'/'.join(p.upper() for p in protos)}, the "
                  "rules' protocol: other traffic gets no egress.")  # fmt: skip
    if per_protocol:
        mods.append("protocol_per_frontend")
        extra += " SNAT follows each rule's protocol: " + "; ".join(
            f"{proto.upper()} leaves from {_ips(list(got))}" for proto, got in paths
        ) + "."
    elif len(ips) > 1:
        mods.append("multiple_frontends")
        extra += " With several rule frontends, Standard uses all of them at once."
    n_fe = len({fe for r in std_rules for fe in r.frontend_ids if e.fits(fe, c.family)})
    tier = default_snat_ports(e.pool_size(rule.pool_ids))
    snat = min(1024, tier * n_fe) if tier else None
    names = ", ".join(r.name for r in std_rules)
    fe0 = fes[0] if fes else "?"
    return c.make(
        "lb_frontend", "6",
        f"{c.who} is in backend pool {n(pool)} of Standard load balancer {lb}, and "
        f"load-balancing rule {names} (outbound SNAT not disabled) gives it implicit "
        f"SNAT through frontend {', '.join(fes)} ({_ips(ips)}).{extra}",
        via="lb_rule", resource=_lb_resource(lb, fes), ips=ips, snat=snat,
        protocols=protos, modifiers=mods, also_missing=miss, paths=paths if per_protocol else (),
        confidence="inferred" if "ipv6_secondary" in mods else None,
        fixes=[
            f"prefer an explicit outbound rule: set disableOutboundSnat=true on "
            f"{names} and add an outbound rule (protocol All) for backend pool "
            f"{n(pool)} on frontend {fe0}, which also sets the SNAT ports"
        ],
    )  # fmt: skip


def _row_10_basic_lb_rule(e: _Engine, c: _Case, facts: _LbFacts) -> Prediction | None:
    n = e.inv.name_of
    pools = facts.pools
    basic_rules = [
        r for r in e.pool_rules(pools, "load_balancing")
        if e.sku(r.lb_id) == "Basic" and e.public_frontend(r, c.family)
    ]  # fmt: skip
    if not basic_rules:
        return None
    ips, fes, miss = e.frontend_ips((fe for r in basic_rules for fe in r.frontend_ids), c.family)
    rule = basic_rules[0]
    lb = n(rule.lb_id)
    pool = next(p for p in rule.pool_ids if p in pools)
    mods = list(facts.modifiers)
    extra = ""
    probe = e.inv.probes.get(rule.probe_id) if rule.probe_id else None
    if probe is not None and probe.healthy is False:
        extra += f" Probe {probe.name} is failing, which does not matter for outbound."
    if len(ips) > 1:
        mods.append("multiple_frontends")
        extra += " With several frontends Basic uses one, chosen at random."
    return c.make(
        "lb_frontend", "10",
        f"{c.who} is in backend pool {n(pool)} of Basic load balancer {lb}, and "
        f"load-balancing rule {rule.name} covers that pool, so Azure SNATs it to "
        f"frontend {', '.join(fes)} ({_ips(ips)}) for TCP and UDP, whatever the rule's "
        f"protocol.{extra}",
        via="lb_rule", resource=_lb_resource(lb, fes), ips=ips,
        snat=default_snat_ports(e.pool_size(rule.pool_ids)), modifiers=mods,
        also_missing=miss,
        fixes=[
            f"{BASIC_RETIRED}: upgrade {lb} (and its public IP) to Standard, set "
            f"disableOutboundSnat=true on {rule.name} and add an outbound rule for "
            f"backend pool {n(pool)} on frontend {fes[0] if fes else '?'}, the Standard "
            "equivalent that keeps this address"
        ],
    )  # fmt: skip


def _row_11_basic_nat_rule(e: _Engine, c: _Case, facts: _LbFacts) -> Prediction | None:
    n = e.inv.name_of
    pools = facts.pools
    nat = [r for r in e.nat_rules_of(c.ipc) if e.sku(r.lb_id) == "Basic" and e.public_frontend(r, c.family)]
    if not nat:
        return None
    ips, fes, miss = e.frontend_ips((fe for r in nat for fe in r.frontend_ids), c.family)
    rule = nat[0]
    lb = n(rule.lb_id)
    via_pool = rule.kind == "inbound_nat_pool"
    conf: Confidence = "inferred" if via_pool else "empirical"
    what = "inbound NAT pool" if via_pool else "inbound NAT rule"
    pool_hint = f"backend pool {n(pools[0])}" if pools else "a backend pool"
    return c.make(
        "lb_frontend", "11",
        f"{c.who} has {what} {rule.name} on Basic load balancer {lb} and no "
        f"load-balancing rule; the 2018 Azure China test saw such a VM egress from the "
        f"NAT rule's frontend {', '.join(fes)} ({_ips(ips)}), but no Microsoft document "
        "states it.",
        via="nat_rule", resource=_lb_resource(lb, fes), ips=ips, confidence=conf,
        snat=default_snat_ports(e.pool_size(pools)) if pools else 1024,
        modifiers=facts.modifiers, also_missing=miss,
        fixes=[
            f"{BASIC_RETIRED}: upgrade {lb} to Standard and add an outbound rule for "
            f"{pool_hint} on frontend {fes[0] if fes else '?'}; on Standard an inbound "
            "NAT rule gives no egress at all",
            "do not rely on NAT-rule egress: it is empirical and undocumented",
        ],
    )  # fmt: skip


# --- rows 7-8: a Standard load balancer without outbound, for this VM or its group -------------


def _standard_none(e: _Engine, c: _Case) -> Prediction | None:
    """Rows 7-8: a Standard LB member (or group member) loses default outbound."""
    facts = _lb_facts(e, c)
    if c.family == 6:
        return None  # IPv6 never had default outbound: row 16 says so
    touch = e.std_touch.get(c.vm_key, [])
    group = e.group(c.vm_key)
    group_touch = [
        (lb, pub, other)
        for other in e.members[group] if other != c.vm_key
        for lb, pub in e.std_touch.get(other, [])
    ]  # fmt: skip
    if not (touch or group_touch):
        return None
    n = e.inv.name_of
    who = c.who
    own_public = [lb for lb, pub in touch if pub]
    own_internal = [lb for lb, pub in touch if not pub]
    mods = list(facts.modifiers)
    if own_public or (not own_internal and any(pub for _, pub, _ in group_touch)):
        lb = own_public[0] if own_public else next(lb for lb, pub, _ in group_touch if pub)
        pools = [p for p in e.pools_of(c.ipc) if e.inv.pools[p].lb_id == lb.id]
        pool = n(pools[0]) if pools else None
        fe = next(
            (f.name for f in e.inv.frontends.values() if f.lb_id == lb.id and f.is_public), "?"
        )
        if own_public:
            nat_only = not pools and any(r.lb_id == lb.id for r in e.nat_rules_of(c.ipc))
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
            why = (f"{who} shares {e.group_label(group)} with "
                   f"{e.vm_label(other)}, which is associated with Standard load balancer "
                   f"{lb.name}, so the whole group follows Standard rules")  # fmt: skip
        target = f"backend pool {pool}" if pool else f"a backend pool of {lb.name} holding it"
        return c.make(
            "none", "7",
            f"{why}; a Standard load balancer member has no default outbound access, so "
            "it has no internet egress.",
            resource=None, modifiers=mods,
            confidence="inferred" if "secondary_ipconfig" in mods else None,
            fixes=[
                f"add an outbound rule on {lb.name} for {target} on frontend {fe}"
                + (" (on Standard an inbound NAT rule gives no egress)" if own_public and not pools else ""),
                c.ngw_fix,
            ],
        )  # fmt: skip
    lb = own_internal[0] if own_internal else group_touch[0][0]
    if not own_internal:
        mods.append("group_rule")
    return c.make(
        "none", "8",
        f"{who} is behind Standard internal load balancer {lb.name}"
        + ("" if own_internal else f" through {e.group_label(group)}")
        + ", which gives no outbound and turns off default outbound access for the whole "
        "availability set / scale set, so it has no internet egress.",
        resource=None, modifiers=mods,
        fixes=[c.ngw_fix, "or add a Standard public load balancer with an outbound rule for these VMs"],
    )  # fmt: skip


# --- rows 9, 12-15: default outbound access, if still eligible ---------------------------------

_UNKNOWN: Final = (
    "an Azure-owned default outbound address, unknown in advance (it changes when the VM is redeployed)"
)


def _default_outbound(e: _Engine, c: _Case) -> Prediction:
    """Row 16 for IPv6; row 15 when the ipconfig is not eligible, else rows 9, 12, 13, 14."""
    if c.family == 6:
        return _row_16_no_ipv6_default(e, c)
    return _not_eligible(e, c) or _default_snat(e, c)


def _row_16_no_ipv6_default(e: _Engine, c: _Case) -> Prediction:
    """Row 16: default outbound access is IPv4 only; nothing explicit gave this IPv6 ipconfig egress."""
    mods = list(_lb_facts(e, c).modifiers)
    return c.make(
        "none", "16",
        f"{c.who} is an IPv6 ipconfig with no IPv6 path of its own (no StandardV2 NAT gateway "
        "with an IPv6 address, no IPv6 instance public IP, no load balancer rule on an IPv6 "
        "frontend), and default outbound access is IPv4 only, so it has no IPv6 internet egress.",
        modifiers=mods,
        fixes=[
            f"add an outbound rule on a Standard public load balancer with an IPv6 frontend for "
            f"a backend pool holding {c.ipc.name} (IPv6 secondary ipconfigs are allowed)",
            f"or attach a StandardV2 NAT gateway with an IPv6 public IP to subnet {c.sub_label}",
            f"or give {c.ipc.name} an IPv6 Standard public IP (instance-level)",
        ],
    )  # fmt: skip


def _not_eligible(e: _Engine, c: _Case) -> Prediction | None:
    """Row 15: a private subnet, a Flexible scale set, or another NIC's public IP."""
    inv, ipc, who = e.inv, c.ipc, c.who
    mods = list(_lb_facts(e, c).modifiers)
    pip_fix = f"or give {ipc.name} a Standard public IP (instance-level)"
    vm = inv.vms.get(c.vm_key)
    scale_set = inv.scale_sets.get(vm.scale_set_id) if vm and vm.scale_set_id else None
    other_pip = [
        o for o in e.ipcs_of_vm.get(c.vm_key, []) if o.id != ipc.id and o.public_ip_id
        and o.nic_id != ipc.nic_id
    ]  # fmt: skip
    if c.sub is not None and c.sub.default_outbound_access is False:
        return c.make(
            "none", "15",
            f"{who} is in private subnet {c.sub_label} (defaultOutboundAccess=false) and nothing "
            "explicit gives it egress, so it has no internet egress.",
            fixes=[c.ngw_fix, pip_fix], modifiers=mods,
        )  # fmt: skip
    if scale_set is not None and scale_set.orchestration == "Flexible" and not _flex_added(e, c):
        return c.make(
            "none", "15",
            f"{who} is an instance of Flexible scale set {scale_set.name}, which gets no "
            "default outbound access, and nothing explicit gives it egress.",
            fixes=[c.ngw_fix, "or add a Standard load balancer with an outbound rule for the scale set"],
            modifiers=mods,
        )  # fmt: skip
    if other_pip:
        mods.append("multi_nic")
        return c.make(
            "none", "15",
            f"{who} has no egress path of its own, and NIC {inv.name_of(other_pip[0].nic_id)} of the same "
            "VM has a public IP, which turns off default outbound access for the whole VM; "
            "what this NIC then uses is undocumented (probably nothing).",
            fixes=[c.ngw_fix, pip_fix], modifiers=mods, confidence="inferred",
        )  # fmt: skip
    return None


def _flex_added(e: _Engine, c: _Case) -> str | None:
    """The Flexible scale set a VM was added to by hand: only instances the set creates lose
    default outbound access ("Any instances created via Flexible scale sets", [R8])."""
    vm = e.inv.vms.get(c.vm_key)
    if vm is None or not vm.scale_set_added or not vm.scale_set_id:
        return None
    sset = e.inv.scale_sets.get(vm.scale_set_id)
    return sset.name if sset is not None and sset.orchestration == "Flexible" else None


def _default_snat(e: _Engine, c: _Case) -> Prediction:
    """Rows 9, 12, 13, 14: Azure SNATs to its own default outbound address."""
    inv, ipc, who = e.inv, c.ipc, c.who
    n = inv.name_of
    facts = _lb_facts(e, c)
    mods = list(facts.modifiers)
    pip_fix = f"or give {ipc.name} a Standard public IP (instance-level)"
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
    if flex := _flex_added(e, c):
        mods.append("flex_added")
        secondary += (f" It was created on its own and added to Flexible scale set {flex}, so "
                      "unlike the set's own instances it keeps default outbound access.")  # fmt: skip
    # row 9: Standard IP-based pool
    if ipc.private_ip:
        for pool in inv.pools.values():
            if ipc.private_ip in pool.addresses and e.sku(pool.lb_id) == "Standard":
                lb = n(pool.lb_id)
                return c.make(
                    "default_snat", "9",
                    f"{who}'s address {ipc.private_ip} is in IP-based backend pool {pool.name} "
                    f"of Standard load balancer {lb}; an IP-based pool behaves like Basic with "
                    f"default outbound, so Azure SNATs it to {_UNKNOWN}.",
                    fixes=[
                        f"make {pool.name} a NIC-based pool and add an outbound rule on {lb} for it",
                        c.ngw_fix,
                    ],
                    modifiers=mods,
                )  # fmt: skip
    basic = [inv.pools[p] for p in facts.pools if e.sku(inv.pools[p].lb_id) == "Basic"]
    public = [p for p in basic if e.lb_public(p.lb_id)]
    if public:
        pool = public[0]
        lb = n(pool.lb_id)
        fes = [f for f in inv.frontends.values() if f.lb_id == pool.lb_id and f.is_public]
        fe = fes[0] if fes else None
        fe_ips = inv.public_addresses(fe.public_ip_id, fe.public_ip_prefix_id) if fe else []
        fe_text = f"frontend {fe.name} ({_ips(fe_ips)})" if fe else "frontend"
        fe_pip = n(fe.public_ip_id) if fe and fe.public_ip_id else None
        return c.make(
            "default_snat", "12",
            f"{who} is in backend pool {pool.name} of Basic load balancer {lb}, but {lb} has "
            f"no load-balancing rule or inbound NAT rule for it, so Azure SNATs it to "
            f"{_UNKNOWN}, not to {lb}'s {fe_text}.{secondary}",
            fixes=[
                f"{BASIC_RETIRED}: upgrade {lb}"
                + (f" and public IP {fe_pip}" if fe_pip else "")
                + f" to Standard, then add an outbound rule for backend pool {pool.name} on "
                f"{fe_text} so {_short(who)} egresses from it",
                f"(on the retired Basic SKU, a load-balancing rule for {pool.name} would also "
                f"make it egress from {_ips(fe_ips)}; its probe need not be healthy)",
                c.ngw_fix,
            ],
            modifiers=mods, confidence=conf,
        )  # fmt: skip
    if basic:
        lb = n(basic[0].lb_id)
        return c.make(
            "default_snat", "13",
            f"{who} is behind Basic internal load balancer {lb} only, which gives no outbound "
            f"of its own, so Azure SNATs it to {_UNKNOWN}.{secondary}",
            fixes=[f"{BASIC_RETIRED}: upgrade {lb} to Standard and " + c.ngw_fix, pip_fix],
            modifiers=mods, confidence=conf,
        )  # fmt: skip
    return c.make(
        "default_snat", "14",
        f"{who} has no NAT gateway, instance public IP, load balancer outbound or route "
        f"override, so Azure SNATs it to {_UNKNOWN}.{secondary}",
        fixes=[c.ngw_fix, pip_fix, retire_note], modifiers=mods, confidence=conf,
    )  # fmt: skip


# --- the table of contents ---------------------------------------------------------------------

_Rule = Callable[[_Engine, _Case], "Prediction | None"]

DECISION_TABLE: Final[tuple[tuple[str, str, _Rule], ...]] = (
    ("20", "the destination is of the other address family", _other_family),
    ("A-C", "the destination is reached privately", _private_paths),
    ("1-2, 17-19", "a route sends the traffic to an appliance, a gateway or nowhere", _route_override),
    ("3", "a NAT gateway on the subnet", _nat_gateway),
    ("4", "an instance public IP", _instance_ip),
    ("5, 6, 10, 11", "a load balancer gives outbound", _lb_outbound),
    ("7-8", "a Standard load balancer without outbound", _standard_none),
    ("9, 12-16", "default outbound access, if still eligible (never for IPv6)", _default_outbound),
)
"""docs/azure-egress.md §1.1 in precedence order: (rows, what, rule); first answer wins."""


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


@dataclass(frozen=True, slots=True)
class _Internet:
    """The route group that carries most of the public internet of one family."""

    route: Route | None
    """One route of the group (None: the system route, next hop Internet)."""
    prefixes: str
    """The group's prefixes, as the reason names them (``0.0.0.0/1, 128.0.0.0/1``)."""
    share: float
    """Fraction of the public address space it carries (1.0: all of it)."""


_NOT_PUBLIC: Final = {
    4: ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3"),
}  # fmt: skip
_PUBLIC_V6: Final = ipaddress.ip_network("2000::/3")  # global unicast
_ORIGIN_RANK: Final = {"user": 0, "virtualnetworkgateway": 1, "default": 2}


def _public_ranges(fam: int) -> list[tuple[int, int]]:
    if fam == 6:
        return [(int(_PUBLIC_V6.network_address), int(_PUBLIC_V6.broadcast_address))]
    out, start = [], 0
    for text in _NOT_PUBLIC[4]:
        net = ipaddress.ip_network(text)
        if int(net.network_address) > start:
            out.append((start, int(net.network_address) - 1))
        start = max(start, int(net.broadcast_address) + 1)
    return [*out, (start, 2**32 - 1)] if start < 2**32 else out


def _internet_route(routes: Sequence[Route], fam: int) -> _Internet | None:
    """Longest-prefix match over the whole public internet of family ``fam``.

    The address space is cut at every route boundary; each piece goes to its longest
    matching route (ties: user > gateway > default routes), and pieces no route covers go
    to the system route (Internet).  The next hop carrying the most public addresses wins:
    ``0.0.0.0/1`` + ``128.0.0.0/1`` to an NVA beat ``0.0.0.0/0`` to the Internet.  None
    when that is the system route or next hop ``Internet`` (no override).
    """
    cands = []
    for route in routes:
        if not route.active:
            continue
        for prefix in route.prefixes:
            net = ipaddress.ip_network(prefix, strict=False)
            if net.version == fam:
                rank = _ORIGIN_RANK.get((route.origin or "user").lower(), 0)
                cands.append((int(net.network_address), int(net.broadcast_address), net.prefixlen, rank, route, prefix))
    if not cands:
        return None
    public = _public_ranges(fam)
    cuts = sorted({a for a, _, _, _, _, _ in cands} | {b + 1 for _, b, _, _, _, _ in cands}
                  | {a for a, _ in public} | {b + 1 for _, b in public})  # fmt: skip
    area: dict[tuple[str, str], int] = defaultdict(int)
    pick: dict[tuple[str, str], tuple[Route, list[str]]] = {}
    total = 0
    for lo, hi_next in zip(cuts, cuts[1:]):
        size = sum(max(0, min(hi_next - 1, b) - max(lo, a) + 1) for a, b in public)
        if not size:
            continue
        total += size
        best = max(
            (c for c in cands if c[0] <= lo and hi_next - 1 <= c[1]),
            key=lambda c: (c[2], -c[3]), default=None,
        )  # fmt: skip
        if best is None:
            area[("internet", "")] += size
            continue
        route = best[4]
        key = (route.next_hop_type.lower(), route.next_hop_ip or "")
        area[key] += size
        held = pick.setdefault(key, (route, []))
        if best[5] not in held[1]:
            held[1].append(best[5])
    if not total:
        return None
    key = max(area, key=lambda k: area[k])
    if key[0] == "internet":
        return None
    route, prefixes = pick[key]
    return _Internet(route=route, prefixes=", ".join(prefixes), share=area[key] / total)


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
    """Fill ``allowed`` (for TCP when the prediction has it) and ``allowed_by_protocol``."""
    if pred.egress_class in ("default_snat", "none"):
        return replace(pred, allowed=False, allowed_by_protocol=tuple((p, False) for p in pred.protocols))
    if not pred.expected_ips:
        return replace(pred, allowed=None, allowed_by_protocol=tuple((p, None) for p in pred.protocols))
    cache: dict[str, bool | None] = {}

    def verdict(ip: str) -> bool | None:
        if ip not in cache:
            net = ipaddress.ip_network(ip, strict=False)
            ends = {str(net.network_address), str(net.broadcast_address)}
            answers = [allowlist.allows(a, inv.tags_containing(a)) for a in sorted(ends)]
            cache[ip] = False if False in answers else (None if None in answers else True)
        return cache[ip]

    def combine(ips: Sequence[str]) -> bool | None:
        verdicts = [verdict(ip) for ip in ips]
        if not verdicts:
            return False  # this protocol gets no egress here
        return False if False in verdicts else (None if None in verdicts else True)

    by_proto = tuple((proto, combine(pred.expected_for(proto))) for proto in pred.protocols)
    judged = dict(by_proto)
    allowed = judged["tcp"] if "tcp" in judged else combine(pred.expected_ips)
    wanted = pred.expected_for("tcp") if "tcp" in judged else pred.expected_ips
    refused = [ip for ip in wanted if verdict(ip) is False]
    fixes = pred.fixes
    if refused:
        fixes = (*fixes, f"add {', '.join(refused)} to allowlist {allowlist.name}")
    return replace(pred, allowed=allowed, fixes=fixes, allowed_by_protocol=by_proto)


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
            "snat_ports": p.snat_ports, "family": p.family, "protocols": list(p.protocols),
            "paths": [{"protocol": proto, "ips": list(p.expected_for(proto))} for proto in p.protocols],
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
    "DECISION_TABLE",
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
