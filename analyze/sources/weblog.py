"""Web access logs (nginx, Apache, JSON lines); https://nginx.org/en/docs/http/ngx_http_log_module.html

Combined, common, vhost_combined, custom formats (nginx ``log_format``, Apache ``LogFormat``:
https://httpd.apache.org/docs/current/mod/mod_log_config.html) and JSON lines.

One record per request line: the TCP peer as ``src_ip`` (``$remote_addr`` / ``%h`` / ``%a``),
``src_port`` when the format logs ``$remote_port`` / ``%{remote}p``, and the ``http_*`` fields.
A custom nginx ``log_format`` or Apache ``LogFormat`` string given as ``log_format`` is compiled
into one extraction regex; JSON-lines logs are read through a field map (JSON paths).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import polars as pl

from analyze.sources._common import (
    Scan,
    concat_scans,
    conform,
    empty_scan,
    origin,
    in_range,
    rejects_of,
    scan_lines,
)
from capture.errors import UsageError
from capture.schema import SCHEMA

__all__ = [
    "COMBINED_RE",
    "DEFAULT_FIELD_MAP",
    "NAME",
    "PRESETS",
    "SCHEMA",
    "compile_log_format",
    "looks_like",
    "looks_like_json",
    "parse_field_map",
    "scan",
]

NAME: Final = "weblog"

_Q: Final = r'(?:[^"\\]|\\.)*'  # the inside of a quoted, backslash-escaped field

COMBINED_RE: Final = (
    r"^(?:(?<vhost>[^ :]+):(?<vport>[0-9]+) )?"  # vhost_combined "%v:%p "
    rf'(?:"(?<xffpre>{_Q})" )?'  # a quoted X-Forwarded-For list before the client
    r"(?<client>[^ ,]+(?:, [^ ,]+)*) [^ ]+ [^ ]+ \[(?<time_local>[^\]]+)\] "
    rf'"(?:(?<method>[A-Za-z]+) (?<path>(?:[^ "\\]|\\.)*)(?: HTTP/[0-9.]+)?|{_Q})" '
    r"(?<status>[0-9]{3}) (?:[0-9]+|-)"
    rf'(?: "{_Q}" "(?<ua>{_Q})")?'
    rf'(?: "(?<xff>{_Q})")?(?: |$)'
)
"""Common, combined and vhost_combined in one pattern; trailing extra fields are ignored.

