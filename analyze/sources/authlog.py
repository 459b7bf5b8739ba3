"""sshd lines of auth.log / secure (BSD, RFC 3339, RFC 5424 syslog); https://www.rfc-editor.org/rfc/rfc5424

Message templates are OpenSSH's (``auth.c``, ``auth2.c``, ``packet.c``, ``sshd.c``).

One connection record per sshd connection, keyed by (observer, client IP, client port),
with the user, the authentication outcome (``capture.schema.SshAuth``), the method, the
first time (``ts``) and the time to the last line (``duration``).

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
    lookup,
    origin,
    rejects_of,
    scan_lines,
)
from capture.errors import UsageError
from capture.schema import SCHEMA, SSH_AUTH

__all__ = [
    "EVENTS", "HEAD_RE", "NAME", "NO_CONNECTION_RE", "PREFIX_RE", "SCHEMA", "TAIL_RE",
    "looks_like", "scan", "sshd_scan",
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
    r"(?<prog>[^ \[\]:]+)(?:\[(?<pid>[0-9]+)\])?: (?:\[ID [0-9]+ [A-Za-z0-9_.]+\] )?"
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
    # (event, message leads, "tail" | "head")
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
    ("badproto", ("Bad protocol version identification ",), "tail"),
    ("drop", ("drop connection #",), "head"),
)  # fmt: skip
"""sshd messages that carry a client address: event name, fixed leads, how to read it."""

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

_PREAMBLES: Final = ("authenticating user ", "invalid user ", "illegal user ", "user ")

NO_CONNECTION_RE: Final = (
    r"^(?:pam_|PAM |Server listening|Received signal|Received SIGHUP|error: |fatal: |debug[0-9]?: "
    r"|User child|Starting session|Close session|Changed root|Transferred:|Exiting on signal"
    r"|subsystem request|input_userauth_request|Disconnecting: |reverse mapping|Address [^ ]+ maps"
    r"|Nasty PTR|rexec line|warning: |Accepted key|Accepted certificate|Server terminated"
    r"|main: |Protocol major|Authentication refused|Authorized to|User [^ ]+ from|User [^ ]+ not "
    r"|syslogin_|Attempt to write|Read error|Corrupted MAC|userauth_|kex_|Missing privilege"
    r"|Set /proc|Starting|Unsupported|Timeout, client not responding|srclimit_penalise"
    r"|Beginning|Exiting|ssh_dispatch)"
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
    "negotiate", "banner", "timeout", "badproto", "drop",
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


def _rank(outcome: str) -> pl.Expr:
    return pl.lit(_RANK[outcome], pl.Int8)

def looks_like(lines: Sequence[str]) -> bool:
    """True when these first lines look like syslog text with sshd lines (for auto-detection)."""
    frame = pl.DataFrame({"line": list(lines)}, schema={"line": pl.String})
    hits = frame.select(pl.col("line").str.contains(_PREFIX_ANY))["line"]
    # the first line decides a file that changes format later; else the majority does
    return bool(hits.len() and (hits[0] or hits.mean() >= 0.5))  # type: ignore[operator]


# --- timestamps ------------------------------------------------------------------------------


def _times(tz: str, clocks: Sequence[tuple[int | None, dt.datetime | None]]) -> pl.Expr:
    """``ts`` (UTC) of connection events from ``bsd`` / ``aware`` / ``naive`` and ``seq``.

    BSD lines carry no year.  Per file, in line order, the year rolls over wherever the month
    goes down (Dec -> Jan).  With ``--year`` (``clocks[i] = (year, None)``) that is the first
    line's year, counting forward; otherwise (``(None, mtime)``) the last line's year comes
    from the file's modification time (a line is never newer than its file: a last month
    after the mtime's month means the year before) and earlier lines count backwards.
    Never from "now".  Times without an offset are read in ``tz``.
    """
    file = pl.col("seq") // (1 << 32)
    month = pl.col("bsd_month").cast(pl.Int32)
    filled = month.forward_fill().over(file, order_by="seq")
    rolls = (
        (filled < filled.shift(1).over(file, order_by="seq"))
        .fill_null(False)
        .cast(pl.Int32)
        .cum_sum()
        .over(file, order_by="seq")
    )
    forced = {i: y for i, (y, _) in enumerate(clocks) if y is not None}
    mtime_year = {i: m.year for i, (_, m) in enumerate(clocks) if m is not None}
    mtime_month = {i: m.month for i, (_, m) in enumerate(clocks) if m is not None}
    last_month = month.drop_nulls().last().over(file)
    from_mtime = (
        file.replace_strict(mtime_year, default=None, return_dtype=pl.Int32)
        - (last_month > file.replace_strict(mtime_month, default=None, return_dtype=pl.Int32))
        .cast(pl.Int32)
        - (rolls.max().over(file) - rolls)
    )
    year = pl.coalesce(
        file.replace_strict(forced, default=None, return_dtype=pl.Int32) + rolls, from_mtime
    )
    day = pl.col("bsd_day")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    valid = (month != 2) | (day != 29) | leap  # Feb 29 of a year without one: no time
    bsd = pl.when(valid).then(
        pl.datetime(year, month, pl.when(valid).then(day).otherwise(1), time_unit="us")
        + pl.duration(seconds=pl.col("bsd_sec"))
    )
    local = (
        pl.coalesce(bsd, pl.col("naive"))
        .dt.cast_time_unit("us")
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return pl.coalesce(pl.col("aware"), local)


# --- the pipeline ----------------------------------------------------------------------------


def _syslog_frame(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Lines -> ``source, lineno, line, kind0, bsd, aware, naive, host, prog, pid, msg``.

    ``kind0`` is reject / skip / None (None: an sshd message, to be read); ``bsd`` is the
    year-less BSD timestamp text, ``aware`` an RFC 3339 time with offset (UTC), ``naive``
    one without.  The year and zone are applied later, to connection events only: that
    needs line order, and doing it on the narrow events keeps every full line out of memory.
    """
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
            pid=pl.coalesce(pl.when(pl.col("pid5") != "-").then(pl.col("pid5")), pl.col("pid")),
            msg=pl.col("line").str.slice(pl.col("pfx").str.len_chars()),
        )
    )
    iso = pl.coalesce(pl.col("iso"), pl.col("ts5"))
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
        "bsd",
        aware=iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_zone="UTC")
        .dt.cast_time_unit("us"),
        naive=iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False).dt.cast_time_unit("us"),
        host=pl.col("host"),
        prog=pl.col("prog"),
        pid=pl.col("pid"),
        msg=pl.col("msg"),
    )


