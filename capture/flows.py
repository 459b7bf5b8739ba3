"""Packets -> connections: one record per TCP connection, one per UDP 5-tuple.

The rules (both builders below implement them; tests check they agree):

* Packets are grouped by their unordered 5-tuple ("flow").  A new TCP connection starts
  at a flow's first packet, and at a pure SYN (SYN without ACK, RST or FIN) when a FIN or
  RST was seen in the flow since its previous pure SYN: a reused 4-tuple after a close.
* The originator is the sender of the opening pure SYN.  Without one (the capture began
  mid-connection, ``state=partial``): the sender of a SYN-ACK is the responder; else the
  side with the lower port is the responder (the listening side); equal ports: the first
  packet's sender is the originator.  UDP: the first packet's sender.
* State: ``partial`` (no opening SYN), ``attempt`` (responder sent nothing), ``rejected``
  (responder sent RST but never SYN-ACK), ``closed`` (FIN both ways), ``reset`` (any RST),
  ``closed`` (FIN one way), else ``established``.  UDP: ``established`` if both sides sent,
  else ``attempt``.
* Bytes are transport payload lengths from the headers, packets are counted per
  direction; ``ts`` is the first packet's time, ``duration`` the latest time minus it.
* The service and app-layer fields come from the first payload segment of each direction
  (``capture.appproto``).

``ChunkedBuilder`` does this with polars over whole chunks (the fast path);
``FlowTable`` does it packet by packet for the scapy / tshark / live backends.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

import numpy as np
import polars as pl

from capture.appproto import inspect
from capture.fastpath import Decoded
from capture.packets import ACK, FIN, PAYLOAD_HEAD, RST, SYN, TCP, PacketRecord, ip_text
from capture.schema import SCHEMA

KEY: Final = ["v6", "a_hi", "a_lo", "b_hi", "b_lo", "pa", "pb", "proto"]

AGG_SCHEMA: Final = pl.Schema(
    {
        "conn": pl.Int64,
        "first_index": pl.Int64,
        "first_ts": pl.Int64,
        "max_ts": pl.Int64,
        "a_ip": pl.String,
        "b_ip": pl.String,
        "pa": pl.Int64,
        "pb": pl.Int64,
        "proto": pl.Int64,
        "first_ab": pl.Boolean,
        "first_syn": pl.Boolean,
        "pkts_ab": pl.Int64,
        "pkts_ba": pl.Int64,
        "bytes_ab": pl.Int64,
        "bytes_ba": pl.Int64,
        "fin_ab": pl.Boolean,
        "fin_ba": pl.Boolean,
        "rst_ab": pl.Boolean,
        "rst_ba": pl.Boolean,
        "synack_ab": pl.Boolean,
        "synack_ba": pl.Boolean,
        "payload_ab": pl.Binary,
        "payload_ba": pl.Binary,
    }
)
"""Per connection, before orientation: endpoints ``a``/``b`` in an arbitrary fixed order."""

_FLAG_SUMS: Final = ["pkts_ab", "pkts_ba", "bytes_ab", "bytes_ba"]
_FLAG_ANYS: Final = ["fin_ab", "fin_ba", "rst_ab", "rst_ba", "synack_ab", "synack_ba"]


def is_pure_syn(flags: int) -> bool:
    """SYN without ACK, RST or FIN: a connection-opening SYN."""
    return flags & (SYN | ACK | RST | FIN) == SYN


def is_synack(flags: int) -> bool:
    """SYN and ACK, no RST."""
    return flags & (SYN | ACK | RST) == SYN | ACK


# --- packet by packet --------------------------------------------------------------------


class FlowTable:
    """Connections built one ``PacketRecord`` at a time (reference and live backends).

    For live capture, ``drain`` hands out the connections touched since the last call and
    forgets those that are over, so memory follows the open connections, not the run.
    """

    def __init__(self) -> None:
        self._flows: dict[tuple[Any, ...], list[Any]] = {}
        self._conns: dict[int, dict[str, Any]] = {}
        self._keys: dict[int, tuple[Any, ...]] = {}
        self._dirty: set[int] = set()
        self._next = 0

    def __len__(self) -> int:
        return len(self._conns)

    @property
    def created(self) -> int:
        """Connections started so far, including those already drained and forgotten."""
        return self._next

    def add(self, p: PacketRecord) -> None:
        """Account one packet to its connection (starting a new one where the rules say)."""
        ab = (p.src, p.sport) <= (p.dst, p.dport)
        a, b = ((p.src, p.sport), (p.dst, p.dport)) if ab else ((p.dst, p.dport), (p.src, p.sport))
        key = (a, b, p.proto)
        tcp = p.proto == TCP
        syn = tcp and is_pure_syn(p.flags)
        flow = self._flows.get(key)
        if flow is None or (syn and flow[1]):
            conn = {
                "conn": self._next,
                "first_index": p.index,
                "first_ts": p.ts_ns,
                "max_ts": p.ts_ns,
                "a_ip": a[0],
                "b_ip": b[0],
                "pa": a[1],
                "pb": b[1],
                "proto": p.proto,
                "first_ab": ab,
                "first_syn": syn,
                **dict.fromkeys(_FLAG_SUMS, 0),
                **dict.fromkeys(_FLAG_ANYS, False),
                "payload_ab": None,
                "payload_ba": None,
            }
            self._conns[self._next] = conn
            self._keys[self._next] = key
            self._next += 1
            flow = self._flows[key] = [conn, False]
        conn = flow[0]
        self._dirty.add(conn["conn"])
        if syn:
            flow[1] = False
        if tcp and p.flags & (FIN | RST):
            flow[1] = True
        d = "ab" if ab else "ba"
        conn["max_ts"] = max(conn["max_ts"], p.ts_ns)
        conn["pkts_" + d] += 1
        conn["bytes_" + d] += p.payload_len
        if tcp:
            conn["fin_" + d] |= bool(p.flags & FIN)
            conn["rst_" + d] |= bool(p.flags & RST)
            conn["synack_" + d] |= is_synack(p.flags)
        if p.payload_len > 0 and p.payload and conn["payload_" + d] is None:
            conn["payload_" + d] = p.payload[:PAYLOAD_HEAD]

    def aggregates(self) -> pl.DataFrame:
        """The connections so far, in ``AGG_SCHEMA``."""
        return _agg_frame([self._conns[c] for c in sorted(self._conns)])

    def drain(self, *, now_ns: int, idle_ns: int) -> tuple[pl.DataFrame, set[int]]:
        """Connections touched since the last drain, and which of them are over.

        A connection is over when FIN came both ways, an RST came, or nothing was seen for
        ``idle_ns``; it is then forgotten (a later packet of its 4-tuple starts a new one).

        Returns:
            (aggregates in ``AGG_SCHEMA``, ``conn`` numbers of the connections now over)
        """
        over = {
            c for c, conn in self._conns.items()
            if (conn["fin_ab"] and conn["fin_ba"]) or conn["rst_ab"] or conn["rst_ba"]
            or now_ns - conn["max_ts"] > idle_ns
        }  # fmt: skip
        rows = [self._conns[c] for c in sorted(self._dirty | over)]
        self._dirty.clear()
        for c in over:
            key = self._keys.pop(c)
            conn = self._conns.pop(c)
            flow = self._flows.get(key)
            if flow is not None and flow[0] is conn:
                del self._flows[key]
        return _agg_frame(rows), over


def _agg_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return AGG_SCHEMA.to_frame()
    return pl.DataFrame(rows, schema=AGG_SCHEMA, orient="row")


# --- whole chunks at a time ---------------------------------------------------------------


class ChunkedBuilder:
    """Connections built from ``Decoded`` chunks with polars: no Python loop per packet.

    State carried between chunks, per flow: the connection its last packet belonged to and
    whether a FIN/RST came since its last pure SYN.  Per connection: running aggregates.
    """

    def __init__(self) -> None:
        self._carry = pl.DataFrame(
            schema={**{k: _KEY_TYPES[k] for k in KEY}, "c_conn": pl.Int64, "c_closed": pl.Boolean}
        )
        self._aggs: pl.DataFrame | None = None
        self._payloads: dict[tuple[int, bool], bytes] = {}
        self._next = 0

    def add(self, d: Decoded, buf: bytes) -> None:
        """Account a decoded chunk; ``buf`` is the chunk buffer its payload offsets point into."""
        if len(d.index) == 0:
            return
        ab = (d.src_hi < d.dst_hi) | (
            (d.src_hi == d.dst_hi)
            & ((d.src_lo < d.dst_lo) | ((d.src_lo == d.dst_lo) & (d.sport <= d.dport)))
        )
        pk = pl.DataFrame(
            {
                "index": d.index,
                "ts": d.ts_ns,
                "v6": d.v6,
                "a_hi": np.where(ab, d.src_hi, d.dst_hi),
                "a_lo": np.where(ab, d.src_lo, d.dst_lo),
                "b_hi": np.where(ab, d.dst_hi, d.src_hi),
                "b_lo": np.where(ab, d.dst_lo, d.src_lo),
                "pa": np.where(ab, d.sport, d.dport),
                "pb": np.where(ab, d.dport, d.sport),
                "proto": d.proto,
                "ab": ab,
                "flags": d.flags,
                "plen": d.plen,
                "row": np.arange(len(d.index), dtype=np.int64),
            }
        )
        tcp = pl.col("proto") == TCP
        flags = pl.col("flags")
        pk = pk.with_columns(
            syn=tcp & ((flags & (SYN | ACK | RST | FIN)) == SYN),
            closer=tcp & ((flags & (FIN | RST)) != 0),
        ).join(self._carry, on=KEY, how="left", maintain_order="left")

        # Window functions over one hashed column are much cheaper than over the eight key
        # columns.  The hash is trusted only when it separates every flow of the chunk (as
        # many distinct hashes as flows); otherwise the chunk is redone on the key itself.
        pk = pk.with_columns(fid=_flow_hash())
        segmented, carry = self._segment(pk, "fid")
        if carry.height != segmented["fid"].n_unique():
            segmented, carry = self._segment(pk, KEY)
        pk = segmented
        n_new = int(pk["new"].sum())
        self._carry = pl.concat(
            [self._carry.join(carry, on=KEY, how="anti"), carry], how="vertical"
        )

        ab_c = pl.col("ab")
        payload = pl.col("plen") > 0
        is_fin = (flags & FIN) != 0
        is_rst = (flags & RST) != 0
        is_synack = tcp & ((flags & (SYN | ACK | RST)) == (SYN | ACK))
        agg = pk.group_by("conn").agg(
            pl.col("index").min().alias("first_index"),
            pl.col("ts").sort_by("index").first().alias("first_ts"),
            pl.col("ts").max().alias("max_ts"),
            *[pl.col(k).first() for k in KEY],
            ab_c.sort_by("index").first().alias("first_ab"),
            pl.col("syn").sort_by("index").first().alias("first_syn"),
            ab_c.sum().cast(pl.Int64).alias("pkts_ab"),
            (~ab_c).sum().cast(pl.Int64).alias("pkts_ba"),
            pl.col("plen").filter(ab_c).sum().alias("bytes_ab"),
            pl.col("plen").filter(~ab_c).sum().alias("bytes_ba"),
            (is_fin & ab_c).any().alias("fin_ab"),
            (is_fin & ~ab_c).any().alias("fin_ba"),
            (is_rst & ab_c).any().alias("rst_ab"),
            (is_rst & ~ab_c).any().alias("rst_ba"),
            (is_synack & ab_c).any().alias("synack_ab"),
            (is_synack & ~ab_c).any().alias("synack_ba"),
            pl.col("row").filter(payload & ab_c).min().alias("prow_ab"),
            pl.col("row").filter(payload & ~ab_c).min().alias("prow_ba"),
        )
        self._take_payloads(agg, d, buf)
        agg = agg.drop("prow_ab", "prow_ba")
        self._next += n_new
        if self._aggs is None:
            self._aggs = agg
        else:
            self._aggs = _merge(pl.concat([self._aggs, agg], how="vertical"))

    def _segment(self, pk: pl.DataFrame, flow: str | list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Assign each packet its connection number (``conn``), windows grouped by ``flow``.

        Returns:
            (packets with ``conn`` and ``new``, the per-flow carry for the next chunk)
        """
        seen = pl.col("c_conn").is_not_null()
        rn = pl.int_range(pl.len()).over(flow)
        cc = pl.col("closer").cast(pl.Int64).cum_sum().over(flow)
        pk = pk.with_columns(rn=rn, cc=cc)
        last_syn_cc = (
            pl.when(pl.col("syn")).then(pl.col("cc")).otherwise(None).forward_fill().shift(1)
        ).over(flow)
        cc_before = pl.col("cc") - pl.col("closer").cast(pl.Int64)
        since = (
            pl.when(last_syn_cc.is_null())
            .then(cc_before + pl.col("c_closed").fill_null(False).cast(pl.Int64))
            .otherwise(cc_before - last_syn_cc)
        )
        seen_before = seen | (pl.col("rn") > 0)
        new = (pl.col("syn") & (~seen_before | (since > 0))) | (~seen & (pl.col("rn") == 0))
        pk = pk.with_columns(new=new)
        # Number new connections in packet order over the whole chunk, then spread each
        # number over the rest of its flow's packets until the flow's next new connection.
        pk = pk.with_columns(
            new_no=pl.when(pl.col("new")).then(
                self._next + pl.col("new").cast(pl.Int64).cum_sum() - 1
            )
        )
        pk = pk.with_columns(
            conn=pl.col("new_no").forward_fill().over(flow).fill_null(pl.col("c_conn"))
        )

        # Carry for the next chunk: each flow's current connection and close flag.
        last_syn = pl.when(pl.col("syn")).then(pl.col("cc")).otherwise(None).drop_nulls().last()
        total = pl.col("cc").last()
        carry = pk.group_by(KEY).agg(
            c_conn=pl.col("conn").last(),
            c_closed=pl.when(last_syn.is_null())
            .then(pl.col("c_closed").first().fill_null(False) | (total > 0))
            .otherwise((total - last_syn) > 0),
        )
        return pk, carry

    def _take_payloads(self, agg: pl.DataFrame, d: Decoded, buf: bytes) -> None:
        pay_off, pay_cap = d.pay_off, d.pay_cap
        for conn, prow_ab, prow_ba in agg.select("conn", "prow_ab", "prow_ba").iter_rows():
            for direction, prow in ((True, prow_ab), (False, prow_ba)):
                if prow is None or (conn, direction) in self._payloads:
                    continue
                start = int(pay_off[prow])
                self._payloads[conn, direction] = buf[start : start + min(int(pay_cap[prow]), PAYLOAD_HEAD)]

    def aggregates(self) -> pl.DataFrame:
        """The connections so far, in ``AGG_SCHEMA``."""
        if self._aggs is None:
            return AGG_SCHEMA.to_frame()
        aggs = self._aggs.sort("conn")
        a_ip = _ip_text(aggs["v6"], aggs["a_hi"], aggs["a_lo"])
        b_ip = _ip_text(aggs["v6"], aggs["b_hi"], aggs["b_lo"])
        conns = aggs["conn"].to_list()
        pay_ab = [self._payloads.get((c, True)) for c in conns]
        pay_ba = [self._payloads.get((c, False)) for c in conns]
        return aggs.with_columns(
            a_ip=a_ip,
            b_ip=b_ip,
            payload_ab=pl.Series(pay_ab, dtype=pl.Binary),
            payload_ba=pl.Series(pay_ba, dtype=pl.Binary),
        ).select(AGG_SCHEMA.names()).cast(dict(AGG_SCHEMA))