Not anchored at the end (``(?: |$)`` only checks the field boundary), so that the capture
engine stops after the last field it needs instead of walking the rest of the line.
"""

FAST_RE: Final = (
    r'^(?<client>[^ ]+) [^ ]+ [^ ]+ \[(?<time_local>[^\]]+)\] "(?<method>[A-Z]+) (?<path>[^ "]+) '
    r'[^"]*" (?<status>[0-9]{3}) [^ ]+ "[^"]*" "(?<ua>[^"]*)"(?: "(?<xff>[^"]*)")?'
)
"""The plain combined line (no escaped quotes, one client, a request line): a pattern simple
enough for the regex crate's one-pass engine, about 3x faster than ``COMBINED_RE``.  Lines
it does not take go through ``COMBINED_RE``."""

PRESETS: Final[dict[str, str]] = {
    "combined": '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"',
    "common": '%h %l %u %t "%r" %>s %b',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
}
"""Named formats accepted by ``log_format``."""

# Our field for each nginx variable / Apache directive; others are matched and dropped.
_NGINX_FIELDS: Final[dict[str, str]] = {
    "remote_addr": "client",
    "binary_remote_addr": "client",
    "realip_remote_addr": "client",
    "remote_port": "port",
    "realip_remote_port": "port",
    "time_local": "time_local",
    "time_iso8601": "time_iso",
    "msec": "msec",
    "request": "request",
    "request_method": "method",
    "request_uri": "path",
    "uri": "path",
    "status": "status",
    "http_user_agent": "ua",
    "http_x_forwarded_for": "xff",
    "host": "host",
    "http_host": "host",
    "server_name": "host",
    "server_addr": "dst_ip",
    "server_port": "dst_port",
}
_APACHE_FIELDS: Final[dict[str, str]] = {
    "h": "client",
    "a": "client",
    "{c}a": "client",
    "{remote}p": "port",
    "t": "time_local",
    "r": "request",
    ">s": "status",
    "s": "status",
    "<s": "status",
    "m": "method",
    "U": "path",
    "{User-Agent}i": "ua",
    "{X-Forwarded-For}i": "xff",
    "{Host}i": "host",
    "v": "host",
    "V": "host",
    "A": "dst_ip",
    "p": "dst_port",
    "{local}p": "dst_port",
    "{canonical}p": "dst_port",
}
_FIELD_RE: Final[dict[str, str]] = {
    "port": r"[0-9]+|-",
    "status": r"[0-9]{3}",
    "dst_port": r"[0-9]+|-",
    "msec": r"[0-9]+(?:\.[0-9]+)?",
}

# An unquoted value: one token, or a list as nginx prints $upstream_* after retries
# ("0.118, 0.001", "10.0.0.5:8080 : 10.0.0.6:8080").
_BARE: Final = r"[^ ]*(?:(?:, | : )[^ ]+)*"

_NGINX_TOKEN: Final = re.compile(r"\$(\w+|\{\w+\})")
_APACHE_TOKEN: Final = re.compile(r"%[<>!,\d]*(\{[^}]*\})?([a-zA-Z%])")


def compile_log_format(fmt: str) -> str:
    """Compile an nginx ``log_format`` or Apache ``LogFormat`` string into an extraction regex.

    Each variable becomes a named group when it feeds a record field (``$remote_addr`` ->
    ``client``, ``%{User-Agent}i`` -> ``ua``, ...) and an anonymous match otherwise; inside
    double quotes a value may hold spaces and backslash escapes, outside it is one token.

    Args:
        fmt: the format string, or a preset name (``combined``, ``common``, ``vhost_combined``).

    Returns:
        A Rust-regex pattern anchored at both ends.

    Raises:
        UsageError: the string holds no variable at all.
    """
    fmt = PRESETS.get(fmt, fmt)
    apache = "$" not in fmt and "%" in fmt
    token = _APACHE_TOKEN if apache else _NGINX_TOKEN
    out, used, pos, quoted, found = ["^"], set(), 0, False, False
    for m in token.finditer(fmt):
        literal = fmt[pos : m.start()]
        quoted ^= literal.count('"') % 2 == 1
        out.append(re.escape(literal).replace("\\ ", " "))
        pos = m.end()
        if apache:
            name = (m.group(1) or "") + m.group(2)
            name = name.replace(">", "").replace("<", "") if name.endswith("s") else name
            field = _APACHE_FIELDS.get(name) or _APACHE_FIELDS.get(
                m.group(0)[1:].lstrip("<>!,0123456789")
            )
            if m.group(2) == "%":
                out.append("%")
                continue
        else:
            field = _NGINX_FIELDS.get(m.group(1).strip("{}"))
        found = True
        if field == "time_local":
            # Apache's %t prints its own brackets; nginx's [$time_local] has them as literals.
            inner = r"[^\]]+"
            value = rf"\[(?<time_local>{inner})\]" if apache else rf"(?<time_local>{inner})"
            out.append(value if field not in used else value.replace("?<time_local>", "?:"))
            used.add(field)
            continue
        pattern = _FIELD_RE.get(field or "", _Q if quoted else _BARE)
        if field and field not in used:
            out.append(f"(?<{field}>{pattern})")
            used.add(field)
        else:
            out.append(f"(?:{pattern})")
    tail = fmt[pos:]
    out.append(re.escape(tail).replace("\\ ", " ") + "$")
    if not found:
        raise UsageError(f"--log-format: no $variable or %directive in {fmt!r}")
    return "".join(out)


def looks_like(lines: Sequence[str]) -> bool:
    """True when most of the first lines are common / combined access log lines."""
    frame = pl.DataFrame({"line": list(lines)}, schema={"line": pl.String})
    hits = frame.select(pl.col("line").str.contains(COMBINED_RE))["line"]
    # the first line decides a file that changes format later; else the majority does
    return bool(hits.len() and (hits[0] or hits.mean() >= 0.5))  # type: ignore[operator]


def looks_like_json(lines: Sequence[str]) -> bool:
    """True when the first lines are JSON objects that look like HTTP requests."""
    return bool(lines) and all(
        line.lstrip().startswith("{") and ("status" in line or "request" in line)
        for line in lines[:5]
    )


# --- turning extracted text into record columns ------------------------------------------


def _time(local: pl.Expr, iso: pl.Expr, msec: pl.Expr) -> pl.Expr:
    return pl.coalesce(
        local.str.to_datetime("%d/%b/%Y:%H:%M:%S %z", strict=False, time_zone="UTC"),
        iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_zone="UTC"),
        pl.from_epoch(
            (msec.cast(pl.Float64, strict=False) * 1_000_000).cast(pl.Int64), time_unit="us"
        ).dt.replace_time_zone("UTC"),
    ).dt.cast_time_unit("us")


def _dated(parsed: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.Expr]:
    """``parsed`` with ``_ts``, and the test of a readable line: a client, and a time that
    is a date where the line has one (``[30/Feb/2026:...]`` or hour 25 make a reject)."""
    have = set(parsed.collect_schema().names())
    texts = [pl.col(c) for c in ("time_local", "time_iso", "msec") if c in have]
    none = pl.lit(None, pl.String)
    ts = _time(*(pl.col(c) if c in have else none for c in ("time_local", "time_iso", "msec")))
    parsed = parsed.with_columns(_ts=pl.when(in_range(ts)).then(ts))
    timed = pl.any_horizontal([t.is_not_null() for t in texts]) if texts else pl.lit(False)
    return parsed, pl.col("client").is_not_null() & (~timed | pl.col("_ts").is_not_null())


def _dash(expr: pl.Expr) -> pl.Expr:
    """``-`` (and empty) means "not logged"."""
    return pl.when(expr.is_in(["-", ""])).then(None).otherwise(expr)


def _records(parsed: pl.LazyFrame, observer: str | None) -> pl.LazyFrame:
    """Columns named after ``_NGINX_FIELDS`` values -> record schema."""
    have = set(parsed.collect_schema().names())

    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in have else pl.lit(None, pl.String)

    # Only rows that need them go through the costlier steps (null rows are nearly free):
    # the request line when method/path were not extracted, the split of a client list.
    request = (
        pl.when(col("method").is_null())
        .then(col("request"))
        .str.extract_groups(r"^(?<m>[A-Za-z]+) (?<p>(?:[^ \\]|\\.)*)(?: HTTP/[0-9.]+)?$")
    )
    listed = pl.when(col("client").str.contains(", ", literal=True)).then(col("client"))
    clients = listed.str.split(", ")
    hops = clients.list.slice(0, clients.list.len() - 1).list.join(", ")
    prefix_xff = pl.concat_str(
        [_dash(col("xffpre")), hops], separator=", ", ignore_nulls=True
    )
    return parsed.with_columns(
        _rq=request,
        ts=pl.col("_ts") if "_ts" in have else _time(col("time_local"), col("time_iso"), col("msec")),
        src_ip=pl.coalesce(clients.list.last(), col("client")),
    ).select(
        **origin(NAME),
        ts=pl.col("ts"),
        observer=pl.lit(observer, pl.String),
        src_ip=pl.col("src_ip"),
        src_port=_dash(col("port")).cast(pl.UInt16, strict=False),
        dst_ip=_dash(col("dst_ip")),
        dst_port=_dash(col("dst_port")).cast(pl.UInt16, strict=False),
        proto=pl.lit("tcp"),
        service=pl.lit("http"),
        http_method=pl.coalesce(col("method"), pl.col("_rq").struct.field("m")).cast(
            pl.Categorical
        ),
        http_host=_dash(pl.coalesce(col("host"), col("vhost"))),
        http_path=pl.coalesce(col("path"), pl.col("_rq").struct.field("p")),
        http_status=col("status").cast(pl.UInt16, strict=False),
        http_user_agent=_dash(col("ua")),
        http_xff=pl.coalesce(_dash(col("xff")), pl.when(prefix_xff != "").then(prefix_xff)),
    )


def _two_tier(lines: pl.LazyFrame) -> pl.LazyFrame:
    """``COMBINED_RE``'s groups, taking the cheap ``FAST_RE`` path where it applies."""
    line = pl.col("line")
    # An escaped quote could end FAST_RE's quoted field early: such lines take the slow path.
    fast = pl.when(~line.str.contains('\\"', literal=True)).then(line).str.extract_groups(FAST_RE)
    fast_groups = set(re.findall(r"\(\?<(\w+)>", FAST_RE))
    slow_groups = re.findall(r"\(\?<(\w+)>", COMBINED_RE)
    taken = pl.col("_f").struct.field("client").is_not_null()
    return (
        lines.with_columns(_f=fast)
        .with_columns(_s=pl.when(~taken).then(line).str.extract_groups(COMBINED_RE))
        .select(
            "source",
            "lineno",
            "line",
            *[
                (
                    pl.coalesce(pl.col("_f").struct.field(g), pl.col("_s").struct.field(g))
                    if g in fast_groups
                    else pl.col("_s").struct.field(g)
                ).alias(g)
                for g in slow_groups
            ],
        )
    )


