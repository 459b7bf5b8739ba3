"""analyze/inventory/load.py: detection, mixing files, errors, and `egresslens inventory show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyze.cli import cli
from analyze.inventory import load
from capture.errors import InputError

ROOT = Path(__file__).resolve().parents[3]
INV = ROOT / "tests" / "data" / "inventory"
BROKEN = INV / "broken"
ARTICLE = ROOT / "pcaps" / "inventory" / "article.yaml"


def test_any_mix_in_one_call() -> None:
    inv = load([ARTICLE, INV / "az" / "row_5.json", INV / "ServiceTags_Public_20260105.json",
                INV / "allowlists" / "office.txt"])  # fmt: skip
    assert len(inv.vms) == 4 and len(inv.load_balancers) == 2
    assert inv.service_tags.height == 6
    assert sorted(inv.allowlists) == ["office", "web-app"]
    assert inv.warnings == ()


def test_folder_is_every_file_and_equal_ids_merge() -> None:
    inv = load([INV / "az"])
    # the eight row files reuse three NIC ids: vm1-nic, vm2-nic and test2vm-nic
    assert sorted(inv.display_name(i) for i in inv.ipconfigs) == [
        "test2vm-nic/ipconfig1", "vm1-nic/ipconfig1", "vm2-nic/ipconfig1",
    ]  # fmt: skip
    # rows 3 and 4 both give vm1-nic/ipconfig1 the public IP vm1-pip; row 5 adds pool1
    vm1 = next(i for i in inv.ipconfigs.values() if i.nic_id.endswith("/vm1-nic"))
    assert vm1.public_ip_id is not None and vm1.public_ip_id.endswith("/publicipaddresses/vm1-pip")
    assert vm1.pool_ids == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg1/providers/"
        "microsoft.network/loadbalancers/lb1/backendaddresspools/pool1",
    )
    assert inv.warnings == ()


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("truncated.json", "truncated.json: line 3 column 1: invalid JSON"),
        ("bad_ip.yaml", r"bad_ip.yaml: \$\.vms\[1\]\.private_ip: not an IP address: '10.0.0.999'"),
        ("unknown_key.yaml", r"unknown_key.yaml: \$\.load_balancers\[0\]: unknown key 'outbound_rule'"),
        ("bad_lb_sku.json", r"bad_lb_sku.json: \$\.value\[0\]\.sku: unknown SKU 'Premium'"),
        ("bad_template.json", r"bad_template.json: \$\.resources\[0\]\.name: parameter 'pipName' is not defined"),
        ("bad_allowlist.txt", r"bad_allowlist.txt: line 3: not an IP address or CIDR: 'not-an-address'"),
        ("not_inventory.json", r"not_inventory.json: \$: not an inventory document"),
    ],
)
def test_broken_input_names_file_and_path(name: str, error: str) -> None:
    with pytest.raises(InputError, match=error):
        load([BROKEN / name])


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load([tmp_path / "nope.json"])
    (tmp_path / "empty.yaml").write_text("\n")
    with pytest.raises(InputError, match="empty.yaml: empty file"):
        load([tmp_path / "empty.yaml"])
    (tmp_path / "bad.yaml").write_text("vms:\n  - {name: [\n")
    with pytest.raises(InputError, match=r"bad.yaml: line \d+: invalid YAML"):
        load([tmp_path / "bad.yaml"])


def test_the_same_resource_from_two_sources_merges(tmp_path: Path) -> None:
    # A PIP from `az network public-ip list` (no address while deallocated) and again from
    # `az vm list-ip-addresses` (with the address): one record, the address kept.
    pid = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p"
    (tmp_path / "a.json").write_text(json.dumps([{"id": pid, "name": "p", "sku": {"name": "Standard"}}]))
    (tmp_path / "b.json").write_text(json.dumps([{"virtualMachine": {"name": "vm", "network": {
        "publicIpAddresses": [{"id": pid.upper(), "name": "p", "ipAddress": "52.0.0.1"}]}}}]))  # fmt: skip
    inv = load([tmp_path / "a.json", tmp_path / "b.json"])
    (pip,) = inv.public_ips.values()
    assert (pip.name, pip.address, pip.sku) == ("p", "52.0.0.1", "Standard")


def test_cli_inventory_show_table_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["inventory", "show", str(ARTICLE)])
    assert result.exit_code == 0, result.output
    assert "== load_balancers (1)" in result.stdout
    assert "mybackendpool  mylb   Test2VM-nic/ipconfig1" in result.stdout
    result = runner.invoke(cli, ["inventory", "show", "--format", "json", str(INV / "modifiers" / "missing.yaml")])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [v["name"] for v in doc["vms"]] == ["vm1", "vm2"]
    assert len(doc["warnings"]) == 2
    assert "warning:" in result.stderr


def test_cli_inventory_show_error_is_one_line() -> None:
    result = CliRunner().invoke(cli, ["inventory", "show", str(BROKEN / "unknown_key.yaml")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")


def test_native_typo_gets_the_precise_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("vms: []\nload_balancer: []\n")
    with pytest.raises(InputError, match=r"inv.yaml: \$: unknown key 'load_balancer'"):
        load([path])


def test_cli_inventory_show_lists_loaded_and_skipped_types() -> None:
    folder = INV / "wrappers"
    runner = CliRunner()
    result = runner.invoke(cli, ["inventory", "show", str(folder)])
    assert result.exit_code == 0, result.output
    assert "== Azure resources by type (8 loaded, 2 skipped)" in result.stdout
    lines = result.stdout.split("== Azure resources by type")[1].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    assert rows["microsoft.keyvault/vaults"] == ["0", "1"]
    assert rows["microsoft.storage/storageaccounts"] == ["0", "1"]
    assert rows["Microsoft.Network/loadBalancers"] == ["1", "0"]
    result = runner.invoke(cli, ["inventory", "show", "--format", "json", str(folder)])
    doc = json.loads(result.stdout)
    assert {r["type"]: (r["loaded"], r["skipped"]) for r in doc["resources_by_type"]} == {
        "Microsoft.Compute/virtualMachines": (1, 0),
        "microsoft.keyvault/vaults": (0, 1),
        "Microsoft.Network/loadBalancers": (1, 0),
        "Microsoft.Network/natGateways": (1, 0),
        "Microsoft.Network/networkInterfaces": (1, 0),
        "microsoft.network/publicipaddresses": (2, 0),  # first spelled so by graph_table.json
        "Microsoft.Network/routeTables": (1, 0),
        "microsoft.network/virtualnetworks": (1, 0),
        "microsoft.storage/storageaccounts": (0, 1),
    }


def test_a_parameters_file_without_a_template_is_a_warning(tmp_path: Path) -> None:
    params = INV / "templates" / "lb_nat_2vms" / "azuredeploy.parameters.json"
    inv = load([params])
    assert inv.warnings == (
        f"{params}: parameters file not matched to a template (name it <template>.parameters.json, "
        "or load it with exactly one template)",
    )
