"""The network lab itself: plans are safe, real traffic leaves each VM by its path, nothing leaks.

The first half runs anywhere (planning is pure).  The second half builds namespaces and runs
sshd, rsyslog and nginx, so it needs root and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import lab as lab_module
from .conftest import LAB_INVENTORY, lab_or_skip
from .lab import (
    DEFAULT_SNAT_RANGE,
    VM_PORTS,
    HttpResult,
    Lab,
    LabError,
    SourceVm,
    Topology,
    nft_ruleset,
    plan,
    sweep_stale,
    topology_from_dict,
    topology_from_predictions,
    wait_for,
    which,
    write_service_tags,
)

# The lab's reference topology; lab_inventory.yaml describes the same VMs as an inventory,
# and test_predictions_of_the_lab_inventory_give_this_topology keeps the two in step.
TOPOLOGY = Topology(
    vms=(
        SourceVm(name="lbvm", private_ip="10.0.0.4", egress="lb_frontend", snat_ips=("203.0.113.10",),
                 snat_ports=1024, resource="mylb/LoadBalancerFrontEnd"),
        SourceVm(name="lbvm2", private_ip="10.0.0.8", egress="lb_frontend", snat_ips=("203.0.113.10",),
                 snat_ports=1024, resource="mylb/LoadBalancerFrontEnd"),
        SourceVm(name="pipvm", private_ip="10.0.0.5", egress="instance_public_ip", snat_ips=("192.0.2.44",),
                 resource="pipvm-pip"),
        SourceVm(name="defvm", private_ip="10.0.0.6", egress="default_snat"),
        SourceVm(name="novm", private_ip="10.0.2.7", egress="none"),
        SourceVm(name="ngwvm", private_ip="10.0.1.4", egress="nat_gateway", snat_ips=("198.51.100.50",),
                 resource="labngw"),
    )
)  # fmt: skip

ATTEMPTS = 2
"""ssh logins and HTTP requests per VM (bounded: the lab never loops on traffic)."""

ACCEPTED = re.compile(r"sshd\[\d+\]: Accepted publickey for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+) ssh2")
TRADITIONAL = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d webapp \S+: ")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d webapp \S+: ")
COMBINED = re.compile(
    r'^(?P<ip>\S+) - - \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d{3}) \d+ "-" "(?P<ua>[^"]*)"$'
)


# --- planning (no root) ----------------------------------------------------------------------


def test_plan_resolves_every_path() -> None:
    plans = {p.vm.name: p for p in plan(TOPOLOGY)}
    assert plans["lbvm"].seen_ips == ("203.0.113.10",)
    assert plans["pipvm"].seen_ips == ("192.0.2.44",)
    assert plans["ngwvm"].seen_ips == ("198.51.100.50",)
    assert plans["novm"].seen_ips == ()
    (default,) = plans["defvm"].seen_ips
    assert ipaddress.ip_address(default) in ipaddress.ip_network(DEFAULT_SNAT_RANGE)
    # VMs behind one frontend get disjoint preallocated blocks, all below the VMs' own ports.
    assert plans["lbvm"].port_block == (1024, 2047)
    assert plans["lbvm2"].port_block == (2048, 3071)
    assert plans["pipvm"].port_block is None
    assert all(p.port_block is None or p.port_block[1] < VM_PORTS[0] for p in plans.values())


def test_nft_ruleset_snats_and_drops_per_source_address() -> None:
    rules = nft_ruleset(plan(TOPOLOGY))
    assert "ip saddr 10.0.0.4 meta l4proto { tcp, udp } snat ip to 203.0.113.10:1024-2047" in rules
    assert "ip saddr 10.0.0.5 snat ip to 192.0.2.44" in rules
    assert "ip daddr 192.0.2.44 dnat ip to 10.0.0.5" in rules
    assert 'iifname "vm4" ip saddr 10.0.2.7 counter name "vm4" drop' in rules
    assert "policy drop" in rules
    assert "10.0.2.7 snat" not in rules


def test_several_candidate_addresses_pick_one_at_random() -> None:
    vm = SourceVm(name="ngw", private_ip="10.0.0.4", egress="nat_gateway", snat_ips=("192.0.2.8/30",))
    (p,) = plan(Topology(vms=(vm,)))
    assert p.seen_ips == ("192.0.2.9", "192.0.2.10")
    assert "numgen random mod 2 map { 0 : 192.0.2.9, 1 : 192.0.2.10 }" in nft_ruleset([p])


def test_default_snat_skips_addresses_in_use() -> None:
    vms = (
        SourceVm(name="a", private_ip="10.0.0.4", egress="default_snat", snat_ips=("203.0.113.129",)),
        SourceVm(name="b", private_ip="10.0.0.5", egress="default_snat"),
    )
    assert [p.seen_ips for p in plan(Topology(vms=vms))] == [("203.0.113.129",), ("203.0.113.130",)]


def _vm(**kw: object) -> SourceVm:
    base = {"name": "vm", "private_ip": "10.0.0.4", "egress": "instance_public_ip", "snat_ips": ("192.0.2.4",)}
    return SourceVm(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("topology", "message"),
    [
        (Topology(vms=(_vm(snat_ips=("40.125.161.55",)),)), "not in 192.0.2.0/24"),
        (Topology(vms=(_vm(private_ip="192.168.1.4"),)), "must be in 10.0.0.0/8"),
        (Topology(vms=(_vm(private_ip="10.255.255.254"),)), "must be in 10.0.0.0/8"),
        (Topology(vms=(_vm(), _vm(private_ip="10.0.0.5"))), "duplicate VM name"),
        (Topology(vms=(_vm(), _vm(name="b"))), "used twice"),
        (Topology(vms=(_vm(snat_ips=()),)), "needs snat_ips"),
        (Topology(vms=(_vm(egress="none"),)), "takes no snat_ips"),
        (Topology(vms=(_vm(egress="bgp"),)), "egress 'bgp' is not one of"),
        (Topology(vms=(_vm(snat_ips=("203.0.113.200",)),)), "inside the default SNAT range"),
        (Topology(vms=(_vm(snat_ips=("198.51.100.10",)),)), "the destination's or the edge's"),
        (Topology(vms=(_vm(),), dest_ip="8.8.8.8"), "dest_ip: 8.8.8.8 is not in"),
        (Topology(vms=(_vm(),), default_snat_range="10.0.0.0/8"), "not inside a documentation range"),
        (Topology(vms=(_vm(egress="lb_frontend", snat_ports=40000),)), "do not fit below 32768"),
        (Topology(vms=(_vm(snat_ips=("192.0.2.0/24",)),)), "larger than 64"),
        (Topology(vms=()), "no source VMs"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_plan_refuses_unsafe_or_ambiguous_topologies(topology: Topology, message: str) -> None:
    with pytest.raises(LabError, match=re.escape(message)):
        plan(topology)


def test_topology_from_dict_reads_the_yaml_shape() -> None:
    doc = yaml.safe_load(
        """
        dest_ip: 198.51.100.10
        vms:
          - {name: lbvm, private_ip: 10.0.0.4, egress: lb_frontend, snat_ips: [203.0.113.10], snat_ports: 64}
          - {name: novm, private_ip: 10.0.0.5, egress: none}
        """
    )
    topo = topology_from_dict(doc)
    assert topo.vms[0] == SourceVm(
        name="lbvm", private_ip="10.0.0.4", egress="lb_frontend", snat_ips=("203.0.113.10",), snat_ports=64
    )
    assert plan(topo)[0].port_block == (1024, 1087)
    with pytest.raises(LabError, match="unknown keys"):
        topology_from_dict({"vms": [], "routes": []})


def test_topology_from_prediction_json() -> None:
    predictions: list[dict[str, Any]] = [
        {"vm": "Test2VM", "nic": "n", "ipconfig": "ipconfig1", "private_ip": "10.0.0.5", "class": "default_snat",
         "via": None, "resource": None, "expected_ips": [], "snat_ports": None},
        {"vm": "lbvm", "nic": "n2", "ipconfig": "ipconfig1", "private_ip": "10.0.0.4", "class": "lb_frontend",
         "via": "nat_rule", "resource": "mylb/fe", "expected_ips": ["203.0.113.10"], "snat_ports": 512},
        {"vm": "onprem", "nic": "n3", "ipconfig": "ipconfig1", "private_ip": "10.0.0.6", "class": "forced_tunnel",
         "via": None, "resource": None, "expected_ips": ["192.0.2.1"], "snat_ports": None},
    ]  # fmt: skip
    topo = topology_from_predictions(predictions)
    assert [(v.name, v.egress, v.snat_ips, v.snat_ports) for v in topo.vms] == [
        ("Test2VM", "default_snat", (), None),
        ("lbvm", "lb_frontend", ("203.0.113.10",), 512),
        ("onprem", "none", (), None),
    ]
    with pytest.raises(LabError, match="cannot emulate class 'external'"):
        topology_from_predictions([{**predictions[0], "class": "external"}])
    with pytest.raises(LabError, match="not in 192.0.2.0/24"):
        plan(topology_from_predictions([{**predictions[1], "expected_ips": ["40.125.161.55"]}]))


def test_predictions_of_the_lab_inventory_give_this_topology() -> None:
    from analyze.predict import predict

    from analyze.inventory import load

    predicted = topology_from_predictions(predict(load([LAB_INVENTORY])))
    by_name = {vm.name: vm for vm in predicted.vms}
    assert by_name == {vm.name: vm for vm in TOPOLOGY.vms}


def test_lab_service_tags_load_as_azure_owned(tmp_path: Path) -> None:
    from analyze.inventory import load

    path = write_service_tags(tmp_path / "ServiceTags_Public_lab.json")
    inv = load([path])
    assert "azurecloud.labregion" in {t.lower() for t in inv.tags_containing("203.0.113.129") or ()}
    assert not inv.tags_containing("203.0.113.10")
    assert json.loads(path.read_text())["values"][0]["properties"]["addressPrefixes"] == [DEFAULT_SNAT_RANGE]


def test_planning_a_lab_touches_nothing() -> None:
    lab = Lab(TOPOLOGY)
    assert not lab.workdir.exists() and lab.namespaces == ()
    assert lab.edge_ns.startswith("el-") and len(lab.vm_ns) == len(TOPOLOGY.vms)
    with pytest.raises(LabError, match="not a namespace of this lab"):
        lab.run_in("init", ["true"])
    with pytest.raises(LabError, match="no VM 'ghost'"):
        lab.ns_of("ghost")
    lab.close()  # nothing to do, and no error


# --- the real lab (root) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Traffic:
    """What ran through the module's lab, and the destination's logs right after."""

    lab: Lab
    ssh: dict[str, list[subprocess.CompletedProcess[str]]]
    http: dict[str, list[HttpResult]]
    auth_log: str
    auth_log_rfc3339: str
    access_log: str
    dropped: dict[str, int]


def _ssh(lab: Lab, vm: str) -> subprocess.CompletedProcess[str]:
    # The `none` VM's packets are dropped: a short connect timeout keeps the run short.
    return lab.ssh_from(vm, connect_timeout=2 if lab.plan_of(vm).vm.egress == "none" else 5)


def _http(lab: Lab, vm: str) -> HttpResult:
    return lab.curl_from(vm, f"/whoami?vm={vm}", connect_timeout=2 if lab.plan_of(vm).vm.egress == "none" else 3)


@pytest.fixture(scope="module")
def traffic() -> Iterator[Traffic]:
    lab_or_skip()
    with Lab(TOPOLOGY) as lab:
        names = [vm.name for vm in TOPOLOGY.vms]
        # Every attempt at once: the run lasts as long as the slowest (the dropped ones).
        with ThreadPoolExecutor(4 * len(names)) as pool:
            ssh = {n: [pool.submit(_ssh, lab, n) for _ in range(ATTEMPTS)] for n in names}
            http = {n: [pool.submit(_http, lab, n) for _ in range(ATTEMPTS)] for n in names}
        arriving = sum(ATTEMPTS for vm in TOPOLOGY.vms if vm.egress != "none")
        # rsyslog writes asynchronously: wait until every accepted login is in both files.
        for path in (lab.auth_log, lab.auth_log_rfc3339):
            wait_for(lambda p=path: len(ACCEPTED.findall(p.read_text())) >= arriving, 5)
        yield Traffic(
            lab=lab,
            ssh={n: [f.result() for f in fs] for n, fs in ssh.items()},
            http={n: [f.result() for f in fs] for n, fs in http.items()},
            auth_log=lab.auth_log.read_text(),
            auth_log_rfc3339=lab.auth_log_rfc3339.read_text(),
            access_log=lab.access_log.read_text(),
            dropped={n: lab.counter(n) for n in names},
        )


def _arriving() -> list[SourceVm]:
    return [vm for vm in TOPOLOGY.vms if vm.egress != "none"]


@pytest.mark.root
def test_ssh_and_http_succeed_from_every_vm_with_egress(traffic: Traffic) -> None:
    for vm in _arriving():
        assert [r.returncode for r in traffic.ssh[vm.name]] == [0] * ATTEMPTS, traffic.ssh[vm.name][0].stderr
        assert [r.status for r in traffic.http[vm.name]] == [200] * ATTEMPTS, traffic.http[vm.name][0].stderr


@pytest.mark.root
@pytest.mark.parametrize("fmt", ["traditional", "rfc3339"])
def test_auth_log_sees_each_vm_from_its_snat_address(traffic: Traffic, fmt: str) -> None:
    text = traffic.auth_log if fmt == "traditional" else traffic.auth_log_rfc3339
    stamp = TRADITIONAL if fmt == "traditional" else RFC3339
    lines = text.splitlines()
    assert lines and all(stamp.match(line) for line in lines), [x for x in lines if not stamp.match(x)][:3]
    seen = Counter(m["ip"] for m in ACCEPTED.finditer(text))
    expected = Counter({ip: 0 for vm in _arriving() for ip in traffic.lab.seen_ips(vm.name)})
    for vm in _arriving():
        expected[traffic.lab.seen_ips(vm.name)[0]] += ATTEMPTS
    assert seen == expected
    assert {m["user"] for m in ACCEPTED.finditer(text)} == {"labuser"}


@pytest.mark.root
def test_access_log_sees_each_vm_from_its_snat_address(traffic: Traffic) -> None:
    rows = [COMBINED.match(line) for line in traffic.access_log.splitlines()]
    assert rows and all(rows), traffic.access_log[:500]
    by_vm: dict[str, set[str]] = {}
    for m in rows:
        assert m is not None
        by_vm.setdefault(m["path"].partition("vm=")[2], set()).add(m["ip"])
        assert m["ua"] == f"egresslens-lab/{m['path'].partition('vm=')[2]}"
    assert by_vm == {vm.name: set(traffic.lab.seen_ips(vm.name)) for vm in _arriving()}
    assert len(rows) == ATTEMPTS * len(_arriving())


@pytest.mark.root
def test_the_none_vm_tried_but_nothing_arrived(traffic: Traffic) -> None:
    ssh, http = traffic.ssh["novm"], traffic.http["novm"]
    assert all(r.returncode == 255 and "timed out" in r.stderr for r in ssh), ssh[0].stderr
    assert all(r.status == 0 and r.returncode == 28 for r in http), http[0]  # curl: timeout
    # The edge saw (and dropped) its SYNs: the attempts were real, the path is closed.
    assert traffic.dropped["novm"] >= 2 * ATTEMPTS
    logs = traffic.auth_log + traffic.access_log
    assert "novm" not in logs
    assert not re.search(r"\b10\.\d+\.\d+\.\d+\b", logs), "a private address reached the destination"


@pytest.mark.root
def test_lb_frontend_masquerades_ports_and_instance_ip_keeps_them(traffic: Traffic) -> None:
    lab = traffic.lab
    lo, hi = VM_PORTS
    for name in ("lbvm", "lbvm2", "pipvm", "ngwvm", "defvm"):
        block = lab.plan_of(name).port_block
        for r in traffic.http[name]:
            assert r.local_port is not None and lo <= r.local_port <= hi  # what the VM chose
            seen_ip, seen_port = r.body.split()
            assert seen_ip in lab.seen_ips(name)
            if block:  # LB frontend: translated into the VM's preallocated block
                assert block[0] <= int(seen_port) <= block[1] and int(seen_port) != r.local_port
            elif name == "pipvm":  # 1:1 NAT: the VM's own port
                assert int(seen_port) == r.local_port
    # sshd agrees: logins from the frontend come from ports inside the two blocks, never the VMs'.
    ports = [int(m["port"]) for m in ACCEPTED.finditer(traffic.auth_log) if m["ip"] == "203.0.113.10"]
    blocks = [lab.plan_of(n).port_block for n in ("lbvm", "lbvm2")]
    assert len(ports) == 2 * ATTEMPTS
    assert all(any(b and b[0] <= p <= b[1] for b in blocks) for p in ports), ports


@pytest.mark.root
def test_default_snat_comes_from_the_service_tags_range_not_the_inventory(traffic: Traffic) -> None:
    (ip,) = traffic.lab.seen_ips("defvm")
    prefixes = json.loads(traffic.lab.service_tags.read_text())["values"][0]["properties"]["addressPrefixes"]
    assert any(ipaddress.ip_address(ip) in ipaddress.ip_network(p) for p in prefixes)
    assert ip not in LAB_INVENTORY.read_text()
    assert f"Accepted publickey for labuser from {ip} port" in traffic.auth_log


@pytest.mark.root
def test_no_namespace_has_a_route_out(traffic: Traffic) -> None:
    lab = traffic.lab
    for ns in lab.namespaces:
        routes = lab.run_in(ns, ["ip", "-4", "route", "show"], check=True).stdout
        assert "default" not in routes, (ns, routes)
        for line in routes.splitlines():
            net = ipaddress.IPv4Network(line.split()[0], strict=False)
            assert any(net.subnet_of(n) for n in ALLOWED_NETS), (ns, line)
        links = lab.run_in(ns, ["ip", "-o", "link", "show"], check=True).stdout
        assert "master" not in links  # nothing bridged to anything


ALLOWED_NETS = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/8")
)


# --- lifecycle (root) --------------------------------------------------------------------------

SMALL = Topology(vms=(SourceVm(name="vm", private_ip="10.0.0.4", egress="nat_gateway", snat_ips=("192.0.2.7",)),))


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _left(lab: Lab) -> set[str]:
    """Namespaces of ``lab`` still there (only its own: other runs may come and go meanwhile)."""
    return {ns for ns in _netns() if ns.startswith(f"{lab.prefix}-")}


@pytest.mark.root
def test_teardown_leaves_no_namespace_process_or_file_behind() -> None:
    lab_or_skip()
    lab = Lab(SMALL)
    with lab:
        names = set(lab.namespaces)
        assert names <= _netns()
        assert lab.ssh_from("vm").returncode == 0
        assert lab.services is not None
        pids = list(lab.services.pids.values())
        assert len(pids) == 3
        workdir = lab.workdir
        # A process left running in a source namespace must not keep it alive either.
        leftover = subprocess.Popen(["ip", "netns", "exec", lab.ns_of("vm"), "sleep", "30"])
    # Only this lab's namespaces: other runs on the machine may add and remove their own.
    assert not names & _netns() and not _left(lab)
    assert not any(_alive(pid) for pid in pids)
    assert leftover.wait(5) == -signal.SIGKILL
    assert not workdir.exists()
    assert not (Path(tempfile.gettempdir()) / f"{lab.prefix}.owner").exists()
    assert str(workdir) not in Path("/proc/self/mounts").read_text()


@pytest.mark.root
def test_teardown_runs_when_the_test_body_fails() -> None:
    lab_or_skip()
    lab = Lab(SMALL, services=False)
    with pytest.raises(RuntimeError, match="boom"), lab:
        assert lab.run_in(lab.ns_of("vm"), ["true"]).returncode == 0
        raise RuntimeError("boom")
    assert not _left(lab)


@pytest.mark.root
def test_a_half_built_lab_is_torn_down(monkeypatch: pytest.MonkeyPatch) -> None:
    lab_or_skip()
    lab = Lab(SMALL, services=False)
    # Fail half-way through the build: after the namespaces and links, at the nftables step.
    monkeypatch.setattr(lab_module, "nft_ruleset", lambda plans: "this is not nft\n")
    with pytest.raises(LabError, match="nft"), lab:
        pass
    assert not _left(lab)


@pytest.mark.root
def test_sweep_removes_only_labs_whose_owner_died() -> None:
    lab_or_skip()
    with Lab(SMALL, services=False) as lab:
        owner = Path(tempfile.gettempdir()) / f"{lab.prefix}.owner"
        assert sweep_stale(only={lab.prefix}) == []  # its owner (this process) still runs
        assert set(lab.namespaces) <= _netns()
        owner.write_text("4194304 0\n")  # above pid_max: a process that cannot exist
        assert sorted(sweep_stale(only={lab.prefix})) == sorted(lab.namespaces)
        assert not owner.exists() and not lab.workdir.exists()
    # close() after a sweep finds nothing left to do, and says nothing.
    assert not _left(lab)


@pytest.mark.root
def test_background_command_stops_on_sigint(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(SMALL)
    cap = lab.workdir / "dst.pcap"
    if which("tcpdump") is None:
        pytest.skip("tcpdump not installed")
    with lab.background(["tcpdump", "-i", lab.dest_iface, "--immediate-mode", "-U", "-n", "-w", str(cap), "tcp port 80"]) as bg:
        assert wait_for(lambda: b"listening on" in bg.stderr.read_bytes(), 5), bg.stderr.read_text()
        assert lab.curl_from("vm", "/").status == 200
        # Immediate mode hands each packet over at once; still give the last one a moment.
        time.sleep(0.2)
    assert bg.returncode == 0, bg.stderr.read_text()  # tcpdump exits cleanly on SIGINT
    assert "packets captured" in bg.stderr.read_text()
    assert cap.stat().st_size > 24  # pcap header plus packets
    with lab.background(["sleep", "60"]) as sleeper:
        pass
    assert sleeper.returncode == -signal.SIGINT
