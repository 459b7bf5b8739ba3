"""capture.core: the compiled modules, and a clear message where they are not built."""

from __future__ import annotations

import pytest

from capture.core import compiled


def test_the_built_extensions_import() -> None:
    for name in ("_walk", "_decode", "_flows"):
        module = compiled(name)
        assert module.__name__ == f"capture.{name}"
        assert module.__file__ and module.__file__.endswith(".so")


def test_a_missing_extension_says_how_to_build_it() -> None:
    with pytest.raises(ImportError, match=r"not built: run `pip install -e \.`"):
        compiled("_not_built_here")
