"""The Azure network inventory: loaders for what users have, one normalized model.

Public API (used by ``analyze.predict`` and the classifier):

* ``load(paths) -> Inventory``: any mix of native YAML, az CLI / ARM JSON, ARM templates,
  Service Tags and allowlist files (or folders of them); ``Inventory.warnings`` lists
  missing references.
* ``Inventory``: typed tables (``vms``, ``nics``, ``ipconfigs``, ``load_balancers``,
  ``frontends``, ``pools``, ``rules``, ``nat_gateways``, ``firewalls``, ``subnets``, ...),
  ``proxies``, ``allowlists``, ``known_ranges``; ``service_tags`` (a polars frame in
  ``SERVICE_TAGS_SCHEMA``); ``tags_containing(ip)``; ``allowlist(name)``; ``tables()``
  (every table as a frame).
* ``addresses.address_table(inv)``: every owned address in ``ADDRESS_SCHEMA``, with class /
  via / owner / attached VMs; ``servicetags.flatten(inv.service_tags)``: IPv4 tags
  flattened to disjoint ranges, most specific tag each, for ``join_asof``.  (Functions, not
  ``Inventory`` methods, so that ``model`` imports no other module of the package.)
* ``load_allowlist(path)``: one allowlist file on its own.
"""

from __future__ import annotations

from pathlib import Path

from analyze.inventory.load import load
from analyze.inventory.model import (
    ADDRESS_SCHEMA,
    SERVICE_TAGS_SCHEMA,
    Allowlist,
    AllowRule,
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
)


def load_allowlist(path: str | Path) -> Allowlist:
    """Load a single allowlist file (text, App Service, NSG, storage or SQL JSON).

    Raises:
        InventoryError: the file is not exactly one allowlist.
    """
    from capture.errors import InventoryError

    inv = load([Path(path)])
    if len(inv.allowlists) != 1:
        raise InventoryError(f"{path}: expected one allowlist, found {len(inv.allowlists)}")
    return next(iter(inv.allowlists.values()))


__all__ = [
    "ADDRESS_SCHEMA",
    "SERVICE_TAGS_SCHEMA",
    "AllowRule",
    "Allowlist",
    "BackendPool",
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
    "ScaleSet",
    "Subnet",
    "Vm",
    "Vnet",
    "load",
    "load_allowlist",
]
