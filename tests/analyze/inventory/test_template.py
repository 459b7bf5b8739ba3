"""analyze/inventory/template.py: ARM template expressions, copy loops, placeholders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analyze.inventory import load
from analyze.inventory.build import Builder
from analyze.inventory.load import load_document, load_report
from analyze.inventory.template import Opaque, detect, detect_parameters, evaluate, expand
from capture.errors import InventoryError

ROOT = Path(__file__).resolve().parents[3]
INV = ROOT / "tests" / "data" / "inventory"
QUICKSTART = INV / "templates" / "lb_nat_2vms"
BASE = "/subscriptions/template/resourceGroups/template/providers/Microsoft.Network"


def _template(resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "lb": {"type": "String", "defaultValue": "lb1"},
            "n": {"type": "int", "defaultValue": 3},
            "names": {"type": "array", "defaultValue": ["a", "b", "c"]},
            "obj": {"type": "object", "defaultValue": {"k": "v", "list": [10, 20]}},
            "nothing": {"type": "string"},
        },
        "variables": {"pool": "pool1", "both": "[concat(parameters('lb'), '-', variables('pool'))]"},
        "resources": resources,
    }
    doc.update(extra)
    return doc


def _value(expr: Any, **params: Any) -> Any:
    value, _ = evaluate(_template([]), expr, "t.json", parameters=params or None)
    return value


# --- one case per function: its value -------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("[parameters('lb')]", "lb1"),
        ("[parameters('LB')]", "lb1"),  # names are case-insensitive
        ("[variables('both')]", "lb1-pool1"),
        ("[concat('a', 'b', parameters('lb'))]", "ablb1"),
        ("[concat('n', 1)]", "n1"),
        ("[concat(createArray(1, 2), createArray(3))]", [1, 2, 3]),
        ("[format('{0}/{1}', parameters('lb'), 'fe')]", "lb1/fe"),
        ("[format('vm{0:D3}', 7)]", "vm007"),
        ("[format('{{literal}} {0}', 'x')]", "{literal} x"),
        ("[toLower('AbC')]", "abc"),
        ("[toUpper('AbC')]", "ABC"),
        ("[string(5)]", "5"),
        ("[string(true())]", "True"),
        ("[string(createArray('a'))]", '["a"]'),
        ("[int('42')]", 42),
        ("[add(40, 2)]", 42),
        ("[add(parameters('n'), -1)]", 2),
        ("[if(equals(parameters('lb'), 'lb1'), 'yes', 'no')]", "yes"),
        ("[if(false(), parameters('undeclared'), 'taken')]", "taken"),  # only the branch taken
        ("[equals(1, 1)]", True),
        ("[equals('a', 'b')]", False),
        ("[equals(createArray(1, 2), createArray(1, 2))]", True),
        ("[empty('')]", True),
        ("[empty(createArray())]", True),
        ("[empty(parameters('obj'))]", False),
        ("[coalesce(null(), '', 'x')]", ""),  # empty string is not null
        ("[coalesce(null(), null(), 'x')]", "x"),
        ("[split('a,b;c', createArray(',', ';'))]", ["a", "b", "c"]),
        ("[split('10.0.0.0/24', '/')[1]]", "24"),
        ("[replace('a-b-c', '-', '.')]", "a.b.c"),
        ("[last(parameters('names'))]", "c"),
        ("[last('xyz')]", "z"),
        ("[first(parameters('names'))]", "a"),
        ("[first('xyz')]", "x"),
        ("[take(parameters('names'), 2)]", ["a", "b"]),
        ("[take('abcdef', 3)]", "abc"),
        ("[skip(parameters('names'), 2)]", ["c"]),
        ("[skip('abcdef', 4)]", "ef"),
        ("[length(parameters('names'))]", 3),
        ("[length('abcd')]", 4),
        ("[length(parameters('obj'))]", 2),
        ("[createArray('a', 1, true())]", ["a", 1, True]),
        ("[union(createArray('a', 'b'), createArray('b', 'c'))]", ["a", "b", "c"]),
        ("[union(parameters('obj'), createObject('k', 'w'))]", {"k": "w", "list": [10, 20]}),
        ("[parameters('obj').k]", "v"),
        ("[parameters('obj').list[1]]", 20),
        ("[parameters('obj')['K']]", "v"),
        ("[parameters('names')[add(0, 1)]]", "b"),
        ("['it''s']", "it's"),
        ("[[not an expression]", "[not an expression]"),
        ("plain text", "plain text"),
        ("[resourceId('Microsoft.Network/loadBalancers', parameters('lb'))]", f"{BASE}/loadBalancers/lb1"),
        ("[resourceId('Microsoft.Network/loadBalancers/backendAddressPools', 'lb1', variables('pool'))]",
         f"{BASE}/loadBalancers/lb1/backendAddressPools/pool1"),
        ("[resourceId('rg2', 'Microsoft.Network/publicIPAddresses', 'pip')]",
         "/subscriptions/template/resourceGroups/rg2/providers/Microsoft.Network/publicIPAddresses/pip"),
        ("[resourceId('sub9', 'rg2', 'Microsoft.Network/publicIPAddresses', 'pip')]",
         "/subscriptions/sub9/resourceGroups/rg2/providers/Microsoft.Network/publicIPAddresses/pip"),
        ({"a": "[add(1, 1)]", "b": ["[toLower('X')]"]}, {"a": 2, "b": ["x"]}),
    ],
)  # fmt: skip
def test_function_values(expr: Any, value: Any) -> None:
    got = _value(expr)
    assert got == value
    assert not isinstance(got, Opaque)


def test_parameters_file_values_win_over_defaults() -> None:
    assert _value("[parameters('lb')]", lb="from-file") == "from-file"
    assert _value("[add(parameters('n'), 1)]", n=9) == 10


def test_copy_index_outside_a_loop_is_an_error() -> None:
    with pytest.raises(InventoryError, match=r"t\.json: \$\.x: copyIndex\(\): copyIndex\(\) outside a copy loop"):
        _value("[copyIndex()]")


# --- what cannot be known: placeholders, one warning naming the paths ------------------------


@pytest.mark.parametrize(
    ("expr", "placeholder", "example"),
    [
        ("[uniqueString(resourceGroup().id)]", "<uniqueString(resourceGroup().id)>", "<uniqueString(resourceGroup().id)>"),
        ("[resourceGroup().location]", "<resourceGroup().location>", "<resourceGroup()>"),
        ("[subscription().subscriptionId]", "<subscription().subscriptionId>", "<subscription()>"),
        ("[deployment().name]", "<deployment().name>", "<deployment()>"),
        ("[guid(resourceGroup().id, 'x')]", "<guid(resourceGroup().id, 'x')>", "<guid(resourceGroup().id, 'x')>"),
        ("[reference('pip1').ipAddress]", "<reference('pip1').ipAddress>", "<reference('pip1')>"),
        ("[listKeys('sa', '2021-01-01').keys[0].value]", "<listKeys('sa', '2021-01-01').keys[0].value>",
         "<listKeys('sa', '2021-01-01')>"),
        ("[concat('sa', uniqueString('x'))]", "sa<uniqueString('x')>", "<uniqueString('x')>"),
        ("[toLower(uniqueString('x'))]", "<toLower(uniqueString('x'))>", "<uniqueString('x')>"),
        ("[if(equals(resourceGroup().location, 'x'), 1, 2)]", "<if(equals(resourceGroup().location, 'x'), 1, 2)>",
         "<resourceGroup()>"),
    ],
)  # fmt: skip
def test_unknowable_functions_are_placeholders(expr: str, placeholder: str, example: str) -> None:
    value, warnings = evaluate(_template([]), expr, "t.json", "$.variables.v")
    assert isinstance(value, Opaque)
    assert value == placeholder
    function = example[1:].split("(")[0]
    assert warnings == [
        f"t.json: {function}() cannot be known before deployment: a placeholder such as "
        f"{example} stands in for it at $.variables.v"
    ]


def test_a_declared_parameter_without_value_is_a_placeholder_and_a_warning() -> None:
    value, warnings = evaluate(_template([]), "[parameters('nothing')]", "t.json")
    assert value == "<parameters('nothing')>" and isinstance(value, Opaque)
    assert warnings == ["t.json: $.parameters.nothing: parameter has no value here (no defaultValue "
                        "and no parameters file gives it); a placeholder stands in for it"]  # fmt: skip


def test_an_unknown_function_is_a_placeholder_not_an_error() -> None:
    value, warnings = evaluate(_template([]), "[dateTimeAdd('2020', 'P1D')]", "t.json")
    assert value == "<dateTimeAdd('2020', 'P1D')>"
    assert warnings == ["t.json: $.x: template function dateTimeAdd() is not evaluated here; a "
                        "placeholder stands in for it"]  # fmt: skip


def test_placeholders_in_properties_read_as_unknown() -> None:
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "[concat('pip', uniqueString('a'))]",
                      "location": "[resourceGroup().location]",
                      "properties": {"ipAddress": "[reference('x').ipAddress]", "publicIPAllocationMethod": "Static"}}])  # fmt: skip
    ((res, where),) = expand(doc, "t.json").resources
    assert where == "$.resources[0]"
    assert res["name"] == "pip<uniqueString('a')>"  # a name keeps its stable placeholder
    assert "location" not in res
    assert res["properties"] == {"publicIPAllocationMethod": "Static"}


# --- malformed input stays an error naming the path -----------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("[parameters('nope')]", "parameter 'nope' is not defined"),
        ("[variables('x')]", "variable 'x' is not defined"),
        ("[concat('a', ]", "expression ends early"),
        ("[concat('a' 'b')]", "expected ',' or '\\)'"),
        ("[concat('a'))]", "unexpected '\\)' in expression"),
        ("[concat('a', #)]", "cannot read expression at offset 12"),
        ("[parameters('obj').nope]", "no property 'nope'"),
        ("[resourceId('Microsoft.Network/loadBalancers/backendAddressPools', 'lb1')]",
         r"resourceId\(\) of Microsoft.Network/loadBalancers/backendAddressPools needs 2 name"),
    ],
)  # fmt: skip
def test_expression_errors_name_the_path(expr: str, message: str) -> None:
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "p", "properties": {"x": expr}}])
    with pytest.raises(InventoryError, match=r"t\.json: \$\.resources\[0\]\.properties\.x: " + message):
        expand(doc, "t.json")


# --- copy loops --------------------------------------------------------------------------------


def test_resource_copy_with_offset_and_count_from_a_parameter() -> None:
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "[concat('pip', copyIndex(1))]",
                      "copy": {"name": "pipLoop", "count": "[parameters('n')]"},
                      "properties": {"idleTimeoutInMinutes": "[copyIndex('pipLoop', 4)]"}}])  # fmt: skip
    got = expand(doc, "t.json").resources
    assert [(r["name"], r["properties"]["idleTimeoutInMinutes"], w) for r, w in got] == [
        ("pip1", 4, "$.resources[0][copy 0]"),
        ("pip2", 5, "$.resources[0][copy 1]"),
        ("pip3", 6, "$.resources[0][copy 2]"),
    ]


def test_copy_count_zero_makes_nothing() -> None:
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "[concat('p', copyIndex())]",
                      "copy": {"name": "l", "count": 0}}])  # fmt: skip
    assert expand(doc, "t.json").resources == []


def test_property_copy_nested_in_a_resource_copy() -> None:
    doc = _template([{
        "type": "Microsoft.Network/networkInterfaces", "name": "[concat('nic', copyIndex())]",
        "copy": {"name": "nics", "count": 2},
        "properties": {"copy": [{"name": "ipConfigurations", "count": 2, "input": {
            "name": "[format('ipc{0}', copyIndex('ipConfigurations', 1))]",
            "properties": {"privateIPAddress": "[format('10.0.{0}.{1}', copyIndex(), add(4, copyIndex('ipConfigurations')))]",
                           "copy": [{"name": "tags", "count": "[copyIndex('ipConfigurations')]",
                                     "input": "[copyIndex('tags')]"}]}}}]},
    }])  # fmt: skip
    got = [(r["name"], [(c["name"], c["properties"]["privateIPAddress"], c["properties"]["tags"])
                        for c in r["properties"]["ipConfigurations"]]) for r, _ in expand(doc, "t.json").resources]  # fmt: skip
    assert got == [
        ("nic0", [("ipc1", "10.0.0.4", []), ("ipc2", "10.0.0.5", [0])]),
        ("nic1", [("ipc1", "10.0.1.4", []), ("ipc2", "10.0.1.5", [0])]),
    ]
    # inline children get ARM's ids
    nic0 = expand(doc, "t.json").resources[0][0]
    assert nic0["properties"]["ipConfigurations"][1]["id"] == f"{BASE}/networkInterfaces/nic0/ipConfigurations/ipc2"


def test_variable_copy() -> None:
    doc = _template([], variables={"copy": [{"name": "subnets", "count": 2, "input": {
        "name": "[concat('s', copyIndex('subnets', 1))]"}}]})  # fmt: skip
    assert evaluate(doc, "[variables('subnets')[1].name]")[0] == "s2"


@pytest.mark.parametrize(("count", "message"), [(801, "outside 0..800"), (-1, "outside 0..800"), ("'x'", "not a number")])
def test_bad_copy_counts(count: Any, message: str) -> None:
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "p",
                      "copy": {"name": "l", "count": f"[{count}]"}}])  # fmt: skip
    with pytest.raises(InventoryError, match=r"t\.json: \$\.resources\[0\]\.copy\.count: copy count .*" + message):
        expand(doc, "t.json")


def test_an_unknowable_copy_count_makes_no_copies_and_says_so() -> None:
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "p",
                      "copy": {"name": "l", "count": "[length(reference('x').list)]"}}])  # fmt: skip
    got = expand(doc, "t.json")
    assert got.resources == []
    assert "t.json: $.resources[0].copy.count: copy count <length(reference('x').list)> is not known" in got.warnings[0]


def test_condition_false_leaves_a_resource_out() -> None:
    doc = _template([
        {"type": "Microsoft.Network/publicIPAddresses", "name": "off", "condition": "[equals(parameters('lb'), 'x')]"},
        {"type": "Microsoft.Network/publicIPAddresses", "name": "on", "condition": True},
    ])  # fmt: skip
    got = expand(doc, "t.json")
    assert [r["name"] for r, _ in got.resources] == ["on"]
    assert got.left_out == 1


def test_load_balancer_and_public_ip_without_sku_are_basic() -> None:
    doc = _template([
        {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2020-08-01", "name": "lb1"},
        {"type": "Microsoft.Network/publicIPAddresses", "name": "pip1", "sku": {"name": "Standard"}},
        {"type": "Microsoft.Network/publicIPAddresses", "name": "pip2"},
    ])  # fmt: skip
    skus = [r["sku"] for r, _ in expand(doc, "t.json").resources]
    assert skus == [{"name": "Basic"}, {"name": "Standard"}, {"name": "Basic"}]


def test_child_resources_get_ids_from_type_and_name() -> None:
    doc = _template([
        {"type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "properties": {},
         "resources": [{"type": "subnets", "name": "app", "properties": {"addressPrefix": "10.0.0.0/24"}}]},
        {"type": "Microsoft.Network/loadBalancers/backendAddressPools",
         "name": "[concat(parameters('lb'), '/', variables('pool'))]", "properties": {}},
    ])  # fmt: skip
    ids = [r["id"] for r, _ in expand(doc, "t.json").resources]
    assert ids == [
        f"{BASE}/virtualNetworks/vnet1",
        f"{BASE}/virtualNetworks/vnet1/subnets/app",
        f"{BASE}/loadBalancers/lb1/backendAddressPools/pool1",
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
    assert detect_parameters(json.loads((QUICKSTART / "azuredeploy.parameters.json").read_text()))
    assert not detect_parameters(_template([]))


# --- the quickstart: 2 VMs behind a Basic load balancer with inbound NAT rules ------------------


def test_quickstart_loads_every_resource_by_copy() -> None:
    inv, report = load_report([QUICKSTART / "azuredeploy.json"])
    assert sorted(v.name for v in inv.vms.values()) == ["myVM0", "myVM1"]
    assert sorted(r.name for r in inv.rules.values()) == ["RDP-VM0", "RDP-VM1"]
    assert sorted(r.frontend_port for r in inv.rules.values()) == [50000, 50001]  # type: ignore[attr-defined]
    (lb,) = inv.load_balancers.values()
    assert lb.sku == "Basic"
    (pip,) = inv.public_ips.values()
    assert (pip.sku, pip.address) == ("Basic", None)  # dynamic: no address before deployment
    assert report.skipped == {"Microsoft.Storage/storageAccounts": 1}
    assert report.loaded["Microsoft.Compute/virtualMachines"] == 2
    assert report.loaded["Microsoft.Network/networkInterfaces"] == 2
    warned = "\n".join(inv.warnings)
    assert "uniqueString() cannot be known before deployment: a placeholder such as " \
           "<uniqueString(resourceGroup().id)> stands in for it at $.variables.storageAccountName" in warned
    assert "$.parameters.adminUsername: parameter has no value here" in warned


def test_quickstart_parameters_file_beside_the_template() -> None:
    inv = load([QUICKSTART])  # the folder: template + azuredeploy.parameters.json
    assert sorted(v.name for v in inv.vms.values()) == ["web0", "web1"]
    warned = "\n".join(inv.warnings)
    assert "adminUsername" not in warned
    assert "$.parameters.adminPassword: parameter has no value here (a Key Vault reference" in warned


def test_quickstart_predicts_both_vms_on_the_nat_rule_frontend() -> None:
    from analyze.predict import predict

    preds = sorted(predict(load([QUICKSTART / "azuredeploy.json"])), key=lambda p: p.vm)
    assert [(p.vm, p.egress_class, p.via, p.resource) for p in preds] == [
        ("myVM0", "lb_frontend", "nat_rule", "myLB/LoadBalancerFrontEnd"),
        ("myVM1", "lb_frontend", "nat_rule", "myLB/LoadBalancerFrontEnd"),
    ]
    for p in preds:
        assert p.expected_ips == ()
        assert "public IP myPublicIP" in p.missing  # the frontend's dynamic address


# --- nested deployments, languageVersion 2.0 ---------------------------------------------------


def _deployment(scope: str | None, **props: Any) -> dict[str, Any]:
    inner = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"pipName": {"type": "string"}},
        "resources": [{"type": "Microsoft.Network/publicIPAddresses", "name": "[parameters('pipName')]",
                       "properties": {"ipAddress": "203.0.113.7"}}],
    }  # fmt: skip
    body: dict[str, Any] = {"mode": "Incremental", "template": inner, **props}
    if scope:
        body["expressionEvaluationOptions"] = {"scope": scope}
    return {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "nested",
            "properties": body}  # fmt: skip


def test_nested_deployment_with_inner_scope_gets_its_parameters() -> None:
    doc = _template([_deployment("inner", parameters={"pipName": {"value": "[concat(parameters('lb'), '-pip')]"}})])
    ((res, where),) = expand(doc, "t.json").resources
    assert (res["name"], res["properties"]["ipAddress"]) == ("lb1-pip", "203.0.113.7")
    assert where == "$.resources[0].properties.template.resources[0]"


def test_nested_deployment_with_outer_scope_uses_the_outer_parameters() -> None:
    doc = _template([_deployment(None)])
    doc["parameters"]["pipName"] = {"type": "string", "defaultValue": "outer-pip"}
    ((res, _),) = expand(doc, "t.json").resources
    assert res["name"] == "outer-pip"


def test_linked_templates_are_a_warning() -> None:
    doc = _template([{"type": "Microsoft.Resources/deployments", "name": "linked",
                      "properties": {"templateLink": {"uri": "https://example.com/t.json"}}}])  # fmt: skip
    got = expand(doc, "t.json")
    assert got.resources == []
    assert got.warnings == ["t.json: $.resources[0].properties.templateLink: linked template "
                            "'https://example.com/t.json' is not fetched; load it (and its parameters) "
                            "as a file of its own"]  # fmt: skip


def test_symbolic_resources_and_existing_references() -> None:
    doc = _template([], languageVersion="2.0")
    doc["resources"] = {
        "pip": {"type": "Microsoft.Network/publicIPAddresses", "name": "pip1"},
        "vnet": {"type": "Microsoft.Network/virtualNetworks", "name": "other", "existing": True},
    }
    assert [r["name"] for r, _ in expand(doc, "t.json").resources] == ["pip1"]


def test_user_defined_functions_are_placeholders() -> None:
    value, warnings = evaluate(_template([]), "[contoso.uniqueName('x')]", "t.json")
    assert value == "<contoso.uniqueName('x')>"
    assert "template function contoso.uniqueName() is not evaluated here" in warnings[0]


def test_nested_copies_have_a_budget() -> None:
    loop = {"name": "inner", "count": 800, "input": {"copy": [{"name": "deeper", "count": 800, "input": 1}]}}
    doc = _template([{"type": "Microsoft.Network/publicIPAddresses", "name": "p", "properties": {"copy": [loop]}}])
    with pytest.raises(InventoryError, match=r"t\.json: \$\.resources\[0\]\.properties\.copy\[0\]\.input\.copy\[0\]: copy loops expand to more than 100,000 copies"):
        expand(doc, "t.json")


def test_deep_expressions_are_an_error_not_a_crash() -> None:
    with pytest.raises(InventoryError, match=r"t\.json: \$\.x: expression nested too deeply"):
        evaluate(_template([]), "[" + "string(" * 5000 + "1" + ")" * 5000 + "]", "t.json")


def test_cli_predict_on_the_quickstart_template() -> None:
    from click.testing import CliRunner

    from analyze.cli import cli

    result = CliRunner().invoke(cli, ["predict", "--inventory", str(QUICKSTART / "azuredeploy.json")])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[1:3]]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("myVM0", "lb_frontend", "nat_rule", "myLB/LoadBalancerFrontEnd"),
        ("myVM1", "lb_frontend", "nat_rule", "myLB/LoadBalancerFrontEnd"),
    ]
    assert result.stdout.count("Not loaded: public IP myPublicIP") == 2
    assert "uniqueString() cannot be known before deployment" in result.stderr