_TAIL_FIELDS: Final = ("tail", "ip", "port", "sfx", "preauth")
_HEAD_FIELDS: Final = ("ip", "port", "port2", "lip", "lport", "lport2")


def _leads() -> list[tuple[str, str, str]]:
    """(lead, event, anchor) for every lead of ``EVENTS``, longest first."""
    leads = [(lead, name, anchor) for name, group, anchor in EVENTS for lead in group]
    leads.sort(key=lambda item: -len(item[0]))
    return leads


_LEAD_RE: Final = "^(" + "|".join(re.escape(lead) for lead, _, _ in _leads()) + ")"


def _classify(msg: pl.Expr, lead: pl.Expr) -> list[pl.Expr]:
    """``event``, ``how`` (tail / head) and ``lead_len`` of each message from its ``lead``.

    The lead is extracted once (``_LEAD_RE``, a regex of literals, matched by a DFA) into
    a column before this; mapping it by equality is much cheaper than a ``starts_with`` per
    lead.  (An expression, not a column, would be evaluated again in every branch.)
    """
    leads = _leads()
    # "Connection from|to [user X ]IP port N timed out" shares its lead with "Connection from".
    timed_out = (
        msg.str.starts_with("Connection from ") | msg.str.starts_with("Connection to ")
    ) & msg.str.ends_with(" timed out")
    event = lookup(lead, {text: name for text, name, _ in leads}, pl.String())
    how = lookup(lead, {text: anchor for text, _, anchor in leads}, pl.String())
    return [
        pl.when(timed_out).then(pl.lit("timedout")).otherwise(event).alias("event"),
        pl.when(timed_out).then(pl.lit("tail")).otherwise(how).alias("how"),
        pl.when(timed_out).then(pl.lit(0)).otherwise(lead.str.len_chars()).alias("lead_len"),
    ]


