"""The lab's topology: source-VM namespaces, an "Azure edge" namespace doing SNAT, a destination.

A ``Topology`` is plain data: source VMs, each with a private address and an egress path
(the DESIGN.md classes the lab can reproduce).  ``plan()`` resolves it without touching the
system (default SNAT addresses, SNAT port blocks, nftables rules) and refuses anything that
is not a documentation or 10/8 address, so it is unit-tested without root.  ``Lab`` builds it:

    <p>-vm0: eth0 10.0.0.4/32 ---- vm0 -+
    <p>-vm1: eth0 10.0.0.5/32 ---- vm1 -+- <p>-edge: forwards, nftables SNAT per source address
    ...                            ... -+  (10.255.255.254/32 on each vmN link)
                                           inet 198.51.100.1/32 ---- eth0 198.51.100.10/32 :<p>-dst

Every veth is created directly inside the namespaces (nothing ever appears in the host's
namespace), source VMs only get routes to the three documentation /24s through the edge,
and the edge has no route but to its VMs and the destination: no namespace can reach the
outside world.  ``Lab.close()`` kills what runs in the namespaces and deletes them (which
removes their veths and nftables tables), even after a failed or half-finished build.

``topology_from_predictions()`` is the only place that knows the prediction engine's output
shape; the builder itself does not import ``analyze``.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Self, get_args

if TYPE_CHECKING:
    from .services import Services

LabEgress = Literal[
    "lb_frontend", "instance_public_ip", "nat_gateway", "firewall", "default_snat", "private", "none"
]  # fmt: skip
"""Egress paths the edge can emulate (DESIGN.md class names)."""

PUBLIC_NETS: Final = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
"""The only "public" addresses the lab uses (RFC 5737 documentation ranges)."""

PRIVATE_NET: Final = ipaddress.IPv4Network("10.0.0.0/8")
"""Source VMs' private addresses."""

GATEWAY: Final = "10.255.255.254"
"""The edge's address on every VM link (Azure's subnet gateway, one per VM here)."""

DEFAULT_SNAT_RANGE: Final = "203.0.113.128/25"
"""Azure-owned range of the lab: listed by ``write_service_tags``, never in an inventory."""

DEST_IP: Final = "198.51.100.10"
EDGE_IP: Final = "198.51.100.1"
DEST_IFACE: Final = "eth0"
"""The destination's only interface (where a live capture listens)."""

VM_PORTS: Final = (40000, 40999)
"""Ephemeral ports of the source VMs.  SNAT port blocks lie below 32768, so a translated
source port can never be mistaken for one the VM chose."""

SNAT_PORT_BASE: Final = 1024
SNAT_PORT_LIMIT: Final = 32767
DEFAULT_SNAT_PORTS: Final = 1024
"""Ports per ipconfig when a prediction does not say (Azure's default for pools of <= 50)."""

MAX_EXPANDED: Final = 64
"""Most addresses a prefix in ``snat_ips`` may expand to (the edge picks among them)."""

NEEDS_SNAT: Final = ("lb_frontend", "instance_public_ip", "nat_gateway", "firewall")

TABLE: Final = "egresslens_edge"


class LabError(RuntimeError):
    """The topology is invalid or unsafe, or the system refused to build it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceVm:
    """One source VM (one NIC ipconfig) and its egress path."""

    name: str
    """VM name, as the inventory spells it."""
    private_ip: str
    """Its private address, in 10.0.0.0/8."""
    egress: LabEgress
    """The path the edge emulates for it."""
    snat_ips: tuple[str, ...] = ()
    """Addresses (or prefixes) the edge translates to; empty for ``private`` and ``none``,
    and for ``default_snat`` to let the lab pick one from the default SNAT range."""
    snat_ports: int | None = None
    """``lb_frontend``: size of the VM's preallocated SNAT port block (default 1024)."""
    resource: str | None = None
    """LB frontend, public IP or NAT gateway name, for messages and later assertions."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """Source VMs, the destination host and the Azure-owned default SNAT range."""

    vms: tuple[SourceVm, ...]
    """The source VMs, one namespace each."""
    dest_ip: str = DEST_IP
    """The destination ("web app host") address."""
    edge_ip: str = EDGE_IP
    """The edge's address on the destination link."""
    default_snat_range: str = DEFAULT_SNAT_RANGE
    """Where ``default_snat`` addresses come from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressPlan:
    """A source VM resolved: what the destination will see and the edge rules that do it."""

    vm: SourceVm
    index: int
    """Position in the topology: namespace ``<prefix>-vm<index>``, edge link ``vm<index>``."""
    seen_ips: tuple[str, ...]
    """Source addresses the destination sees (empty: nothing arrives)."""
    port_block: tuple[int, int] | None
    """Translated source ports (inclusive) for port-masquerading paths, else None (kept)."""
    postrouting: tuple[str, ...]
    """nftables rules of the edge's nat postrouting chain."""
    forward: tuple[str, ...]
    """nftables rules of the edge's filter forward chain."""
    prerouting: tuple[str, ...]
    """nftables rules of the edge's nat prerouting chain (inbound 1:1 NAT)."""


