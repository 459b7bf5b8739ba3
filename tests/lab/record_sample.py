"""Record the demo sample (pcaps/demo/) with the network lab: the article's story on real traffic.

Run by hand, as root, from the repository root::

    sudo .venv/bin/python -m tests.lab.record_sample [--out pcaps/demo]

It keeps the article's names (Basic load balancer ``mylb``, frontend
``LoadBalancerFrontEnd``, backend pool ``mybackendpool``, VMs ``Test2VM`` and ``lbvm``,
allowlist ``web-app``) with lab addresses, and records two lab builds:

1. the inventory as committed (``inventory.yaml``: Test2VM in the pool, no rule): Test2VM
   leaves through the lab's default SNAT range (an Azure-owned address no inventory holds),
   lbvm through its instance public IP; each runs ssh and ``GET /api/orders``;
2. the same inventory plus an inbound NAT rule on mylb for Test2VM (the article's test 1):
   Test2VM now leaves through mylb's frontend; it runs ssh and ``GET /api/orders`` again.

The destination ``webapp-vm`` runs real sshd (through rsyslog, RFC 3339 timestamps) and
nginx (combined format); ``tcpdump -w`` on its interface records the packets.  The script
writes ``webapp-vm.pcap`` (both builds, one file), ``auth.log``, ``access.log``,
``inventory.yaml`` (the state *before* the NAT rule, so phase 2 is egress the inventory
does not predict), ``ServiceTags_Public_lab.json`` (the lab's default SNAT range) and
``expected.json`` (``egresslens analyze --format json`` on them, run from the folder with
relative names).  The demo then only reads these files: no root needed.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .lab import Lab, topology_from_predictions, unavailable, wait_for, which, write_service_tags
from .services import REQUIRED

ROOT = Path(__file__).resolve().parents[2]
HOST = "webapp-vm"
FRONTEND = "203.0.113.55"
LBVM_PIP = "192.0.2.123"

INVENTORY: dict[str, Any] = {
    "description": "Azure China AOG article, pool only (no rules); lab addresses (tests/lab/record_sample.py)",
    "vnets": [{"name": "myvnet", "address_space": ["10.0.0.0/16"],
               "subnets": [{"name": "default", "prefix": "10.0.0.0/24"}]}],
    "public_ips": [{"name": "mylb-pip", "address": FRONTEND, "sku": "Basic"},
                   {"name": "lbvm-pip", "address": LBVM_PIP, "sku": "Basic"}],
    "load_balancers": [{
        "name": "mylb", "sku": "Basic",
        "frontends": [{"name": "LoadBalancerFrontEnd", "public_ip": "mylb-pip"}],
        "pools": [{"name": "mybackendpool", "members": ["Test2VM"]}],
        "probes": [{"name": "myhealthprobe", "protocol": "Tcp", "port": 80}],
    }],
    "vms": [{"name": "Test2VM", "availability_set": "myavset", "private_ip": "10.0.0.5", "subnet": "myvnet/default"},
            {"name": "lbvm", "private_ip": "10.0.0.4", "subnet": "myvnet/default", "public_ip": "lbvm-pip"}],
    "allowlists": [{"name": "web-app", "entries": [FRONTEND]}],
}  # fmt: skip
"""pcaps/inventory/article.yaml with lab addresses: the frontend and lbvm's public IP from the
documentation ranges, the private addresses as the article's."""

HEADER = """\
# The setup of the Azure China article (2018-12-11) that egresslens was built for, with the
# network lab's addresses (pcaps/inventory/article.yaml has the article's own): a Basic load
# balancer mylb whose backend pool holds Test2VM, but no load-balancing rule and no inbound
# NAT rule; lbvm has an instance public IP.  The web app accepts mylb's frontend only.
# Written by tests/lab/record_sample.py, which recorded the sample beside it.
"""


def with_nat_rule(inventory: dict[str, Any]) -> dict[str, Any]:
    """The article's test 1: an inbound NAT rule on mylb for Test2VM (and still no LB rule)."""
    after = copy.deepcopy(inventory)
    after["load_balancers"][0]["nat_rules"] = [
        {"name": "ssh-test2vm", "frontend": "LoadBalancerFrontEnd", "target": "Test2VM",
         "protocol": "Tcp", "frontend_port": 50001, "backend_port": 22},
    ]  # fmt: skip
    return after


def _predictions(path: Path) -> list[Any]:
    from analyze.inventory import load
    from analyze.predict import predict

    return predict(load([str(path)]))


