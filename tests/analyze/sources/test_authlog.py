"""analyze/sources/authlog.py: sshd lines of auth.log / secure -> one record per connection.

Expected values are read off the fixture lines by hand.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_schema_equal

from analyze.sources import authlog
from capture.errors import UsageError
from capture.schema import SCHEMA

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"
UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def copy(name: str, tmp_path: Path, mtime: dt.datetime, as_name: str | None = None) -> Path:
    """A copy of a fixture with a chosen mtime (git does not keep mtimes)."""
    target = tmp_path / (as_name or name)
    shutil.copy(LOGS / name, target)
    os.utime(target, (mtime.timestamp(), mtime.timestamp()))
    return target


def run(paths: list[Path], **kw: object) -> tuple[pl.DataFrame, pl.DataFrame, int, tuple[str, ...]]:
    scan = authlog.scan(paths, **kw)  # type: ignore[arg-type]
    records, rejects, skipped = pl.collect_all([scan.records, scan.rejects, scan.skipped])
    return records, rejects, int(skipped["skipped"].sum()), scan.notes


def by_port(records: pl.DataFrame) -> dict[int, dict[str, object]]:
    return {row["src_port"]: row for row in records.iter_rows(named=True)}


def test_clean_fixture_gives_one_record_per_connection(tmp_path: Path) -> None:
    path = copy("auth_ok.log", tmp_path, at(2026, 3, 8))
    records, rejects, skipped, notes = run([path])
    assert rejects.height == 0
    assert_schema_equal(records.schema, SCHEMA)
    # lines 4 (pam_unix session), 5 (systemd-logind), 6 (CRON) and 20 (Server listening)
    assert skipped == 4
    rows = by_port(records)
    assert sorted(rows) == [40000, 46038, 50122, 57904, 61000, 61001, 61002]

    first = rows[46038]
    assert first["src_ip"] == "192.0.2.10"
    assert first["dst_ip"] == "10.0.0.4" and first["dst_port"] == 22
    assert first["observer"] == "web1"
    assert first["ts"] == at(2026, 3, 7, 18, 53, 20)
    assert first["duration"] == dt.timedelta(minutes=6, seconds=42)  # 18:53:20 -> 19:00:02
    assert (first["ssh_user"], first["ssh_auth"], first["ssh_method"]) == (
        "root", "accepted", "password",
    )  # fmt: skip
    assert first["state"] == "closed"
    assert first["evidence"] == ["authlog"]
    assert first["origin"] == [f"{path}:1"]
    assert first["conn_id"] == f"authlog:{path}:1"
    assert (first["proto"], first["service"]) == ("tcp", "ssh")

    assert rows[50122]["ssh_auth"] == "invalid_user" and rows[50122]["ssh_user"] == "admin"
    assert rows[57904]["src_ip"] == "2001:db8::7"
    assert rows[57904]["ssh_method"] == "publickey" and rows[57904]["state"] == "reset"
    assert rows[40000]["ssh_auth"] == "max_attempts" and rows[40000]["ssh_user"] == "root"
    assert rows[61000]["ssh_auth"] == "protocol_error"  # no identification string
    assert rows[61001]["ssh_auth"] == "negotiation_failed"  # unable to negotiate
    # "message repeated 2 times: [ Failed password ...]" is unwrapped
    assert rows[61002]["ssh_auth"] == "failed" and rows[61002]["duration"] == dt.timedelta(seconds=1)
    assert any("read as UTC" in n for n in notes)


INJECTIONS = [
    # (src_port, src_ip, user) for every connection of auth_injection.log
    (58946, "198.51.100.61", "test from 10.10.1.2 port 55555 ssh2"),
    (46039, "192.0.2.11", "test 127.0.0.1 port 12345"),
    (22, "192.0.2.68", ""),
    (40404, "198.51.100.62", "x from 6.6.6.6 port 1 ssh2: RSA SHA256:abc"),
    (40405, "198.51.100.63", "y 6.6.6.6 port 1: Too many authentication failures"),
    (40406, "198.51.100.64", None),
    (40407, "198.51.100.65", None),
    (40408, "198.51.100.66", "] from 6.6.6.6 port 1"),
]


@pytest.mark.parametrize(("port", "ip", "user"), INJECTIONS)
def test_injected_addresses_never_become_the_source(
    tmp_path: Path, port: int, ip: str, user: str | None
) -> None:
    records, rejects, _, _ = run([copy("auth_injection.log", tmp_path, at(2026, 3, 8))])
    assert rejects.height == 0
    row = by_port(records)[port]
    assert row["src_ip"] == ip
    assert row["ssh_user"] == user


def test_injection_fixture_has_no_fake_sources(tmp_path: Path) -> None:
    records, _, _, _ = run([copy("auth_injection.log", tmp_path, at(2026, 3, 8))])
    assert records.height == len(INJECTIONS)
    assert not records.filter(pl.col("src_ip").is_in(["6.6.6.6", "10.10.1.2", "127.0.0.1"])).height
    assert by_port(records)[58946]["ssh_auth"] == "invalid_user"
    assert by_port(records)[40405]["ssh_auth"] == "max_attempts"


def test_rfc3339_rfc5424_solaris_and_short_iso_prefixes(tmp_path: Path) -> None:
    path = copy("auth_rfc3339.log", tmp_path, at(2026, 3, 8))
    records, rejects, skipped, _ = run([path], tz="Europe/Paris")
    assert rejects.height == 0 and skipped == 0
    rows = by_port(records)
    assert rows[5678]["ts"] == at(2026, 1, 12, 11, 15, 58, 792703)
    assert rows[5678]["observer"] == "nas1" and rows[5678]["ssh_auth"] == "invalid_user"
    # no offset: read in --tz (Paris is UTC+2 in June)
    assert rows[40001]["ts"] == at(2019, 6, 14, 8, 40, 20, 912134)
    assert rows[40002]["ts"] == at(2019, 6, 14, 9, 10, 20, 912134)  # +01:30
    assert rows[40003]["ts"] == at(2019, 7, 8, 21, 40, 16, 954167)  # RFC 5424, -04:00
    assert rows[40003]["observer"] == "hostname.example.com"
    assert rows[40004]["ssh_method"] == "keyboard-interactive"  # Solaris [ID ...] tag
    # BSD lines: the last one (Nov) is after the mtime's month, so 2025; Mar precedes it.
    assert rows[40004]["ts"] == at(2025, 3, 7, 17, 53, 20)  # Paris is UTC+1 in March
    assert rows[40005]["observer"] is None and rows[40005]["ssh_user"] == "alice"
    assert rows[40005]["ts"] == at(2025, 11, 23, 20, 50, 37)  # Nov > Mar (mtime): last year
    assert rows[40006]["src_ip"] == "2001:db8::35"
    assert rows[40006]["ts"] == at(2024, 3, 5, 10, 11, 12)  # short-iso "+0000"
    assert rows[56502]["ts"] == at(2024, 3, 5, 10, 11, 12, 1)


def test_observer_option_fills_lines_without_host(tmp_path: Path) -> None:
    path = copy("auth_rfc3339.log", tmp_path, at(2026, 3, 8))
    records, _, _, _ = run([path], observer="dest1")
    assert by_port(records)[40005]["observer"] == "dest1"
    assert by_port(records)[5678]["observer"] == "nas1"  # the line's own host wins


@pytest.mark.parametrize(
    ("mtime", "years"),
    [
        (at(2026, 2, 10), [2025, 2025, 2026, 2026]),
        (at(2026, 12, 31), [2025, 2025, 2026, 2026]),  # last line Feb <= Dec: mtime's year
        (at(2026, 1, 15), [2024, 2024, 2025, 2025]),  # last line Feb > Jan: the year before
    ],
)
def test_year_from_mtime_rolls_back_over_new_year(
    tmp_path: Path, mtime: dt.datetime, years: list[int]
) -> None:
    records, rejects, _, notes = run([copy("auth_rollover.log", tmp_path, mtime)])
    assert rejects.height == 0
    assert [t.year for t in records.sort("src_port")["ts"]] == years
    assert any(f"mtime {mtime:%Y-%m-%d}" in n for n in notes)


def test_year_option_is_the_first_lines_year(tmp_path: Path) -> None:
    path = copy("auth_rollover.log", tmp_path, at(2030, 6, 1))
    records, _, _, notes = run([path], year=2019)
    assert records.sort("src_port")["ts"].to_list() == [
        at(2019, 12, 30, 23), at(2019, 12, 31, 23, 59, 59), at(2020, 1, 1, 0, 0, 1),
        at(2020, 2, 2, 8),
    ]  # fmt: skip
    assert any("--year" in n for n in notes)


def test_rotated_set_is_read_oldest_first(tmp_path: Path) -> None:
    # One connection spans auth.log.1 -> auth.log; auth.log.2.gz is older still.
    (tmp_path / "auth.log.2").write_text(
        "Jan 10 09:00:00 web1 sshd[5]: Accepted password for old from 192.0.2.5 port 5005 ssh2\n"
    )
    with (tmp_path / "auth.log.2").open("rb") as src, gzip.open(tmp_path / "auth.log.2.gz", "wb") as dst:
        dst.write(src.read())
    (tmp_path / "auth.log.2").unlink()
    (tmp_path / "auth.log.1").write_text(
        "Jan 12 09:00:00 web1 sshd[7]: Accepted password for bob from 192.0.2.7 port 7007 ssh2\n"
    )
    (tmp_path / "auth.log").write_text(
        "Jan 13 09:00:00 web1 sshd[7]: Disconnected from user bob 192.0.2.7 port 7007\n"
    )
    for name, day in (("auth.log.2.gz", 11), ("auth.log.1", 12), ("auth.log", 14)):
        stamp = at(2026, 1, day).timestamp()
        os.utime(tmp_path / name, (stamp, stamp))
    given = [tmp_path / "auth.log", tmp_path / "auth.log.2.gz", tmp_path / "auth.log.1"]
    records, rejects, _, _ = run(given)
    assert rejects.height == 0
    assert records["src_port"].to_list() == [5005, 7007]
    bob = by_port(records)[7007]
    assert bob["origin"] == [f"{tmp_path / 'auth.log.1'}:1"]  # first evidence, older file
    assert bob["duration"] == dt.timedelta(days=1)
    assert bob["state"] == "closed" and bob["ssh_auth"] == "accepted"


def test_garbage_lines_are_rejects_and_bad_bytes_do_not_stop_the_read(tmp_path: Path) -> None:
    path = copy("auth_mixed_garbage.log", tmp_path, at(2026, 3, 8))
    records, rejects, skipped, notes = run([path])
    assert rejects.select("lineno", "line").rows() == [
        (2, "this is not a syslog line at all"),
        (3, "Mar  7 11:00:01 web1 sshd[301]: Frobnicated the widget for 192.0.2.91 port 2001"),
    ]
    assert rejects["source"].to_list() == [str(path)] * 2
    assert skipped == 2  # the empty line and the kernel line
    rows = by_port(records)
    assert sorted(rows) == [2000, 2002, 2003]
    assert rows[2003]["ssh_user"] == "\\xff\\xfeuser"
    assert any("not valid UTF-8" in n for n in notes)


def test_truncated_gzip_gives_the_lines_before_the_cut(tmp_path: Path) -> None:
    body = b"".join(
        b"Mar  7 12:%02d:00 web1 sshd[%d]: Accepted password for u from 192.0.2.1 port %d ssh2\n"
        % (i % 60, 1000 + i, 10000 + i)
        for i in range(2000)
    )
    whole = gzip.compress(body)
    path = tmp_path / "auth.log.3.gz"
    path.write_bytes(whole[: len(whole) // 2])
    records, rejects, _, notes = run([path], year=2026)
    assert 0 < records.height < 2000
    assert rejects.height <= 1  # at most the half line at the cut
    assert any("cut short" in n for n in notes)


def test_empty_file_gives_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text("")
    records, rejects, skipped, _ = run([path])
    assert (records.height, rejects.height, skipped) == (0, 0, 0)


def test_unknown_zone_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Mars/Olympus"):
        authlog.scan([LOGS / "auth_ok.log"], tz="Mars/Olympus")


def test_sshd_lines_of_formats_md_section_4(tmp_path: Path) -> None:
    path = copy("auth_formats_md.log", tmp_path, at(2026, 3, 8))
    records, rejects, skipped, _ = run([path])
    assert rejects.height == 0
    rows = {(r["src_ip"], r["src_port"]): r for r in records.iter_rows(named=True)}
    expected = {
        ("192.0.2.1", 57904): ("git", "accepted", "publickey"),
        ("aaaa:bbbb:cccc:1234::1:1", 50273): ("ROOT", "invalid_user", "password"),
        ("205.186.180.77", 33723): ("jamedds", "invalid_user", "keyboard-interactive/pam"),
        ("127.0.0.1", 45416): ("dan", "failed", "password"),
        ("192.168.42.119", 48890): ("test", "invalid_user", None),
        ("115.249.163.77", 51353): (None, "connected", None),
        ("192.0.2.10", 46038): ("root", "closed_preauth", None),
        ("198.51.100.4", 50122): ("bob", "disconnected", None),
        ("198.51.100.76", 58846): (None, "closed_preauth", None),
        ("10.0.0.1", 7736): (None, "closed_preauth", None),
        ("192.0.2.7", 49941): ("xxx", "max_attempts", None),
        ("192.0.2.1", 56502): ("root", "failed", "password"),
        ("5.36.59.76", 42393): ("root", "failed", "password"),
        ("1.2.3.4", 5678): ("user", "invalid_user", None),
        ("203.0.113.8", 50000): (None, "closed_preauth", None),
    }
    got = {k: (v["ssh_user"], v["ssh_auth"], v["ssh_method"]) for k, v in rows.items()}
    assert got == expected
    assert rows[("115.249.163.77", 51353)]["dst_ip"] == "127.0.0.1"
    assert rows[("203.0.113.8", 50000)]["dst_port"] == 22
    # pam_unix session, "PAM 5 more", reverse mapping, input_userauth_request, Server
    # listening, and two lines that name no client and whose pid has no connection
    # (Disconnecting: Too many ..., kex_exchange_identification).  The pam_unix auth failure
    # (line 15) names 192.0.2.1 without a port: it joins that address's connection of one
    # second before (line 14).
    assert skipped == 7


def test_an_auth_line_whose_address_cannot_be_read_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        "Mar  7 10:00:00 h sshd[1]: Accepted password for u from 192.0.2.1 port 1 ssh2 trailing\n"
    )
    records, rejects, _, _ = run([path], year=2026)
    assert records.height == 0
    assert rejects["lineno"].to_list() == [1]


# --- property: whatever a user name contains, the source is the real client -----------------

_NAME_PARTS = st.sampled_from(
    [" from ", " port ", " ssh2", ": ", "RSA SHA256:x", "[preauth]", "6.6.6.6", "::1", " ",
     "1", "22", "invalid user ", "user ", "x", "timed out", ":", "#", "Too many"]
)  # fmt: skip
_NAMES = st.lists(_NAME_PARTS, max_size=12).map("".join)
_TEMPLATES = (
    "Failed password for invalid user {u} from {ip} port {port} ssh2",
    "Invalid user {u} from {ip} port {port}",
    "Connection closed by invalid user {u} {ip} port {port} [preauth]",
    "Disconnected from invalid user {u} {ip} port {port}",
    "error: maximum authentication attempts exceeded for invalid user {u} from {ip} port {port} ssh2 [preauth]",
    "ssh_dispatch_run_fatal: Connection from invalid user {u} {ip} port {port}: message authentication code incorrect [preauth]",
)
# Shapes without a port (PAM, sshd's refusals): one client each, keyed by address; the user
# read back is what the template put there.
_PORTLESS = (
    ("error: PAM: authentication error for illegal user {u} from {ip}", lambda u: u),
    ("error: PAM: User not known to the underlying authentication module for illegal user {u} from {ip} via 10.0.0.4", lambda u: u),
    ("User {u} from {ip} not allowed because listed in DenyUsers", lambda u: u or None),
    ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={u}",
     lambda u: u.rstrip(" ") or None),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(names=st.lists(_NAMES, min_size=1, max_size=20))
def test_injected_text_in_user_names_never_moves_the_source(names: list[str]) -> None:
    lines = []
    for i, name in enumerate(names):
        template = _TEMPLATES[i % len(_TEMPLATES)]
        msg = template.format(u=name, ip=f"198.51.100.{i % 250 + 1}", port=40000 + i)
        lines.append(f"Mar  7 10:00:00 h sshd[{1000 + i}]: {msg}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.log"
        path.write_text("\n".join(lines) + "\n")
        records, rejects, _, _ = run([path], year=2026)
    assert rejects.height == 0
    got = {r["src_port"]: (r["src_ip"], r["ssh_user"]) for r in records.iter_rows(named=True)}
    assert got == {
        40000 + i: (f"198.51.100.{i % 250 + 1}", name) for i, name in enumerate(names)
    }


@settings(max_examples=40, deadline=None)
@given(names=st.lists(_NAMES, min_size=1, max_size=20))
def test_injected_text_in_portless_lines_never_moves_the_source(names: list[str]) -> None:
    lines, want = [], {}
    for i, name in enumerate(names):
        template, user = _PORTLESS[i % len(_PORTLESS)]
        ip = f"198.51.100.{i % 250 + 1}"
        # a minute apart, each on its own pid: every line is a client of its own
        lines.append(f"Mar  7 10:{i:02d}:00 h sshd[{1000 + i}]: " + template.format(u=name, ip=ip))
        want[ip] = user(name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.log"
        path.write_text("\n".join(lines) + "\n")
        records, rejects, _, _ = run([path], year=2026)
    assert rejects.height == 0
    assert dict(records.select("src_ip", "ssh_user").rows()) == want
    assert records["src_port"].null_count() == records.height


def test_session_child_pid_stays_in_the_connection(tmp_path: Path) -> None:
    # Recorded in tests/lab (OpenSSH 9.2): after "User child is on pid N" the disconnect
    # lines carry the child's pid.
    path = copy("auth_privsep_child.log", tmp_path, at(2026, 11, 27))
    records, rejects, skipped, _ = run([path])
    assert rejects.height == 0
    assert skipped == 19  # listening, 8 "Accepted key", 4 child, 4 starting, 1 close, signal
    cols = ("src_ip", "src_port", "dst_ip", "dst_port", "ssh_user", "ssh_auth", "ssh_method",
            "state")  # fmt: skip
    assert records.select(cols).rows() == [
        (ip, port, "198.51.100.10", 22, "labuser", "accepted", "publickey", "closed")
        for ip, port in (("203.0.113.10", 1905), ("192.0.2.44", 40662),
                         ("203.0.113.129", 40730), ("198.51.100.50", 40904))
    ]  # fmt: skip
    assert records["duration"][0] == dt.timedelta(seconds=1)  # 10:56:41 -> 10:56:42


def test_the_same_address_and_port_again_later_is_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        "Mar  7 10:00:00 h sshd[1]: Failed password for root from 192.0.2.9 port 5000 ssh2\n"
        "Mar  7 10:00:01 h sshd[1]: Connection closed by authenticating user root 192.0.2.9 port 5000 [preauth]\n"
        "Mar  7 12:00:00 h sshd[2]: Accepted password for bob from 192.0.2.9 port 5000 ssh2\n"
        "Mar  7 12:05:00 h sshd[3]: Disconnected from user bob 192.0.2.9 port 5000\n"
    )
    records, _, _, _ = run([path], year=2026)
    assert records.select("ssh_user", "ssh_auth", "duration").rows() == [
        ("root", "failed", dt.timedelta(seconds=1)),
        ("bob", "accepted", dt.timedelta(minutes=5)),
    ]


def test_no_zone_note_for_files_whose_times_carry_one(tmp_path: Path) -> None:
    from analyze.sources import read_logs

    log = tmp_path / "auth.log"
    log.write_text(
        "2026-11-26T10:39:58.123456+00:00 webapp sshd[1230]: Accepted publickey for labuser "
        "from 192.0.2.44 port 40234 ssh2: ED25519 SHA256:abc\n"
    )
    assert not [n for n in read_logs([log]).notes if "without zone" in n]
    log.write_text("Nov 26 10:39:58 webapp sshd[1230]: Accepted publickey for labuser from 192.0.2.44 port 40234 ssh2\n")
    assert [n for n in read_logs([log]).notes if "without zone read as UTC" in n]
