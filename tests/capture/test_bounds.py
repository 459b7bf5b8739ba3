"""Hostile capture sizes (issue 7, item 2): a record or block claiming gigabytes, a gzip bomb.

Each gives the packets before the bad spot plus a ``CorruptCapture`` naming the file and the
byte offset, or (the bomb) streams through in memory bounded by the window, not the file.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from capture.errors import CorruptCapture
from capture.read import read_capture

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FOUR_GB = 0xFFFFFFFF


def _pcap_claiming_4gb() -> bytes:
    """Three good packets (``corrupt_length.pcap`` up to byte 252), then a 4 GB record."""
    good = (DATA / "corrupt_length.pcap").read_bytes()[:252]
    return good + struct.pack("<IIII", 1_768_471_200, 3_000, FOUR_GB, FOUR_GB) + bytes(64)


def _pcapng_with_huge_block() -> bytes:
    """Three good EPBs (``corrupt_block.pcapng`` up to byte 324), then a 4 GB block."""
    good = (DATA / "corrupt_block.pcapng").read_bytes()[:324]
    return good + struct.pack("<II", 6, 0xFFFFFFF0) + bytes(64)


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    ("make", "suffix", "message"),
    [
        (_pcap_claiming_4gb, ".pcap", r"packet 4 at byte offset 252: record length 4,294,967,295"),
        (_pcapng_with_huge_block, ".pcapng", r"block at byte offset 324 .* impossible length 4,294,967,280"),
    ],
    ids=["pcap-record", "pcapng-block"],
)
def test_gigabyte_length_is_corrupt_with_the_packets_before_it(
    tmp_path: Path, make: object, suffix: str, message: str, packed: bool
) -> None:
    data = make()  # type: ignore[operator]
    path = tmp_path / f"claims_4gb{suffix}{'.gz' if packed else ''}"
    path.write_bytes(gzip.compress(data) if packed else data)
    with pytest.raises(CorruptCapture, match=rf"claims_4gb.*{message}") as info:
        read_capture(str(path))
    partial = info.value.partial_records  # type: ignore[attr-defined]
    assert partial.height == 1  # the SSH connection of packets 1-3
    assert partial["orig_pkts"].item() + partial["resp_pkts"].item() == 3


def test_scapy_backend_reads_a_4gb_record_claim_without_allocating_it(tmp_path: Path) -> None:
    path = tmp_path / "claims_4gb.pcap.gz"
    path.write_bytes(gzip.compress(_pcap_claiming_4gb()))
    records, _warnings = read_capture(str(path), backend="scapy")  # scapy reads what is there
    assert records.height == 1


def test_block_claiming_60mb_in_a_short_gzip_is_a_truncation(tmp_path: Path) -> None:
    good = (DATA / "corrupt_block.pcapng").read_bytes()[:324]
    path = tmp_path / "cut.pcapng.gz"
    path.write_bytes(gzip.compress(good + struct.pack("<II", 6, 60 << 20) + bytes(1_000)))
    records, warnings = read_capture(str(path))
    assert records.height == 1
    assert any("cut.pcapng.gz: truncated after 3 packets" in w for w in warnings), warnings


BOMB_MB = 48
WINDOW = 512 << 10
_MEASURE = """
import resource, sys
from capture.read import read_capture
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
records, warnings = read_capture(sys.argv[1], chunk_bytes=int(sys.argv[2]))
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(records.height, grew // 1024, "|".join(warnings))
"""


def _gzip_bomb(path: Path, zero_mb: int) -> None:
    """A pcap header then ``zero_mb`` MB of zeros (empty records), compressed in a stream."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65_535, 1)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(1 << 20)
    with path.open("wb") as f:
        f.write(deflate.compress(header))
        for _ in range(zero_mb):
            f.write(deflate.compress(zeros))
        f.write(deflate.flush())


def test_gzip_bomb_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pcap.gz"
    _gzip_bomb(path, BOMB_MB)
    assert path.stat().st_size < BOMB_MB * 2_000  # about a thousandth of what it expands to
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(WINDOW)],
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT,
    )  # fmt: skip
    height, grew_mb, warnings = done.stdout.split(" ", 2)
    assert int(height) == 0
    # every 16-byte empty record was walked ...
    assert f"bomb.pcap.gz: {BOMB_MB * (1 << 20) // 16:,} packets too short" in warnings
    # ... while peak memory grew by far less than the 48 MB it decompresses to (7 MB here)
    assert int(grew_mb) < BOMB_MB // 2, f"peak RSS grew by {grew_mb} MB"
