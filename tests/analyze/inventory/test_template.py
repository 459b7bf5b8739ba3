"""analyze/inventory/template.py: ARM template expressions and exported templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analyze.inventory import load
from analyze.inventory.template import detect, expand
from capture.errors import InventoryError

ROOT = Path(__file__).resolve().parents[3]
INV = ROOT / "tests" / "data" / "inventory"


def _template(resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"lb": {"type": "String", "defaultValue": "lb1"}},
        "variables": {"pool": "pool1", "both": "[concat(parameters('lb'), '-', variables('pool'))]"},
        "resources": resources,
        **extra,
    }


def _value(expr: str) -> Any:
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "p",
                      "properties": {"x": expr}}])  # fmt: skip
    (resource, _), = expand(doc, "t.json")
    return resource["properties"]["x"]


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("[parameters('lb')]", "lb1"),
        ("[variables('both')]", "lb1-pool1"),
        ("[concat('a', 'b', parameters('lb'))]", "ablb1"),
        ("[format('{0}/{1}', parameters('lb'), 'fe')]", "lb1/fe"),
        ("[toLower('AbC')]", "abc"),
        ("['it''s']", "it's"),
        ("[[not an expression]", "[not an expression]"),
        ("[resourceId('Microsoft.Network/loadBalancers', parameters('lb'))]",
         "/subscriptions/template/resourceGroups/template/providers/Microsoft.Network/loadBalancers/lb1"),
        ("[resourceId('Microsoft.Network/loadBalancers/backendAddressPools', 'lb1', variables('pool'))]",
         "/subscriptions/template/resourceGroups/template/providers/Microsoft.Network/loadBalancers/lb1/backendAddressPools/pool1"),
        ("[resourceId('rg2', 'Microsoft.Network/publicIPAddresses', 'pip')]",
         "/subscriptions/template/resourceGroups/rg2/providers/Microsoft.Network/publicIPAddresses/pip"),
        ("[resourceId('sub9', 'rg2', 'Microsoft.Network/publicIPAddresses', 'pip')]",
         "/subscriptions/sub9/resourceGroups/rg2/providers/Microsoft.Network/publicIPAddresses/pip"),
        ("[concat(subscription().subscriptionId, '/', resourceGroup().name)]", "template/template"),
    ],
)
def test_expressions(expr: str, value: str) -> None:
    assert _value(expr) == value


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("[parameters('nope')]", "parameter 'nope' is not defined"),
        ("[variables('x')]", "variable 'x' is not defined"),
        ("[reference('x').id]", r"unsupported template function reference\(\)"),
        ("[concat('a', ]", "expression ends early"),
        ("[resourceId('Microsoft.Network/loadBalancers/backendAddressPools', 'lb1')]",
         r"resourceId\(\) of Microsoft.Network/loadBalancers/backendAddressPools needs 2 name"),
    ],
)
def test_expression_errors_name_the_path(expr: str, message: str) -> None:
    with pytest.raises(InventoryError, match=r"t\.json: \$\.resources\[0\]\.properties\.x: " + message):
        _value(expr)


def test_child_resources_get_ids_from_type_and_name() -> None:
    doc = _template([
        {"type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "properties": {},
         "resources": [{"type": "subnets", "name": "app", "properties": {"addressPrefix": "10.0.0.0/24"}}]},
        {"type": "Microsoft.Network/loadBalancers/backendAddressPools",
         "name": "[concat(parameters('lb'), '/', variables('pool'))]", "properties": {}},
    ])  # fmt: skip
    ids = [r["id"] for r, _ in expand(doc, "t.json")]
    base = "/subscriptions/template/resourceGroups/template/providers/Microsoft.Network"
    assert ids == [
        f"{base}/virtualNetworks/vnet1",
        f"{base}/virtualNetworks/vnet1/subnets/app",
        f"{base}/loadBalancers/lb1/backendAddressPools/pool1",
    ]


def test_scope_is_taken_from_externalid_defaults() -> None:
    inv = load([INV / "exported_template.json"])
    sub = "/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/rg-prod/providers"
    assert f"{sub}/microsoft.network/loadbalancers/lb1" in inv.load_balancers
    assert f"{sub}/microsoft.network/virtualnetworks/vnet1/subnets/app" in inv.subnets
    subnet = inv.subnets[f"{sub}/microsoft.network/virtualnetworks/vnet1/subnets/app"]
    assert subnet.default_outbound_access is True  # "true" as a template string


def test_references_that_differ_only_in_scope_are_linked() -> None:
    # No externalid defaults: resourceId() uses a placeholder scope, the pool reference on
    # the NIC uses a real one; they still link through the /providers/... suffix.
    doc = _template([
        {"type": "Microsoft.Network/loadBalancers", "name": "lb1", "sku": {"name": "Standard"},
         "properties": {"backendAddressPools": [{"name": "pool1"}]}},
        {"type": "Microsoft.Network/networkInterfaces", "name": "nic1", "properties": {
            "ipConfigurations": [{"name": "ipconfig1", "properties": {
                "loadBalancerBackendAddressPools": [{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1/backendAddressPools/pool1"}]}}]}},
    ])  # fmt: skip
    import json

    from analyze.inventory.build import Builder
    from analyze.inventory.load import load_document

    builder = Builder()
    load_document(json.loads(json.dumps(doc)), "t.json", "t", builder)
    inv = builder.finish()
    (ipc,) = inv.ipconfigs.values()
    assert ipc.pool_ids == (next(iter(inv.pools)),)
    assert next(iter(inv.pools)).startswith("/subscriptions/template/")


def test_detect() -> None:
    assert detect(_template([]))
    assert not detect({"resources": []})
    assert not detect([])
