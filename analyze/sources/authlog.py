"""sshd lines of auth.log / secure (BSD, RFC 3339, RFC 5424 syslog); https://www.rfc-editor.org/rfc/rfc5424

Message templates are OpenSSH's (``auth.c``, ``auth2.c``, ``auth-pam.c``, ``packet.c``,
``sshd.c``), pam_unix's and tcp wrappers' (libwrap ``refused connect from``); the outcome
vocabulary and how lines join are in docs/records.md.

One connection record per sshd connection, keyed by (observer, client IP or host name,
client port), with the user, the authentication outcome (``capture.schema.SshAuth``), the
method, the first time (``ts``) and the time to the last line (``duration``).  Lines without
a port join their sshd pid's connection (see ``sshd_scan``).

Log injection: user names and client-sent texts are attacker-controlled.  Where they come
before the client address, the address is read at the *end* of the message, followed only
by text sshd writes itself (``TAIL_RE``), so a ``from 1.2.3.4 port 22 ssh2`` inside a user
name is never the one read; where client text follows the address (``Received
disconnect``, ``Unable to negotiate``), right after the message's fixed lead (``HEAD_RE``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import polars as pl

from analyze.sources._common import (
    head_lines,
    IP_RE,
    Scan,
    chronological,
    conform,
    empty_scan,
    enum_lookup,
    origin,
    rejects_of,
    scan_lines,
)
from capture.errors import InputError, UsageError
from capture.schema import SCHEMA, SSH_AUTH

__all__ = [
    "DISPATCH_RE", "EVENTS", "FROMEND_RE", "HEAD_RE", "NAME", "NOT_ALLOWED_NOADDR_RE",
    "NOT_ALLOWED_RE", "NO_CONNECTION_RE", "PIDTIMEOUT_RE", "PREFIX_RE", "REFUSED_RE",
    "RHOST_RE", "SCHEMA", "TAIL_RE", "looks_like", "scan", "sshd_scan",
]  # fmt: skip

NAME: Final = "authlog"

# --- the syslog line prefix ------------------------------------------------------------------

_BSD_TS: Final = r"[A-Z][a-z]{2} +[0-9]{1,2} [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
_ISO_TS: Final = (
    r"[0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9][0-9]:?[0-9][0-9])?"
)

PREFIX_RE: Final = (
    r"^(?<pfx>"
    # RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
    rf"<[0-9]{{1,3}}>1 (?<ts5>{_ISO_TS}) (?<host5>[^ ]+) (?<prog5>[^ ]+) (?<pid5>[0-9]+|-) [^ ]+ "
    r"(?:-|(?:\[[^\]]*\])+) ?"
    r"|"
    # BSD (no year, no zone) or RFC 3339 timestamp, optional host, tag[pid]:, Solaris [ID n x.y]
    rf"(?:(?<bsd>{_BSD_TS})|(?<iso>{_ISO_TS})) (?:(?<host>[^ \[\]]+) )?"
    r"(?:(?<prog>[^ \[\]:]+)(?:\[(?<pid>[0-9]+)\])?: (?:\[ID [0-9]+ [A-Za-z0-9_.]+\] )?"
    r"|\[(?<progb>[^ \[\]:]+)\]:? )"  # metalog: "[sshd] message", no host
    r")"
)
"""The prefix of a syslog line: timestamp, host, program and pid; the message follows it.

(Capturing the message too would make the capture engine walk every whole line.)
"""

_PREFIX_ANY: Final = r"^(?:<[0-9]{1,3}>1 |(?:" + _BSD_TS + "|" + _ISO_TS + ") )"

# --- sshd messages that name a connection ---------------------------------------------------
#
# Matching is in two steps, both cheap: the message's fixed lead picks the event (literal
# ``starts_with``), then one small regex reads the client address.  Where the user name (or
# other client text) comes *before* the address, the address is read by ``TAIL_RE``, which
# must reach the end of the message through server-written text only (port, "ssh2", key
# type and fingerprint, "[preauth]"), so an address injected into a user name is never the
# one read.  Where client text comes *after* the address (disconnect reason, key exchange
# offer), ``HEAD_RE`` reads the address right after the fixed lead.

EVENTS: Final[tuple[tuple[str, tuple[str, ...], str], ...]] = (
    # (event, message leads, how the client is read: see _READERS)
    ("auth", ("Accepted ", "Failed ", "Postponed ", "Partial "), "tail"),
    ("invalid", ("Invalid user ", "Illegal user "), "tail"),
    (
        "maxtries",
        (
            "error: maximum authentication attempts exceeded for ",
            "maximum authentication attempts exceeded for ",
        ),
        "tail",
    ),
    ("connfrom", ("Connection from ",), "head"),
    ("closed", ("Connection closed by ",), "tail"),
    ("reset", ("Connection reset by ",), "tail"),
    ("disconnected", ("Disconnected from ",), "tail"),
    ("disconnecting", ("Disconnecting ",), "tail"),
    ("recvdisc", ("Received disconnect from ", "error: Received disconnect from "), "head"),
    ("noident", ("Did not receive identification string from ",), "head"),
    ("negotiate", ("Unable to negotiate with ",), "head"),
    ("banner", ("banner exchange: Connection from ", "error: banner exchange: Connection from "),
     "head"),
    ("timeout", ("fatal: Timeout before authentication for ",), "head"),
    ("pidtimeout", ("Timeout before authentication for connection from ",), "pidtimeout"),
    ("badproto", ("Bad protocol version identification ",), "tail"),
    ("drop", ("drop connection #",), "head"),
    ("dispatch", ("ssh_dispatch_run_fatal: Connection from ",), "dispatch"),
    (
        "pam",
        (
            "error: PAM: Authentication failure for ",
            "error: PAM: authentication error for ",
            "error: PAM: User not known to the underlying authentication module for ",
            "PAM: Authentication failure for ",
            "Authentication failure for ",
        ),
        "fromend",
    ),
    ("rootrefused", ("ROOT LOGIN REFUSED ",), "fromend"),
    ("notallowed", ("User ",), "notallowed"),
    ("rhost", ("pam_unix(sshd:auth): authentication failure; ",
               "pam_sss(sshd:auth): authentication failure; "), "rhost"),
    ("refused", ("refused connect from ",), "refused"),
    ("kex", ("kex_exchange_identification: ", "error: kex_exchange_identification: "), "pid"),
    ("toomany", ("Disconnecting: Too many authentication failures",
                 "error: Disconnecting: Too many authentication failures"), "pid"),
)  # fmt: skip
"""sshd / PAM / tcp-wrappers messages that name a client: event, fixed leads, how it is read.

