"""Live capture on the destination host: packets -> rotating records folder (+ pcaps).

Packet sources sit behind one small seam (``PacketSource``), each handing over batches of
frames as a ``pcapfile.Chunk`` (a buffer plus per-frame offset, length and time arrays):
``RingSource`` (the default) maps a TPACKET_V3 ring of an AF_PACKET socket, as libpcap
does, and hands over the frames of whole ring blocks in place; ``ScapySource`` reads a Linux AF_PACKET socket opened by scapy with the BPF filter
attached in the kernel (only matching packets reach Python); ``TsharkSource`` runs
Wireshark's capture engine ``dumpcap`` (libpcap's memory-mapped TPACKET_V3 ring, the
filter in the kernel) and reads its pcap stream in whole chunks, with no Python object
per packet; ``ReplaySource`` replays a saved capture and is the test double.  Every batch
goes through the same compiled decoder and connection accounting as saved captures
(``fastpath.decode``, ``flows.ChunkedBuilder``); each rotation writes the connections
touched since the last one.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import pwd
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

import numpy as np
import polars as pl

from capture import _walk
from capture.errors import CaptureError, InterfaceError, PermissionDenied, UsageError
from capture.fastpath import decode
from capture.flows import ChunkedBuilder, finalize
from capture.output import atomic_write_parquet
from capture.packets import DecodeStats
from capture.pcapfile import Chunk

BATCH: Final = 4096
"""Frames decoded together (or fewer when the wire is quiet)."""
RCVBUF: Final = 64 << 20
"""Socket receive buffer asked for (bytes)."""
POLL_S: Final = 0.2
IDLE_S: Final = 900
"""A connection with no packet for this long is written as over and forgotten."""
ARPHRD_TO_LINKTYPE: Final = {1: 1, 772: 1, 65534: 101, 776: 101, 778: 101, 519: 101}
RING_TIMEOUT_MS: Final = 50
"""A ring block not yet full is handed over after this long (quiet links stay live)."""
# linux/if_packet.h, linux/if_ether.h, asm-generic/socket.h
_SOL_PACKET: Final = 263
_PACKET_RX_RING: Final = 5
_PACKET_STATISTICS: Final = 6
_PACKET_VERSION: Final = 10
_TPACKET_V3: Final = 2
_TP_STATUS_KERNEL: Final = 0
_TP_STATUS_USER: Final = 1
_SO_ATTACH_FILTER: Final = 26
_ETH_P_ALL: Final = 0x0003

Frame = tuple[int, bytes, int]
"""(time in ns, captured bytes, length on the wire)."""


class PacketSource(Protocol):
    """Where live packets come from: the one seam between interfaces and records."""

    linktype: int
    name: str

    def batch(self, timeout: float) -> Chunk | None:
        """Frames that arrived (``index`` not yet numbered), waiting at most ``timeout``
        seconds for the first; None when nothing came."""

    def kernel_counts(self) -> tuple[int, int] | None:
        """(received, dropped) by the kernel since the last call, or None if unknown."""

    def close(self) -> None:
        """Release the socket / process."""


def linktype_of(iface: str) -> int:
    """The pcap link type of a Linux interface, from its ARPHRD type in sysfs."""
    path = Path("/sys/class/net") / iface / "type"
    try:
        arphrd = int(path.read_text())
    except OSError:
        raise InterfaceError(f"no such interface: {iface}") from None
    return ARPHRD_TO_LINKTYPE.get(arphrd, 1)


class ScapySource:
    """An AF_PACKET socket opened by scapy, the BPF filter attached in the kernel."""

    def __init__(self, iface: str, bpf: str | None) -> None:
        self.name = iface
        self.linktype = linktype_of(iface)
        self._loopback = Path(f"/sys/class/net/{iface}/type").read_text().strip() == "772"
        if bpf:
            from capture.bpf import Filter

            Filter(bpf)._compile(self.linktype)  # a clear error before opening anything
        try:
            from scapy.arch.linux import L2ListenSocket
        except ImportError as exc:  # pragma: no cover - Linux only
            raise CaptureError(f"live capture needs Linux AF_PACKET sockets: {exc}") from exc
        try:
            self._sock: Any = L2ListenSocket(iface=iface, filter=bpf, promisc=False)
        except PermissionError:
            raise PermissionDenied(
                f"capturing on {iface} needs root or CAP_NET_RAW (try sudo)"
            ) from None
        except OSError as exc:
            raise InterfaceError(f"cannot capture on {iface}: {exc.strerror or exc}") from exc
        self._fd = self._sock.ins.fileno()
        self.down = False
        # A large receive buffer absorbs the moments this thread is busy decoding (the
        # default, net.core.rmem_default, holds only a few hundred small packets).
        try:
            self._sock.ins.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE (root)
        except OSError:
            self._sock.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self._sock.ins.setblocking(False)
        from scapy.arch.linux import get_last_packet_timestamp

        self._last_ts = get_last_packet_timestamp

    def batch(self, timeout: float) -> Chunk | None:
        return frames_chunk(self._frames(timeout), self.linktype)

    def _frames(self, timeout: float) -> list[Frame]:
        out: list[Frame] = []
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return out
        # Drain what the kernel holds (non-blocking) rather than one select() per packet.
        while len(out) < BATCH:
            try:
                data, sa_ll, ts = self._sock._recv_raw(self._sock.ins, 65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno != errno.ENETDOWN:
                    raise
                # The interface went down: say so once and keep the socket; packets come
                # again when it is back up (as tcpdump does on Linux).
                if not self.down:
                    print(f"egresslens: {self.name} is down; waiting for it to come back", file=sys.stderr)
                self.down = True
                break
            if self.down:
                print(f"egresslens: {self.name} is up again", file=sys.stderr)
                self.down = False
            # On loopback every packet is seen leaving and arriving: keep one copy, as
            # libpcap does.  Elsewhere outgoing packets are the host's replies: keep them.
            if data is not None and not (self._loopback and sa_ll[2] == socket.PACKET_OUTGOING):
                if ts is None:  # no ancillary timestamp: ask the kernel (SIOCGSTAMP)
                    ts = self._last_ts(self._sock.ins)
                out.append((int(round(ts * 1e6)) * 1000, data, len(data)))
        return out

    def kernel_counts(self) -> tuple[int, int] | None:
        try:
            raw = self._sock.ins.getsockopt(263, 6, 8)  # SOL_PACKET, PACKET_STATISTICS
        except OSError:
            return None
        received, dropped = struct.unpack("II", raw)
        return received, dropped

    def close(self) -> None:
        self._sock.close()


class RingSource:
    """An AF_PACKET socket with a TPACKET_V3 memory-mapped ring, as libpcap opens it.

    The kernel writes frames into blocks of a ring shared with this process (64 MiB, the
    budget the other sources get as a socket buffer) and hands a block over when it is full
    or ``RING_TIMEOUT_MS`` old; the BPF filter runs in the kernel before any copy.  A batch
    is the frames of every block handed over, walked in the compiled core
    (``_walk.walk_tpacket3``) and decoded straight out of the ring: no system call and no
    Python object per packet.  The blocks go back to the kernel at the next ``batch``.
    Kernel counts: PACKET_STATISTICS (received includes dropped).
    """

    BLOCK = 1 << 20
    BLOCKS = RCVBUF // BLOCK
    FRAME = 1 << 11

    def __init__(self, iface: str, bpf: str | None) -> None:
        import ctypes
        import mmap

        self.name = iface
        self.linktype = linktype_of(iface)
        self._loopback = Path(f"/sys/class/net/{iface}/type").read_text().strip() == "772"
        prog = None
        if bpf:
            from capture.bpf import Filter

            prog = Filter(bpf)._compile(self.linktype)  # a clear error before opening anything
        try:
            # Protocol 0: nothing arrives until bind(), after the filter is attached, so no
            # unfiltered frame slips into the ring.
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise PermissionDenied(f"capturing on {iface} needs root or CAP_NET_RAW (try sudo)") from None
        try:
            self._sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, struct.pack("i", _TPACKET_V3))
            req = struct.pack(
                "7I", self.BLOCK, self.BLOCKS, self.FRAME, self.BLOCK * self.BLOCKS // self.FRAME,
                RING_TIMEOUT_MS, 0, 0,
            )  # fmt: skip
            self._sock.setsockopt(_SOL_PACKET, _PACKET_RX_RING, req)
            self._ring = mmap.mmap(self._sock.fileno(), self.BLOCK * self.BLOCKS,
                                   mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
            if prog is not None:  # struct sock_fprog: u16 length, pointer to the instructions
                fprog = struct.pack("HxxxxxxQ", prog.bf_len, ctypes.cast(prog.bf_insns, ctypes.c_void_p).value or 0)
                self._sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
                self._prog = prog  # the kernel copied it; kept for as long as the socket anyway
            self._sock.bind((iface, _ETH_P_ALL))
        except OSError as exc:
            self._sock.close()
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise InterfaceError(f"no such interface: {iface}") from exc
            raise InterfaceError(f"cannot capture on {iface}: {exc.strerror or exc}") from exc
        self._next = 0  # the block the kernel fills next
        self._held: list[int] = []  # blocks handed out in the last batch
        self.down = False

    def _ready(self, block: int) -> bool:
        return bool(struct.unpack_from("I", self._ring, block * self.BLOCK + 8)[0] & _TP_STATUS_USER)

    def batch(self, timeout: float) -> Chunk | None:
        for block in self._held:  # the previous batch is done with: back to the kernel
            struct.pack_into("I", self._ring, block * self.BLOCK + 8, _TP_STATUS_KERNEL)
        self._held = []
        if not self._ready(self._next):
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if ready and not self._ready(self._next):  # woken with no block: an error
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err and err != errno.ENETDOWN:
                    raise CaptureError(f"capture on {self.name}: {os.strerror(err)}")
            if not self._ready(self._next):
                self._watch_link()  # idle: is the interface still up?
                return None
        if self.down:
            self._watch_link()
        parts = []
        while self._ready(self._next) and len(self._held) < self.BLOCKS:
            off, cap, wire, ts, _skipped = _walk.walk_tpacket3(
                self._ring, self._next * self.BLOCK, self.BLOCK, self._loopback
            )
            parts.append((off, cap, wire, ts))
            self._held.append(self._next)
            self._next = (self._next + 1) % self.BLOCKS
        off, cap, wire, ts = (np.concatenate(c) for c in zip(*parts, strict=True))
        return Chunk(
            buf=self._ring, off=off, caplen=cap, wirelen=wire, ts_ns=ts,
            linktype=np.full(len(off), self.linktype, dtype=np.int32),
            index=np.zeros(len(off), dtype=np.int64),
        )  # fmt: skip

    def _watch_link(self) -> None:
        """Say once when the interface went down and when it is back (IFF_UP in sysfs).

        The ring stays; frames come again when the interface is back up, as with tcpdump.
        """
        try:
            up = bool(int(Path(f"/sys/class/net/{self.name}/flags").read_text(), 16) & 1)
        except (OSError, ValueError):
            return
        if not up and not self.down:
            print(f"egresslens: {self.name} is down; waiting for it to come back", file=sys.stderr)
        elif up and self.down:
            print(f"egresslens: {self.name} is up again", file=sys.stderr)
        self.down = not up

    def kernel_counts(self) -> tuple[int, int] | None:
        try:
            raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 12)  # tpacket_stats_v3
        except OSError:
            return None
        received, dropped, _freeze = struct.unpack("III", raw)
        return received, dropped

    def close(self) -> None:
        self._held = []
        self._sock.close()
        try:
            self._ring.close()
        except BufferError:  # a numpy view of a batch is still alive: the GC unmaps it later
            pass


class TsharkSource:
    """Wireshark's capture engine: ``dumpcap`` (what tshark and pyshark's ``LiveCapture``
    run underneath) with the BPF filter in the kernel, its pcap stream read from a pipe.

    The frames are decoded by the same decoder as the scapy source's, so both backends
    give the same records.
    """

    def __init__(self, iface: str, bpf: str | None) -> None:
        import queue
        import shutil
        import subprocess

        dumpcap = shutil.which("dumpcap") or (
            "/usr/bin/dumpcap" if Path("/usr/bin/dumpcap").exists() else None
        )
        if dumpcap is None:
            from capture.errors import ToolMissing

            raise ToolMissing("--backend tshark needs dumpcap (Debian: apt-get install tshark)")
        self.name = iface
        self.linktype = linktype_of(iface)
        if bpf:
            from capture.bpf import Filter

            Filter(bpf)._compile(self.linktype)
        # -B: libpcap's ring of 64 MiB (its default, 2 MiB, holds a fraction of a second at
        # high rates); -P: pcap, which the chunked reader walks as it arrives.
        argv = [dumpcap, "-q", "-i", iface, "-B", str(RCVBUF >> 20), "-P", "-w", "-"]
        argv += ["-f", bpf] if bpf else []
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._queue: queue.Queue[Chunk | BaseException | None] = queue.Queue(maxsize=1000)
        self._stopping = False
        self._counts: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._pump, name="egresslens-dumpcap", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        from capture.pcapfile import CaptureFile

        try:
            stream = self._proc.stdout
            assert stream is not None
            with CaptureFile(f"dumpcap:{self.name}", chunk_bytes=1 << 20, stream=stream) as cf:
                for chunk in cf.chunks():  # whole chunks: one queue item per pipe read
                    self._queue.put(chunk)
        except BaseException as exc:  # handed to batch(), with dumpcap's own words
            if self._proc.poll() is not None and self._proc.stderr is not None:
                said = self._proc.stderr.read().decode(errors="replace").strip()
                exc = CaptureError(said.splitlines()[-1] if said else str(exc))
            self._queue.put(exc)
        finally:
            self._queue.put(None)

    def batch(self, timeout: float) -> Chunk | None:
        import queue

        got: list[Chunk] = []
        try:
            item = self._queue.get(timeout=timeout)
            while True:
                if isinstance(item, BaseException):
                    raise CaptureError(f"dumpcap on {self.name}: {item}") from item
                if item is None:
                    self._queue.put(None)  # keep the end marker for later calls
                    if not self._stopping and self._proc.poll() not in (None, 0):
                        err = (self._proc.stderr.read() if self._proc.stderr else b"").decode(errors="replace")
                        raise CaptureError(f"dumpcap on {self.name} failed: {err.strip()[:200]}")
                    break
                got.append(item)
                if sum(len(c) for c in got) >= BATCH:
                    break
                item = self._queue.get_nowait()
        except queue.Empty:
            pass
        return concat_chunks(got)

    def stop_capture(self) -> None:
        """Ask dumpcap to stop; the frames it still wrote come from ``batch`` until None."""
        import subprocess

        self._stopping = True
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._thread.join(timeout=10)
        said = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        # dumpcap's last words: "Packets received/dropped on interface 'lo': 10/0 (...)"
        m = re.search(r"received/dropped on interface '[^']*': (\d+)/(\d+)", said)
        if m:
            self._counts = (int(m.group(1)), int(m.group(2)))

    def kernel_counts(self) -> tuple[int, int] | None:
        """libpcap's counts (the kernel's, from the ring), known once dumpcap stopped."""
        counts, self._counts = self._counts, None
        return counts

    def close(self) -> None:
        import subprocess

        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._thread.join(timeout=5)
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()


class ReplaySource:
    """Replays a saved capture as if it were live (the test double of the seam).

    The capture must have one link type (its first packet's); replay is as fast as the
    reader, timestamps are the file's.
    """

    def __init__(self, path: str, *, batch: int = BATCH) -> None:
        from capture.pcapfile import CaptureFile

        self.name = path
        self._batch = batch
        self._file = CaptureFile(path)
        self._chunks = self._file.chunks()
        self._pending: Chunk | None = None
        self._done = False
        self.linktype = 1
        self._load()
        if self._pending is not None and len(self._pending):
            self.linktype = int(self._pending.linktype[0])

    def _load(self) -> None:
        self._pending = next(self._chunks, None)
        if self._pending is None:
            self._done = True

    def batch(self, timeout: float) -> Chunk | None:
        if (self._pending is None or not len(self._pending)) and not self._done:
            self._load()
        if self._pending is None or not len(self._pending):
            return None
        out = slice_chunk(self._pending, 0, self._batch)
        self._pending = slice_chunk(self._pending, self._batch, len(self._pending))
        return out

    @property
    def exhausted(self) -> bool:
        """Every frame of the file was handed out."""
        return self._done and (self._pending is None or not len(self._pending))

    def kernel_counts(self) -> tuple[int, int] | None:
        return None

    def close(self) -> None:
        self._file.close()


def frames_chunk(frames: list[Frame], linktype: int) -> Chunk | None:
    """A batch of frames received one by one (a socket) as one ``Chunk``."""
    if not frames:
        return None
    buf = b"".join(f[1] for f in frames)
    lens = np.fromiter((len(f[1]) for f in frames), dtype=np.int64, count=len(frames))
    off = np.zeros(len(frames), dtype=np.int64)
    np.cumsum(lens[:-1], out=off[1:])
    return Chunk(
        buf=buf, off=off, caplen=lens,
        wirelen=np.fromiter((f[2] for f in frames), dtype=np.int64, count=len(frames)),
        ts_ns=np.fromiter((f[0] for f in frames), dtype=np.int64, count=len(frames)),
        linktype=np.full(len(frames), linktype, dtype=np.int32),
        index=np.zeros(len(frames), dtype=np.int64),
    )  # fmt: skip


def slice_chunk(chunk: Chunk, start: int, stop: int) -> Chunk:
    """Frames ``start:stop`` of ``chunk`` (views, same buffer)."""
    return Chunk(
        buf=chunk.buf, off=chunk.off[start:stop], caplen=chunk.caplen[start:stop],
        wirelen=chunk.wirelen[start:stop], ts_ns=chunk.ts_ns[start:stop],
        linktype=chunk.linktype[start:stop], index=chunk.index[start:stop],
    )  # fmt: skip


def concat_chunks(chunks: list[Chunk]) -> Chunk | None:
    """One chunk of several (their buffers joined, offsets moved along)."""
    if not chunks:
        return None
    if len(chunks) == 1:
        return chunks[0]
    bufs = [bytes(c.buf) for c in chunks]
    starts = np.cumsum([0] + [len(b) for b in bufs[:-1]])
    cat = np.concatenate
    return Chunk(
        buf=b"".join(bufs),
        off=cat([c.off + s for c, s in zip(chunks, starts.tolist(), strict=True)]),
        caplen=cat([c.caplen for c in chunks]), wirelen=cat([c.wirelen for c in chunks]),
        ts_ns=cat([c.ts_ns for c in chunks]), linktype=cat([c.linktype for c in chunks]),
        index=cat([c.index for c in chunks]),
    )  # fmt: skip


class _PcapWriter:
    """Raw packets into rotating pcap files, each renamed into place when complete."""

    def __init__(self, folder: Path, linktype: int) -> None:
        self.folder = folder
        self.linktype = linktype
        self._fh: IO[bytes] | None = None
        self._tmp: Path | None = None
        self._final: Path | None = None
        self.bytes = 0

    def open(self, name: str) -> None:
        self._final = self.folder / name
        self._tmp = self.folder / f".{name}.tmp"
        self._fh = self._tmp.open("wb")
        self._fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, self.linktype))
        self.bytes = 24

    def write(self, chunk: Chunk) -> None:
        assert self._fh is not None
        records = _walk.pcap_records(chunk.buf, chunk.off, chunk.caplen, chunk.wirelen, chunk.ts_ns)
        self._fh.write(records)
        self.bytes += len(records)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            os.replace(self._tmp, self._final)  # type: ignore[arg-type]
            self._fh = None


@dataclass(slots=True)
class LiveOptions:
    """What ``capture live`` was asked to do."""

    out: Path | None = None
    rotate_s: float | None = 60.0
    rotate_bytes: int | None = None
    duration_s: float | None = None
    count: int | None = None
    observer: str | None = None
    pcap: bool = True
    ports: frozenset[int] | None = None


@dataclass(slots=True)
class LiveResult:
    """Counts at the end of a live capture."""

    packets: int = 0
    connections: int = 0
    files: list[Path] = field(default_factory=list)
    kernel_received: int = 0
    kernel_dropped: int = 0
    stats: DecodeStats = field(default_factory=DecodeStats)


class LiveCapture:
    """Runs a ``PacketSource`` into a records folder, rotating and flushing cleanly.

    ``on_records`` (if given) receives every batch of records written, for ``watch``.
    """

    def __init__(
        self,
        source: PacketSource,
        options: LiveOptions,
        *,
        status: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
        on_records: Callable[[pl.DataFrame], None] | None = None,
    ) -> None:
        self.source = source
        self.opt = options
        self.status = status
        self.on_records = on_records
        self.table = ChunkedBuilder()
        self.result = LiveResult()
        self._stop = False
        self._seq = 0
        self._start = time.time()
        stamp = dt.datetime.fromtimestamp(self._start, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self._name = f"live:{source.name}@{stamp}"
        self._stamp = stamp
        self._pcap: _PcapWriter | None = None
        self._last_ts = 0

    def stop(self, *_: object) -> None:
        """Ask the loop to flush and end (signal handler)."""
        self._stop = True

    def _rotate(self, *, final: bool) -> None:
        # Idle time is measured on the packets' clock (a replay's clock is the file's).
        idle = -1 if final else IDLE_S * 1_000_000_000
        aggs, over = self.table.drain(now_ns=self._last_ts, idle_ns=idle)
        records = finalize(aggs, name=self._name, observer=self.opt.observer, evidence="live")
        if records.height:
            open_now = ~pl.Series([c in over for c in aggs.sort("first_index")["conn"].to_list()])
            # Not over yet: whatever its state so far, the connection is still going.
            records = records.with_columns(
                state=pl.when(open_now)
                .then(pl.lit("open"))
                .otherwise(pl.col("state"))
                .cast(records.schema["state"])
            )
            if final:
                records = records.with_columns(
                    state=pl.when(pl.col("state") == "established")
                    .then(pl.lit("open"))
                    .otherwise(pl.col("state"))
                    .cast(records.schema["state"])
                )
            if self.opt.ports:
                wanted = pl.Series(sorted(self.opt.ports), dtype=pl.UInt16)
                records = records.filter(pl.col("src_port").is_in(wanted) | pl.col("dst_port").is_in(wanted))
        self._seq += 1
        if self.opt.out is not None:
            path = self.opt.out / f"records-{self._stamp}-{self._seq:06d}.parquet"
            atomic_write_parquet(records, path)
            self.result.files.append(path)
            if self._pcap is not None:
                self._pcap.close()
                self.result.files.append(self._pcap._final)  # type: ignore[arg-type]
                if not final:
                    self._pcap.open(f"packets-{self._stamp}-{self._seq + 1:06d}.pcap")
        if self.on_records is not None and records.height:
            self.on_records(records)
        counts = self.source.kernel_counts()
        if counts:
            self.result.kernel_received += counts[0]
            self.result.kernel_dropped += counts[1]
        elapsed = max(time.time() - self._start, 1e-9)
        self.status(
            f"egresslens: {'final' if final else 'rotation'} {self._seq}: "
            f"{records.height:,} connection rows ({len(self.table):,} open), "
            f"{self.result.packets:,} packets ({self.result.packets / elapsed:,.1f}/s), "
            f"kernel: {self.result.kernel_received:,} received, "
            f"{self.result.kernel_dropped:,} dropped"
        )
        self.result.connections = self.table.created

    def _account(self, chunk: Chunk) -> None:
        if self._pcap is not None:
            self._pcap.write(chunk)
        first = self.result.packets + 1
        chunk.index = np.arange(first, first + len(chunk), dtype=np.int64)
        self.table.add(decode(chunk, self.result.stats), chunk.buf)
        self._last_ts = max(self._last_ts, int(chunk.ts_ns.max()))
        self.result.packets += len(chunk)

    def _drain_source(self) -> None:
        """A source with its own capture process: stop it and take what it still holds."""
        stop = getattr(self.source, "stop_capture", None)
        if stop is None:
            return
        stop()
        while (chunk := self.source.batch(0.5)) is not None and len(chunk):
            if self.opt.count is not None:
                chunk = slice_chunk(chunk, 0, max(self.opt.count - self.result.packets, 0))
                if not len(chunk):
                    break
            self._account(chunk)

    def run(self) -> LiveResult:
        """Capture until the duration, count, end of a replay, or SIGINT/SIGTERM."""
        if self.opt.out is not None:
            self.opt.out.mkdir(parents=True, exist_ok=True)
            if self.opt.pcap:
                self._pcap = _PcapWriter(self.opt.out, self.source.linktype)
                self._pcap.open(f"packets-{self._stamp}-{self._seq + 1:06d}.pcap")
        old = {}
        if threading.current_thread() is threading.main_thread():  # else: the caller stops us
            old = {s: signal.signal(s, self.stop) for s in (signal.SIGINT, signal.SIGTERM)}
        deadline = self._start + self.opt.duration_s if self.opt.duration_s else None
        next_rotation = self._start + self.opt.rotate_s if self.opt.rotate_s else None
        last_size = 0
        try:
            while not self._stop:
                chunk = self.source.batch(POLL_S)
                if chunk is not None and self.opt.count is not None:
                    chunk = slice_chunk(chunk, 0, max(self.opt.count - self.result.packets, 0))
                frames = chunk is not None and len(chunk) > 0
                if chunk is not None and frames:
                    self._account(chunk)
                now = time.time()
                if self.opt.count is not None and self.result.packets >= self.opt.count:
                    break
                if deadline is not None and now >= deadline:
                    break
                if isinstance(self.source, ReplaySource) and not frames and self.source.exhausted:
                    break
                size = self._pcap.bytes if self._pcap else self.result.packets * 100
                if (next_rotation is not None and now >= next_rotation) or (
                    self.opt.rotate_bytes and size - last_size >= self.opt.rotate_bytes
                ):
                    self._rotate(final=False)
                    last_size = self._pcap.bytes if self._pcap else size
                    if next_rotation is not None:
                        next_rotation = now + self.opt.rotate_s  # type: ignore[operator]
        finally:
            self._drain_source()
            self._rotate(final=True)
            self.source.close()
            for s, handler in old.items():
                signal.signal(s, handler)
        return self.result


def drop_privileges(user: str, keep: Path | None) -> None:
    """Become ``user`` after the socket is open, like ``tcpdump -Z`` (``keep`` is chowned)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise UsageError(f"--user {user!r}: no such user") from None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        os.chown(keep, entry.pw_uid, entry.pw_gid)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - the kernel said yes
        raise CaptureError(f"could not drop root privileges to {user}")


def parse_rotate(text: str) -> tuple[float | None, int | None]:
    """``60s`` / ``5m`` / ``1h`` -> seconds; ``100MB`` / ``1GB`` / ``500KB`` -> bytes."""
    t = text.strip().lower()
    units_s = {"s": 1, "m": 60, "h": 3600}
    units_b = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}
    try:
        for suffix, mult in units_b.items():
            if t.endswith(suffix):
                return None, int(float(t[: -len(suffix)]) * mult)
        if t[-1:] in units_s:
            return float(t[:-1]) * units_s[t[-1]], None
        return float(t), None
    except ValueError:
        raise UsageError(f"--rotate {text!r}: use a time like 60s, 5m, 1h or a size like 100MB") from None


def iface_exists(iface: str) -> bool:
    """Whether ``iface`` names a network interface here."""
    try:
        socket.if_nametoindex(iface)
    except OSError:
        return False
    return True
