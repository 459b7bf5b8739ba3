"""Findings (analyze/findings.py): every kind, and every threshold from just below to at it.

Expectations are derived by hand from tests/data/analyze/egress.yaml (see its header).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
