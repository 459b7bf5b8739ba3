"""Write the sample captures in ``pcaps/`` and their expected records (``expected.json``).

Deterministic: fixed timestamps, fixed addresses from the documentation ranges
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 10.0.0.0/8, 2001:db8::/32), fixed TCP
sequence numbers, gzip members with mtime 0.  Run from anywhere::

    .venv/bin/python pcaps/make_pcaps.py          # rewrites pcaps/*.pcap* and expected.json

IP packets are built with scapy (so checksums and lengths are right); link-layer headers
(Ethernet + 802.1Q/QinQ, Linux SLL/SLL2, BSD null, NFLOG) are packed with ``struct`` so the
bytes are exactly the documented formats, and the multi-interface pcapng is written block by
block because scapy's pcapng writer gives every interface the same link type.

Expected records are bookkept while the packets are generated, not computed by a flow
algorithm: each ``Conn`` declares by hand who the originator is and what state, service and
application fields the record must have; packet and payload-byte counts per direction, the
first packet number, ``ts`` and ``duration`` are tallied from the packets as they are emitted.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import struct
import sys
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgWriter, PcapWriter

HERE = Path(__file__).resolve().parent

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_8021Q = 0x8100
ETH_8021AD = 0x88A8

MAC_CLIENT = bytes.fromhex("020000000001")  # locally administered
MAC_SERVER = bytes.fromhex("020000000002")


def epoch_ns(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    """Nanoseconds since the epoch of a UTC wall time."""
    t = dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)
    return int(t.timestamp()) * 1_000_000_000


# --- payloads ---------------------------------------------------------------------------

SSH_SERVER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
SSH_CLIENT = b"SSH-2.0-OpenSSH_9.6"


def kex_blob(size: int, seed: int) -> bytes:
    """Deterministic bytes standing in for an SSH binary packet (length-prefixed)."""
    body = bytes((seed * 31 + i * 7) & 0xFF for i in range(size - 4))
    return struct.pack("!I", size - 4) + body


def http_request(
    method: str, path: str, host: str, ua: str | None = None, xff: str | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if ua is not None:
        lines.append(f"User-Agent: {ua}")
    lines.append("Accept: */*")
    if xff is not None:
        lines.append(f"X-Forwarded-For: {xff}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def http_response(status: int, reason: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nServer: nginx/1.22.1\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def tls_client_hello(sni: str) -> bytes:
    """A minimal TLS 1.3 ClientHello record carrying a server_name extension."""
    name = sni.encode()
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    ext_sni = struct.pack("!HH", 0x0000, len(server_name)) + server_name
    versions = b"\x02\x03\x04"  # supported_versions: TLS 1.3
    ext_versions = struct.pack("!HH", 0x002B, len(versions)) + versions
    groups = b"\x00\x02\x00\x1d"  # supported_groups: x25519
    ext_groups = struct.pack("!HH", 0x000A, len(groups)) + groups
    extensions = ext_versions + ext_sni + ext_groups
    body = (
        b"\x03\x03"
        + bytes(range(32))  # client random
        + b"\x00"  # session id length
        + b"\x00\x04\x13\x01\x13\x02"  # cipher suites
        + b"\x01\x00"  # compression methods: null
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def tls_server_hello() -> bytes:
    body = b"\x03\x03" + bytes(range(32, 64)) + b"\x00" + b"\x13\x01" + b"\x00" + b"\x00\x00"
    handshake = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack("!H", len(handshake)) + handshake


def dns_query(qid: int, name: str) -> bytes:
    return bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=name)))


def dns_answer(qid: int, name: str, addr: str) -> bytes:
    return bytes(
        DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=addr))
    )


# --- frames and expectations ------------------------------------------------------------


@dataclass
class Frame:
    """One packet before link-layer framing."""

    ts_ns: int
    ethertype: int
    l3: bytes
    """IPv4/IPv6 packet, or the ARP body for ethertype 0x0806."""
    vlans: tuple[int, ...] = ()
    """802.1Q tags, outermost first (two tags: QinQ with an 802.1ad outer tag)."""
    snap: int | None = None
    """Cut the captured frame to this many bytes (snaplen); wire length stays whole."""
    iface: int = 0
    """pcapng interface id."""
    comment: str | None = None


@dataclass
class Expect:
    """One expected connection record, tallied as its packets are emitted."""

    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    proto: str
    service: str
    state: str
    ssh_client: str | None = None
    ssh_server: str | None = None
    http_method: str | None = None
    http_host: str | None = None
    http_path: str | None = None
    http_status: int | None = None
    http_user_agent: str | None = None
    http_xff: str | None = None
    note: str = ""
    first_packet: int = 0
    first_ns: int = 0
    last_ns: int = 0
    orig_pkts: int = 0
    resp_pkts: int = 0
    orig_bytes: int = 0
    resp_bytes: int = 0

    def tally(self, index: int, ts_ns: int, from_orig: bool, payload_len: int) -> None:
        if not self.first_packet:
            self.first_packet, self.first_ns = index, ts_ns
        self.last_ns = max(self.last_ns, ts_ns)
        if from_orig:
            self.orig_pkts += 1
            self.orig_bytes += payload_len
        else:
            self.resp_pkts += 1
            self.resp_bytes += payload_len

    def as_json(self, file_name: str) -> dict[str, Any]:
        ts = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=self.first_ns // 1000)
        return {
            "src_ip": self.src_ip,
            "src_port": self.src_port,
            "dst_ip": self.dst_ip,
            "dst_port": self.dst_port,
            "proto": self.proto,
            "service": self.service,
            "state": self.state,
            "ts": ts.isoformat(timespec="microseconds") + "Z",
            "ts_ns": self.first_ns,
            "duration_us": self.last_ns // 1000 - self.first_ns // 1000,
            "orig_pkts": self.orig_pkts,
            "resp_pkts": self.resp_pkts,
            "orig_bytes": self.orig_bytes,
            "resp_bytes": self.resp_bytes,
            "ssh_client": self.ssh_client,
            "ssh_server": self.ssh_server,
            "http_method": self.http_method,
            "http_host": self.http_host,
            "http_path": self.http_path,
            "http_status": self.http_status,
            "http_user_agent": self.http_user_agent,
            "http_xff": self.http_xff,
            "first_packet": self.first_packet,
            "origin": f"{file_name}#{self.first_packet}",
            "note": self.note,
        }


@dataclass
class Trace:
    """The packets of one file, in file order, with a clock and the expected outcome."""

    start_ns: int
    step_ns: int = 1_000_000
    """Default gap between packets (1 ms)."""
    frames: list[Frame] = field(default_factory=list)
    expects: list[Expect] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    other_ip: Counter[int] = field(default_factory=Counter)
    now: int = 0

    def __post_init__(self) -> None:
        self.now = self.start_ns

    def emit(self, ethertype: int, l3: bytes, *, gap_ns: int | None = None, **kw: Any) -> int:
        """Append a frame ``gap_ns`` after the previous one; return its 1-based number."""
        if self.frames:
            self.now += self.step_ns if gap_ns is None else gap_ns
        self.frames.append(Frame(self.now, ethertype, l3, **kw))
        self.stats["packets"] += 1
        return len(self.frames)

    def arp(self, **kw: Any) -> None:
        body = bytes(ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", pdst="10.0.0.254"))
        self.emit(ETH_ARP, body, **kw)
        self.stats["non_ip"] += 1

    def icmp_echo(self, src: str, dst: str, **kw: Any) -> None:
        if ":" in src:
            self.emit(ETH_IPV6, bytes(IPv6(src=src, dst=dst) / ICMPv6EchoRequest(id=7, seq=1)), **kw)
            self.other_ip[58] += 1
        else:
            self.emit(ETH_IPV4, bytes(IP(src=src, dst=dst) / ICMP(id=7, seq=1)), **kw)
            self.other_ip[1] += 1


def ip_layer(src: str, dst: str, ident: int, v6_ext: bool, ip_options: bool) -> Packet:
    if ":" in src:
        pkt: Packet = IPv6(src=src, dst=dst, hlim=64)
        if v6_ext:
            pkt = pkt / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
        return pkt
    if ip_options:
        return IP(src=src, dst=dst, id=ident, ttl=64, flags="DF", options=[IPOption_RR()])
    return IP(src=src, dst=dst, id=ident, ttl=64, flags="DF")


@dataclass
class Conn:
    """A TCP connection between a client and a server, packet by packet.

    ``orig_is_client`` says, by hand, whether the expected record's originator is the client
    (true whenever the client's SYN is in the capture or the rules infer it).
    """

    trace: Trace
    client: tuple[str, int]
    server: tuple[str, int]
    isn_client: int = 1000
    isn_server: int = 5000
    link: dict[str, Any] = field(default_factory=dict)
    """Extra ``Frame`` fields (vlans, iface) for every packet of this connection."""
    v6_ext: bool = False
    """IPv6 hop-by-hop and destination-options headers before TCP (client packets)."""
    timestamps: bool = False
    """TCP timestamp option on every segment (longer TCP header)."""
    seq: dict[bool, int] = field(default_factory=dict)
    ident: int = 1
    expect: Expect | None = None
    orig_is_client: bool = True

    def __post_init__(self) -> None:
        self.seq = {True: self.isn_client, False: self.isn_server}

    def record(self, service: str, state: str, *, orig_is_client: bool = True, **fields: Any) -> Expect:
        """Start the expected record that the next packets count into."""
        self.orig_is_client = orig_is_client
        a, b = (self.client, self.server) if orig_is_client else (self.server, self.client)
        self.expect = Expect(a[0], a[1], b[0], b[1], "tcp", service, state, **fields)
        self.trace.expects.append(self.expect)
        return self.expect

    def send(
        self,
        from_client: bool,
        flags: str,
        payload: bytes = b"",
        *,
        gap_ns: int | None = None,
        snap: int | None = None,
        pad: bool = True,
        ip_options: bool = False,
        comment: str | None = None,
    ) -> None:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        me, peer = from_client, not from_client
        options: list[Any] = []
        if "S" in flags:
            options = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
        if self.timestamps:
            options.append(("Timestamp", (100000 + self.ident, 0 if flags == "S" else 99)))
        ack = self.seq[peer] if "A" in flags else 0
        tcp = TCP(sport=src[1], dport=dst[1], seq=self.seq[me], ack=ack, flags=flags,
                  window=64240, options=options)  # fmt: skip
        ipl = ip_layer(src[0], dst[0], self.ident, self.v6_ext and from_client, ip_options)
        self.ident += 1
        pkt = ipl / tcp / Raw(payload) if payload else ipl / tcp
        raw = bytes(pkt)
        # SYN and FIN take one sequence number each.
        self.seq[me] += len(payload) + ("S" in flags) + ("F" in flags)
        ethertype = ETH_IPV6 if ":" in src[0] else ETH_IPV4
        index = self.trace.emit(ethertype, raw, gap_ns=gap_ns, snap=snap, comment=comment,
                                **self.link)  # fmt: skip
        self.trace.stats["tcp"] += 1
        assert self.expect is not None, "call record() before send()"
        self.expect.tally(index, self.trace.now, from_client == self.orig_is_client, len(payload))

    # Common sequences.
    def handshake(self) -> None:
        self.send(True, "S")
        self.send(False, "SA")
        self.send(True, "A")

    def close_client_first(self) -> None:
        self.send(True, "FA")
        self.send(False, "FA")
        self.send(True, "A")

    def close_server_first(self) -> None:
        self.send(False, "FA")
        self.send(True, "FA")
        self.send(False, "A")


@dataclass
class Udp:
    trace: Trace
    a: tuple[str, int]
    b: tuple[str, int]
    link: dict[str, Any] = field(default_factory=dict)
    expect: Expect | None = None

    def record(self, state: str, **fields: Any) -> None:
        self.expect = Expect(self.a[0], self.a[1], self.b[0], self.b[1], "udp", "other", state,
                             **fields)  # fmt: skip
        self.trace.expects.append(self.expect)

    def send(self, from_a: bool, payload: bytes, **kw: Any) -> None:
        src, dst = (self.a, self.b) if from_a else (self.b, self.a)
        if ":" in src[0]:
            raw = bytes(IPv6(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1]) / Raw(payload))
            ethertype = ETH_IPV6
        else:
            raw = bytes(IP(src=src[0], dst=dst[0], id=77) / UDP(sport=src[1], dport=dst[1])
                        / Raw(payload))  # fmt: skip
            ethertype = ETH_IPV4
        index = self.trace.emit(ethertype, raw, **kw, **self.link)
        self.trace.stats["udp"] += 1
        assert self.expect is not None
        self.expect.tally(index, self.trace.now, from_a, len(payload))


# --- link-layer framing -----------------------------------------------------------------


def ethernet(f: Frame, from_client: bool = True) -> bytes:
    dst, src = (MAC_SERVER, MAC_CLIENT) if from_client else (MAC_CLIENT, MAC_SERVER)
    head = dst + src
    tags = list(f.vlans)
    for i, vid in enumerate(tags):
        tpid = ETH_8021AD if (len(tags) == 2 and i == 0) else ETH_8021Q
        head += struct.pack("!HH", tpid, vid & 0x0FFF)
    frame = head + struct.pack("!H", f.ethertype) + f.l3
    # Ethernet pads frames to 60 bytes (without FCS): trailer bytes after the IP packet.
    return frame + b"\x00" * max(0, 60 - len(frame))


def linux_sll(f: Frame) -> bytes:
    """LINKTYPE_LINUX_SLL (113): 16-byte cooked header, all fields big-endian."""
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_CLIENT + b"\0\0", f.ethertype) + f.l3


def linux_sll2(f: Frame) -> bytes:
    """LINKTYPE_LINUX_SLL2 (276): protocol, reserved, ifindex, ARPHRD, pkttype, addrlen, addr."""
    return struct.pack("!HHIHBB8s", f.ethertype, 0, 2, 1, 0, 6, MAC_CLIENT + b"\0\0") + f.l3


def bsd_null(f: Frame, af: int, endian: str = "<") -> bytes:
    """LINKTYPE_NULL (0): 4-byte address family in the writing host's byte order."""
    return struct.pack(endian + "I", af) + f.l3


def nflog(f: Frame, *, extra_tlv_after_payload: bool = False) -> bytes:
    """LINKTYPE_NFLOG (239): nflog header, then TLVs whose length/type are host order (LE).

    Each TLV's length covers its 4-byte header and value; TLVs are padded to 4 bytes.
    The packet (NFULA_PAYLOAD, type 9) is one TLV among others, not necessarily the last.
    """
    family = 10 if f.ethertype == ETH_IPV6 else 2

    def tlv(kind: int, value: bytes) -> bytes:
        raw = struct.pack("<HH", 4 + len(value), kind) + value
        return raw + b"\0" * (-len(raw) % 4)

    body = struct.pack("!BBH", family, 0, 5)
    body += tlv(1, struct.pack("!HBB", f.ethertype, 1, 0))  # NFULA_PACKET_HDR
    body += tlv(10, b"egress-log: \0")  # NFULA_PREFIX, NUL-terminated, odd length
    body += tlv(4, struct.pack("!I", 2))  # NFULA_IFINDEX_INDEV
    body += tlv(9, f.l3)  # NFULA_PAYLOAD
    if extra_tlv_after_payload:
        body += tlv(11, struct.pack("!I", 1000))  # NFULA_UID
    return body


# --- writers ----------------------------------------------------------------------------


def write_pcap(
    path: Path,
    trace: Trace,
    linktype: int,
    frame_bytes: Any,
    *,
    endianness: str = "<",
    nano: bool = False,
    snaplen: int = 262144,
) -> None:
    """Write ``trace`` as classic pcap; ``frame_bytes(i, frame)`` gives the link-layer bytes."""
    w = PcapWriter(str(path), linktype=linktype, endianness=endianness, nano=nano, snaplen=snaplen,
                   sync=True)  # fmt: skip
    w.linktype = linktype  # scapy treats linktype 0 (BSD null) as "not given"
    w.write_header(None)  # write_packet() alone writes no global header
    for i, f in enumerate(trace.frames):
        data = frame_bytes(i, f)
        cut = data[: f.snap] if f.snap is not None else data
        sec, frac = divmod(f.ts_ns, 1_000_000_000)
        sub = frac if nano else frac // 1000
        w.write_packet(cut, sec=sec, usec=sub, wirelen=len(data))
    w.close()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip: no file name, mtime 0."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def pcapng_block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def pcapng_options(opts: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for code, value in opts:
        out += struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    return out + struct.pack("<HH", 0, 0)


# --- the files --------------------------------------------------------------------------


def build_ethernet_vlan() -> Trace:
    """Ethernet, untagged + 802.1Q + QinQ; ARP and ICMP; SSH, HTTP, TLS."""
    t = Trace(epoch_ns(2026, 1, 15, 10), step_ns=2_000_000)
    t.arp()
    ssh = Conn(t, ("203.0.113.10", 50022), ("192.0.2.20", 22), timestamps=True)
    ssh.record("ssh", "closed", ssh_client=SSH_CLIENT.decode(), ssh_server=SSH_SERVER.decode(),
               note="full SSH session: handshake, banners, key exchange, FIN both ways")  # fmt: skip
    ssh.handshake()
    ssh.send(False, "PA", SSH_SERVER + b"\r\n")
    ssh.send(True, "PA", SSH_CLIENT + b"\r\n")
    ssh.send(True, "PA", kex_blob(240, 1))
    ssh.send(False, "PA", kex_blob(320, 2))
    ssh.send(True, "A")
    http = Conn(t, ("198.51.100.7", 41000), ("192.0.2.20", 80), link={"vlans": (100,)})
    http.record("http", "closed", http_method="GET", http_host="www.example.com",
                http_path="/index.html?lang=en", http_status=200, http_user_agent="curl/8.5.0",
                http_xff="203.0.113.99", note="802.1Q VLAN 100; server closes first")  # fmt: skip
    http.handshake()
    http.send(True, "PA", http_request("GET", "/index.html?lang=en", "www.example.com",
                                       ua="curl/8.5.0", xff="203.0.113.99"))  # fmt: skip
    http.send(False, "A")
    http.send(False, "PA", http_response(200, "OK", b"Hello, world\n"))
    http.close_server_first()
    ssh.close_client_first()
    t.icmp_echo("198.51.100.7", "192.0.2.20", vlans=(100,))
    tls = Conn(t, ("198.51.100.8", 41001), ("192.0.2.20", 443), link={"vlans": (200, 100)})
    tls.record("https", "closed", http_host="www.example.com",
               note="QinQ (802.1ad 200 + 802.1Q 100); only the client's FIN is seen")  # fmt: skip
    tls.handshake()
    tls.send(True, "PA", tls_client_hello("www.example.com"))
    tls.send(False, "PA", tls_server_hello())
    tls.send(True, "A")
    tls.send(True, "FA")
    t.arp()
    return t


def build_ethernet_be() -> Trace:
    """Big-endian microsecond pcap, snaplen 256: SSH on port 80, HTTP on port 22."""
    t = Trace(epoch_ns(2026, 1, 15, 11), step_ns=1_500_000)
    ssh80 = Conn(t, ("198.51.100.9", 41100), ("192.0.2.21", 80))
    ssh80.record("ssh", "closed", ssh_client="SSH-2.0-PuTTY_Release_0.80",
                 ssh_server="SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
                 note="SSH on port 80; one 1200-byte server segment cut to 256 captured bytes")  # fmt: skip
    ssh80.handshake()
    ssh80.send(False, "PA", b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n")
    ssh80.send(True, "PA", b"SSH-2.0-PuTTY_Release_0.80\r\n")
    ssh80.send(False, "PA", kex_blob(1200, 3), snap=256)
    ssh80.send(True, "A")
    ssh80.close_client_first()
    http22 = Conn(t, ("198.51.100.10", 41200), ("192.0.2.21", 22), isn_client=7000)
    http22.record("http", "closed", http_method="POST", http_host="status.example.org",
                  http_path="/api/v1/ping", http_status=201,
                  http_user_agent="python-requests/2.31.0", note="HTTP on port 22")  # fmt: skip
    http22.handshake()
    http22.send(True, "PA", http_request("POST", "/api/v1/ping", "status.example.org",
                                         ua="python-requests/2.31.0"), ip_options=True)  # fmt: skip
    http22.send(False, "PA", http_response(201, "Created", b"{}"))
    http22.close_client_first()
    return t


def build_rawip_ns() -> Trace:
    """Raw IP (101), nanosecond LE: rejected SYN, unanswered SYN, IPv6 with ext headers, UDP."""
    t = Trace(epoch_ns(2026, 1, 15, 12) + 123_456_789, step_ns=250_000)
    rej = Conn(t, ("203.0.113.11", 50100), ("192.0.2.20", 8080))
    rej.record("other", "rejected", note="SYN answered by RST-ACK")
    rej.send(True, "S")
    rej.send(False, "RA")
    syn = Conn(t, ("203.0.113.12", 50200), ("192.0.2.20", 22))
    syn.record("other", "attempt", note="unanswered SYN, retransmitted once (same connection)")
    syn.send(True, "S")
    v6 = Conn(t, ("2001:db8:1::10", 41300), ("2001:db8:20::20", 80), v6_ext=True)
    v6.record("http", "closed", http_method="GET", http_host="v6.example.com", http_path="/",
              http_status=200, http_user_agent="Wget/1.21.3",
              note="IPv6; client packets carry hop-by-hop + destination options headers")  # fmt: skip
    v6.handshake()
    v6.send(True, "PA", http_request("GET", "/", "v6.example.com", ua="Wget/1.21.3"))
    v6.send(False, "PA", http_response(200, "OK", b"<html></html>\n"))
    syn.seq[True] -= 1  # a retransmission repeats the SYN's sequence number
    syn.send(True, "S", gap_ns=1_000_000_000)
    v6.close_client_first()
    dns = Udp(t, ("2001:db8:1::10", 53000), ("2001:db8:20::53", 53))
    dns.record("established", note="IPv6 UDP query and answer")
    dns.send(True, dns_query(0x1234, "www.example.com."))
    dns.send(False, dns_answer(0x1234, "www.example.com.", "192.0.2.80"))
    t.icmp_echo("2001:db8:1::10", "2001:db8:20::20")
    return t


def build_sll_ns_be() -> Trace:
    """Linux SLL (113), nanosecond BE: a reused 4-tuple and a reset connection."""
    t = Trace(epoch_ns(2026, 1, 15, 13) + 999_999_001, step_ns=3_000_000)
    first = Conn(t, ("203.0.113.13", 50300), ("192.0.2.20", 22))
    first.record("ssh", "closed", ssh_client=SSH_CLIENT.decode(), ssh_server=SSH_SERVER.decode(),
                 note="first use of the 4-tuple")  # fmt: skip
    first.handshake()
    first.send(False, "PA", SSH_SERVER + b"\r\n")
    first.send(True, "PA", SSH_CLIENT + b"\r\n")
    first.close_server_first()
    t.arp()
    # Same 4-tuple again after the close: a new connection with a new ISN.
    again = Conn(t, ("203.0.113.13", 50300), ("192.0.2.20", 22), isn_client=900_000,
                 isn_server=700_000)  # fmt: skip
    again.record("ssh", "established", ssh_client="SSH-2.0-OpenSSH_9.6",
                 ssh_server=SSH_SERVER.decode(),
                 note="4-tuple reused after FIN/FIN: new SYN, new connection, never closed")  # fmt: skip
    again.handshake()
    again.send(False, "PA", SSH_SERVER + b"\r\n")
    again.send(True, "PA", SSH_CLIENT + b"\r\n")
    again.send(True, "PA", kex_blob(96, 4))
    again.send(False, "A")
    rst = Conn(t, ("203.0.113.14", 50400), ("192.0.2.20", 80))
    rst.record("http", "reset", http_method="GET", http_host="www.example.com",
               http_path="/admin", http_user_agent="Mozilla/5.0 (X11; Linux x86_64)",
               note="server resets after the request; no response")  # fmt: skip
    rst.handshake()
    rst.send(True, "PA", http_request("GET", "/admin", "www.example.com",
                                      ua="Mozilla/5.0 (X11; Linux x86_64)"))  # fmt: skip
    rst.send(False, "R")
    return t


def build_sll2() -> Trace:
    """Linux SLL2 (276): connections that began before the capture, and one-way UDP."""
    t = Trace(epoch_ns(2026, 1, 15, 14), step_ns=10_000_000)
    mid = Conn(t, ("10.1.2.3", 52000), ("192.0.2.30", 22), isn_client=40000, isn_server=80000)
    mid.record("other", "partial",
               note="mid-stream, no SYN/FIN; first packet from port 22: lower port is responder")  # fmt: skip
    mid.send(False, "PA", kex_blob(64, 5))
    mid.send(True, "A")
    mid.send(True, "PA", kex_blob(48, 6))
    sa = Conn(t, ("10.1.2.4", 40000), ("192.0.2.31", 50505))
    sa.record("ssh", "partial", ssh_client="SSH-2.0-PuTTY_Release_0.80",
              ssh_server="SSH-2.0-dropbear_2022.83",
              note="capture starts at the SYN-ACK: its sender is the responder "
                   "even though its port is higher")  # fmt: skip
    sa.send(False, "SA")
    sa.send(True, "A")
    sa.send(False, "PA", b"SSH-2.0-dropbear_2022.83\r\n")
    sa.send(True, "PA", b"SSH-2.0-PuTTY_Release_0.80\r\n")
    mid.send(False, "PA", kex_blob(64, 7))
    eq = Conn(t, ("2001:db8:7::7", 7000), ("2001:db8:7::8", 7000))
    eq.record("other", "partial", note="IPv6, equal ports: first packet's sender is originator")
    eq.send(True, "PA", b"ping\n")
    eq.send(False, "PA", b"pong\n")
    ntp = Udp(t, ("10.0.0.9", 123), ("192.0.2.123", 123))
    ntp.record("attempt", note="one-way UDP")
    ntp.send(True, b"\x23" + b"\0" * 47)
    ntp.send(True, b"\x23" + b"\0" * 47, gap_ns=1_000_000_000)
    return t


def build_loopback() -> tuple[Trace, list[int]]:
    """BSD null (0): AF_INET 2 and the three AF_INET6 values 24 / 28 / 30."""
    t = Trace(epoch_ns(2026, 1, 15, 15), step_ns=500_000)
    afs: list[int] = []

    def mark(af: int) -> None:
        while len(afs) < len(t.frames):
            afs.append(af)

    http = Conn(t, ("10.0.0.1", 43000), ("10.0.0.2", 8080))
    http.record("http", "closed", http_method="GET", http_host="localhost:8080",
                http_path="/health", http_status=200, http_user_agent="curl/7.88.1",
                note="AF_INET (2)")  # fmt: skip
    http.handshake()
    http.send(True, "PA", http_request("GET", "/health", "localhost:8080", ua="curl/7.88.1"))
    http.send(False, "PA", http_response(200, "OK", b"ok\n"))
    http.close_client_first()
    mark(2)
    ssh = Conn(t, ("2001:db8::1", 44000), ("2001:db8::2", 22))
    ssh.record("ssh", "established", ssh_client=SSH_CLIENT.decode(),
               ssh_server=SSH_SERVER.decode(), note="AF_INET6 = 30 (macOS)")  # fmt: skip
    ssh.handshake()
    ssh.send(False, "PA", SSH_SERVER + b"\r\n")
    ssh.send(True, "PA", SSH_CLIENT + b"\r\n")
    mark(30)
    dns = Udp(t, ("2001:db8::1", 5353), ("2001:db8::2", 53))
    dns.record("established", note="AF_INET6 = 28 (FreeBSD)")
    dns.send(True, dns_query(7, "example.org."))
    dns.send(False, dns_answer(7, "example.org.", "192.0.2.7"))
    mark(28)
    syn = Conn(t, ("2001:db8::1", 44001), ("2001:db8::2", 443))
    syn.record("other", "attempt", note="AF_INET6 = 24 (NetBSD/OpenBSD)")
    syn.send(True, "S")
    mark(24)
    return t, afs


def build_nflog() -> Trace:
    """NFLOG (239): IPv4 and IPv6 inside TLVs."""
    t = Trace(epoch_ns(2026, 1, 15, 16), step_ns=700_000)
    ssh = Conn(t, ("203.0.113.20", 50600), ("192.0.2.20", 22))
    ssh.record("ssh", "established", ssh_client="SSH-2.0-Go", ssh_server=SSH_SERVER.decode(),
               note="established, never closed")  # fmt: skip
    ssh.handshake()
    ssh.send(False, "PA", SSH_SERVER + b"\r\n")
    ssh.send(True, "PA", b"SSH-2.0-Go\r\n")
    tls = Conn(t, ("2001:db8:1::20", 41400), ("2001:db8:20::20", 443))
    tls.record("https", "reset", http_host="api.example.net",
               note="IPv6 (nflog family 10); client resets after the ServerHello")  # fmt: skip
    tls.handshake()
    tls.send(True, "PA", tls_client_hello("api.example.net"))
    tls.send(False, "PA", tls_server_hello())
    tls.send(True, "RA")
    return t


def build_multi_iface() -> Trace:
    """pcapng, three interfaces: Ethernet (us), raw IP (ns, if_tsresol=9), SLL (ms, =3)."""
    t = Trace(epoch_ns(2026, 1, 15, 17), step_ns=4_000_000)
    http = Conn(t, ("198.51.100.30", 41500), ("192.0.2.20", 80), link={"iface": 0})
    http.record("http", "closed", http_method="GET", http_host="www.example.com",
                http_path="/login", http_status=302, http_user_agent="Mozilla/5.0",
                http_xff="203.0.113.99, 10.0.0.1", note="interface 0: Ethernet")  # fmt: skip
    http.handshake()
    tls = Conn(t, ("10.2.0.5", 41600), ("192.0.2.40", 443), link={"iface": 1})
    tls.record("https", "closed", http_host="api.example.net",
               note="interface 1: raw IP, nanosecond timestamps")  # fmt: skip
    tls.handshake()
    http.send(True, "PA", http_request("GET", "/login", "www.example.com", ua="Mozilla/5.0",
                                       xff="203.0.113.99, 10.0.0.1"),
              comment="request with a two-hop X-Forwarded-For")  # fmt: skip
    tls.send(True, "PA", tls_client_hello("api.example.net"))
    http.send(False, "PA", http_response(302, "Found", b""))
    tls.send(False, "PA", tls_server_hello())
    t.icmp_echo("198.51.100.30", "192.0.2.20", iface=0)
    rej = Conn(t, ("2001:db8:1::30", 41700), ("2001:db8:20::20", 22), link={"iface": 2})
    rej.record("other", "rejected", note="interface 2: Linux SLL, millisecond timestamps")
    # Millisecond interface: keep this connection's times on whole milliseconds.
    rej.send(True, "S", gap_ns=1_000_000_000 - t.now % 1_000_000)
    rej.send(False, "RA", gap_ns=2_000_000)
    http.close_server_first()
    tls.close_client_first()
    return t


def build_scapy_pcapng() -> Trace:
    """pcapng by scapy's PcapNgWriter (one Ethernet interface): UDP flow and a reset SSH."""
    t = Trace(epoch_ns(2026, 1, 15, 18), step_ns=1_000_000)
    dns = Udp(t, ("10.0.0.5", 53001), ("192.0.2.53", 53))
    dns.record("established", note="two queries and two answers, one 5-tuple")
    dns.send(True, dns_query(1, "a.example.com."))
    dns.send(False, dns_answer(1, "a.example.com.", "192.0.2.1"))
    ssh = Conn(t, ("203.0.113.25", 50700), ("192.0.2.20", 22))
    ssh.record("ssh", "reset", ssh_client="SSH-2.0-paramiko_3.4.0",
               ssh_server=SSH_SERVER.decode(), note="client resets after the banners")  # fmt: skip
    ssh.handshake()
    ssh.send(False, "PA", SSH_SERVER + b"\r\n")
    dns.send(True, dns_query(2, "b.example.com."))
    ssh.send(True, "PA", b"SSH-2.0-paramiko_3.4.0\r\n")
    dns.send(False, dns_answer(2, "b.example.com.", "192.0.2.2"))
    ssh.send(True, "RA")
    return t


def build_gz_pcap() -> Trace:
    """A plain microsecond pcap, gzip-compressed."""
    t = Trace(epoch_ns(2026, 1, 15, 19), step_ns=5_000_000)
    http = Conn(t, ("203.0.113.40", 50800), ("192.0.2.20", 80))
    http.record("http", "closed", http_method="HEAD", http_host="www.example.com",
                http_path="/missing", http_status=404, http_user_agent="Mozilla/5.0",
                http_xff="198.51.100.200", note="404 answer")  # fmt: skip
    http.handshake()
    http.send(True, "PA", http_request("HEAD", "/missing", "www.example.com", ua="Mozilla/5.0",
                                       xff="198.51.100.200"))  # fmt: skip
    http.send(False, "PA", http_response(404, "Not Found", b""))
    http.close_client_first()
    ssh = Conn(t, ("203.0.113.41", 50900), ("192.0.2.20", 22))
    ssh.record("ssh", "closed", ssh_client=SSH_CLIENT.decode(), ssh_server=SSH_SERVER.decode())
    ssh.handshake()
    ssh.send(False, "PA", SSH_SERVER + b"\r\n")
    ssh.send(True, "PA", SSH_CLIENT + b"\r\n")
    ssh.close_client_first()
    return t


def write_multi_iface(path: Path, t: Trace) -> None:
    """pcapng with three interfaces of different link types, written block by block."""
    shb_opts = pcapng_options([(4, b"egresslens pcaps/make_pcaps.py")])  # shb_userappl
    shb = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    idbs = [
        (1, [(2, b"eth0")]),  # Ethernet, default resolution (microseconds)
        (101, [(2, b"tun0"), (9, b"\x09")]),  # raw IP, if_tsresol = 10^-9
        (113, [(2, b"any"), (9, b"\x03")]),  # Linux SLL, if_tsresol = 10^-3
    ]
    units = {0: 1000, 1: 1, 2: 1_000_000}  # ns per timestamp unit
    out = bytearray(shb)
    for linktype, opts in idbs:
        out += pcapng_block(1, struct.pack("<HHI", linktype, 0, 262144) + pcapng_options(opts))
    # A Name Resolution Block between packets, as Wireshark writes them; readers skip it.
    nrb = struct.pack("<HH", 1, 4 + 16) + bytes([192, 0, 2, 20]) + b"www.example.com\0"
    nrb += struct.pack("<HH", 0, 0)
    for i, f in enumerate(t.frames):
        if f.iface == 0:
            data = ethernet(f)
        elif f.iface == 1:
            data = f.l3
        else:
            data = linux_sll(f)
        ts = f.ts_ns // units[f.iface]
        assert ts * units[f.iface] == f.ts_ns, "timestamp not representable on its interface"
        body = struct.pack("<IIIII", f.iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        body += data + b"\0" * (-len(data) % 4)
        if f.comment:
            body += pcapng_options([(1, f.comment.encode())])
        out += pcapng_block(6, body)
        if i == 1:
            out += pcapng_block(4, nrb)
    # Interface Statistics Blocks at the end, as dumpcap writes them.
    for iface in range(len(idbs)):
        ts = t.now // units[iface]
        out += pcapng_block(5, struct.pack("<III", iface, ts >> 32, ts & 0xFFFFFFFF)
                            + pcapng_options([(4, struct.pack("<Q", 0))]))  # fmt: skip
    path.write_bytes(bytes(out))


def write_scapy_pcapng(t: Trace) -> bytes:
    buf = HERE / ".tmp_scapy.pcapng"
    w = PcapNgWriter(str(buf))
    for f in t.frames:
        pkt = Ether(ethernet(f))
        pkt.time = Decimal(f.ts_ns) / Decimal(1_000_000_000)
        w.write(pkt)
    w.close()
    data = buf.read_bytes()
    buf.unlink()
    return data


def pcap_bytes(t: Trace, linktype: int, frame_bytes: Any, **kw: Any) -> bytes:
    path = HERE / ".tmp.pcap"
    write_pcap(path, t, linktype, frame_bytes, **kw)
    data = path.read_bytes()
    path.unlink()
    return data


def stats_json(t: Trace) -> dict[str, Any]:
    return {
        "packets": t.stats["packets"],
        "tcp": t.stats["tcp"],
        "udp": t.stats["udp"],
        "non_ip": t.stats["non_ip"],
        "other_ip": {str(k): v for k, v in sorted(t.other_ip.items())},
        "fragments": 0,
        "malformed": 0,
        "unsupported_linktype": {},
    }


def main() -> None:
    files: dict[str, dict[str, Any]] = {}

    def done(name: str, t: Trace, fmt: str, linktypes: list[int], ts_resolution: str,
             description: str) -> None:  # fmt: skip
        files[name] = {
            "description": description,
            "format": fmt,
            "linktypes": linktypes,
            "ts_resolution": ts_resolution,
            "stats": stats_json(t),
            "records": [e.as_json(name) for e in sorted(t.expects, key=lambda e: e.first_packet)],
        }

    t = build_ethernet_vlan()
    write_pcap(HERE / "ethernet_vlan.pcap", t, 1, lambda i, f: ethernet(f))
    done("ethernet_vlan.pcap", t, "pcap", [1], "us",
         "pcap, microsecond, little-endian; Ethernet untagged, 802.1Q and QinQ; ARP, ICMP")  # fmt: skip

    t = build_ethernet_be()
    write_pcap(HERE / "ethernet_be.pcap", t, 1, lambda i, f: ethernet(f), endianness=">",
               snaplen=256)  # fmt: skip
    done("ethernet_be.pcap", t, "pcap", [1], "us",
         "pcap, microsecond, big-endian, snaplen 256; SSH on port 80, HTTP on port 22 "
         "(IPv4 options on one packet)")  # fmt: skip

    t = build_rawip_ns()
    write_pcap(HERE / "rawip_ns_le.pcap", t, 101, lambda i, f: f.l3, nano=True)
    done("rawip_ns_le.pcap", t, "pcap", [101], "ns",
         "pcap, nanosecond, little-endian; raw IP v4 and v6, IPv6 extension headers")  # fmt: skip

    t = build_sll_ns_be()
    write_pcap(HERE / "sll_ns_be.pcap", t, 113, lambda i, f: linux_sll(f), endianness=">",
               nano=True)  # fmt: skip
    done("sll_ns_be.pcap", t, "pcap", [113], "ns",
         "pcap, nanosecond, big-endian; Linux cooked SLL; reused 4-tuple, reset")  # fmt: skip

    t = build_sll2()
    write_pcap(HERE / "sll2.pcap", t, 276, lambda i, f: linux_sll2(f))
    done("sll2.pcap", t, "pcap", [276], "us",
         "pcap, microsecond, little-endian; Linux SLL2; connections without SYN, one-way UDP")  # fmt: skip

    t, afs = build_loopback()
    write_pcap(HERE / "loopback_null.pcap", t, 0, lambda i, f: bsd_null(f, afs[i]))
    done("loopback_null.pcap", t, "pcap", [0], "us",
         "pcap, microsecond, little-endian; BSD null/loopback with AF 2, 30, 28, 24")  # fmt: skip

    t = build_nflog()
    write_pcap(HERE / "nflog.pcap", t, 239,
               lambda i, f: nflog(f, extra_tlv_after_payload=i % 2 == 1))  # fmt: skip
    done("nflog.pcap", t, "pcap", [239], "us",
         "pcap, microsecond, little-endian; NFLOG with IPv4 and IPv6")  # fmt: skip

    t = build_multi_iface()
    write_multi_iface(HERE / "multi_iface.pcapng", t)
    done("multi_iface.pcapng", t, "pcapng", [1, 101, 113], "us/ns/ms by interface",
         "pcapng written block by block: 3 interfaces (Ethernet us, raw IP ns, SLL ms), "
         "a Name Resolution Block, a packet comment, Interface Statistics Blocks")  # fmt: skip

    t = build_scapy_pcapng()
    (HERE / "scapy_writer.pcapng.gz").write_bytes(gzip_bytes(write_scapy_pcapng(t)))
    done("scapy_writer.pcapng.gz", t, "pcapng+gzip", [1], "us",
         "pcapng by scapy's PcapNgWriter (Ethernet), gzip-compressed")  # fmt: skip

    t = build_gz_pcap()
    (HERE / "ethernet.pcap.gz").write_bytes(gzip_bytes(pcap_bytes(t, 1, lambda i, f: ethernet(f))))
    done("ethernet.pcap.gz", t, "pcap+gzip", [1], "us",
         "pcap, microsecond, little-endian, Ethernet, gzip-compressed")  # fmt: skip

    doc = {
        "_about": "Hand-declared expectations for pcaps/*; written by pcaps/make_pcaps.py. "
        "See pcaps/README.md.",
        "files": files,
    }
    (HERE / "expected.json").write_text(json.dumps(doc, indent=2) + "\n")
    total = sum(len(v["records"]) for v in files.values())
    print(f"wrote {len(files)} captures, {total} expected records", file=sys.stderr)


def tables(expected: Path) -> str:
    """The README's per-file tables, from ``expected.json`` (``make_pcaps.py --tables``)."""
    doc = json.loads(expected.read_text())
    out = []
    for name, spec in doc["files"].items():
        st = spec["stats"]
        skipped = [f"{st['non_ip']} non-IP"] if st["non_ip"] else []
        skipped += [f"{n} IP proto {p}" for p, n in st["other_ip"].items()]
        out.append(f"### `{name}`\n\n{spec['description']}. {st['packets']} packets "
                   f"({st['tcp']} TCP, {st['udp']} UDP"
                   + (f"; counted, not recorded: {', '.join(skipped)}" if skipped else "")
                   + ").\n")  # fmt: skip
        out.append("| pkt# | originator -> responder | proto | service | state | "
                   "pkts o/r | bytes o/r | duration | ssh client / server | http | note |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in spec["records"]:
            def ep(ip: str, port: int) -> str:
                return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            ssh = f"{r['ssh_client']} / {r['ssh_server']}" if r["ssh_client"] else ""
            http = " ".join(
                f"{k.removeprefix('http_')}={r[k]}" for k in (
                    "http_method", "http_host", "http_path", "http_status",
                    "http_user_agent", "http_xff",
                ) if r[k] is not None
            )  # fmt: skip
            out.append(
                f"| {r['first_packet']} | {ep(r['src_ip'], r['src_port'])} -> "
                f"{ep(r['dst_ip'], r['dst_port'])} | {r['proto']} | {r['service']} | "
                f"{r['state']} | {r['orig_pkts']}/{r['resp_pkts']} | "
                f"{r['orig_bytes']}/{r['resp_bytes']} | {r['duration_us'] / 1e6:g} s | {ssh} | "
                f"{http} | {r['note']} |"
            )
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["--tables"]:
        print(tables(HERE / "expected.json"))
    else:
        main()
