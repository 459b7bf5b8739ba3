# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled twin of ``capture/flows.py``: packets -> per-connection aggregates.

One C loop over the decoded rows of a chunk; an open-addressing hash table maps each
flow (unordered 5-tuple) to its current connection, and the connections' running
aggregates live in one C array.  The rules are ``capture.flows``' (its docstring);
``FlowTable`` there is the packet-by-packet reference these must equal (tests).
The only Python objects made per connection (never per packet) are the first payload
bytes of each direction.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

import numpy as np

ctypedef const unsigned char[::1] Bytes

cdef enum:
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    ACK = 0x10
    TCP = 6

# Flag bits of a connection.
cdef enum:
    FIN_AB = 1 << 0
    FIN_BA = 1 << 1
    RST_AB = 1 << 2
    RST_BA = 1 << 3
    SYNACK_AB = 1 << 4
    SYNACK_BA = 1 << 5
    FIRST_AB = 1 << 6
    FIRST_SYN = 1 << 7
    CLOSED = 1 << 8    # a FIN or RST came in the flow since its last pure SYN
    CURRENT = 1 << 9   # the flow's current connection (a later one may replace it)
    DIRTY = 1 << 10    # touched since the last drain
    PAY_AB = 1 << 11   # first payload of that direction taken
    PAY_BA = 1 << 12
    IS_V6 = 1 << 13

cdef struct Conn:
    long long conn
    long long first_index
    long long first_ts
    long long max_ts
    unsigned long long a_hi
    unsigned long long a_lo
    unsigned long long b_hi
    unsigned long long b_lo
    long long pa
    long long pb
    long long proto
    long long pkts_ab
    long long pkts_ba
    long long bytes_ab
    long long bytes_ba
    unsigned int bits


cdef inline unsigned long long mix(unsigned long long x) nogil:
    x ^= x >> 30
    x *= 0xBF58476D1CE4E5B9ULL
    x ^= x >> 27
    x *= 0x94D049BB133111EBULL
    x ^= x >> 31
    return x


cdef inline unsigned long long key_hash(bint v6, unsigned long long a_hi, unsigned long long a_lo,
                                        unsigned long long b_hi, unsigned long long b_lo,
                                        long long pa, long long pb, long long proto) nogil:
    cdef unsigned long long h = mix(<unsigned long long>((pa << 24) ^ (pb << 8) ^ proto) ^ (<unsigned long long>v6 << 48))
    h = mix(h ^ a_lo)
    h = mix(h ^ a_hi)
    h = mix(h ^ b_lo)
    return mix(h ^ b_hi)