``tail`` / ``fromend`` / ``notallowed`` / ``dispatch``: the client is at the end of the
message, after text the client may have chosen (a user name), followed only by text the
server writes.  ``head`` / ``refused`` / ``pidtimeout``: right after the fixed lead.
``rhost``: PAM's ``rhost=`` field.  ``pid``: the message names no client (``account is
locked``, ``kex_exchange_identification``, ``Disconnecting: Too many ...``); it only joins
the connection of its sshd pid, and is counted as skipped.
"""

_ADDR: Final = r"[0-9A-Za-z][0-9A-Za-z_.:%-]*"
"""An address or, with ``UseDNS yes``, a host name as sshd and PAM print it (no spaces)."""

TAIL_RE: Final = (
    rf"(?<tail>(?: from)? (?<ip>{IP_RE})(?: port (?<port>[0-9]+))?"
    # the key: type and fingerprint (certificates add ID, serial and CA), never a space inside
    r"(?<sfx> ssh[12](?:: [A-Z0-9-]+ (?:SHA256|MD5):[^ ]+"
    r"(?: ID [^ ]+ \(serial [0-9]+\) CA [A-Z0-9-]+ (?:SHA256|MD5):[^ ]+)?)?"
    r"|: Too many authentication failures| timed out)?"
    r"(?<preauth> \[preauth\])?)$"
)
"""The client address at the end of a message, after anything the client may have sent."""

HEAD_RE: Final = (
    r"^(?:[0-9]+ from )?\[?"
    rf"(?<ip>{IP_RE})\]?(?::(?<port>[0-9]+)| port (?<port2>[0-9]+))?"
    rf"(?: on \[?(?<lip>{IP_RE})\]?(?::(?<lport>[0-9]+)| port (?<lport2>[0-9]+)))?"
)
"""The client (and local) address right after a message's fixed lead (cut off first)."""

FROMEND_RE: Final = (
    rf"(?<tail> (?:from|FROM) (?<ip>{_ADDR})(?: port (?<port>[0-9]+))?"
    rf"(?: via (?<lip>{_ADDR}))?(?<preauth> \[preauth\])?) *$"
)
"""PAM's ``... for USER from ADDR [via LOCAL]`` and ``ROOT LOGIN REFUSED FROM ADDR``."""

_NOT_ALLOWED: Final = (
    "not listed in AllowUsers", "listed in DenyUsers", "a group is listed in DenyGroups",
    "none of user's groups are listed in AllowGroups", "not in any group",
)  # fmt: skip

NOT_ALLOWED_RE: Final = (
    rf"(?<tail> from (?<ip>{_ADDR}) not allowed because (?:"
    + "|".join(re.escape(r) for r in _NOT_ALLOWED)
    + r")(?<preauth> \[preauth\])?) *$"
)
"""``User USER from ADDR not allowed because <one of sshd's reasons>`` (auth.c)."""

NOT_ALLOWED_NOADDR_RE: Final = (
    r"^User (?<user>[^ ]+) not allowed because (?:account is locked"
    r"|shell [^ ]+ (?:does not exist|is not executable))(?: \[preauth\])?$"
)
"""The same refusals that name no address (logged with the connection's pid)."""

DISPATCH_RE: Final = (
    rf"(?<tail> (?<ip>{IP_RE}) port (?<port>[0-9]+): [A-Za-z][A-Za-z ]*(?<preauth> \[preauth\])?)$"
)
"""``ssh_dispatch_run_fatal: Connection from [authenticating user U ]ADDR port P: ERROR``: the
server's error text has no digits, so an address in a user name cannot pass as the tail."""

RHOST_RE: Final = (
    r"^pam_[a-z0-9_]+\(sshd:auth\): authentication failure; logname=[^ ]* uid=[0-9]* "
    rf"euid=[0-9]* tty=[^ ]* ruser=[^ ]* rhost=(?<ip>{_ADDR})(?: +user=(?<user>.*?))? *$"
)
"""``pam_unix(sshd:auth): authentication failure; ... rhost=ADDR  user=USER`` (user last)."""

REFUSED_RE: Final = rf"^(?<name>{_ADDR}) \((?<ip>{_ADDR})\)$"
"""tcp wrappers: ``refused connect from NAME (ADDR)`` (after the lead)."""

PIDTIMEOUT_RE: Final = (
    rf"^(?<ip>{IP_RE}) to (?<lip>{IP_RE}), pid = (?<xpid>[0-9]+)$"
)
"""``Timeout before authentication for connection from A to L, pid = N`` (after the lead),
logged by the listening sshd about the session process N."""

_PREAMBLES: Final = ("authenticating user ", "invalid user ", "illegal user ", "user ")

NO_CONNECTION_RE: Final = (
    r"^(?:pam_|PAM |Server listening|Received signal|Received SIGHUP|error: |fatal: |debug[0-9]?: "
    r"|User child|Starting session|Close session|Changed root|Transferred:|Exiting on signal"
    r"|subsystem request|input_userauth_request|Disconnecting: |reverse mapping|Address [^ ]+ maps"
    r"|Nasty PTR|rexec line|warning: |Accepted key|Accepted certificate|Server terminated"
    r"|main: |Protocol major|Authentication refused|Authorized to"
    r"|syslogin_|Attempt to write|Read error|Corrupted MAC|userauth_|kex_|Missing privilege"
    r"|Set /proc|Starting|Unsupported|Timeout, client not responding|srclimit_penalise"
    r"|Beginning|Exiting)"
)
"""sshd messages that carry no connection key: counted as skipped, never rejected."""

_KIND: Final = pl.Enum(["conn", "skip", "reject"])
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

# Events after which sshd has closed the connection.
_CLOSING: Final = (
    "closed", "disconnected", "recvdisc", "timedout", "disconnecting", "maxtries", "noident",
    "negotiate", "banner", "timeout", "pidtimeout", "badproto", "drop", "dispatch", "refused",
    "kex", "toomany",
)  # fmt: skip

