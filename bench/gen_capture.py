"""Generate the benchmark capture: a large pcap of many interleaved TCP connections, fast.

Every connection opens like the real thing (SYN, SYN-ACK, ACK, then an SSH banner exchange,
an HTTP request and response, or a TLS ClientHello and ServerHello, by destination port
22 / 80 / 443), carries data segments (payloads of 60-1400 bytes) and pure ACKs, and closes
with FIN / FIN / ACK.  About 1% of all packets are connection-opening SYNs; some
connections are IPv6, some carry an 802.1Q VLAN tag.  Packets are built with numpy, a
block of about 1,000 connections at a time (memory stays flat whatever the size), never
with scapy.  Next to the capture goes ``<name>.truth.json``: what a correct reader must
find (connections, packets and payload bytes each way, services).

    .venv/bin/python bench/gen_capture.py bench/out/capture_1M.pcap --packets 1000000
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path
from typing import Any, Final

import numpy as np

CONNS_PER_BLOCK: Final = 1_000
PACKETS_PER_CONN: Final = 100
"""So that connection-opening SYNs are 1% of the packets."""
FIXED_PER_CONN: Final = 8
"""SYN, SYN-ACK, ACK, two opening payloads, FIN, FIN, ACK."""
DATA_SHARE: Final = 0.6
"""Share of the middle packets that carry data (the rest are pure ACKs)."""
V6_SHARE: Final = 0.1
VLAN_SHARE: Final = 0.2
BLOCK_SECONDS: Final = 60
T0: Final = 1_768_471_200  # 2026-01-15T10:00:00Z

SERVER_V4: Final = (192 << 24) | (0 << 16) | (2 << 8) | 20  # 192.0.2.20
SERVER_V6: Final = (0x20010DB800200000, 0x20)  # 2001:db8:20::20
CLIENT_NETS_V4: Final = (
    (203 << 24) | (0 << 16) | (113 << 8),  # 203.0.113.0/24
    (198 << 24) | (51 << 16) | (100 << 8),  # 198.51.100.0/24
)
CLIENT_V6_HI: Final = 0x20010DB800010000  # 2001:db8:1::/64
CLIENTS: Final = 500
"""Distinct client addresses; the client port makes each 4-tuple unique."""

SERVICES: Final = ("ssh", "http", "https")
PORTS: Final = np.array([22, 80, 443], dtype=np.int64)


def _tls_client_hello(sni: bytes) -> bytes:
    server_name = struct.pack("!HBH", len(sni) + 3, 0, len(sni)) + sni
    ext = struct.pack("!HH", 0, len(server_name)) + server_name
    ext += struct.pack("!HHB", 0x2B, 3, 2) + b"\x03\x04"
    body = (
        b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
        + struct.pack("!H", len(ext)) + ext
    )  # fmt: skip
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def _tls_server_hello() -> bytes:
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00" + b"\x00\x00"
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs


OPENINGS: Final = {
    # service: (first payload, from client?), (second payload, from client?)
    "ssh": (
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", False),
        (b"SSH-2.0-OpenSSH_9.6\r\n", True),
    ),
    "http": (
        (
            b"GET /api/items?page=1 HTTP/1.1\r\nHost: bench.example.com\r\n"
            b"User-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Forwarded-For: 203.0.113.99\r\n\r\n",
            True,
        ),
        (
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 48000\r\n\r\n",
            False,
        ),
    ),
    "https": ((_tls_client_hello(b"bench.example.net"), True), (_tls_server_hello(), False)),
}


def _put(buf: np.ndarray, pos: np.ndarray, value: Any, nbytes: int, order: str = "big") -> None:
    """Write ``value`` (array or scalar) as ``nbytes``-byte integers at ``pos``."""
    v = np.asarray(value, dtype=np.uint64)
    for i in range(nbytes):
        shift = 8 * (nbytes - 1 - i if order == "big" else i)
        buf[pos + i] = ((v >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.uint8)


def _block(
    rng: np.random.Generator, first_conn: int, n_conns: int, n_mid: int, t0_ns: int
) -> tuple[bytes, dict[str, int]]:
    """``n_conns`` connections with ``n_mid`` middle packets in all, as pcap records."""
    conn_ids = first_conn + np.arange(n_conns)
    service = rng.integers(0, 3, n_conns)
    v6 = rng.random(n_conns) < V6_SHARE
    vlan = rng.random(n_conns) < VLAN_SHARE
    # Split n_mid over the connections (each gets at least 0), unevenly like real traffic.
    weights = rng.exponential(1.0, n_conns)
    mids = np.floor(weights / weights.sum() * n_mid).astype(np.int64)
    short = n_mid - int(mids.sum())
    np.add.at(mids, rng.integers(0, n_conns, short), 1)
    lengths = mids + FIXED_PER_CONN

    # Per packet: which connection, position k in it.
    conn = np.repeat(np.arange(n_conns), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    k = np.arange(len(conn)) - starts[conn]
    last = lengths[conn]
    svc = service[conn]

    # Direction (True: client -> server), flags and payload length per packet.
    from_client = rng.random(len(conn)) < 0.4
    flags = np.full(len(conn), 0x10, dtype=np.int64)  # ACK
    plen = np.where(rng.random(len(conn)) < DATA_SHARE, rng.integers(60, 1401, len(conn)), 0)
    flags[plen > 0] = 0x18
    kind_payload = np.full(len(conn), -1, dtype=np.int64)  # index into opening templates
    for pos_k, fc, fl in ((0, True, 0x02), (1, False, 0x12), (2, True, 0x10)):
        m = k == pos_k
        from_client[m], flags[m], plen[m] = fc, fl, 0
    for j, name in enumerate(SERVICES):
        for which in (0, 1):
            m = (k == 3 + which) & (svc == j)
            payload, fc = OPENINGS[name][which]
            from_client[m], flags[m], plen[m] = fc, 0x18, len(payload)
            kind_payload[m] = j * 2 + which
    for back, fc, fl in ((3, True, 0x11), (2, False, 0x11), (1, True, 0x10)):
        m = k == last - back
        from_client[m], flags[m], plen[m] = fc, fl, 0

    # Sequence numbers: ISN + bytes (and SYN/FIN) sent before, per side.
    isn = rng.integers(0, 1 << 31, (n_conns, 2))
    side = np.where(from_client, 0, 1)
    used = plen + ((flags & 0x03) != 0)  # SYN and FIN take one sequence number
    seq = np.zeros(len(conn), dtype=np.int64)
    ack = np.zeros(len(conn), dtype=np.int64)
    for s in (0, 1):
        mine = np.where(side == s, used, 0)
        total = np.cumsum(mine)
        base = np.concatenate([[0], total])[starts][conn]
        sent_before = total - mine - base
        seq = np.where(side == s, isn[conn, s] + sent_before, seq)
        ack = np.where(side != s, isn[conn, s] + sent_before + 0, ack)
    seq &= 0xFFFFFFFF
    ack = np.where(k == 0, 0, ack & 0xFFFFFFFF)

    # Times: each connection starts in the first half of the block's window, packets spaced
    # evenly to end inside it; then every packet of the block in time order.
    window = BLOCK_SECONDS * 1_000_000_000
    begin = rng.integers(0, window // 2, n_conns)
    gap = rng.integers(100_000, window // 2 // lengths.max() + 100_001, n_conns)
    ts = t0_ns + begin[conn] + k * gap[conn]
    ts -= ts % 1000  # microsecond pcap
    order = np.lexsort((k, conn, ts))
    (conn, k, svc, from_client, flags, plen, seq, ack, ts, kind_payload) = (
        a[order] for a in (conn, k, svc, from_client, flags, plen, seq, ack, ts, kind_payload)
    )

    is6, tagged = v6[conn], vlan[conn]
    eth_len = np.where(tagged, 18, 14)
    ip_len = np.where(is6, 40, 20)
    caplen = eth_len + ip_len + 20 + plen
    rec = 16 + caplen
    off = np.concatenate([[0], np.cumsum(rec)[:-1]])
    buf = rng.integers(0, 256, int(rec.sum()), dtype=np.uint8)  # payload bytes: noise

    # pcap record header (little-endian).
    _put(buf, off, ts // 1_000_000_000, 4, "little")
    _put(buf, off + 4, (ts // 1000) % 1_000_000, 4, "little")
    _put(buf, off + 8, caplen, 4, "little")
    _put(buf, off + 12, caplen, 4, "little")
    # Ethernet, optional 802.1Q tag.
    e = off + 16
    mac_c, mac_s = 0x020000000001, 0x020000000002
    _put(buf, e, np.where(from_client, mac_s, mac_c), 6)
    _put(buf, e + 6, np.where(from_client, mac_c, mac_s), 6)
    t = np.flatnonzero(tagged)
    _put(buf, e[t] + 12, 0x8100, 2)
    _put(buf, e[t] + 14, 100 + conn[t] % 8, 2)
    ip = e + eth_len
    _put(buf, ip - 2, np.where(is6, 0x86DD, 0x0800), 2)

    cid = conn_ids[conn]
    client_n = cid % CLIENTS
    client_port = 1024 + cid // CLIENTS
    server_port = PORTS[svc]
    # IPv4 header.
    i4 = np.flatnonzero(~is6)
    p4 = ip[i4]
    c4 = CLIENT_NETS_V4[0] + (client_n[i4] % 250) + 1
    c4 = np.where(client_n[i4] >= 250, CLIENT_NETS_V4[1] + (client_n[i4] % 250) + 1, c4)
    src4 = np.where(from_client[i4], c4, SERVER_V4)
    dst4 = np.where(from_client[i4], SERVER_V4, c4)
    total4 = 40 + plen[i4]
    words = (
        0x4500 + total4 + (k[i4] & 0xFFFF) + 0x4000 + 0x4006
        + (src4 >> 16) + (src4 & 0xFFFF) + (dst4 >> 16) + (dst4 & 0xFFFF)
    )  # fmt: skip
    words = (words & 0xFFFF) + (words >> 16)
    words = (words & 0xFFFF) + (words >> 16)
    _put(buf, p4, 0x4500, 2)
    _put(buf, p4 + 2, total4, 2)
    _put(buf, p4 + 4, k[i4] & 0xFFFF, 2)
    _put(buf, p4 + 6, 0x4000, 2)
    _put(buf, p4 + 8, 0x4006, 2)
    _put(buf, p4 + 10, 0xFFFF - words, 2)
    _put(buf, p4 + 12, src4, 4)
    _put(buf, p4 + 16, dst4, 4)
    # IPv6 header.
    i6 = np.flatnonzero(is6)
    p6 = ip[i6]
    c6_lo = client_n[i6] + 1
    _put(buf, p6, 0x60000000, 4)
    _put(buf, p6 + 4, 20 + plen[i6], 2)
    _put(buf, p6 + 6, 0x0640, 2)  # next header TCP, hop limit 64
    fc6 = from_client[i6]
    _put(buf, p6 + 8, np.where(fc6, CLIENT_V6_HI, SERVER_V6[0]), 8)
    _put(buf, p6 + 16, np.where(fc6, c6_lo, SERVER_V6[1]), 8)
    _put(buf, p6 + 24, np.where(fc6, SERVER_V6[0], CLIENT_V6_HI), 8)
    _put(buf, p6 + 32, np.where(fc6, SERVER_V6[1], c6_lo), 8)
    # TCP header (checksum left 0, as captures with checksum offload show it).
    tcp = ip + ip_len
    _put(buf, tcp, np.where(from_client, client_port, server_port), 2)
    _put(buf, tcp + 2, np.where(from_client, server_port, client_port), 2)
    _put(buf, tcp + 4, seq, 4)
    _put(buf, tcp + 8, ack, 4)
    _put(buf, tcp + 12, 0x5000 | flags, 2)
    _put(buf, tcp + 14, 0xFFFF, 2)
    _put(buf, tcp + 16, 0, 4)
    # Opening payloads.
    pay = tcp + 20
    for j, name in enumerate(SERVICES):
        for which in (0, 1):
            sel = np.flatnonzero(kind_payload == j * 2 + which)
            tmpl = np.frombuffer(OPENINGS[name][which][0], dtype=np.uint8)
            buf[pay[sel][:, None] + np.arange(len(tmpl))] = tmpl

    truth = {
        "connections": n_conns,
        "packets": len(conn),
        "orig_pkts": int(from_client.sum()),
        "resp_pkts": int((~from_client).sum()),
        "orig_bytes": int(plen[from_client].sum()),
        "resp_bytes": int(plen[~from_client].sum()),
        **{f"service_{name}": int((service == j).sum()) for j, name in enumerate(SERVICES)},
        "ipv6_connections": int(v6.sum()),
        "vlan_connections": int(vlan.sum()),
    }
    return buf.tobytes(), truth


def generate(path: Path, packets: int, *, seed: int = 1) -> dict[str, Any]:
    """Write ``packets`` packets (rounded to whole connections) to ``path``; return the truth."""
    rng = np.random.default_rng(seed)
    n_conns = max(1, round(packets / PACKETS_PER_CONN))
    truth: dict[str, Any] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with tmp.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        done = 0
        block = 0
        while done < n_conns:
            n = min(CONNS_PER_BLOCK, n_conns - done)
            n_mid = n * (PACKETS_PER_CONN - FIXED_PER_CONN)
            t0 = (T0 + block * BLOCK_SECONDS) * 1_000_000_000
            data, part = _block(rng, done, n, n_mid, t0)
            f.write(data)
            for key, value in part.items():
                truth[key] = truth.get(key, 0) + value
            done += n
            block += 1
    tmp.replace(path)
    truth["file_bytes"] = path.stat().st_size
    truth["states"] = {"closed": n_conns}
    Path(str(path) + ".truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t = time.perf_counter()
    truth = generate(args.path, args.packets, seed=args.seed)
    print(
        f"wrote {args.path}: {truth['packets']:,} packets, {truth['connections']:,} "
        f"connections, {truth['file_bytes'] / 1e6:,.0f} MB in {time.perf_counter() - t:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
