"""One decoded packet, the seam between packet sources and the connection builder.

Backends that decode packet by packet (scapy, tshark via pyshark, live capture) yield
``PacketRecord``s and feed them to ``capture.flows.FlowTable``; the fast path builds the
same connections from vectorized columns (``capture.fastpath``).  Tests check that both
routes give identical records.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

TCP: Final = 6
UDP: Final = 17

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10

PAYLOAD_HEAD: Final = 4096
"""Bytes of a connection's first payload kept per direction for banner / HTTP / SNI parsing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketRecord:
    """The transport-level facts of one TCP or UDP packet."""

    index: int
    """1-based packet number in its file (``file#index`` in ``origin``)."""
    ts_ns: int
    """Capture time, nanoseconds since the Unix epoch (UTC)."""
    src: str
    """Source address, canonical text (``ipaddress``'s ``str``)."""
    dst: str
    """Destination address, canonical text."""
    sport: int
    dport: int
    proto: int
    """IP protocol number: 6 (TCP) or 17 (UDP)."""
    flags: int
    """TCP flag bits (FIN 0x01 ... CWR 0x80); 0 for UDP."""
    payload_len: int
    """Transport payload length from the IP/TCP headers (not what the snaplen kept)."""
    payload: bytes
    """The first ``PAYLOAD_HEAD`` captured payload bytes (may be shorter than payload_len)."""


@dataclass(slots=True)
class DecodeStats:
    """What a reader saw that did not become a TCP/UDP packet: counted, never silently lost."""

    packets: int = 0
    tcp: int = 0
    udp: int = 0
    non_ip: int = 0
    """Packets of a supported link type that carried no IPv4/IPv6 (ARP, LLDP, ...)."""
    other_ip: Counter[int] = field(default_factory=Counter)
    """IP packets of other protocols (ICMP, ESP, ...), by protocol number."""
    fragments: int = 0
    """Non-first IP fragments (no transport header to read)."""
    malformed: int = 0
    """Packets too short for the headers they announce (snaplen cut, bad header length)."""
    unsupported_linktype: Counter[int] = field(default_factory=Counter)
    filtered: int = 0
    """Packets a --bpf filter left out."""

    def merge(self, other: DecodeStats) -> None:
        """Add ``other``'s counts to these."""
        self.packets += other.packets
        self.tcp += other.tcp
        self.udp += other.udp
        self.non_ip += other.non_ip
        self.other_ip.update(other.other_ip)
        self.fragments += other.fragments
        self.malformed += other.malformed
        self.unsupported_linktype.update(other.unsupported_linktype)
        self.filtered += other.filtered

    def notes(self, name: str) -> list[str]:
        """Human-readable lines for what was skipped in file ``name``."""
        out = []
        for lt, n in sorted(self.unsupported_linktype.items()):
            out.append(f"{name}: {n:,} packets of unsupported link type {lt} skipped")
        if self.non_ip:
            out.append(f"{name}: {self.non_ip:,} non-IP packets skipped")
        for proto, n in sorted(self.other_ip.items()):
            out.append(f"{name}: {n:,} IP packets of protocol {proto} (not TCP/UDP) skipped")
        if self.fragments:
            out.append(f"{name}: {self.fragments:,} non-first IP fragments skipped")
        if self.malformed:
            out.append(f"{name}: {self.malformed:,} packets too short for their headers skipped")
        return out


def ip_text(v6: bool, hi: int, lo: int) -> str:
    """Canonical text of an address in (hi, lo) integer form (RFC 5952).

    IPv4-mapped IPv6 addresses keep the dotted quad (``::ffff:192.0.2.1``), as RFC 5952
    section 5 recommends and as tshark and scapy print them.
    """
    if not v6:
        return str(ipaddress.IPv4Address(lo))
    if hi == 0 and lo >> 32 == 0xFFFF:
        return f"::ffff:{ipaddress.IPv4Address(lo & 0xFFFFFFFF)}"
    return str(ipaddress.IPv6Address((hi << 64) | lo))