def _scan_text(path: Path, pattern: str, observer: str | None) -> tuple[Scan, list[str]]:
    lines, notes = scan_lines(path)
    groups = set(re.findall(r"\(\?<(\w+)>", pattern))
    if "client" not in groups:
        raise UsageError("--log-format: the format must log the client ($remote_addr or %h)")
    nonblank = lines.filter(pl.col("line").str.strip_chars() != "")
    if pattern == COMBINED_RE:
        parsed = _two_tier(nonblank)
    else:
        parsed = nonblank.with_columns(_m=pl.col("line").str.extract_groups(pattern)).unnest("_m")
    # records and rejects come from this one extraction: compute it once.
    parsed, ok = _dated(parsed)
    parsed = parsed.cache()
    records = conform(_records(parsed.filter(ok), observer))
    if not {"time_local", "time_iso", "msec"} & groups:
        notes.append(f"{path}: the log format has no time; ts is null")
    scan = Scan(
        records=records,
        rejects=rejects_of(parsed.filter(~ok)),
        skipped=lines.select(
            pl.lit(str(path)).alias("source"),
            (pl.col("line").str.strip_chars() == "").sum().cast(pl.UInt32).alias("skipped"),
        ),
    )
    return scan, notes


# --- JSON lines ------------------------------------------------------------------------------

