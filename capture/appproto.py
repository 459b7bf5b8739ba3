"""Small byte-level parsers for a connection's first payload: SSH banners, HTTP heads, TLS SNI.

Specs: RFC 4253 §4.2 (SSH identification string), RFC 9112 §3 and §4 (HTTP/1.1 request
and status lines), RFC 8446 §4.1.2 and RFC 6066 §3 (ClientHello, server_name extension).
Each parser looks at one segment (the first payload packet of a direction, as captured)
and returns ``None`` when the bytes are not what it parses; none of them raises on junk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HTTP_METHODS: Final = frozenset(
    b"GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH PROPFIND PROPPATCH MKCOL COPY "
    b"MOVE LOCK UNLOCK PRI".split()
)
_MAX_LINE: Final = 255


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def ssh_banner(payload: bytes) -> str | None:
    """The ``SSH-protoversion-softwareversion [comments]`` line, or None.

    A server may send other lines before its identification string (RFC 4253 §4.2), so any
    line of the segment that starts with ``SSH-`` counts.
    """
    if payload.startswith(b"SSH-"):
        start = 0
    else:
        start = payload.find(b"\nSSH-")
        if start < 0:
            return None
        start += 1
    end = payload.find(b"\n", start)
    line = payload[start : end if end >= 0 else start + _MAX_LINE]
    return _text(line.rstrip(b"\r")[:_MAX_LINE]) or None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """What the first HTTP request of a connection says about its client."""

    method: str
    """Request method (``GET``)."""
    path: str
    """Request target as sent."""
    host: str | None
    """Host header."""
    user_agent: str | None
    """User-Agent header."""
    xff: str | None
    """X-Forwarded-For header (all of it: the proxies' chain)."""


def http_request(payload: bytes) -> HttpRequest | None:
    """Parse an HTTP/1.x request line and the headers present in this segment."""
    sp = payload.find(b" ", 0, 16)
    if sp <= 0 or payload[:sp] not in HTTP_METHODS:
        return None
    head_end = payload.find(b"\r\n\r\n")
    head = payload if head_end < 0 else payload[:head_end]
    lines = head.split(b"\n")
    parts = lines[0].rstrip(b"\r").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return None
    headers: dict[bytes, bytes] = {}
    complete = lines[1:] if head_end >= 0 else lines[1:-1]  # last line may be cut
    for line in complete:
        name, sep, value = line.rstrip(b"\r").partition(b":")
        key = name.strip().lower()
        if sep and key in (b"host", b"user-agent", b"x-forwarded-for") and key not in headers:
            headers[key] = value.strip()

    def header(key: bytes) -> str | None:
        value = headers.get(key)
        return None if value is None else _text(value)

    return HttpRequest(
        method=_text(parts[0]),
        path=_text(parts[1]),
        host=header(b"host"),
        user_agent=header(b"user-agent"),
        xff=header(b"x-forwarded-for"),
    )


def http_status(payload: bytes) -> int | None:
    """The status code of an ``HTTP/1.x NNN`` status line, or None."""
    if not payload.startswith(b"HTTP/1.") or len(payload) < 12 or payload[8:9] != b" ":
        return None
    code = payload[9:12]
    if not code.isdigit():
        return None
    return int(code)


def tls_client_hello_sni(payload: bytes) -> tuple[bool, str | None]:
    """``(is_client_hello, sni)`` for a TLS record holding a ClientHello.

    ``sni`` is the first ``host_name`` of the server_name extension, or None when the
    ClientHello has none or the segment cut it off.
    """
    # TLSPlaintext: type 22 (handshake), legacy version 3.x, length; then handshake type 1.
    if len(payload) < 6 or payload[0] != 0x16 or payload[1] != 0x03 or payload[5] != 0x01:
        return False, None
    try:
        return True, _sni(payload)
    except IndexError:
        return True, None


def _sni(p: bytes) -> str | None:
    pos = 9 + 2 + 32  # record header 5, handshake header 4, client_version 2, random 32
    pos += 1 + p[pos]  # session id
    pos += 2 + int.from_bytes(p[pos : pos + 2], "big")  # cipher suites
    pos += 1 + p[pos]  # compression methods
    ext_end = pos + 2 + int.from_bytes(p[pos : pos + 2], "big")
    pos += 2
    while pos + 4 <= min(ext_end, len(p)):
        ext_type = int.from_bytes(p[pos : pos + 2], "big")
        ext_len = int.from_bytes(p[pos + 2 : pos + 4], "big")
        body = pos + 4
        if ext_type == 0:  # server_name: list length 2, then (type 1, length 2, name)
            entry = body + 2
            while entry + 3 <= body + ext_len:
                name_type = p[entry]
                name_len = int.from_bytes(p[entry + 1 : entry + 3], "big")
                name = p[entry + 3 : entry + 3 + name_len]
                if len(name) < name_len:
                    return None
                if name_type == 0:
                    return name.decode("ascii", "backslashreplace")
                entry += 3 + name_len
            return None
        pos = body + ext_len
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AppInfo:
    """Application-layer facts of a connection, from its first payload each way."""

    service: str = "other"
    ssh_client: str | None = None
    ssh_server: str | None = None
    http_method: str | None = None
    http_host: str | None = None
    http_path: str | None = None
    http_status: int | None = None
    http_user_agent: str | None = None
    http_xff: str | None = None


def inspect(orig: bytes | None, resp: bytes | None, proto: int = 6) -> AppInfo:
    """Decide the service by content and pull out banners, request head and SNI.

    Args:
        orig: the originator's first payload segment (or None).
        resp: the responder's first payload segment (or None).
        proto: IP protocol; only TCP carries the protocols parsed here.
    """
    if proto != 6:
        return AppInfo()
    o = orig or b""
    r = resp or b""
    ssh_client, ssh_server = ssh_banner(o), ssh_banner(r)
    if ssh_client or ssh_server:
        return AppInfo(service="ssh", ssh_client=ssh_client, ssh_server=ssh_server)
    req = http_request(o)
    status = http_status(r)
    if req or status is not None:
        return AppInfo(
            service="http",
            http_method=req.method if req else None,
            http_host=req.host if req else None,
            http_path=req.path if req else None,
            http_user_agent=req.user_agent if req else None,
            http_xff=req.xff if req else None,
            http_status=status,
        )
    is_hello, sni = tls_client_hello_sni(o)
    if is_hello:
        return AppInfo(service="https", http_host=sni)
    return AppInfo()
