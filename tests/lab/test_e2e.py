"""End to end on real traffic: live capture on the destination, ssh and curl from every VM,
then ``egresslens analyze`` on the records folder, auth.log and access log.

The lab is built from the lab inventory through the prediction engine, so each connection
must come out of analyze with the class and resource that the inventory predicts; capture
and log evidence of one SSH connection must merge into one row; and the allowlist (the LB
frontend only) must be missed by every other path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import LAB_INVENTORY, lab_or_skip
from .lab import Lab, topology_from_predictions, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

FRONTEND = "203.0.113.10"
SOURCES = ("lbvm", "pipvm", "defvm", "ngwvm", "novm")


def _predictions() -> list[Any]:
    from analyze.inventory import load
    from analyze.predict import predict

    return predict(load([str(LAB_INVENTORY)]))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One lab, one live capture, traffic from every VM, and the analysis of it all."""
    lab_or_skip()
    work = tmp_path_factory.mktemp("e2e")
    records = work / "records"
    topology = topology_from_predictions(_predictions())
    with Lab(topology, services=True, hostname="webapp") as lab:
        argv = [sys.executable, "-m", "analyze", "capture", "live", "-i", lab.dest_iface,
                "--ports", "22,80", "--out", str(records), "--rotate", "3s", "--observer", "webapp"]  # fmt: skip
        with lab.background(argv) as bg:
            assert wait_for(lambda: any(records.glob("packets-*.tmp")) or any(records.glob(".packets-*")), 20), (
                bg.stderr.read_text()
            )
            time.sleep(1.0)
            seen: dict[str, Any] = {}
            for vm in SOURCES:
                # Generous bounds for the VMs whose traffic arrives: a busy machine (the whole
                # suite, other work) slows sshd's key exchange; novm fails at connect time.
                none = vm == "novm"
                ssh = lab.ssh_from(vm, connect_timeout=3 if none else 10, timeout=10 if none else 30)
                web = lab.curl_from(vm, "/whoami", connect_timeout=2, timeout=8 if none else 20)
                seen[vm] = {"ssh": ssh.returncode, "http": web.status, "ips": lab.seen_ips(vm),
                            "ssh_err": ssh.stderr[-300:]}  # fmt: skip
            time.sleep(2.0)  # let rsyslog and nginx write, and the capture see the last FINs
        capture_err = bg.stderr.read_text()
        allow = work / "allow.txt"
        allow.write_text(f"# the web app admits the load balancer frontend only\n{FRONTEND}\n")
        argv = [sys.executable, "-m", "analyze", "analyze", "--inventory", str(LAB_INVENTORY),
                "--inventory", str(lab.service_tags), "--allowlist", str(allow), "--format", "json",
                str(records), str(lab.auth_log), str(lab.access_log)]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        yield {"lab": lab, "seen": seen, "report": json.loads(done.stdout), "capture_err": capture_err}


def _rows(report: dict[str, Any], ip: str) -> list[dict[str, Any]]:
    return [r for r in report["connections"] if r["src_ip"] == ip]


def test_traffic_went_where_the_lab_says(run: dict[str, Any]) -> None:
    seen = run["seen"]
    for vm in ("lbvm", "pipvm", "defvm", "ngwvm"):
        assert seen[vm]["ssh"] == 0 and seen[vm]["http"] == 200, (vm, seen[vm])
    assert seen["novm"]["ssh"] != 0 and seen["novm"]["http"] == 0
    assert "final" in run["capture_err"]


@pytest.mark.parametrize(
    ("vm", "klass", "resource"),
    [
        ("lbvm", "lb_frontend", "mylb/LoadBalancerFrontEnd"),
        ("pipvm", "instance_public_ip", None),
        ("ngwvm", "nat_gateway", "labngw"),
        ("defvm", "default_snat", None),
    ],
)
def test_each_path_is_classified_as_predicted(run: dict[str, Any], vm: str, klass: str, resource: str | None) -> None:
    (ip,) = run["seen"][vm]["ips"]
    rows = _rows(run["report"], ip)
    assert {r["service"] for r in rows} >= {"ssh", "http"}, rows
    assert {r["class"] for r in rows} == {klass}
    if resource is not None:
        assert {r["resource"] for r in rows} == {resource}
    assert all(vm in (r["candidate_vms"] or []) for r in rows)


def test_capture_and_logs_of_one_connection_merge(run: dict[str, Any]) -> None:
    (ip,) = run["seen"]["pipvm"]["ips"]
    ssh = [r for r in _rows(run["report"], ip) if r["service"] == "ssh"]
    assert len(ssh) == 1
    assert set(ssh[0]["evidence"]) == {"live", "authlog"}
    assert ssh[0]["ssh_user"] == "labuser" and ssh[0]["ssh_auth"] == "accepted"
    web = [r for r in _rows(run["report"], ip) if r["service"] == "http"]
    assert len(web) == 1 and set(web[0]["evidence"]) == {"live", "weblog"}


def test_nothing_from_the_vm_without_egress(run: dict[str, Any]) -> None:
    report = run["report"]
    assert not [r for r in report["connections"] if r["src_ip"].startswith("10.")]


def test_allowlist_misses_are_every_path_but_the_frontend(run: dict[str, Any]) -> None:
    misses = [f for f in run["report"]["findings"] if f["kind"] == "allowlist_miss"]
    missed = {ip for f in misses for ip in f["src_ips"]}
    expected = {run["seen"][vm]["ips"][0] for vm in ("pipvm", "defvm", "ngwvm")}
    assert expected <= missed
    assert FRONTEND not in missed
    snat = next(f for f in misses if run["seen"]["defvm"]["ips"][0] in f["src_ips"])
    assert "defvm" in snat["vms"] and snat["fixes"]
