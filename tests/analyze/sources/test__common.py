"""analyze/sources/_common.py: line framing (gzip, bad bytes), rotated-set order, headers."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from analyze.sources import _common


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["auth.log", "auth.log.2.gz", "auth.log.1"], ["auth.log.2.gz", "auth.log.1", "auth.log"]),
        (["secure", "secure-20260301", "secure-20260208.gz"],
         ["secure-20260208.gz", "secure-20260301", "secure"]),
        (["b.log", "a.log.1", "a.log"], ["b.log", "a.log.1", "a.log"]),
    ],
)  # fmt: skip
def test_chronological_order_of_rotated_sets(given: list[str], expected: list[str]) -> None:
    assert [p.name for p in _common.chronological([Path(g) for g in given])] == expected


def test_non_utf8_bytes_are_escaped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(
        b'192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET /\xff HTTP/1.1" 200 1 "-" "-"\n'
    )
    lines, notes = _common.scan_lines(path)
    assert lines.collect()["line"][0].startswith('192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET /\\xff')
    assert notes == [f"{path}: not valid UTF-8; undecodable bytes kept as \\xNN escapes"]


def test_gzip_lines_and_head_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log.gz"
    path.write_bytes(gzip.compress(b"\nfirst\r\nsecond\n"))
    lines, notes = _common.scan_lines(path)
    assert lines.collect().select("lineno", "line").rows() == [(1, ""), (2, "first"), (3, "second")]
    assert notes == []
    assert _common.head_lines(path) == ["first", "second"]


def test_header_field_follows_the_last_header() -> None:
    frame = pl.LazyFrame({"line": ["#f a b", "1 2", "#f b a", "3 4", "5"]})
    framed = _common.with_header(frame, "#f ", " ").with_columns(values=pl.col("line").str.split(" "))
    got = framed.filter(~pl.col("is_header")).select(
        a=_common.header_field(pl.col("names"), pl.col("values"), "a")
    )
    assert got.collect()["a"].to_list() == ["1", "4", None]  # "5" has no second column


def test_a_huge_line_is_cut_with_a_note_and_bounded_memory(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "access.log"
    ok = '192.0.2.1 - - [26/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n'
    with log.open("w") as fh:
        fh.write(ok)
        for _ in range(256):  # a 256 MB line, written 1 MB at a time
            fh.write("x" * (1 << 20))
        fh.write("\n" + ok.replace("192.0.2.1", "192.0.2.2"))
    # VmHWM is the child's own peak (ru_maxrss would carry this process's across exec).
    code = (
        "import polars as pl\n"
        "from analyze.sources import read_logs\n"
        f"r = read_logs([{str(log)!r}])\n"
        "recs, rej = pl.collect_all([r.records, r.rejects])\n"
        "print(recs.height, rej.height, [n for n in r.notes if 'cut to that length' in n])\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    counts, peak_kb = done.stdout.strip().splitlines()
    assert counts.startswith("2 1 [") and "line 2" in counts
    assert int(peak_kb) < 250 * 1024, f"peak RSS {int(peak_kb) // 1024} MB for a 256 MB line"