def _users() -> list[list[pl.Expr]]:
    """``verb``, ``method``, ``pre`` (preamble) and ``user`` from the text before the address.

    Returned as stages for successive ``with_columns``: each stage names a column the next
    one reads, so no expression is evaluated twice.
    """
    auth = pl.col("event") == "auth"
    msg = pl.when(pl.col("tail_tail").is_not_null()).then(pl.col("msg"))
    head = msg.str.head(msg.str.len_chars() - pl.col("tail_tail").str.len_chars())
    named = pl.col("_named")
    # auth: "<Verb> <method> for [invalid user ]X"; others: "<lead>[<preamble>]X"
    stage1 = [head.alias("_headtxt")]
    headtxt = pl.col("_headtxt")
    words = pl.when(auth).then(headtxt).str.splitn(" ", 3)
    stage2 = [
        pl.when(auth)
        .then(pl.when(auth).then(headtxt).str.splitn(" for ", 2).struct.field("field_1"))
        .when(pl.col("event").is_in(["invalid", "badproto"]))
        .then(None)
        .otherwise(headtxt.str.slice(pl.col("lead_len")))
        .alias("_named"),
        pl.when(auth).then(words.struct.field("field_0")).alias("verb"),
        pl.when(auth).then(words.struct.field("field_1")).alias("method"),
    ]
    stage3 = [
        pl.coalesce([pl.when(named.str.starts_with(p)).then(pl.lit(p)) for p in _PREAMBLES])
        .alias("pre")
    ]
    pre = pl.col("pre")
    stage4 = [
        pl.when(pl.col("event") == "invalid")
        .then(headtxt.str.slice(pl.col("lead_len")))
        .when(pl.col("event") == "badproto")
        .then(None)
        .when(pre.is_not_null())
        .then(named.str.slice(pre.str.len_chars()))
        .when(auth | (pl.col("event") == "maxtries"))
        .then(named)
        .when(named == "")
        .then(None)
        .otherwise(pl.when(pl.col("how") == "tail").then(named))
        .alias("user")
    ]
    return [stage1, stage2, stage3, stage4]


