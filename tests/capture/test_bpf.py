"""capture.bpf: --bpf on saved captures selects what tcpdump selects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from capture.bpf import Filter
from capture.errors import UsageError
from capture.read import read_captures
from capture.schema import SCHEMA

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
@pytest.mark.parametrize(
    ("name", "expr"),
    [
        ("ethernet_vlan.pcap", "tcp port 22"),
        ("ethernet_vlan.pcap", "vlan and tcp"),
        ("ethernet_vlan.pcap", "not host 192.0.2.20"),
        ("rawip_ns_le.pcap", "tcp port 22"),
        ("rawip_ns_le.pcap", "udp or ip6"),
        ("sll2.pcap", "not host 192.0.2.20"),
    ],
)
def test_bpf_selects_what_tcpdump_selects(name: str, expr: str, tmp_path: Path) -> None:
    path = str(PCAPS / name)
    filtered = tmp_path / "f.pcapng"
    subprocess.run(
        ["tcpdump", "-r", path, "-w", str(filtered), expr],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    ours = read_captures([path], bpf=expr)
    theirs = read_captures([str(filtered)])
    assert ours.stats.packets - ours.stats.filtered == theirs.stats.packets
    cols = [c for c in SCHEMA.names() if c not in ("conn_id", "origin")]
    assert_frame_equal(ours.records.select(cols), theirs.records.select(cols))


def test_bad_bpf_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--bpf 'tcp port banana'"):
        read_captures([str(PCAPS / "ethernet_vlan.pcap")], bpf="tcp port banana")




def test_filter_matches_raw_frames() -> None:
    flt = Filter("tcp dst port 22")
    ip = bytes.fromhex("450000280001000040060000cb007105c0000214")
    syn22 = ip + bytes.fromhex("9c40001600000001000000005002040000000000")
    syn80 = ip + bytes.fromhex("9c40005000000001000000005002040000000000")
    assert flt.matches(101, syn22, len(syn22))
    assert not flt.matches(101, syn80, len(syn80))
