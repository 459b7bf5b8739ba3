"""analyze.pipeline: the main job on the bundled sample, filters and allowlist choice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from analyze.pipeline import resolve_allowlist, run
from capture.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo"
EVIDENCE = [str(DEMO / n) for n in ("webapp-vm.pcap", "auth.log", "access.log")]
INVENTORY = [str(DEMO / "inventory.yaml"), str(DEMO / "ServiceTags_Public_lab.json")]
# The recorded sample (pcaps/demo/README.md, tests/lab/record_sample.py): lab addresses.
SNAT, LBVM_IP, FRONTEND = "203.0.113.129", "192.0.2.123", "203.0.113.55"


@pytest.fixture(scope="module")
def analysis():  # type: ignore[no-untyped-def]
    return run(EVIDENCE, INVENTORY, allowlist="web-app")


def test_capture_and_logs_merge_into_one_row_per_connection(analysis) -> None:  # type: ignore[no-untyped-def]
    rows = analysis.connections
    assert rows.height == 6
    evidence = {tuple(sorted(e)) for e in rows["evidence"].to_list()}
    assert evidence == {("authlog", "pcap"), ("pcap", "weblog")}
    ssh = rows.filter(rows["service"] == "ssh")
    assert ssh["ssh_user"].to_list() == ["labuser"] * 3
    # sshd logs "Connection from" a few ms after the SYN the capture saw.
    assert analysis.clock_offset == dt.timedelta(microseconds=26580)


def test_each_address_has_its_class_and_allowlist_verdict(analysis) -> None:  # type: ignore[no-untyped-def]
    by_ip = {r["src_ip"]: r for r in analysis.addresses.iter_rows(named=True)}
    assert by_ip[SNAT]["class"] == "default_snat" and by_ip[SNAT]["allowed"] is False
    assert by_ip[LBVM_IP]["class"] == "instance_public_ip" and by_ip[LBVM_IP]["allowed"] is False
    assert by_ip[FRONTEND]["class"] == "lb_frontend" and by_ip[FRONTEND]["allowed"] is True
    assert by_ip[SNAT]["users"] == ["labuser"]
    assert by_ip[SNAT]["user_agents"] == ["egresslens-lab/Test2VM"]


def test_findings_are_the_article_s_diagnosis(analysis) -> None:  # type: ignore[no-untyped-def]
    kinds = sorted((f.kind, tuple(f.src_ips)) for f in analysis.findings)
    assert kinds == [
        ("allowlist_miss", (LBVM_IP,)),
        ("allowlist_miss", (SNAT,)),
        ("unexpected_egress", (FRONTEND,)),
    ]
    snat = next(f for f in analysis.findings if SNAT in f.src_ips)
    assert snat.vms == ("Test2VM",) or list(snat.vms) == ["Test2VM"]
    assert "no load-balancing rule or inbound NAT rule" in snat.message
    assert any(FRONTEND in fix and "mylb" in fix for fix in snat.fixes)


def test_filters(analysis) -> None:  # type: ignore[no-untyped-def]
    t = dt.datetime(2026, 11, 26, 11, 7, 46, tzinfo=dt.UTC)  # between the two lab builds
    late = run(EVIDENCE, INVENTORY, allowlist="web-app", since=t)
    assert set(late.connections["src_ip"].to_list()) == {FRONTEND}
    early = run(EVIDENCE, INVENTORY, allowlist="web-app", until=t)
    assert FRONTEND not in early.connections["src_ip"].to_list()
    lbvm = run(EVIDENCE, INVENTORY, allowlist="web-app", vm="lbvm")
    assert set(lbvm.connections["src_ip"].to_list()) == {LBVM_IP}
    net = run(EVIDENCE, INVENTORY, allowlist="web-app", src="203.0.113.128/25")
    assert set(net.connections["src_ip"].to_list()) == {SNAT}
    with pytest.raises(UsageError, match="--src 'banana'"):
        run(EVIDENCE, INVENTORY, src="banana")


def test_allowlist_resolution(analysis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inv = analysis.inventory
    assert resolve_allowlist(inv, None).name == "web-app"  # the only one
    text = tmp_path / "ok.txt"
    text.write_text(f"# ours\n{SNAT}\n")
    assert resolve_allowlist(inv, str(text)).allows(SNAT) is True
    with pytest.raises(UsageError, match="no allowlist of that name"):
        resolve_allowlist(inv, "nope")


def _two_snat_addresses(path: Path) -> None:
    """Two SSH openings from two default SNAT addresses, an hour apart (a redeployed VM)."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import wrpcap

    pkts = []
    for hour, src in ((9, SNAT), (10, "203.0.113.200")):
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
    assert len(changed) == 1 and set(changed[0].src_ips) == {SNAT, "203.0.113.200"}
    assert list(changed[0].vms) == ["Test2VM"]
    # Without --from, a single VM predicted default SNAT is attributed all the same.
    assert [f.kind for f in plain.findings].count("egress_ip_changed") == 1


