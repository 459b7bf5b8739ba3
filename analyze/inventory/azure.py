"""Azure resources as ``az`` CLI JSON (flattened) or ARM JSON (``properties`` nested).

Covers REST / ``az resource show`` / Resource Graph results and the outputs of ``az network
lb|nic|public-ip|public-ip prefix|nat gateway|vnet|vnet subnet|route-table|firewall|
private-endpoint show/list``, ``az vm list -d``, ``az vm list-ip-addresses``, ``az vmss
show``, ``az vmss nic list`` and ``az vmss list-instance-public-ips``.  Shapes:
docs/azure-egress.md §3.  The resource type comes from ``type`` when present, else from the
id (``.../loadBalancers/lb1`` -> load balancer), so one file may mix types.
"""

from __future__ import annotations

from collections.abc import Callable

from analyze.inventory.build import Builder, lb_child_id
from analyze.inventory.model import (
    IANA_PRIVATE_RANGES,
    RULE_PROTOCOLS,
    SKUS,
    BackendPool,
    Firewall,
    Frontend,
    IpConfig,
    LbRule,
    LoadBalancer,
    NatGateway,
    Nic,
    PrivateEndpoint,
    Probe,
    PublicIp,
    PublicIpPrefix,
    Route,
    RouteTable,
    RuleKind,
    RuleProtocol,
    ScaleSet,
    Sku,
    Subnet,
    Vm,
    Vnet,
    canon_id,
    id_name,
    id_parent,
    id_type,
)
from analyze.inventory.node import Node
from capture.errors import clip

NAME = "azure"
"""Loader name, for messages."""


def resource_type(node: Node) -> str | None:
    """Lower-case last segment of the resource type (``loadbalancers``), or None."""
    rtype = node.text("type")
    if rtype and "/" in rtype:
        return rtype.rsplit("/", 1)[1].lower()
    rid = node.text("id")
    if rid and rid.startswith("/") and "/providers/" in rid.lower():
        return id_type(rid)
    return None


def detect(node: Node) -> bool:
    """Whether ``node`` is an Azure resource this module reads."""
    rtype = resource_type(node)
    if rtype in _READERS:
        return True
    return node.obj("virtualMachine") is not None and node.obj("virtualMachine").obj(  # type: ignore[union-attr]
        "network"
    ) is not None


def load(node: Node, into: Builder) -> bool:
    """Add the resource in ``node`` to ``into``; False when the type is not ours."""
    rtype = resource_type(node)
    reader = _READERS.get(rtype or "")
    if reader is not None:
        reader(node, into)
        return True
    vm = node.obj("virtualMachine")
    if vm is not None and vm.obj("network") is not None:
        _vm_ip_addresses(vm, into)
        return True
    return False


# --- helpers -----------------------------------------------------------------------------


def _id(node: Node, fallback: str | None = None) -> str:
    raw = node.text("id")
    if raw:
        return canon_id(raw)
    if fallback:
        return fallback
    raise node.error("resource has no id")


def _name(node: Node, rid: str) -> str:
    return node.text("name") or id_name(rid)


def _sku(node: Node) -> Sku | None:
    sku = node.obj("sku")
    text = sku.text("name") if sku is not None else node.text("sku")
    if text is None:
        return None
    for known in SKUS:
        if known.lower() == text.lower():
            return known
    raise node.error(f"unknown SKU {clip(text)}", "sku")


def _protocol(node: Node) -> RuleProtocol | None:
    text = node.text("protocol")
    if text is None:
        return None
    for p in RULE_PROTOCOLS:
        if p.lower() == text.lower():
            return p
    raise node.error(f"unknown protocol {clip(text)}", "protocol")


def _remember_refs(node: Node, into: Builder, *keys: str) -> None:
    """Keep the original spelling of referenced ids, for messages."""
    for key in keys:
        raw = node.raw(key)
        items = raw if isinstance(raw, list) else [raw]
        for item in items:
            if isinstance(item, dict):
                rid = next((v for k, v in item.items() if k.lower() == "id"), None)
                if isinstance(rid, str):
                    into.name(canon_id(rid), rid)
            elif isinstance(item, str):
                into.name(canon_id(item), item)


# --- readers -------------------------------------------------------------------------------