_KEY_TYPES: Final = {
    "v6": pl.Boolean,
    "a_hi": pl.UInt64,
    "a_lo": pl.UInt64,
    "b_hi": pl.UInt64,
    "b_lo": pl.UInt64,
    "pa": pl.Int64,
    "pb": pl.Int64,
    "proto": pl.Int64,
}


def _flow_hash() -> pl.Expr:
    """One 64-bit value per flow key (see ``ChunkedBuilder.add`` for why it stays exact)."""
    return pl.struct(KEY).hash()


def _merge(aggs: pl.DataFrame) -> pl.DataFrame:
    """Combine partial aggregates of the same connection from several chunks."""
    order = pl.col("first_index")
    return aggs.group_by("conn").agg(
        order.min(),
        pl.col("first_ts").sort_by(order).first(),
        pl.col("max_ts").max(),
        *[pl.col(k).first() for k in KEY],
        pl.col("first_ab").sort_by(order).first(),
        pl.col("first_syn").sort_by(order).first(),
        *[pl.col(c).sum() for c in _FLAG_SUMS],
        *[pl.col(c).any() for c in _FLAG_ANYS],
    )


def _ip_text(v6: pl.Series, hi: pl.Series, lo: pl.Series) -> pl.Series:
    """Canonical address text from the (v6, hi, lo) integer form."""
    texts = [ip_text(a, h, low) for a, h, low in zip(v6.to_list(), hi.to_list(), lo.to_list(), strict=True)]
    return pl.Series(texts, dtype=pl.String)


