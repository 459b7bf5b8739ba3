"""analyze/inventory/model.py: ids, allowlist evaluation, table views."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyze.inventory import Allowlist, AllowRule, load
from analyze.inventory.model import (
    canon_id,
    id_parent,
    id_type,
    in_networks,
    vmss_instance_id,
)

ROOT = Path(__file__).resolve().parents[3]


def test_ids() -> None:
    rid = "/SUBSCRIPTIONS/S/resourceGroups/RG/providers/Microsoft.Network/loadBalancers/LB1/backendAddressPools/P/"
    assert canon_id(rid) == "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/loadbalancers/lb1/backendaddresspools/p"
    assert id_type(rid) == "backendaddresspools"
    assert id_parent(canon_id(rid)).endswith("/loadbalancers/lb1")
    nic = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachinescalesets/ss/virtualmachines/3/networkinterfaces/n"
    assert vmss_instance_id(nic) == nic.split("/networkinterfaces/")[0]
    assert vmss_instance_id("/subscriptions/s/providers/microsoft.network/networkinterfaces/n") is None


def test_in_networks_mixes_versions() -> None:
    assert in_networks("10.1.2.3", ["2001:db8::/32", "10.0.0.0/8"])
    assert not in_networks("2001:db9::1", ["2001:db8::/32", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("rules", "address", "tags", "expected"),
    [
        ((), "1.2.3.4", None, False),  # nothing matches: denied
        ((AllowRule(network="1.2.3.0/24"),), "1.2.3.4", None, True),
        ((AllowRule(network="1.2.3.0/24", action="deny", priority=10),
          AllowRule(network="1.2.3.4/32", priority=20)), "1.2.3.4", None, False),
        ((AllowRule(network="1.2.3.4/32", priority=5),
          AllowRule(network="1.2.3.0/24", action="deny", priority=10)), "1.2.3.4", None, True),
        ((AllowRule(tag="Internet"),), "8.8.8.8", None, True),
        ((AllowRule(tag="AzureCloud"),), "8.8.8.8", None, None),
        ((AllowRule(tag="AzureCloud"),), "8.8.8.8", frozenset({"azurecloud"}), True),
        ((AllowRule(subnet_id="/x/subnets/a"),), "10.0.0.1", None, None),
        ((AllowRule(network="::/0"),), "1.2.3.4", None, False),  # IPv6 rule, IPv4 source
    ],
)  # fmt: skip
def test_allowlist_first_match_by_priority(
    rules: tuple[AllowRule, ...], address: str, tags: frozenset[str] | None, expected: bool | None
) -> None:
    assert Allowlist(name="a", rules=rules).allows(address, tags) is expected


def test_display_tables_use_names() -> None:
    inv = load([ROOT / "pcaps" / "inventory" / "article.yaml"])
    tables = inv.tables(display=True)
    ipcs = tables["ipconfigs"]
    assert "id" not in ipcs.columns and "source" not in ipcs.columns
    assert ipcs.get_column("pool_ids").to_list() == [["mylb/mybackendpool"], []]
    assert ipcs.get_column("subnet_id").to_list() == ["myvnet/default", "myvnet/default"]
    assert inv.tables()["ipconfigs"].get_column("id").str.starts_with("/subscriptions/native/").all()


def _package_imports() -> dict[str, set[str]]:
    """Module -> modules of ``analyze.inventory`` it imports (anywhere, also inside functions)."""
    import ast

    pkg = Path(__file__).resolve().parents[3] / "analyze" / "inventory"
    graph: dict[str, set[str]] = {}
    for path in sorted(pkg.glob("*.py")):
        name = f"analyze.inventory.{path.stem}" if path.stem != "__init__" else "analyze.inventory"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            deps |= {m for m in mods if m.startswith("analyze.inventory.") and m.count(".") == 2}
        graph[name] = deps - {name}
    return graph


def test_inventory_package_has_no_import_cycles() -> None:
    graph = _package_imports()
    assert graph["analyze.inventory.model"] == set()  # the leaf every loader builds on
    state: dict[str, int] = {}

    def visit(mod: str, trail: tuple[str, ...]) -> None:
        assert state.get(mod) != 1, f"import cycle: {' -> '.join((*trail, mod))}"
        if state.get(mod) == 2:
            return
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            visit(dep, (*trail, mod))
        state[mod] = 2

    for mod in graph:
        visit(mod, ())
