"""analyze/sources/authlog.py + journal.py: every sshd / PAM / tcp-wrappers line family that
names a client (issue 15), in BSD syslog, RFC 5424 and journal JSON form.

Each case is a few message lines (program, pid, message) of one connection and the record
they must give; the expected values are read off the messages by hand (message texts as
OpenSSH's auth.c / auth-pam.c / sshd.c / packet.c, pam_unix and libwrap write them).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from analyze.sources import authlog, journal

T0 = dt.datetime(2026, 3, 7, 10, 0, 0, tzinfo=dt.UTC)

Line = tuple[str, int, str]  # program, pid, message


def _s(msg: str, pid: int = 700, prog: str = "sshd") -> Line:
    return (prog, pid, msg)


CONN = "Connection from {a} port {p} on 10.0.0.4 port 22 rdomain \"\""

# (id, lines, src_ip, src_host, src_port, ssh_user, ssh_auth)
CASES: list[tuple[str, list[Line], str | None, str | None, int | None, str | None, str]] = [
    ("pam_auth_failure", [_s("error: PAM: Authentication failure for alice from 203.0.113.5")],
     "203.0.113.5", None, None, "alice", "failed"),
    ("pam_auth_error_via", [_s("error: PAM: authentication error for illegal user bob from 203.0.113.6 via 10.0.0.4")],
     "203.0.113.6", None, None, "bob", "invalid_user"),
    ("pam_user_not_known", [_s("error: PAM: User not known to the underlying authentication module for illegal user carol from 203.0.113.7")],
     "203.0.113.7", None, None, "carol", "invalid_user"),
    ("pam_unix_rhost", [_s("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.8  user=root")],
     "203.0.113.8", None, None, "root", "failed"),
    ("pam_unix_rhost_no_user", [_s("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.30")],
     "203.0.113.30", None, None, None, "failed"),
    ("allowusers", [_s("User dave from 203.0.113.9 not allowed because not listed in AllowUsers")],
     "203.0.113.9", None, None, "dave", "denied"),
    ("denyusers", [_s("User dave from 203.0.113.10 not allowed because listed in DenyUsers")],
     "203.0.113.10", None, None, "dave", "denied"),
    ("denygroups", [_s("User dave from 203.0.113.11 not allowed because a group is listed in DenyGroups")],
     "203.0.113.11", None, None, "dave", "denied"),
    ("allowgroups", [_s("User dave from 203.0.113.12 not allowed because none of user's groups are listed in AllowGroups")],
     "203.0.113.12", None, None, "dave", "denied"),
    ("no_group", [_s("User dave from 203.0.113.13 not allowed because not in any group")],
     "203.0.113.13", None, None, "dave", "denied"),
    ("account_locked_joins_pid", [_s(CONN.format(a="203.0.113.17", p=50017)),
                                  _s("User erin not allowed because account is locked")],
     "203.0.113.17", None, 50017, "erin", "denied"),
    ("tcp_wrappers", [_s("refused connect from scanner.example.net (203.0.113.14)")],
     "203.0.113.14", "scanner.example.net", None, None, "refused"),
    ("timeout_names_session_pid", [_s(CONN.format(a="203.0.113.15", p=50015), 4242, "sshd-session"),
                                   _s("Timeout before authentication for connection from 203.0.113.15 to 10.0.0.4, pid = 4242", 900)],
     "203.0.113.15", None, 50015, None, "timeout"),
    ("timeout_old", [_s("fatal: Timeout before authentication for 203.0.113.29 port 50029")],
     "203.0.113.29", None, 50029, None, "timeout"),
    ("dispatch_mac", [_s("ssh_dispatch_run_fatal: Connection from 203.0.113.16 port 50016: message authentication code incorrect [preauth]")],
     "203.0.113.16", None, 50016, None, "protocol_error"),
    ("dispatch_user", [_s("ssh_dispatch_run_fatal: Connection from authenticating user root 203.0.113.31 port 50031: Connection corrupted [preauth]")],
     "203.0.113.31", None, 50031, "root", "protocol_error"),
    ("root_login_refused", [_s("ROOT LOGIN REFUSED FROM 203.0.113.18")],
     "203.0.113.18", None, None, "root", "denied"),
    ("unable_to_negotiate", [_s("Unable to negotiate with 203.0.113.19 port 50019: no matching host key type found. Their offer: ssh-rsa [preauth]")],
     "203.0.113.19", None, 50019, None, "negotiation_failed"),
    ("bad_protocol_version", [_s("Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.20 port 50020")],
     "203.0.113.20", None, 50020, None, "protocol_error"),
    ("no_identification", [_s("Did not receive identification string from 203.0.113.21")],
     "203.0.113.21", None, None, None, "protocol_error"),
    ("banner_exchange", [_s("banner exchange: Connection from 203.0.113.22 port 50022: invalid format")],
     "203.0.113.22", None, 50022, None, "protocol_error"),
    ("kex_exchange_identification_joins_pid", [
        _s(CONN.format(a="203.0.113.23", p=50023)),
        _s("error: kex_exchange_identification: Connection closed by remote host"),
        _s("Connection closed by 203.0.113.23 port 50023")],
     "203.0.113.23", None, 50023, None, "protocol_error"),
    ("max_attempts", [_s("error: maximum authentication attempts exceeded for root from 203.0.113.24 port 50024 ssh2 [preauth]")],
     "203.0.113.24", None, 50024, "root", "max_attempts"),
    ("disconnecting_authenticating_user", [_s("Disconnecting authenticating user root 203.0.113.25 port 50025: Too many authentication failures [preauth]")],
     "203.0.113.25", None, 50025, "root", "max_attempts"),
    ("received_disconnect_preauth", [_s("Received disconnect from 203.0.113.26 port 50026:11: Bye Bye [preauth]")],
     "203.0.113.26", None, 50026, None, "closed_preauth"),
    ("leading_zeros", [_s("Failed password for root from 198.051.100.007 port 50027 ssh2")],
     "198.51.100.7", None, 50027, "root", "failed"),
    ("ipv4_mapped", [_s("Failed password for root from ::ffff:198.51.100.8 port 50028 ssh2")],
     "198.51.100.8", None, 50028, "root", "failed"),
    ("usedns_not_allowed", [_s("User frank from client.example.org not allowed because listed in DenyUsers")],
     None, "client.example.org", None, "frank", "denied"),
    ("usedns_pam", [_s("error: PAM: Authentication failure for grace from host-7.example.com")],
     None, "host-7.example.com", None, "grace", "failed"),
    ("portless_line_joins_its_pid", [
        _s("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.32  user=root", 701),
        _s("Failed password for root from 203.0.113.32 port 50032 ssh2", 701),
        _s("Connection closed by authenticating user root 203.0.113.32 port 50032 [preauth]", 701)],
     "203.0.113.32", None, 50032, "root", "failed"),
    ("denied_then_failed_is_denied", [
        _s("User dave from 203.0.113.33 not allowed because listed in DenyUsers", 702),
        _s("Failed password for dave from 203.0.113.33 port 50033 ssh2", 702)],
     "203.0.113.33", None, 50033, "dave", "denied"),
]  # fmt: skip


def _bsd(i: int, line: Line) -> str:
    prog, pid, msg = line
    return f"Mar  7 10:00:{i:02d} web1 {prog}[{pid}]: {msg}"


def _rfc5424(i: int, line: Line) -> str:
    prog, pid, msg = line
    return f"<38>1 2026-03-07T10:00:{i:02d}.000000+00:00 web1 {prog} {pid} - - {msg}"


def _journal(i: int, line: Line) -> str:
    prog, pid, msg = line
    micros = int((T0 + dt.timedelta(seconds=i)).timestamp() * 1_000_000)
    return json.dumps({"__REALTIME_TIMESTAMP": str(micros), "_HOSTNAME": "web1",
                       "SYSLOG_IDENTIFIER": prog, "_PID": str(pid), "MESSAGE": msg})  # fmt: skip


def _read(tmp_path: Path, form: str, lines: list[Line]) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    render = {"bsd": _bsd, "rfc5424": _rfc5424, "journal": _journal}[form]
    path = tmp_path / ("j.json" if form == "journal" else "auth.log")
    path.write_text("".join(render(i, line) + "\n" for i, line in enumerate(lines)))
    scan = journal.scan([path]) if form == "journal" else authlog.scan([path], year=2026)
    records, rejects, skipped = pl.collect_all([scan.records, scan.rejects, scan.skipped])
    return records, rejects, int(skipped["skipped"].sum())


@pytest.mark.parametrize("form", ["bsd", "rfc5424", "journal"])
@pytest.mark.parametrize(
    ("lines", "ip", "host", "port", "user", "auth"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_each_family_gives_its_record(
    tmp_path: Path, form: str, lines: list[Line], ip: str | None, host: str | None,
    port: int | None, user: str | None, auth: str,
) -> None:  # fmt: skip
    records, rejects, _ = _read(tmp_path, form, lines)
    assert rejects.height == 0
    got = records.select("src_ip", "src_host", "src_port", "ssh_user", "ssh_auth").rows()
    assert got == [(ip, host, port, user, auth)]
    row = records.row(0, named=True)
    assert row["observer"] == "web1"
    assert row["ts"] == T0  # the first line of the connection


def test_via_local_address_is_the_destination(tmp_path: Path) -> None:
    lines = [_s("error: PAM: authentication error for illegal user bob from 203.0.113.6 via 10.0.0.4")]
    records, _, _ = _read(tmp_path, "bsd", lines)
    assert records["dst_ip"].to_list() == ["10.0.0.4"]


def test_timeout_of_the_listener_joins_the_session_pid_not_its_own(tmp_path: Path) -> None:
    # The listener (pid 900) logs the timeout of session 4242; another connection of the same
    # address on pid 900's neighbour must not take it.
    lines = [
        _s(CONN.format(a="203.0.113.15", p=50015), 4242, "sshd-session"),
        _s(CONN.format(a="203.0.113.15", p=50099), 4243, "sshd-session"),
        _s("Timeout before authentication for connection from 203.0.113.15 to 10.0.0.4, pid = 4242", 900),
    ]  # fmt: skip
    records, rejects, _ = _read(tmp_path, "bsd", lines)
    assert rejects.height == 0
    assert dict(records.select("src_port", "ssh_auth").rows()) == {50015: "timeout", 50099: "connected"}


def test_written_forms_stay_in_origin(tmp_path: Path) -> None:
    lines = [_s("Failed password for root from 198.051.100.007 port 50027 ssh2")]
    records, _, _ = _read(tmp_path, "bsd", lines)
    origin = records["origin"][0].to_list()
    assert origin[0] == f"{tmp_path / 'auth.log'}:1"
    assert origin[1] == f"client written 198.051.100.007 at {tmp_path / 'auth.log'}:1"


def test_a_line_that_names_no_client_and_joins_nothing_is_skipped(tmp_path: Path) -> None:
    records, rejects, skipped = _read(
        tmp_path, "bsd", [_s("User erin not allowed because account is locked")]
    )
    assert (records.height, rejects.height, skipped) == (0, 0, 1)


def test_portless_line_of_the_same_address_within_10_s_joins(tmp_path: Path) -> None:
    # different pids (sshd-session logs the failure, the PAM line comes from the monitor)
    lines = [
        _s("Failed password for root from 203.0.113.40 port 50040 ssh2", 800),
        _s("error: PAM: Authentication failure for root from 203.0.113.40", 801),
    ]
    records, _, _ = _read(tmp_path, "bsd", lines)
    assert records.select("src_port", "ssh_auth").rows() == [(50040, "failed")]


def test_portless_line_of_the_same_address_later_is_its_own_record(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        "Mar  7 10:00:00 web1 sshd[800]: Failed password for root from 203.0.113.41 port 50041 ssh2\n"
        "Mar  7 10:00:30 web1 sshd[801]: error: PAM: Authentication failure for root from 203.0.113.41\n"
    )
    scan = authlog.scan([path], year=2026)
    records = scan.records.collect()
    assert records.select("src_port", "ssh_auth").rows() == [(50041, "failed"), (None, "failed")]


def test_metalog_program_without_host(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        "Mar  7 10:00:00 [sshd] Failed password for root from 203.0.113.42 port 50042 ssh2\n"
        "Mar  7 10:00:01 [sshd]: Invalid user x from 203.0.113.43 port 50043\n"
    )
    scan = authlog.scan([path], year=2026, observer="dest1")
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert rejects.height == 0
    assert records.select("src_ip", "src_port", "ssh_auth", "observer").rows() == [
        ("203.0.113.42", 50042, "failed", "dest1"),
        ("203.0.113.43", 50043, "invalid_user", "dest1"),
    ]


@pytest.mark.parametrize(
    "stamp",
    ["Jan  0 10:00:01", "Feb 30 10:00:01", "Apr 31 10:00:01", "Mar  7 25:00:01",
     "Mar  7 10:61:01", "Feb 29 10:00:01"],  # 2026 has no Feb 29
)  # fmt: skip
def test_a_time_that_cannot_be_a_date_is_a_reject_not_a_crash(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        "Mar  7 10:00:00 web1 sshd[1]: Accepted password for u from 192.0.2.1 port 1000 ssh2\n"
        f"{stamp} web1 sshd[2]: Accepted password for u from 192.0.2.2 port 2000 ssh2\n"
    )
    scan = authlog.scan([path], year=2026)
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert records["src_port"].to_list() == [1000]
    assert rejects.select("lineno", "line").rows() == [(2, path.read_text().splitlines()[1])]


@pytest.mark.parametrize(
    "stamp", ["2026-02-30T10:00:00+00:00", "2026-03-07T25:00:00+00:00", "0999-03-07T10:00:00Z"]
)
def test_a_bad_rfc3339_time_is_a_reject(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        f"{stamp} web1 sshd[2]: Accepted password for u from 192.0.2.2 port 2000 ssh2\n"
        "2026-03-07T10:00:00+00:00 web1 sshd[1]: Accepted password for u from 192.0.2.1 port 1000 ssh2\n"
    )
    scan = authlog.scan([path], year=2026)
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert records["src_port"].to_list() == [1000]
    assert rejects["lineno"].to_list() == [1]


def test_a_journal_time_out_of_range_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    good: dict[str, Any] = {"__REALTIME_TIMESTAMP": "1709633472000000", "SYSLOG_IDENTIFIER": "sshd",
                            "MESSAGE": "Accepted password for u from 192.0.2.1 port 1000 ssh2"}  # fmt: skip
    bad = good | {"__REALTIME_TIMESTAMP": "999999999999999999", "MESSAGE": good["MESSAGE"].replace("1000", "2000")}
    path.write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    scan = journal.scan([path])
    records, rejects = pl.collect_all([scan.records, scan.rejects])
    assert records["src_port"].to_list() == [1000]
    assert rejects["lineno"].to_list() == [1]


LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"


def test_fail2ban_style_fixture(tmp_path: Path) -> None:
    # Every shape fail2ban's sshd filter acts on (normal, ddos, aggressive modes), one client
    # each; values read off tests/data/logs/auth_fail2ban.log by hand.
    scan = authlog.scan([LOGS / "auth_fail2ban.log"], year=2026)
    records, rejects, skipped = pl.collect_all([scan.records, scan.rejects, scan.skipped])
    assert rejects.height == 0
    # kex_exchange_identification and "account is locked" name no client: skipped, but
    # they join their pid's connection
    assert int(skipped["skipped"].sum()) == 2
    got = records.select("src_ip", "src_host", "src_port", "ssh_user", "ssh_auth").rows()
    assert got == [
        ("203.0.113.50", None, 41001, "dave", "denied"),
        ("203.0.113.51", None, 41002, "eve", "denied"),
        ("203.0.113.52", None, None, "frank", "denied"),
        ("203.0.113.53", None, None, "gina", "denied"),
        ("203.0.113.54", None, None, "hank", "denied"),
        ("203.0.113.55", None, None, "ivan", "failed"),
        ("203.0.113.56", None, None, "judy", "invalid_user"),
        ("203.0.113.57", None, None, "kim", "invalid_user"),
        ("203.0.113.58", "scanner.example.net", None, None, "refused"),
        ("203.0.113.59", None, None, "root", "denied"),
        ("203.0.113.60", None, 41060, None, "timeout"),
        ("203.0.113.61", None, 41061, None, "protocol_error"),
        ("203.0.113.62", None, 41062, None, "negotiation_failed"),
        ("203.0.113.63", None, 41063, None, "protocol_error"),
        ("203.0.113.64", None, 41064, None, "protocol_error"),
        ("203.0.113.65", None, 41065, None, "protocol_error"),
        ("203.0.113.66", None, 41066, None, "protocol_error"),
        ("198.51.100.7", None, 41067, "root", "max_attempts"),
        ("198.51.100.8", None, 41068, "root", "failed"),
        ("203.0.113.69", None, 41069, "lena", "denied"),
        (None, "client7.example.org", None, "mike", "denied"),
        ("203.0.113.71", None, 41071, "nora", "invalid_user"),
    ]


def test_loghub_style_fixture(tmp_path: Path) -> None:
    # Old OpenSSH (6.x) as in loghub's OpenSSH sample: many lines without a port.
    scan = authlog.scan([LOGS / "auth_loghub.log"], year=2026)
    records, rejects, skipped = pl.collect_all([scan.records, scan.rejects, scan.skipped])
    assert rejects.height == 0
    # reverse mapping, input_userauth_request x2, check pass, Disconnecting: Too many (pid
    # only), PAM 5 more, PAM service, session opened/closed, fatal: Write failed, Address maps
    assert int(skipped["skipped"].sum()) == 11
    got = records.select("src_ip", "src_port", "ssh_user", "ssh_auth", "state").rows()
    assert got == [
        ("203.0.113.80", 38926, "webmaster", "invalid_user", "closed"),
        ("203.0.113.81", None, None, "closed_preauth", "closed"),
        ("203.0.113.82", 50515, "root", "max_attempts", "closed"),
        ("203.0.113.83", None, None, "closed_preauth", "closed"),
        ("203.0.113.84", None, None, "protocol_error", "closed"),
        ("203.0.113.85", None, None, "closed_preauth", "closed"),
        # the disconnect 8 s later comes from another pid: joined by address within 10 s
        ("203.0.113.86", 49116, "fztu", "accepted", "closed"),
        ("203.0.113.87", None, "0", "invalid_user", "closed"),
    ]
    # the pam_unix line (5) without a port joins the connection of its pid
    assert records["origin"][0].to_list() == [f"{LOGS / 'auth_loghub.log'}:2"]
