"""Every example of README.md runs, as it is, against copies of the bundled sample.

A ```sh block runs line by line (``\\`` continues a line) through ``bash`` in a sandbox
folder that holds the files the examples name, copied from ``pcaps/`` and ``tests/data/``;
``/var/log/`` is read as the sandbox's ``var/log/``.  A block preceded by
``<!-- example: skip (why) -->`` is skipped with that reason; an example ending in
``# exit N`` must exit with status N, every other one with 0.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "pcaps" / "demo"
DATA = ROOT / "tests" / "data"

_BLOCK = re.compile(r"(?:<!-- example: skip \((?P<why>[^)]*)\) -->\s*\n)?```sh\n(?P<body>.*?)```", re.S)
_STATUS = re.compile(r"#\s*exit (\d+)\b")


def examples() -> list[object]:
    """(line number, command, expected status), skipped blocks marked with their reason."""
    text = (ROOT / "README.md").read_text()
    out: list[object] = []
    for block in _BLOCK.finditer(text):
        first = text.count("\n", 0, block.start("body")) + 1
        lines = block["body"].split("\n")
        i = 0
        while i < len(lines):
            start, command = first + i, lines[i]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            i += 1
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            status = _STATUS.search(command)
            marks = [pytest.mark.skip(reason=block["why"])] if block["why"] else []
            out.append(pytest.param(command, int(status[1]) if status else 0, id=f"README:{start}", marks=marks))
    return out


def _write_script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the README names, as copies of the bundled sample."""
    from capture.output import write_records_folder
    from capture.read import read_capture

    box = tmp_path_factory.mktemp("readme")
    copies = {
        "trace.pcapng.gz": ROOT / "pcaps" / "scapy_writer.pcapng.gz",
        "trace.pcap": ROOT / "pcaps" / "ethernet_vlan.pcap",
        "big.pcap": ROOT / "pcaps" / "ethernet_vlan.pcap",
        "capture.pcapng": DEMO / "webapp-vm.pcap",
        "from-test2vm.pcap": DEMO / "webapp-vm.pcap",
        "inv.yaml": DEMO / "inventory.yaml",
        "inv/inventory.yaml": DEMO / "inventory.yaml",
        "ServiceTags_Public.json": DEMO / "ServiceTags_Public_lab.json",
        "ServiceTags_Public_20260105.json": DATA / "inventory" / "ServiceTags_Public_20260105.json",
        "webapp-restrictions.json": DATA / "inventory" / "allowlists" / "webapp_access_restrictions.json",
        "auth.log": DEMO / "auth.log",
        "var/log/auth.log": DEMO / "auth.log",
        "var/log/nginx/access.log": DEMO / "access.log",
        "caddy.json": DATA / "logs" / "caddy.json",
        "u_ex260101.log": DATA / "logs" / "w3c_appservice.log",
        "conn.log": DATA / "logs" / "zeek_conn.log",
        "PT1H.json": DATA / "logs" / "nsg_flow_v2.json",
        "auth_mixed_garbage.log": DATA / "logs" / "auth_mixed_garbage.log",
        "evidence/webapp-vm.pcap": DEMO / "webapp-vm.pcap",
        "evidence/auth.log": DEMO / "auth.log",
        "evidence/access.log": DEMO / "access.log",
        "evidence/README.md": DEMO / "README.md",
    }
    for name, source in copies.items():
        (box / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, box / name)
    (box / "var/log/auth.log.1.gz").write_bytes(gzip.compress((DATA / "logs" / "auth_ok.log").read_bytes()))
    # nginx's combined format with the client port, as the --log-format example describes.
    (box / "access.log").write_text(
        '203.0.113.129:40258 - - [26/Nov/2026:11:07:41 +0000] "GET /api/orders HTTP/1.1" 200 23 "-" "curl/7.88.1"\n'
    )
    (box / "pcaps").symlink_to(ROOT / "pcaps")
    records, _ = read_capture(str(ROOT / "pcaps" / "ethernet_vlan.pcap"))
    write_records_folder(records, box / "records")
    bin_dir = box / "bin"
    bin_dir.mkdir()
    _write_script(bin_dir / "egresslens", f'exec {sys.executable} -m analyze "$@"\n')
    # journalctl prints the bundled journal export, whatever this machine's journal holds.
    _write_script(bin_dir / "journalctl", f'exec cat {DATA / "logs" / "journal.json"}\n')
    return box


@pytest.mark.parametrize(("command", "status"), examples())
def test_readme_example_runs(sandbox: Path, command: str, status: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{sandbox / 'bin'}:{os.environ['PATH']}"}
    command = command.replace("/var/log/", "var/log/")
    done = subprocess.run(["bash", "-c", command], cwd=sandbox, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == status, f"{command}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr, done.stderr


def test_the_readme_has_examples_of_every_kind() -> None:
    found = examples()
    skipped = [p for p in found if p.marks]  # type: ignore[attr-defined]
    assert len(found) > 20 and 0 < len(skipped) < len(found) // 2
    assert all(m.kwargs["reason"] for p in skipped for m in p.marks)  # type: ignore[attr-defined]