def _phase(inventory: Path, work: Path, name: str, actions: list[tuple[str, str]]) -> dict[str, Any]:
    """Build a lab from ``inventory``, record ``actions`` ((vm, "ssh"|"http")), return the evidence."""
    topology = topology_from_predictions(_predictions(inventory))
    pcap = work / f"{name}.pcap"
    with Lab(topology, services=True, hostname=HOST) as lab:
        argv = [which("tcpdump") or "tcpdump", "-i", lab.dest_iface, "-n", "-U", "-w", str(pcap),
                "tcp port 22 or tcp port 80"]  # fmt: skip
        with lab.background(argv) as dump:
            if not wait_for(lambda: "listening on" in dump.stderr.read_text(), 15):
                raise SystemExit(f"tcpdump did not start: {dump.stderr.read_text()}")
            time.sleep(0.5)
            for vm, what in actions:
                if what == "ssh":
                    done = lab.ssh_from(vm)
                    if done.returncode != 0:
                        raise SystemExit(f"{name}: ssh from {vm} failed: {done.stderr}")
                else:
                    web = lab.curl_from(vm, "/api/orders")
                    if web.status != 200:
                        raise SystemExit(f"{name}: GET from {vm} failed: {web.stderr}")
                print(f"{name}: {vm} {what} from {lab.seen_ips(vm)}", file=sys.stderr)
                time.sleep(1.0)  # a readable timeline; one connection at a time
            time.sleep(1.0)  # the last FIN, rsyslog and nginx
        logins = sum(1 for vm, what in actions if what == "ssh")
        wait_for(lambda: lab.auth_log_rfc3339.read_text().count("Accepted publickey") >= logins, 5)
        return {
            "pcap": pcap.read_bytes(),
            "auth": lab.auth_log_rfc3339.read_text(),
            "access": lab.access_log.read_text(),
            "seen": {vm: lab.seen_ips(vm) for vm, _ in actions},
            "default_snat_range": lab.topology.default_snat_range,
        }


def _concat_pcaps(parts: list[bytes]) -> bytes:
    """Classic pcap files of one link type, one after the other, as one file."""
    headers = {p[:24] for p in parts}
    if len(headers) != 1:
        raise SystemExit("the phases' pcaps differ in format or link type; cannot join them")
    (magic,) = struct.unpack("<I", parts[0][:4])
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit(f"unexpected pcap magic {magic:#x}")
    return parts[0][:24] + b"".join(p[24:] for p in parts)


def record(out: Path) -> None:
    """Record both phases and write the sample into ``out``."""
    if (reason := unavailable(("tcpdump", *REQUIRED))) is not None:
        raise SystemExit(f"record_sample: {reason}")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="el-record-"))
    try:
        before = work / "inventory.yaml"
        before.write_text(HEADER + yaml.safe_dump(INVENTORY, sort_keys=False))
        after = work / "inventory_nat_rule.yaml"
        after.write_text(yaml.safe_dump(with_nat_rule(INVENTORY), sort_keys=False))
        first = _phase(before, work, "pool-only",
                       [("Test2VM", "ssh"), ("Test2VM", "http"), ("lbvm", "ssh"), ("lbvm", "http")])  # fmt: skip
        second = _phase(after, work, "nat-rule", [("Test2VM", "ssh"), ("Test2VM", "http")])
        if second["seen"]["Test2VM"] != (FRONTEND,):
            raise SystemExit(f"with the NAT rule Test2VM should leave from {FRONTEND}: {second['seen']}")
        (out / "webapp-vm.pcap").write_bytes(_concat_pcaps([first["pcap"], second["pcap"]]))
        (out / "auth.log").write_text(first["auth"] + second["auth"])
        (out / "access.log").write_text(first["access"] + second["access"])
        shutil.copyfile(before, out / "inventory.yaml")
        write_service_tags(out / "ServiceTags_Public_lab.json", (first["default_snat_range"],))
        argv = [sys.executable, "-m", "analyze", "analyze", "--inventory", "inventory.yaml",
                "--inventory", "ServiceTags_Public_lab.json", "--allowlist", "web-app", "--format", "json",
                "webapp-vm.pcap", "auth.log", "access.log"]  # fmt: skip
        done = subprocess.run(argv, cwd=out, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SystemExit(f"analyze failed: {done.stderr}")
        (out / "expected.json").write_text(json.dumps(json.loads(done.stdout), indent=1) + "\n")
        print(f"Test2VM default SNAT {first['seen']['Test2VM']}, lbvm {first['seen']['lbvm']}, "
              f"Test2VM with the NAT rule {second['seen']['Test2VM']}; wrote {out}", file=sys.stderr)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "pcaps" / "demo", help="folder to write (pcaps/demo)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # Lab.close() runs on kill too
    record(args.out)


if __name__ == "__main__":
    main()