# --- pure part: validation and planning --------------------------------------------------------


def _ip(text: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(text).strip())
    except ValueError:
        raise LabError(f"{what}: not an IPv4 address: {text!r}") from None


def _public(addr: ipaddress.IPv4Address, what: str) -> None:
    if not any(addr in net for net in PUBLIC_NETS):
        raise LabError(
            f"{what}: {addr} is not in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24; "
            "the lab only emulates documentation addresses"
        )


def _expand(entry: str, what: str) -> list[ipaddress.IPv4Address]:
    """An address or a prefix -> its addresses (a /31 or /32 keeps both ends)."""
    try:
        net = ipaddress.IPv4Network(str(entry).strip(), strict=False)
    except ValueError:
        raise LabError(f"{what}: not an IPv4 address or prefix: {entry!r}") from None
    if net.num_addresses > MAX_EXPANDED:
        raise LabError(f"{what}: prefix {net} is larger than {MAX_EXPANDED} addresses")
    addrs = list(net.hosts()) if net.prefixlen < 31 else list(net)
    for a in addrs:
        _public(a, what)
    return addrs


def _snat_target(addrs: Sequence[ipaddress.IPv4Address], ports: tuple[int, int] | None) -> str:
    if len(addrs) == 1:
        return f"{addrs[0]}" + (f":{ports[0]}-{ports[1]}" if ports else "")
    # Several candidates (NAT gateway with several IPs, several LB frontends): a random one
    # per connection, as Azure documents for NAT gateways.  nft cannot add a port range to
    # a numgen map, so these keep their ports.
    items = ", ".join(f"{i} : {a}" for i, a in enumerate(addrs))
    return f"numgen random mod {len(addrs)} map {{ {items} }}"


