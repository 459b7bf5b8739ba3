"""Vectorized decode of link, IP and transport headers for a whole chunk of packets.

No scapy, no Python loop per packet (except NFLOG's TLV walk, a rare link type): every
header field is gathered with numpy fancy indexing from the chunk's buffer.  The result is
one row per TCP/UDP packet; everything else is counted in ``DecodeStats``.

Link types (LINKTYPE_* numbers, tcpdump.org/linktypes.html): 0 NULL, 1 ETHERNET (802.1Q,
802.1ad, QinQ tags), 12/14/101 RAW, 108 LOOP, 113 LINUX_SLL, 228 IPV4, 229 IPV6,
239 NFLOG, 276 LINUX_SLL2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from capture.packets import TCP, UDP, DecodeStats
from capture.pcapfile import Chunk

ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
VLAN_TPIDS: Final = (0x8100, 0x88A8, 0x9100, 0x9200)
AF_INET6_BSD: Final = (24, 28, 30)
IPV6_EXT: Final = (0, 43, 60)  # hop-by-hop, routing, destination options
SUPPORTED_LINKTYPES: Final = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 239, 276})


@dataclass(slots=True)
class Decoded:
    """One row per TCP/UDP packet of a chunk (numpy arrays of equal length)."""

    index: np.ndarray
    ts_ns: np.ndarray
    v6: np.ndarray
    """bool: IPv6 (addresses use both halves) or IPv4 (only ``*_lo``)."""
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    proto: np.ndarray
    flags: np.ndarray
    plen: np.ndarray
    """Transport payload length from the headers."""
    pay_off: np.ndarray
    """Where the payload starts in the chunk buffer."""
    pay_cap: np.ndarray
    """Payload bytes actually present in the capture."""


class _Bytes:
    """Bounds-safe big-endian gathers from a buffer (out-of-range reads give 0)."""

    def __init__(self, buf: bytes) -> None:
        self.b = np.frombuffer(buf, dtype=np.uint8)
        self.last = len(self.b) - 1

    def u8(self, pos: np.ndarray) -> np.ndarray:
        return np.take(self.b, pos, mode="clip").astype(np.int64)

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8(pos) << 8) | self.u8(pos + 1)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        return (self.u16(pos) << 16) | self.u16(pos + 2)

    def u64(self, pos: np.ndarray) -> np.ndarray:
        return (self.u32(pos).astype(np.uint64) << np.uint64(32)) | self.u32(pos + 4).astype(
            np.uint64
        )


def _nflog_payloads(buf: bytes, off: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(network offset, ethertype) for NFLOG packets: walk the TLVs to NFULA_PAYLOAD (9)."""
    net = np.full(len(off), -1, dtype=np.int64)
    etype = np.zeros(len(off), dtype=np.int64)
    for i, (o, e) in enumerate(zip(off.tolist(), end.tolist(), strict=True)):
        if o + 4 > e:
            continue
        family = buf[o]
        pos = o + 4
        while pos + 4 <= e:
            length = int.from_bytes(buf[pos : pos + 2], "little")  # host byte order (LE)
            tlv_type = int.from_bytes(buf[pos + 2 : pos + 4], "little") & 0x7FFF
            if length < 4:
                break
            if tlv_type == 9:
                net[i] = pos + 4
                etype[i] = ETH_IPV4 if family == 2 else ETH_IPV6 if family == 10 else 0
                break
            pos += length + (-length % 4)
    return net, etype


