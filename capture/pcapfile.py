"""pcap and pcapng files (plain or gzip), read in large chunks of whole packet records.

Specs: pcap, draft-ietf-opsawg-pcap (magic numbers for microsecond and nanosecond
resolution, either byte order); pcapng, draft-ietf-opsawg-pcapng (SHB, IDB with
``if_tsresol`` / ``if_tsoffset``, EPB, SPB, obsolete PB; several sections and interfaces
with different link types in one file).

The reader never dissects packets: it yields ``Chunk``s, each a buffer plus numpy arrays
of where every packet's data starts, its lengths, time and link type.  Memory is bounded
by the chunk size, not the file size.  The walk over the records of a window runs in the
compiled core ``capture/_walk.pyx``; this module keeps the files, windows and messages.
"""

from __future__ import annotations

import gzip
import io
import mmap
import os
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from capture.errors import CorruptCapture, InputError, NotACapture

from capture.core import compiled

_walk = compiled("_walk")

CHUNK_BYTES: Final = 4 << 20
"""How much of the file is read at a time: small enough that the decoder finds the
headers the record walk just read still in the CPU's cache."""
MAX_RECORD: Final = 64 << 20
"""A record or block claiming more than this is corrupt, whatever the snaplen says."""
DEFAULT_MAX_CAPLEN: Final = 262_144
"""libpcap's largest snapshot length for most link types."""

PCAP_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # microseconds, little-endian
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC: Final = b"\x1f\x8b"
_TS_MIN: Final = -(1 << 63)
_TS_MAX: Final = (1 << 63) - 1
"""Nanosecond timestamps must fit int64 (1678-2262); pcapng's 64-bit counts times
``if_tsresol`` / ``if_tsoffset`` can reach far beyond."""


@dataclass(slots=True)
class Chunk:
    """Whole packet records from one stretch of a capture file."""

    buf: bytes
    """The bytes the offsets point into."""
    off: np.ndarray
    """int64: where each packet's data starts in ``buf``."""
    caplen: np.ndarray
    """int64: bytes of the packet present in the file."""
    wirelen: np.ndarray
    """int64: length of the packet on the wire."""
    ts_ns: np.ndarray
    """int64: capture time, ns since the epoch."""
    linktype: np.ndarray
    """int32: link-layer header type (LINKTYPE_*) of each packet."""
    index: np.ndarray
    """int64: 1-based packet number in the file."""

    def __len__(self) -> int:
        return len(self.off)


def display_name(path: str) -> str:
    """The name a file goes by in messages and ``origin`` (``-`` reads stdin)."""
    return "stdin" if path == "-" else path


def _open(path: str, stream: IO[bytes] | None = None) -> tuple[IO[bytes], bytes]:
    """Open ``path`` read-only (``-`` = stdin; or read ``stream`` under that name), undo
    gzip, and return (stream, first 4 bytes)."""
    name = display_name(path)
    try:
        if stream is not None:
            raw: IO[bytes] = stream
        else:
            raw = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"{name}: cannot open: {exc.strerror}") from exc
    head = raw.read(4)
    stream: IO[bytes] = raw
    if head[:2] == GZIP_MAGIC:
        rest = _Prefixed(head, raw)
        stream = gzip.GzipFile(fileobj=rest, mode="rb")  # type: ignore[arg-type]
        try:
            head = stream.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            raise NotACapture(f"{name}: gzip data is corrupt: {exc}") from exc
    if head in PCAP_MAGICS or head == PCAPNG_SHB:
        return stream, head
    stream.close()
    if not head:
        raise NotACapture(f"{name}: empty file, not a capture")
    raise NotACapture(
        f"{name}: not a pcap or pcapng capture (starts with {head!r}); "
        "convert other formats with editcap or tshark -F pcap"
    )


class _Prefixed:
    """A read-only stream that first returns ``prefix``, then the rest of ``raw``."""

    def __init__(self, prefix: bytes, raw: IO[bytes]) -> None:
        self._prefix = prefix
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n < 0:
                out, self._prefix = self._prefix + self._raw.read(), b""
                return out
            out, self._prefix = self._prefix[:n], self._prefix[n:]
            return out + (self._raw.read(n - len(out)) if n > len(out) else b"")
        return self._raw.read(n)

    def close(self) -> None:
        self._raw.close()


