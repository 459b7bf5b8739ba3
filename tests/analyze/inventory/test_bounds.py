"""Hostile inventory sizes (issue 7, item 2): deep nesting, YAML alias bombs and loops, huge
files.  Each must end in an ``InventoryError`` naming the file, quickly and in little memory.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from analyze.inventory import load
from capture.errors import InventoryError

LOAD = importlib.import_module("analyze.inventory.load")
"""The module (``analyze.inventory.load`` the attribute is the function), for its limits."""
BOMB_LEVELS = 9
"""Nine anchors of ten aliases each over ten values: 10**10 values once expanded."""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _alias_bomb(tail: str) -> str:
    """Native YAML whose ``description`` holds the anchors and ``tail`` uses the last one."""
    lines = ["description:", "  - &a0 [" + ", ".join(["x"] * 10) + "]"]
    for i in range(1, BOMB_LEVELS):
        lines.append(f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join([*lines, tail, ""])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("arrays.json", "[" * 100_000 + "]" * 100_000),
        ("pages.json", '{"value": ' * 20_000 + "[]" + "}" * 20_000),
        ("just_too_deep.json", "[" * (LOAD.MAX_DEPTH + 2) + "]" * (LOAD.MAX_DEPTH + 2)),
        ("block.yaml", "vms:\n" + "".join(" " * i + "-\n" for i in range(1, 2_000))),
        ("flow.yaml", "vms: " + "[" * 3_000 + "]" * 3_000 + "\n"),
    ],
)
def test_deep_nesting_is_a_clear_inventory_error(tmp_path: Path, name: str, text: str) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(InventoryError, match=rf"{name}: nested more than 100 levels deep"):
        load([path])


def test_nesting_within_the_limit_reaches_the_loader(tmp_path: Path) -> None:
    path = _write(tmp_path, "deep_ok.json", "[" * 50 + "{}" + "]" * 50)
    with pytest.raises(InventoryError, match=r"not an inventory document") as info:
        load([path])
    assert "nested" not in str(info.value)


@pytest.mark.parametrize(
    "tail", ["vms: [{name: vm1, nics: *a8}]", "vms: [*a8]", "known_ranges: *a8"]
)
def test_yaml_alias_bomb_is_refused_before_expansion(tmp_path: Path, tail: str) -> None:
    path = _write(tmp_path, "laughs.yaml", _alias_bomb(tail))
    start = time.perf_counter()
    with pytest.raises(InventoryError, match=r"laughs\.yaml: YAML aliases expand it to [\d,]+ values"):
        load([path])
    # without the bound the first case spent 9 s and 600 MB building one error message
    assert time.perf_counter() - start < 2


def test_yaml_alias_loop_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "loop.yaml", "vms: &a [*a]\n")
    with pytest.raises(InventoryError, match=r"loop\.yaml: a YAML alias refers to its own anchor"):
        load([path])


def test_moderate_aliases_still_load(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "anchors.yaml",
        "vnets:\n"
        "  - name: vnet1\n"
        "    address_space: &space [10.0.0.0/16]\n"
        "    subnets:\n"
        "      - {name: app, prefix: 10.0.0.0/24}\n"
        "vms:\n"
        "  - &vm {name: vm1, private_ip: 10.0.0.4, subnet: vnet1/app}\n"
        "  - {<<: *vm, name: vm2, private_ip: 10.0.0.5}\n",
    )
    inv = load([path])
    assert sorted(vm.name for vm in inv.vms.values()) == ["vm1", "vm2"]


def test_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as f:  # sparse: takes no disk space
        f.truncate(LOAD.MAX_FILE_BYTES + 1)
    start = time.perf_counter()
    with pytest.raises(InventoryError, match=r"huge\.json: 1,073,741,825 bytes is more than"):
        load([path])
    assert time.perf_counter() - start < 1