def _link_layer(
    chunk: Chunk, g: _Bytes, stats: DecodeStats
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per packet: (network-layer offset, ethertype, end of captured data); -1 offset = none."""
    off, lt = chunk.off, chunk.linktype
    end = off + chunk.caplen
    n = len(off)
    net = np.full(n, -1, dtype=np.int64)
    etype = np.zeros(n, dtype=np.int64)

    m = lt == 1
    if m.any():
        pos = off[m] + 12
        et = g.u16(pos)
        e = end[m]
        for _ in range(4):
            tag = np.isin(et, VLAN_TPIDS) & (pos + 6 <= e)
            if not tag.any():
                break
            pos = np.where(tag, pos + 4, pos)
            et = np.where(tag, g.u16(pos), et)
        ok = pos + 2 <= e
        net[m] = np.where(ok, pos + 2, -1)
        etype[m] = et
    m = lt == 113
    if m.any():
        ok = chunk.caplen[m] >= 16
        net[m] = np.where(ok, off[m] + 16, -1)
        etype[m] = g.u16(off[m] + 14)
    m = lt == 276
    if m.any():
        ok = chunk.caplen[m] >= 20
        net[m] = np.where(ok, off[m] + 20, -1)
        etype[m] = g.u16(off[m])
    m = np.isin(lt, (12, 14, 101))
    if m.any():
        ver = g.u8(off[m]) >> 4
        ok = chunk.caplen[m] >= 1
        net[m] = np.where(ok, off[m], -1)
        etype[m] = np.where(ver == 4, ETH_IPV4, np.where(ver == 6, ETH_IPV6, 0))
    m = lt == 228
    if m.any():
        net[m] = off[m]
        etype[m] = ETH_IPV4
    m = lt == 229
    if m.any():
        net[m] = off[m]
        etype[m] = ETH_IPV6
    m = (lt == 0) | (lt == 108)
    if m.any():
        p = off[m]
        be = g.u32(p)
        le = g.u8(p) | (g.u8(p + 1) << 8) | (g.u8(p + 2) << 16) | (g.u8(p + 3) << 24)
        # NULL is in the capturing host's byte order; LOOP is always network order.
        fam = np.where((lt[m] == 108) | (be < 256), be, le)
        ok = chunk.caplen[m] >= 4
        net[m] = np.where(ok, p + 4, -1)
        etype[m] = np.where(fam == 2, ETH_IPV4, np.where(np.isin(fam, AF_INET6_BSD), ETH_IPV6, 0))
    m = lt == 239
    if m.any():
        net[m], etype[m] = _nflog_payloads(chunk.buf, off[m], end[m])

    unsupported = ~np.isin(lt, list(SUPPORTED_LINKTYPES))
    if unsupported.any():
        kinds, counts = np.unique(lt[unsupported], return_counts=True)
        for k, c in zip(kinds.tolist(), counts.tolist(), strict=True):
            stats.unsupported_linktype[k] += c
        net[unsupported] = -1
        etype[unsupported] = -1
    return net, etype, end


def decode(chunk: Chunk, stats: DecodeStats, keep: np.ndarray | None = None) -> Decoded:
    """Decode a chunk's TCP/UDP packets and count the rest into ``stats``.

    Args:
        chunk: packets from ``CaptureFile.chunks()``.
        stats: counters to add this chunk's non-TCP/UDP packets to.
        keep: optional bool mask (from a BPF filter) of packets to decode at all.
    """
    g = _Bytes(chunk.buf)
    stats.packets += len(chunk)
    if keep is not None:
        stats.filtered += int((~keep).sum())
        chunk = Chunk(
            buf=chunk.buf, off=chunk.off[keep], caplen=chunk.caplen[keep],
            wirelen=chunk.wirelen[keep], ts_ns=chunk.ts_ns[keep],
            linktype=chunk.linktype[keep], index=chunk.index[keep],
        )  # fmt: skip
    net, etype, end = _link_layer(chunk, g, stats)
    supported = etype >= 0
    short_link = supported & (net < 0)
    is4 = (etype == ETH_IPV4) & (net >= 0)
    is6 = (etype == ETH_IPV6) & (net >= 0)
    stats.non_ip += int((supported & ~short_link & ~is4 & ~is6).sum())
    malformed = short_link.copy()

    # IPv4
    i4 = np.flatnonzero(is4)
    n4 = net[i4]
    ok4 = (n4 + 20 <= end[i4]) & ((g.u8(n4) >> 4) == 4)
    ihl = (g.u8(n4) & 15) * 4
    ok4 &= ihl >= 20
    total = g.u16(n4 + 2)
    frag = g.u16(n4 + 6)
    nonfirst4 = ok4 & ((frag & 0x1FFF) != 0)
    proto4 = g.u8(n4 + 9)
    l4_4 = n4 + ihl
    # total length 0 happens with TCP segmentation offload: fall back to what was captured.
    l4len4 = np.where(total == 0, end[i4] - l4_4, total - ihl)

    # IPv6
    i6 = np.flatnonzero(is6)
    n6 = net[i6]
    ok6 = (n6 + 40 <= end[i6]) & ((g.u8(n6) >> 4) == 6)
    plen6 = g.u16(n6 + 4)
    nh = g.u8(n6 + 6)
    l4_6 = n6 + 40
    nonfirst6 = np.zeros(len(i6), dtype=bool)
    e6 = end[i6]
    for _ in range(8):
        ext = np.isin(nh, IPV6_EXT) & (l4_6 + 8 <= e6)
        fr = (nh == 44) & (l4_6 + 8 <= e6)
        ah = (nh == 51) & (l4_6 + 8 <= e6)
        step = ext | fr | ah
        if not step.any():
            break
        size = np.where(fr, 8, np.where(ah, (g.u8(l4_6 + 1) + 2) * 4, (g.u8(l4_6 + 1) + 1) * 8))
        nonfirst6 |= fr & ((g.u16(l4_6 + 2) >> 3) != 0)
        nh = np.where(step, g.u8(l4_6), nh)
        l4_6 = np.where(step, l4_6 + size, l4_6)
    l4len6 = np.where(plen6 == 0, e6 - l4_6, plen6 - (l4_6 - (n6 + 40)))

    idx = np.concatenate([i4, i6])
    ok = np.concatenate([ok4, ok6])
    nonfirst = np.concatenate([nonfirst4, nonfirst6]) & ok
    proto = np.concatenate([proto4, nh])
    l4 = np.concatenate([l4_4, l4_6])
    l4len = np.concatenate([l4len4, l4len6])
    v6 = np.concatenate([np.zeros(len(i4), bool), np.ones(len(i6), bool)])
    e = end[idx]

    malformed[idx[~ok]] = True
    stats.fragments += int(nonfirst.sum())
    usable = ok & ~nonfirst
    is_tcp = usable & (proto == TCP) & (l4 + 20 <= e)
    is_udp = usable & (proto == UDP) & (l4 + 8 <= e)
    short_l4 = usable & (((proto == TCP) & ~is_tcp) | ((proto == UDP) & ~is_udp))
    malformed[idx[short_l4]] = True
    other = usable & (proto != TCP) & (proto != UDP)
    if other.any():
        kinds, counts = np.unique(proto[other], return_counts=True)
        for k, c in zip(kinds.tolist(), counts.tolist(), strict=True):
            stats.other_ip[k] += c

    hdr = np.where(is_tcp, (g.u8(l4 + 12) >> 4) * 4, 8)
    is_tcp &= hdr >= 20
    malformed[idx[usable & (proto == TCP) & ~is_tcp & (l4 + 20 <= e)]] = True
    keep_rows = is_tcp | is_udp
    stats.malformed += int(malformed.sum())
    stats.tcp += int(is_tcp.sum())
    stats.udp += int(is_udp.sum())

    sel = np.flatnonzero(keep_rows)
    sel = sel[np.argsort(idx[sel], kind="stable")]  # back to packet order
    rows = idx[sel]
    l4s, hdrs, lens, tcp = l4[sel], hdr[sel], l4len[sel], is_tcp[sel]
    v6s = v6[sel]
    nets = net[rows]
    plen = np.where(tcp, lens - hdrs, g.u16(l4s + 4) - 8)
    plen = np.maximum(plen, 0)
    pay_off = l4s + hdrs
    pay_cap = np.clip(end[rows] - pay_off, 0, None)
    pay_cap = np.minimum(pay_cap, plen)
    # Addresses: 32-bit reads for IPv4 rows, four 64-bit reads only for the IPv6 rows.
    src_hi = np.zeros(len(rows), dtype=np.uint64)
    dst_hi = np.zeros(len(rows), dtype=np.uint64)
    src_lo = g.u32(nets + 12).astype(np.uint64)
    dst_lo = g.u32(nets + 16).astype(np.uint64)
    if v6s.any():
        n6s = nets[v6s]
        src_hi[v6s], src_lo[v6s] = g.u64(n6s + 8), g.u64(n6s + 16)
        dst_hi[v6s], dst_lo[v6s] = g.u64(n6s + 24), g.u64(n6s + 32)
    return Decoded(
        index=chunk.index[rows],
        ts_ns=chunk.ts_ns[rows],
        v6=v6s,
        src_hi=src_hi,
        src_lo=src_lo,
        dst_hi=dst_hi,
        dst_lo=dst_lo,
        sport=g.u16(l4s),
        dport=g.u16(l4s + 2),
        proto=np.where(tcp, TCP, UDP),
        flags=np.where(tcp, g.u8(l4s + 13), 0),
        plen=plen,
        pay_off=pay_off,
        pay_cap=pay_cap,
    )