class CaptureFile:
    """One capture file, iterated as chunks of whole records.

    After iteration, ``truncated`` says whether the file ended inside a record, and
    ``packets`` how many records were read.  A corrupt record length raises
    ``CorruptCapture`` after the chunks before it were yielded.
    """

    def __init__(
        self, path: str, *, chunk_bytes: int = CHUNK_BYTES, stream: IO[bytes] | None = None
    ) -> None:
        """Open ``path`` (or read ``stream``, a pipe, under the name ``path``)."""
        self.path = path
        self.name = display_name(path)
        self.chunk_bytes = chunk_bytes
        self.packets = 0
        self.truncated: str | None = None
        self._mm: mmap.mmap | None = None
        self._gzip_cut = False
        self._piped = stream is not None
        self._stream, self._magic = _open(path, stream)
        self.kind = "pcapng" if self._magic == PCAPNG_SHB else "pcap"

    def close(self) -> None:
        """Close the underlying file (not stdin) and its memory map."""
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a numpy view is still alive: the GC closes the map later
                pass
            self._mm = None
        if self.path != "-" and not self._piped:
            self._stream.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at the end of the input.

        Reads in pieces so that a gzip stream cut short still gives everything before the
        cut (``GzipFile.read`` drops what it decompressed when it hits the cut).
        """
        if self._gzip_cut:
            return b""
        pieces: list[bytes] = []
        want = n
        read = getattr(self._stream, "read1", self._stream.read)
        try:
            while want > 0:
                piece = read(min(want, 1 << 20))
                if not piece:
                    break
                pieces.append(piece)
                want -= len(piece)
                if self._piped:  # a live pipe: hand over what has arrived, do not wait
                    break
        except EOFError:  # gzip member cut short: treat like a truncated file
            self._gzip_cut = True
        except (OSError, zlib.error) as exc:
            raise CorruptCapture(
                f"{self.name}: read error after {self.packets:,} packets: {exc}"
            ) from exc
        return b"".join(pieces)

    def chunks(self) -> Iterator[Chunk]:
        """Yield the file's records in order, about ``chunk_bytes`` of input at a time."""
        if self.kind == "pcap":
            yield from self._pcap_chunks()
        else:
            yield from self._pcapng_chunks()

    def _windows(self, start: int, carry: bytes) -> Iterator[tuple[Any, int, int, bool, int]]:
        """Yield ``(buffer, pos, end, last, base)`` windows over the rest of the file.

        The consumer walks the records that lie wholly in ``buffer[pos:end]`` and stores
        where it stopped in ``self._stop``; the next window starts there.  ``last`` marks
        the window that reaches the end of the file; ``buffer[i]`` is the file's byte
        ``base + i``.  Plain files are memory-mapped (no
        copy; pages already walked are dropped, so RSS stays flat whatever the file size);
        gzip and stdin are read in blocks, carrying the unfinished record over.

        Args:
            start: file offset of the first record (memory-mapped files).
            carry: bytes already read from the stream that belong to the first record.
        """
        size = -1
        if isinstance(self._stream, io.BufferedReader) and self.path != "-" and not self._piped:
            try:
                size = os.fstat(self._stream.fileno()).st_size
            except OSError:
                size = -1
        if size > start:
            # Closed in close(), not here: chunks handed out may still point into it.
            mm = self._mm = mmap.mmap(self._stream.fileno(), 0, access=mmap.ACCESS_READ)
            mm.madvise(mmap.MADV_SEQUENTIAL)
            pos, end = start, min(start + self.chunk_bytes, size)
            while True:
                self._stop = pos
                yield mm, pos, end, end == size, 0
                if end == size:
                    return
                # Pages behind us leave RSS (a later touch reloads them from the page cache).
                done = self._stop - self._stop % mmap.PAGESIZE
                if done:
                    mm.madvise(mmap.MADV_DONTNEED, 0, done)
                # No record finished in this window (one larger than it): widen it.
                end = min((end if self._stop == pos else self._stop) + self.chunk_bytes, size)
                pos = self._stop
        data = carry
        base = start  # the carried bytes are the first record's, from file offset start
        while True:
            block = self._read(self.chunk_bytes)
            data = data + block if data else block
            self._stop = 0
            yield data, 0, len(data), not block, base
            if not block:
                return
            base += self._stop
            data = data[self._stop :]

    def _truncated(self, what: str, rest: int, offset: int) -> None:
        if rest or self._gzip_cut:
            self.truncated = (
                f"{self.name}: truncated after {self.packets:,} packets ({rest:,} bytes of an "
                f"incomplete {what} at byte offset {offset:,} ignored)"
            )

    # --- pcap ---------------------------------------------------------------------------

    def _pcap_chunks(self) -> Iterator[Chunk]:
        endian, ns_per_unit = PCAP_MAGICS[self._magic]
        header = self._magic + self._read(20)
        if len(header) < 24:
            self.truncated = f"{self.name}: truncated inside the 24-byte file header"
            return
        _maj, _min, _zone, _sig, snaplen, network = struct.unpack(endian + "HHiIII", header[4:])
        linktype = network & 0xFFFF  # bits 26-31 say whether frames carry an FCS, and its size
        limit = min(max(snaplen, DEFAULT_MAX_CAPLEN), MAX_RECORD)
        big = endian == ">"
        for data, pos, n, last, base in self._windows(24, b""):
            stop, off, caplen, wirelen, ts_ns, bad = _walk.walk_pcap(
                data, pos, n, big, limit, ns_per_unit
            )
            if len(off):
                first = self.packets + 1
                self.packets += len(off)
                yield Chunk(
                    buf=data, off=off, caplen=caplen, wirelen=wirelen, ts_ns=ts_ns,
                    linktype=np.full(len(off), linktype, dtype=np.int32),
                    index=np.arange(first, first + len(off), dtype=np.int64),
                )  # fmt: skip
            if bad >= 0:
                raise CorruptCapture(
                    f"{self.name}: packet {self.packets + 1:,} at byte offset "
                    f"{base + stop:,}: record length {bad:,} exceeds the snapshot length "
                    f"{snaplen:,}; corrupt file, stopped after {self.packets:,} packets"
                )
            self._stop = stop
            if last:
                self._truncated("record", n - stop, base + stop)
                return

    # --- pcapng -------------------------------------------------------------------------

    def _pcapng_chunks(self) -> Iterator[Chunk]:
        endian = "<"
        # Per interface of the current section: (linktype, snaplen, ns multiplier, divisor,
        # offset in ns); a new section header starts a new list.
        ifaces: list[tuple[int, int, int, int, int]] = []
        table = _iface_table(ifaces)
        for data, pos, n, last, base in self._windows(0, self._magic):
            parts: list[tuple[np.ndarray, ...]] = []
            pending = 0  # packets walked in this window, not yet yielded
            error: CorruptCapture | None = None
            # The compiled walk takes every packet block; it stops at any other block
            # (handled here, then it goes on), at the window's end, or at a bad block.
            while True:
                stop, why, *cols, iface, cap = _walk.walk_pcapng(
                    data, pos, n, endian == ">", MAX_RECORD, *table
                )
                if len(cols[0]):
                    parts.append(tuple(cols))
                    pending += len(cols[0])
                pos = stop
                if why == _walk.STOP_END:
                    break
                if why == _walk.STOP_BAD_IFACE:
                    error = self._bad_block(base + pos, pending, iface, cap, ifaces)
                    break
                if why == _walk.STOP_BAD_TIME:
                    error = CorruptCapture(
                        f"{self.name}: packet {self.packets + pending + 1:,} (block at "
                        f"byte offset {base + pos:,}) has a timestamp outside the years "
                        "1678-2262; corrupt file, stopped"
                    )
                    break
                # A block the walk leaves to us: SHB, IDB, others; or an impossible length.
                if data[pos : pos + 4] == PCAPNG_SHB:
                    bom = data[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        endian = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        endian = ">"
                    else:
                        error = CorruptCapture(
                            f"{self.name}: section header at byte offset {base + pos:,} has "
                            f"a bad byte-order magic {bom!r}; corrupt file, stopped"
                        )
                        break
                btype, blen = struct.unpack_from(endian + "II", data, pos)
                if why == _walk.STOP_BAD_LEN or blen < 12 or blen % 4 or blen > MAX_RECORD:
                    error = CorruptCapture(
                        f"{self.name}: block at byte offset {base + pos:,} (after "
                        f"{self.packets + pending:,} packets) has an impossible length "
                        f"{blen:,}; corrupt file, stopped"
                    )
                    break
                if pos + blen > n:
                    break
                if btype == 1:  # Interface Description Block
                    ifaces.append(self._idb(data, pos + 8, pos + blen - 4, endian))
                    table = _iface_table(ifaces)
                elif btype == 0x0A0D0D0A:
                    ifaces = []
                    table = _iface_table(ifaces)
                pos += blen
            if pending:
                first = self.packets + 1
                self.packets += pending
                off, caplen, wirelen, ts_ns, links = (
                    np.concatenate(c) if len(parts) > 1 else c[0] for c in zip(*parts, strict=True)
                )
                yield Chunk(
                    buf=data, off=off, caplen=caplen, wirelen=wirelen, ts_ns=ts_ns,
                    linktype=links, index=np.arange(first, first + pending, dtype=np.int64),
                )  # fmt: skip
            if error is not None:
                raise error
            self._stop = pos
            if last:
                self._truncated("block", n - pos, base + pos)
                return

    def _bad_block(
        self, offset: int, pending: int, iface: int, cap: int, ifaces: list[object]
    ) -> CorruptCapture:
        why = (
            f"refers to interface {iface} but the section describes {len(ifaces)}"
            if iface >= len(ifaces)
            else f"claims {cap:,} captured bytes, more than the block holds"
        )
        return CorruptCapture(
            f"{self.name}: packet {self.packets + pending + 1:,} (block at byte offset "
            f"{offset:,}) {why}; corrupt file, stopped"
        )

    @staticmethod
    def _idb(data: bytes, body: int, end: int, endian: str) -> tuple[int, int, int, int, int]:
        linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", data, body)
        mul, div, base = 1_000, 1, 0  # default resolution: microseconds
        pos = body + 8
        while pos + 4 <= end:
            code, length = struct.unpack_from(endian + "HH", data, pos)
            value = data[pos + 4 : pos + 4 + length]
            if code == 0:
                break
            if code == 9 and length >= 1:  # if_tsresol
                res = value[0]
                if res & 0x80:
                    mul, div = 1_000_000_000, 1 << (res & 0x7F)
                else:
                    exp = res
                    mul, div = (10 ** (9 - exp), 1) if exp <= 9 else (1, 10 ** (exp - 9))
            elif code == 14 and length == 8:  # if_tsoffset, seconds
                base = struct.unpack(endian + "q", value)[0] * 1_000_000_000
            pos += 4 + length + (-length % 4)
        return linktype, snaplen, mul, div, base


_DIV_MAX: Final = 1 << 100
"""A timestamp divisor beyond this makes every time ``if_tsoffset`` exactly (units * 10^9
stay below 2**94), so the compiled walk gets multiplier 0 and divisor 1 instead."""


def _iface_table(ifaces: list[tuple[int, int, int, int, int]]) -> tuple[np.ndarray, ...]:
    """The interfaces of a section as the arrays ``_walk.walk_pcapng`` takes."""
    link, snap, mul, div_hi, div_lo, off_hi, off_lo = [], [], [], [], [], [], []
    for lt, sn, m, d, o in ifaces:
        if d > _DIV_MAX:
            m, d = 0, 1
        link.append(lt)
        snap.append(sn)
        mul.append(m)
        div_hi.append(d >> 64)
        div_lo.append(d & 0xFFFF_FFFF_FFFF_FFFF)
        off_hi.append(o >> 64)  # |offset| < 2**93: the high half fits int64
        off_lo.append(o & 0xFFFF_FFFF_FFFF_FFFF)
    i64, u64 = np.int64, np.uint64
    return (
        np.array(link, dtype=i64), np.array(snap, dtype=i64), np.array(mul, dtype=i64),
        np.array(div_hi, dtype=i64), np.array(div_lo, dtype=u64),
        np.array(off_hi, dtype=i64), np.array(off_lo, dtype=u64),
    )  # fmt: skip


def is_capture(path: Path) -> bool:
    """Whether ``path`` starts like a pcap, pcapng, or a gzip of either (cheap sniff)."""
    try:
        stream, _ = _open(str(path))
    except InputError:
        return False
    stream.close()
    return True
