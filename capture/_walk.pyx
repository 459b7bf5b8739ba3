# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled twin of ``capture/pcapfile.py``: the per-record walk over a window of bytes.

``pcapfile.CaptureFile`` keeps the files, windows, errors and messages; these functions
only follow record lengths and gather each record's header fields into numpy arrays.
Every read from the window goes through ``rd16``/``rd32``, which check the index against
the buffer and raise ``IndexError`` outside it (Cython's ``boundscheck`` check, done by
hand: a memoryview passed to a helper costs atomic reference counting on every call).  Specs: draft-ietf-opsawg-pcap,
draft-ietf-opsawg-pcapng (see ``pcapfile``'s docstring).
"""

cimport cython
from libc.string cimport memcpy

import numpy as np

cdef extern from *:
    ctypedef long long int128 "__int128"

ctypedef const unsigned char[::1] Bytes

cdef struct Buf:
    const unsigned char* p
    Py_ssize_t n


cdef int out_of_bounds(Py_ssize_t p, Py_ssize_t k, Py_ssize_t n) except -1:
    raise IndexError(f"read of {k} bytes at {p} outside a buffer of {n}")


cdef inline long long rd32(const Buf* b, Py_ssize_t p, bint big) except -1:
    if p < 0 or p + 4 > b.n:
        out_of_bounds(p, 4, b.n)
    cdef const unsigned char* q = b.p + p
    if big:
        return (<long long>q[0] << 24) | (<long long>q[1] << 16) | (<long long>q[2] << 8) | q[3]
    return (<long long>q[3] << 24) | (<long long>q[2] << 16) | (<long long>q[1] << 8) | q[0]


cdef inline long long rd16(const Buf* b, Py_ssize_t p, bint big) except -1:
    if p < 0 or p + 2 > b.n:
        out_of_bounds(p, 2, b.n)
    if big:
        return (<long long>b.p[p] << 8) | b.p[p + 1]
    return (<long long>b.p[p + 1] << 8) | b.p[p]


cdef inline Buf view(Bytes buf):
    cdef Buf b
    b.n = buf.shape[0]
    b.p = &buf[0] if b.n else NULL
    return b


@cython.cdivision(True)
cdef inline int128 c_div(int128 a, int128 b):
    return a / b


def walk_pcap(Bytes buf, Py_ssize_t pos, Py_ssize_t end, bint big, long long limit,
              long long ns_per_unit):
    """Walk the pcap records lying wholly in ``buf[pos:end]``.

    Stops at the first record that does not fit, or at the first whose captured length
    exceeds ``limit`` (a corrupt file); that one is not walked.

    Returns:
        ``(stop, off, caplen, wirelen, ts_ns, bad_len)``: where the walk stopped (the
        header of the first record not walked), the int64 arrays of the records walked
        (``off`` is where each record's data starts), and the captured length the
        record at ``stop`` claims if it exceeds ``limit``, else -1.
    """
    if end > buf.shape[0] or pos < 0:
        raise ValueError("window outside the buffer")
    cdef Buf bb = view(buf)
    cdef Py_ssize_t p = pos, n = 0
    cdef long long incl
    cdef long long bad = -1
    # One pass over the headers (each is read once, while its cache line is fresh); the
    # arrays start at a guess of 256 bytes a record and double when it was too low.
    cdef Py_ssize_t cap_n = (end - pos) // 256 + 16
    off_a = np.empty(cap_n, dtype=np.int64)
    cap_a = np.empty(cap_n, dtype=np.int64)
    wire_a = np.empty(cap_n, dtype=np.int64)
    ts_a = np.empty(cap_n, dtype=np.int64)
    cdef long long[::1] off = off_a, cap = cap_a, wire = wire_a, ts = ts_a
    while p + 16 <= end:
        incl = rd32(&bb, p + 8, big)
        if incl > limit:
            bad = incl
            break
        if p + 16 + <Py_ssize_t>incl > end:
            break
        if n == cap_n:
            cap_n *= 2
            off_a = np.resize(off_a, cap_n)
            cap_a = np.resize(cap_a, cap_n)
            wire_a = np.resize(wire_a, cap_n)
            ts_a = np.resize(ts_a, cap_n)
            off = off_a
            cap = cap_a
            wire = wire_a
            ts = ts_a
        ts[n] = rd32(&bb, p, big) * 1_000_000_000 + rd32(&bb, p + 4, big) * ns_per_unit
        cap[n] = incl
        wire[n] = rd32(&bb, p + 12, big)
        off[n] = p + 16
        n += 1
        p += 16 + <Py_ssize_t>incl
    off_a, cap_a, wire_a, ts_a = off_a[:n], cap_a[:n], wire_a[:n], ts_a[:n]
    return p, off_a, cap_a, wire_a, ts_a, bad


# pcapng ----------------------------------------------------------------------------------

# Why ``walk_pcapng`` stopped (the Python side handles that block, then calls again).
STOP_END = 0        # fewer than 12 bytes left, or the next block does not fit the window
STOP_BLOCK = 1      # a block the walk does not handle (SHB, IDB, other types)
STOP_BAD_LEN = 2    # an impossible block length
STOP_BAD_IFACE = 3  # a packet on an undescribed interface, or longer than its block
STOP_BAD_TIME = 4   # a timestamp outside int64 nanoseconds


def walk_pcapng(Bytes buf, Py_ssize_t pos, Py_ssize_t end, bint big, long long max_block,
                const long long[::1] if_link, const long long[::1] if_snap,
                const long long[::1] if_mul, const long long[::1] if_div_hi,
                const unsigned long long[::1] if_div_lo, const long long[::1] if_off_hi,
                const unsigned long long[::1] if_off_lo):
    """Walk the Enhanced, Simple and obsolete Packet Blocks from ``buf[pos:...]``.

    The interfaces of the current section come as arrays: link type, snap length,
    timestamp multiplier and divisor (ns = units * mul // div + offset; the divisor, at
    most 2**100, and the ``if_tsoffset`` in ns each split into a signed high and an
    unsigned low 64-bit half).

    Returns:
        ``(stop, why, off, caplen, wirelen, ts_ns, linktype, iface, cap)``: ``stop`` is the
        offset of the block not walked, ``why`` one of the ``STOP_*`` codes; ``iface`` and
        ``cap`` are what that block claims when ``why`` is ``STOP_BAD_IFACE``.
    """
    if end > buf.shape[0] or pos < 0:
        raise ValueError("window outside the buffer")
    cdef Buf bb = view(buf)
    cdef Py_ssize_t nif = if_link.shape[0]
    if (if_snap.shape[0] != nif or if_mul.shape[0] != nif or if_div_hi.shape[0] != nif
            or if_div_lo.shape[0] != nif or if_off_hi.shape[0] != nif
            or if_off_lo.shape[0] != nif):
        raise ValueError("interface arrays differ in length")
    cdef Py_ssize_t p = pos, n = 0, body
    cdef unsigned long long btype, blen, iface = 0, cap = 0, wire, hi, lo
    cdef int why = STOP_END
    cdef int128 t, tsoff, div
    cdef int128 two64 = <int128>1 << 64
    cdef int128 ts_min = -(<int128>1 << 63), ts_max = (<int128>1 << 63) - 1
    # Upper bound on the packets: every packet block is at least 16 bytes.
    cdef Py_ssize_t most = (end - pos) // 16 + 1 if end > pos else 1
    cdef Py_ssize_t cap_n = most if most < 65536 else 65536
    off_a = np.empty(cap_n, dtype=np.int64)
    cap_a = np.empty(cap_n, dtype=np.int64)
    wire_a = np.empty(cap_n, dtype=np.int64)
    ts_a = np.empty(cap_n, dtype=np.int64)
    lt_a = np.empty(cap_n, dtype=np.int32)
    cdef long long[::1] o_v = off_a, c_v = cap_a, w_v = wire_a, t_v = ts_a
    cdef int[::1] l_v = lt_a
    while True:
        if p + 12 > end:
            why = STOP_END
            break
        btype = rd32(&bb, p, big)
        blen = rd32(&bb, p + 4, big)
        if btype != 6 and btype != 3 and btype != 2:
            why = STOP_BLOCK  # SHB (its byte order is read by the caller), IDB, others
            break
        # An EPB or PB needs 32 bytes of framing, an SPB 16: shorter is impossible too.
        if (blen < 12 or blen % 4 or <long long>blen > max_block
                or blen < (16 if btype == 3 else 32)):
            why = STOP_BAD_LEN
            break
        if p + <Py_ssize_t>blen > end:
            why = STOP_END
            break
        body = p + 8
        if btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if nif == 0:
                why = STOP_BAD_IFACE
                break
            wire = rd32(&bb, body, big)
            cap = wire
            if cap > blen - 16:
                cap = blen - 16
            if if_snap[0] and cap > <unsigned long long>if_snap[0]:
                cap = <unsigned long long>if_snap[0]
            t = 0
            iface = 0
            body += 4
        else:
            if btype == 6:
                iface = rd32(&bb, body, big)
                hi = rd32(&bb, body + 4, big)
                lo = rd32(&bb, body + 8, big)
                cap = rd32(&bb, body + 12, big)
                wire = rd32(&bb, body + 16, big)
            else:  # obsolete Packet Block: 16-bit interface, 16-bit drops count
                iface = rd16(&bb, body, big)
                hi = rd32(&bb, body + 4, big)
                lo = rd32(&bb, body + 8, big)
                cap = rd32(&bb, body + 12, big)
                wire = rd32(&bb, body + 16, big)
            if iface >= <unsigned long long>nif or cap > blen - 32:
                why = STOP_BAD_IFACE
                break
            tsoff = <int128>if_off_hi[iface] * two64 + <int128>if_off_lo[iface]
            div = <int128>if_div_hi[iface] * two64 + <int128>if_div_lo[iface]
            if div <= 0:
                raise ValueError("timestamp divisor must be positive")
            # Non-negative operands: C's truncating division is the floor division wanted.
            t = c_div(((<int128>hi << 32) | <int128>lo) * <int128>if_mul[iface], div) + tsoff
            if t < ts_min or t > ts_max:
                why = STOP_BAD_TIME
                break
            body += 20
        if n == cap_n:  # grow the arrays
            cap_n *= 2
            off_a = np.resize(off_a, cap_n)
            cap_a = np.resize(cap_a, cap_n)
            wire_a = np.resize(wire_a, cap_n)
            ts_a = np.resize(ts_a, cap_n)
            lt_a = np.resize(lt_a, cap_n)
            o_v = off_a
            c_v = cap_a
            w_v = wire_a
            t_v = ts_a
            l_v = lt_a
        o_v[n] = body
        c_v[n] = <long long>cap
        w_v[n] = <long long>wire
        t_v[n] = <long long>t
        l_v[n] = <int>if_link[iface]
        n += 1
        p += <Py_ssize_t>blen
    return p, why, off_a[:n], cap_a[:n], wire_a[:n], ts_a[:n], lt_a[:n], iface, cap


# pcap out ---------------------------------------------------------------------------------

def pcap_records(Bytes buf, const long long[::1] off, const long long[::1] caplen,
                 const long long[::1] wirelen, const long long[::1] ts_ns):
    """The pcap records (nanosecond, little-endian headers) of packets in ``buf``, as bytes.

    The inverse of ``walk_pcap``: live capture writes its rotating pcaps with it, one
    bytes object per batch rather than one write per packet.
    """
    cdef Py_ssize_t n = off.shape[0], i, total = 0, p = 0, c, o
    if caplen.shape[0] != n or wirelen.shape[0] != n or ts_ns.shape[0] != n:
        raise ValueError("column lengths differ")
    cdef Buf bb = view(buf)
    for i in range(n):
        if caplen[i] < 0 or off[i] < 0 or off[i] + caplen[i] > bb.n:
            raise IndexError(f"packet {i} lies outside the buffer")
        total += 16 + caplen[i]
    out = bytearray(total)
    cdef unsigned char[::1] w = out
    cdef unsigned long long sec, frac, wl
    for i in range(n):
        c = caplen[i]
        o = off[i]
        sec = <unsigned long long>(ts_ns[i] // 1_000_000_000)
        frac = <unsigned long long>(ts_ns[i] % 1_000_000_000)
        wl = <unsigned long long>wirelen[i]
        put32(w, p, sec)
        put32(w, p + 4, frac)
        put32(w, p + 8, <unsigned long long>c)
        put32(w, p + 12, wl)
        if c:  # bounds checked above, for every packet
            memcpy(&w[p + 16], bb.p + o, c)
        p += 16 + c
    return bytes(out)


cdef inline void put32(unsigned char[::1] w, Py_ssize_t p, unsigned long long v):
    w[p] = v & 0xFF
    w[p + 1] = (v >> 8) & 0xFF
    w[p + 2] = (v >> 16) & 0xFF
    w[p + 3] = (v >> 24) & 0xFF


# TPACKET_V3 ring blocks -----------------------------------------------------------------

def walk_tpacket3(Bytes ring, Py_ssize_t block, Py_ssize_t block_size, bint skip_outgoing):
    """The packets of one TPACKET_V3 ring block (linux/if_packet.h) that the kernel handed
    over, as arrays pointing into ``ring``.

    Block: ``tpacket_block_desc`` (version, offset_to_priv, then ``tpacket_hdr_v1``:
    block_status, num_pkts, offset_to_first_pkt, ...).  Packet: ``tpacket3_hdr``
    (tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status, tp_mac, tp_net, ...),
    followed by a ``sockaddr_ll`` at 48 bytes whose ``sll_pkttype`` (byte 10) says
    whether the host sent it (PACKET_OUTGOING = 4).

    Returns:
        ``(off, caplen, wirelen, ts_ns, skipped)``: the packets, and how many outgoing
        ones were left out (``skip_outgoing``: on loopback each packet is seen twice).
    """
    if block < 0 or block + block_size > ring.shape[0] or block_size < 48:
        raise ValueError("block outside the ring")
    cdef Buf bb = view(ring)
    cdef long long npk = rd32(&bb, block + 12, False)
    cdef Py_ssize_t p = block + rd32(&bb, block + 16, False), end = block + block_size
    cdef Py_ssize_t i, k = 0, skipped = 0, mac
    off_a = np.empty(npk, dtype=np.int64)
    cap_a = np.empty(npk, dtype=np.int64)
    wire_a = np.empty(npk, dtype=np.int64)
    ts_a = np.empty(npk, dtype=np.int64)
    cdef long long[::1] off = off_a, cap = cap_a, wire = wire_a, ts = ts_a
    cdef long long nxt, snap
    for i in range(npk):
        if p < block or p + 48 + 12 > end:
            raise ValueError("packet header outside its ring block")
        nxt = rd32(&bb, p, False)
        snap = rd32(&bb, p + 12, False)
        mac = rd16(&bb, p + 24, False)
        if p + mac + snap > end:
            raise ValueError("packet data outside its ring block")
        if skip_outgoing and ring[p + 48 + 10] == 4:
            skipped += 1
        else:
            ts[k] = rd32(&bb, p + 4, False) * 1_000_000_000 + rd32(&bb, p + 8, False)
            cap[k] = snap
            wire[k] = rd32(&bb, p + 16, False)
            off[k] = p + mac
            k += 1
        if nxt == 0:
            break
        p += nxt
    return off_a[:k], cap_a[:k], wire_a[:k], ts_a[:k], skipped
