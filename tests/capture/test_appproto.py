"""capture.appproto: banner, HTTP head and ClientHello parsing, table-driven."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture.appproto import http_request, http_status, inspect, ssh_banner, tls_client_hello_sni


@pytest.mark.parametrize(
    ("payload", "banner"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", "SSH-2.0-OpenSSH_9.6"),
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\x00\x00", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
        (b"SSH-1.99-Cisco-1.25\n", "SSH-1.99-Cisco-1.25"),
        (b"Welcome to host\r\nSSH-2.0-dropbear_2022.83\r\n", "SSH-2.0-dropbear_2022.83"),
        (b"SSH-2.0-cut-without-newline", "SSH-2.0-cut-without-newline"),
        (b"GET / HTTP/1.1\r\n", None),
        (b"", None),
        (b"xSSH-2.0-notatlinestart", None),
    ],
)
def test_ssh_banner(payload: bytes, banner: str | None) -> None:
    assert ssh_banner(payload) == banner


def test_http_request_fields() -> None:
    req = http_request(
        b"POST /api/v1?q=1 HTTP/1.1\r\nhost: app.example\r\nUser-Agent: curl/8.5.0\r\n"
        b"X-Forwarded-For: 198.51.100.7, 10.0.0.4\r\nContent-Length: 0\r\n\r\n"
    )
    assert req is not None
    assert (req.method, req.path, req.host) == ("POST", "/api/v1?q=1", "app.example")
    assert (req.user_agent, req.xff) == ("curl/8.5.0", "198.51.100.7, 10.0.0.4")


@pytest.mark.parametrize(
    "payload",
    [b"FOO / HTTP/1.1\r\n\r\n", b"GET /\r\n\r\n", b"GET / FTP/1.0\r\n\r\n", b"\x16\x03\x01", b""],
)
def test_not_http_requests(payload: bytes) -> None:
    assert http_request(payload) is None


def test_header_cut_by_the_segment_end_is_not_trusted() -> None:
    req = http_request(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: cu")
    assert req is not None and req.host == "a" and req.user_agent is None


@pytest.mark.parametrize(
    ("payload", "status"),
    [(b"HTTP/1.1 200 OK\r\n", 200), (b"HTTP/1.0 404 Not Found\r\n", 404), (b"HTTP/2 200", None),
     (b"HTTP/1.1 abc", None), (b"SSH-2.0-x", None)],
)  # fmt: skip
def test_http_status(payload: bytes, status: int | None) -> None:
    assert http_status(payload) == status


def client_hello(sni: str | None, *, extra_ext: bool = True) -> bytes:
    exts = b""
    if extra_ext:
        exts += struct.pack("!HH", 0x000B, 2) + b"\x01\x00"  # ec_point_formats
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        body = struct.pack("!H", len(entry)) + entry
        exts += struct.pack("!HH", 0, len(body)) + body
    hello = (
        b"\x03\x03" + bytes(32) + b"\x20" + bytes(32) + struct.pack("!H", 4) + b"\x13\x01\x13\x02"
        + b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    )
    hs = b"\x01" + len(hello).to_bytes(3, "big") + hello
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def test_sni_from_client_hello() -> None:
    assert tls_client_hello_sni(client_hello("app.contoso.example")) == (True, "app.contoso.example")
    assert tls_client_hello_sni(client_hello(None)) == (True, None)
    # cut in the middle of the server_name: a ClientHello, SNI unknown, no exception
    full = client_hello("long-name.example")
    assert tls_client_hello_sni(full[: len(full) - 5]) == (True, None)
    assert tls_client_hello_sni(b"\x17\x03\x03\x00\x10") == (False, None)


def test_inspect_decides_service_by_content_not_port() -> None:
    ssh = inspect(b"SSH-2.0-OpenSSH_9.6\r\n", b"SSH-2.0-OpenSSH_9.2p1\r\n")
    assert (ssh.service, ssh.ssh_client, ssh.ssh_server) == ("ssh", "SSH-2.0-OpenSSH_9.6", "SSH-2.0-OpenSSH_9.2p1")
    web = inspect(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 302 Found\r\n")
    assert (web.service, web.http_method, web.http_status) == ("http", "GET", 302)
    tls = inspect(client_hello("a.example"), None)
    assert (tls.service, tls.http_host) == ("https", "a.example")
    assert inspect(b"\x00\x01binary", b"junk").service == "other"
    assert inspect(b"SSH-2.0-x\r\n", None, proto=17).service == "other"


@given(st.binary(max_size=600))
def test_parsers_never_raise_on_junk(payload: bytes) -> None:
    ssh_banner(payload)
    http_request(payload)
    http_status(payload)
    tls_client_hello_sni(payload)
    tls_client_hello_sni(b"\x16\x03\x01\x00\x50\x01" + payload)
    inspect(payload, payload)
