"""Fuzz ``analyze.inventory.load`` with inventory documents: native YAML, az CLI / ARM JSON,
ARM templates, Service Tags and allowlists (the loader tells them apart by content).

A loaded inventory must also give its derived tables (``address_table``,
``service_tag_ranges``, ``tables``), since the classifier reads those next.

Run: ``.venv/bin/python fuzz/fuzz_inventory.py -max_total_time=60`` (libFuzzer flags).
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
    from analyze.inventory import load
    from analyze.inventory.addresses import address_table
    from analyze.inventory.servicetags import flatten

NAME = "inventory"
SEED_GLOBS = (
    "tests/data/inventory/**/*.json", "tests/data/inventory/**/*.yaml",
    "tests/data/inventory/**/*.txt", "tests/data/analyze/*.yaml", "pcaps/inventory/*.yaml",
    "pcaps/demo/*.json",
)  # fmt: skip


def one_input(data: bytes) -> None:
    """Load ``data`` as one inventory file, then build every derived table."""
    path = _common.scratch("inventory.yaml", data)
    with _common.expect_clean_errors(path):
        inv = load([path])
        _common.names_the_file(inv.warnings, path)
        address_table(inv)
        flatten(inv.service_tags)
        inv.tables(display=True)


def seeds() -> list[bytes]:
    return [p.read_bytes() for p in _common.fixtures(*SEED_GLOBS)]


if __name__ == "__main__":
    _common.main(NAME, one_input, seeds())
