"""analyze.watch: following files like tail -F, and the watch command end to end on logs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from analyze.watch import Follower

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo"


def test_follower_reads_new_complete_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("old line\n")
    f = Follower(log)
    assert f.poll() == []  # starts at the end, like tail -f
    with log.open("a") as fh:
        fh.write("one\ntw")
    assert f.poll() == [b"one"] and f.lines_before == 1  # "old line" was line 1
    with log.open("a") as fh:
        fh.write("o\n")
    assert f.poll() == [b"two"] and f.lines_before == 2


def test_follower_survives_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    f = Follower(log)
    f.poll()
    log.write_text("a\n")
    assert f.poll() == [b"a"]
    os.rename(log, tmp_path / "auth.log.1")  # logrotate: rename, then a new file
    assert f.poll() == []
    log.write_text("b\n")
    assert f.poll() == [b"b"]
    log.write_text("")  # copytruncate
    assert f.poll() == []
    log.write_text("c\n")
    assert f.poll() == [b"c"]


def test_follower_from_start(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("first\nsecond\n")
    assert Follower(log, start_at_end=False).poll() == [b"first", b"second"]


def test_watch_prints_each_new_connection_classified(tmp_path: Path) -> None:
    auth = tmp_path / "auth.log"
    auth.write_text("")
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyze", "watch", "--inventory", str(DEMO / "inventory.yaml"),
         "--inventory", str(DEMO / "ServiceTags_Public_lab.json"), "--allowlist", "web-app",
         "--duration", "20s", str(auth)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # "watching" on stderr means the end of the file is taken: lines written now are new.
        assert proc.stderr is not None
        assert "watching" in proc.stderr.readline()
        with auth.open("a") as fh:
            fh.write((DEMO / "auth.log").read_text())
        deadline = time.time() + 15
        out_lines: list[str] = []
        assert proc.stdout is not None
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out_lines.append(line)
            if sum("class=" in x for x in out_lines) >= 3 and any("FINDING" in x for x in out_lines):
                break
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = "".join(out_lines)
    snat = next(x for x in out_lines if "203.0.113.129:40550" in x)
    assert "class=default_snat" in snat and "NOT-ALLOWED" in snat and "user=labuser" in snat
    front = next(x for x in out_lines if "203.0.113.55:1155" in x)
    assert "class=lb_frontend" in front and "ALLOWED" in front and "NOT-ALLOWED" not in front
    assert "FINDING" in text and "allowlist_miss" in text


def test_logs_read_follow_prints_new_records_as_ndjson(tmp_path: Path) -> None:
    import json

    log = tmp_path / "access.log"
    log.write_text('192.0.2.7 - - [26/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyze", "logs", "read", "--follow", "--duration", "12s", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["src_ip"] == "192.0.2.7" and first["origin"] == [f"{log}:1"]
        with log.open("a") as fh:
            fh.write('198.51.100.9 - - [26/Nov/2026:10:00:05 +0000] "POST /x HTTP/1.1" 403 0 "-" "curl/8"\n')
        second = json.loads(proc.stdout.readline())
        assert (second["src_ip"], second["http_status"]) == ("198.51.100.9", 403)
        assert second["origin"] == [f"{log}:2"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
