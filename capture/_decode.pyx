# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled twin of ``capture/fastpath.py``: link, IP and transport headers into columns.

One C loop over the packets of a chunk.  Every byte is read through ``u8``/``u16``/...
below, which check the index against the buffer and raise ``IndexError`` outside it (the
same check as Cython's ``boundscheck``, done by hand because passing a memoryview to a
helper costs two atomic reference-count updates per call); and a header field is read
only after the packet was found long enough to hold it, so nothing outside a packet's
own captured bytes decides its fate.  The rules
(which packets are TCP/UDP rows, which are counted as skipped and why) are the ones
``capture.fastpath`` documents; ``tests/capture`` checks them against scapy and tshark.
"""

import numpy as np

ctypedef const unsigned char[::1] Bytes

cdef struct Buf:
    const unsigned char* p
    Py_ssize_t n

cdef enum:
    ETH_IPV4 = 0x0800
    ETH_IPV6 = 0x86DD


cdef int out_of_bounds(Py_ssize_t p, Py_ssize_t k, Py_ssize_t n) except -1:
    raise IndexError(f"read of {k} bytes at {p} outside a buffer of {n}")


cdef inline long long u8(const Buf* b, Py_ssize_t p) except -1:
    if p < 0 or p + 1 > b.n:
        out_of_bounds(p, 1, b.n)
    return b.p[p]


cdef inline long long u16(const Buf* b, Py_ssize_t p) except -1:
    if p < 0 or p + 2 > b.n:
        out_of_bounds(p, 2, b.n)
    return (<long long>b.p[p] << 8) | b.p[p + 1]


cdef inline long long u32(const Buf* b, Py_ssize_t p) except -1:
    if p < 0 or p + 4 > b.n:
        out_of_bounds(p, 4, b.n)
    return (<long long>b.p[p] << 24) | (<long long>b.p[p + 1] << 16) | \
           (<long long>b.p[p + 2] << 8) | b.p[p + 3]


cdef inline unsigned long long u64(const Buf* b, Py_ssize_t p) except? 0:
    return (<unsigned long long>u32(b, p) << 32) | <unsigned long long>u32(b, p + 4)


def decode(Bytes buf, const long long[::1] off, const long long[::1] caplen,
           const int[::1] linktype, const unsigned char[::1] keep=None):
    """Decode the packets at ``buf[off[i] : off[i] + caplen[i]]``.

    Args:
        buf: the chunk buffer.
        off, caplen, linktype: per packet, where its bytes start, how many, link type.
        keep: optional per-packet flags (from a BPF filter); 0 = not decoded at all.

    Returns:
        ``(rows, cols, counts, other_ip, unsupported)``: ``rows`` the int64 positions of
        the TCP/UDP packets in the chunk, ``cols`` a dict of per-row numpy columns,
        ``counts`` a dict of skip counters, ``other_ip`` an int64[256] count per IP
        protocol of the non-TCP/UDP IP packets, ``unsupported`` a dict link type -> count.
    """
    cdef Py_ssize_t n = off.shape[0], blen = buf.shape[0]
    cdef Buf bb
    bb.n = blen
    bb.p = &buf[0] if blen else NULL
    if caplen.shape[0] != n or linktype.shape[0] != n or (keep is not None and keep.shape[0] != n):
        raise ValueError("column lengths differ")
    rows_a = np.empty(n, dtype=np.int64)
    v6_a = np.empty(n, dtype=np.bool_)
    shi_a = np.empty(n, dtype=np.uint64)
    slo_a = np.empty(n, dtype=np.uint64)
    dhi_a = np.empty(n, dtype=np.uint64)
    dlo_a = np.empty(n, dtype=np.uint64)
    sport_a = np.empty(n, dtype=np.int64)
    dport_a = np.empty(n, dtype=np.int64)
    proto_a = np.empty(n, dtype=np.int64)
    flags_a = np.empty(n, dtype=np.int64)
    plen_a = np.empty(n, dtype=np.int64)
    poff_a = np.empty(n, dtype=np.int64)
    pcap_a = np.empty(n, dtype=np.int64)
    other_a = np.zeros(256, dtype=np.int64)
    cdef long long[::1] rows = rows_a, sport = sport_a, dport = dport_a, proto_c = proto_a
    cdef long long[::1] flags_c = flags_a, plen_c = plen_a, poff = poff_a, pcap_c = pcap_a
    cdef long long[::1] other = other_a
    cdef unsigned long long[::1] shi = shi_a, slo = slo_a, dhi = dhi_a, dlo = dlo_a
    cdef unsigned char[::1] v6c = v6_a.view(np.uint8)
    unsupported = {}
    cdef long long run_lt = -1, run_n = 0
    cdef long long filtered = 0, non_ip = 0, fragments = 0, malformed = 0, tcp = 0, udp = 0
    cdef Py_ssize_t i, r = 0, o, e, net, pos, l4, k, ihl, hdr, size
    cdef long long lt, etype, c, l4len, plen, total, frag, plen6, pc
    cdef unsigned int et, nh, proto, family, tlv_len, tlv_type
    cdef unsigned long long be, le, fam
    cdef bint is6, nonfirst
    for i in range(n):
        if keep is not None and not keep[i]:
            filtered += 1
            continue
        o = off[i]
        c = caplen[i]
        if o < 0 or c < 0 or o + c > blen:
            raise ValueError(f"packet {i} lies outside the chunk buffer")
        e = o + c
        lt = linktype[i]
        net = -1
        etype = 0
        # --- link layer: where the network header starts, and its ethertype -------------
        if lt == 1:  # Ethernet, up to four 802.1Q / 802.1ad / QinQ tags
            pos = o + 12
            if pos + 2 <= e:
                et = u16(&bb, pos)
                for k in range(4):
                    if (et == 0x8100 or et == 0x88A8 or et == 0x9100 or et == 0x9200) and pos + 6 <= e:
                        pos += 4
                        et = u16(&bb, pos)
                    else:
                        break
                net = pos + 2
                etype = et
        elif lt == 113:  # Linux cooked (SLL)
            if c >= 16:
                net = o + 16
                etype = u16(&bb, o + 14)
        elif lt == 276:  # Linux cooked v2 (SLL2)
            if c >= 20:
                net = o + 20
                etype = u16(&bb, o)
        elif lt == 12 or lt == 14 or lt == 101:  # raw IP: the version nibble says which
            if c >= 1:
                net = o
                et = u8(&bb, o) >> 4
                etype = ETH_IPV4 if et == 4 else (ETH_IPV6 if et == 6 else 0)
        elif lt == 228:
            net = o
            etype = ETH_IPV4
        elif lt == 229:
            net = o
            etype = ETH_IPV6
        elif lt == 0 or lt == 108:  # BSD loopback: a 4-byte address family
            if c >= 4:
                be = u32(&bb, o)
                le = (<unsigned long long>u8(&bb, o)) | (<unsigned long long>u8(&bb, o + 1) << 8) | \
                     (<unsigned long long>u8(&bb, o + 2) << 16) | (<unsigned long long>u8(&bb, o + 3) << 24)
                # NULL is in the capturing host's byte order; LOOP is always network order.
                fam = be if (lt == 108 or be < 256) else le
                net = o + 4
                etype = ETH_IPV4 if fam == 2 else (ETH_IPV6 if (fam == 24 or fam == 28 or fam == 30) else 0)
        elif lt == 239:  # NFLOG: walk the TLVs to NFULA_PAYLOAD (9), host byte order (LE)
            if o + 4 <= e:
                family = u8(&bb, o)
                pos = o + 4
                while pos + 4 <= e:
                    tlv_len = u8(&bb, pos) | (u8(&bb, pos + 1) << 8)
                    tlv_type = (u8(&bb, pos + 2) | (u8(&bb, pos + 3) << 8)) & 0x7FFF
                    if tlv_len < 4:
                        break
                    if tlv_type == 9:
                        net = pos + 4
                        etype = ETH_IPV4 if family == 2 else (ETH_IPV6 if family == 10 else 0)
                        break
                    pos += tlv_len + ((4 - tlv_len % 4) % 4)
        else:
            if lt != run_lt:
                if run_n:
                    unsupported[run_lt] = unsupported.get(run_lt, 0) + run_n
                run_lt = lt
                run_n = 0
            run_n += 1
            continue
        if net < 0:  # too short for its link-layer header
            malformed += 1
            continue
        # --- network layer ----------------------------------------------------------------
        if etype == ETH_IPV4:
            is6 = False
            if net + 20 > e or (u8(&bb, net) >> 4) != 4:
                malformed += 1
                continue
            ihl = (u8(&bb, net) & 15) * 4
            if ihl < 20:
                malformed += 1
                continue
            frag = u16(&bb, net + 6)
            if frag & 0x1FFF:
                fragments += 1
                continue
            total = u16(&bb, net + 2)
            proto = u8(&bb, net + 9)
            l4 = net + ihl
            # total length 0 happens with TCP segmentation offload: use what was captured.
            l4len = (e - l4) if total == 0 else (total - ihl)
        elif etype == ETH_IPV6:
            is6 = True
            if net + 40 > e or (u8(&bb, net) >> 4) != 6:
                malformed += 1
                continue
            plen6 = u16(&bb, net + 4)
            nh = u8(&bb, net + 6)
            l4 = net + 40
            nonfirst = False
            for k in range(8):  # extension headers: hop-by-hop, routing, dest. options, fragment, AH
                if l4 + 8 > e:
                    break
                if nh == 0 or nh == 43 or nh == 60:
                    size = (u8(&bb, l4 + 1) + 1) * 8
                elif nh == 44:
                    size = 8
                    if (u16(&bb, l4 + 2) >> 3) != 0:
                        nonfirst = True
                elif nh == 51:
                    size = (u8(&bb, l4 + 1) + 2) * 4
                else:
                    break
                nh = u8(&bb, l4)
                l4 += size
            if nonfirst:
                fragments += 1
                continue
            proto = nh
            l4len = (e - l4) if plen6 == 0 else (plen6 - (l4 - (net + 40)))
        else:
            non_ip += 1
            continue
        # --- transport layer ----------------------------------------------------------------
        if proto == 6:
            if l4 + 20 > e:
                malformed += 1
                continue
            hdr = (u8(&bb, l4 + 12) >> 4) * 4
            if hdr < 20:
                malformed += 1
                continue
            plen = l4len - hdr
            flags_c[r] = u8(&bb, l4 + 13)
            tcp += 1
        elif proto == 17:
            if l4 + 8 > e:
                malformed += 1
                continue
            hdr = 8
            plen = <long long>u16(&bb, l4 + 4) - 8
            flags_c[r] = 0
            udp += 1
        else:
            other[proto] += 1
            continue
        if plen < 0:
            plen = 0
        pc = e - (l4 + hdr)
        if pc < 0:
            pc = 0
        if pc > plen:
            pc = plen
        rows[r] = i
        v6c[r] = is6
        if is6:
            shi[r] = u64(&bb, net + 8)
            slo[r] = u64(&bb, net + 16)
            dhi[r] = u64(&bb, net + 24)
            dlo[r] = u64(&bb, net + 32)
        else:
            shi[r] = 0
            slo[r] = u32(&bb, net + 12)
            dhi[r] = 0
            dlo[r] = u32(&bb, net + 16)
        sport[r] = u16(&bb, l4)
        dport[r] = u16(&bb, l4 + 2)
        proto_c[r] = proto
        plen_c[r] = plen
        poff[r] = l4 + hdr
        pcap_c[r] = pc
        r += 1
    if run_n:
        unsupported[run_lt] = unsupported.get(run_lt, 0) + run_n
    cols = {
        "v6": v6_a[:r], "src_hi": shi_a[:r], "src_lo": slo_a[:r], "dst_hi": dhi_a[:r],
        "dst_lo": dlo_a[:r], "sport": sport_a[:r], "dport": dport_a[:r], "proto": proto_a[:r],
        "flags": flags_a[:r], "plen": plen_a[:r], "pay_off": poff_a[:r], "pay_cap": pcap_a[:r],
    }
    counts = {
        "filtered": filtered, "non_ip": non_ip, "fragments": fragments,
        "malformed": malformed, "tcp": tcp, "udp": udp,
    }
    return rows_a[:r], cols, counts, other_a, unsupported
