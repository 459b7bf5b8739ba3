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

``ChunkedBuilder`` does this over whole decoded chunks in the compiled core
(``capture/_flows.pyx``: saved captures and live capture); ``FlowTable`` does it packet by
packet in Python for the scapy / tshark backends, and is the reference the tests compare
the compiled core with.
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

from capture.core import compiled

_flows = compiled("_flows")

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
    """Connections built one ``PacketRecord`` at a time (the scapy / tshark backends).

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
    """Connections built from ``Decoded`` chunks by the compiled core (``capture/_flows.pyx``).

    No Python object per packet: the core keeps a hash table of flows and an array of
    running per-connection aggregates; only each direction's first payload becomes bytes.
    Saved captures call ``aggregates`` once at the end; live capture calls ``drain`` at
    each rotation, so memory follows the open connections, not the run.
    """

    def __init__(self) -> None:
        self._acc = _flows.Accounting(PAYLOAD_HEAD)

    def __len__(self) -> int:
        return len(self._acc)

    @property
    def created(self) -> int:
        """Connections started so far, including those already drained and forgotten."""
        return int(self._acc.created)

    def add(self, d: Decoded, buf: Any) -> None:
        """Account a decoded chunk; ``buf`` is the chunk buffer its payload offsets point into."""
        if len(d.index) == 0:
            return
        self._acc.add(
            buf, d.index, d.ts_ns, d.v6.view(np.uint8), d.src_hi, d.src_lo, d.dst_hi,
            d.dst_lo, d.sport, d.dport, d.proto, d.flags, d.plen, d.pay_off, d.pay_cap,
        )  # fmt: skip

    def aggregates(self) -> pl.DataFrame:
        """The connections so far, in ``AGG_SCHEMA``."""
        return _columns_frame(self._acc.aggregates())

    def drain(self, *, now_ns: int, idle_ns: int) -> tuple[pl.DataFrame, set[int]]:
        """As ``FlowTable.drain``: connections touched since the last drain, and those over."""
        cols, over = self._acc.drain(now_ns, idle_ns)
        return _columns_frame(cols), set(cols["conn"][over].tolist())


def _columns_frame(cols: dict[str, Any]) -> pl.DataFrame:
    """The compiled core's columns as a frame in ``AGG_SCHEMA`` (address texts added)."""
    if len(cols["conn"]) == 0:
        return AGG_SCHEMA.to_frame()
    v6, a_hi, a_lo, b_hi, b_lo = (cols.pop(k) for k in ("v6", "a_hi", "a_lo", "b_hi", "b_lo"))
    cols["a_ip"] = _ip_text(v6, a_hi, a_lo)
    cols["b_ip"] = _ip_text(v6, b_hi, b_lo)
    cols["payload_ab"] = pl.Series(cols["payload_ab"], dtype=pl.Binary)
    cols["payload_ba"] = pl.Series(cols["payload_ba"], dtype=pl.Binary)
    return pl.DataFrame(cols).select(AGG_SCHEMA.names()).cast(dict(AGG_SCHEMA))


def _ip_text(v6: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> pl.Series:
    """Canonical address text from the (v6, hi, lo) integer form, one row per connection.

    IPv4 is formatted by polars over the whole column; IPv6 once per distinct address.
    """
    df = pl.DataFrame({"v6": v6, "hi": hi, "lo": lo}, schema={"v6": pl.Boolean, "hi": pl.UInt64, "lo": pl.UInt64})
    lo_c = pl.col("lo")
    quad = pl.concat_str(
        [((lo_c // (1 << s)) % 256).cast(pl.String) for s in (24, 16, 8, 0)], separator="."
    )
    out = df.with_columns(text=pl.when(~pl.col("v6")).then(quad))
    if bool(v6.any()):
        uniq = df.filter("v6").select("hi", "lo").unique()
        texts = [ip_text(True, h, low) for h, low in uniq.iter_rows()]
        uniq = uniq.with_columns(text6=pl.Series(texts, dtype=pl.String))
        out = out.join(uniq, on=["hi", "lo"], how="left", maintain_order="left").with_columns(
            text=pl.coalesce("text", "text6")
        )
    return out["text"]


# --- aggregates -> records ----------------------------------------------------------------


def conn_uid(origin: str) -> str:
    """A stable Zeek-like id for the connection whose first packet is ``origin``."""
    digest = hashlib.blake2b(origin.encode(), digest_size=10).digest()
    return "C" + base64.b32encode(digest).decode().rstrip("=").lower()


_B32: Final = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)


def conn_uids(origins: list[str]) -> pl.Series:
    """``conn_uid`` of many origins at once: the hashing per row (C), the base32 text of
    the 10-byte digests for the whole column with numpy (``base64`` is a Python loop)."""
    if not origins:
        return pl.Series([], dtype=pl.String)
    blake = hashlib.blake2b
    digests = b"".join([blake(o.encode(), digest_size=10).digest() for o in origins])
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8)).reshape(-1, 16, 5)
    values = bits @ np.array([16, 8, 4, 2, 1], dtype=np.uint8)
    text = np.full((len(origins), 17), ord("C"), dtype=np.uint8)
    text[:, 1:] = _B32[values]
    return pl.Series("conn_id", text.view("S17").ravel().astype("U17"), dtype=pl.String)


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
    # The app-layer parse runs once per distinct (first payloads, protocol): connections
    # from the same client software open with the same bytes (SSH banners above all).
    pay_cols = ["o_pay", "r_pay", "ip_proto"]
    distinct = df.select(pay_cols).unique(maintain_order=True)
    apps = [
        inspect(o, r, proto) if (o or r) else None for o, r, proto in distinct.iter_rows()
    ]
    fields = (
        "service", "ssh_client", "ssh_server", "http_method", "http_host", "http_path",
        "http_status", "http_user_agent", "http_xff",
    )  # fmt: skip
    parsed = distinct.with_columns(
        **{
            f: pl.Series([getattr(a, f) if a else ("other" if f == "service" else None) for a in apps],
                         dtype=pl.String if f != "http_status" else pl.Int64)
            for f in fields
        }
    )  # fmt: skip
    app_cols = df.select(pay_cols).join(
        parsed, on=pay_cols, how="left", nulls_equal=True, maintain_order="left"
    )
    origins = df["origin"].to_list()
    out = df.with_columns(
        conn_id=conn_uids(origins),
        ts=pl.from_epoch(c("ts") // 1000, time_unit="us").dt.replace_time_zone("UTC"),
        duration=pl.duration(microseconds=c("dur") // 1000),
        observer=pl.lit(observer, dtype=pl.String),
        evidence=pl.lit([evidence]),
        origin=pl.concat_list(c("origin")),
        src_host=pl.lit(None, dtype=pl.String),
        ssh_user=pl.lit(None, dtype=pl.String),
        ssh_auth=pl.lit(None),
        ssh_method=pl.lit(None),
        **{f: app_cols[f] for f in fields},
    )
    return out.select(
        [pl.col(name).cast(dtype) for name, dtype in SCHEMA.items()]
    )