def _load_balancer(node: Node, into: Builder) -> None:
    lb_id = _id(node)
    into.add(LoadBalancer(id=lb_id, name=_name(node, lb_id), sku=_sku(node), source=node.where()))
    for fe in node.objs("frontendIPConfigurations"):
        _frontend(fe, into, lb_id)
    for pool in node.objs("backendAddressPools"):
        _pool(pool, into, lb_id)
    for kind, key in (
        ("load_balancing", "loadBalancingRules"),
        ("inbound_nat", "inboundNatRules"),
        ("inbound_nat_pool", "inboundNatPools"),
        ("outbound", "outboundRules"),
    ):
        for rule in node.objs(key):
            _rule(rule, into, lb_id, kind)  # type: ignore[arg-type]
    for probe in node.objs("probes"):
        _probe(probe, into, lb_id)


def _child_lb(node: Node) -> str:
    rid = node.text("id")
    if not rid:
        raise node.error("load balancer child resource has no id")
    return id_parent(canon_id(rid))


def _frontend(node: Node, into: Builder, lb_id: str | None = None) -> None:
    lb_id = lb_id or _child_lb(node)
    name = node.text("name") or "?"
    rid = _id(node, lb_child_id(lb_id, "frontendipconfigurations", name))
    _remember_refs(node, into, "publicIPAddress", "publicIPPrefix")
    pip = node.obj("publicIPAddress")
    if pip is not None and pip.text("ipAddress"):
        _public_ip(pip, into)
    into.add(
        Frontend(
            id=rid,
            name=_name(node, rid),
            lb_id=lb_id,
            public_ip_id=node.ref("publicIPAddress"),
            public_ip_prefix_id=node.ref("publicIPPrefix"),
            private_ip=node.ip("privateIPAddress"),
            subnet_id=node.ref("subnet"),
            version=node.version("privateIPAddressVersion"),
            source=node.where(),
        )
    )


def _pool(node: Node, into: Builder, lb_id: str | None = None) -> None:
    lb_id = lb_id or _child_lb(node)
    name = node.text("name") or "?"
    rid = _id(node, lb_child_id(lb_id, "backendaddresspools", name))
    ipconfigs = list(node.refs("backendIPConfigurations"))
    addresses = []
    for member in node.objs("loadBalancerBackendAddresses"):
        ref = member.ref("networkInterfaceIPConfiguration")
        if ref:
            ipconfigs.append(ref)
        elif (ip := member.ip("ipAddress")) is not None:
            addresses.append(ip)
    into.add(
        BackendPool(
            id=rid,
            name=_name(node, rid),
            lb_id=lb_id,
            ipconfig_ids=tuple(dict.fromkeys(ipconfigs)),
            addresses=tuple(addresses),
            source=node.where(),
        )
    )


_COLLECTION: dict[RuleKind, str] = {
    "load_balancing": "loadbalancingrules",
    "inbound_nat": "inboundnatrules",
    "inbound_nat_pool": "inboundnatpools",
    "outbound": "outboundrules",
}


def _rule(node: Node, into: Builder, lb_id: str | None, kind: RuleKind) -> None:
    lb_id = lb_id or _child_lb(node)
    name = node.text("name") or "?"
    rid = _id(node, lb_child_id(lb_id, _COLLECTION[kind], name))
    frontends = node.refs("frontendIPConfigurations") + (
        (r,) if (r := node.ref("frontendIPConfiguration")) else ()
    )
    pools = ((r,) if (r := node.ref("backendAddressPool")) else ()) + node.refs(
        "backendAddressPools"
    )
    start = node.integer("frontendPortRangeStart")
    into.add(
        LbRule(
            id=rid,
            name=_name(node, rid),
            lb_id=lb_id,
            kind=kind,
            protocol=_protocol(node),
            frontend_ids=tuple(dict.fromkeys(frontends)),
            pool_ids=tuple(dict.fromkeys(pools)),
            ipconfig_id=node.ref("backendIPConfiguration"),
            frontend_port=node.integer("frontendPort") if start is None else start,
            frontend_port_end=node.integer("frontendPortRangeEnd"),
            backend_port=node.integer("backendPort"),
            probe_id=node.ref("probe"),
            disable_outbound_snat=bool(node.flag("disableOutboundSnat")),
            allocated_outbound_ports=node.integer("allocatedOutboundPorts"),
            source=node.where(),
        )
    )


