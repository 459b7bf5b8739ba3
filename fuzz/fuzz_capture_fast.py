"""Fuzz ``capture.read.read_capture`` (fast backend) with capture file bytes.

The fast backend is the compiled core (``capture/_walk.pyx``, ``_decode.pyx``,
``_flows.pyx``): every input goes through its record walk, header decode and connection
accounting.  atheris measures coverage of the Python code around it (the core is not
built with coverage instrumentation), so the mutations are guided by the Python side;
the core's own bounds checks turn any stray read into an ``IndexError``, a crash here.

Beyond the invariant, two differential checks: the same bytes read through the gzip
stream path (small windows, records carried across them) and through the memory-mapped
path must give the same records and the same warnings or error (byte offsets included).

Run: ``.venv/bin/python fuzz/fuzz_capture_fast.py -max_total_time=60`` (libFuzzer flags).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

if not __package__:  # run as a script: make ``fuzz`` and the packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    import atheris  # noqa: F401  (before the imports below, so that they are instrumented)

from fuzz import _common

with _common.instrumented():
    from capture.errors import EgresslensError
    from capture.read import read_capture
    from capture.schema import SCHEMA

NAME = "capture_fast"
SEED_GLOBS = ("pcaps/*.pcap", "pcaps/*.pcapng", "pcaps/*.gz", "pcaps/demo/*.pcap", "tests/data/*.pcap*")


def _read(data: bytes, name: str, chunk_bytes: int | None) -> tuple[object, str]:
    """(records or None, messages) of ``data`` stored as ``name``; checks the invariant.

    The messages (error or warnings) have the file name replaced by ``<file>``.
    """
    path = _common.scratch(name, data)
    said: list[str] = []
    records = None
    with _common.expect_clean_errors(path):
        try:
            records, warnings = read_capture(str(path), backend="fast", chunk_bytes=chunk_bytes)
        except EgresslensError as exc:
            said = [f"{type(exc).__name__}: {exc}"]
            raise
        if records.schema != SCHEMA:
            raise _common.InvariantViolation(f"schema {records.schema} is not SCHEMA")
        _common.names_the_file(warnings, path)
        said = warnings
    return records, "\n".join(said).replace(str(path), "<file>")


def one_input(data: bytes) -> None:
    """Read ``data`` as a capture, plain (mmap) and gzip-compressed (streamed in small windows).

    ``origin`` and ``conn_id`` name the file, so they differ between the two by design.
    """
    plain, plain_error = _read(data, "input.pcap", None)
    if data[:2] == b"\x1f\x8b":
        return
    # About eight windows, so that records straddle window ends.
    window = max(64, len(data) // 8)
    packed, packed_error = _read(gzip.compress(data, compresslevel=1), "input.pcap.gz", window)
    if plain_error != packed_error:
        raise _common.InvariantViolation(f"mmap said {plain_error!r}, gzip said {packed_error!r}")
    if plain is not None and packed is not None:
        a = plain.drop("origin", "conn_id")  # type: ignore[attr-defined]
        b = packed.drop("origin", "conn_id")  # type: ignore[attr-defined]
        if not a.equals(b):
            raise _common.InvariantViolation(f"mmap and gzip records differ:\n{a}\n{b}")


def seeds() -> list[bytes]:
    return [p.read_bytes() for p in _common.fixtures(*SEED_GLOBS)]


if __name__ == "__main__":
    _common.main(NAME, one_input, seeds())
