"""capture live under faults (issue 7): SIGKILL mid-run, the interface going down and up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from capture.read import read_capture
from capture.records import read_folder
from tests.capture.test_live import _free_port, _tcp_traffic

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")


def _live(*args: str, ns: str | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "analyze", "capture", "live", *args]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])  # fmt: skip


@ROOT_ONLY
def test_sigkill_keeps_every_completed_rotation_readable(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "rec"
    proc = _live("-i", "lo", "--ports", str(port), "--out", str(out), "--rotate", "1s", "--duration", "60s")
    try:
        deadline = time.time() + 20
        while not out.exists() and time.time() < deadline:
            time.sleep(0.1)
        for _ in range(3):
            _tcp_traffic(port, 2)
            time.sleep(1.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    complete = sorted(out.glob("records-*.parquet"))
    assert len(complete) >= 2
    records = read_folder(out)  # every completed file reads; the open one is a hidden .tmp
    assert records.height >= 2 and set(records["service"].to_list()) == {"ssh"}
    for pcap in sorted(out.glob("packets-*.pcap")):
        read_capture(str(pcap))  # complete pcaps read without error
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert all(name.endswith((".tmp", ".partial")) for name in leftovers)


@ROOT_ONLY
def test_interface_down_and_up_is_survived(tmp_path: Path) -> None:
    ns = f"el-fault-{uuid.uuid4().hex[:6]}"
    out = tmp_path / "rec"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    proc = None
    try:
        run = lambda *a: subprocess.run(["ip", "netns", "exec", ns, *a], check=True, timeout=10)  # noqa: E731
        run("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        run("ip", "addr", "add", "192.0.2.1/24", "dev", "v0")
        run("ip", "addr", "add", "192.0.2.2/24", "dev", "v1")
        run("ip", "link", "set", "v0", "up")
        run("ip", "link", "set", "v1", "up")
        run("ip", "link", "set", "lo", "up")
        proc = _live("-i", "v0", "--out", str(out), "--rotate", "1s", "--duration", "60s", ns=ns)
        time.sleep(3)
        run("ip", "link", "set", "v0", "down")
        time.sleep(1.5)
        run("ip", "link", "set", "v0", "up")
        time.sleep(2)
        assert proc.poll() is None, proc.communicate()[1]  # still capturing
        # A frame sent into the peer end arrives at v0: the capture sees traffic again.
        frame = "b'\\xff' * 6 + b'\\x02' * 6 + b'\\x88\\xb5' + b'egresslens' * 5"
        run(sys.executable, "-c", "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
            f"s.bind(('v1', 0)); [s.send({frame}) for _ in range(3)]")  # fmt: skip
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "v0 is down; waiting for it to come back" in err
        assert "v0 is up again" in err
        assert "final" in err
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], timeout=10)
