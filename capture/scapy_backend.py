"""Reference backend: a plain scapy decode of every packet, fed to ``FlowTable``.

Slow (scapy dissects each packet into objects) but independent of the fast path's
vectorized header arithmetic, which tests compare against it.  scapy is imported only when
this backend is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from capture.errors import CorruptCapture, NotACapture
from capture.packets import PAYLOAD_HEAD, TCP, UDP, DecodeStats, PacketRecord
from capture.pcapfile import display_name


def _nflog_inner(data: bytes) -> tuple[int, bytes] | None:
    """(address family, IP packet) from an NFLOG frame (scapy has no NFLOG layer)."""
    if len(data) < 4:
        return None
    pos = 4
    while pos + 4 <= len(data):
        length = int.from_bytes(data[pos : pos + 2], "little")
        tlv_type = int.from_bytes(data[pos + 2 : pos + 4], "little") & 0x7FFF
        if length < 4:
            return None
        if tlv_type == 9:
            return data[0], data[pos + 4 : pos + length]
        pos += length + (-length % 4)
    return None


def _dissect(layer: Any, data: bytes) -> Any:
    """``layer(data)``, or None when scapy gives up on a frame shorter than its headers."""
    try:
        return layer(data)
    except Exception:  # scapy raises struct.error, IndexError, ... on short input
        return None


def iter_packets(
    path: str, stats: DecodeStats, *, bpf: Any = None
) -> Iterator[PacketRecord]:
    """Decode ``path`` with scapy's readers and layers, one ``PacketRecord`` per TCP/UDP packet.

    Args:
        path: a pcap / pcapng file (gzip allowed).
        stats: counters for what is not TCP/UDP.
        bpf: an optional ``capture.bpf.Filter``.
    """
    from scapy.all import conf  # noqa: F401  (binds every layer, see docs/formats.md §3)
    from scapy.error import Scapy_Exception
    from scapy.layers.inet import IP
    from scapy.layers.inet import TCP as ScapyTCP
    from scapy.layers.inet import UDP as ScapyUDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.layers.ipsec import AH
    from scapy.utils import RawPcapNgReader, RawPcapReader

    name = display_name(path)
    try:
        reader: Any = RawPcapReader(path)
    except Scapy_Exception as exc:
        raise NotACapture(f"{name}: scapy cannot read it: {exc}") from exc
    try:
        index = 0
        while True:
            try:
                item = reader._read_packet()
            except EOFError:
                break
            except Scapy_Exception as exc:
                raise CorruptCapture(f"{name}: packet {index + 1}: {exc}") from exc
            index += 1
            data, meta = item
            if isinstance(reader, RawPcapNgReader):
                linktype = meta.linktype
                # A Simple Packet Block has no time (None): 0, as the fast path gives it.
                ticks = ((meta.tshigh or 0) << 32) | (meta.tslow or 0)
                ts_ns = ticks * 1_000_000_000 // meta.tsresol
            else:
                linktype = reader.linktype
                ts_ns = meta.sec * 1_000_000_000 + meta.usec * (1 if reader.nano else 1_000)
            if not -(1 << 63) <= ts_ns < 1 << 63:  # the fast path's bound (pcapfile._TS_MAX)
                raise CorruptCapture(
                    f"{name}: packet {index:,} has a timestamp outside the years 1678-2262; "
                    "corrupt file, stopped"
                )
            stats.packets += 1
            if bpf is not None and not bpf.matches(linktype, data, meta.wirelen):
                stats.filtered += 1
                continue
            if linktype in (0, 108):
                # scapy's Loopback layer knows only some BSDs' AF_INET6 values.
                if len(data) < 4:
                    stats.malformed += 1
                    continue
                family = int.from_bytes(data[:4], "big")
                if linktype == 0 and family >= 256:
                    family = int.from_bytes(data[:4], "little")
                if family not in (2, 24, 28, 30):
                    stats.non_ip += 1
                    continue
                pkt = _dissect(IP if family == 2 else IPv6, data[4:])
            elif linktype == 239:
                inner = _nflog_inner(data)
                if inner is None:
                    stats.malformed += 1
                    continue
                family, ipdata = inner
                if family not in (2, 10):
                    stats.non_ip += 1
                    continue
                pkt = _dissect(IP if family == 2 else IPv6, ipdata)
            else:
                cls = conf.l2types.get(linktype & 0xFFFF)
                if cls is None:
                    stats.unsupported_linktype[linktype] += 1
                    continue
                pkt = _dissect(cls, data)
            if pkt is None:
                stats.malformed += 1
                continue
            ip = pkt.getlayer(IP)
            ip6 = pkt.getlayer(IPv6)
            layer = ip if ip is not None else ip6
            if layer is None:
                stats.non_ip += 1
                continue
            if ip is not None:
                if ip.frag:
                    stats.fragments += 1
                    continue
                proto = ip.proto
                l4_len = (ip.len - ip.ihl * 4) if ip.len else len(bytes(ip.payload))
            else:
                frag = ip6.getlayer(IPv6ExtHdrFragment)
                if frag is not None and frag.offset:
                    stats.fragments += 1
                    continue
                transport = ip6.getlayer(ScapyTCP) or ip6.getlayer(ScapyUDP)
                ah = ip6.getlayer(AH)
                if transport is None and ah is not None and ah.nh in (TCP, UDP):
                    # scapy leaves what follows an AH header undissected
                    inner = _dissect(ScapyTCP if ah.nh == TCP else ScapyUDP, bytes(ah.payload))
                    if inner is None:
                        stats.malformed += 1
                        continue
                    ah.payload = transport = inner
                if transport is None:
                    # the protocol after the extension headers, not the first next header
                    proto = ip6.nh
                    layer6 = ip6.payload
                    while hasattr(layer6, "nh") and layer6.name.startswith(("IPv6 Extension", "AH")):
                        proto = layer6.nh
                        layer6 = layer6.payload
                else:
                    proto = TCP if transport.name == "TCP" else UDP
                ext = len(bytes(ip6.payload)) - (len(bytes(transport)) if transport else 0)
                l4_len = (ip6.plen - ext) if ip6.plen else len(bytes(ip6.payload)) - ext
            if proto == TCP:
                seg = layer.getlayer(ScapyTCP)
                if seg is None:
                    stats.malformed += 1
                    continue
                hdr = seg.dataofs * 4
                flags = int(seg.flags)
            elif proto == UDP:
                seg = layer.getlayer(ScapyUDP)
                if seg is None:
                    stats.malformed += 1
                    continue
                hdr = 8
                flags = 0
            else:
                stats.other_ip[proto] += 1
                continue
            if proto == TCP and hdr < 20:
                stats.malformed += 1
                continue
            payload_len = max((seg.len - 8) if proto == UDP else l4_len - hdr, 0)
            raw = bytes(seg)
            if proto == TCP:
                stats.tcp += 1
            else:
                stats.udp += 1
            yield PacketRecord(
                index=index,
                ts_ns=ts_ns,
                src=layer.src,
                dst=layer.dst,
                sport=seg.sport,
                dport=seg.dport,
                proto=proto,
                flags=flags,
                payload_len=payload_len,
                payload=raw[hdr : hdr + min(payload_len, PAYLOAD_HEAD)],
            )
    finally:
        reader.close()
