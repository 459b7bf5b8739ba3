"""Fuzz the compiled capture core directly: ``capture/_walk.pyx``, ``_decode.pyx``, ``_flows.pyx``.

``fuzz_capture_fast`` reaches the core through whole files (and polars, at about 15 inputs a
second); this target hands it arbitrary windows, packet tables and link types thousands of
times faster.  The invariant: on any bytes, the record walks and the decoder return (never
raise), their arrays stay inside the buffer, and the accounting of what the decoder gave
counts every decoded packet exactly once.

Run: ``.venv/bin/python fuzz/fuzz_capture_core.py -max_total_time=60`` (libFuzzer flags).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

if not __package__:  # run as a script: make ``fuzz`` and the packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    import atheris  # noqa: F401

import numpy as np

from fuzz import _common

with _common.instrumented():
    from capture import _decode, _flows, _walk

NAME = "capture_core"
SEED_GLOBS = ("pcaps/*.pcap", "pcaps/*.pcapng", "tests/data/*.pcap*")
LINKTYPES = (0, 1, 12, 101, 108, 113, 228, 229, 239, 276, 147)


def _inside(buf: bytes, off: np.ndarray, cap: np.ndarray) -> None:
    if len(off) and (int(off.min()) < 0 or int((off + cap).max()) > len(buf) or int(cap.min()) < 0):
        raise _common.InvariantViolation(f"walk points outside the buffer: {off} {cap}")


def one_input(data: bytes) -> None:
    """Walk ``data`` as pcap records and pcapng blocks, then decode and account the packets."""
    if len(data) < 2:
        return
    control, buf = data[0], data[1:]
    big = bool(control & 1)
    stop, off, cap, wire, ts, bad = _walk.walk_pcap(buf, 0, len(buf), big, 65535, 1000)
    _inside(buf, off, cap)
    if not 0 <= stop <= len(buf):
        raise _common.InvariantViolation(f"walk_pcap stopped at {stop}")
    # Two interfaces with different resolutions and an offset, as the pcapng reader sets up.
    i64, u64 = np.int64, np.uint64
    table = (
        np.array([1, 101], i64), np.array([0, 64], i64), np.array([1000, 1], i64),
        np.array([0, 0], i64), np.array([1, 1 << 10], u64), np.array([0, -1], i64),
        np.array([5, 7], u64),
    )  # fmt: skip
    res = _walk.walk_pcapng(buf, 0, len(buf), big, 1 << 26, *table)
    _inside(buf, res[2], res[3])
    lt = LINKTYPES[(control >> 1) % len(LINKTYPES)]
    for o, c in ((off, cap), (res[2], res[3])):
        if not len(o):
            continue
        links = np.full(len(o), lt, dtype=np.int32)
        rows, cols, counts, other, unsupported = _decode.decode(buf, o, c, links, None)
        skipped = sum(counts[k] for k in ("non_ip", "fragments", "malformed")) + int(other.sum())
        if counts["tcp"] + counts["udp"] != len(rows) or len(rows) + skipped + sum(unsupported.values()) != len(o):
            raise _common.InvariantViolation(f"decode lost packets: {counts} {len(rows)} of {len(o)}")
        acc = _flows.Accounting(64)
        idx = np.arange(1, len(rows) + 1, dtype=np.int64)
        acc.add(buf, idx, ts[: len(rows)] if len(ts) >= len(rows) else idx, cols["v6"].view(np.uint8),
                cols["src_hi"], cols["src_lo"], cols["dst_hi"], cols["dst_lo"], cols["sport"],
                cols["dport"], cols["proto"], cols["flags"], cols["plen"], cols["pay_off"],
                cols["pay_cap"])  # fmt: skip
        aggs = acc.aggregates()
        if int(aggs["pkts_ab"].sum() + aggs["pkts_ba"].sum()) != len(rows):
            raise _common.InvariantViolation("accounting lost packets")
        drained, over = acc.drain(1 << 62, -1)
        if len(acc) != 0 or len(over) != len(aggs["conn"]):
            raise _common.InvariantViolation("a final drain must forget every connection")
    if len(off):
        recs = _walk.pcap_records(buf, off, cap, wire, ts)
        if len(recs) != int(16 * len(off) + cap.sum()):
            raise _common.InvariantViolation("pcap_records length")
        back = _walk.walk_pcap(recs, 0, len(recs), False, 1 << 26, 1)
        if len(back[1]) != len(off) or struct.unpack_from("<I", recs, 8)[0] != int(cap[0]):
            raise _common.InvariantViolation("pcap_records does not walk back")


def seeds() -> list[bytes]:
    out = []
    for p in _common.fixtures(*SEED_GLOBS):
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            continue
        out.append(b"\x02" + raw[24:] if raw[:4] != b"\x0a\x0d\x0d\x0a" else b"\x02" + raw)
    return out


if __name__ == "__main__":
    _common.main(NAME, one_input, seeds())
