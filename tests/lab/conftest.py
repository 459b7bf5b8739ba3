"""Fixtures of the network lab: skip cleanly where it cannot run, always tear down.

Tests that build a lab take ``make_lab`` (one or more labs per test) or use
``lab_or_skip()`` in their own module-scoped fixture (``with Lab(...) as lab`` then tears
down).  Mark them ``@pytest.mark.root``; the skip reason says what is missing.

A run killed hard (kill -9, a CI timeout) cannot tear down; remove what it left with
``cd tests && python -c "from lab.lab import sweep_stale; print(sweep_stale())"`` (only labs
whose owner process is gone), and set ``EGRESSLENS_LAB_KEEP=1`` to keep a lab's workdir
(configs and logs under ``/tmp/el-*-lab``) for reading after a failure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import Lab, LabError, Topology, unavailable
from .services import REQUIRED

HERE = Path(__file__).resolve().parent
LAB_INVENTORY = HERE / "lab_inventory.yaml"
"""The lab's native YAML inventory: one VM per egress path (see the topology in test_lab.py)."""


@functools.cache
def _reason() -> str | None:
    return unavailable(REQUIRED)


def lab_or_skip() -> None:
    """Skip the calling test (or fixture) when the lab cannot run here, saying why."""
    reason = _reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def make_lab() -> Iterator[Callable[..., Lab]]:
    """Build labs with ``make_lab(topology, **Lab kwargs)``; all are closed after the test,
    pass or fail, including ones whose build failed half-way."""
    lab_or_skip()
    labs: list[Lab] = []

    def make(topology: Topology, **kwargs: Any) -> Lab:
        lab = Lab(topology, **kwargs)
        labs.append(lab)  # before build(): a half-built lab is torn down too
        return lab.build()

    try:
        yield make
    finally:
        errors = []
        for lab in labs:
            try:
                lab.close()
            except LabError as e:
                errors.append(str(e))
        if errors:
            pytest.fail("; ".join(errors))
