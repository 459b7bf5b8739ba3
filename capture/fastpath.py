"""Decode of link, IP and transport headers for a whole chunk of packets, into columns.

The per-packet work runs in the compiled core ``capture/_decode.pyx`` (one C loop, every
byte read bounds-checked); this module keeps the API, the counters and the rules.  The
result is one row per TCP/UDP packet; everything else is counted in ``DecodeStats``:

* a packet too short for the link-layer, IP or TCP/UDP header it announces (IPv4 IHL
  below 5, TCP data offset below 5, a snaplen cut inside a header) is ``malformed``;
* a non-first IPv4 or IPv6 fragment is a ``fragment`` (no transport header to read);
* an IP packet of another protocol is counted by protocol number (``other_ip``), a frame
  of a supported link type without IPv4/IPv6 as ``non_ip``, an unsupported link type by
  its number.

Payload lengths come from the headers (IPv4 total length, IPv6 payload length; 0 there,
as with TCP segmentation offload, falls back to what was captured), not from the snaplen.
IPv6 extension headers (hop-by-hop, routing, destination options, fragment, AH; at most
eight) are skipped.

Link types (LINKTYPE_* numbers, tcpdump.org/linktypes.html): 0 NULL, 1 ETHERNET (802.1Q,
802.1ad, QinQ tags), 12/14/101 RAW, 108 LOOP, 113 LINUX_SLL, 228 IPV4, 229 IPV6,
239 NFLOG, 276 LINUX_SLL2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from capture.packets import DecodeStats
from capture.pcapfile import Chunk

from capture.core import compiled

_decode = compiled("_decode")

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

    def __len__(self) -> int:
        return len(self.index)


def decode(chunk: Chunk, stats: DecodeStats, keep: np.ndarray | None = None) -> Decoded:
    """Decode a chunk's TCP/UDP packets and count the rest into ``stats``.

    Args:
        chunk: packets from ``CaptureFile.chunks()`` (or live frames in a ``Chunk``).
        stats: counters to add this chunk's non-TCP/UDP packets to.
        keep: optional bool mask (from a BPF filter) of packets to decode at all.
    """
    stats.packets += len(chunk)
    mask = None if keep is None else np.ascontiguousarray(keep, dtype=np.uint8)
    rows, cols, counts, other_ip, unsupported = _decode.decode(
        chunk.buf,
        np.ascontiguousarray(chunk.off, dtype=np.int64),
        np.ascontiguousarray(chunk.caplen, dtype=np.int64),
        np.ascontiguousarray(chunk.linktype, dtype=np.int32),
        mask,
    )
    stats.filtered += counts["filtered"]
    stats.non_ip += counts["non_ip"]
    stats.fragments += counts["fragments"]
    stats.malformed += counts["malformed"]
    stats.tcp += counts["tcp"]
    stats.udp += counts["udp"]
    for proto in np.flatnonzero(other_ip).tolist():
        stats.other_ip[proto] += int(other_ip[proto])
    for lt, n in unsupported.items():
        stats.unsupported_linktype[lt] += n
    return Decoded(index=chunk.index[rows], ts_ns=chunk.ts_ns[rows], **cols)