# --- aggregates -> records ----------------------------------------------------------------


def conn_uid(origin: str) -> str:
    """A stable Zeek-like id for the connection whose first packet is ``origin``."""
    digest = hashlib.blake2b(origin.encode(), digest_size=10).digest()
    return "C" + base64.b32encode(digest).decode().rstrip("=").lower()


def finalize(
    aggs: pl.DataFrame, *, name: str, observer: str | None, evidence: str = "pcap"
) -> pl.DataFrame:
    """Orient each connection, decide its state and service, and emit connection records.

    Args:
        aggs: per-connection aggregates in ``AGG_SCHEMA``.
        name: the file name used in ``origin`` (``name#packet``).
        observer: the destination host to record, or None.
        evidence: ``pcap`` or ``live``.
    """
    if aggs.height == 0:
        return SCHEMA.to_frame()
    c = pl.col
    tcp = c("proto") == TCP
    orig_is_a = (
        pl.when(~tcp | c("first_syn"))
        .then(c("first_ab"))
        .when(c("synack_ab") != c("synack_ba"))
        .then(c("synack_ba"))
        .when(c("pa") != c("pb"))
        .then(c("pa") > c("pb"))
        .otherwise(c("first_ab"))
    )
    df = aggs.sort("first_index").with_columns(oa=orig_is_a)

    def side(ab: str, ba: str) -> tuple[pl.Expr, pl.Expr]:
        return (
            pl.when(c("oa")).then(c(ab)).otherwise(c(ba)),
            pl.when(c("oa")).then(c(ba)).otherwise(c(ab)),
        )

    o_ip, r_ip = side("a_ip", "b_ip")
    o_port, r_port = side("pa", "pb")
    o_pkts, r_pkts = side("pkts_ab", "pkts_ba")
    o_bytes, r_bytes = side("bytes_ab", "bytes_ba")
    o_fin, r_fin = side("fin_ab", "fin_ba")
    o_rst, r_rst = side("rst_ab", "rst_ba")
    _, r_synack = side("synack_ab", "synack_ba")
    o_pay, r_pay = side("payload_ab", "payload_ba")
    state = (
        pl.when(~tcp)
        .then(pl.when(r_pkts > 0).then(pl.lit("established")).otherwise(pl.lit("attempt")))
        .when(~c("first_syn"))
        .then(pl.lit("partial"))
        .when(r_pkts == 0)
        .then(pl.lit("attempt"))
        .when(~r_synack & r_rst)
        .then(pl.lit("rejected"))
        .when(o_fin & r_fin)
        .then(pl.lit("closed"))
        .when(o_rst | r_rst)
        .then(pl.lit("reset"))
        .when(o_fin | r_fin)
        .then(pl.lit("closed"))
        .otherwise(pl.lit("established"))
    )
    origin = pl.lit(name + "#") + c("first_index").cast(pl.String)
    df = df.select(
        ts=c("first_ts"),
        dur=c("max_ts") - c("first_ts"),
        src_ip=o_ip,
        src_port=o_port,
        dst_ip=r_ip,
        dst_port=r_port,
        proto=pl.when(tcp).then(pl.lit("tcp")).otherwise(pl.lit("udp")),
        state=state,
        orig_bytes=o_bytes,
        resp_bytes=r_bytes,
        orig_pkts=o_pkts,
        resp_pkts=r_pkts,
        o_pay=o_pay,
        r_pay=r_pay,
        ip_proto=c("proto"),
        origin=origin,
    )
    apps = [
        inspect(o, r, proto) if (o or r) else None
        for o, r, proto in df.select("o_pay", "r_pay", "ip_proto").iter_rows()
    ]
    fields = (
        "service", "ssh_client", "ssh_server", "http_method", "http_host", "http_path",
        "http_status", "http_user_agent", "http_xff",
    )  # fmt: skip
    app_cols = {
        f: [getattr(a, f) if a else ("other" if f == "service" else None) for a in apps]
        for f in fields
    }
    origins = df["origin"].to_list()
    out = df.with_columns(
        conn_id=pl.Series([conn_uid(o) for o in origins], dtype=pl.String),
        ts=pl.from_epoch(c("ts") // 1000, time_unit="us").dt.replace_time_zone("UTC"),
        duration=pl.duration(microseconds=c("dur") // 1000),
        observer=pl.lit(observer, dtype=pl.String),
        evidence=pl.lit([evidence]),
        origin=pl.concat_list(c("origin")),
        src_host=pl.lit(None, dtype=pl.String),
        ssh_user=pl.lit(None, dtype=pl.String),
        ssh_auth=pl.lit(None),
        ssh_method=pl.lit(None),
        **{f: pl.Series(v) for f, v in app_cols.items()},
    )
    return out.select(
        [pl.col(name).cast(dtype) for name, dtype in SCHEMA.items()]
    )
