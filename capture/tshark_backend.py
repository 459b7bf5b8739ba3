"""tshark backend: packets decoded by Wireshark's dissectors, read through pyshark.

pyshark runs ``tshark -l -n -T ek -r FILE`` (one JSON object per packet; faster to produce
and parse than PDML) and hands back layers whose fields we read as tshark printed them.
Everything that could change the per-packet facts is switched off: TCP reassembly, IPv4 /
IPv6 defragmentation, sequence analysis.  The outcome must equal the fast path's
``PacketRecord``s, so the same things are counted the same way (``DecodeStats``): only the
link types of ``capture.fastpath``, only the outer IP header, non-first fragments skipped.

Why not ``-T fields``: the task is to go through pyshark (``docs/formats.md`` §2.2), and
pyshark's parsers do not read ``-T fields``.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any, Final

from capture.errors import CorruptCapture, InputError, NotACapture, ToolMissing
from capture.packets import PAYLOAD_HEAD, TCP, UDP, DecodeStats, PacketRecord

PREFS: Final = {
    "tcp.desegment_tcp_streams": "FALSE",
    "tcp.analyze_sequence_numbers": "FALSE",
    "tcp.calculate_timestamps": "FALSE",
    "tcp.check_checksum": "FALSE",
    "udp.check_checksum": "FALSE",
    "ip.defragment": "FALSE",
    "ipv6.defragment": "FALSE",
}
"""tshark preferences (``-o``) that keep every packet's dissection independent of others."""

ENCAP_TO_LINKTYPE: Final = {
    1: 1,  # Ethernet
    7: 101,  # raw IP (tshark folds LINKTYPE 12 and 14 into the same encapsulation)
    15: 0,  # BSD null
    25: 113,  # Linux SLL
    129: 228,  # raw IPv4
    130: 229,  # raw IPv6
    141: 239,  # NFLOG
    174: 108,  # OpenBSD loopback
    210: 276,  # Linux SLL2
}
"""Wireshark's ``frame.encap_type`` (WTAP_ENCAP_*) -> pcap LINKTYPE, for the link types
``capture.fastpath`` reads.  Other encapsulations are counted as unsupported under
``OTHER_ENCAPS``' link type, or under the WTAP number when that is unknown too."""

OTHER_ENCAPS: Final = {4: 9, 20: 105, 23: 127, 3: 6, 2: 10, 45: 192}
"""A few more WTAP -> LINKTYPE numbers (PPP, 802.11, radiotap, token ring, FDDI, PPI)."""

LINK_TOKENS: Final = frozenset(
    {"eth", "ethertype", "vlan", "ieee8021ad", "sll", "null", "raw", "nflog"}
)
"""``frame.protocols`` entries allowed before the IP layer: the link layers (and VLAN
tags) the fast path decodes.  Anything else before IP (MPLS, PPPoE, LLC...) is non-IP."""

IPV6_EXT_KEYS: Final = ("ipv6_hopopts", "ipv6_routing", "ipv6_fraghdr", "ipv6_dstopts", "ah")
"""IPv6 extension headers the fast path steps over; EK nests them in the ``ipv6`` object."""

PCAP_MAGICS: Final = (
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
)  # fmt: skip
PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"


class _Malformed(Exception):
    """A header field tshark could not give (cut short, bogus length)."""


def _fields(layer: Any) -> dict[str, Any]:
    """The raw EK fields of a pyshark layer, as tshark printed them.

    pyshark's ``get_field`` casts through a type table (``frame.time_epoch`` becomes a
    float, losing nanoseconds) and fails on protocols that occur twice in a packet (IP in
    IP), which EK prints as a list; the outermost occurrence comes first.
    """
    raw = layer._fields_dict  # pyshark keeps the decoded JSON object here
    if isinstance(raw, list):
        raw = raw[0]
    return raw if isinstance(raw, dict) else {}