def plan(topology: Topology) -> tuple[EgressPlan, ...]:
    """Resolve a topology into per-VM SNAT plans, refusing anything unsafe or ambiguous.

    Args:
        topology: The declarative description.

    Returns:
        One plan per VM, in topology order.

    Raises:
        LabError: duplicate names or private addresses, an address outside the documentation
            ranges (public side) or 10.0.0.0/8 (private side), a default SNAT range that
            overlaps another path's address, a missing or superfluous ``snat_ips``, or SNAT
            port blocks that do not fit below 32768.
    """
    if not topology.vms:
        raise LabError("topology: no source VMs")
    dest = _ip(topology.dest_ip, "dest_ip")
    edge = _ip(topology.edge_ip, "edge_ip")
    _public(dest, "dest_ip")
    _public(edge, "edge_ip")
    if dest == edge:
        raise LabError(f"dest_ip and edge_ip are both {dest}")
    try:
        default_net = ipaddress.IPv4Network(topology.default_snat_range, strict=False)
    except ValueError:
        raise LabError(f"default_snat_range: not a prefix: {topology.default_snat_range!r}") from None
    if not any(default_net.subnet_of(n) for n in PUBLIC_NETS):
        raise LabError(f"default_snat_range {default_net} is not inside a documentation range")
    names: set[str] = set()
    privates: set[ipaddress.IPv4Address] = set()
    explicit: dict[str, list[ipaddress.IPv4Address]] = {}
    for vm in topology.vms:
        where = f"vm {vm.name!r}"
        if vm.egress not in get_args(LabEgress):
            raise LabError(f"{where}: egress {vm.egress!r} is not one of {', '.join(get_args(LabEgress))}")
        if vm.name in names:
            raise LabError(f"{where}: duplicate VM name")
        names.add(vm.name)
        priv = _ip(vm.private_ip, f"{where} private_ip")
        if priv not in PRIVATE_NET or str(priv) == GATEWAY:
            raise LabError(f"{where}: private_ip {priv} must be in 10.0.0.0/8 and not {GATEWAY}")
        if priv in privates:
            raise LabError(f"{where}: private_ip {priv} is used twice; the edge routes by it")
        privates.add(priv)
        if vm.egress in NEEDS_SNAT and not vm.snat_ips:
            raise LabError(f"{where}: egress {vm.egress} needs snat_ips")
        if vm.egress in ("private", "none") and vm.snat_ips:
            raise LabError(f"{where}: egress {vm.egress} takes no snat_ips")
        addrs = [a for e in vm.snat_ips for a in _expand(e, f"{where} snat_ips")]
        for a in addrs:
            if a in (dest, edge):
                raise LabError(f"{where}: SNAT address {a} is the destination's or the edge's")
            if vm.egress != "default_snat" and a in default_net:
                raise LabError(
                    f"{where}: {a} is inside the default SNAT range {default_net}, which must "
                    "hold only Azure-owned addresses that no inventory lists"
                )
        explicit[vm.name] = addrs
    used = {a for addrs in explicit.values() for a in addrs} | {dest, edge}
    free_default = (a for a in default_net.hosts() if a not in used)
    next_port: dict[tuple[ipaddress.IPv4Address, ...], int] = {}
    plans = []
    for index, vm in enumerate(topology.vms):
        addrs = explicit[vm.name]
        if vm.egress == "default_snat" and not addrs:
            try:
                addrs = [next(free_default)]
            except StopIteration:
                raise LabError(f"default_snat_range {default_net} has no free address left") from None
        ports = None
        if vm.egress == "lb_frontend" and len(addrs) == 1:
            # Azure preallocates each backend ipconfig a block of SNAT ports on the frontend;
            # blocks of VMs sharing a frontend do not overlap.
            size = vm.snat_ports or DEFAULT_SNAT_PORTS
            start = next_port.get(tuple(addrs), SNAT_PORT_BASE)
            if size < 1 or start + size - 1 > SNAT_PORT_LIMIT:
                raise LabError(f"vm {vm.name!r}: {size} SNAT ports do not fit below {SNAT_PORT_LIMIT + 1}")
            ports = (start, start + size - 1)
            next_port[tuple(addrs)] = start + size
        link = f"vm{index}"
        src = f'iifname "{link}" ip saddr {vm.private_ip}'
        post: list[str] = []
        fwd: list[str] = []
        pre: list[str] = []
        if vm.egress == "none":
            fwd.append(f'{src} counter name "{link}" drop comment "{vm.name}: no egress"')
        else:
            fwd.append(f'{src} oifname "inet" counter name "{link}" accept comment "{vm.name}: {vm.egress}"')
        if addrs:
            out = f'oifname "inet" ip saddr {vm.private_ip}'
            if ports:
                post.append(f"{out} meta l4proto {{ tcp, udp }} snat ip to {_snat_target(addrs, ports)}")
            # "persistent": one source address keeps one translated address when a range is
            # given, like Azure's default outbound address per VM.
            keep = " persistent" if vm.egress == "default_snat" and len(addrs) == 1 else ""
            post.append(f"{out} snat ip to {_snat_target(addrs, None)}{keep}")
        if vm.egress == "instance_public_ip":
            # 1:1 NAT: the public IP also reaches the VM from outside, on every port.
            pre.append(f'iifname "inet" ip daddr {addrs[0]} dnat ip to {vm.private_ip}')
            fwd.append(f'iifname "inet" oifname "{link}" ip daddr {vm.private_ip} ct status dnat accept')
        seen = () if vm.egress == "none" else (
            (vm.private_ip,) if vm.egress == "private" else tuple(str(a) for a in addrs)
        )  # fmt: skip
        plans.append(
            EgressPlan(
                vm=vm, index=index, seen_ips=seen, port_block=ports,
                postrouting=tuple(post), forward=tuple(fwd), prerouting=tuple(pre),
            )
        )  # fmt: skip
    return tuple(plans)


def nft_ruleset(plans: Sequence[EgressPlan], table: str = TABLE) -> str:
    """The edge's nftables ruleset: one named counter per VM, SNAT, and a drop-by-default forward."""
    counters = "".join(f'  counter vm{p.index} {{ comment "{p.vm.name}" }}\n' for p in plans)
    body = "\n".join(
        [
            f"table ip {table} {{",
            counters.rstrip("\n"),
            "  chain prerouting {",
            "    type nat hook prerouting priority dstnat; policy accept;",
            *(f"    {r}" for p in plans for r in p.prerouting),
            "  }",
            "  chain forward {",
            "    type filter hook forward priority filter; policy drop;",
            "    ct state established,related accept",
            "    ct state invalid drop",
            *(f"    {r}" for p in plans for r in p.forward),
            "  }",
            "  chain postrouting {",
            "    type nat hook postrouting priority srcnat; policy accept;",
            *(f"    {r}" for p in plans for r in p.postrouting),
            "  }",
            "}",
        ]
    )
    return body + "\n"


