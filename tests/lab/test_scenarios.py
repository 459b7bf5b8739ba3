"""The issue's scenarios on real traffic, one lab: every egress path of docs/azure-egress.md
§1.1 that the article and the issue name, classified and diagnosed from live evidence.

One VM per scenario (``scenarios_inventory.yaml``), built through the prediction engine:

========== ============================================ =========================================
VM         scenario                                     expected
========== ============================================ =========================================
natvm      article test 1: Basic LB, inbound NAT rule   lb_frontend via nat_rule, ``empirical``
probevm    article test 2: Basic LB rule, failing probe lb_frontend via lb_rule
poolvm     the misconfiguration: Basic LB pool only     default_snat, ``allowlist_miss``
pipvm      instance public IP                           instance_public_ip, ``allowlist_miss``
outvm      Standard LB outbound rule, 8 ports per VM    lb_frontend via outbound_rule; the burst
                                                        drives ``snat_pressure``
novm       Standard LB with inbound NAT rules only      predict says ``none``; nothing arrives
ngwpipvm   NAT gateway on the subnet + instance PIP     nat_gateway (wins), ``allowlist_miss``
========== ============================================ =========================================

Three observers run at once on the destination's interface while the VMs connect: ``capture
live --backend scapy``, ``capture live --backend tshark`` and ``watch -i ... --duration``
(stopped with Ctrl-C once the traffic is over).
``analyze`` then runs on each records folder (scapy's with the traditional auth.log, tshark's
with the RFC 3339 one) and both must give the same diagnosis; watch's printed lines must say
the same thing as it happens.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .conftest import HERE, lab_or_skip
from .lab import Lab, topology_from_predictions, wait_for, which

pytestmark = [pytest.mark.root, pytest.mark.slow]

INVENTORY = HERE / "scenarios_inventory.yaml"
ARRIVING = ("natvm", "probevm", "poolvm", "pipvm", "outvm", "ngwpipvm")
BACKENDS = ("scapy", "tshark")
BURST_HELD = 7
"""Connections outvm holds open at once: 7 of its 8 preallocated ports is 87 % (>= 80 %)."""
BURST_SEQUENTIAL = 16
"""Short connections after them: twice the block, so ports are reused within the 240 s hold."""
WATCH_S = 120
"""watch's --duration: the bound; the test stops it with SIGINT (Ctrl-C) once traffic is over."""

EXPECTED = {
    "natvm": ("lb_frontend", "nat_rule", "natlb/fe"),
    "probevm": ("lb_frontend", "lb_rule", "probelb/fe"),
    "poolvm": ("default_snat", None, None),
    "pipvm": ("instance_public_ip", None, "pipvm-pip"),
    "outvm": ("lb_frontend", "outbound_rule", "outlb/fe"),
    "ngwpipvm": ("nat_gateway", None, "scngw"),
}
"""Per VM: class, via and resource, predicted and observed alike."""
OBSERVED_RESOURCE = {vm: r for vm, (_, _, r) in EXPECTED.items()}
"""What analyze names: the same resources as predict (an instance public IP by its name)."""
PREDICTED_CONFIDENCE = {vm: "empirical" if vm == "natvm" else "documented" for vm in EXPECTED}
"""Article test 1 rests on the 2018 China test alone (docs/azure-egress.md row 11)."""


def _observed_confidence(klass: str) -> str:
    # An address the inventory holds is strong evidence; Service Tags alone are weak.
    return "weak" if klass == "default_snat" else "strong"


_BURST = r"""
import socket, sys, time
dest, held, sequential = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
request = b"GET /burst HTTP/1.1\r\nHost: webapp\r\nUser-Agent: egresslens-lab/burst\r\n\r\n"
socks = []
for _ in range(held):  # held open together: concurrent use of the SNAT port block
    s = socket.create_connection((dest, 80), timeout=3)
    s.sendall(request)
    s.recv(4096)
    socks.append(s)
time.sleep(1.0)
for s in socks:
    s.close()
time.sleep(0.3)
ok = retried = 0
for _ in range(sequential):  # one after another: the block's ports come round again
    for attempt in range(3):
        # A reused port can meet the previous connection's TIME_WAIT (at the edge's NAT or
        # the destination): the SYN is retransmitted or answered with a RST. Retry, bounded.
        try:
            s = socket.create_connection((dest, 80), timeout=8)
            s.sendall(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            while s.recv(4096):
                pass
            s.close()
            ok += 1
            break
        except OSError:
            retried += 1
print(held, ok, retried)
"""


