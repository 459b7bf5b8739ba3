"""Allowlists: what a destination accepts, from the files users actually have.

* a text file of addresses / CIDRs, one per line, ``#`` comments;
* App Service access restrictions (``az webapp config access-restriction show``);
* NSG rules (``az network nsg rule list``, ``az network nsg show``): inbound rules with
  their source prefixes, by priority;
* Storage firewall rules (``az storage account network-rule list``,
  ``networkAcls`` of ``az storage account show``);
* SQL server firewall rules (``az sql server firewall-rule list``; the 0.0.0.0 rule means
  "Allow Azure services", i.e. the ``AzureCloud`` tag).

The native YAML lists them too (``native.py``).  Each becomes an ``Allowlist`` whose rules
keep priority and action, so ``Allowlist.allows`` answers as the destination would.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from analyze.inventory.model import Allowlist, AllowRule, id_name, id_parent
from analyze.inventory.node import Node, parse_network
from capture.errors import InventoryError, ParseError, clip

NAME = "allowlist"
"""Loader name, for messages."""


def read_text(text: str, source: str, name: str) -> Allowlist:
    """A text allowlist: one address or CIDR per line; ``#`` starts a comment.

    Raises:
        ParseError: a line that is neither, naming the file and the line number.
    """
    rules = []
    for lineno, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ParseError(
                f"{source}: line {lineno}: not an IP address or CIDR: {clip(line)}"
            ) from None
        rules.append(AllowRule(network=str(net)))
    return Allowlist(name=name, rules=tuple(rules), source=source)


def entry_rule(text: str, where: str, *, action: str = "allow", priority: int | None = None) -> AllowRule:
    """One entry that is an address, a CIDR, a range ``a-b``... or a service tag name."""
    value = text.strip()
    try:
        return AllowRule(
            network=str(ipaddress.ip_network(value, strict=False)),
            action=action,  # type: ignore[arg-type]
            priority=priority,
        )
    except ValueError:
        pass
    if value and all(c.isalnum() or c in "._-*" for c in value):
        return AllowRule(tag=value, action=action, priority=priority)  # type: ignore[arg-type]
    raise InventoryError(f"{where}: not an address, CIDR or service tag: {clip(text)}")


def _action(node: Node, where: str) -> str:
    text = (node.text("action", "access") or "Allow").lower()
    if text not in ("allow", "deny"):
        raise InventoryError(f"{where}: unknown action {clip(text)}")
    return text


def detect(doc: Any) -> str | None:
    """Which allowlist document ``doc`` is (``appservice``, ``storage``, ``nsg``, ``sql``)."""
    if isinstance(doc, Mapping):
        keys = {k.lower() for k in doc if isinstance(k, str)}
        props = doc.get("properties")
        if isinstance(props, Mapping):
            keys |= {k.lower() for k in props if isinstance(k, str)}
        if "ipsecurityrestrictions" in keys:
            return "appservice"
        if "iprules" in keys and ("virtualnetworkrules" in keys or "defaultaction" in keys):
            return "storage"
        if "networkacls" in keys:
            return "storage"
        if "securityrules" in keys or "defaultsecurityrules" in keys:
            return "nsg"
        if {"direction", "access"} <= keys and ("sourceaddressprefix" in keys or "sourceaddressprefixes" in keys):
            return "nsg_rule"
        if {"startipaddress", "endipaddress"} <= keys:
            return "sql"
    return None


def load(kind: str, node: Node, stem: str) -> Allowlist:
    """Read an allowlist document of ``kind`` (see ``detect``); ``stem`` names file-level ones."""
    if kind == "appservice":
        rules = []
        for r in node.objs("ipSecurityRestrictions"):
            where = f"{node.source}: {r.path}"
            action, priority = _action(r, where), r.integer("priority")
            tag_kind = (r.text("tag") or "Default").lower()
            ip = r.text("ipAddress")
            if r.text("vnetSubnetResourceId"):
                rules.append(
                    AllowRule(subnet_id=r.ref("vnetSubnetResourceId"), action=action, priority=priority)  # type: ignore[arg-type]
                )
            elif ip is None:
                continue
            elif tag_kind == "servicetag" or ip.lower() == "any":
                for part in ip.split(","):
                    rules.append(AllowRule(tag=part.strip(), action=action, priority=priority))  # type: ignore[arg-type]
            else:
                for part in ip.split(","):
                    rules.append(entry_rule(part, where, action=action, priority=priority))
        return Allowlist(name=node.text("name") or stem, rules=tuple(rules), source=node.where())
    if kind == "storage":
        acls = node.obj("networkAcls") or node
        rules = []
        for r in acls.objs("ipRules"):
            value = r.text("ipAddressOrRange", "value")
            if value:
                rules.append(entry_rule(value, f"{node.source}: {r.path}", action=_action(r, r.where())))
        for r in acls.objs("virtualNetworkRules"):
            if (sid := r.ref("virtualNetworkResourceId", "id")) is not None:
                rules.append(AllowRule(subnet_id=sid))
        if (acls.text("defaultAction") or "deny").lower() == "allow":
            rules.append(AllowRule(tag="*"))
        name = node.text("name") if node is not acls or node.has("networkAcls") else None
        return Allowlist(name=name or stem, rules=tuple(rules), source=node.where())
    if kind == "nsg":
        rules = []
        for r in node.objs("securityRules") + node.objs("defaultSecurityRules"):
            rules += _nsg_rule(r)
        return Allowlist(name=node.text("name") or stem, rules=tuple(rules), source=node.where())
    if kind == "nsg_rule":
        rid = node.text("id")
        name = id_name(id_parent(rid)) if rid and "/securityrules/" in rid.lower() else stem
        return Allowlist(name=name, rules=tuple(_nsg_rule(node)), source=node.where())
    if kind == "sql":
        rid = node.text("id")
        name = id_name(id_parent(rid)) if rid and "/firewallrules/" in rid.lower() else stem
        start, end = node.ip("startIpAddress"), node.ip("endIpAddress")
        assert start is not None and end is not None
        if start == end == "0.0.0.0":
            rules = [AllowRule(tag="AzureCloud")]  # "Allow Azure services and resources"
        else:
            try:
                nets = ipaddress.summarize_address_range(
                    ipaddress.ip_address(start), ipaddress.ip_address(end)  # type: ignore[arg-type,unused-ignore]
                )
                rules = [AllowRule(network=str(n)) for n in nets]
            except (ValueError, TypeError):
                raise node.error(f"bad range {start} - {end}") from None
        return Allowlist(name=name, rules=tuple(rules), source=node.where())
    raise node.error(f"unknown allowlist kind {kind}")


def _nsg_rule(node: Node) -> list[AllowRule]:
    if (node.text("direction") or "").lower() != "inbound":
        return []
    where = f"{node.source}: {node.path}"
    action, priority = _action(node, where), node.integer("priority")
    sources = node.strs("sourceAddressPrefixes") or node.strs("sourceAddressPrefix")
    return [entry_rule(s, where, action=action, priority=priority) for s in sources]


__all__ = ["entry_rule", "parse_network", "read_text"]
