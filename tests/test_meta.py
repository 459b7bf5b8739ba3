"""Meta-tests guarding the public surface and the layout rules of STYLE.md / DESIGN.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
import pytest

from analyze.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("capture", "analyze")


def _modules() -> list[Path]:
    return sorted(
        p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    )  # fmt: skip


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix} {name}".strip()
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, full))
    return out


@pytest.mark.parametrize(("name", "command"), _commands(cli), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_has_help_and_is_in_the_readme(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"egresslens {name} has no help text"
    assert f"egresslens {name}" in (ROOT / "README.md").read_text(), f"README lacks egresslens {name}"


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_cli_modules_import_click(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        for alias in (node.names if isinstance(node, (ast.Import, ast.ImportFrom)) else [])
        if isinstance(node, ast.Import)
    } | {
        (node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    }
    if module.name != "cli.py":
        assert "click" not in imported, f"{module} imports click"


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_test_tree_mirrors_the_source_tree(module: Path) -> None:
    rel = module.relative_to(ROOT)
    test = ROOT / "tests" / rel.parent / f"test_{rel.name}"
    assert test.exists(), f"{rel} has no test module {test.relative_to(ROOT)}"


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_library_modules_do_not_import_the_cli(module: Path) -> None:
    if module.name == "cli.py":
        return
    text = module.read_text()
    assert "analyze.cli" not in text and "capture.cli" not in text, module


def test_fast_path_does_not_import_scapy_or_pyshark() -> None:
    code = (
        "import sys\n"
        "from capture.read import read_captures\n"
        f"read_captures([{str(ROOT / 'pcaps' / 'ethernet_vlan.pcap')!r}])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'pyshark')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_readme_quick_start_is_the_two_make_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
