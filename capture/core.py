"""The compiled capture core (``capture/_walk.pyx``, ``_decode.pyx``, ``_flows.pyx``), imported
in one place so that a checkout that was never built says how to build it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["compiled"]


def compiled(name: str) -> ModuleType:
    """The extension module ``capture.<name>``.

    Raises:
        ImportError: it is not built (``pip install -e .`` builds it).
    """
    try:
        return importlib.import_module(f"capture.{name}")
    except ImportError as exc:  # pragma: no cover - a checkout that was never built
        raise ImportError(
            "egresslens' compiled capture core is not built: run `pip install -e .` "
            "(or `make venv`) in the repository"
        ) from exc