def topology_from_dict(doc: Mapping[str, Any]) -> Topology:
    """A topology from plain data (e.g. a YAML file): ``{vms: [{name, private_ip, egress, ...}]}``."""
    known = {"vms", "dest_ip", "edge_ip", "default_snat_range"}
    if unknown := set(doc) - known:
        raise LabError(f"topology: unknown keys {sorted(unknown)}")
    vms = []
    for i, v in enumerate(doc.get("vms") or ()):
        try:
            vms.append(
                SourceVm(
                    name=str(v["name"]), private_ip=str(v["private_ip"]), egress=v["egress"],
                    snat_ips=tuple(str(x) for x in v.get("snat_ips") or ()),
                    snat_ports=v.get("snat_ports"), resource=v.get("resource"),
                )
            )  # fmt: skip
        except (KeyError, TypeError, AttributeError) as e:
            raise LabError(f"topology: vms[{i}]: {e!r}") from None
    extra = {k: str(doc[k]) for k in known - {"vms"} if k in doc}
    return Topology(vms=tuple(vms), **extra)


# Prediction classes the lab cannot reproduce as such, and what stands in for them.
_CLASS_STANDIN: Final = {"forced_tunnel": "none"}  # on-premises is not emulated: nothing arrives


def topology_from_predictions(
    predictions: Sequence[Any],
    *,
    default_snat_range: str = DEFAULT_SNAT_RANGE,
    dest_ip: str = DEST_IP,
    edge_ip: str = EDGE_IP,
) -> Topology:
    """Turn the prediction engine's output into a lab topology.

    Accepts either ``analyze.predict.Prediction`` objects or the dicts of
    ``egresslens predict --format json`` (keys ``vm``, ``nic``, ``ipconfig``, ``private_ip``,
    ``class``, ``resource``, ``expected_ips``, ``snat_ports``...).  Only those fields are read,
    so the lab survives changes elsewhere in the engine.

    Args:
        predictions: One per NIC ipconfig.
        default_snat_range: Where ``default_snat`` VMs get their address from; it must not
            hold any address of the inventory.
        dest_ip: The destination host's address.
        edge_ip: The edge's address on the destination link.

    Returns:
        The topology; VM names are the VM's (``vm-ipconfig`` when a VM has several ipconfigs).

    Raises:
        LabError: a class the lab cannot emulate, a prediction without a private address, or
            an expected address outside the documentation ranges (use lab addresses in lab
            inventories).
    """

    def get(p: Any, key: str) -> Any:
        if isinstance(p, Mapping):
            return p.get(key)
        return getattr(p, "egress_class" if key == "class" else key, None)

    per_vm: dict[str, int] = {}
    for p in predictions:
        key = str(get(p, "vm") or get(p, "nic"))
        per_vm[key] = per_vm.get(key, 0) + 1
    vms = []
    for p in predictions:
        vm = str(get(p, "vm") or get(p, "nic"))
        name = vm if per_vm[vm] == 1 else f"{vm}-{get(p, 'ipconfig')}"
        cls = str(get(p, "class"))
        cls = _CLASS_STANDIN.get(cls, cls)
        if cls not in get_args(LabEgress):
            raise LabError(f"{name}: the lab cannot emulate class {cls!r}")
        if not get(p, "private_ip"):
            raise LabError(f"{name}: prediction has no private_ip")
        ips = tuple(str(x) for x in get(p, "expected_ips") or ())
        if cls in ("private", "none"):
            ips = ()
        vms.append(
            SourceVm(
                name=name, private_ip=str(get(p, "private_ip")), egress=cls,  # type: ignore[arg-type]
                snat_ips=ips if cls != "default_snat" else (),
                snat_ports=get(p, "snat_ports") if cls == "lb_frontend" else None,
                resource=get(p, "resource"),
            )
        )  # fmt: skip
    return Topology(vms=tuple(vms), dest_ip=dest_ip, edge_ip=edge_ip, default_snat_range=default_snat_range)