# Outcome ranking: a connection's outcome is its most decisive event.
_RANK: Final[dict[str, int]] = {
    "connected": 0,
    "disconnected": 1,
    "closed_preauth": 2,
    "timeout": 3,
    "postponed": 4,
    "partial": 5,
    "negotiation_failed": 6,
    "protocol_error": 7,
    "failed": 8,
    "invalid_user": 9,
    "denied": 10,
    "refused": 11,
    "max_attempts": 12,
    "accepted": 13,
}
assert set(_RANK) == set(SSH_AUTH.categories.to_list()), "rank every SshAuth value"
_OUTCOME_BY_RANK: Final = {v: k for k, v in _RANK.items()}

# The outcome an event gives by itself (auth lines and preambles refine it below).
_EVENT_OUTCOME: Final[dict[str, str]] = {
    "invalid": "invalid_user",
    "maxtries": "max_attempts",
    "toomany": "max_attempts",
    "connfrom": "connected",
    "noident": "protocol_error",
    "badproto": "protocol_error",
    "banner": "protocol_error",
    "kex": "protocol_error",
    "dispatch": "protocol_error",
    "negotiate": "negotiation_failed",
    "timeout": "timeout",
    "pidtimeout": "timeout",
    "rootrefused": "denied",
    "notallowed": "denied",
    "rhost": "failed",
    "refused": "refused",
}


def _rank(outcome: str) -> pl.Expr:
    return pl.lit(_RANK[outcome], pl.Int8)


def looks_like(lines: Sequence[str]) -> bool:
    """True when these first lines look like syslog text with sshd lines (for auto-detection)."""
    frame = pl.DataFrame({"line": list(lines)}, schema={"line": pl.String})
    hits = frame.select(pl.col("line").str.contains(_PREFIX_ANY))["line"]
    # the first line decides a file that changes format later; else the majority does
    return bool(hits.len() and (hits[0] or hits.mean() >= 0.5))  # type: ignore[operator]


# --- timestamps ------------------------------------------------------------------------------


