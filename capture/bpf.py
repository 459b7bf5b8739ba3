"""BPF (tcpdump filter syntax) for saved captures, through libpcap's own compiler.

``pcap_compile`` on a dead handle per link type, ``pcap_offline_filter`` per packet: the
same semantics as ``tcpdump -r F EXPR``, without a subprocess.  Per-packet ctypes calls
are slower than the vectorized path, so this only runs when ``--bpf`` is given.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

from capture.errors import ToolMissing, UsageError


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


_lib: Any = None


def _libpcap() -> Any:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("pcap")
        if not name:
            raise ToolMissing("--bpf needs libpcap (Debian: apt-get install libpcap0.8)")
        lib = ctypes.CDLL(name)
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p, ctypes.c_int,
            ctypes.c_uint32,
        ]  # fmt: skip
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_offline_filter.argtypes = [
            ctypes.POINTER(_Program), ctypes.POINTER(_PktHdr), ctypes.c_char_p,
        ]  # fmt: skip
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


# pcap_open_dead takes DLT_* values; these LINKTYPE_* numbers differ from their DLT_*
# (tcpdump.org/linktypes.html): RAW, ATM_RFC1483, SLIP_BSDOS, PPP_BSDOS.
_LINKTYPE_TO_DLT = {101: 12, 100: 11, 102: 15, 103: 16}


class Filter:
    """A BPF expression, compiled lazily for each link type it meets."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._programs: dict[int, _Program] = {}
        self._hdr = _PktHdr()
        self._compile(1)  # fail early on syntax errors

    def _compile(self, linktype: int) -> _Program:
        prog = self._programs.get(linktype)
        if prog is None:
            lib = _libpcap()
            handle = lib.pcap_open_dead(_LINKTYPE_TO_DLT.get(linktype, linktype), 262_144)
            prog = _Program()
            if lib.pcap_compile(handle, ctypes.byref(prog), self.expression.encode(), 1, 0) != 0:
                err = lib.pcap_geterr(handle).decode(errors="replace")
                lib.pcap_close(handle)
                raise UsageError(f"--bpf {self.expression!r}: {err} (link type {linktype})")
            lib.pcap_close(handle)
            self._programs[linktype] = prog
        return prog

    def matches(self, linktype: int, data: bytes, wirelen: int) -> bool:
        """Whether the packet ``data`` (captured bytes) passes the filter."""
        prog = self._compile(linktype)
        self._hdr.caplen = len(data)
        self._hdr.len = wirelen
        return bool(_lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(self._hdr), data))
