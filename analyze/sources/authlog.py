"""sshd in syslog files (auth.log, secure): BSD, RFC 3339 and RFC 5424 lines; see https://www.rfc-editor.org/rfc/rfc5424 and OpenSSH's auth.c / packet.c.

One connection record per sshd connection, keyed by (observer, pid, client IP, client port),
with the user, the authentication outcome (``capture.schema.SshAuth``), the method, the
first time (``ts``) and the time to the last line (``duration``).

Log injection: user names and client-sent texts are attacker-controlled.  Every template
anchors the client address to the *end* of the message (greedy user group, so the last
``IP port N`` wins) or, where client text follows the address (``Received disconnect``,
``Unable to negotiate``), to fixed text at its start.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import polars as pl

from analyze.sources._common import (
    IP_RE,
    Scan,
    chronological,
    conform,
    empty_scan,
    origin,
    rejects_of,
    scan_lines,
)
from capture.errors import UsageError
from capture.schema import SCHEMA, SSH_AUTH

__all__ = ["NAME", "NO_CONNECTION_RE", "PREFIX_RE", "SCHEMA", "TEMPLATES", "looks_like", "scan", "sshd_scan"]

NAME: Final = "authlog"

# --- the syslog line prefix ------------------------------------------------------------------

_BSD_TS: Final = r"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d"
_ISO_TS: Final = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"

PREFIX_RE: Final = (
    r"^(?:"
    # RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
    rf"<\d{{1,3}}>1 (?<ts5>{_ISO_TS}) (?<host5>\S+) (?<prog5>\S+) (?<pid5>\d+|-) \S+ "
    r"(?:-|(?:\[[^\]]*\])+) ?"
    r"|"
    # BSD (no year, no zone) or RFC 3339 timestamp, optional host, tag[pid]:, Solaris [ID n x.y]
    rf"(?:(?<bsd>{_BSD_TS})|(?<iso>{_ISO_TS})) (?:(?<host>[^\s\[\]]+) )?"
    r"(?<prog>[^\s\[\]:]+)(?:\[(?<pid>\d+)\])?: (?:\[ID \d+ [\w.]+\] )?"
    r")(?<msg>.*)$"
)
"""A syslog line: timestamp, host, program, pid and message."""

_PREFIX_ANY: Final = r"^(?:<\d{1,3}>1 |(?:" + _BSD_TS + "|" + _ISO_TS + ") )"

# --- sshd messages that name a connection ---------------------------------------------------

_PRE: Final = r"(?:(?<pre>authenticating user|invalid user|user) (?<user>.*) )?"
_FROM: Final = rf"(?<ip>{IP_RE}) port (?<port>\d+)"

TEMPLATES: Final[tuple[tuple[str, str], ...]] = (
    # auth.c auth_log: "Failed password for invalid user X from IP port N ssh2[: KEY]"
    (
        "auth",
        r"(?<verb>Accepted|Failed|Postponed|Partial) (?<method>\S+) for "
        rf"(?<inv>invalid user |illegal user )?(?<user>.*) from (?<ip>{IP_RE})"
        r"(?: port (?<port>\d+))?(?: ssh[12])?(?:: .*)?",
    ),
    ("invalid", rf"(?:Invalid|Illegal) user (?<user>.*) from (?<ip>{IP_RE})(?: port (?<port>\d+))?"),
    (
        "maxtries",
        r"(?:error: )?maximum authentication attempts exceeded for "
        rf"(?<inv>invalid user )?(?<user>.*) from {_FROM}(?: ssh2)?",
    ),
    (
        "connfrom",
        rf"Connection from {_FROM} on (?<lip>{IP_RE}) port (?<lport>\d+)(?: rdomain .*)?",
    ),
    ("timedout", rf"Connection (?:from|to) {_PRE}{_FROM} timed out"),
    ("closed", rf"Connection closed by {_PRE}{_FROM}"),
    ("reset", rf"Connection reset by {_PRE}{_FROM}"),
    ("disconnected", rf"Disconnected from {_PRE}{_FROM}"),
    # The reason after the address is sent by the client: anchor at the start.
    (
        "recvdisc",
        rf"(?:error: )?Received disconnect from (?<ip>{IP_RE})(?: port (?<port>\d+))?: ?\d+: .*?",
    ),
    ("disconnecting", rf"Disconnecting {_PRE}{_FROM}: (?<reason>.*?)"),
    ("noident", rf"Did not receive identification string from (?<ip>{IP_RE})(?: port (?<port>\d+))?"),
    ("negotiate", rf"Unable to negotiate with {_FROM}: .*?"),
    ("banner", rf"(?:error: )?banner exchange: Connection from {_FROM}: .*?"),
    ("timeout", rf"fatal: Timeout before authentication for {_FROM}"),
    ("badproto", rf"Bad protocol version identification .* from {_FROM}"),
    ("dispatch", rf"(?:fatal: )?ssh_dispatch_run_fatal: Connection from {_PRE}{_FROM}: .*?"),
    (
        "drop",
        rf"drop connection #\d+ from \[(?<ip>{IP_RE})\]:(?<port>\d+) "
        rf"on \[(?<lip>{IP_RE})\]:(?<lport>\d+) .*?",
    ),
)
"""(event, pattern) for every sshd message that carries a client address, most specific first."""

NO_CONNECTION_RE: Final = (
    r"^(?:pam_|PAM |Server listening|Received signal|Received SIGHUP|error: |fatal: |debug\d?: "
    r"|User child|Starting session|Close session|Changed root|Transferred:|Exiting on signal"
    r"|subsystem request|input_userauth_request|Disconnecting: |reverse mapping|Address \S+ maps"
    r"|Nasty PTR|rexec line|warning: |Accepted key|Accepted certificate|Server terminated"
    r"|main: |Protocol major|Authentication refused|Authorized to|User \S+ from|User \S+ not "
    r"|syslogin_|Attempt to write|Read error|Corrupted MAC|userauth_|kex_|Missing privilege"
    r"|Set /proc|Starting|Unsupported|Invalid user|Failed |Connection closed by \S+$"
    r"|Received disconnect|Timeout, client not responding|srclimit_penalise|Beginning|Exiting"
    r"|Postponed |Partial |Unable to negotiate|ssh_dispatch|Disconnected from)"
)
"""sshd messages that carry no connection key: counted as skipped, never rejected."""

# Events after which sshd has closed the connection.
_CLOSING: Final = (
    "closed", "disconnected", "recvdisc", "timedout", "disconnecting", "maxtries", "noident",
    "negotiate", "banner", "timeout", "badproto", "dispatch", "drop",
)  # fmt: skip

# Outcome ranking: a connection's outcome is its most decisive event.
_RANK: Final[dict[str, int]] = {
    "connected": 0,
    "disconnected": 1,
    "closed_preauth": 2,
    "postponed": 3,
    "partial": 4,
    "failed": 5,
    "invalid_user": 6,
    "max_attempts": 7,
    "accepted": 8,
}
assert set(_RANK) == set(SSH_AUTH.categories.to_list()), "rank every SshAuth value"
_OUTCOME_BY_RANK: Final = {v: k for k, v in _RANK.items()}

_MONTHS: Final = {
    m: str(i)
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _combined_templates() -> tuple[str, list[str], list[tuple[str, str]]]:
    """One alternation of all templates, groups renamed ``t{i}_{name}`` (names must be unique)."""
    import re

    parts, markers, groups = [], [], []
    for i, (event, pattern) in enumerate(TEMPLATES):
        renamed = re.sub(r"\(\?<(\w+)>", lambda m: f"(?<t{i}_{m.group(1)}>", pattern)
        groups += [(f"t{i}_{g}", g) for g in re.findall(r"\(\?<(\w+)>", pattern)]
        parts.append(f"(?<e{i}>){renamed}")
        markers.append(event)
    regex = r"^(?:" + "|".join(parts) + r")(?<preauth> \[preauth\])?$"
    return regex, markers, groups


_TEMPLATE_RE, _EVENTS, _GROUPS = _combined_templates()


def _field(name: str) -> pl.Expr:
    cols = [pl.col(g) for g, base in _GROUPS if base == name]
    return pl.coalesce(cols) if cols else pl.lit(None, pl.String)


def looks_like(lines: Sequence[str]) -> bool:
    """True when these first lines look like syslog text with sshd lines (for auto-detection)."""
    frame = pl.DataFrame({"line": list(lines)}, schema={"line": pl.String})
    ok = frame.select(pl.col("line").str.contains(_PREFIX_ANY).mean()).item()
    return bool(ok is not None and ok >= 0.5)


# --- timestamps ------------------------------------------------------------------------------


def _bsd_year(mtime: dt.datetime | None, year: int | None) -> pl.Expr:
    """Year of each BSD line of one file (in line order), rolling over at Dec -> Jan.

    With ``year`` it is the first line's year, counting forward; otherwise the last line's
    year comes from the file's modification time (a line is never newer than its file) and
    earlier lines count backwards.  Never from "now".
    """
    month = pl.col("bsd").str.slice(0, 3).replace_strict(_MONTHS, default=None).cast(pl.Int32)
    filled = month.forward_fill()
    rolls = (filled < filled.shift(1)).fill_null(False).cast(pl.Int32).cum_sum()
    if year is not None:
        return pl.lit(year, pl.Int32) + rolls
    assert mtime is not None
    last_month = month.drop_nulls().last()
    last_year = pl.lit(mtime.year, pl.Int32) - (last_month > mtime.month).cast(pl.Int32)
    return last_year - (rolls.max() - rolls)


def _timestamp(tz: str, mtime: dt.datetime | None, year: int | None) -> pl.Expr:
    """``ts`` in UTC from the ``bsd`` / ``iso`` / ``ts5`` prefix columns."""
    iso = pl.coalesce(pl.col("iso"), pl.col("ts5"))
    aware = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_zone="UTC")
    naive_iso = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
    bsd = pl.concat_str(_bsd_year(mtime, year).cast(pl.String), pl.lit(" "), pl.col("bsd"))
    naive_bsd = bsd.str.to_datetime("%Y %b %e %H:%M:%S", strict=False)
    local = (
        pl.coalesce(naive_bsd, naive_iso)
        .dt.cast_time_unit("us")
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return pl.coalesce(aware.dt.cast_time_unit("us"), local)


# --- the pipeline ----------------------------------------------------------------------------


def _syslog_frame(
    lines: pl.LazyFrame,
    *,
    tz: str,
    mtime: dt.datetime | None,
    year: int | None,
) -> pl.LazyFrame:
    """Lines -> ``source, lineno, line, kind0, ts, host, prog, pid, msg`` (kind0: reject/skip/None)."""
    ok = pl.col("line").str.contains(_PREFIX_ANY)
    # A literal pre-check keeps the capture regex off the lines of other daemons.
    sshd = pl.col("line").str.contains(r" sshd(?:-session)?[\[: ]")
    prefix = pl.when(sshd).then(pl.col("line")).str.extract_groups(PREFIX_RE)
    frame = (
        lines.with_columns(_ok=ok, _p=prefix)
        .unnest("_p")
        .with_columns(
            host=pl.coalesce("host5", "host"),
            prog=pl.coalesce("prog5", "prog"),
            pid=pl.coalesce(pl.col("pid5").replace("-", None), pl.col("pid")),
        )
        .with_columns(ts=_timestamp(tz, mtime, year))
    )
    is_sshd = pl.col("prog").is_in(["sshd", "sshd-session"])
    return frame.select(
        "source",
        "lineno",
        "line",
        pl.when(pl.col("line").str.strip_chars() == "")
        .then(pl.lit("skip"))
        .when(~pl.col("_ok"))
        .then(pl.lit("reject"))
        .when(~is_sshd.fill_null(False))
        .then(pl.lit("skip"))
        .alias("kind0"),
        "ts",
        "host",
        "prog",
        "pid",
        "msg",
    )


def sshd_scan(frame: pl.LazyFrame, *, observer: str | None, notes: Sequence[str]) -> Scan:
    """Connection records out of sshd messages.

    Args:
        frame: ``source, lineno, seq, line, kind0, ts, host, pid, msg`` in line order, where
            ``kind0`` is ``reject`` / ``skip`` for lines decided before the message is read.
        observer: host name for lines that carry none.
        notes: notes gathered while framing, passed through.

    Returns:
        The ``Scan``; the records are sorted by ``ts``.
    """
    msg = pl.col("msg")
    # rsyslog's dedupe wraps the repeated message: "message repeated 5 times: [ Failed ...]".
    msg = (
        pl.when(msg.str.starts_with("message repeated "))
        .then(msg.str.extract(r"^message repeated \d+ times: \[ ?(.*)\]$"))
        .otherwise(msg)
    )
    live = pl.col("kind0").is_null()
    events = (
        frame.with_columns(msg=msg)
        .with_columns(_t=pl.when(live).then(pl.col("msg")).str.extract_groups(_TEMPLATE_RE))
        .unnest("_t")
        .with_columns(
            event=pl.coalesce(
                [
                    pl.when(pl.col(f"e{i}").is_not_null()).then(pl.lit(e))
                    for i, e in enumerate(_EVENTS)
                ]
            ),
            **{n: _field(n) for n in ("user", "ip", "port", "method", "lip", "lport")},
            verb=_field("verb"),
            inv=_field("inv"),
            pre=_field("pre"),
            reason=_field("reason"),
        )
    )
    preauth = pl.col("preauth").is_not_null()
    invalid = (pl.col("inv").is_not_null()) | (pl.col("pre") == "invalid user")
    outcome = (
        pl.when(pl.col("verb") == "Accepted")
        .then(pl.lit("accepted"))
        .when((pl.col("verb") == "Failed") & invalid)
        .then(pl.lit("invalid_user"))
        .when(pl.col("verb") == "Failed")
        .then(pl.lit("failed"))
        .when(pl.col("verb") == "Postponed")
        .then(pl.lit("postponed"))
        .when(pl.col("verb") == "Partial")
        .then(pl.lit("partial"))
        .when(pl.col("event") == "invalid")
        .then(pl.lit("invalid_user"))
        .when(pl.col("event") == "maxtries")
        .then(pl.lit("max_attempts"))
        .when(
            (pl.col("event") == "disconnecting")
            & pl.col("reason").str.starts_with("Too many authentication failures")
        )
        .then(pl.lit("max_attempts"))
        .when(invalid)
        .then(pl.lit("invalid_user"))
        .when(pl.col("event") == "connfrom")
        .then(pl.lit("connected"))
        .when(
            pl.col("event").is_in(["closed", "reset", "disconnected", "recvdisc", "timedout"])
            & ~preauth
        )
        .then(pl.lit("disconnected"))
        .otherwise(pl.lit("closed_preauth"))
    )
    no_conn = msg.str.contains(NO_CONNECTION_RE)
    events = events.with_columns(
        kind=pl.when(pl.col("kind0").is_not_null())
        .then(pl.col("kind0"))
        .when(pl.col("event").is_not_null() & pl.col("ts").is_not_null())
        .then(pl.lit("conn"))
        .when(pl.col("event").is_null() & no_conn)
        .then(pl.lit("skip"))
        .otherwise(pl.lit("reject")),
        rank=outcome.replace_strict(_RANK, return_dtype=pl.Int8),
        observer=pl.coalesce(pl.col("host"), pl.lit(observer, pl.String)),
        state_ev=pl.when(pl.col("event") == "reset")
        .then(pl.lit(2))
        .when(pl.col("event").is_in(_CLOSING))
        .then(pl.lit(1))
        .otherwise(pl.lit(0)),
    )
    conns = events.filter(pl.col("kind") == "conn")
    # Order events by outcome rank, then by position, to pick the decisive one's user/method.
    by_rank = pl.col("rank").cast(pl.Int64) * (1 << 48) + pl.col("seq")
    records = (
        conns.group_by("observer", "pid", "ip", "port")
        .agg(
            ts=pl.col("ts").min(),
            last=pl.col("ts").max(),
            source=pl.col("source").sort_by("seq").first(),
            lineno=pl.col("lineno").sort_by("seq").first(),
            ssh_user=pl.col("user").sort_by(by_rank).drop_nulls().last(),
            rank=pl.col("rank").max(),
            method=pl.col("method").sort_by(by_rank).drop_nulls().last(),
            dst_ip=pl.col("lip").drop_nulls().first(),
            dst_port=pl.col("lport").drop_nulls().first(),
            state_ev=pl.col("state_ev").max(),
        )
        .with_columns(
            duration=pl.col("last") - pl.col("ts"),
            src_ip=pl.col("ip"),
            src_port=pl.col("port").cast(pl.UInt16, strict=False),
            dst_port=pl.col("dst_port").cast(pl.UInt16, strict=False),
            ssh_auth=pl.col("rank").replace_strict(_OUTCOME_BY_RANK, return_dtype=SSH_AUTH),
            ssh_method=pl.col("method").cast(pl.Categorical),
            proto=pl.lit("tcp"),
            service=pl.lit("ssh"),
            state=pl.col("state_ev").replace_strict(
                {0: "established", 1: "closed", 2: "reset"}, return_dtype=pl.String
            ),
            **origin(NAME),
        )
    )
    records = conform(records).sort("ts", "conn_id")
    rejects = rejects_of(events.filter(pl.col("kind") == "reject"))
    skipped = events.group_by("source").agg(
        skipped=(pl.col("kind") == "skip").sum().cast(pl.UInt32)
    )
    return Scan(records=records, rejects=rejects, skipped=skipped, notes=tuple(notes))


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.UTC)


def _check_tz(tz: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"--tz: unknown time zone {tz!r}") from exc


def scan(
    paths: Sequence[Path],
    *,
    year: int | None = None,
    tz: str = "UTC",
    observer: str | None = None,
) -> Scan:
    """Read syslog files (a rotated set in any order, ``.gz`` or not) into connection records.

    Args:
        paths: auth.log / secure files; a rotated set is read oldest first.
        year: year of each file's first line (else inferred from the file's mtime).
        tz: zone of timestamps without an offset (BSD lines), default UTC as on Azure images.
        observer: host name for lines that carry none.

    Returns:
        A lazy ``Scan``; notes say which year and zone were assumed.

    Raises:
        UsageError: unknown ``tz``.
        InputError: a file cannot be read.
    """
    _check_tz(tz)
    if not paths:
        return empty_scan()
    frames, notes = [], []
    for index, path in enumerate(chronological([Path(p) for p in paths])):
        lines, file_notes = scan_lines(path)
        notes += file_notes
        mtime = None if year is not None else _mtime(path)
        frame = _syslog_frame(lines, tz=tz, mtime=mtime, year=year)
        frames.append(frame.with_columns(seq=(index << 32) + pl.col("lineno").cast(pl.Int64)))
        where = f"year {year} (--year)" if year else f"year from mtime {mtime:%Y-%m-%d}"
        notes.append(f"{path}: syslog times without zone read as {tz}; {where} for BSD lines")
    frame = pl.concat(frames, how="vertical")
    return sshd_scan(frame, observer=observer, notes=notes)
