"""Replay every input the fuzzers found (``tests/fuzz_regressions/<target>/*``) through its target.

Each file once crashed ``fuzz/fuzz_<target>.py`` (an exception other than our own errors, or
an error that did not name the file).  Replaying it checks the same invariant, without
atheris.  Crashes in modules this work could not touch yet are listed in ``KNOWN`` and
expected to fail, strictly: fixing one turns its test red until it leaves ``KNOWN``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"
TARGETS = ("capture_fast", "capture_scapy", "inventory", "logs")

KNOWN: dict[str, str] = {}
"""``<target>/<file>`` -> why it still fails (the module it needs fixing in)."""


def _cases() -> list[object]:
    out = []
    for path in sorted(REGRESSIONS.glob("*/*")):
        rel = f"{path.parent.name}/{path.name}"
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[rel])] if rel in KNOWN else []
        out.append(pytest.param(path, id=rel, marks=marks))
    return out


def test_every_regression_belongs_to_a_target() -> None:
    dirs = {p.name for p in REGRESSIONS.iterdir() if p.is_dir()}
    assert dirs <= set(TARGETS)
    assert set(KNOWN) <= {f"{p.parent.name}/{p.name}" for p in REGRESSIONS.glob("*/*")}


@pytest.mark.parametrize("path", _cases())
def test_regression_input_keeps_the_invariant(path: Path) -> None:
    target = importlib.import_module(f"fuzz.fuzz_{path.parent.name}")
    target.one_input(path.read_bytes())