def _probe(node: Node, into: Builder, lb_id: str | None = None) -> None:
    lb_id = lb_id or _child_lb(node)
    name = node.text("name") or "?"
    rid = _id(node, lb_child_id(lb_id, "probes", name))
    into.add(
        Probe(
            id=rid,
            name=_name(node, rid),
            lb_id=lb_id,
            protocol=node.text("protocol"),
            port=node.integer("port"),
            source=node.where(),
        )
    )


def _nic(node: Node, into: Builder) -> None:
    nic_id = _id(node)
    if node.has("privateEndpoint", "privateLinkService"):
        # The NIC of a private endpoint / private link service is not a VM's: no egress.
        pe = node.ref("privateEndpoint")
        if pe:
            ips = tuple(
                ip for c in node.objs("ipConfigurations") if (ip := c.ip("privateIPAddress"))
            )
            into.add(PrivateEndpoint(id=pe, name=id_name(pe), addresses=ips, source=node.where()))
        return
    _remember_refs(node, into, "virtualMachine")
    into.add(
        Nic(
            id=nic_id,
            name=_name(node, nic_id),
            vm_id=node.ref("virtualMachine"),
            primary=node.flag("primary"),
            ip_forwarding=node.flag("enableIPForwarding"),
            location=node.text("location"),
            source=node.where(),
        )
    )
    for ipc in node.objs("ipConfigurations"):
        _ipconfig(ipc, into, nic_id)


def _ipconfig(node: Node, into: Builder, nic_id: str | None = None) -> None:
    if nic_id is None:
        nic_id = _child_lb(node)
    name = node.text("name") or "?"
    rid = _id(node, f"{nic_id}/ipconfigurations/{name.lower()}")
    _remember_refs(
        node, into, "subnet", "publicIPAddress", "loadBalancerBackendAddressPools",
        "loadBalancerInboundNatRules",
    )  # fmt: skip
    pip = node.obj("publicIPAddress")
    if pip is not None and pip.text("ipAddress"):
        _public_ip(pip, into)  # expanded by `az vmss nic list` / `--expand`
    into.add(
        IpConfig(
            id=rid,
            name=_name(node, rid),
            nic_id=nic_id,
            primary=node.flag("primary"),
            private_ip=node.ip("privateIPAddress"),
            subnet_id=node.ref("subnet"),
            public_ip_id=node.ref("publicIPAddress"),
            pool_ids=node.refs("loadBalancerBackendAddressPools"),
            nat_rule_ids=node.refs("loadBalancerInboundNatRules"),
            nat_pool_ids=node.refs("loadBalancerInboundNatPools"),
            version=node.version("privateIPAddressVersion"),
            source=node.where(),
        )
    )


def _public_ip(node: Node, into: Builder) -> None:
    rid = _id(node)
    _remember_refs(node, into, "ipConfiguration", "natGateway", "publicIPPrefix")
    into.add(
        PublicIp(
            id=rid,
            name=_name(node, rid),
            address=node.ip("ipAddress"),
            sku=_sku(node),
            prefix_id=node.ref("publicIPPrefix"),
            owner_id=node.ref("ipConfiguration"),
            nat_gateway_id=node.ref("natGateway"),
            version=node.version("publicIPAddressVersion"),
            source=node.where(),
        )
    )


def _prefix(node: Node, into: Builder) -> None:
    rid = _id(node)
    into.add(
        PublicIpPrefix(
            id=rid,
            name=_name(node, rid),
            prefix=node.network("ipPrefix"),
            sku=_sku(node),
            nat_gateway_id=node.ref("natGateway"),
            version=node.version("publicIPAddressVersion"),
            source=node.where(),
        )
    )


def _nat_gateway(node: Node, into: Builder) -> None:
    rid = _id(node)
    _remember_refs(node, into, "publicIpAddresses", "publicIpPrefixes", "subnets", "sourceVirtualNetwork")
    into.add(
        NatGateway(
            id=rid,
            name=_name(node, rid),
            sku=_sku(node),
            public_ip_ids=node.refs("publicIpAddresses") + node.refs("publicIpAddressesV6"),
            public_ip_prefix_ids=node.refs("publicIpPrefixes") + node.refs("publicIpPrefixesV6"),
            subnet_ids=node.refs("subnets"),
            vnet_id=node.ref("sourceVirtualNetwork"),
            source=node.where(),
        )
    )


