"""capture.live: rotation, records folders, signals, privileges; live on loopback as root."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capture.errors import InterfaceError, UsageError
from capture.live import LiveCapture, LiveOptions, ReplaySource, RingSource, ScapySource, parse_rotate
from capture.read import read_capture
from capture.records import read_folder

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(ROOT / "pcaps" / "sll_ns_be.pcap")
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")
COMPARE = ["ts", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "service", "orig_bytes",
           "resp_bytes", "orig_pkts", "resp_pkts", "ssh_client", "ssh_server", "http_method", "http_path"]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "want"),
    [("60s", (60.0, None)), ("5m", (300.0, None)), ("1h", (3600.0, None)), ("90", (90.0, None)),
     ("100MB", (None, 100 << 20)), ("1GB", (None, 1 << 30)), ("500kb", (None, 500 << 10))],
)  # fmt: skip
def test_parse_rotate(text: str, want: tuple[float | None, int | None]) -> None:
    assert parse_rotate(text) == want


def test_parse_rotate_rejects_junk() -> None:
    with pytest.raises(UsageError, match="--rotate 'soon'"):
        parse_rotate("soon")


def test_replay_rotates_and_the_folder_reads_back_as_one_table(tmp_path: Path) -> None:
    lines: list[str] = []
    opts = LiveOptions(out=tmp_path, rotate_s=None, rotate_bytes=600, observer="web1")
    result = LiveCapture(ReplaySource(SAMPLE, batch=3), opts, status=lines.append).run()
    records_files = sorted(tmp_path.glob("records-*.parquet"))
    pcaps = sorted(tmp_path.glob("packets-*.pcap"))
    assert len(records_files) >= 3 and len(records_files) == len(pcaps)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    assert lines[-1].startswith("egresslens: final") and "kernel:" in lines[0]
    # Connections re-emitted at rotations collapse to their latest row.
    live = read_folder(tmp_path)
    saved, _ = read_capture(SAMPLE)
    assert live.height == saved.height == result.connections
    assert_frame_equal(live.select(COMPARE), saved.select(COMPARE))
    assert set(live["evidence"].list.first().to_list()) == {"live"}
    assert set(live["observer"].to_list()) == {"web1"}
    # A connection still running when the capture ended is 'open', not 'established'.
    assert set(live["state"].to_list()) <= {"open", "closed", "reset", "partial", "rejected", "attempt"}
    # The rotated pcaps hold every packet once.
    total = sum(read_capture(str(p))[0]["orig_pkts"].sum() + read_capture(str(p))[0]["resp_pkts"].sum() for p in pcaps)
    assert total == saved["orig_pkts"].sum() + saved["resp_pkts"].sum()


def test_open_connections_are_rewritten_under_the_same_id(tmp_path: Path) -> None:
    opts = LiveOptions(out=tmp_path, rotate_s=None, rotate_bytes=300)
    LiveCapture(ReplaySource(SAMPLE, batch=3), opts, status=lambda _: None).run()
    rows = pl.concat([pl.read_parquet(p) for p in sorted(tmp_path.glob("records-*.parquet"))])
    repeated = rows.group_by("conn_id").len().filter(pl.col("len") > 1)
    assert repeated.height >= 1
    cid = repeated["conn_id"][0]
    states = rows.filter(pl.col("conn_id") == cid)["state"].to_list()
    assert states[:-1] == ["open"] * (len(states) - 1)


@pytest.mark.parametrize("make", [RingSource, ScapySource], ids=["ring", "scapy"])
def test_missing_interface_is_a_clear_error(make: type) -> None:
    with pytest.raises(InterfaceError, match="no such interface: el-nope0"):
        make("el-nope0", None)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "analyze", "capture", "live", *args]


def test_cli_missing_interface_exit_2() -> None:
    out = subprocess.run(_cli("-i", "el-nope0", "--duration", "1s"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "Error: no such interface: el-nope0"


def _tcp_traffic(port: int, n: int) -> None:
    """n short connections to a throw-away server on 127.0.0.1 (loopback only, bounded)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(n)
    srv.settimeout(5)

    def serve() -> None:
        for _ in range(n):
            conn, _ = srv.accept()
            conn.sendall(b"SSH-2.0-LabServer\r\n")
            conn.recv(100)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"SSH-2.0-LabClient\r\n")
            c.recv(100)
    t.join(timeout=10)
    srv.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@ROOT_ONLY