cdef class Accounting:
    """Connections of one capture (or one live run), fed decoded chunks.

    ``add`` accounts a chunk; ``aggregates`` hands out every connection; ``drain`` (live
    capture) hands out those touched since the last drain and forgets those that are over.
    """

    cdef Conn* conns
    cdef Py_ssize_t n
    cdef Py_ssize_t cap
    cdef long long* table
    cdef Py_ssize_t tmask
    cdef long long next_id
    cdef dict payloads
    cdef readonly long long payload_head

    def __cinit__(self, long long payload_head=4096):
        self.cap = 1024
        self.n = 0
        self.conns = <Conn*>malloc(self.cap * sizeof(Conn))
        self.tmask = 4096 - 1
        self.table = <long long*>malloc((self.tmask + 1) * sizeof(long long))
        if self.conns == NULL or self.table == NULL:
            raise MemoryError()
        memset(self.table, 0xFF, (self.tmask + 1) * sizeof(long long))  # all -1: empty
        self.next_id = 0
        self.payloads = {}
        self.payload_head = payload_head

    def __dealloc__(self):
        free(self.conns)
        free(self.table)

    def __len__(self):
        return self.n

    @property
    def created(self):
        """Connections started so far, including those already drained and forgotten."""
        return self.next_id

    cdef Py_ssize_t _probe(self, bint v6, unsigned long long a_hi, unsigned long long a_lo,
                           unsigned long long b_hi, unsigned long long b_lo,
                           long long pa, long long pb, long long proto):
        """The table position holding this flow, or the empty one where it would go."""
        cdef Py_ssize_t h = <Py_ssize_t>(key_hash(v6, a_hi, a_lo, b_hi, b_lo, pa, pb, proto) & <unsigned long long>self.tmask)
        cdef long long s
        cdef Conn* c
        while True:
            s = self.table[h]
            if s < 0:
                return h
            c = &self.conns[s]
            if (c.a_lo == a_lo and c.b_lo == b_lo and c.pa == pa and c.pb == pb
                    and c.proto == proto and c.a_hi == a_hi and c.b_hi == b_hi
                    and ((c.bits & IS_V6) != 0) == v6):
                return h
            h = (h + 1) & self.tmask

    cdef int _rebuild(self, Py_ssize_t size) except -1:
        """A fresh table of ``size`` (a power of two) holding every current connection."""
        cdef long long* t = <long long*>malloc(size * sizeof(long long))
        if t == NULL:
            raise MemoryError()
        free(self.table)
        self.table = t
        self.tmask = size - 1
        memset(self.table, 0xFF, size * sizeof(long long))
        cdef Py_ssize_t s, h
        cdef Conn* c
        for s in range(self.n):
            c = &self.conns[s]
            if c.bits & CURRENT:
                h = self._probe((c.bits & IS_V6) != 0, c.a_hi, c.a_lo, c.b_hi, c.b_lo, c.pa, c.pb, c.proto)
                self.table[h] = s
        return 0

    def add(self, Bytes buf, const long long[::1] index, const long long[::1] ts_ns,
            const unsigned char[::1] v6, const unsigned long long[::1] src_hi,
            const unsigned long long[::1] src_lo, const unsigned long long[::1] dst_hi,
            const unsigned long long[::1] dst_lo, const long long[::1] sport,
            const long long[::1] dport, const long long[::1] proto,
            const long long[::1] flags, const long long[::1] plen,
            const long long[::1] pay_off, const long long[::1] pay_cap):
        """Account decoded packets (the columns of ``fastpath.Decoded``), in packet order.

        ``buf`` is the chunk buffer the payload offsets point into.
        """
        cdef Py_ssize_t m = index.shape[0], i, h, s, cur, start, take
        for arr_len in (ts_ns.shape[0], v6.shape[0], src_hi.shape[0], src_lo.shape[0],
                        dst_hi.shape[0], dst_lo.shape[0], sport.shape[0], dport.shape[0],
                        proto.shape[0], flags.shape[0], plen.shape[0], pay_off.shape[0],
                        pay_cap.shape[0]):
            if arr_len != m:
                raise ValueError("column lengths differ")
        cdef bint ab, tcp, syn, is6
        cdef unsigned long long a_hi, a_lo, b_hi, b_lo
        cdef long long pa, pb, pr, fl, ln
        cdef unsigned int dbit
        cdef Conn* c
        cdef Conn* grown
        for i in range(m):
            is6 = v6[i] != 0
            ab = (src_hi[i] < dst_hi[i]) or (src_hi[i] == dst_hi[i] and (
                src_lo[i] < dst_lo[i] or (src_lo[i] == dst_lo[i] and sport[i] <= dport[i])))
            if ab:
                a_hi, a_lo, b_hi, b_lo, pa, pb = src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], sport[i], dport[i]
            else:
                a_hi, a_lo, b_hi, b_lo, pa, pb = dst_hi[i], dst_lo[i], src_hi[i], src_lo[i], dport[i], sport[i]
            pr = proto[i]
            fl = flags[i]
            tcp = pr == TCP
            syn = tcp and (fl & (SYN | ACK | RST | FIN)) == SYN
            h = self._probe(is6, a_hi, a_lo, b_hi, b_lo, pa, pb, pr)
            cur = self.table[h]
            if cur < 0 or (syn and (self.conns[cur].bits & CLOSED)):
                # A new connection: the flow's first packet, or a pure SYN after a close.
                if self.n == self.cap:
                    grown = <Conn*>realloc(self.conns, 2 * self.cap * sizeof(Conn))
                    if grown == NULL:
                        raise MemoryError()
                    self.conns = grown
                    self.cap *= 2
                if cur >= 0:
                    self.conns[cur].bits &= ~CURRENT
                s = self.n
                self.n += 1
                c = &self.conns[s]
                c.conn = self.next_id
                self.next_id += 1
                c.first_index = index[i]
                c.first_ts = ts_ns[i]
                c.max_ts = ts_ns[i]
                c.a_hi, c.a_lo, c.b_hi, c.b_lo, c.pa, c.pb, c.proto = a_hi, a_lo, b_hi, b_lo, pa, pb, pr
                c.pkts_ab = c.pkts_ba = c.bytes_ab = c.bytes_ba = 0
                c.bits = CURRENT | (FIRST_AB if ab else 0) | (FIRST_SYN if syn else 0) | (IS_V6 if is6 else 0)
                self.table[h] = s
                if 2 * self.n > self.tmask:  # keep the table at most half full
                    self._rebuild(2 * (self.tmask + 1))
            else:
                s = cur
                c = &self.conns[s]
            c.bits |= DIRTY
            if syn:
                c.bits &= ~CLOSED
            if tcp and (fl & (FIN | RST)):
                c.bits |= CLOSED
            if ts_ns[i] > c.max_ts:
                c.max_ts = ts_ns[i]
            ln = plen[i]
            if ab:
                c.pkts_ab += 1
                c.bytes_ab += ln
                if tcp:
                    c.bits |= (FIN_AB if fl & FIN else 0) | (RST_AB if fl & RST else 0) | \
                        (SYNACK_AB if (fl & (SYN | ACK | RST)) == (SYN | ACK) else 0)
                dbit = PAY_AB
            else:
                c.pkts_ba += 1
                c.bytes_ba += ln
                if tcp:
                    c.bits |= (FIN_BA if fl & FIN else 0) | (RST_BA if fl & RST else 0) | \
                        (SYNACK_BA if (fl & (SYN | ACK | RST)) == (SYN | ACK) else 0)
                dbit = PAY_BA
            if ln > 0 and pay_cap[i] > 0 and not (c.bits & dbit):
                c.bits |= dbit
                start = pay_off[i]
                take = pay_cap[i] if pay_cap[i] < self.payload_head else self.payload_head
                buf[start]  # bounds checks: the first and last payload byte are in the buffer
                buf[start + take - 1]
                self.payloads[c.conn * 2 + (0 if ab else 1)] = PyBytes_FromStringAndSize(
                    <const char*>&buf[start], take)

    cdef dict _columns(self, const unsigned char[::1] pick, Py_ssize_t k):
        """Columns (``flows.AGG_SCHEMA`` less the address texts) of the picked slots."""
        conn_a = np.empty(k, dtype=np.int64)
        first_index_a = np.empty(k, dtype=np.int64)
        first_ts_a = np.empty(k, dtype=np.int64)
        max_ts_a = np.empty(k, dtype=np.int64)
        v6_a = np.empty(k, dtype=np.bool_)
        a_hi_a = np.empty(k, dtype=np.uint64)
        a_lo_a = np.empty(k, dtype=np.uint64)
        b_hi_a = np.empty(k, dtype=np.uint64)
        b_lo_a = np.empty(k, dtype=np.uint64)
        pa_a = np.empty(k, dtype=np.int64)
        pb_a = np.empty(k, dtype=np.int64)
        proto_a = np.empty(k, dtype=np.int64)
        pk_ab_a = np.empty(k, dtype=np.int64)
        pk_ba_a = np.empty(k, dtype=np.int64)
        by_ab_a = np.empty(k, dtype=np.int64)
        by_ba_a = np.empty(k, dtype=np.int64)
        bits_a = np.empty(k, dtype=np.int64)
        cdef long long[::1] conn = conn_a, fi = first_index_a, ft = first_ts_a, mt = max_ts_a
        cdef long long[::1] pa = pa_a, pb = pb_a, pr = proto_a, bits = bits_a
        cdef long long[::1] pkab = pk_ab_a, pkba = pk_ba_a, byab = by_ab_a, byba = by_ba_a
        cdef unsigned long long[::1] ahi = a_hi_a, alo = a_lo_a, bhi = b_hi_a, blo = b_lo_a
        cdef unsigned char[::1] v6 = v6_a.view(np.uint8)
        pay_ab = [None] * k
        pay_ba = [None] * k
        cdef Py_ssize_t s, j = 0
        cdef Conn* c
        payloads = self.payloads
        for s in range(self.n):
            if not pick[s]:
                continue
            c = &self.conns[s]
            conn[j] = c.conn
            fi[j] = c.first_index
            ft[j] = c.first_ts
            mt[j] = c.max_ts
            v6[j] = (c.bits & IS_V6) != 0
            ahi[j], alo[j], bhi[j], blo[j] = c.a_hi, c.a_lo, c.b_hi, c.b_lo
            pa[j], pb[j], pr[j] = c.pa, c.pb, c.proto
            pkab[j], pkba[j], byab[j], byba[j] = c.pkts_ab, c.pkts_ba, c.bytes_ab, c.bytes_ba
            bits[j] = c.bits
            if c.bits & PAY_AB:
                pay_ab[j] = payloads[c.conn * 2]
            if c.bits & PAY_BA:
                pay_ba[j] = payloads[c.conn * 2 + 1]
            j += 1
        return {
            "conn": conn_a, "first_index": first_index_a, "first_ts": first_ts_a,
            "max_ts": max_ts_a, "v6": v6_a, "a_hi": a_hi_a, "a_lo": a_lo_a, "b_hi": b_hi_a,
            "b_lo": b_lo_a, "pa": pa_a, "pb": pb_a, "proto": proto_a,
            "first_ab": (bits_a & FIRST_AB) != 0, "first_syn": (bits_a & FIRST_SYN) != 0,
            "pkts_ab": pk_ab_a, "pkts_ba": pk_ba_a, "bytes_ab": by_ab_a, "bytes_ba": by_ba_a,
            "fin_ab": (bits_a & FIN_AB) != 0, "fin_ba": (bits_a & FIN_BA) != 0,
            "rst_ab": (bits_a & RST_AB) != 0, "rst_ba": (bits_a & RST_BA) != 0,
            "synack_ab": (bits_a & SYNACK_AB) != 0, "synack_ba": (bits_a & SYNACK_BA) != 0,
            "payload_ab": pay_ab, "payload_ba": pay_ba,
        }

    def aggregates(self):
        """Every connection so far, in connection order, as a dict of columns."""
        pick = np.ones(self.n, dtype=np.uint8)
        return self._columns(pick, self.n)

    def drain(self, long long now_ns, long long idle_ns):
        """Connections touched since the last drain, plus which of them are over.

        A connection is over when FIN came both ways, an RST came, or nothing was seen
        for ``idle_ns``; it is then forgotten (a later packet of its flow starts a new one).

        Returns:
            ``(columns, over)``: the columns of those connections in connection order, and
            a bool array saying which of them are over.
        """
        pick_a = np.zeros(self.n, dtype=np.uint8)
        over_a = np.zeros(self.n, dtype=np.uint8)
        cdef unsigned char[::1] pick = pick_a, over = over_a
        cdef Py_ssize_t s, k = 0, keep = 0
        cdef Conn* c
        for s in range(self.n):
            c = &self.conns[s]
            if ((c.bits & FIN_AB and c.bits & FIN_BA) or c.bits & (RST_AB | RST_BA)
                    or now_ns - c.max_ts > idle_ns):
                over[s] = 1
            if over[s] or c.bits & DIRTY:
                pick[s] = 1
                k += 1
        cols = self._columns(pick, k)
        over_rows = over_a[pick_a.astype(bool)].astype(bool)
        # Forget what is over; keep the others in order, clean.
        for s in range(self.n):
            c = &self.conns[s]
            if over[s]:
                self.payloads.pop(c.conn * 2, None)
                self.payloads.pop(c.conn * 2 + 1, None)
                continue
            if keep != s:
                self.conns[keep] = self.conns[s]
            self.conns[keep].bits &= ~DIRTY
            keep += 1
        self.n = keep
        size = 4096
        while size < 2 * self.n + 2:
            size *= 2
        self._rebuild(size)
        return cols, over_rows
