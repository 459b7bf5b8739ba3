"""CI's short fuzz run (``make fuzz-smoke``): every target, a fixed seed, a small budget.

A crash here is a new bug: the input is in the failure output (and under ``tmp_path``);
save it under ``tests/fuzz_regressions/<target>/`` and fix it (fuzz/README.md).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("capture_fast", "capture_core", "capture_scapy", "inventory", "logs")
RUNS = int(os.environ.get("FUZZ_RUNS", "2000"))
SECONDS = int(os.environ.get("FUZZ_SMOKE_SECONDS", "10"))
"""Whichever comes first: RUNS inputs or SECONDS of fuzzing (per target)."""

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install -e '.[test]' installs it)",
)


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_survives_a_short_run(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    cmd = [
        sys.executable, str(ROOT / "fuzz" / f"fuzz_{target}.py"),
        f"-atheris_runs={RUNS}", f"-max_total_time={SECONDS}", "-seed=1", "-timeout=30",
        f"-artifact_prefix={tmp_path}/", str(corpus),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    runs = re.search(r"^Done (\d+) ", done.stderr, re.MULTILINE)
    assert runs is not None and int(runs.group(1)) > 0, done.stderr[-2000:]
    assert len(list(corpus.iterdir())) > 0