def write_service_tags(path: Path, prefixes: Sequence[str] = (DEFAULT_SNAT_RANGE,), region: str = "labregion") -> Path:
    """Write a Service Tags file (``ServiceTags_Public_*.json`` shape) listing the lab's Azure ranges."""
    doc = {
        "changeNumber": 1,
        "cloud": "Public",
        "values": [
            {
                "name": f"AzureCloud.{region}",
                "id": f"AzureCloud.{region}",
                "properties": {
                    "changeNumber": 1,
                    "region": region,
                    "regionId": 0,
                    "platform": "Azure",
                    "systemService": "",
                    "addressPrefixes": list(prefixes),
                    "networkFeatures": ["API", "NSG", "UDR", "FW"],
                },
            }
        ],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


# --- the system part ---------------------------------------------------------------------------

REQUIRED: Final = ("ip", "nft", "sysctl", "unshare", "mount", "ss")
"""Commands the topology needs (services.REQUIRED lists the daemons')."""

_SBIN: Final = ("/usr/sbin", "/sbin")


def which(cmd: str) -> str | None:
    """``shutil.which`` that also looks in /usr/sbin and /sbin (not on a user's PATH)."""
    return shutil.which(cmd) or shutil.which(cmd, path=os.pathsep.join(_SBIN))


def unavailable(extra: Sequence[str] = ()) -> str | None:
    """Why the lab cannot run here (None when it can): not root, a missing command, no netns."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the network lab needs root (network namespaces, nftables)"
    missing = [c for c in (*REQUIRED, *extra) if which(c) is None]
    if missing:
        return f"the network lab needs these commands: {', '.join(missing)} (make sysdeps)"
    probe = f"el-probe-{secrets.token_hex(3)}"
    try:
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10, check=False)
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    return None


@dataclass(slots=True)
class Background:
    """A command running in a namespace until its ``Lab.background`` block ends."""

    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    returncode: int | None = None
    """Set once stopped."""


def _ns_names(prefix: str, count: int) -> tuple[str, str, list[str]]:
    return f"{prefix}-edge", f"{prefix}-dst", [f"{prefix}-vm{i}" for i in range(count)]


class Lab:
    """A built topology: namespaces, links, edge SNAT; optionally the destination's services.

    Use as a context manager (or call ``build()`` and, always, ``close()``)::

        with Lab(topology) as lab:
            lab.ssh_from("Test2VM")
            lab.auth_log.read_text()
    """

    def __init__(
        self,
        topology: Topology,
        *,
        services: bool = True,
        workdir: Path | None = None,
        hostname: str = "webapp",
        keep_workdir: bool | None = None,
    ) -> None:
        """Plan the lab (validating the topology) without building anything yet.

        Args:
            topology: What to build.
            services: Also run sshd, rsyslog and nginx in the destination namespace.
            workdir: Where configs, keys, pid files and logs go, created by ``build()``
                (mode 0755: sshd's test user and nginx's workers read from it); default a
                new directory named after the lab in the system's temporary directory.
            hostname: The destination's hostname in syslog lines (the ``observer``).
            keep_workdir: Leave the workdir on close (default: the ``EGRESSLENS_LAB_KEEP``
                environment variable), to read logs after a failure.
        """
        self.topology = topology
        self.plans = plan(topology)
        self.prefix = f"el-{secrets.token_hex(3)}"
        self.edge_ns, self.dest_ns, self.vm_ns = _ns_names(self.prefix, len(topology.vms))
        self.hostname = hostname
        """The destination's syslog hostname: the ``observer`` of its log records."""
        self.dest_iface = DEST_IFACE
        """Interface of the destination namespace that all traffic crosses."""
        self._want_services = services
        self._own_workdir = workdir is None
        self._made_workdir = False
        self.workdir = workdir or Path(tempfile.gettempdir()) / f"{self.prefix}-lab"
        self.keep_workdir = bool(os.environ.get("EGRESSLENS_LAB_KEEP")) if keep_workdir is None else keep_workdir
        self.services: Services | None = None
        """sshd, rsyslog and nginx, once started."""
        self._namespaces: list[str] = []
        self._background: list[Background] = []
        self._bg_ids = itertools.count()
        self._by_name = {p.vm.name: p for p in self.plans}
        self.service_tags = self.workdir / "ServiceTags_Public_lab.json"
        """The lab's Service Tags file: the default SNAT range as ``AzureCloud.labregion``."""

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(self) -> Self:
        """Create namespaces, links, addresses, routes and the edge's rules; start services."""
        t = self.topology
        # Who owns the lab, written before anything exists: sweep_stale() removes a lab only
        # once its owner is gone (a killed pytest), never a lab another run is still using.
        _owner_file(self.prefix).write_text(f"{os.getpid()} {_process_start(os.getpid())}\n")
        self.workdir.mkdir(mode=0o755, parents=True, exist_ok=not self._own_workdir)
        self._made_workdir = self._own_workdir  # only a directory we made is ever removed
        self.workdir.chmod(0o755)  # mkdir's mode is cut by the umask
        write_service_tags(self.service_tags, (t.default_snat_range,))
        for ns in (self.edge_ns, self.dest_ns, *self.vm_ns):
            self._sh("ip", "netns", "add", ns)
            self._namespaces.append(ns)  # recorded at once: close() removes half-built labs
            # No IPv6 at all: no router solicitations or MLD reports in the captures.
            self._sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
            self._sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
            self._sh("ip", "-n", ns, "link", "set", "lo", "up")
        self._sysctl(self.edge_ns, "net.ipv4.ip_forward", "1")  # the edge routes; nothing else does
        # Destination link: edge "inet" <-> dst "eth0".
        self._sh("ip", "-n", self.edge_ns, "link", "add", "inet", "type", "veth",
                 "peer", "name", DEST_IFACE, "netns", self.dest_ns)  # fmt: skip
        self._sh("ip", "-n", self.edge_ns, "addr", "add", f"{t.edge_ip}/32", "dev", "inet")
        self._sh("ip", "-n", self.edge_ns, "link", "set", "inet", "up")
        self._sh("ip", "-n", self.edge_ns, "route", "add", f"{t.dest_ip}/32", "dev", "inet")
        self._sh("ip", "-n", self.dest_ns, "addr", "add", f"{t.dest_ip}/32", "dev", DEST_IFACE)
        self._sh("ip", "-n", self.dest_ns, "link", "set", DEST_IFACE, "up")
        self._sh("ip", "-n", self.dest_ns, "route", "add", f"{t.edge_ip}/32", "dev", DEST_IFACE)
        back = [str(n) for n in PUBLIC_NETS]
        if any(p.vm.egress == "private" for p in self.plans):
            back.append(str(PRIVATE_NET))
        for prefix in back:  # the destination answers the "internet" through the edge, nothing else
            self._sh("ip", "-n", self.dest_ns, "route", "add", prefix, "via", t.edge_ip, "dev", DEST_IFACE)
        self._no_offloads(self.dest_ns, DEST_IFACE)
        self._no_offloads(self.edge_ns, "inet")
        # Source VMs.
        lo, hi = VM_PORTS
        for p, ns in zip(self.plans, self.vm_ns, strict=True):
            link = f"vm{p.index}"
            self._sh("ip", "-n", self.edge_ns, "link", "add", link, "type", "veth",
                     "peer", "name", "eth0", "netns", ns)  # fmt: skip
            self._sh("ip", "-n", self.edge_ns, "addr", "add", f"{GATEWAY}/32", "dev", link)
            self._sh("ip", "-n", self.edge_ns, "link", "set", link, "up")
            self._sh("ip", "-n", self.edge_ns, "route", "add", f"{p.vm.private_ip}/32", "dev", link)
            self._sh("ip", "-n", ns, "addr", "add", f"{p.vm.private_ip}/32", "dev", "eth0")
            self._sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self._sh("ip", "-n", ns, "route", "add", f"{GATEWAY}/32", "dev", "eth0")
            for net in PUBLIC_NETS:  # the lab's internet; deliberately no default route
                self._sh("ip", "-n", ns, "route", "add", str(net), "via", GATEWAY, "dev", "eth0")
            self._sysctl(ns, "net.ipv4.ip_local_port_range", f"{lo} {hi}")
        self._sh("ip", "netns", "exec", self.edge_ns, "nft", "-f", "-", input=nft_ruleset(self.plans))
        if self._want_services:
            from .services import Services

            self.services = Services(self)
            self.services.start()
        return self

    def close(self) -> None:
        """Tear everything down; every step runs even if an earlier one failed.

        Raises:
            LabError: something could not be removed (after trying everything else).
        """
        errors: list[str] = []
        for bg in self._background:
            _stop(bg)
        self._background.clear()
        if self.services is not None:
            try:
                self.services.stop()
            except Exception as e:  # noqa: BLE001 - keep tearing down
                errors.append(f"services: {e}")
            self.services = None
        for ns in reversed(self._namespaces):
            if (error := _remove_namespace(ns)) is not None:
                errors.append(error)
        self._namespaces.clear()
        if self._made_workdir and not self.keep_workdir and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise LabError("lab teardown: " + "; ".join(errors))
        # Kept while anything is left, so that sweep_stale() can finish the job later.
        _owner_file(self.prefix).unlink(missing_ok=True)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Namespaces created so far (all of them once built)."""
        return tuple(self._namespaces)

    # -- running things -------------------------------------------------------------------------

    def ns_of(self, vm: str) -> str:
        """The namespace of a source VM, by name."""
        return self.vm_ns[self.plan_of(vm).index]

    def plan_of(self, vm: str) -> EgressPlan:
        """The resolved plan of a source VM, by name."""
        try:
            return self._by_name[vm]
        except KeyError:
            raise LabError(f"no VM {vm!r} in the lab (known: {', '.join(self._by_name)})") from None

    def seen_ips(self, vm: str) -> tuple[str, ...]:
        """Source addresses the destination sees for ``vm`` (empty: nothing arrives)."""
        return self.plan_of(vm).seen_ips

    def run_in(
        self,
        ns: str,
        argv: Sequence[str],
        timeout: float = 10,
        *,
        check: bool = False,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in namespace ``ns`` (a name from this lab), bounded by ``timeout`` seconds.

        Raises:
            LabError: ``ns`` is not one of this lab's namespaces, or ``check`` and it failed.
            subprocess.TimeoutExpired: it ran longer than ``timeout`` (the process is killed).
        """
        if ns not in self._namespaces:
            raise LabError(f"{ns!r} is not a namespace of this lab")
        done = subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            capture_output=True, text=True, timeout=timeout, input=input, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise LabError(f"in {ns}: {' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
        return done

    @contextmanager
    def background(
        self,
        argv: Sequence[str],
        *,
        ns: str | None = None,
        stop_signal: int = signal.SIGINT,
        stop_timeout: float = 10,
    ) -> Iterator[Background]:
        """Run ``argv`` in a namespace (default: the destination's) for the duration of the block.

        On exit it gets ``stop_signal`` (SIGINT, like Ctrl-C), then SIGTERM and SIGKILL if it
        has not exited within ``stop_timeout`` seconds each.  Output goes to files in the
        workdir (``Background.stdout`` / ``.stderr``), so a chatty capture cannot block.
        """
        ns = ns or self.dest_ns
        if ns not in self._namespaces:
            raise LabError(f"{ns!r} is not a namespace of this lab")
        n = next(self._bg_ids)
        out, err = self.workdir / f"bg-{n}.out", self.workdir / f"bg-{n}.err"
        with out.open("wb") as fo, err.open("wb") as fe:
            # `ip netns exec` execs the command, so the pid we signal is the command's own.
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
        bg = Background(proc=proc, stdout=out, stderr=err)
        self._background.append(bg)
        try:
            yield bg
        finally:
            _stop(bg, stop_signal, stop_timeout)
            self._background.remove(bg)

    def ssh_from(self, vm: str, command: str = "true", *, connect_timeout: int = 5, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """``ssh`` from a source VM to the destination with the lab's key, running ``command``."""
        return self.run_in(self.ns_of(vm), self._services().ssh_argv(command, connect_timeout), timeout)

    def curl_from(self, vm: str, path: str = "/", *, connect_timeout: int = 3, timeout: float = 15) -> HttpResult:
        """``curl http://<dest><path>`` from a source VM; the result holds status, ports and body."""
        argv = [
            "curl", "-sS", "--noproxy", "*", "--connect-timeout", str(connect_timeout),
            "--max-time", str(max(connect_timeout, int(timeout) - 2)), "-A", f"egresslens-lab/{vm}",
            "-w", "\n@@el %{http_code} %{local_port}", f"http://{self.topology.dest_ip}{path}",
        ]  # fmt: skip
        done = self.run_in(self.ns_of(vm), argv, timeout)
        body, _, tail = done.stdout.rpartition("\n@@el ")
        parts = tail.split()
        status = int(parts[0]) if parts and parts[0].isdigit() else 0
        port = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        return HttpResult(returncode=done.returncode, status=status, local_port=port, body=body, stderr=done.stderr)

    def counter(self, vm: str) -> int:
        """Packets of ``vm`` the edge has forwarded (or dropped, for ``none``) so far."""
        link = f"vm{self.plan_of(vm).index}"
        done = self.run_in(self.edge_ns, ["nft", "-j", "list", "counter", "ip", TABLE, link], check=True)
        for item in json.loads(done.stdout)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise LabError(f"no counter {link} in the edge")

    # -- paths of the destination's logs ---------------------------------------------------------

    @property
    def auth_log(self) -> Path:
        """sshd through rsyslog, traditional timestamps (``RSYSLOG_TraditionalFileFormat``)."""
        return self._services().auth_log

    @property
    def auth_log_rfc3339(self) -> Path:
        """The same messages with RFC 3339 timestamps (``RSYSLOG_FileFormat``)."""
        return self._services().auth_log_rfc3339

    @property
    def access_log(self) -> Path:
        """nginx, combined format."""
        return self._services().access_log

    def _services(self) -> Services:
        if self.services is None:
            raise LabError("this lab runs no services (Lab(..., services=True))")
        return self.services

    # -- helpers --------------------------------------------------------------------------------

    def _sh(self, *argv: str, input: str | None = None) -> None:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=15, input=input, check=False)
        if done.returncode != 0:
            raise LabError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")

    def _sysctl(self, ns: str, key: str, value: str) -> None:
        self._sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")

    def _no_offloads(self, ns: str, dev: str) -> None:
        # A capture on a veth otherwise sees 64 KB TSO super-packets and unfinished checksums;
        # a real NIC's capture does not.  Best effort: without ethtool the lab still works.
        if which("ethtool"):
            subprocess.run(
                ["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"],
                capture_output=True, timeout=10, check=False,
            )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResult:
    """What ``Lab.curl_from`` got."""

    returncode: int
    status: int
    """HTTP status, 0 when no response."""
    local_port: int | None
    """The source port the VM used (before any SNAT)."""
    body: str
    stderr: str


def _remove_namespace(ns: str) -> str | None:
    """Kill what runs in ``ns`` and delete it; the error text, or None when done (or already gone)."""
    if not Path("/run/netns", ns).exists():
        return None
    # Anything still running in a lab namespace is the lab's (a session child of sshd, a
    # command a test left behind): kill it by pid, or the namespace outlives its name.
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10, check=False)
    for pid in pids.stdout.split():
        with suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    deleted = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True, timeout=10, check=False)
    return f"ip netns del {ns}: {deleted.stderr.strip()}" if deleted.returncode != 0 else None


