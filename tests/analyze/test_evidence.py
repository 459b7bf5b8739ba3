"""analyze.evidence: captures, records folders and logs in one table, each input listed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from analyze.evidence import expand, load_evidence
from capture.errors import InputError
from capture.read import read_capture

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo"


def test_mixed_inputs_are_one_table_with_an_evidence_list(tmp_path: Path) -> None:
    records, _ = read_capture(str(ROOT / "pcaps" / "ethernet_vlan.pcap"))
    folder = tmp_path / "rec"
    folder.mkdir()
    records.write_parquet(folder / "records-1.parquet")
    ev = load_evidence([str(DEMO / "webapp-vm.pcap"), str(DEMO / "auth.log"), str(DEMO / "access.log"), str(folder)])
    kinds = {Path(f.path).name: (f.kind, f.log_type, f.records) for f in ev.files}
    assert kinds == {
        "webapp-vm.pcap": ("pcap", None, 6),
        "auth.log": ("log", "authlog", 3),
        "access.log": ("log", "nginx", 3),
        "records-1.parquet": ("records", None, 3),
    }
    assert ev.records.height == 15
    assert ev.records["ts"].is_sorted()
    pcap = next(f for f in ev.files if f.kind == "pcap")
    assert pcap.sha256 == hashlib.sha256((DEMO / "webapp-vm.pcap").read_bytes()).hexdigest()
    assert pcap.size == os.path.getsize(DEMO / "webapp-vm.pcap")
    assert pcap.first_ts is not None and pcap.first_ts.isoformat().startswith("2026-11-26T11:07:40")


def test_globs_and_missing_paths(tmp_path: Path) -> None:
    assert [p.name for p in expand([str(DEMO / "*.log")])] == ["access.log", "auth.log"]
    with pytest.raises(InputError, match="no file matches"):
        expand([str(tmp_path / "*.pcap")])
    with pytest.raises(InputError, match="no such file or folder"):
        expand([str(tmp_path / "nope.pcap")])


def test_inputs_are_not_modified() -> None:
    files = [DEMO / "webapp-vm.pcap", DEMO / "auth.log", DEMO / "access.log"]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    load_evidence([str(p) for p in files])
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    assert before == after
