"""analyze/inventory/wrappers.py: documents in the envelopes users copy them in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analyze.inventory import load
from analyze.inventory.load import load_report
from analyze.inventory.wrappers import unwrap
from analyze.predict import predict
from capture.errors import InventoryError

ROOT = Path(__file__).resolve().parents[3]
WRAPPERS = ROOT / "tests" / "data" / "inventory" / "wrappers"
S = "/subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/rg-web/providers"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"parameters": {}, "responses": {"200": {"body": {"id": "a"}}, "201": {"body": {"id": "b"}}}},
         [({"id": "a"}, ".responses.200.body")]),
        ({"parameters": {}, "responses": {"201": {"body": {"id": "b"}}}}, [({"id": "b"}, ".responses.201.body")]),
        ({"parameters": {}, "responses": {"202": {}, "204": {}}}, []),  # a delete: nothing to read
        ({"statusCode": 200, "body": {"id": "a"}}, [({"id": "a"}, ".body")]),
        ({"template": {"resources": []}, "error": None}, [({"resources": []}, ".template")]),
        ({"data": {"columns": [{"name": "id"}, {"name": "name"}], "rows": [["/x", "x"]]}},
         [({"id": "/x", "name": "x"}, ".data.rows[0]")]),
        ({"id": "/x", "name": "x"}, None),
        ({"value": []}, None),
        ({"data": []}, None),
        ([{"id": "/x"}], None),
    ],
)  # fmt: skip
def test_unwrap(doc: Any, expected: Any) -> None:
    assert unwrap(doc) == expected


@pytest.mark.parametrize(
    ("name", "table", "key"),
    [
        ("rest_lb_get.json", "load_balancers", f"{S}/microsoft.network/loadbalancers/lb-web"),
        ("rest_pip_list.json", "public_ips", f"{S}/microsoft.network/publicipaddresses/pip-out"),
        ("rest_nic_put.json", "nics", f"{S}/microsoft.network/networkinterfaces/nic-web1"),
        ("az_rest_vm.json", "vms", f"{S}/microsoft.compute/virtualmachines/web1"),
        ("graph_page.json", "vnets", f"{S}/microsoft.network/virtualnetworks/vnet-web"),
        ("graph_table.json", "public_ips", f"{S}/microsoft.network/publicipaddresses/pip-spare"),
        ("export_api.json", "nat_gateways", "/subscriptions/template/resourcegroups/template/providers/microsoft.network/natgateways/ngw-web"),
        ("portal_json_view.json", "route_tables", f"{S}/microsoft.network/routetables/rt-web"),
    ],
)  # fmt: skip
def test_each_wrapper_loads_on_its_own(name: str, table: str, key: str) -> None:
    inv = load([WRAPPERS / name])
    assert key in getattr(inv, table)


def test_rest_example_keeps_the_200_body_and_its_path() -> None:
    inv = load([WRAPPERS / "rest_nic_put.json"])
    (ipc,) = inv.ipconfigs.values()
    assert ipc.private_ip == "10.1.0.4"  # the 200 body, not the 201 one (which has no ipconfig)
    assert ipc.source.endswith("rest_nic_put.json: $.responses.200.body.properties.ipConfigurations[0]")


def test_graph_table_rows_become_resources() -> None:
    inv = load([WRAPPERS / "graph_table.json"])
    (pip,) = inv.public_ips.values()
    assert (pip.name, pip.address, pip.sku) == ("pip-spare", "203.0.113.99", "Standard")


def test_the_folder_predicts_the_outbound_rule_address() -> None:
    (pred,) = predict(load([WRAPPERS]))
    assert (pred.vm, pred.egress_class, pred.via, pred.expected_ips, pred.missing) == (
        "web1", "lb_frontend", "outbound_rule", ("203.0.113.10",), ())


def test_unknown_types_are_skipped_and_counted_by_type() -> None:
    inv, report = load_report([WRAPPERS])
    assert report.skipped == {"microsoft.storage/storageaccounts": 1, "microsoft.keyvault/vaults": 1}
    assert report.loaded["Microsoft.Network/loadBalancers"] == 1
    assert report.loaded["microsoft.network/virtualnetworks"] == 1
    assert (
        "skipped 2 resources of types not read for egress: microsoft.keyvault/vaults (1, first at "
        f"{WRAPPERS / 'graph_table.json'}: $.data.rows[1])" in inv.warnings[-1]
    )


def test_unknown_properties_are_ignored(tmp_path: Path) -> None:
    doc = json.loads((WRAPPERS / "rest_pip_list.json").read_text())
    body = doc["responses"]["200"]["body"]["value"][0]
    body["properties"]["aBrandNewField"] = {"nested": [1, 2]}
    body["futureTopLevel"] = True
    (tmp_path / "pip.json").write_text(json.dumps(doc))
    (pip,) = load([tmp_path / "pip.json"]).public_ips.values()
    assert pip.address == "203.0.113.10"


def test_a_known_resource_with_a_wrong_egress_field_type_is_an_error(tmp_path: Path) -> None:
    doc = json.loads((WRAPPERS / "rest_pip_list.json").read_text())
    doc["responses"]["200"]["body"]["value"][0]["properties"]["ipAddress"] = ["203.0.113.10"]
    (tmp_path / "pip.json").write_text(json.dumps(doc))
    with pytest.raises(InventoryError, match=r"pip\.json: \$\.responses\.200\.body\.value\[0\]\.properties\.ipAddress: expected text"):
        load([tmp_path / "pip.json"])