def _times(
    lf: pl.LazyFrame, tz: str, clocks: Sequence[tuple[int | None, dt.datetime | None]]
) -> pl.LazyFrame:
    """``lf`` with ``ts`` (UTC) of connection events from ``bsd_*`` / ``aware`` / ``naive``.

    BSD lines carry no year.  Per file, in line order, the year rolls over wherever the month
    goes down (Dec -> Jan).  With ``--year`` (``clocks[i] = (year, None)``) that is the first
    line's year, counting forward; otherwise (``(None, mtime)``) the last line's year comes
    from the file's modification time (a line is never newer than its file: a last month
    after the mtime's month means the year before) and earlier lines count backwards.
    Never from "now".  Times without an offset are read in ``tz``.  A date that does not
    exist (Feb 29 of a year without one, a year past 9999) gives a null ``ts``: the caller
    makes that line a reject.  ``lf`` must be in line (``seq``) order.
    """
    file = pl.col("seq") // (1 << 32)
    month = pl.col("bsd_month").cast(pl.Int32)
    forced = {i: y for i, (y, _) in enumerate(clocks) if y is not None}
    mtime_year = {i: m.year for i, (_, m) in enumerate(clocks) if m is not None}
    mtime_month = {i: m.month for i, (_, m) in enumerate(clocks) if m is not None}
    # staged, so that every window is computed once (the frame is in line order already)
    lf = lf.with_columns(_file=file, _filled=month.forward_fill().over(file))
    filled = pl.col("_filled")
    lf = lf.with_columns(
        _rolls=(filled < filled.shift(1).over("_file")).fill_null(False).cast(pl.Int32)
        .cum_sum().over("_file"),
        _last_month=month.drop_nulls().last().over("_file"),
    )  # fmt: skip
    rolls = pl.col("_rolls")
    from_mtime = (
        pl.col("_file").replace_strict(mtime_year, default=None, return_dtype=pl.Int32)
        - (
            pl.col("_last_month")
            > pl.col("_file").replace_strict(mtime_month, default=None, return_dtype=pl.Int32)
        ).cast(pl.Int32)
        - (rolls.max().over("_file") - rolls)
    )
    lf = lf.with_columns(
        _year=pl.coalesce(
            pl.col("_file").replace_strict(forced, default=None, return_dtype=pl.Int32) + rolls,
            from_mtime,
        )
    )
    year = pl.col("_year")
    day = pl.col("bsd_day")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    # Feb 29 of a year without one, or a year pl.datetime cannot hold: no time
    lf = lf.with_columns(_valid=((month != 2) | (day != 29) | leap) & year.is_between(1, 9999))
    valid = pl.col("_valid")
    bsd = pl.when(valid).then(
        pl.datetime(
            pl.when(valid).then(year).otherwise(2000),
            month,
            pl.when(valid).then(day).otherwise(1),
            time_unit="us",
        )
        + pl.duration(seconds=pl.col("bsd_sec"))
    )
    local = (
        pl.coalesce(bsd, pl.col("naive"))
        .dt.cast_time_unit("us")
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return lf.with_columns(ts=pl.coalesce(pl.col("aware"), local)).drop(
        "_file", "_filled", "_rolls", "_last_month", "_year", "_valid"
    )


def _month(bsd: pl.Expr) -> pl.Expr:
    """1..12 from a BSD time's month name (null for another word)."""
    return (bsd.str.slice(0, 3).cast(pl.Enum(list(_MONTHS)), strict=False).to_physical() + 1).cast(
        pl.Int8
    )


def _bsd_fields() -> dict[str, pl.Expr]:
    """``bsd_month``, ``bsd_day``, ``bsd_sec`` (second of the day) and ``bsd_hms_ok`` from a
    BSD time ("Mar  7 18:53:20"); the year is set later."""
    bsd = pl.col("bsd")
    hour = bsd.str.slice(7, 2).cast(pl.Int32, strict=False)
    minute = bsd.str.slice(10, 2).cast(pl.Int32, strict=False)
    second = bsd.str.slice(13, 2).cast(pl.Int32, strict=False)
    return {
        "bsd_month": _month(bsd),
        "bsd_day": bsd.str.slice(4, 2).str.strip_chars().cast(pl.Int8, strict=False),
        "bsd_sec": hour * 3600 + minute * 60 + second,
        "bsd_hms_ok": hour.is_between(0, 23) & minute.is_between(0, 59) & second.is_between(0, 60),
    }


def _bad_time() -> pl.Expr:
    """True for a line whose time cannot be a date: day 0, Apr 31, hour 25, minute 61, an
    unparseable RFC 3339 time, a year out of range.  (Feb 29 waits for the year.)"""
    month, day = pl.col("bsd_month"), pl.col("bsd_day")
    max_day = pl.when(month == 2).then(29).when(month.is_in([4, 6, 9, 11])).then(30).otherwise(31)
    bad_bsd = pl.col("bsd").is_not_null() & ~(
        day.is_between(1, max_day) & pl.col("bsd_hms_ok")
    ).fill_null(False)
    bad_iso = pl.col("iso").is_not_null() & pl.col("aware").is_null() & pl.col("naive").is_null()
    year = pl.coalesce(pl.col("aware").dt.year(), pl.col("naive").dt.year())
    return bad_bsd | bad_iso | ~year.is_between(1970, 9999).fill_null(True)


# --- the pipeline ----------------------------------------------------------------------------

_SSHD: Final = r"sshd(?:-session)?"
_PROGRAM_NC: Final = (
    r"(?:<[0-9]{1,3}>1 " + _ISO_TS + r" [^ ]+ (?:" + _SSHD + r") (?:[0-9]+|-) [^ ]+ "
    r"(?:-|(?:\[[^\]]*\])+) ?"
    r"|(?:" + _BSD_TS + "|" + _ISO_TS + r") (?:[^ \[\]]+ )?"
    r"(?:(?:" + _SSHD + r")(?:\[[0-9]+\])?: (?:\[ID [0-9]+ [A-Za-z0-9_.]+\] )?"
    r"|\[(?:" + _SSHD + r")\]:? ))"
)
"""A syslog prefix whose program is sshd (no captures: used by ``contains`` only)."""

_FAST_RE: Final = (
    r"^(?:" + _BSD_TS + "|" + _ISO_TS + r") (?:[^ \[\]]+ )?" + _SSHD + r"\[[0-9]+\]: "
)
"""The common prefix (``TIME [HOST] sshd[PID]: ``), cut by position instead of a capture regex."""


def _leads() -> list[tuple[str, str, str]]:
    """(lead, event, reader) for every lead of ``EVENTS``, longest first."""
    leads = [(lead, name, how) for name, group, how in EVENTS for lead in group]
    leads.sort(key=lambda item: -len(item[0]))
    return leads


_LEADS_ALT: Final = "|".join(re.escape(lead) for lead, _, _ in _leads())
_LEAD_RE: Final = "^(" + _LEADS_ALT + ")"
_CANDIDATE_RE: Final = (
    "^" + _PROGRAM_NC + r"(?:message repeated [0-9]+ times: \[ ?)?(?:" + _LEADS_ALT + ")"
)
"""An sshd line whose message starts with an event's lead: the only lines parsed further."""
_SKIPPABLE_RE: Final = "^" + _PROGRAM_NC + "(?:" + NO_CONNECTION_RE.removeprefix("^") + ")"


def _syslog_frame(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Lines -> ``source, lineno, line, kind0, bsd, iso, aware, naive, host, pid, msg``.

    The prefilter: literal and DFA tests (no captures) decide every line that cannot name a
    client -- other daemons, sshd messages without a client, non-syslog text -- so only
    candidate sshd lines have their prefix cut and message read.  ``kind0`` is reject /
    skip / None (None: a candidate, read by ``sshd_scan``).  The common prefix is cut by
    position (``_FAST_RE``); the others (RFC 5424, no pid, metalog ``[sshd]``, Solaris
    ``[ID ...]``) by ``PREFIX_RE``.  The year and zone are applied later, to connection
    events only: that needs line order, and doing it on the narrow events keeps every full
    line out of memory.
    """
    line = pl.col("line")
    sshd = line.str.contains("sshd", literal=True)
    cand = pl.col("_cand")
    fast = pl.col("_fast")
    c = pl.when(cand & fast).then(line)
    # a BSD time is 15 characters ("Mar  7 18:53:20"), an RFC 3339 one ends at the first space
    ts_len = pl.when(c.str.slice(3, 1) == " ").then(pl.lit(15, pl.UInt32)).otherwise(
        c.str.find(" ", literal=True).cast(pl.UInt32)
    )
    at = c.str.find(" " + _SSHD + r"\[[0-9]+\]: ").cast(pl.UInt32)
    close = c.str.find("]: ", literal=True).cast(pl.UInt32)
    bracket = c.str.find("[", literal=True).cast(pl.UInt32)
    slow = pl.when(cand & ~fast).then(line).str.extract_groups(PREFIX_RE)
    # pl.when(...).then(line) hands each test only the rows that need it (``&`` would not)
    frame = lines.with_columns(_sshd_word=sshd).with_columns(
        _cand=pl.when("_sshd_word").then(line).str.contains(_CANDIDATE_RE).fill_null(False),
        _ok=line.str.contains(_PREFIX_ANY),
    ).with_columns(
        _fast=pl.when(cand).then(line).str.contains(_FAST_RE).fill_null(False),
        _other=pl.col("_sshd_word") & ~cand,
    ).with_columns(
        _sshd=pl.when("_other").then(line).str.contains("^" + _PROGRAM_NC).fill_null(False),
        _skippable=pl.when("_other").then(line).str.contains(_SKIPPABLE_RE).fill_null(False),
    )
    frame = frame.with_columns(
        _tslen=ts_len, _at=at, _close=close, _bracket=bracket, _p=slow
    )
    ts_text = pl.when(cand & fast).then(line.str.head(pl.col("_tslen")))
    fast_host = pl.when(pl.col("_at") > pl.col("_tslen")).then(
        line.str.slice(pl.col("_tslen") + 1, pl.col("_at") - pl.col("_tslen") - 1)
    )
    fast_pid = line.str.slice(pl.col("_bracket") + 1, pl.col("_close") - pl.col("_bracket") - 1)
    fast_msg = line.str.slice(pl.col("_close") + 3)
    p = pl.col("_p")
    slow_iso = pl.coalesce(p.struct.field("iso"), p.struct.field("ts5"))
    slow_msg = line.str.slice(p.struct.field("pfx").str.len_chars())
    iso = pl.when(cand & fast & (pl.col("_tslen") != 15)).then(ts_text).otherwise(slow_iso)
    frame = frame.with_columns(
        bsd=pl.when(cand & fast & (pl.col("_tslen") == 15)).then(ts_text).otherwise(
            p.struct.field("bsd")
        ),
        iso=iso,
        host=pl.when(cand & fast).then(fast_host).otherwise(
            pl.coalesce(p.struct.field("host5"), p.struct.field("host"))
        ),
        pid=pl.when(cand & fast).then(fast_pid).otherwise(
            pl.coalesce(
                pl.when(p.struct.field("pid5") != "-").then(p.struct.field("pid5")),
                p.struct.field("pid"),
            )
        ),
        msg=pl.when(cand & fast).then(fast_msg).when(cand).then(slow_msg),
    )
    # Solaris "[ID 800047 auth.info] " after the tag: part of the prefix, not the message
    msg = pl.col("msg")
    frame = frame.with_columns(
        msg=pl.when(msg.str.starts_with("[ID ")).then(
            msg.str.replace(r"^\[ID [0-9]+ [A-Za-z0-9_.]+\] ", "")
        ).otherwise(msg),
        aware=pl.col("iso")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_zone="UTC")
        .dt.cast_time_unit("us"),
        naive=pl.col("iso").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
        .dt.cast_time_unit("us"),
    )
    return frame.select(
        "source",
        "lineno",
        "line",
        pl.when(pl.col("line").str.strip_chars() == "")
        .then(pl.lit("skip"))
        .when(~pl.col("_ok"))
        .then(pl.lit("reject"))
        .when(pl.col("_cand"))
        .then(pl.lit(None, pl.String))
        .when(~pl.col("_sshd") | pl.col("_skippable"))
        .then(pl.lit("skip"))
        .otherwise(pl.lit("reject"))
        .alias("kind0"),
        "bsd",
        "iso",
        "aware",
        "naive",
        "host",
        "pid",
        "msg",
    )


_V4: Final = r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$"


_READERS: Final[tuple[tuple[str, str, tuple[str, ...], bool], ...]] = (
    # (how, regex, groups kept, read after the lead)
    ("tail", TAIL_RE, ("tail", "ip", "port", "sfx", "preauth"), False),
    ("head", HEAD_RE, ("ip", "port", "port2", "lip", "lport", "lport2"), True),
    ("fromend", FROMEND_RE, ("tail", "ip", "port", "lip", "preauth"), False),
    ("notallowed", NOT_ALLOWED_RE, ("tail", "ip", "preauth"), False),
    ("dispatch", DISPATCH_RE, ("tail", "ip", "port", "preauth"), False),
    ("rhost", RHOST_RE, ("ip", "user"), False),
    ("refused", REFUSED_RE, ("name", "ip"), True),
    ("pidtimeout", PIDTIMEOUT_RE, ("ip", "lip", "xpid"), True),
)
"""How each kind of message is read: one small regex on only the messages of that kind."""


def _extract() -> list[dict[str, pl.Expr]]:
    """Two stages: each reader's struct (computed once), then its fields as columns."""
    structs: dict[str, pl.Expr] = {}
    fields: dict[str, pl.Expr] = {}
    for how, regex, groups, after_lead in _READERS:
        text = pl.when(pl.col("how") == how).then(pl.col("msg"))
        if after_lead:
            text = text.str.slice(pl.col("lead_len"))
        structs[f"_{how}"] = text.str.extract_groups(regex)
        fields |= {f"{how}_{g}": pl.col(f"_{how}").struct.field(g) for g in groups}
    structs["noaddr_user"] = (
        pl.when(pl.col("how") == "notallowed").then(pl.col("msg")).str.extract(NOT_ALLOWED_NOADDR_RE, 1)
    )
    return [structs, fields]


def _users() -> list[dict[str, pl.Expr]]:
    """``verb``, ``method``, ``pre`` (preamble) and ``user`` from the text before the client.

    By position, not by new strings: ``_hl`` is the length of the text before the tail (the
    client and what the server wrote after it), ``_fp`` where an auth line's `` for `` is.
    Returned as stages for successive ``with_columns``: each stage names columns the next
    one reads, so no expression is evaluated twice.
    """
    event = pl.col("event")
    auth = event == "auth"
    msg = pl.col("msg")
    lead_len = pl.col("lead_len").cast(pl.Int64)
    tail = pl.coalesce("tail_tail", "fromend_tail", "notallowed_tail", "dispatch_tail")
    hl = pl.col("_hl")
    fp = pl.col("_fp")
    has = hl.is_not_null()
    # auth: "<Verb> <method> for [invalid user ]X"; others: "<lead>[<preamble>]X"
    after_lead = pl.when(has).then(msg.str.slice(lead_len, (hl - lead_len).clip(0)))
    named = pl.col("_named")
    pre = pl.col("pre")
    return [
        {
            "_hl": pl.when(tail.is_not_null())
            .then(msg.str.len_chars().cast(pl.Int64) - tail.str.len_chars().cast(pl.Int64)),
            "_fp": pl.when(auth).then(msg).str.find(" for ", literal=True).cast(pl.Int64),
        },
        {
            "_named": pl.when(auth & has & fp.is_not_null())
            .then(msg.str.slice(fp + 5, (hl - fp - 5).clip(0)))
            .when(event.is_in(["invalid", "badproto"]) | auth)
            .then(None)
            .otherwise(after_lead),
            "verb": pl.when(auth).then(pl.col("_lead").str.strip_chars_end(" ")),
            "method": pl.when(auth & fp.is_not_null())
            .then(msg.str.slice(lead_len, (fp - lead_len).clip(0))),
        },
        {
            "pre": pl.coalesce(
                [pl.when(named.str.starts_with(p)).then(pl.lit(p)) for p in _PREAMBLES]
            )
        },
        {
            "user": pl.when(event == "invalid")
            .then(after_lead)
            .when(event == "badproto")
            .then(None)
            .when(event == "rootrefused")
            .then(pl.lit("root"))
            .when(event == "rhost")
            .then(pl.when(pl.col("rhost_user") != "").then(pl.col("rhost_user")))
            .when(pl.col("noaddr_user").is_not_null())
            .then(pl.col("noaddr_user"))
            .when(pre.is_not_null() & (event != "notallowed"))
            .then(named.str.slice(pre.str.len_chars()))
            .when(auth | (event == "maxtries") | (event == "pam"))
            .then(named)
            .when(named == "")
            .then(None)
            .otherwise(pl.when(pl.col("how").is_in(["tail", "notallowed", "dispatch"])).then(named))
        },
    ]


def _addresses() -> list[dict[str, pl.Expr]]:
    """``ip`` / ``host`` (the client, canonical), ``written`` (its text when that differs),
    ``port``, ``lip``, ``lport``, ``preauth`` and ``jpid`` (the pid to join on)."""
    raw = pl.col("_raw")
    # "::ffff:a.b.c.d" is the IPv4 address; "198.051.100.007" reads as decimal, as fail2ban does
    mapped = pl.when(raw.str.starts_with("::")).then(
        raw.str.replace(r"^::[fF]{4}:([0-9]{1,3}(?:\.[0-9]{1,3}){3})$", "$1")
    ).otherwise(raw)
    canon = pl.col("_canon")
    is_ip = pl.col("_v4") | canon.str.contains(":", literal=True)
    name = pl.col("refused_name")
    return [
        {
            "_raw": pl.coalesce(
                "tail_ip", "head_ip", "fromend_ip", "notallowed_ip", "dispatch_ip", "rhost_ip",
                "refused_ip", "pidtimeout_ip",
            ),
        },
        {"_mapped": mapped},
        {"_v4": pl.col("_mapped").str.contains(_V4)},
        {
            "_canon": pl.when(pl.col("_v4") & pl.col("_mapped").str.contains(r"(?:^|\.)0[0-9]"))
            .then(pl.col("_mapped").str.replace_all(r"(^|\.)0+([0-9])", "${1}${2}"))
            .otherwise(pl.col("_mapped")),
        },
        {
            "ip": pl.when(is_ip).then(canon),
            "chost": pl.when(~is_ip)
            .then(canon)
            .when((name != canon) & ~(name.str.contains(_V4) | name.str.contains(":", literal=True)))
            .then(name),
            "written": pl.when(canon != raw).then(raw),
            "port": pl.coalesce(
                "tail_port", "head_port", "head_port2", "fromend_port", "dispatch_port"
            ),
            "lip": pl.coalesce("head_lip", "fromend_lip", "pidtimeout_lip"),
            "lport": pl.coalesce("head_lport", "head_lport2"),
            "preauth": pl.coalesce(
                "tail_preauth", "fromend_preauth", "notallowed_preauth", "dispatch_preauth"
            ).is_not_null()
            | pl.col("msg").str.ends_with(" [preauth]").fill_null(False),
            "jpid": pl.coalesce("pidtimeout_xpid", "pid"),
        },
    ]


def _outcome() -> pl.Expr:
    verb, event = pl.col("verb"), pl.col("event")
    invalid = pl.col("pre").is_in(["invalid user ", "illegal user "]).fill_null(False)
    by_event = enum_lookup(event, {e: _RANK[o] for e, o in _EVENT_OUTCOME.items()}, pl.Int8())
    return (
        pl.when(verb == "Accepted")
        .then(_rank("accepted"))
        .when((verb == "Failed") & invalid)
        .then(_rank("invalid_user"))
        .when(verb == "Failed")
        .then(_rank("failed"))
        .when(verb == "Postponed")
        .then(_rank("postponed"))
        .when(verb == "Partial")
        .then(_rank("partial"))
        .when((event == "pam") & (invalid | pl.col("msg").str.contains(" User not known ", literal=True)))
        .then(_rank("invalid_user"))
        .when(event == "pam")
        .then(_rank("failed"))
        .when(by_event.is_not_null())
        .then(by_event)
        .when(pl.col("tail_sfx") == ": Too many authentication failures")
        .then(_rank("max_attempts"))
        .when(invalid)
        .then(_rank("invalid_user"))
        .when(event.is_in(["closed", "reset", "disconnected", "recvdisc", "timedout"]) & ~pl.col("preauth"))
        .then(_rank("disconnected"))
        .otherwise(_rank("closed_preauth"))
    )


def _collected(lf: pl.LazyFrame, sources: Sequence[str]) -> pl.LazyFrame:
    """``lf`` computed now, as a lazy frame over the result.

    Raises:
        InputError: polars could not compute it (a bug, or input no test foresaw): named
            after the files, never a bare polars error.
    """
    try:
        return lf.collect().lazy()
    except pl.exceptions.PolarsError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{', '.join(sources)}: cannot read: {first}") from exc


def sshd_scan(
    frame: pl.LazyFrame,
    *,
    sources: Sequence[str],
    observer: str | None,
    notes: Sequence[str],
    tz: str = "UTC",
    clocks: Sequence[tuple[int | None, dt.datetime | None]] = (),
) -> Scan:
    """Connection records out of sshd messages.

    Args:
        frame: ``seq, line, kind0, bsd, iso, aware, naive, host, pid, msg`` in line order,
            where ``kind0`` is ``reject`` / ``skip`` for lines decided before the message is
            read, ``seq`` is ``(index of the file in sources << 32) + lineno``, ``bsd`` a
            year-less syslog time, ``iso`` an RFC 3339 time text, ``aware`` a UTC time and
            ``naive`` a time without offset.
        sources: the files, in the order their index is counted in ``seq``.
        tz: zone of times without an offset.
        clocks: per file, ``(year, None)`` for ``--year`` or ``(None, mtime)``; only
            needed when the frame has BSD (year-less) times.
        observer: host name for lines that carry none.
        notes: notes gathered while framing, passed through.

    Returns:
        The ``Scan``; the records are sorted by ``ts``.  A line with the client's address and
        port joins the connection of that address and port; one without a port joins the
        open connection of its sshd pid (or of the pid it names: ``Timeout before
        authentication ... pid = N``), else the connection of the same address within 10 s,
        else it is a record of its own with ``src_port`` null.
    """
    msg = pl.col("msg")
    # rsyslog's dedupe wraps the repeated message: "message repeated 5 times: [ Failed ...]".
    msg = (
        pl.when(msg.str.starts_with("message repeated "))
        .then(msg.str.extract(r"^message repeated [0-9]+ times: \[ ?(.*)\]$"))
        .otherwise(msg)
    )
    live = pl.col("kind0").is_null()
    leads = _leads()
    lead = pl.col("_lead")
    m = pl.col("msg")
    # "Connection from|to [user X ]IP port N timed out" shares its lead with "Connection from".
    timed_out = (
        m.str.starts_with("Connection from ") | m.str.starts_with("Connection to ")
    ) & m.str.ends_with(" timed out")
    # Lines decided while framing (other daemons, sshd lines naming no client, non-syslog
    # text) skip the parse: only their kind and, for rejects, their text are kept.
    decided = frame.filter(~live).select(
        "seq",
        kind=pl.col("kind0").cast(_KIND),
        line=pl.when(pl.col("kind0") == "reject").then(pl.col("line")),
        pid_only=pl.lit(False),
    )
    events = (
        frame.filter(live)
        .with_columns(msg=msg)
        .with_columns(_lead=pl.col("msg").str.extract(_LEAD_RE, 1))
        .with_columns(
            event=pl.when(timed_out).then(pl.lit("timedout")).otherwise(
                enum_lookup(lead, {text: name for text, name, _ in leads}, pl.String())
            ),
            how=pl.when(timed_out).then(pl.lit("tail")).otherwise(
                enum_lookup(lead, {text: how for text, _, how in leads}, pl.String())
            ),
            lead_len=pl.when(timed_out).then(pl.lit(0, pl.UInt32)).otherwise(
                lead.str.len_chars()
            ),
        )
    )
    for stage in _extract() + _users() + _addresses():
        events = events.with_columns(**stage)
    pid_only = (pl.col("how") == "pid") | pl.col("noaddr_user").is_not_null()
    events = events.with_columns(**_bsd_fields()).with_columns(
        # an event whose client cannot be read is not an event (a reject, or a skip below)
        event=pl.when(pl.col("ip").is_not_null() | pl.col("chost").is_not_null() | pid_only)
        .then(pl.col("event")),
        _pid_only=pid_only.fill_null(False),
    )
    no_conn = pl.when(pl.col("event").is_null()).then(pl.col("msg")).str.contains(NO_CONNECTION_RE)
    bad_time = _bad_time()
    kind = (
        pl.when(pl.col("kind0").is_not_null())
        .then(pl.col("kind0"))
        .when(bad_time)
        .then(pl.lit("reject"))
        .when(pl.col("event").is_not_null() & ~pl.col("_pid_only"))
        .then(pl.lit("conn"))
        .when(pl.col("_pid_only") | no_conn)
        .then(pl.lit("skip"))
        .otherwise(pl.lit("reject"))
        .cast(_KIND)
    )
    state_ev = (
        pl.when(pl.col("event") == "reset")
        .then(pl.lit(2, pl.Int8))
        .when(pl.col("event").is_in(_CLOSING))
        .then(pl.lit(1, pl.Int8))
        .otherwise(pl.lit(0, pl.Int8))
    )
    bsd = pl.col("bsd")
    is_conn = (pl.col("kind") == "conn") | (
        (pl.col("kind") == "skip") & pl.col("_pid_only") & pl.col("event").is_not_null()
    )
    # records, rejects and skipped all come from this one parse: compute it once, keeping
    # only what they need (the line text of rejects, the fields of connection events).
    events = (
        events.with_columns(kind=kind, _outcome=_outcome())
        .select(
            "seq",
            "kind",
            # Feb 29 is a reject only once the year is known: keep those lines' text too
            line=pl.when((pl.col("kind") == "reject") | (is_conn & bsd.str.starts_with("Feb 29")))
            .then(pl.col("line")),
            pid_only=is_conn & pl.col("_pid_only"),
            bsd_month=pl.when(is_conn).then(pl.col("bsd_month")),
            bsd_day=pl.when(is_conn).then(pl.col("bsd_day")),
            bsd_sec=pl.when(is_conn).then(pl.col("bsd_sec")),
            aware=pl.when(is_conn).then(pl.col("aware")),
            naive=pl.when(is_conn).then(pl.col("naive")),
            observer=pl.when(is_conn).then(
                pl.coalesce(pl.col("host"), pl.lit(observer, pl.String))
            ),
            jpid=pl.when(is_conn).then(pl.col("jpid")).cast(pl.UInt32, strict=False),
            ip=pl.col("ip"),
            src_host=pl.col("chost"),
            written=pl.col("written"),
            port=pl.col("port").cast(pl.UInt16, strict=False),
            user=pl.col("user"),
            method=pl.col("method"),
            lip=pl.col("lip"),
            lport=pl.col("lport").cast(pl.UInt16, strict=False),
            rank=pl.when(is_conn).then(pl.col("_outcome")),
            state_ev=state_ev,
        )
    )
    # Collected here, once: records, rejects and skipped all read it, and the lazy engine
    # would otherwise parse the file again for each of them.  It is narrow (no line text
    # but for rejects), so its size is that of the connection events.
    file = pl.col("seq") // (1 << 32)
    skips = (pl.col("kind") == "skip").sum().cast(pl.UInt32)
    try:
        parsed, dec_rejects, dec_skips = pl.collect_all([
            events,
            decided.filter(pl.col("kind") == "reject").select("seq", "line"),
            decided.group_by(_f=file).agg(skipped=skips),
        ])  # fmt: skip
    except pl.exceptions.PolarsError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{', '.join(sources)}: cannot read: {first}") from exc
    # the small results now, so that only the connection events stay in memory
    ev_rejects = parsed.filter(pl.col("kind") == "reject").select("seq", "line")
    ev_skips = parsed.group_by(_f=file).agg(skipped=skips)
    events = parsed.filter((pl.col("kind") == "conn") | pl.col("pid_only")).lazy()
    del parsed

    def file_of(seq: str) -> pl.Expr:
        """The file name back from a ``seq`` value (file index in the high 32 bits)."""
        return (pl.col(seq) // (1 << 32)).replace_strict(
            dict(enumerate(sources)), return_dtype=pl.String, default=None
        )

    conns = _collected(
        _times(events, tz, clocks)
        .with_columns(
            _obs=pl.col("observer").fill_null(""),
            _ipk=pl.coalesce("ip", "src_host"),
            # the decisive event of a connection: highest rank, then latest line
            _rk=pl.col("rank").cast(pl.Int64) * (1 << 44) + pl.col("seq"),
        ),
        sources,
    )
    dated = conns.filter(pl.col("ts").is_not_null())
    undated = conns.filter(pl.col("ts").is_null() & ~pl.col("pid_only"))
    # One connection = one client address and port on one observer.  Not the pid: after
    # authentication the session runs in a child ("User child is on pid N") that logs the
    # disconnect under its own pid.  The same address and port can come back later (NAT
    # port reuse), so a new connection starts where the previous line of that address and
    # port closed its connection and this one does not, or came more than a minute later.
    key = ["_obs", "_ipk", "port"]
    same = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in key)
    closing = pl.col("state_ev") >= 1
    prev_closing = closing.shift(1)
    gap = pl.col("ts") - pl.col("ts").shift(1)
    starts = (
        ~same
        | (prev_closing & ~closing)
        | (prev_closing & (gap > dt.timedelta(minutes=1))).fill_null(False)
    )
    with_port = dated.filter(pl.col("port").is_not_null())
    # The split is computed on the few columns it needs, sorted by one integer key (the
    # rows of one address and port still come together, in line order), and joined back:
    # sorting every column of the events would hold several copies of them.
    splits = _collected(
        with_port.select("seq", "ts", "state_ev", *key)
        .with_columns(_k=pl.struct(key).hash())
        .sort("_k", "seq")
        .select("seq", _conn=starts.cast(pl.UInt64).cum_sum()),
        sources,
    )
    ported = _collected(with_port.join(splits, on="seq", how="inner"), sources)
    # Lines without a port: the connection of their pid, if it is the same client ...
    portless = dated.filter(pl.col("port").is_null()).sort("seq")
    by_pid = portless.join_asof(
        ported.select("_obs", "jpid", "seq", _m_conn="_conn", _m_ipk="_ipk").sort("seq"),
        on="seq",
        by=["_obs", "jpid"],
        strategy="nearest",
        check_sortedness=False,  # sorted by seq, hence within every group
    )
    pid_ok = pl.col("_m_conn").is_not_null() & (
        pl.col("_ipk").is_null() | (pl.col("_ipk") == pl.col("_m_ipk"))
    ).fill_null(False)
    joined_pid = by_pid.filter(pid_ok).with_columns(_conn=pl.col("_m_conn"))
    # ... else that of the same client within 10 s ...
    rest = by_pid.filter(~pid_ok & pl.col("_ipk").is_not_null()).drop("_m_conn", "_m_ipk")
    by_addr = rest.sort("ts").join_asof(
        ported.select("_obs", "_ipk", "ts", _m_conn="_conn").sort("ts"),
        on="ts",
        by=["_obs", "_ipk"],
        strategy="nearest",
        tolerance=dt.timedelta(seconds=10),
        check_sortedness=False,  # sorted by ts, hence within every group
    )
    joined_addr = by_addr.filter(pl.col("_m_conn").is_not_null()).with_columns(
        _conn=pl.col("_m_conn")
    )
    # ... else a record of its own (one per client and pid, lines in a row).
    own_key = ["_obs", "_ipk", "jpid"]
    own_same = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in own_key)
    own = (
        by_addr.filter(pl.col("_m_conn").is_null())
        .sort(*own_key, "seq")
        .with_columns(
            _conn=pl.lit(1 << 40, pl.UInt64) + (~own_same).cast(pl.UInt64).cum_sum()
        )
    )
    cols = [
        "_conn", "_obs", "observer", "ip", "src_host", "port", "ts", "seq", "_rk", "user",
        "method", "lip", "lport", "rank", "state_ev", "written",
    ]  # fmt: skip
    joined = pl.concat(
        [f.select(cols) for f in (ported, joined_pid, joined_addr, own)], how="vertical"
    )

    def decisive(name: str) -> pl.Expr:
        """The value of the connection's most decisive line that has one."""
        return pl.col(name).get(pl.when(pl.col(name).is_not_null()).then(pl.col("_rk")).arg_max())

    records = (
        joined.group_by("_conn")
        .agg(
            observer=pl.col("observer").first(),
            src_ip=decisive("ip"),
            src_host=decisive("src_host"),
            src_port=pl.col("port").max(),
            ts=pl.col("ts").min(),
            last=pl.col("ts").max(),
            first=pl.col("seq").min(),
            ssh_user=decisive("user"),
            rank=pl.col("rank").max(),
            method=decisive("method"),
            dst_ip=decisive("lip"),
            dst_port=pl.col("lport").max(),
            state_ev=pl.col("state_ev").max(),
            written=decisive("written"),
        )
        .with_columns(source=file_of("first"), lineno=pl.col("first") % (1 << 32))
        .with_columns(**origin(NAME))
        .with_columns(
            duration=pl.col("last") - pl.col("ts"),
            ssh_auth=pl.col("rank").replace_strict(_OUTCOME_BY_RANK, return_dtype=SSH_AUTH),
            ssh_method=pl.col("method").cast(pl.Categorical),
            proto=pl.lit("tcp"),
            service=pl.lit("ssh"),
            state=pl.col("state_ev").replace_strict(
                {0: "established", 1: "closed", 2: "reset"}, return_dtype=pl.String
            ),
            # the client as the log wrote it, where that is not its canonical form
            origin=pl.concat_list(
                pl.col("origin"),
                pl.when(pl.col("written").is_not_null()).then(
                    pl.concat_str(
                        pl.lit("client written "), pl.col("written"), pl.lit(" at "),
                        pl.col("origin").list.first(),
                    )
                ),
            ).list.drop_nulls(),
        )
    )
    records = conform(records).sort("ts", "conn_id")
    rejected = pl.concat(
        [ev_rejects.lazy(), dec_rejects.lazy(), undated.select("seq", "line")], how="vertical"
    )
    rejects = rejects_of(
        rejected.sort("seq").select(
            source=file_of("seq"), lineno=pl.col("seq") % (1 << 32), line=pl.col("line")
        )
    )
    skipped = (
        pl.concat([ev_skips.lazy(), dec_skips.lazy()], how="vertical")
        .group_by("_f")
        .agg(pl.col("skipped").sum())
        .select(source=file_of("_f"), skipped=pl.col("skipped"))
    )
    return Scan(records=records, rejects=rejects, skipped=skipped, notes=tuple(notes))