DEFAULT_FIELD_MAP: Final[dict[str, tuple[str, ...]]] = {
    "client": ("remote_addr", "request.remote_ip", "client_ip", "remote_ip", "ClientHost"),
    "port": ("remote_port", "request.remote_port", "ClientPort"),
    "time_iso": ("time_iso8601", "time", "timestamp", "@timestamp", "StartUTC"),
    "time_local": ("time_local",),
    "msec": ("msec", "ts"),
    "request": ("request",),
    "method": ("request_method", "request.method", "method", "RequestMethod"),
    "path": ("request_uri", "request.uri", "uri", "RequestPath"),
    "host": ("host", "http_host", "request.host", "RequestHost"),
    "status": ("status", "DownstreamStatus"),
    "ua": ("http_user_agent", "user_agent", "request.headers['User-Agent'][0]"),
    "xff": ("http_x_forwarded_for", "request.headers['X-Forwarded-For'][0]"),
}
"""Where each field is looked for in a JSON access log (nginx ``escape=json``, Caddy, Traefik)."""

_MAP_KEYS: Final = {
    "src_ip": "client",
    "src_port": "port",
    "ts": "time_iso",
    "http_method": "method",
    "http_path": "path",
    "http_host": "host",
    "http_status": "status",
    "http_user_agent": "ua",
    "http_xff": "xff",
    "request": "request",
    "time_local": "time_local",
    "msec": "msec",
}