def test_analyze_records_on_a_lazy_scan_gives_the_same_report(analysis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from analyze.classify import CLASSIFIED_SCHEMA
    from analyze.pipeline import analyze_records
    from capture.schema import SCHEMA

    path = tmp_path / "records.parquet"
    analysis.connections.select(SCHEMA.names()).write_parquet(path)
    again = analyze_records(pl.scan_parquet(path), analysis.inventory, analysis.predictions,
                            allowlist=analysis.allowlist)  # fmt: skip
    assert isinstance(again.rows, pl.LazyFrame)
    assert [f.to_dict() | {"evidence": None} for f in again.findings] == [
        f.to_dict() | {"evidence": None} for f in analysis.findings
    ]
    assert again.n_connections == 6 and again.addresses.height == 3
    rows = again.connections
    assert rows.columns == [*CLASSIFIED_SCHEMA.names(), "allowed", "findings"]
    assert rows.sort("ts")["findings"].to_list() == analysis.connections.sort("ts")["findings"].to_list()


def test_src_filter_takes_ipv6_and_cidrs(tmp_path: Path) -> None:
    from analyze.pipeline import _src_filter

    lf = pl.LazyFrame({"src_ip": ["2001:db8::1", "2001:db9::1", "10.1.2.3", "10.2.0.1", None, "junk"]})
    def kept(spec: str) -> list[str | None]:
        return _src_filter(lf, spec).collect()["src_ip"].to_list()
    assert kept("2001:db8::/32") == ["2001:db8::1"]
    assert kept("10.1.0.0/16") == ["10.1.2.3"]
    assert kept("10.2.0.1") == ["10.2.0.1"]
    assert _src_filter(lf, "10.0.0.0/8").collect_schema().names() == ["src_ip"]


def test_a_records_folder_is_scanned_lazily_keeping_each_connection_s_latest_row(tmp_path: Path) -> None:
    from tests.analyze.records_factory import frame, make_conn

    folder = tmp_path / "rec"
    folder.mkdir()
    open_row = make_conn(conn_id="Clong", src_ip=SNAT, state="open", ts=0)
    frame(open_row, make_conn(conn_id=None, src_ip=LBVM_IP, ts=1)).write_parquet(folder / "records-1.parquet")
    frame(open_row | {"state": "closed"}, make_conn(conn_id=None, src_ip=LBVM_IP, ts=2)).write_parquet(
        folder / "records-2.parquet")
    whole = run([str(folder)], INVENTORY, allowlist="web-app")
    assert isinstance(whole.rows, pl.LazyFrame) and [e.kind for e in whole.evidence] == ["records", "records"]
    got = whole.connections.select("src_ip", pl.col("state").cast(pl.String)).sort("src_ip", "state").rows()
    assert got == [(LBVM_IP, "closed"), (LBVM_IP, "closed"), (SNAT, "closed")]  # one row of Clong: the latest
    one = run([str(folder / "records-1.parquet")], INVENTORY)  # a file named alone is taken as it is
    assert one.connections.select(pl.col("state").cast(pl.String)).sort("state")["state"].to_list() == ["closed", "open"]
    (folder / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(Exception, match="bad.parquet"):
        run([str(folder)], INVENTORY)
