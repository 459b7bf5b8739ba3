"""Shared test helpers: paths to fixtures and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PCAPS = ROOT / "pcaps"
DATA = ROOT / "tests" / "data"


@pytest.fixture
def pcaps() -> Path:
    return PCAPS


@pytest.fixture
def data_dir() -> Path:
    return DATA