def parse_field_map(text: str | None) -> dict[str, tuple[str, ...]]:
    """``src_ip=client.ip,ts=when`` -> the field map, defaults for fields not named.

    Keys are record columns (``src_ip``, ``src_port``, ``ts``, ``http_method``, ``http_path``,
    ``http_host``, ``http_status``, ``http_user_agent``, ``http_xff``) or ``request`` /
    ``time_local`` / ``msec``; values are dotted JSON paths.

    Raises:
        UsageError: an unknown key or a pair without ``=``.
    """
    mapping = dict(DEFAULT_FIELD_MAP)
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in _MAP_KEYS or not value.strip():
            raise UsageError(
                f"--field-map: bad pair {pair.strip()!r}; use KEY=json.path with KEY one of "
                + ", ".join(_MAP_KEYS)
            )
        path = value.strip()
        try:  # polars would only complain at collect time, as a ComputeError
            pl.Series(["{}"]).str.json_path_match(_json_path(path))
        except pl.exceptions.PolarsError:
            raise UsageError(f"--field-map: {path!r} (for {key}) is not a JSON path") from None
        mapping[_MAP_KEYS[key]] = (path,)
    return mapping


def _json_path(dotted: str) -> str:
    """``request.remote_ip`` -> ``$.request.remote_ip``; odd keys (``@timestamp``) bracketed."""
    if dotted.startswith("$"):
        return dotted
    if "[" in dotted:
        return f"$.{dotted}"
    return "$" + "".join(f".{k}" if k.isidentifier() else f"['{k}']" for k in dotted.split("."))


def _scan_json(
    path: Path, field_map: Mapping[str, Sequence[str]], observer: str | None
) -> tuple[Scan, list[str]]:
    lines, notes = scan_lines(path)
    nonblank = lines.filter(pl.col("line").str.strip_chars() != "")
    line = pl.col("line")
    parsed = nonblank.with_columns(
        **{
            field: pl.coalesce([line.str.json_path_match(_json_path(p)) for p in paths])
            for field, paths in field_map.items()
        }
    )
    parsed, ok = _dated(parsed)
    return (
        Scan(
            records=conform(_records(parsed.filter(ok), observer)),
            rejects=rejects_of(parsed.filter(~ok)),
            skipped=lines.select(
                pl.lit(str(path)).alias("source"),
                (pl.col("line").str.strip_chars() == "").sum().cast(pl.UInt32).alias("skipped"),
            ),
        ),
        notes,
    )


def scan(
    paths: Sequence[Path],
    *,
    log_format: str | None = None,
    json: bool = False,
    field_map: Mapping[str, Sequence[str]] | None = None,
    observer: str | None = None,
) -> Scan:
    """Read access logs into one record per request.

    Args:
        paths: access log files (``.gz`` or not).
        log_format: an nginx ``log_format`` / Apache ``LogFormat`` string or a preset name;
            default: common / combined / vhost_combined with optional trailing fields.
        json: the files are JSON lines (one object per request).
        field_map: for JSON, where each field is (see ``DEFAULT_FIELD_MAP``).
        observer: host name to record as observer (access logs do not name their host).

    Returns:
        A lazy ``Scan``.

    Raises:
        UsageError: a ``log_format`` without variables or without the client.
        InputError: a file cannot be read.
    """
    if not paths:
        return empty_scan()
    pattern = compile_log_format(log_format) if log_format else COMBINED_RE
    scans, notes = [], []
    for path in paths:
        if json:
            one, more = _scan_json(Path(path), field_map or DEFAULT_FIELD_MAP, observer)
        else:
            one, more = _scan_text(Path(path), pattern, observer)
        scans.append(one)
        notes += more
    merged = concat_scans(scans)
    return Scan(
        records=merged.records,
        rejects=merged.rejects,
        skipped=merged.skipped,
        notes=tuple(notes),
    )
