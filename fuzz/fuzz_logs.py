"""Fuzz ``analyze.sources.read_logs`` for every log type, including the ``--log-format``
compiler (``analyze.sources.weblog.compile_log_format``) and ``--field-map``.

Input layout: byte 0 picks the type (``LOG_TYPES[b % len]``, ``auto`` detects it); for
``nginx`` / ``apache`` the next line is the ``--log-format`` string and for ``jsonlog`` the
``--field-map`` (an empty line means none); the rest is the file.  The lazy result is
collected the way ``egresslens logs`` does: records, rejects and skipped together.

Run: ``.venv/bin/python fuzz/fuzz_logs.py -max_total_time=60`` (libFuzzer flags).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``fuzz`` and the packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    import atheris  # noqa: F401  (before the imports below, so that they are instrumented)

from fuzz import _common

with _common.instrumented():
    import polars as pl

    from analyze.sources import LOG_TYPES, read_logs
    from capture.schema import SCHEMA

NAME = "logs"
OPTIONS = ("--log-format", "--field-map")
NGINX_CUSTOM = (
    '$remote_addr:$remote_port - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" $request_time '
    "$upstream_response_time $upstream_addr"
)
APACHE_CUSTOM = '%a %{remote}p %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'


def encode(kind: str, body: bytes, option: str = "") -> bytes:
    """The fuzz input that reads ``body`` as ``kind`` (with ``option`` where it takes one)."""
    head = bytes([LOG_TYPES.index(kind)])
    if kind in ("nginx", "apache", "jsonlog"):
        head += option.encode() + b"\n"
    return head + body


def decode(data: bytes) -> tuple[str, str | None, bytes]:
    """(type, option string or None, file bytes) of a fuzz input."""
    if not data:
        return "auto", None, b""
    kind = LOG_TYPES[data[0] % len(LOG_TYPES)]
    body = data[1:]
    option = None
    if kind in ("nginx", "apache", "jsonlog"):
        line, _, body = body.partition(b"\n")
        option = line.decode("utf-8", "replace") or None
    return kind, option, body


def one_input(data: bytes) -> None:
    """Read the file in ``data`` as the type it names and collect every result frame."""
    kind, option, body = decode(data)
    path = _common.scratch("input.log", body)
    with _common.expect_clean_errors(path, OPTIONS):
        result = read_logs(
            [path], type=kind,  # type: ignore[arg-type]
            log_format=option if kind in ("nginx", "apache") else None,
            field_map=option if kind == "jsonlog" else None,
            year=2026, observer="fuzz",
        )  # fmt: skip
        records, _rejects, _skipped = pl.collect_all([result.records, result.rejects, result.skipped])
        if records.schema != SCHEMA:
            raise _common.InvariantViolation(f"schema {records.schema} is not SCHEMA")
        _common.names_the_file(result.notes, path)


def seeds() -> list[bytes]:
    out = []
    for p in _common.fixtures("tests/data/logs/*", "pcaps/demo/*.log"):
        out.append(encode("auto", p.read_bytes()))
    logs = _common.ROOT / "tests" / "data" / "logs"
    out.append(encode("nginx", (logs / "nginx_custom.log").read_bytes(), NGINX_CUSTOM))
    out.append(encode("apache", (logs / "apache_custom.log").read_bytes(), APACHE_CUSTOM))
    out.append(encode("apache", (logs / "apache_vhost_combined.log").read_bytes(), "vhost_combined"))
    out.append(encode("nginx", (logs / "nginx_combined.log").read_bytes(), "combined"))
    out.append(encode("jsonlog", (logs / "caddy.json").read_bytes(), "src_ip=request.remote_ip"))
    return out


if __name__ == "__main__":
    _common.main(NAME, one_input, seeds())
