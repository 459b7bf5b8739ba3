"""The normalized inventory: typed tables of the Azure resources that decide egress.

Every loader (native YAML, az CLI JSON, ARM JSON and templates, Service Tags, allowlists)
fills the same tables; ``Inventory`` is the frozen result of ``analyze.inventory.load``.

Conventions:

* Resource ids are *canonical*: lower-cased, no trailing ``/`` (Azure ids are
  case-insensitive, and flow logs print them upper-case).  The original spelling of each
  name is kept in ``name`` and, for references to resources that were not loaded, in
  ``Inventory.names``.
* References are ids.  A reference to a resource that was not loaded stays in place (so a
  prediction can say what is missing) and gives a warning.
* Tables are ``Mapping[id, record]`` and iterate in load order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Final, Literal, get_args

import polars as pl

from capture.schema import EGRESS_CLASS, EGRESS_VIA, EgressClass, EgressVia

Sku = Literal["Basic", "Standard", "StandardV2", "Gateway"]
"""SKU name of a load balancer, public IP, prefix or NAT gateway."""

RuleKind = Literal["load_balancing", "inbound_nat", "inbound_nat_pool", "outbound"]
"""The four load balancer rule collections."""

RuleProtocol = Literal["Tcp", "Udp", "All"]
"""Transport protocol of a load balancer rule."""

Orchestration = Literal["Uniform", "Flexible"]
"""Orchestration mode of a virtual machine scale set."""

ProxyKind = Literal["application_gateway", "front_door", "reverse_proxy", "other"]
"""What sits in front of a destination and rewrites the client address (X-Forwarded-For)."""

RangeKind = Literal["onprem", "other"]
"""A known address range: ``onprem`` is reached privately over VPN / ExpressRoute."""

Family = Literal[4, 6]
"""IP address family (``privateIPAddressVersion`` / ``publicIPAddressVersion``)."""

RuleAction = Literal["allow", "deny"]
"""What an allowlist rule does with a matching source address."""

SKUS: Final[tuple[Sku, ...]] = get_args(Sku)
RULE_KINDS: Final[tuple[RuleKind, ...]] = get_args(RuleKind)
RULE_PROTOCOLS: Final[tuple[RuleProtocol, ...]] = get_args(RuleProtocol)
ORCHESTRATIONS: Final[tuple[Orchestration, ...]] = get_args(Orchestration)
PROXY_KINDS: Final[tuple[ProxyKind, ...]] = get_args(ProxyKind)
RANGE_KINDS: Final[tuple[RangeKind, ...]] = get_args(RangeKind)

IANA_PRIVATE_RANGES: Final = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
"""What Azure Firewall does not SNAT by default ("IANA private ranges": RFC 1918 and RFC 6598)."""

RULE_KIND: Final = pl.Enum(list(RULE_KINDS))
OWNER_KIND: Final = pl.Enum(
    ["load_balancer", "nic", "nat_gateway", "firewall", "other", "unattached"]
)


def canon_id(text: str) -> str:
    """Canonical form of a resource id: lower case, no trailing slash."""
    return text.strip().rstrip("/").lower()


def id_name(rid: str) -> str:
    """The last segment of a resource id (its name)."""
    return rid.rstrip("/").rsplit("/", 1)[-1]


def id_parent(rid: str, levels: int = 1) -> str:
    """The id of the parent resource, ``levels`` type/name pairs up."""
    parts = rid.rstrip("/").split("/")
    return "/".join(parts[: len(parts) - 2 * levels])


def id_type(rid: str) -> str:
    """The lower-case resource type segment of an id (``loadbalancers``, ``subnets``, ...)."""
    parts = rid.rstrip("/").split("/")
    return parts[-2].lower() if len(parts) >= 2 else ""


def ip_int(address: str) -> int:
    """Integer value of an IPv4 or IPv6 address."""
    return int(ipaddress.ip_address(address))


def family(address: str | None) -> Family | None:
    """4 or 6 for an address or CIDR text, None for None."""
    if not address:
        return None
    return 6 if ":" in address else 4


def in_networks(address: str, networks: Iterable[str]) -> bool:
    """Whether ``address`` falls in any of the CIDR ``networks`` (mixed versions allowed)."""
    ip = ipaddress.ip_address(address)
    for net in networks:
        n = ipaddress.ip_network(net, strict=False)
        if n.version == ip.version and ip in n:
            return True
    return False


# --- compute ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Vm:
    """A virtual machine (standalone, in an availability set, or a scale-set instance)."""

    id: str
    """Canonical resource id."""
    name: str
    """VM name as Azure spells it."""
    availability_set_id: str | None = None
    """Availability set the VM belongs to: Azure applies SKU rules to the whole set."""
    scale_set_id: str | None = None
    """Scale set of a VMSS instance (Uniform instance ids or Flexible ``virtualMachineScaleSet``)."""
    nic_ids: tuple[str, ...] = ()
    """NICs attached to the VM."""
    location: str | None = None
    """Azure region (``location``), as written."""
    scale_set_added: bool | None = None
    """Flexible scale set: True when the VM was created on its own and then added to the set
    (it keeps default outbound access; instances the set creates get none)."""
    source: str = ""
    """Where the record was read (``file: path``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleSet:
    """A virtual machine scale set."""

    id: str
    """Canonical resource id."""
    name: str
    """Scale set name."""
    orchestration: Orchestration | None = None
    """``Flexible`` instances get no default outbound access; absent means unknown."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One route: a UDR of a route table or an entry of a NIC's effective routes."""

    prefixes: tuple[str, ...]
    """Destination prefixes (a UDR has one; effective routes may list several)."""
    next_hop_type: str
    """``VirtualAppliance``, ``VirtualNetworkGateway``, ``Internet``, ``VnetLocal``, ``None``, ..."""
    next_hop_ip: str | None = None
    """Next hop address, for ``VirtualAppliance``."""
    name: str | None = None
    """Route name, when it has one."""
    origin: str | None = None
    """Effective routes only: ``Default``, ``User``, ``VirtualNetworkGateway``."""
    active: bool = True
    """Effective routes only: ``state`` is ``Active``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Nic:
    """A network interface."""

    id: str
    """Canonical resource id (VMSS Uniform NIC ids hang under the scale set's VM)."""
    name: str
    """NIC name."""
    vm_id: str | None = None
    """The VM the NIC is attached to."""
    primary: bool | None = None
    """Whether it is the VM's primary NIC; None when the source does not say."""
    effective_routes: tuple[Route, ...] | None = None
    """``az network nic show-effective-route-table``, when loaded: the routing truth."""
    ip_forwarding: bool | None = None
    """``enableIPForwarding``: an appliance NIC forwards traffic not addressed to it."""
    location: str | None = None
    """Azure region."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IpConfig:
    """A NIC IP configuration: the unit egress is predicted for."""

    id: str
    """Canonical resource id (``<nic id>/ipconfigurations/<name>``)."""
    name: str
    """IP configuration name."""
    nic_id: str
    """The NIC it belongs to."""
    primary: bool | None = None
    """Primary ipconfig of its NIC; secondary ones get no outbound through a load balancer."""
    private_ip: str | None = None
    """Private address."""
    subnet_id: str | None = None
    """Subnet (NAT gateway, route table and ``defaultOutboundAccess`` live there)."""
    public_ip_id: str | None = None
    """Instance-level public IP."""
    pool_ids: tuple[str, ...] = ()
    """NIC-based load balancer backend pools (``loadBalancerBackendAddressPools``)."""
    nat_rule_ids: tuple[str, ...] = ()
    """Inbound NAT rules (``loadBalancerInboundNatRules``)."""
    nat_pool_ids: tuple[str, ...] = ()
    """Inbound NAT pools of a VMSS Uniform (``loadBalancerInboundNatPools``)."""
    version: Family | None = None
    """``privateIPAddressVersion``; None: taken from the address (IPv4 when there is none)."""
    source: str = ""
    """Where the record was read."""

    @property
    def family(self) -> Family:
        """The ipconfig's address family: an ipconfig has exactly one."""
        return self.version or family(self.private_ip) or 4


# --- network ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicIp:
    """A public IP address resource."""

    id: str
    """Canonical resource id."""
    name: str
    """Public IP name."""
    address: str | None = None
    """The address; None for a dynamic Basic IP whose owner is deallocated, or not loaded."""
    sku: Sku | None = None
    """``Basic`` (retired 2025-09-30) or ``Standard``."""
    prefix_id: str | None = None
    """The public IP prefix it was taken from."""
    owner_id: str | None = None
    """``ipConfiguration`` back-reference: NIC ipconfig, LB frontend, firewall ipconfig, ..."""
    nat_gateway_id: str | None = None
    """NAT gateway using it."""
    version: Family | None = None
    """``publicIPAddressVersion``; None: taken from the address."""
    source: str = ""
    """Where the record was read."""

    @property
    def family(self) -> Family | None:
        """IPv4 or IPv6 (None when neither the version nor the address is known)."""
        return self.version or family(self.address)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicIpPrefix:
    """A public IP prefix (a CIDR block of public addresses)."""

    id: str
    """Canonical resource id."""
    name: str
    """Prefix name."""
    prefix: str | None = None
    """The CIDR (``ipPrefix``)."""
    sku: Sku | None = None
    """SKU."""
    nat_gateway_id: str | None = None
    """NAT gateway using it."""
    version: Family | None = None
    """``publicIPAddressVersion``; None: taken from the CIDR."""
    source: str = ""
    """Where the record was read."""

    @property
    def family(self) -> Family | None:
        """IPv4 or IPv6 (None when neither the version nor the CIDR is known)."""
        return self.version or family(self.prefix)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadBalancer:
    """A load balancer (its frontends, pools, rules and probes are tables of their own)."""

    id: str
    """Canonical resource id."""
    name: str
    """Load balancer name."""
    sku: Sku | None = None
    """``Basic`` or ``Standard``; decides most of the egress table."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Frontend:
    """A load balancer frontend IP configuration."""

    id: str
    """Canonical resource id."""
    name: str
    """Frontend name."""
    lb_id: str
    """Its load balancer."""
    public_ip_id: str | None = None
    """Public frontend: its public IP."""
    public_ip_prefix_id: str | None = None
    """Public frontend on a prefix: every address of the prefix."""
    private_ip: str | None = None
    """Internal frontend: its private address."""
    subnet_id: str | None = None
    """Internal frontend: its subnet."""
    version: Family | None = None
    """``privateIPAddressVersion`` of an internal frontend; public ones take their IP's."""
    source: str = ""
    """Where the record was read."""

    @property
    def is_public(self) -> bool:
        """Public or internal is decided per frontend, not from a load balancer flag."""
        return bool(self.public_ip_id or self.public_ip_prefix_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendPool:
    """A load balancer backend pool, NIC-based or IP-based."""

    id: str
    """Canonical resource id."""
    name: str
    """Pool name."""
    lb_id: str
    """Its load balancer."""
    ipconfig_ids: tuple[str, ...] = ()
    """NIC-based members (``backendIPConfigurations``)."""
    addresses: tuple[str, ...] = ()
    """IP-based members (``loadBalancerBackendAddresses[].ipAddress``)."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LbRule:
    """A load-balancing rule, inbound NAT rule, inbound NAT pool or outbound rule."""

    id: str
    """Canonical resource id."""
    name: str
    """Rule name."""
    lb_id: str
    """Its load balancer."""
    kind: RuleKind
    """Which rule collection it comes from."""
    protocol: RuleProtocol | None = None
    """``Tcp``, ``Udp`` or ``All``."""
    frontend_ids: tuple[str, ...] = ()
    """Frontends (outbound rules may have several)."""
    pool_ids: tuple[str, ...] = ()
    """Backend pools (load-balancing, outbound, and pool-targeted inbound NAT rules)."""
    ipconfig_id: str | None = None
    """Single-VM inbound NAT rule: its target ipconfig (``backendIPConfiguration``)."""
    frontend_port: int | None = None
    """Frontend port, or the start of a NAT pool / v2 NAT rule port range."""
    frontend_port_end: int | None = None
    """End of a NAT pool / v2 NAT rule port range."""
    backend_port: int | None = None
    """Backend port."""
    probe_id: str | None = None
    """Health probe of a load-balancing rule."""
    disable_outbound_snat: bool = False
    """Load-balancing rule: no implicit SNAT through this rule's frontend."""
    allocated_outbound_ports: int | None = None
    """Outbound rule: SNAT ports per instance; 0 means the default allocation table."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """A load balancer health probe."""

    id: str
    """Canonical resource id."""
    name: str
    """Probe name."""
    lb_id: str
    """Its load balancer."""
    protocol: str | None = None
    """``Tcp``, ``Http``, ``Https``."""
    port: int | None = None
    """Probed port."""
    healthy: bool | None = None
    """Native YAML only: whether the probe succeeds.  Egress does not depend on it."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NatGateway:
    """A NAT gateway."""

    id: str
    """Canonical resource id."""
    name: str
    """NAT gateway name."""
    sku: Sku | None = None
    """``Standard`` or ``StandardV2``."""
    public_ip_ids: tuple[str, ...] = ()
    """Its public IPs."""
    public_ip_prefix_ids: tuple[str, ...] = ()
    """Its public IP prefixes."""
    subnet_ids: tuple[str, ...] = ()
    """Subnets it serves (back-reference; the subnet's ``natGateway`` is the same link)."""
    vnet_id: str | None = None
    """StandardV2 attached at the VNet level (``sourceVirtualNetwork``): every subnet of it."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Firewall:
    """An Azure Firewall (or any NVA that the inventory names)."""

    id: str
    """Canonical resource id."""
    name: str
    """Firewall name."""
    public_ip_ids: tuple[str, ...] = ()
    """Public IPs of its ipconfigs."""
    addresses: tuple[str, ...] = ()
    """Public addresses given directly (vWAN ``hubIPAddresses``, native YAML)."""
    private_ip: str | None = None
    """Private address: what a UDR's ``nextHopIpAddress`` points at."""
    subnet_id: str | None = None
    """Its subnet (``AzureFirewallSubnet``); a NAT gateway there takes over its egress."""
    snat_private_ranges: tuple[str, ...] | None = None
    """Destinations it does not SNAT (``Network.SNAT.PrivateRanges``); None: IANA private ranges."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteTable:
    """A route table (user-defined routes)."""

    id: str
    """Canonical resource id."""
    name: str
    """Route table name."""
    routes: tuple[Route, ...] = ()
    """Its routes."""
    subnet_ids: tuple[str, ...] = ()
    """Subnets it is attached to (back-reference)."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Subnet:
    """A subnet of a virtual network."""

    id: str
    """Canonical resource id."""
    name: str
    """Subnet name."""
    vnet_id: str
    """Its virtual network."""
    prefixes: tuple[str, ...] = ()
    """Address prefixes."""
    nat_gateway_id: str | None = None
    """NAT gateway attached to the subnet."""
    route_table_id: str | None = None
    """Route table attached to the subnet."""
    default_outbound_access: bool | None = None
    """``False`` makes a private subnet; absent (None) means the old default, true."""
    service_endpoints: tuple[str, ...] = ()
    """Service endpoint services (``Microsoft.Storage``, ``Microsoft.Storage.Global``, ...)."""
    endpoint_locations: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``serviceEndpoints[].locations`` per service, when given (``("Microsoft.Storage",
    ("westeurope", "northeurope"))``); a service without an entry covers its default regions."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Vnet:
    """A virtual network and its peerings."""

    id: str
    """Canonical resource id."""
    name: str
    """VNet name."""
    address_space: tuple[str, ...] = ()
    """Address prefixes."""
    peered_vnet_ids: tuple[str, ...] = ()
    """Remote VNets of its peerings."""
    peered_prefixes: tuple[str, ...] = ()
    """Remote address spaces as the peerings report them."""
    location: str | None = None
    """Azure region: service endpoints cover this region (and its pair for Storage)."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateEndpoint:
    """A private endpoint: a PaaS destination reached on a private address."""

    id: str
    """Canonical resource id."""
    name: str
    """Private endpoint name."""
    addresses: tuple[str, ...] = ()
    """Its private addresses."""
    subnet_id: str | None = None
    """Its subnet."""
    source: str = ""
    """Where the record was read."""


# --- what the user knows about the destination side ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Proxy:
    """A proxy in front of a destination whose X-Forwarded-For is trusted."""

    name: str
    """Proxy name."""
    kind: ProxyKind = "reverse_proxy"
    """What it is."""
    addresses: tuple[str, ...] = ()
    """Addresses / CIDRs connections from it arrive from."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownRange:
    """A named address range that is not an Azure resource (on-premises, partners)."""

    name: str
    """Range name."""
    prefix: str
    """CIDR."""
    kind: RangeKind = "other"
    """``onprem`` ranges are reached privately (no SNAT)."""
    source: str = ""
    """Where the record was read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowRule:
    """One entry of an allowlist: an address range or a service tag, allowed or denied."""

    network: str | None = None
    """CIDR (a single address is ``/32`` or ``/128``); None for tag / subnet rules."""
    tag: str | None = None
    """Service tag (``AzureCloud``, ``Internet``, ``*``, ...)."""
    subnet_id: str | None = None
    """App Service / storage VNet rule: sources in this subnet (via service endpoint)."""
    action: RuleAction = "allow"
    """Allow or deny."""
    priority: int | None = None
    """Lower goes first (App Service, NSG); None keeps file order."""


ANY_TAGS: Final = frozenset({"*", "any", "internet", "0.0.0.0/0"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowlist:
    """Sources a destination accepts: an IP list, App Service restrictions, NSG, firewalls."""

    name: str
    """Allowlist name (the web app, NSG, storage account or SQL server, or the file stem)."""
    rules: tuple[AllowRule, ...] = ()
    """Rules, evaluated by priority then order; the first match decides, no match denies."""
    source: str = ""
    """Where it was read."""

    def allows(self, address: str, tags: frozenset[str] | None = None) -> bool | None:
        """Whether a connection from ``address`` gets in.

        Args:
            address: Source address.
            tags: Lower-case names of the Service Tags that contain ``address``, or None
                when no Service Tags are loaded.

        Returns:
            True or False, or None when the first rule that might match cannot be decided
            (a service tag without Service Tags loaded, a VNet rule).
        """
        ip = ipaddress.ip_address(address)
        order = sorted(
            range(len(self.rules)),
            key=lambda i: (self.rules[i].priority is None, self.rules[i].priority or 0, i),
        )
        for i in order:
            rule = self.rules[i]
            if rule.network is not None:
                net = ipaddress.ip_network(rule.network, strict=False)
                if net.version == ip.version and ip in net:
                    return rule.action == "allow"
            elif rule.tag is not None:
                tag = rule.tag.lower()
                if tag in ANY_TAGS:
                    return rule.action == "allow"
                if tags is None:
                    return None
                if tag in tags:
                    return rule.action == "allow"
            else:
                return None
        return False


# --- the inventory -------------------------------------------------------------------------

SERVICE_TAGS_SCHEMA: Final = pl.Schema(
    {
        # Tag name: "AzureCloud", "AzureCloud.eastus", "Storage.westeurope", ...
        "tag": pl.Categorical(),
        # Region, empty for global tags.
        "region": pl.Categorical(),
        # systemService ("AzureStorage", ...), empty for AzureCloud tags.
        "system_service": pl.Categorical(),
        # The CIDR as written.
        "prefix": pl.String(),
        "ip_version": pl.UInt8(),
        # IPv4 only: first and last address as integers (null for IPv6).
        "start": pl.UInt32(),
        "end": pl.UInt32(),
        # The prefix length: more specific prefixes win when tags overlap.
        "prefix_len": pl.UInt8(),
    }
)

ADDRESS_SCHEMA: Final = pl.Schema(
    {
        # The inventory address as a CIDR (/32 or /128 for single addresses).
        "network": pl.String(),
        "ip_version": pl.UInt8(),
        # IPv4 only: first and last address as integers, for join_asof range lookups.
        "start": pl.UInt32(),
        "end": pl.UInt32(),
        "prefix_len": pl.UInt8(),
        # DESIGN.md class (null for public IPs of other infrastructure, or unattached).
        "class": EGRESS_CLASS,
        # For lb_frontend: the rule kind that gives egress through it, if any.
        "via": EGRESS_VIA,
        # Who owns it, and its display name ("mylb/LoadBalancerFrontEnd", "ngw1", NIC/ipconfig).
        "owner_kind": OWNER_KIND,
        "resource": pl.String(),
        "resource_id": pl.String(),
        # Public IP / prefix resource name, when the address comes from one.
        "public_ip": pl.String(),
        # VMs structurally attached to the owner (pool members, subnet VMs, the NIC's VM).
        "vms": pl.List(pl.String()),
    }
)


def empty_service_tags() -> pl.DataFrame:
    """An empty frame in ``SERVICE_TAGS_SCHEMA``."""
    return SERVICE_TAGS_SCHEMA.to_frame()


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """Everything loaded, normalized and cross-linked.  Build it with ``load()``."""

    vms: Mapping[str, Vm] = field(default_factory=dict)
    """VMs by id."""
    scale_sets: Mapping[str, ScaleSet] = field(default_factory=dict)
    """Scale sets by id."""
    nics: Mapping[str, Nic] = field(default_factory=dict)
    """NICs by id."""
    ipconfigs: Mapping[str, IpConfig] = field(default_factory=dict)
    """NIC ipconfigs by id."""
    public_ips: Mapping[str, PublicIp] = field(default_factory=dict)
    """Public IPs by id."""
    public_ip_prefixes: Mapping[str, PublicIpPrefix] = field(default_factory=dict)
    """Public IP prefixes by id."""
    load_balancers: Mapping[str, LoadBalancer] = field(default_factory=dict)
    """Load balancers by id."""
    frontends: Mapping[str, Frontend] = field(default_factory=dict)
    """LB frontends by id."""
    pools: Mapping[str, BackendPool] = field(default_factory=dict)
    """LB backend pools by id."""
    rules: Mapping[str, LbRule] = field(default_factory=dict)
    """LB rules of all four kinds by id."""
    probes: Mapping[str, Probe] = field(default_factory=dict)
    """LB probes by id."""
    nat_gateways: Mapping[str, NatGateway] = field(default_factory=dict)
    """NAT gateways by id."""
    firewalls: Mapping[str, Firewall] = field(default_factory=dict)
    """Firewalls by id."""
    route_tables: Mapping[str, RouteTable] = field(default_factory=dict)
    """Route tables by id."""
    subnets: Mapping[str, Subnet] = field(default_factory=dict)
    """Subnets by id."""
    vnets: Mapping[str, Vnet] = field(default_factory=dict)
    """VNets by id."""
    private_endpoints: Mapping[str, PrivateEndpoint] = field(default_factory=dict)
    """Private endpoints by id."""
    proxies: Mapping[str, Proxy] = field(default_factory=dict)
    """Proxies by lower-case name."""
    allowlists: Mapping[str, Allowlist] = field(default_factory=dict)
    """Allowlists by lower-case name."""
    known_ranges: Mapping[str, KnownRange] = field(default_factory=dict)
    """Known ranges by lower-case name."""
    service_tags: pl.DataFrame = field(default_factory=empty_service_tags)
    """Azure Service Tags, one row per prefix, in ``SERVICE_TAGS_SCHEMA``."""
    names: Mapping[str, str] = field(default_factory=dict)
    """Original spelling of the last segment of every id seen, loaded or not."""
    warnings: tuple[str, ...] = ()
    """Missing references and ignored input, one sentence each."""

    # -- lookups ------------------------------------------------------------------------

    def name_of(self, rid: str | None) -> str | None:
        """Display name of a resource id, loaded or not."""
        if rid is None:
            return None
        return self.names.get(rid) or id_name(rid)

    def vm_name(self, ipc: IpConfig) -> str | None:
        """Name of the VM an ipconfig belongs to (from the VM, the NIC, or a VMSS NIC id)."""
        nic = self.nics.get(ipc.nic_id)
        vm_id = nic.vm_id if nic else None
        if vm_id is None:
            vm_id = vmss_instance_id(ipc.nic_id)
        if vm_id is None:
            return None
        vm = self.vms.get(vm_id)
        if vm is not None:
            return vm.name
        if "/virtualmachinescalesets/" in vm_id:
            return f"{self.name_of(id_parent(vm_id))}_{id_name(vm_id)}"
        return self.name_of(vm_id)

    def vm_of(self, ipc: IpConfig) -> str | None:
        """Id of the VM an ipconfig belongs to, when known."""
        nic = self.nics.get(ipc.nic_id)
        if nic is not None and nic.vm_id:
            return nic.vm_id
        return vmss_instance_id(ipc.nic_id)

    def public_addresses(
        self, public_ip_id: str | None, prefix_id: str | None, version: Family | None = None
    ) -> list[str]:
        """Addresses of a public IP and / or every address of a prefix (as its CIDR).

        Args:
            public_ip_id: A public IP id, or None.
            prefix_id: A public IP prefix id, or None.
            version: Only addresses of this family (None: both).
        """
        out: list[str] = []
        pip = self.public_ips.get(public_ip_id) if public_ip_id else None
        if pip is not None and pip.address and version in (None, pip.family):
            out.append(pip.address)
        pfx = self.public_ip_prefixes.get(prefix_id) if prefix_id else None
        if pfx is not None and pfx.prefix and version in (None, pfx.family):
            out.append(pfx.prefix)
        return out

    def public_family(self, public_ip_id: str | None, prefix_id: str | None) -> Family | None:
        """Family of a public IP or prefix, from its version or address; None when unknown."""
        pip = self.public_ips.get(public_ip_id) if public_ip_id else None
        if pip is not None and pip.family:
            return pip.family
        pfx = self.public_ip_prefixes.get(prefix_id) if prefix_id else None
        return pfx.family if pfx is not None else None

    def frontend_family(self, fe: Frontend) -> Family | None:
        """Family of a frontend: its public IP's or prefix's, else its private address's."""
        return (
            self.public_family(fe.public_ip_id, fe.public_ip_prefix_id)
            or fe.version
            or family(fe.private_ip)
        )

    def tags_containing(self, address: str) -> frozenset[str] | None:
        """Lower-case names of the Service Tags holding ``address``; None if none are loaded."""
        if self.service_tags.height == 0:
            return None
        ip = ipaddress.ip_address(address)
        tags = self.service_tags
        if ip.version == 4:
            value = int(ip)
            hit = tags.filter((pl.col("start") <= value) & (pl.col("end") >= value))
            return frozenset(hit.get_column("tag").cast(pl.String).str.to_lowercase().to_list())
        names = set()
        for tag, prefix in tags.filter(pl.col("ip_version") == 6).select("tag", "prefix").iter_rows():
            if ip in ipaddress.ip_network(prefix, strict=False):
                names.add(str(tag).lower())
        return frozenset(names)

    def allowlist(self, name: str) -> Allowlist | None:
        """An allowlist by name, case-insensitively."""
        return self.allowlists.get(name.lower())

    # -- frames -------------------------------------------------------------------------

    def display_name(self, rid: str) -> str:
        """Short readable name of an id: child resources keep their parents (``mylb/pool1``)."""
        tail = rid.rsplit("/providers/", 1)[-1].split("/")
        pairs = [f"{tail[i]}/{tail[i + 1]}" for i in range(1, len(tail) - 1, 2)]
        if not pairs:
            return self.name_of(rid) or rid
        names = []
        head = rid[: len(rid) - len("/".join(tail))] + tail[0]
        for pair in pairs:
            head = f"{head}/{pair}"
            names.append(self.names.get(head) or id_name(head))
        return "/".join(names)

    def tables(self, *, display: bool = False) -> dict[str, pl.DataFrame]:
        """Every non-empty table as a polars frame, for ``inventory show`` and exports.

        Args:
            display: Replace ids by short names (``mylb/pool1``) and drop ``id`` and
                ``source``, for terminal tables.
        """
        if display:
            shown: dict[str, pl.DataFrame] = {}
            for name, df in self.tables().items():
                exprs = []
                for col, dtype in df.schema.items():
                    if col in ("id", "source"):
                        continue
                    if col.endswith("_id") and dtype == pl.String:
                        values = df.get_column(col).drop_nulls().unique().to_list()
                        mapping = {v: self.display_name(v) for v in values}
                        exprs.append(pl.col(col).replace(mapping))
                    elif col.endswith("_ids") and dtype == pl.List(pl.String()):
                        values = df.get_column(col).explode().drop_nulls().unique().to_list()
                        mapping = {v: self.display_name(v) for v in values}
                        exprs.append(pl.col(col).list.eval(pl.element().replace(mapping)))
                    else:
                        exprs.append(pl.col(col))
                shown[name] = df.select(exprs)
            return shown
        out: dict[str, pl.DataFrame] = {}
        for f in fields(self):
            if f.name in ("names", "warnings"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, pl.DataFrame):
                if value.height:
                    out[f.name] = value
                continue
            if value:
                out[f.name] = _records_frame(list(value.values()))
        return out


def vmss_instance_id(nic_id: str) -> str | None:
    """VMSS Uniform NIC id -> the instance VM id (``.../virtualmachines/<n>``), else None."""
    marker = "/virtualmachines/"
    if "/virtualmachinescalesets/" in nic_id and marker in nic_id:
        head, tail = nic_id.split(marker, 1)
        return head + marker + tail.split("/", 1)[0]
    return None


def _records_frame(records: list[object]) -> pl.DataFrame:
    rows = []
    for rec in records:
        row: dict[str, object] = {}
        for f in fields(rec):  # type: ignore[arg-type]
            value = getattr(rec, f.name)
            if isinstance(value, tuple):
                value = [_plain(v) for v in value]
            row[f.name] = value
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def _plain(value: object) -> object:
    if isinstance(value, tuple):  # Subnet.endpoint_locations: (service, locations)
        return f"{value[0]}: {', '.join(value[1])}"
    if isinstance(value, Route):
        return ", ".join(value.prefixes) + f" -> {value.next_hop_type}" + (
            f" {value.next_hop_ip}" if value.next_hop_ip else ""
        )
    if isinstance(value, AllowRule):
        what = value.network or value.tag or value.subnet_id or "?"
        return f"{value.action} {what}" + (f" (priority {value.priority})" if value.priority else "")
    return value


__all__ = [
    "ADDRESS_SCHEMA",
    "AllowRule",
    "Allowlist",
    "BackendPool",
    "EgressClass",
    "EgressVia",
    "Family",
    "Firewall",
    "Frontend",
    "Inventory",
    "IpConfig",
    "KnownRange",
    "LbRule",
    "LoadBalancer",
    "NatGateway",
    "Nic",
    "PrivateEndpoint",
    "Probe",
    "Proxy",
    "PublicIp",
    "PublicIpPrefix",
    "Route",
    "RouteTable",
    "SERVICE_TAGS_SCHEMA",
    "ScaleSet",
    "Subnet",
    "Vm",
    "Vnet",
    "canon_id",
]