def _get(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    if isinstance(value, list):
        value = value[0]
    if value is None or isinstance(value, dict):
        raise _Malformed(key)
    return str(value)


def _int(fields: dict[str, Any], key: str) -> int:
    text = _get(fields, key)
    return int(text, 16) if text.startswith("0x") else int(text)


def _hex(fields: dict[str, Any], key: str) -> bytes:
    value = fields.get(key)
    if isinstance(value, list):
        value = value[0]
    if not isinstance(value, str):
        return b""
    return bytes.fromhex(value.replace(":", ""))


def _ts_ns(epoch: str) -> int:
    """``"1768471200.123456789"`` -> ns since the epoch, exactly (no float)."""
    sec, _, frac = epoch.partition(".")
    sign = -1 if sec.startswith("-") else 1
    return int(sec) * 1_000_000_000 + sign * int((frac + "000000000")[:9])


def _canonical(addr: str) -> str:
    """tshark prints IPv4-mapped IPv6 as ``::ffff:192.0.2.1``; use ``ipaddress``'s text."""
    return str(ipaddress.ip_address(addr)) if ":" in addr else addr


def _sniff(path: str, name: str) -> None:
    """Raise unless ``path`` starts like pcap, pcapng or a gzip of either."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head[:2] == b"\x1f\x8b":
                f.seek(0)
                try:
                    with gzip.GzipFile(fileobj=f) as gz:
                        head = gz.read(4)
                except (OSError, EOFError) as exc:
                    raise NotACapture(f"{name}: broken gzip data: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{name}: cannot open: {exc.strerror}") from exc
    if head not in PCAP_MAGICS and head != PCAPNG_MAGIC:
        raise NotACapture(f"{name}: not a pcap or pcapng file (starts with {head!r})")


def _tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        raise ToolMissing(
            "the tshark backend needs the tshark program (Debian: apt-get install tshark)"
        )
    return path


def _load_ek_mapping(tshark: str) -> None:
    """Load pyshark's EK field-type table once, before any capture needs it.

    pyshark leaves the cache file it reads (or writes) unclosed: one ResourceWarning per
    process, which we silence here and only here.
    """
    from pyshark import ek_field_mapping
    from pyshark.tshark.tshark import get_tshark_version

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=ResourceWarning, message=r"unclosed file .*ek_field_mapping"
        )
        ek_field_mapping.MAPPING.load_mapping(str(get_tshark_version(tshark)), tshark_path=tshark)


_CAPTURE_CLASS: Any = None


def _capture_class() -> Any:
    """pyshark's FileCapture, waiting for tshark to exit instead of killing it at EOF.

    At the end of the file pyshark kills tshark if asyncio has not yet seen it exit.
    ``Popen.kill()`` first polls, reaping the already-finished child itself, so asyncio's
    child watcher then finds no child and reports exit status 255: a spurious
    ``TSharkCrashException`` in about one file in fifty.  Once tshark has closed its output
    it is exiting anyway, so wait for its real status.
    """
    global _CAPTURE_CLASS
    if _CAPTURE_CLASS is None:
        import pyshark

        class _FileCapture(pyshark.FileCapture):  # type: ignore[misc]
            async def _cleanup_subprocess(self, process: Any) -> Any:
                if process.returncode is None and self._eof_reached:
                    try:
                        await asyncio.wait_for(process.wait(), 10)
                    except TimeoutError:
                        pass
                return await super()._cleanup_subprocess(process)

        _CAPTURE_CLASS = _FileCapture
    return _CAPTURE_CLASS


def _layers(packet: Any) -> dict[str, Any]:
    """Layer name -> pyshark layer, first occurrence only."""
    out: dict[str, Any] = {}
    for layer in packet.layers:
        out.setdefault(layer.layer_name, layer)
    return out


def _decode(packet: Any, stats: DecodeStats, bpf: Any) -> PacketRecord | None:
    """One pyshark packet -> a PacketRecord, or None after counting why not."""
    frame = _fields(packet.frame_info)
    stats.packets += 1
    encap = int(frame.get("frame_frame_encap_type", -1))
    linktype = ENCAP_TO_LINKTYPE.get(encap)
    layers = _layers(packet)
    if bpf is not None:
        raw = layers.get("frame_raw")
        data = bytes.fromhex(raw._fields_dict) if raw is not None else b""
        lt = linktype if linktype is not None else OTHER_ENCAPS.get(encap, encap)
        if not bpf.matches(lt, data, int(frame.get("frame_frame_len", len(data)))):
            stats.filtered += 1
            return None
    if linktype is None:
        stats.unsupported_linktype[OTHER_ENCAPS.get(encap, encap)] += 1
        return None
    protocols = str(frame.get("frame_frame_protocols", "")).split(":")
    ip_at = next((i for i, p in enumerate(protocols) if p in ("ip", "ipv6")), None)
    if ip_at is None or not set(protocols[:ip_at]) <= LINK_TOKENS:
        # A frame cut inside its link-layer header: tshark marks it short / malformed and
        # names no protocol beyond the link layer.
        cut = any(name.startswith(("_ws.short", "_ws.malformed", "_ws_short", "_ws_malformed"))
                  for name in layers)  # fmt: skip
        if cut and set(protocols) - {"_ws.short", "_ws.malformed"} <= LINK_TOKENS:
            stats.malformed += 1
        else:
            stats.non_ip += 1
        return None
    try:
        if protocols[ip_at] == "ip":
            ip = _fields(layers["ip"])
            src, dst = _get(ip, "ip_ip_src"), _get(ip, "ip_ip_dst")
            if _int(ip, "ip_ip_frag_offset"):
                stats.fragments += 1
                return None
            proto = _int(ip, "ip_ip_proto")
            l4_len = _int(ip, "ip_ip_len") - _int(ip, "ip_ip_hdr_len")
        else:
            ip6 = _fields(layers["ipv6"])
            src = _canonical(_get(ip6, "ipv6_ipv6_src"))
            dst = _canonical(_get(ip6, "ipv6_ipv6_dst"))
            proto = _int(ip6, "ipv6_ipv6_nxt")
            l4_len = _int(ip6, "ipv6_ipv6_plen")
            for key in ip6:  # extension headers, in packet order
                if key not in IPV6_EXT_KEYS:
                    continue
                for ext in ip6[key] if isinstance(ip6[key], list) else [ip6[key]]:
                    if key == "ah":  # length in 32-bit words, minus 2 (RFC 4302)
                        l4_len -= (_int(ext, "ah_ah_length") + 2) * 4
                        proto = _int(ext, "ah_ah_next_header")
                        continue
                    if key == "ipv6_fraghdr":
                        if _int(ext, "ipv6_fraghdr_ipv6_fraghdr_offset"):
                            stats.fragments += 1
                            return None
                        l4_len -= 8
                    else:
                        l4_len -= _int(ext, f"{key}_ipv6_{key[5:]}_len_oct")
                    proto = _int(ext, f"{key}_ipv6_{key[5:]}_nxt")
        if proto == TCP:
            if "tcp" not in layers:
                raise _Malformed("tcp")
            tcp = _fields(layers["tcp"])
            hdr = _int(tcp, "tcp_tcp_hdr_len")
            if hdr < 20:
                raise _Malformed("tcp.hdr_len")
            sport, dport = _int(tcp, "tcp_tcp_srcport"), _int(tcp, "tcp_tcp_dstport")
            flags = _int(tcp, "tcp_tcp_flags") & 0xFF
            # tshark leaves tcp.len out on a first IP fragment; the headers still say it.
            payload_len = _int(tcp, "tcp_tcp_len") if "tcp_tcp_len" in tcp else l4_len - hdr
            payload = _hex(tcp, "tcp_tcp_payload")
        elif proto == UDP:
            if "udp" not in layers:
                raise _Malformed("udp")
            udp = _fields(layers["udp"])
            sport, dport = _int(udp, "udp_udp_srcport"), _int(udp, "udp_udp_dstport")
            flags = 0
            payload_len = max(_int(udp, "udp_udp_length") - 8, 0)
            payload = _hex(udp, "udp_udp_payload")
        else:
            stats.other_ip[proto] += 1
            return None
    except _Malformed:
        stats.malformed += 1
        return None
    if payload_len and not payload and "data" in layers:
        payload = _hex(_fields(layers["data"]), "data_data_data")
    if proto == TCP:
        stats.tcp += 1
    else:
        stats.udp += 1
    return PacketRecord(
        index=int(packet.number),
        ts_ns=_ts_ns(str(packet.sniff_timestamp)),
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        proto=proto,
        flags=flags,
        payload_len=payload_len,
        payload=payload[: min(payload_len, PAYLOAD_HEAD)],
    )


def iter_packets(
    path: str, stats: DecodeStats, *, bpf: str | None = None
) -> Iterator[PacketRecord]:
    """Decode ``path`` with tshark (through pyshark), one ``PacketRecord`` per TCP/UDP packet.

    Args:
        path: a pcap / pcapng file, gzip allowed; ``-`` reads stdin (spooled to a
            temporary file, because tshark is started by pyshark on a path).
        stats: counters for everything that is not a TCP/UDP packet.
        bpf: an optional tcpdump filter expression, applied by libpcap to each frame's
            bytes (tshark cannot apply capture filters to files).

    Returns:
        An iterator of packets in file order.

    Raises:
        ToolMissing: tshark is not installed.
        NotACapture: the file is not pcap / pcapng (or gzip of either).
        CorruptCapture: tshark found a record it cannot read; raised after the packets
            before it were yielded.
    """
    name = "stdin" if path == "-" else path
    tshark = _tshark()
    if path == "-":
        yield from _from_stdin(stats, bpf)
        return
    _sniff(path, name)
    flt = None
    if bpf:
        from capture.bpf import Filter

        flt = Filter(bpf)
    _load_ek_mapping(tshark)
    from pyshark.capture.capture import TSharkCrashException

    loop = asyncio.new_event_loop()
    cap = _capture_class()(
        path, keep_packets=False, use_ek=True, include_raw=flt is not None,
        override_prefs=PREFS, eventloop=loop, tshark_path=tshark,
    )  # fmt: skip
    packets = iter(cap)
    seen = 0
    crash: str | None = None
    try:
        try:
            for packet in packets:
                seen += 1
                record = _decode(packet, stats, flt)
                if record is not None:
                    yield record
        except TSharkCrashException as exc:
            crash = str(exc)
    finally:
        crash = _shutdown(cap, packets, loop) or crash
    complaint = _complaint(cap)
    if complaint is None:
        if crash is not None:
            raise CorruptCapture(f"{name}: after packet {seen:,}: {crash}")
        return
    if "cut short in the middle of a packet" in complaint:
        return  # truncated: the packets before the cut are all there is
    raise CorruptCapture(f"{name}: after packet {seen:,}: tshark: {complaint}; stopped")


def _shutdown(cap: Any, packets: Any, loop: asyncio.AbstractEventLoop) -> str | None:
    """Stop tshark, drain its stderr, close the loop; return pyshark's crash report if any.

    When tshark exited with an error, pyshark's cleanup raises ``TSharkCrashException``
    but leaves the dead process registered and its stderr reader pending; its ``__del__``
    would later run the cleanup again on our closed loop.  So forget the process and let
    the reader finish here, while the loop is still open.
    """
    from pyshark.capture.capture import TSharkCrashException

    crash: str | None = None
    for step in (packets.close, cap.close):  # the reader generator first: it reaps tshark
        try:
            step()
        except TSharkCrashException as exc:
            crash = crash or str(exc)
    cap._running_processes.clear()
    loop.run_until_complete(cap.close_async())
    loop.close()
    return crash


def _complaint(cap: Any) -> str | None:
    """tshark's last stderr line when it is about the file, else None.

    tshark reports a bad file as ``tshark: The file "x" appears to be damaged or corrupt.``
    followed by a detail line in parentheses; pyshark keeps only the last line.
    """
    line = str(getattr(cap, "_last_error_line", None) or "").strip()
    if line.startswith("(") or (line.startswith("tshark:") and "The file" in line):
        return line.removeprefix("tshark: ")
    return None


def _from_stdin(stats: DecodeStats, bpf: str | None) -> Iterator[PacketRecord]:
    with tempfile.NamedTemporaryFile(prefix="egresslens-", suffix=".pcap") as tmp:
        shutil.copyfileobj(sys.stdin.buffer, tmp)
        tmp.flush()
        os.fsync(tmp.fileno())
        yield from iter_packets(tmp.name, stats, bpf=bpf)
