# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled twin of ``capture/pcapfile.py``: the per-record walk over a window of bytes.

``pcapfile.CaptureFile`` keeps the files, windows, errors and messages; these functions
only follow record lengths and gather each record's header fields into numpy arrays.
Every read from the window is an index into a bounds-checked memoryview (``boundscheck``
stays on: the bytes come from the file).  Specs: draft-ietf-opsawg-pcap,
draft-ietf-opsawg-pcapng (see ``pcapfile``'s docstring).
"""

cimport cython

import numpy as np

cdef extern from *:
    ctypedef long long int128 "__int128"

ctypedef const unsigned char[::1] Bytes

cdef inline unsigned long long rd32(Bytes b, Py_ssize_t p, bint big):
    if big:
        return (<unsigned long long>b[p] << 24) | (<unsigned long long>b[p + 1] << 16) | \
               (<unsigned long long>b[p + 2] << 8) | b[p + 3]
    return (<unsigned long long>b[p + 3] << 24) | (<unsigned long long>b[p + 2] << 16) | \
           (<unsigned long long>b[p + 1] << 8) | b[p]


cdef inline unsigned int rd16(Bytes b, Py_ssize_t p, bint big):
    if big:
        return (<unsigned int>b[p] << 8) | b[p + 1]
    return (<unsigned int>b[p + 1] << 8) | b[p]


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
    cdef Py_ssize_t p = pos, n = 0
    cdef unsigned long long incl
    cdef long long bad = -1
    # First pass: count the records (only their lengths are read).
    while p + 16 <= end:
        incl = rd32(buf, p + 8, big)
        if <long long>incl > limit:
            bad = <long long>incl
            break
        if p + 16 + <Py_ssize_t>incl > end:
            break
        p += 16 + <Py_ssize_t>incl
        n += 1
    off_a = np.empty(n, dtype=np.int64)
    cap_a = np.empty(n, dtype=np.int64)
    wire_a = np.empty(n, dtype=np.int64)
    ts_a = np.empty(n, dtype=np.int64)
    cdef long long[::1] off = off_a, cap = cap_a, wire = wire_a, ts = ts_a
    cdef Py_ssize_t i
    p = pos
    for i in range(n):
        incl = rd32(buf, p + 8, big)
        ts[i] = <long long>rd32(buf, p, big) * 1_000_000_000 + \
            <long long>rd32(buf, p + 4, big) * ns_per_unit
        cap[i] = <long long>incl
        wire[i] = <long long>rd32(buf, p + 12, big)
        off[i] = p + 16
        p += 16 + <Py_ssize_t>incl
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
        btype = rd32(buf, p, big)
        blen = rd32(buf, p + 4, big)
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
            wire = rd32(buf, body, big)
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
                iface = rd32(buf, body, big)
                hi = rd32(buf, body + 4, big)
                lo = rd32(buf, body + 8, big)
                cap = rd32(buf, body + 12, big)
                wire = rd32(buf, body + 16, big)
            else:  # obsolete Packet Block: 16-bit interface, 16-bit drops count
                iface = rd16(buf, body, big)
                hi = rd32(buf, body + 4, big)
                lo = rd32(buf, body + 8, big)
                cap = rd32(buf, body + 12, big)
                wire = rd32(buf, body + 16, big)
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