_BSD_START: Final = re.compile(r"^(?:<[0-9]{1,3}>)?[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} ")
"""A BSD syslog time at the start of a line (``Nov 26 10:39:58``), optionally after a PRI."""


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
    clocks: list[tuple[int | None, dt.datetime | None]] = []
    ordered = chronological([Path(p) for p in paths])
    for index, path in enumerate(ordered):
        lines, file_notes = scan_lines(path)
        notes += file_notes
        mtime = None if year is not None else _mtime(path)
        clocks.append((year, mtime))
        frame = _syslog_frame(lines)
        frames.append(frame.with_columns(seq=(index << 32) + pl.col("lineno").cast(pl.Int64)))
        # Say what was assumed only where something was: BSD times carry no year and no
        # zone; RFC 3339 and journal times carry both.
        if any(_BSD_START.match(line) for line in head_lines(path)):
            where = f"year {year} (--year)" if year else f"year from mtime {mtime:%Y-%m-%d}"
            notes.append(f"{path}: syslog times without zone read as {tz}; {where} for BSD lines")
    frame = pl.concat(frames, how="vertical")
    return sshd_scan(
        frame,
        sources=[str(p) for p in ordered],
        observer=observer,
        notes=notes,
        tz=tz,
        clocks=clocks,
    )
