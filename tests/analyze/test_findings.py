"""Findings (analyze/findings.py): every kind, and every threshold from just below to at it.

Expectations are derived by hand from tests/data/analyze/egress.yaml (see its header).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from analyze.classify import classify
from analyze.findings import GUESS_FAILURES, Finding, find
from analyze.inventory import Allowlist, Inventory, load
from analyze.predict import Prediction, predict
from tests.analyze.records_factory import frame, make_conn

DATA = Path(__file__).resolve().parent.parent / "data" / "analyze"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load([DATA / "egress.yaml"])


@pytest.fixture(scope="module")
def preds(inv: Inventory) -> list[Prediction]:
    return predict(inv)


def run(
    inv: Inventory, preds: list[Prediction], *rows: dict[str, Any], kind: str | None = None,
    allowlist: Allowlist | None = None, attributions: Mapping[str, str] | None = None,
) -> list[Finding]:  # fmt: skip
    classified = classify(frame(*rows), inv, preds).collect()
    got = find(classified, inv, preds, allowlist=allowlist, attributions=attributions)
    return [f for f in got if kind is None or f.kind == kind]


# --- allowlist_miss ----------------------------------------------------------------------------


def test_allowlist_miss_gives_the_predicted_reason_and_fixes(inv: Inventory, preds: list[Prediction]) -> None:
    allow = inv.allowlist("web-app")
    got = run(
        inv, preds,
        make_conn(src_ip="139.217.1.1", ts=0, origin=["t.pcap#1"]),  # Test2VM, default SNAT: the article
        make_conn(src_ip="139.217.1.1", ts=60, origin=["t.pcap#9"]),
        make_conn(src_ip="20.1.2.4"),  # allowed
        make_conn(src_ip="20.0.1.1"),  # vm_fw's firewall: not in the list
        make_conn(src_ip="8.8.8.8"),  # a stranger: no allowlist miss, an allowlist is about our egress
        kind="allowlist_miss", allowlist=allow,
    )  # fmt: skip
    assert [(f.src_ips, f.severity, f.vms) for f in got] == [
        (("139.217.1.1",), "high", ("Test2VM",)),
        (("20.0.1.1",), "high", ("vm_fw",)),
    ]
    article = got[0]
    assert article.count == 2 and article.evidence == ("t.pcap#1", "t.pcap#9")
    assert (article.last_ts - article.first_ts) == dt.timedelta(seconds=60)  # type: ignore[operator]
    assert "default_snat" in article.message and "AzureCloud.chinanorth2" in article.message
    assert "backend pool mybackendpool of Basic load balancer mylb" in article.message
    assert any("outbound rule for backend pool mybackendpool" in fix for fix in article.fixes)
    assert article.fixes[-1].startswith("do not add 139.217.1.1 to web-app")
    assert got[1].fixes[-1] == "or add 20.0.1.1 to allowlist web-app"


def test_no_allowlist_no_allowlist_miss(inv: Inventory, preds: list[Prediction]) -> None:
    assert run(inv, preds, make_conn(src_ip="139.217.1.1"), kind="allowlist_miss") == []


def test_allowlist_tags_are_matched_with_the_address_s_service_tags(inv: Inventory, preds: list[Prediction]) -> None:
    from analyze.inventory import AllowRule

    allow = Allowlist(name="azure", rules=(AllowRule(tag="AzureCloud.chinanorth2"),))
    got = run(inv, preds, make_conn(src_ip="139.217.1.1"), make_conn(src_ip="139.217.200.1"),
              kind="allowlist_miss", allowlist=allow)  # fmt: skip
    assert [f.src_ips for f in got] == [("139.217.200.1",)]


# --- unexpected_egress -------------------------------------------------------------------------


def test_inventory_addresses_no_vm_is_predicted_to_use(inv: Inventory, preds: list[Prediction]) -> None:
    got = run(
        inv, preds, make_conn(src_ip="40.125.161.55"), make_conn(src_ip="20.0.0.99"),
        make_conn(src_ip="20.1.2.4"), make_conn(src_ip="20.0.0.40"),  # predicted / a proxy: fine
        kind="unexpected_egress",
    )  # fmt: skip
    assert sorted((f.src_ips, f.severity, f.vms) for f in got) == [
        (("20.0.0.99",), "medium", ()),
        (("40.125.161.55",), "medium", ("Test2VM",)),
    ]
    lb = next(f for f in got if f.src_ips == ("40.125.161.55",))
    assert "Test2VM is predicted default_snat" in lb.message


def test_evidence_attributed_to_a_vm_from_elsewhere_than_predicted(inv: Inventory, preds: list[Prediction]) -> None:
    got = run(
        inv, preds,
        make_conn(src_ip="40.125.161.55", origin=["/tmp/x/test2vm.pcap#3"]),  # NAT rule path, say
        make_conn(src_ip="139.217.1.1", origin=["/tmp/x/test2vm.pcap#4"]),  # as predicted
        make_conn(src_ip="20.1.2.5", origin=["vm_out.log:7"]),  # not vm_out's frontend 20.1.2.4
        make_conn(src_ip="20.1.2.4", origin=["vm_out.log:8"]),
        kind="unexpected_egress", attributions={"test2vm.pcap": "Test2VM", "vm_out.log": "vm_out"},
    )  # fmt: skip
    attributed = sorted((f.vms, f.src_ips, f.severity) for f in got if f.severity == "high")
    assert attributed == [(("Test2VM",), ("40.125.161.55",), "high"), (("vm_out",), ("20.1.2.5",), "high")]


def test_mapped_address_of_the_predicted_frontend_is_expected(inv: Inventory, preds: list[Prediction]) -> None:
    got = run(inv, preds, make_conn(src_ip="::ffff:20.1.2.4", origin=["vm_out.log:1"]),
              kind="unexpected_egress", attributions={"vm_out.log": "vm_out"})  # fmt: skip
    assert got == []


@pytest.mark.parametrize(("destination", "fires"), [(None, False), ("10.0.0.4", False), ("52.1.1.1", True)])
def test_private_source_against_predictions_for_the_destination(
    inv: Inventory, destination: str | None, fires: bool
) -> None:
    # to 10.0.0.4 (same VNet) lbvm is predicted private (row C); to 52.1.1.1 its public IP
    preds = predict(inv, destination)
    got = run(inv, preds, make_conn(src_ip="10.0.0.6"), kind="unexpected_egress")
    assert [(f.vms, f.src_ips) for f in got] == ([(("lbvm",), ("10.0.0.6",))] if fires else [])


# --- egress_ip_changed -------------------------------------------------------------------------


def test_the_only_default_snat_vm_s_address_changed(inv: Inventory, preds: list[Prediction]) -> None:
    got = run(
        inv, preds,
        make_conn(src_ip="139.217.1.1", ts=0), make_conn(src_ip="139.217.1.1", ts=100),
        make_conn(src_ip="139.217.7.7", ts=3600),
        kind="egress_ip_changed",
    )  # fmt: skip
    assert [(f.vms, f.src_ips, f.count) for f in got] == [(("Test2VM",), ("139.217.1.1", "139.217.7.7"), 3)]
    assert "139.217.1.1 (2026-03-07 18:53:20 to 2026-03-07 18:55:00, 2 connection(s)) -> 139.217.7.7" in got[0].message


def test_one_address_is_no_change(inv: Inventory, preds: list[Prediction]) -> None:
    assert run(inv, preds, make_conn(src_ip="139.217.1.1"), make_conn(src_ip="139.217.1.1", ts=99),
               kind="egress_ip_changed") == []  # fmt: skip


def test_with_two_default_snat_vms_only_attributed_evidence_counts(inv: Inventory, preds: list[Prediction]) -> None:
    two = [*preds, dataclasses.replace(next(p for p in preds if p.vm == "Test2VM"), vm="Test3VM")]
    rows = (make_conn(src_ip="139.217.1.1", origin=["a.pcap#1"]), make_conn(src_ip="139.217.7.7", ts=9, origin=["b.pcap#1"]))
    assert run(inv, two, *rows, kind="egress_ip_changed") == []
    got = run(inv, two, *rows, kind="egress_ip_changed", attributions={"a.pcap": "Test3VM", "b.pcap": "Test3VM"})
    assert [(f.vms, f.src_ips) for f in got] == [(("Test3VM",), ("139.217.1.1", "139.217.7.7"))]


# --- snat_pressure ------------------------------------------------------------------------------


@pytest.mark.parametrize(("concurrent", "fires"), [(12, False), (13, True)], ids=["below", "at"])
def test_concurrency_at_80_percent_of_the_preallocated_ports(
    inv: Inventory, preds: list[Prediction], concurrent: int, fires: bool
) -> None:
    # vm_out has 16 ports on stdlb's outbound rule: 80 % is 12.8 concurrent connections.
    rows = [make_conn(src_ip="20.1.2.4", src_port=30000 + i, ts=i, dst_port=443, service="https",
                      duration=dt.timedelta(seconds=60)) for i in range(concurrent)]  # fmt: skip
    rows.append(make_conn(src_ip="20.1.2.4", src_port=40000, ts=100, dst_port=443))  # after the others
    got = run(inv, preds, *rows, kind="snat_pressure")
    assert [(f.severity, f.destination, f.vms) for f in got] == ([("high", "10.0.0.4:443", ("vm_out",))] if fires else [])
    if fires:
        assert got[0].message.startswith("13 concurrent connections from 20.1.2.4") and "81% of the 16" in got[0].message


@pytest.mark.parametrize(
    ("src", "state", "gap", "fires"),
    [
        ("20.1.2.4", "closed", 239.9, True), ("20.1.2.4", "closed", 240, False),
        ("20.1.2.4", "reset", 14.9, True), ("20.1.2.4", "reset", 15, False),
        ("139.217.1.1", "closed", 239, True), ("20.0.0.10", "closed", 64, True),
        ("20.0.0.10", "closed", 65, False), ("20.0.0.10", "rejected", 15, True),
        ("20.0.0.10", "rejected", 16, False),
        ("8.8.8.8", "closed", 1, False),  # not SNAT: the client's own business
    ],
)  # fmt: skip
def test_source_port_reuse_within_the_hold_time(
    inv: Inventory, preds: list[Prediction], src: str, state: str, gap: float, fires: bool
) -> None:
    first = make_conn(src_ip=src, src_port=5555, ts=0, duration=dt.timedelta(seconds=10), state=state)
    again = make_conn(src_ip=src, src_port=5555, ts=10 + gap)
    got = run(inv, preds, first, again, kind="snat_pressure")
    assert [(f.src_ips, f.severity, f.count) for f in got] == ([((src,), "medium", 1)] if fires else [])


def test_reuse_to_another_destination_is_not_reuse(inv: Inventory, preds: list[Prediction]) -> None:
    first = make_conn(src_ip="20.1.2.4", src_port=5555, ts=0, duration=dt.timedelta(seconds=10))
    other = make_conn(src_ip="20.1.2.4", src_port=5555, ts=11, dst_port=443)
    assert run(inv, preds, first, other, kind="snat_pressure") == []


# --- auth_failures ------------------------------------------------------------------------------


def _failures(n: int, spacing: float, src: str = "8.8.8.8") -> list[dict[str, Any]]:
    return [make_conn(src_ip=src, ts=i * spacing, evidence=["authlog"], ssh_user=f"u{i % 3}", ssh_auth="failed")
            for i in range(n)]  # fmt: skip


@pytest.mark.parametrize(
    ("n", "spacing", "guessing"),
    [(GUESS_FAILURES - 1, 60, False), (GUESS_FAILURES, 60, True), (GUESS_FAILURES, 62.1, False)],
    ids=["29_in_28min", "30_in_29min", "30_in_30min_plus"],
)
def test_password_guessing_at_30_failures_in_30_minutes(
    inv: Inventory, preds: list[Prediction], n: int, spacing: float, guessing: bool
) -> None:
    got = run(inv, preds, *_failures(n, spacing), make_conn(src_ip="8.8.8.8", ssh_auth="accepted"),
              kind="auth_failures")  # fmt: skip
    assert [(f.src_ips, f.count, f.severity) for f in got] == [(("8.8.8.8",), n, "high" if guessing else "info")]
    assert ("password guessing" in got[0].message) is guessing
    assert "as u0, u1, u2" in got[0].message


def test_auth_failures_from_an_own_vm_name_it(inv: Inventory, preds: list[Prediction]) -> None:
    got = run(inv, preds, *_failures(2, 1, src="20.1.2.4"), kind="auth_failures")
    assert [(f.vms, f.severity) for f in got] == [(("vm_out",), "low")]
    assert "egress address of vm_out" in got[0].message


# --- ordering ----------------------------------------------------------------------------------


def test_findings_come_worst_first(inv: Inventory, preds: list[Prediction]) -> None:
    got = run(inv, preds, *_failures(1, 1), make_conn(src_ip="20.0.0.99"), make_conn(src_ip="139.217.1.1"),
              allowlist=inv.allowlist("web-app"))  # fmt: skip
    assert [(f.kind, f.severity) for f in got] == [
        # 8.8.8.8 is a stranger's: an auth failure, no allowlist miss; the spare public IP
        # is Azure's (a Service Tag holds it), so it is one.
        ("allowlist_miss", "high"), ("unexpected_egress", "medium"),
        ("allowlist_miss", "low"), ("auth_failures", "info"),
    ]
    assert got[0].at_least("high") and not got[-1].at_least("low")


# --- incidents: roll-ups, counts, order, membership (issue 10) -------------------------------------


def _incidents(inv: Inventory, preds: list[Prediction], *rows: dict[str, Any], top: int = 20,
               allowlist: Allowlist | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
    from analyze.findings import incidents

    classified = classify(frame(*rows), inv, preds)
    return incidents(classified, inv, preds, allowlist=allowlist, top=top), classified


def test_many_addresses_of_one_cause_are_one_incident_listing_the_top_n(inv: Inventory, preds: list[Prediction]) -> None:
    # Test2VM's default SNAT addresses (AzureCloud.chinanorth2): 7 addresses, 1..7 connections each.
    rows = [make_conn(src_ip=f"139.217.1.{i}", ts=10 * i + k, dst_port=22 if k % 2 else 443,
                      service="ssh" if k % 2 else "https")
            for i in range(1, 8) for k in range(i)]  # fmt: skip
    found, _ = _incidents(inv, preds, *rows, top=3, allowlist=inv.allowlist("web-app"))
    misses = [f for f in found.findings if f.kind == "allowlist_miss"]
    assert len(misses) == 1
    f = misses[0]
    assert f.address_count == 7 and f.count == 28 and f.vms == ("Test2VM",)
    assert f.src_ips == ("139.217.1.7", "139.217.1.6", "139.217.1.5")  # top 3 by connections
    assert (f.egress_class, f.allowlist, f.services) == ("default_snat", "web-app", ("https", "ssh"))
    assert f.message.startswith("7 addresses (default_snat, AzureCloud.chinanorth2): 139.217.1.7, 139.217.1.6, "
                                "139.217.1.5 and 4 more are not accepted by allowlist web-app: 28 connection(s) (https, ssh)")
    assert f.fixes[-1].startswith("do not add these addresses to web-app")
    # the 4 addresses not listed are counted, and in the addresses table
    assert set(found.addresses.get_column("src_ip")) == {f"139.217.1.{i}" for i in range(1, 8)}


def test_ties_in_the_top_n_go_by_address(inv: Inventory, preds: list[Prediction]) -> None:
    rows = [make_conn(src_ip=ip, ssh_auth="failed") for ip in ("8.8.8.9", "8.8.8.8", "9.9.9.9", "1.1.1.1")]
    rows.append(make_conn(src_ip="9.9.9.9", ssh_auth="failed", ts=5))
    found, _ = _incidents(inv, preds, *rows, top=3)
    (auth,) = found.findings
    assert auth.src_ips == ("9.9.9.9", "1.1.1.1", "8.8.8.8") and auth.address_count == 4 and auth.count == 5


def test_every_failing_address_is_in_exactly_one_auth_incident(inv: Inventory, preds: list[Prediction]) -> None:
    guesser = _failures(GUESS_FAILURES, 1, src="5.5.5.5")  # guessing: sets the severity
    once = [make_conn(src_ip=f"6.6.{i}.1", ssh_auth=outcome, ts=i)
            for i, outcome in enumerate(["failed", "invalid_user", "max_attempts"] * 20)]  # fmt: skip
    ours = _failures(2, 1, src="20.1.2.4")  # vm_out's frontend: its own incident
    fine = [make_conn(src_ip="7.7.7.7", ssh_auth="accepted")]
    found, classified = _incidents(inv, preds, *guesser, *once, *ours, *fine)
    auth = [f for f in found.findings if f.kind == "auth_failures"]
    assert [(f.vms, f.address_count, f.count, f.severity) for f in auth] == [
        ((), 61, GUESS_FAILURES + 60, "high"), (("vm_out",), 1, 2, "low"),
    ]
    assert "5.5.5.5" in auth[0].src_ips and "failed, invalid_user, max_attempts" in auth[0].message
    # the rows: every failed one carries exactly one auth incident id; the accepted one none
    tagged = found.tag(classified).collect()
    ids = {f.id: f for f in auth}
    per_row = tagged.select("src_ip", "ssh_auth", pl.col("findings").list.eval(
        pl.element().filter(pl.element().is_in(list(ids)))).alias("auth"))  # fmt: skip
    assert per_row.filter(pl.col("ssh_auth") == "accepted")["auth"].to_list() == [[]]
    failed = per_row.filter(pl.col("ssh_auth") != "accepted")
    assert failed["auth"].list.len().to_list() == [1] * failed.height
    counts = failed.explode("auth").group_by("auth").len()
    assert dict(counts.iter_rows()) == {f.id: f.count for f in auth}
    by_address = failed.explode("auth").group_by("src_ip").agg(pl.col("auth").n_unique())
    assert by_address["auth"].to_list() == [1] * by_address.height


def test_guessing_threshold_just_below_and_at_sets_the_incident_severity(inv: Inventory, preds: list[Prediction]) -> None:
    below = _failures(GUESS_FAILURES - 1, 60, src="5.5.5.5") + _failures(3, 60, src="5.5.5.6")
    found, _ = _incidents(inv, preds, *below)
    assert [(f.severity, f.address_count) for f in found.findings] == [("info", 2)]
    at = _failures(GUESS_FAILURES, 60, src="5.5.5.5") + _failures(3, 60, src="5.5.5.6")
    found, _ = _incidents(inv, preds, *at)
    assert [(f.severity, f.address_count) for f in found.findings] == [("high", 2)]


def test_strangers_and_local_sources_are_no_allowlist_miss(inv: Inventory, preds: list[Prediction]) -> None:
    rows = [make_conn(src_ip=ip) for ip in ("8.8.8.8", "2001:db8::5", "127.0.0.1", "::1", "fe80::1",
                                             "169.254.169.254", "10.0.0.4")]  # fmt: skip
    # 10.0.0.4 is the observer's own address (the dst_ip of its connections): local
    found, classified = _incidents(inv, preds, *rows, allowlist=inv.allowlist("web-app"))
    assert [f.kind for f in found.findings] == []
    classes = dict(classified.select("src_ip", pl.col("class").cast(pl.String)).collect().iter_rows())
    assert classes == {"8.8.8.8": "external", "2001:db8::5": "external", "127.0.0.1": "local", "::1": "local",
                       "fe80::1": "local", "169.254.169.254": "local", "10.0.0.4": "local"}  # fmt: skip


def test_own_address_is_local_only_for_its_own_observer(inv: Inventory, preds: list[Prediction]) -> None:
    rows = [
        make_conn(src_ip="10.0.0.7", dst_ip="10.0.0.4", observer="web1"),  # web2 -> web1
        make_conn(src_ip="10.0.0.5", dst_ip="10.0.0.7", observer="web2"),
        make_conn(src_ip="10.0.0.7", dst_ip="10.0.0.7", observer="web2"),  # web2 to itself
    ]
    got = classify(frame(*rows), inv, preds).collect()
    assert sorted(got.select("observer", "src_ip", pl.col("class").cast(pl.String)).rows()) == [
        ("web1", "10.0.0.7", "private"), ("web2", "10.0.0.5", "private"), ("web2", "10.0.0.7", "local"),
    ]


def test_incidents_order_by_severity_then_addresses_then_connections(inv: Inventory, preds: list[Prediction]) -> None:
    rows = [
        *(make_conn(src_ip=f"139.217.1.{i}") for i in range(3)),  # allowlist_miss high, 3 addresses
        *(make_conn(src_ip="20.0.0.10", ts=i) for i in range(9)),  # vm_nat: high, 1 address, 9 conns
        make_conn(src_ip="20.0.1.1"),  # vm_fw: high, 1 address, 1 connection
        make_conn(src_ip="20.0.0.99"),  # unexpected_egress medium (+ allowlist low)
    ]
    found, _ = _incidents(inv, preds, *rows, allowlist=inv.allowlist("web-app"))
    got = [(f.id, f.kind, f.severity, f.address_count, f.count) for f in found.findings]
    assert got == [
        ("F1", "allowlist_miss", "high", 3, 3), ("F2", "allowlist_miss", "high", 1, 9),
        ("F3", "allowlist_miss", "high", 1, 1), ("F4", "egress_ip_changed", "medium", 3, 3),
        ("F5", "unexpected_egress", "medium", 1, 1), ("F6", "allowlist_miss", "low", 1, 1),
    ]
    assert found.findings[0].to_dict()["class"] == "default_snat"