def _owner_file(prefix: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{prefix}.owner"


def _process_start(pid: int) -> str | None:
    """A live process's start time in clock ticks (field 22 of /proc/PID/stat), None if dead.

    pid + start time names one process even after pid reuse; a zombie counts as dead.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


_LAB_NS: Final = re.compile(r"^(el-[0-9a-f]{6})-(?:edge|dst|vm\d+)$")


def sweep_stale(only: Container[str] | None = None) -> list[str]:
    """Remove labs whose owner died without closing them (a killed pytest, a CI timeout).

    A lab is stale when its owner file names a process that no longer runs.  Labs without an
    owner file, or whose owner still runs, are left alone: they may be another run's.

    Args:
        only: Consider only these lab prefixes (``Lab.prefix``); default every lab.

    Returns:
        The namespaces removed.
    """
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    labs: dict[str, list[str]] = {}
    for line in listing.stdout.splitlines():
        if line.strip() and (m := _LAB_NS.match(line.split()[0])):
            labs.setdefault(m[1], []).append(m[0])
    removed = []
    for prefix, names in sorted(labs.items()):
        if only is not None and prefix not in only:
            continue
        try:
            pid, start = _owner_file(prefix).read_text().split()
        except (OSError, ValueError):
            continue
        if _process_start(int(pid)) == start:
            continue
        removed += [ns for ns in names if _remove_namespace(ns) is None]
        shutil.rmtree(Path(tempfile.gettempdir()) / f"{prefix}-lab", ignore_errors=True)
        _owner_file(prefix).unlink(missing_ok=True)
    return removed


def _stop(bg: Background, first: int = signal.SIGTERM, timeout: float = 10) -> None:
    for sig in dict.fromkeys((first, signal.SIGTERM, signal.SIGKILL)):
        if bg.proc.poll() is not None:
            break
        try:
            bg.proc.send_signal(sig)
        except ProcessLookupError:
            break
        try:
            bg.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
    bg.proc.wait(5)
    bg.returncode = bg.proc.returncode


def wait_for(predicate: Any, timeout: float = 5, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds pass; return its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


__all__ = [
    "DEFAULT_SNAT_RANGE",
    "DEST_IFACE",
    "DEST_IP",
    "EDGE_IP",
    "GATEWAY",
    "PUBLIC_NETS",
    "VM_PORTS",
    "Background",
    "EgressPlan",
    "HttpResult",
    "Lab",
    "LabEgress",
    "LabError",
    "SourceVm",
    "Topology",
    "nft_ruleset",
    "plan",
    "sweep_stale",
    "topology_from_dict",
    "topology_from_predictions",
    "unavailable",
    "wait_for",
    "which",
    "write_service_tags",
]
