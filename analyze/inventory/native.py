"""The native YAML inventory: hand-written, name-based, for small setups and tests.

Format reference with a full example: docs/inventory.md.  Resources refer to each other by
name (``vnet/subnet``, ``lb/pool``, ``nic/ipconfig`` or a VM name for its primary ipconfig);
every name becomes an ARM-style id under ``/subscriptions/native/resourceGroups/native``,
so native records merge and link exactly like az / ARM ones.  Unknown keys are errors:
a typo must not silently change a prediction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from analyze.inventory import servicetags
from analyze.inventory.allowlists import entry_rule
from analyze.inventory.build import Builder, lb_child_id
from analyze.inventory.model import (
    PROXY_KINDS,
    RANGE_KINDS,
    SKUS,
    Allowlist,
    BackendPool,
    Firewall,
    Frontend,
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
    RuleKind,
    ScaleSet,
    Sku,
    Subnet,
    Vm,
    Vnet,
)
from analyze.inventory.node import Node
from capture.errors import InventoryError, clip

NAME = "native-yaml"
"""Loader name, for messages."""

PREFIX = "/subscriptions/native/resourcegroups/native/providers"

TOP_KEYS = (
    "vms", "scale_sets", "vnets", "public_ips", "public_ip_prefixes", "load_balancers",
    "nat_gateways", "route_tables", "firewalls", "private_endpoints", "proxies",
    "allowlists", "known_ranges", "onprem", "service_tags", "description",
)  # fmt: skip


def detect(doc: Any) -> bool:
    """Whether ``doc`` is a native inventory: one of our sections, and not an Azure object.

    Unknown extra keys still count as native, so that a typo gets a precise error.
    """
    if not isinstance(doc, Mapping) or not doc:
        return False
    keys = {str(k).lower() for k in doc}
    return bool(keys & set(TOP_KEYS)) and not keys & {"id", "type", "properties", "$schema"}


def nid(rtype: str, *names: str) -> str:
    """Native id: ``nid("loadBalancers", "mylb")``."""
    provider = "microsoft.compute" if rtype.lower() in (
        "virtualmachines", "virtualmachinescalesets", "availabilitysets"
    ) else "microsoft.network"  # fmt: skip
    return f"{PREFIX}/{provider}/{rtype.lower()}/{'/'.join(n.lower() for n in names)}"


def _check(node: Node, allowed: tuple[str, ...]) -> None:
    known = {a.lower() for a in allowed}
    for key in node.value:
        if str(key).lower() not in known:
            raise node.error(f"unknown key {clip(key)} (expected one of: {', '.join(allowed)})")


def _req(node: Node, key: str) -> str:
    value = node.text(key)
    if value is None:
        raise node.error(f"missing {key!r}")
    return value


def _sku(node: Node, key: str = "sku", *, required: bool = False) -> Sku | None:
    text = node.text(key)
    if text is None:
        if required:
            raise node.error(f"missing {key!r} (Basic or Standard)")
        return None
    for s in SKUS:
        if s.lower() == text.lower():
            return s
    raise node.error(f"unknown SKU {clip(text)} (expected one of: {', '.join(SKUS)})", key)


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_net(text: str) -> bool:
    import ipaddress

    if "/" not in text:
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


class _Reader:
    def __init__(self, doc: Node, into: Builder) -> None:
        self.doc = doc
        self.into = into
        self.subnet_vnet: dict[str, list[str]] = {}
        self.vm_primary: dict[str, str] = {}
        self._nics_of: dict[int, list[Node]] = {}  # id(VM node) -> its NICs (nodes live all run)

    # -- references -------------------------------------------------------------------------

    def subnet(self, node: Node, key: str) -> str | None:
        text = node.text(key)
        if text is None:
            return None
        if "/" in text:
            vnet, sub = text.split("/", 1)
            return nid("virtualNetworks", vnet, "subnets", sub)
        vnets = self.subnet_vnet.get(text.lower(), [])
        if len(vnets) != 1:
            raise node.error(
                f"subnet {clip(text)} is {'ambiguous' if vnets else 'not declared'}; "
                "write it as vnet/subnet",
                key,
            )
        return nid("virtualNetworks", vnets[0], "subnets", text)

    def public_ip(self, text: str, owner: str, sku: Sku | None, where: str) -> str:
        """A public IP by name, or an inline address that becomes a PIP named after ``owner``."""
        if _is_ip(text):
            # A VM may have several inline addresses (a dual-stack NIC, several NICs): the
            # first keeps the plain name, the next get a number instead of merging into it.
            taken = self.into.tables["public_ips"]
            name, n = f"{owner}-pip", 1
            while (old := taken.get(nid("publicIPAddresses", name))) is not None and old.address != str(
                ipaddress.ip_address(text)
            ):
                n += 1
                name = f"{owner}-pip{n}"
            rid = nid("publicIPAddresses", name)
            self.into.add(PublicIp(id=rid, name=name, address=text, sku=sku, source=where))
            return rid
        return nid("publicIPAddresses", text)

    def prefix(self, text: str, owner: str, where: str) -> str:
        if _is_net(text):
            rid = nid("publicIPPrefixes", f"{owner}-prefix")
            self.into.add(PublicIpPrefix(id=rid, name=f"{owner}-prefix", prefix=text, source=where))
            return rid
        return nid("publicIPPrefixes", text)

    def member(self, text: str, node: Node) -> str:
        """``VM`` (its primary NIC's primary ipconfig) or ``nic/ipconfig``."""
        if "/" in text:
            nic, ipc = text.split("/", 1)
            return f"{nid('networkInterfaces', nic)}/ipconfigurations/{ipc.lower()}"
        rid = self.vm_primary.get(text.lower())
        if rid is None:
            raise node.error(f"{clip(text)} is not a VM of this file (or write nic/ipconfig)")
        return rid

    # -- sections ---------------------------------------------------------------------------

    def run(self) -> None:
        doc = self.doc
        _check(doc, TOP_KEYS)
        for vnet in doc.objs("vnets"):
            for sub in vnet.objs("subnets"):
                self.subnet_vnet.setdefault(_req(sub, "name").lower(), []).append(_req(vnet, "name"))
        vms = doc.objs("vms")  # the same nodes for both passes: their key index is built once
        for vm in vms:
            self._vm_primary(vm)
        for node in doc.objs("public_ips"):
            self._public_ip(node)
        for node in doc.objs("public_ip_prefixes"):
            _check(node, ("name", "prefix", "sku", "version"))
            name = _req(node, "name")
            self.into.add(
                PublicIpPrefix(
                    id=nid("publicIPPrefixes", name), name=name, prefix=node.network("prefix"),
                    sku=_sku(node), version=node.version("version"), source=node.where(),
                )
            )  # fmt: skip
        for node in doc.objs("vnets"):
            self._vnet(node)
        for node in doc.objs("scale_sets"):
            self._scale_set(node)
        for node in vms:
            self._vm(node)
        for node in doc.objs("load_balancers"):
            self._lb(node)
        for node in doc.objs("nat_gateways"):
            self._nat_gateway(node)
        for node in doc.objs("route_tables"):
            self._route_table(node)
        for node in doc.objs("firewalls"):
            self._firewall(node)
        for node in doc.objs("private_endpoints"):
            _check(node, ("name", "addresses", "subnet"))
            name = _req(node, "name")
            self.into.add(
                PrivateEndpoint(
                    id=nid("privateEndpoints", name), name=name,
                    addresses=tuple(self._ips(node, "addresses")),
                    subnet_id=self.subnet(node, "subnet"), source=node.where(),
                )
            )  # fmt: skip
        for node in doc.objs("proxies"):
            _check(node, ("name", "kind", "addresses"))
            kind = (node.text("kind") or "reverse_proxy").lower()
            if kind not in PROXY_KINDS:
                raise node.error(f"unknown proxy kind {clip(kind)}", "kind")
            self.into.add(
                Proxy(
                    name=_req(node, "name"), kind=kind,
                    addresses=tuple(self._nets(node, "addresses")), source=node.where(),
                )
            )  # fmt: skip
        for node in doc.objs("allowlists"):
            _check(node, ("name", "entries"))
            entries = node.strs("entries")
            where = f"{node.where()}.entries"
            self.into.add(
                Allowlist(
                    name=_req(node, "name"),
                    rules=tuple(entry_rule(e, f"{where}[{i}]") for i, e in enumerate(entries)),
                    source=node.where(),
                )
            )
        for node in doc.objs("known_ranges"):
            _check(node, ("name", "prefix", "kind"))
            kind = (node.text("kind") or "other").lower()
            if kind not in RANGE_KINDS:
                raise node.error(f"unknown range kind {clip(kind)}", "kind")
            self.into.add(
                KnownRange(
                    name=_req(node, "name"), prefix=node.network("prefix") or "",
                    kind=kind, source=node.where(),
                )
            )  # fmt: skip
        for i, text in enumerate(self._nets(doc, "onprem")):
            self.into.add(
                KnownRange(name=f"onprem-{i + 1}", prefix=text, kind="onprem", source=doc.where())
            )
        records: list[dict[str, Any]] = []
        for node in doc.objs("service_tags"):
            _check(node, ("name", "region", "system_service", "prefixes"))
            records += servicetags.rows(
                _req(node, "name"), node.text("region") or "", node.text("system_service") or "",
                node.strs("prefixes"), f"{node.where()}.prefixes",
            )  # fmt: skip
        if records:
            self.into.service_tags.append(servicetags.frame(records))

    def _ips(self, node: Node, key: str) -> list[str]:
        import ipaddress

        out = []
        for i, text in enumerate(node.strs(key)):
            try:
                out.append(str(ipaddress.ip_address(text)))
            except ValueError:
                raise node.error(f"not an IP address: {clip(text)}", f"{key}[{i}]") from None
        return out

    def _nets(self, node: Node, key: str) -> list[str]:
        from analyze.inventory.node import parse_network

        return [parse_network(t, f"{node.where()}.{key}[{i}]") for i, t in enumerate(node.strs(key))]

    def _public_ip(self, node: Node) -> None:
        _check(node, ("name", "address", "sku", "prefix", "version"))
        name = _req(node, "name")
        self.into.add(
            PublicIp(
                id=nid("publicIPAddresses", name), name=name, address=node.ip("address"),
                sku=_sku(node), version=node.version("version"),
                prefix_id=nid("publicIPPrefixes", p) if (p := node.text("prefix")) else None,
                source=node.where(),
            )
        )  # fmt: skip

    def _vnet(self, node: Node) -> None:
        _check(node, ("name", "address_space", "peerings", "subnets", "location"))
        name = _req(node, "name")
        vnet_id = nid("virtualNetworks", name)
        peered = tuple(nid("virtualNetworks", p) for p in node.strs("peerings"))
        self.into.add(
            Vnet(
                id=vnet_id, name=name, address_space=tuple(self._nets(node, "address_space")),
                peered_vnet_ids=peered, location=node.text("location"), source=node.where(),
            )
        )  # fmt: skip
        for sub in node.objs("subnets"):
            _check(sub, (
                "name", "prefix", "prefixes", "nat_gateway", "route_table",
                "default_outbound_access", "service_endpoints",
            ))  # fmt: skip
            sname = _req(sub, "name")
            prefixes = self._nets(sub, "prefix") + self._nets(sub, "prefixes")
            services, locations = self._endpoints(sub)
            self.into.add(
                Subnet(
                    id=nid("virtualNetworks", name, "subnets", sname), name=sname, vnet_id=vnet_id,
                    prefixes=tuple(prefixes),
                    nat_gateway_id=nid("natGateways", n) if (n := sub.text("nat_gateway")) else None,
                    route_table_id=nid("routeTables", r) if (r := sub.text("route_table")) else None,
                    default_outbound_access=sub.flag("default_outbound_access"),
                    service_endpoints=services, endpoint_locations=locations, source=sub.where(),
                )
            )  # fmt: skip

    def _endpoints(self, sub: Node) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
        """``service_endpoints``: names, or ``{service, locations}`` mappings."""
        raw = sub.raw("service_endpoints")
        if raw is None:
            return (), ()
        if not isinstance(raw, list):
            raise sub.error("expected a list", "service_endpoints")
        services: list[str] = []
        locations: list[tuple[str, tuple[str, ...]]] = []
        for i, item in enumerate(raw):
            if isinstance(item, str):
                services.append(item)
                continue
            node = Node(item, f"{sub.path}.service_endpoints[{i}]", sub.source) if isinstance(item, Mapping) else None
            if node is None:
                raise sub.error(f"expected a service name or {{service, locations}}, got {clip(item)}",
                                f"service_endpoints[{i}]")  # fmt: skip
            _check(node, ("service", "locations"))
            service = _req(node, "service")
            services.append(service)
            if node.strs("locations"):
                locations.append((service, tuple(node.strs("locations"))))
        return tuple(services), tuple(locations)

    def _scale_set(self, node: Node) -> None:
        _check(node, ("name", "orchestration"))
        name = _req(node, "name")
        mode = node.text("orchestration")
        if mode is not None and mode.lower() not in ("uniform", "flexible"):
            raise node.error(f"unknown orchestration {clip(mode)} (Uniform or Flexible)", "orchestration")
        self.into.add(
            ScaleSet(
                id=nid("virtualMachineScaleSets", name), name=name,
                orchestration=mode.capitalize() if mode else None,  # type: ignore[arg-type]
                source=node.where(),
            )
        )  # fmt: skip

    _SHORT = ("private_ip", "subnet", "public_ip", "public_ip_sku", "pools", "nat_rules")

    def _nics(self, vm: Node) -> list[Node]:
        """The VM's NICs; the shorthand puts one NIC's single ipconfig on the VM itself."""
        # Asked twice per VM (primary ipconfigs first, then the VM): read once.
        cached = self._nics_of.get(id(vm))
        if cached is None:
            cached = self._nics_of[id(vm)] = self._read_nics(vm)
        return cached

    def _read_nics(self, vm: Node) -> list[Node]:
        nics = vm.objs("nics")
        if any(vm.has(k) for k in self._SHORT):
            if nics:
                raise vm.error("use either nics or the single-NIC shorthand, not both")
            name = _req(vm, "name")
            short = {k: vm.raw(k) for k in self._SHORT if vm.has(k)}
            nic = {"name": f"{name}-nic", "ipconfigs": [{"name": "ipconfig1", **short}]}
            return [Node(nic, vm.path, vm.source)]
        return nics

    def _vm_primary(self, vm: Node) -> None:
        nics = self._nics(vm)
        if not nics:
            return
        first = next((n for n in nics if n.flag("primary")), nics[0])
        ipcs = first.objs("ipconfigs")
        if ipcs:
            ipc = next((c for c in ipcs if c.flag("primary")), ipcs[0])
            nic_id = nid("networkInterfaces", _req(first, "name"))
            self.vm_primary[_req(vm, "name").lower()] = f"{nic_id}/ipconfigurations/{_req(ipc, 'name').lower()}"

    def _vm(self, node: Node) -> None:
        _check(node, ("name", "availability_set", "scale_set", "added_to_scale_set", "location",
                      "nics", *self._SHORT))  # fmt: skip
        name = _req(node, "name")
        vm_id = nid("virtualMachines", name)
        aset = node.text("availability_set")
        sset = node.text("scale_set")
        nics = self._nics(node)
        nic_ids = []
        for n, nic in enumerate(nics):
            _check(nic, ("name", "primary", "ipconfigs", "effective_routes", "ip_forwarding"))
            nic_name = _req(nic, "name")
            nic_id = nid("networkInterfaces", nic_name)
            nic_ids.append(nic_id)
            routes = None
            if nic.has("effective_routes"):
                routes = tuple(self._route(r) for r in nic.objs("effective_routes"))
            self.into.add(
                Nic(
                    id=nic_id, name=nic_name, vm_id=vm_id,
                    primary=nic.flag("primary") if nic.has("primary") else n == 0,
                    effective_routes=routes, ip_forwarding=nic.flag("ip_forwarding"),
                    location=node.text("location"), source=nic.where(),
                )
            )  # fmt: skip
            ipcs = nic.objs("ipconfigs")
            if nic.path == node.path:  # the single-NIC shorthand: its keys sit on the VM
                ipcs = [Node(c.value, node.path, node.source) for c in ipcs]
            for i, ipc in enumerate(ipcs):
                _check(ipc, ("name", "primary", "private_ip", "subnet", "public_ip",
                             "public_ip_sku", "pools", "nat_rules", "nat_pools", "version"))  # fmt: skip
                ipc_name = _req(ipc, "name")
                pip = ipc.text("public_ip")
                self.into.add(
                    IpConfig(
                        id=f"{nic_id}/ipconfigurations/{ipc_name.lower()}", name=ipc_name,
                        nic_id=nic_id,
                        primary=ipc.flag("primary") if ipc.has("primary") else i == 0,
                        private_ip=ipc.ip("private_ip"), subnet_id=self.subnet(ipc, "subnet"),
                        public_ip_id=self.public_ip(pip, name, _sku(ipc, "public_ip_sku"), ipc.where())
                        if pip else None,
                        pool_ids=self._lb_refs(ipc, "pools", "backendaddresspools"),
                        nat_rule_ids=self._lb_refs(ipc, "nat_rules", "inboundnatrules"),
                        nat_pool_ids=self._lb_refs(ipc, "nat_pools", "inboundnatpools"),
                        version=ipc.version("version"), source=ipc.where(),
                    )
                )  # fmt: skip
        self.into.add(
            Vm(
                id=vm_id, name=name,
                availability_set_id=nid("availabilitySets", aset) if aset else None,
                scale_set_id=nid("virtualMachineScaleSets", sset) if sset else None,
                nic_ids=tuple(nic_ids), location=node.text("location"),
                scale_set_added=node.flag("added_to_scale_set"), source=node.where(),
            )
        )  # fmt: skip

    def _lb_refs(self, node: Node, key: str, collection: str) -> tuple[str, ...]:
        out = []
        for i, text in enumerate(node.strs(key)):
            if "/" not in text:
                raise node.error(f"write it as lb/name: {clip(text)}", f"{key}[{i}]")
            lb, child = text.split("/", 1)
            out.append(lb_child_id(nid("loadBalancers", lb), collection, child))
        return tuple(out)

    def _route(self, node: Node) -> Route:
        _check(node, ("name", "prefix", "next_hop", "next_hop_ip", "source", "state"))
        hop = _req(node, "next_hop")
        state = node.text("state")
        return Route(
            prefixes=tuple(self._nets(node, "prefix")), next_hop_type=hop,
            next_hop_ip=node.ip("next_hop_ip"), name=node.text("name"), origin=node.text("source"),
            active=state is None or state.lower() == "active",
        )  # fmt: skip

    def _lb(self, node: Node) -> None:
        _check(node, ("name", "sku", "frontends", "pools", "rules", "nat_rules", "nat_pools",
                      "outbound_rules", "probes"))  # fmt: skip
        name = _req(node, "name")
        lb_id = nid("loadBalancers", name)
        sku = _sku(node, required=True)
        self.into.add(LoadBalancer(id=lb_id, name=name, sku=sku, source=node.where()))

        def child(collection: str, text: str | None) -> str | None:
            return lb_child_id(lb_id, collection, text) if text else None

        for fe in node.objs("frontends"):
            _check(fe, ("name", "public_ip", "public_ip_prefix", "private_ip", "subnet"))
            fe_name = _req(fe, "name")
            pip, pfx = fe.text("public_ip"), fe.text("public_ip_prefix")
            self.into.add(
                Frontend(
                    id=lb_child_id(lb_id, "frontendipconfigurations", fe_name), name=fe_name,
                    lb_id=lb_id,
                    public_ip_id=self.public_ip(pip, f"{name}-{fe_name}", sku, fe.where()) if pip else None,
                    public_ip_prefix_id=self.prefix(pfx, f"{name}-{fe_name}", fe.where()) if pfx else None,
                    private_ip=fe.ip("private_ip"), subnet_id=self.subnet(fe, "subnet"),
                    source=fe.where(),
                )
            )  # fmt: skip
        for pool in node.objs("pools"):
            _check(pool, ("name", "members", "addresses"))
            pool_name = _req(pool, "name")
            members = tuple(self.member(m, pool) for m in pool.strs("members"))
            self.into.add(
                BackendPool(
                    id=lb_child_id(lb_id, "backendaddresspools", pool_name), name=pool_name,
                    lb_id=lb_id, ipconfig_ids=members, addresses=tuple(self._ips(pool, "addresses")),
                    source=pool.where(),
                )
            )  # fmt: skip
        for probe in node.objs("probes"):
            _check(probe, ("name", "protocol", "port", "healthy"))
            pname = _req(probe, "name")
            self.into.add(
                Probe(
                    id=lb_child_id(lb_id, "probes", pname), name=pname, lb_id=lb_id,
                    protocol=probe.text("protocol"), port=probe.integer("port"),
                    healthy=probe.flag("healthy"), source=probe.where(),
                )
            )  # fmt: skip
        sections: tuple[tuple[str, RuleKind, str], ...] = (
            ("rules", "load_balancing", "loadbalancingrules"),
            ("nat_rules", "inbound_nat", "inboundnatrules"),
            ("nat_pools", "inbound_nat_pool", "inboundnatpools"),
            ("outbound_rules", "outbound", "outboundrules"),
        )
        for key, kind, collection in sections:
            for rule in node.objs(key):
                _check(rule, ("name", "protocol", "frontend", "frontends", "pool", "target",
                              "frontend_port", "frontend_port_range", "backend_port", "probe",
                              "disable_outbound_snat", "allocated_outbound_ports"))  # fmt: skip
                rname = _req(rule, "name")
                fes = [rule.text("frontend")] + rule.strs("frontends")
                port_range = rule.strs("frontend_port_range")
                target = rule.text("target")
                protocol = rule.text("protocol")
                if protocol is not None and protocol.capitalize() not in ("Tcp", "Udp", "All"):
                    raise rule.error(f"unknown protocol {clip(protocol)}", "protocol")
                self.into.add(
                    LbRule(
                        id=lb_child_id(lb_id, collection, rname), name=rname, lb_id=lb_id,
                        kind=kind,
                        protocol=protocol.capitalize() if protocol else None,  # type: ignore[arg-type]
                        frontend_ids=tuple(
                            lb_child_id(lb_id, "frontendipconfigurations", f) for f in fes if f
                        ),
                        pool_ids=(c,) if (c := child("backendaddresspools", rule.text("pool"))) else (),
                        ipconfig_id=self.member(target, rule) if target else None,
                        frontend_port=int(port_range[0]) if port_range else rule.integer("frontend_port"),
                        frontend_port_end=int(port_range[-1]) if port_range else None,
                        backend_port=rule.integer("backend_port"),
                        probe_id=child("probes", rule.text("probe")),
                        disable_outbound_snat=bool(rule.flag("disable_outbound_snat")),
                        allocated_outbound_ports=rule.integer("allocated_outbound_ports"),
                        source=rule.where(),
                    )
                )  # fmt: skip

    def _nat_gateway(self, node: Node) -> None:
        _check(node, ("name", "sku", "public_ips", "public_ip_prefixes", "subnets", "vnet"))
        name = _req(node, "name")
        subnets = []
        for i, text in enumerate(node.strs("subnets")):
            fake = Node({"s": text}, f"{node.path}.subnets[{i}]", node.source)
            if (sid := self.subnet(fake, "s")) is not None:
                subnets.append(sid)
        self.into.add(
            NatGateway(
                id=nid("natGateways", name), name=name, sku=_sku(node) or "Standard",
                public_ip_ids=tuple(
                    self.public_ip(p, f"{name}-{i + 1}", "Standard", node.where())
                    for i, p in enumerate(node.strs("public_ips"))
                ),
                public_ip_prefix_ids=tuple(
                    self.prefix(p, f"{name}-{i + 1}", node.where())
                    for i, p in enumerate(node.strs("public_ip_prefixes"))
                ),
                subnet_ids=tuple(subnets),
                vnet_id=nid("virtualNetworks", v) if (v := node.text("vnet")) else None,
                source=node.where(),
            )
        )  # fmt: skip

    def _route_table(self, node: Node) -> None:
        _check(node, ("name", "routes", "subnets"))
        name = _req(node, "name")
        subnets = []
        for i, text in enumerate(node.strs("subnets")):
            fake = Node({"s": text}, f"{node.path}.subnets[{i}]", node.source)
            if (sid := self.subnet(fake, "s")) is not None:
                subnets.append(sid)
        self.into.add(
            RouteTable(
                id=nid("routeTables", name), name=name,
                routes=tuple(self._route(r) for r in node.objs("routes")),
                subnet_ids=tuple(subnets), source=node.where(),
            )
        )  # fmt: skip

    def _firewall(self, node: Node) -> None:
        _check(node, ("name", "public_ips", "private_ip", "subnet", "snat_private_ranges"))
        name = _req(node, "name")
        self.into.add(
            Firewall(
                id=nid("azureFirewalls", name), name=name,
                public_ip_ids=tuple(
                    self.public_ip(p, f"{name}-{i + 1}", "Standard", node.where())
                    for i, p in enumerate(node.strs("public_ips"))
                ),
                private_ip=node.ip("private_ip"), subnet_id=self.subnet(node, "subnet"),
                snat_private_ranges=tuple(self._nets(node, "snat_private_ranges"))
                if node.has("snat_private_ranges") else None,
                source=node.where(),
            )
        )  # fmt: skip


def load(doc: Mapping[str, Any], source: str, into: Builder) -> None:
    """Read a native inventory document into ``into``.

    Raises:
        InventoryError: an unknown key, a bad value or a dangling in-file name, naming the
            file and the YAML path.
    """
    if not isinstance(doc, Mapping):
        raise InventoryError(f"{source}: $: expected a mapping of sections")
    _Reader(Node(doc, "$", source), into).run()
