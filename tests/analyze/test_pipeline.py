"""analyze.pipeline: the main job on the bundled sample, filters and allowlist choice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analyze.pipeline import resolve_allowlist, run
from capture.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo"
EVIDENCE = [str(DEMO / n) for n in ("webapp-vm.pcap", "auth.log", "access.log")]
INVENTORY = [str(ROOT / "pcaps" / "inventory" / "article.yaml"), str(DEMO / "ServiceTags_China_sample.json")]


@pytest.fixture(scope="module")
def analysis():  # type: ignore[no-untyped-def]
    return run(EVIDENCE, INVENTORY, allowlist="web-app")


def test_capture_and_logs_merge_into_one_row_per_connection(analysis) -> None:  # type: ignore[no-untyped-def]
    rows = analysis.connections
    assert rows.height == 6
    evidence = {tuple(sorted(e)) for e in rows["evidence"].to_list()}
    assert evidence == {("authlog", "pcap"), ("pcap", "weblog")}
    ssh = rows.filter(rows["service"] == "ssh")
    assert ssh["ssh_user"].to_list() == ["azureuser"] * 3
    assert analysis.clock_offset == dt.timedelta(milliseconds=4)


def test_each_address_has_its_class_and_allowlist_verdict(analysis) -> None:  # type: ignore[no-untyped-def]
    by_ip = {r["src_ip"]: r for r in analysis.addresses.iter_rows(named=True)}
    assert by_ip["139.219.8.21"]["class"] == "default_snat" and by_ip["139.219.8.21"]["allowed"] is False
    assert by_ip["42.159.94.123"]["class"] == "instance_public_ip" and by_ip["42.159.94.123"]["allowed"] is False
    assert by_ip["40.125.161.55"]["class"] == "lb_frontend" and by_ip["40.125.161.55"]["allowed"] is True
    assert by_ip["139.219.8.21"]["users"] == ["azureuser"]
    assert by_ip["139.219.8.21"]["user_agents"] == ["curl/7.81.0"]


def test_findings_are_the_article_s_diagnosis(analysis) -> None:  # type: ignore[no-untyped-def]
    kinds = sorted((f.kind, tuple(f.src_ips)) for f in analysis.findings)
    assert kinds == [
        ("allowlist_miss", ("139.219.8.21",)),
        ("allowlist_miss", ("42.159.94.123",)),
        ("unexpected_egress", ("40.125.161.55",)),
    ]
    snat = next(f for f in analysis.findings if "139.219.8.21" in f.src_ips)
    assert snat.vms == ("Test2VM",) or list(snat.vms) == ["Test2VM"]
    assert "no load-balancing rule or inbound NAT rule" in snat.message
    assert any("40.125.161.55" in fix for fix in snat.fixes)


def test_filters(analysis) -> None:  # type: ignore[no-untyped-def]
    t = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    late = run(EVIDENCE, INVENTORY, allowlist="web-app", since=t)
    assert set(late.connections["src_ip"].to_list()) == {"40.125.161.55"}
    early = run(EVIDENCE, INVENTORY, allowlist="web-app", until=t)
    assert "40.125.161.55" not in early.connections["src_ip"].to_list()
    lbvm = run(EVIDENCE, INVENTORY, allowlist="web-app", vm="lbvm")
    assert set(lbvm.connections["src_ip"].to_list()) == {"42.159.94.123"}
    net = run(EVIDENCE, INVENTORY, allowlist="web-app", src="139.219.0.0/16")
    assert set(net.connections["src_ip"].to_list()) == {"139.219.8.21"}
    with pytest.raises(UsageError, match="--src 'banana'"):
        run(EVIDENCE, INVENTORY, src="banana")


def test_allowlist_resolution(analysis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inv = analysis.inventory
    assert resolve_allowlist(inv, None).name == "web-app"  # the only one
    text = tmp_path / "ok.txt"
    text.write_text("# ours\n139.219.8.21\n")
    assert resolve_allowlist(inv, str(text)).allows("139.219.8.21") is True
    with pytest.raises(UsageError, match="no allowlist of that name"):
        resolve_allowlist(inv, "nope")


def _two_snat_addresses(path: Path) -> None:
    """Two SSH openings from two default SNAT addresses, an hour apart (a redeployed VM)."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import wrpcap

    pkts = []
    for hour, src in ((9, "139.219.8.21"), (10, "139.219.9.9")):
        t = dt.datetime(2026, 11, 20, hour, tzinfo=dt.UTC).timestamp()
        for i, (a, b, flags) in enumerate(((src, "198.51.100.10", "S"), ("198.51.100.10", src, "SA"))):
            p = IP(src=a, dst=b) / TCP(sport=50000 if a == src else 22, dport=22 if a == src else 50000, flags=flags)
            p.time = t + i / 1000
            pkts.append(p)
    wrpcap(str(path), pkts)


def test_from_vm_attributes_evidence_and_finds_the_address_change(tmp_path: Path) -> None:
    pcap = tmp_path / "from-test2vm.pcap"
    _two_snat_addresses(pcap)
    plain = run([str(pcap)], INVENTORY, allowlist="web-app")
    attributed = run([str(pcap)], INVENTORY, allowlist="web-app", from_vm={str(pcap): "Test2VM"})
    changed = [f for f in attributed.findings if f.kind == "egress_ip_changed"]
    assert len(changed) == 1 and set(changed[0].src_ips) == {"139.219.8.21", "139.219.9.9"}
    assert list(changed[0].vms) == ["Test2VM"]
    # Without --from, a single VM predicted default SNAT is attributed all the same.
    assert [f.kind for f in plain.findings].count("egress_ip_changed") == 1
