"""capture.pcapfile: pcap / pcapng framing details, built byte by byte from the specs."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from capture.errors import CorruptCapture, NotACapture
from capture.pcapfile import CaptureFile, is_capture

PKT = bytes(range(40))


def block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def option(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def idb(linktype: int, options: bytes = b"", e: str = "<") -> bytes:
    end = struct.pack(e + "HH", 0, 0) if options else b""
    return block(1, struct.pack(e + "HHI", linktype, 0, 65535) + options + end, e)


def epb(iface: int, ts: int, data: bytes, e: str = "<") -> bytes:
    return block(6, struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data, e)


def read_all(path: Path, **kw: int) -> list[tuple[int, int, int, bytes]]:
    out = []
    with CaptureFile(str(path), **kw) as cf:
        for ch in cf.chunks():
            for i, o, c, t, lt in zip(ch.index, ch.off, ch.caplen, ch.ts_ns, ch.linktype, strict=True):
                out.append((int(i), int(t), int(lt), bytes(ch.buf[o : o + c])))
    return out


def test_pcapng_resolutions_offsets_and_interfaces(tmp_path: Path) -> None:
    f = tmp_path / "x.pcapng"
    f.write_bytes(
        shb()
        + idb(1)  # default microseconds
        + idb(101, option(9, b"\x09"))  # nanoseconds
        + idb(113, option(9, bytes([0x80 | 10])) + option(14, struct.pack("<q", 100)))  # 2^-10 s, +100 s
        + block(4, b"\x00" * 8)  # a name resolution block: skipped
        + epb(0, 1_700_000_000_123_456, PKT)
        + epb(1, 1_700_000_000_123_456_789, PKT[:20])
        + epb(2, 1024 * 5, PKT[:10])
        + block(3, struct.pack("<I", 40) + PKT)  # simple packet block: interface 0, no time
    )
    got = read_all(f)
    assert [(i, lt) for i, _, lt, _ in got] == [(1, 1), (2, 101), (3, 113), (4, 1)]
    assert got[0][1] == 1_700_000_000_123_456_000
    assert got[1][1] == 1_700_000_000_123_456_789
    assert got[2][1] == 105_000_000_000
    assert got[3][1] == 0 and got[3][3] == PKT
    assert [len(d) for *_, d in got] == [40, 20, 10, 40]


def test_pcapng_big_endian_section_after_a_little_endian_one(tmp_path: Path) -> None:
    f = tmp_path / "x.pcapng"
    f.write_bytes(shb("<") + idb(1) + epb(0, 1, PKT) + shb(">") + idb(101, e=">") + epb(0, 2, PKT[:20], ">"))
    got = read_all(f)
    assert [(lt, t, len(d)) for _, t, lt, d in got] == [(1, 1000, 40), (101, 2000, 20)]


def test_epb_on_an_undescribed_interface_is_corrupt(tmp_path: Path) -> None:
    f = tmp_path / "x.pcapng"
    f.write_bytes(shb() + idb(1) + epb(0, 1, PKT) + epb(3, 2, PKT))
    with pytest.raises(CorruptCapture, match="packet 2 .* refers to interface 3"):
        read_all(f)


@pytest.mark.parametrize(("magic", "e", "mult"), [(0xA1B2C3D4, "<", 1000), (0xA1B2C3D4, ">", 1000), (0xA1B23C4D, "<", 1), (0xA1B23C4D, ">", 1)])
def test_pcap_magic_byte_order_and_resolution(tmp_path: Path, magic: int, e: str, mult: int) -> None:
    f = tmp_path / "x.pcap"
    # linktype with the FCS-length bits set in its upper half: still Ethernet
    f.write_bytes(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 65535, 0x14000001)
                  + struct.pack(e + "IIII", 10, 7, 40, 60) + PKT)  # fmt: skip
    assert read_all(f) == [(1, 10_000_000_000 + 7 * mult, 1, PKT)]


def test_gzip_cut_short_is_truncated_not_an_error(tmp_path: Path) -> None:
    import random

    rnd = random.Random(7)  # incompressible payloads, so the cut lands mid-stream
    recs = [struct.pack("<IIII", 1, 0, 40, 40) + rnd.randbytes(40) for _ in range(500)]
    raw = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(recs)
    f = tmp_path / "x.pcap.gz"
    f.write_bytes(gzip.compress(raw)[:-3000])
    with CaptureFile(str(f)) as cf:
        n = sum(len(ch) for ch in cf.chunks())
        assert 0 < n < 500 and cf.truncated and f"truncated after {n} packets" in cf.truncated


def test_large_record_widens_the_window(tmp_path: Path) -> None:
    big = bytes(3000)
    f = tmp_path / "x.pcap"
    f.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                  + (struct.pack("<IIII", 1, 0, 3000, 3000) + big) * 3)  # fmt: skip
    assert [len(d) for *_, d in read_all(f, chunk_bytes=100)] == [3000] * 3


def test_sniffing(tmp_path: Path) -> None:
    text = tmp_path / "t.pcap"
    text.write_text("hello\n")
    assert not is_capture(text)
    empty = tmp_path / "e.pcap"
    empty.write_bytes(b"")
    with pytest.raises(NotACapture, match=r"e\.pcap: empty file"):
        CaptureFile(str(empty))
    gz_text = tmp_path / "t.gz"
    gz_text.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(NotACapture, match=r"t\.gz: not a pcap or pcapng"):
        CaptureFile(str(gz_text))