def _predict_json() -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "analyze", "predict", "--inventory", str(INVENTORY), "--format", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


def _traffic(lab: Lab, vm: str) -> dict[str, Any]:
    none = lab.plan_of(vm).vm.egress == "none"
    # Generous bounds where traffic arrives (a busy machine slows sshd); novm fails at connect.
    ssh = lab.ssh_from(vm, connect_timeout=2 if none else 10, timeout=10 if none else 30)
    web = lab.curl_from(vm, f"/whoami?vm={vm}", connect_timeout=2, timeout=8 if none else 20)
    out: dict[str, Any] = {"ssh": ssh.returncode, "http": web.status, "ips": lab.seen_ips(vm),
                           "ssh_err": ssh.stderr[-300:]}  # fmt: skip
    if vm == "outvm":
        done = lab.run_in(lab.ns_of(vm), [sys.executable, "-c", _BURST, lab.topology.dest_ip,
                                          str(BURST_HELD), str(BURST_SEQUENTIAL)], timeout=90)  # fmt: skip
        out["burst"] = done.stdout.split()
        out["burst_err"] = done.stderr
    return out


def _analyze(records: Path, logs: list[Path], lab: Lab) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "analyze", "analyze", "--inventory", str(INVENTORY),
            "--inventory", str(lab.service_tags), "--allowlist", "web-app", "--format", "json",
            str(records), *map(str, logs)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One lab, three observers on the destination, traffic from every VM, two analyses."""
    lab_or_skip()
    if which("dumpcap") is None:
        pytest.skip("the tshark backend needs dumpcap (Debian: tshark)")
    work = tmp_path_factory.mktemp("scenarios")
    predictions = _predict_json()
    with Lab(topology_from_predictions(predictions), services=True, hostname="webapp") as lab:
        # The article's test 2: the probe's port answers nothing in the VM (a failing probe).
        probe = lab.run_in(lab.edge_ns, [sys.executable, "-c",
                                        "import socket; socket.create_connection(('10.1.0.5', 8080), 2)"])  # fmt: skip
        records = {b: work / f"records-{b}" for b in BACKENDS}
        capture = {
            b: [sys.executable, "-m", "analyze", "capture", "live", "-i", lab.dest_iface, "--ports", "22,80",
                "--out", str(records[b]), "--rotate", "5s", "--observer", "webapp", "--backend", b]
            for b in BACKENDS
        }  # fmt: skip
        watch = [sys.executable, "-m", "analyze", "watch", "-i", lab.dest_iface, "--ports", "22,80",
                 "--inventory", str(INVENTORY), "--inventory", str(lab.service_tags), "--allowlist", "web-app",
                 "--observer", "webapp", "--duration", f"{WATCH_S}s"]  # fmt: skip
        with (
            lab.background(capture["scapy"]) as scapy,
            lab.background(capture["tshark"]) as tshark,
            lab.background(watch, stop_timeout=30) as watcher,
        ):
            for b, bg in (("scapy", scapy), ("tshark", tshark)):
                assert wait_for(lambda b=b: any(records[b].glob(".packets-*")), 20), bg.stderr.read_text()
            assert wait_for(lambda: "watching" in watcher.stderr.read_text(), 20), watcher.stderr.read_text()
            time.sleep(2.0)  # dumpcap and watch's socket open a moment after their announcements
            with ThreadPoolExecutor(len(lab.plans)) as pool:
                futures = {p.vm.name: pool.submit(_traffic, lab, p.vm.name) for p in lab.plans}
            seen = {vm: f.result() for vm, f in futures.items()}
            time.sleep(1.5)  # let rsyslog and nginx write, and the captures see the last FINs
            for bg in (scapy, tshark):
                bg.proc.send_signal(2)
                bg.proc.wait(15)
            jobs = {
                "scapy": _analyze(records["scapy"], [lab.auth_log, lab.access_log], lab),
                "tshark": _analyze(records["tshark"], [lab.auth_log_rfc3339, lab.access_log], lab),
            }
            reports = {}
            for b, job in jobs.items():
                out, err = job.communicate(timeout=120)
                assert job.returncode == 0, err
                reports[b] = json.loads(out)
            watcher.proc.send_signal(2)  # Ctrl-C: it flushes what the capture holds and exits 0
            watcher.proc.wait(30)
        yield {
            "lab": lab, "seen": seen, "predictions": predictions, "reports": reports, "probe": probe,
            "capture_err": {b: bg.stderr.read_text() for b, bg in (("scapy", scapy), ("tshark", tshark))},
            "watch_out": watcher.stdout.read_text(), "watch_err": watcher.stderr.read_text(),
            "watch_rc": watcher.returncode, "dropped": lab.counter("novm"),
        }  # fmt: skip


def _rows(report: dict[str, Any], ip: str) -> list[dict[str, Any]]:
    return [r for r in report["connections"] if r["src_ip"] == ip]


def _findings(report: dict[str, Any], kind: str, ip: str | None = None) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["kind"] == kind and (ip is None or ip in f["src_ips"])]


def test_predictions_are_the_scenarios() -> None:
    by_vm = {p["vm"]: p for p in _predict_json()}
    assert by_vm["novm"]["class"] == "none" and not by_vm["novm"]["expected_ips"]
    for vm, (klass, via, resource) in EXPECTED.items():
        assert (by_vm[vm]["class"], by_vm[vm]["via"], by_vm[vm]["resource"]) == (klass, via, resource), by_vm[vm]
        assert by_vm[vm]["confidence"] == PREDICTED_CONFIDENCE[vm]
    assert by_vm["outvm"]["snat_ports"] == 8


def test_every_scenario_with_egress_arrives_and_the_nat_rules_only_one_does_not(run: dict[str, Any]) -> None:
    seen = run["seen"]
    for vm in ARRIVING:
        assert seen[vm]["ssh"] == 0 and seen[vm]["http"] == 200, (vm, seen[vm])
    assert seen["outvm"]["burst"][:2] == [str(BURST_HELD), str(BURST_SEQUENTIAL)], seen["outvm"]["burst_err"]
    # Standard LB with NAT rules only: the VM tried (the edge counted its packets), nothing came.
    assert seen["novm"]["ssh"] != 0 and seen["novm"]["http"] == 0 and not seen["novm"]["ips"]
    assert run["dropped"] > 0
    # Article test 2's probe really fails: nothing listens on its port in the VM.
    assert run["probe"].returncode != 0 and "ConnectionRefused" in run["probe"].stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_capture_backend_ran_and_stopped_cleanly(run: dict[str, Any], backend: str) -> None:
    assert "final" in run["capture_err"][backend], run["capture_err"][backend]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vm", list(EXPECTED))
def test_each_scenario_is_classified_as_predicted(run: dict[str, Any], backend: str, vm: str) -> None:
    klass, via, resource = EXPECTED[vm]
    (ip,) = run["seen"][vm]["ips"]
    rows = _rows(run["reports"][backend], ip)
    assert {r["service"] for r in rows} >= {"ssh", "http"}, rows
    if klass == "default_snat":  # Azure-owned by the lab's Service Tags, in no inventory
        assert ip.startswith("203.0.113.") and ip not in INVENTORY.read_text()
    assert {r["class"] for r in rows} == {klass}
    assert {r["via"] for r in rows} == {via}
    assert {r["resource"] for r in rows} == {OBSERVED_RESOURCE[vm]}
    assert {r["confidence"] for r in rows} == {_observed_confidence(klass)}
    assert all(vm in (r["candidate_vms"] or []) for r in rows)
    ssh = [r for r in rows if r["service"] == "ssh"]
    assert len(ssh) == 1 and set(ssh[0]["evidence"]) == {"live", "authlog"}, ssh
    assert ssh[0]["ssh_user"] == "labuser" and ssh[0]["ssh_auth"] == "accepted"


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_arrives_from_the_vm_without_egress(run: dict[str, Any], backend: str) -> None:
    report = run["reports"][backend]
    assert not [r for r in report["connections"] if r["src_ip"].startswith("10.")]
    assert "novm" not in {vm for r in report["connections"] for vm in (r["candidate_vms"] or [])}
    assert not [f for f in report["findings"] if "novm" in f["vms"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_findings(run: dict[str, Any], backend: str) -> None:
    report, seen = run["reports"][backend], run["seen"]
    ip = {vm: seen[vm]["ips"][0] for vm in ARRIVING}
    misses = _findings(report, "allowlist_miss")
    assert {x for f in misses for x in f["src_ips"]} == {ip["poolvm"], ip["pipvm"], ip["ngwpipvm"]}
    (pool,) = _findings(report, "allowlist_miss", ip["poolvm"])
    assert pool["vms"] == ["poolvm"] and any("poollb" in fix for fix in pool["fixes"]), pool
    # The burst: 7 concurrent connections on an 8-port block, then ports reused within 240 s.
    pressure = _findings(report, "snat_pressure")
    assert {x for f in pressure for x in f["src_ips"]} == {ip["outvm"]}
    assert {f["severity"] for f in pressure} == {"high", "medium"}, pressure
    assert all(f["destination"] == f"{run['lab'].topology.dest_ip}:80" and f["vms"] == ["outvm"] for f in pressure)
    high = next(f for f in pressure if f["severity"] == "high")
    assert re.search(rf"\b{BURST_HELD} concurrent connections\b.*\b8 SNAT ports\b", high["message"]), high
    # Everything else went as the inventory predicts.
    assert {f["kind"] for f in report["findings"]} == {"allowlist_miss", "snat_pressure"}


def test_both_backends_see_the_same_connections(run: dict[str, Any]) -> None:
    def key(report: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted((r["src_ip"], r["src_port"], r["dst_port"], r["service"], r["class"], r["state"])
                      for r in report["connections"] if "live" in r["evidence"])  # fmt: skip

    scapy, tshark = (key(run["reports"][b]) for b in BACKENDS)
    assert scapy == tshark
    completed = [k for k in scapy if k[5] == "closed"]
    assert len(completed) == 2 * len(ARRIVING) + BURST_HELD + BURST_SEQUENTIAL
    # A SYN on a reused port can meet the previous connection's TIME_WAIT (a RST, or a SYN
    # that goes unanswered until a retry): real exhaustion symptoms, and only ever from the
    # burst's 8-port block.
    others = [k for k in scapy if k[5] != "closed"]
    outvm = run["seen"]["outvm"]["ips"][0]
    assert all(k[0] == outvm and k[5] in ("reset", "rejected", "attempt") for k in others), others


def test_watch_prints_each_connection_classified_and_the_findings(run: dict[str, Any]) -> None:
    out, seen = run["watch_out"], run["seen"]
    assert run["watch_rc"] == 0, run["watch_err"]
    lines = out.splitlines()
    for vm, (klass, via, resource) in EXPECTED.items():
        (ip,) = seen[vm]["ips"]
        mine = [line for line in lines if f" {ip}:" in line and "class=" in line]
        assert {"ssh", "http"} <= {line.split()[2] for line in mine}, (vm, mine)
        for line in mine:
            assert f" class={klass} " in line and f" vms={vm} " in line, line
            if via:
                assert f"via={via}" in line
            if resource:
                assert f" resource={OBSERVED_RESOURCE[vm]} " in line
            assert f" confidence={_observed_confidence(klass)} " in line
        allowed = "NOT-ALLOWED" if vm in ("poolvm", "pipvm", "ngwpipvm") else "ALLOWED"
        assert all(allowed in line.split() for line in mine), (vm, mine)
    findings = [line for line in lines if line.startswith("FINDING ")]
    assert any("allowlist_miss" in f and seen["poolvm"]["ips"][0] in f for f in findings), findings
    assert any(f.startswith("FINDING [high] snat_pressure") and seen["outvm"]["ips"][0] in f for f in findings)
    assert not re.search(r" 10\.\d+\.\d+\.\d+:\d+ -> ", out), "a private address reached the destination"
    assert re.search(r"egresslens: \d+ connections, \d+ findings", run["watch_err"])