def _vnet(node: Node, into: Builder) -> None:
    rid = _id(node)
    space = node.obj("addressSpace")
    peered, peered_prefixes = [], []
    for peering in node.objs("virtualNetworkPeerings"):
        remote = peering.ref("remoteVirtualNetwork")
        if remote:
            peered.append(remote)
        remote_space = peering.obj("remoteAddressSpace", "remoteVirtualNetworkAddressSpace")
        if remote_space is not None:
            peered_prefixes += [
                _net(remote_space, p) for p in remote_space.strs("addressPrefixes")
            ]
    into.add(
        Vnet(
            id=rid,
            name=_name(node, rid),
            address_space=tuple(_net(space, p) for p in space.strs("addressPrefixes"))
            if space is not None
            else (),
            peered_vnet_ids=tuple(peered),
            peered_prefixes=tuple(peered_prefixes),
            location=node.text("location"),
            source=node.where(),
        )
    )
    for sub in node.objs("subnets"):
        _subnet(sub, into, rid)


def _net(node: Node, text: str) -> str:
    from analyze.inventory.node import parse_network

    return parse_network(text, node.where())


def _subnet(node: Node, into: Builder, vnet_id: str | None = None) -> None:
    rid = _id(node)
    vnet_id = vnet_id or id_parent(rid)
    prefixes = [_net(node, p) for p in node.strs("addressPrefixes")]
    if (single := node.network("addressPrefix")) is not None:
        prefixes.insert(0, single)
    endpoints = tuple(s for ep in node.objs("serviceEndpoints") if (s := ep.text("service")))
    locations = tuple(
        (s, tuple(ep.strs("locations")))
        for ep in node.objs("serviceEndpoints")
        if (s := ep.text("service")) and ep.strs("locations")
    )
    _remember_refs(node, into, "natGateway", "routeTable")
    into.add(
        Subnet(
            id=rid,
            name=_name(node, rid),
            vnet_id=vnet_id,
            prefixes=tuple(dict.fromkeys(prefixes)),
            nat_gateway_id=node.ref("natGateway"),
            route_table_id=node.ref("routeTable"),
            default_outbound_access=node.flag("defaultOutboundAccess"),
            service_endpoints=endpoints,
            endpoint_locations=locations,
            source=node.where(),
        )
    )
    # `subnet.ipConfigurations` back-references: ipconfigs whose NIC was not loaded still
    # tell nothing more, so they are not turned into records.


def route_of(node: Node) -> Route:
    """One UDR or effective-route entry."""
    prefixes = node.strs("addressPrefix")
    hops = node.strs("nextHopIpAddress")
    hop = node.text("nextHopType")
    if not prefixes or hop is None:
        raise node.error("route without addressPrefix / nextHopType")
    state = node.text("state")
    return Route(
        prefixes=tuple(_net(node, p) for p in prefixes),
        next_hop_type=hop,
        next_hop_ip=hops[0] if hops else None,
        name=node.text("name"),
        origin=node.text("source"),
        active=state is None or state.lower() == "active",
    )


def _route_table(node: Node, into: Builder) -> None:
    rid = _id(node)
    into.add(
        RouteTable(
            id=rid,
            name=_name(node, rid),
            routes=tuple(route_of(r) for r in node.objs("routes")),
            subnet_ids=node.refs("subnets"),
            source=node.where(),
        )
    )


def _route(node: Node, into: Builder) -> None:
    """One route of ``az network route-table route list``: added to its route table."""
    rid = _id(node)
    name = id_name(id_parent(node.text("id") or rid))  # keep the original spelling
    into.add(RouteTable(id=id_parent(rid), name=name, routes=(route_of(node),), source=node.where()))


def _firewall(node: Node, into: Builder) -> None:
    rid = _id(node)
    pips, private, subnet = [], None, None
    for ipc in node.objs("ipConfigurations"):
        _remember_refs(ipc, into, "publicIPAddress")
        if (p := ipc.ref("publicIPAddress")) is not None:
            pips.append(p)
        private = private or ipc.ip("privateIPAddress")
        subnet = subnet or ipc.ref("subnet")
    addresses: list[str] = []
    hub = node.obj("hubIPAddresses")
    if hub is not None:
        private = private or hub.ip("privateIPAddress")
        public = hub.obj("publicIPs")
        if public is not None:
            addresses += [a for x in public.objs("addresses") if (a := x.ip("address"))]
    extra = node.obj("additionalProperties")
    snat = extra.text("Network.SNAT.PrivateRanges") if extra is not None else None
    into.add(
        Firewall(
            id=rid,
            name=_name(node, rid),
            public_ip_ids=tuple(pips),
            addresses=tuple(addresses),
            private_ip=private,
            subnet_id=subnet,
            snat_private_ranges=_snat_ranges(node, snat),
            source=node.where(),
        )
    )