def _addresses() -> dict[str, pl.Expr]:
    return {
        "ip": pl.coalesce("tail_ip", "head_ip"),
        "port": pl.coalesce("tail_port", "head_port", "head_port2"),
        "lip": pl.col("head_lip"),
        "lport": pl.coalesce("head_lport", "head_lport2"),
        "preauth": pl.col("tail_preauth").is_not_null()
        | pl.col("msg").str.ends_with(" [preauth]").fill_null(False),
    }


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
        frame: ``seq, line, kind0, bsd, aware, naive, host, msg`` in line order, where
            ``kind0`` is ``reject`` / ``skip`` for lines decided before the message is read,
            ``seq`` is ``(index of the file in sources << 32) + lineno``, ``bsd`` a year-less
            syslog time, ``aware`` a UTC time and ``naive`` a time without offset.
        sources: the files, in the order their index is counted in ``seq``.
        tz: zone of times without an offset.
        clocks: per file, ``(year, None)`` for ``--year`` or ``(None, mtime)``; only
            needed when the frame has BSD (year-less) times.
        observer: host name for lines that carry none.
        notes: notes gathered while framing, passed through.

    Returns:
        The ``Scan``; the records are sorted by ``ts``.  The sshd pid is not part of the key
        (the session child logs the disconnect under its own pid).
    """
    msg = pl.col("msg")
    # rsyslog's dedupe wraps the repeated message: "message repeated 5 times: [ Failed ...]".
    msg = (
        pl.when(msg.str.starts_with("message repeated "))
        .then(msg.str.extract(r"^message repeated [0-9]+ times: \[ ?(.*)\]$"))
        .otherwise(msg)
    )
    live = pl.col("kind0").is_null()
    events = (
        frame.with_columns(msg=pl.when(live).then(msg))
        .with_columns(_lead=pl.col("msg").str.extract(_LEAD_RE, 1))
        .with_columns(_classify(pl.col("msg"), pl.col("_lead")))
    )
    tail = pl.when(pl.col("how") == "tail").then(pl.col("msg")).str.extract_groups(TAIL_RE)
    head = (
        pl.when(pl.col("how") == "head")
        .then(pl.col("msg").str.slice(pl.col("lead_len")))
        .str.extract_groups(HEAD_RE)
    )
    events = events.with_columns(_tail=tail, _head=head).with_columns(
        *[pl.col("_tail").struct.field(f).alias(f"tail_{f}") for f in _TAIL_FIELDS],
        *[pl.col("_head").struct.field(f).alias(f"head_{f}") for f in _HEAD_FIELDS],
    )
    for stage in _users():
        events = events.with_columns(stage)
    events = events.with_columns(**_addresses()).with_columns(
        # a tail event whose address cannot be read is not an event: it becomes a reject
        event=pl.when(pl.col("ip").is_not_null()).then(pl.col("event")),
    )
    preauth = pl.col("preauth")
    invalid = pl.col("pre").is_in(["invalid user ", "illegal user "]).fill_null(False)
    outcome = (
        pl.when(pl.col("verb") == "Accepted")
        .then(_rank("accepted"))
        .when((pl.col("verb") == "Failed") & invalid)
        .then(_rank("invalid_user"))
        .when(pl.col("verb") == "Failed")
        .then(_rank("failed"))
        .when(pl.col("verb") == "Postponed")
        .then(_rank("postponed"))
        .when(pl.col("verb") == "Partial")
        .then(_rank("partial"))
        .when(pl.col("event") == "invalid")
        .then(_rank("invalid_user"))
        .when(pl.col("event") == "maxtries")
        .then(_rank("max_attempts"))
        .when(pl.col("tail_sfx") == ": Too many authentication failures")
        .then(_rank("max_attempts"))
        .when(invalid)
        .then(_rank("invalid_user"))
        .when(pl.col("event") == "connfrom")
        .then(_rank("connected"))
        .when(
            pl.col("event").is_in(["closed", "reset", "disconnected", "recvdisc", "timedout"])
            & ~preauth
        )
        .then(_rank("disconnected"))
        .otherwise(_rank("closed_preauth"))
    )
    no_conn = pl.col("msg").str.contains(NO_CONNECTION_RE)
    kind = (
        pl.when(pl.col("kind0").is_not_null())
        .then(pl.col("kind0"))
        .when(pl.col("event").is_not_null())
        .then(pl.lit("conn"))
        .when(pl.col("event").is_null() & no_conn)
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
    is_conn = pl.col("kind") == "conn"
    # records, rejects and skipped all come from this one parse: compute it once, keeping
    # only what they need (the line text of rejects, the fields of connection events).
    events = (
        events.with_columns(kind=kind, _outcome=outcome)
        .select(
            "seq",
            "kind",
            line=pl.when(pl.col("kind") == "reject").then(pl.col("line")),
            # a leap year placeholder, so that Feb 29 parses; the real year is set later
            # "Mar  7 18:53:20" -> month, day, second of the day (the year is set later)
            bsd_month=pl.when(is_conn).then(
                lookup(pl.col("bsd").str.slice(0, 3), _MONTHS, pl.Int8())
            ),
            bsd_day=pl.when(is_conn).then(
                pl.col("bsd").str.slice(4, 2).str.strip_chars().cast(pl.Int8, strict=False)
            ),
            bsd_sec=pl.when(is_conn).then(
                pl.col("bsd").str.slice(7, 2).cast(pl.Int32, strict=False) * 3600
                + pl.col("bsd").str.slice(10, 2).cast(pl.Int32, strict=False) * 60
                + pl.col("bsd").str.slice(13, 2).cast(pl.Int32, strict=False)
            ),
            aware=pl.when(is_conn).then(pl.col("aware")),
            naive=pl.when(is_conn).then(pl.col("naive")),
            observer=pl.when(is_conn).then(
                pl.coalesce(pl.col("host"), pl.lit(observer, pl.String))
            ),
            ip=pl.col("ip"),
            port=pl.col("port").cast(pl.UInt16, strict=False),
            user=pl.col("user"),
            method=pl.col("method"),
            lip=pl.col("lip"),
            lport=pl.col("lport").cast(pl.UInt16, strict=False),
            rank=pl.when(is_conn).then(pl.col("_outcome")),
            state_ev=state_ev,
        )
        .cache()
    )

    def file_of(seq: str) -> pl.Expr:
        """The file name back from a ``seq`` value (file index in the high 32 bits)."""
        return (pl.col(seq) // (1 << 32)).replace_strict(
            dict(enumerate(sources)), return_dtype=pl.String, default=None
        )
    # Sorted by outcome rank, then position, the last user / method of a connection is the
    # decisive event's (group_by keeps the frame's order within each group).
    # One connection = one client address and port on one observer.  Not the pid: after
    # authentication the session runs in a child ("User child is on pid N") that logs the
    # disconnect under its own pid.  The same address and port can come back later (NAT
    # port reuse), so a new connection starts where the previous line of that address and
    # port closed its connection and this one does not, or came more than a minute later.
    key = ["observer", "ip", "port"]
    same = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in key)
    closing = pl.col("state_ev") >= 1
    prev_closing = closing.shift(1)
    gap = pl.col("ts") - pl.col("ts").shift(1)
    starts = (
        ~same
        | (prev_closing & ~closing)
        | (prev_closing & (gap > dt.timedelta(minutes=1))).fill_null(False)
    )
    # Plain sorts and shifts rather than windows over ~N/6 small groups: much cheaper.
    conns = (
        events.filter(pl.col("kind") == "conn")
        .with_columns(ts=_times(tz, clocks))
        .sort(*key, "seq", nulls_last=True)
        .with_columns(_conn=starts.cast(pl.UInt32).cum_sum())
        # within a connection, by outcome rank then position: the decisive event comes last
        .sort("_conn", "rank", "seq")
    )

    def decisive(name: str) -> pl.Expr:
        return pl.col(name).last(ignore_nulls=True)

    records = (
        conns.group_by("_conn")
        .agg(
            *[pl.col(k).first() for k in key],
            ts=pl.col("ts").min(),
            last=pl.col("ts").max(),
            first=pl.col("seq").min(),
            ssh_user=decisive("user"),
            rank=pl.col("rank").max(),
            method=decisive("method"),
            dst_ip=pl.col("lip").max(),
            dst_port=pl.col("lport").max(),
            state_ev=pl.col("state_ev").max(),
        )
        .with_columns(source=file_of("first"), lineno=pl.col("first") % (1 << 32))
        .with_columns(
            duration=pl.col("last") - pl.col("ts"),
            src_ip=pl.col("ip"),
            src_port=pl.col("port"),
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
    rejects = rejects_of(
        events.filter(pl.col("kind") == "reject").select(
            source=file_of("seq"), lineno=pl.col("seq") % (1 << 32), line=pl.col("line")
        )
    )
    skipped = events.group_by(source=file_of("seq")).agg(
        skipped=(pl.col("kind") == "skip").sum().cast(pl.UInt32)
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
