"""Fuzz ``capture.read.read_capture`` with the scapy (reference) backend.

scapy's own readers and dissectors see the bytes here, so this target checks that whatever
they raise is turned into our errors (or counted as a malformed packet).

Run: ``.venv/bin/python fuzz/fuzz_capture_scapy.py -max_total_time=60`` (libFuzzer flags).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``fuzz`` and the packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    import atheris  # noqa: F401  (before the imports below, so that they are instrumented)

from fuzz import _common

with _common.instrumented():
    from capture.read import read_capture
    from capture.scapy_backend import iter_packets  # noqa: F401  (instrumented before use)
    from capture.schema import SCHEMA

NAME = "capture_scapy"
SEED_GLOBS = ("pcaps/*.pcap", "pcaps/*.pcapng", "pcaps/demo/*.pcap", "tests/data/*.pcap*")


def one_input(data: bytes) -> None:
    """Read ``data`` as a capture file with scapy's readers and layers."""
    path = _common.scratch("input.pcap", data)
    with _common.expect_clean_errors(path):
        records, warnings = read_capture(str(path), backend="scapy")
        if records.schema != SCHEMA:
            raise _common.InvariantViolation(f"schema {records.schema} is not SCHEMA")
        _common.names_the_file(warnings, path)


def seeds() -> list[bytes]:
    return [p.read_bytes() for p in _common.fixtures(*SEED_GLOBS)]


if __name__ == "__main__":
    _common.main(NAME, one_input, seeds())