def _snat_ranges(node: Node, text: str | None) -> tuple[str, ...] | None:
    """``Network.SNAT.PrivateRanges``: ``IANAPrivateRanges`` (the default), or CIDRs."""
    if text is None:
        return None
    out: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if item.lower() == "ianaprivateranges":
            out += IANA_PRIVATE_RANGES
        elif item:
            out.append(_net(node, item))
    return tuple(dict.fromkeys(out))


def _vm(node: Node, into: Builder) -> None:
    rid = _id(node)
    profile = node.obj("networkProfile")
    nic_ids = profile.refs("networkInterfaces") if profile is not None else ()
    if profile is not None:
        _remember_refs(profile, into, "networkInterfaces")
    _remember_refs(node, into, "availabilitySet", "virtualMachineScaleSet")
    scale_set = node.ref("virtualMachineScaleSet")
    if scale_set is None and "/virtualmachinescalesets/" in rid:
        scale_set = id_parent(rid)
    into.add(
        Vm(
            id=rid,
            name=_name(node, rid),
            availability_set_id=node.ref("availabilitySet"),
            scale_set_id=scale_set,
            nic_ids=nic_ids,
            location=node.text("location"),
            source=node.where(),
        )
    )


def _scale_set(node: Node, into: Builder) -> None:
    rid = _id(node)
    mode = node.text("orchestrationMode")
    orchestration = None
    if mode is not None:
        if mode.lower() not in ("uniform", "flexible"):
            raise node.error(f"unknown orchestrationMode {clip(mode)}", "orchestrationMode")
        orchestration = "Flexible" if mode.lower() == "flexible" else "Uniform"
    elif node.has("virtualMachineProfile"):
        orchestration = "Uniform"  # API versions before Flexible existed
    into.add(
        ScaleSet(
            id=rid,
            name=_name(node, rid),
            orchestration=orchestration,  # type: ignore[arg-type]
            source=node.where(),
        )
    )


def _private_endpoint(node: Node, into: Builder) -> None:
    rid = _id(node)
    ips: list[str] = []
    for cfg in node.objs("customDnsConfigs"):
        ips += [_ip(cfg, a) for a in cfg.strs("ipAddresses")]
    for cfg in node.objs("ipConfigurations"):
        if (ip := cfg.ip("privateIPAddress")) is not None:
            ips.append(ip)
    into.add(
        PrivateEndpoint(
            id=rid,
            name=_name(node, rid),
            addresses=tuple(dict.fromkeys(ips)),
            subnet_id=node.ref("subnet"),
            source=node.where(),
        )
    )


def _ip(node: Node, text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise node.error(f"not an IP address: {clip(text)}") from None


def _vm_ip_addresses(vm: Node, into: Builder) -> None:
    """``az vm list-ip-addresses``: only the public IPs are new information."""
    network = vm.obj("network")
    assert network is not None
    for pip in network.objs("publicIpAddresses"):
        if pip.text("id"):
            _public_ip(pip, into)


def _ignored(node: Node, into: Builder) -> None:
    """Types that appear in exports but do not change egress."""


_READERS: dict[str, Callable[[Node, Builder], None]] = {
    "loadbalancers": _load_balancer,
    "frontendipconfigurations": _frontend,
    "backendaddresspools": _pool,
    "loadbalancingrules": lambda n, b: _rule(n, b, None, "load_balancing"),
    "inboundnatrules": lambda n, b: _rule(n, b, None, "inbound_nat"),
    "inboundnatpools": lambda n, b: _rule(n, b, None, "inbound_nat_pool"),
    "outboundrules": lambda n, b: _rule(n, b, None, "outbound"),
    "probes": _probe,
    "networkinterfaces": _nic,
    "ipconfigurations": _ipconfig,
    "publicipaddresses": _public_ip,
    "publicipprefixes": _prefix,
    "natgateways": _nat_gateway,
    "virtualnetworks": _vnet,
    "subnets": _subnet,
    "routetables": _route_table,
    "routes": _route,
    "azurefirewalls": _firewall,
    "virtualmachines": _vm,
    "virtualmachinescalesets": _scale_set,
    "privateendpoints": _private_endpoint,
    "availabilitysets": _ignored,
    "disks": _ignored,
    "extensions": _ignored,
}