@pytest.mark.parametrize("make", [RingSource, ScapySource], ids=["ring", "scapy"])
def test_live_on_loopback_with_kernel_filter(tmp_path: Path, make: type) -> None:
    port = _free_port()
    source = make("lo", f"tcp port {port}")
    opts = LiveOptions(out=tmp_path, rotate_s=None, duration_s=8, observer="lo-test")
    cap = LiveCapture(source, opts, status=lambda _: None)
    runner = threading.Thread(target=cap.run)
    runner.start()
    time.sleep(0.5)
    _tcp_traffic(port, 3)
    time.sleep(0.5)
    cap.stop()
    runner.join(timeout=15)
    records = read_folder(tmp_path)
    assert records.height == 3
    assert set(records["dst_port"].to_list()) == {port}
    assert set(records["service"].to_list()) == {"ssh"}
    assert set(records["ssh_server"].to_list()) == {"SSH-2.0-LabServer"}
    assert set(records["state"].to_list()) == {"closed"}
    assert cap.result.kernel_received >= cap.result.packets > 0


@ROOT_ONLY
def test_sigterm_flushes_and_user_drops_root(tmp_path: Path) -> None:
    import tempfile

    port = _free_port()
    # pytest's tmp_path is root-only (0700): give the unprivileged user a path it can reach.
    base = Path(tempfile.mkdtemp(prefix="el-live-", dir="/tmp"))
    base.chmod(0o755)
    out = base / "rec"
    proc = subprocess.Popen(
        _cli("-i", "lo", "--ports", str(port), "--out", str(out), "--user", "nobody", "--duration", "60s"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 20
        while not out.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == ["65534"] * 4
        _tcp_traffic(port, 2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "final" in err
    records = read_folder(out)
    assert records.height == 2 and set(records["state"].to_list()) == {"closed"}
    assert not list(out.glob(".*.tmp"))
    import shutil

    shutil.rmtree(base)


def test_unwritable_output_is_one_line_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = subprocess.run(
        _cli("--replay", SAMPLE, "--out", str(blocker / "sub")), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("Error: ")


@ROOT_ONLY
@pytest.mark.tshark
@pytest.mark.skipif(__import__("shutil").which("tshark") is None, reason="tshark is not installed")
def test_tshark_and_ring_backends_give_the_same_records_as_scapy(tmp_path: Path) -> None:
    from capture.live import TsharkSource

    port = _free_port()
    # Both backends capture the same traffic at the same time.
    caps = {
        name: LiveCapture(make("lo", f"tcp port {port}"), LiveOptions(out=tmp_path / name, rotate_s=None, duration_s=30),
                          status=lambda _: None)
        for name, make in (("scapy", ScapySource), ("tshark", TsharkSource), ("ring", RingSource))
    }  # fmt: skip
    runners = [threading.Thread(target=c.run) for c in caps.values()]
    for r in runners:
        r.start()
    time.sleep(3.0)  # dumpcap takes a moment to start capturing
    _tcp_traffic(port, 2)
    time.sleep(1.5)
    for c in caps.values():
        c.stop()
    for r in runners:
        r.join(timeout=30)
    results = {name: read_folder(tmp_path / name) for name in caps}
    cols = ["src_ip", "src_port", "dst_ip", "dst_port", "proto", "service", "state", "orig_pkts", "resp_pkts",
            "orig_bytes", "resp_bytes", "ssh_client", "ssh_server"]  # fmt: skip
    assert results["scapy"].height == results["tshark"].height == results["ring"].height == 2
    assert_frame_equal(results["scapy"].select(cols), results["tshark"].select(cols))
    assert_frame_equal(results["scapy"].select(cols), results["ring"].select(cols))
