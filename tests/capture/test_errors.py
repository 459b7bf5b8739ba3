"""capture.errors: one rooted tree, caught by the CLI at the base class."""

from __future__ import annotations

from capture import errors


def test_every_error_descends_from_the_base() -> None:
    names = [n for n in dir(errors) if n.endswith("Error") or n in ("NotACapture", "CorruptCapture", "PermissionDenied", "ToolMissing")]
    for name in names:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.EgresslensError), name
    assert issubclass(errors.NotACapture, errors.InputError)
    assert issubclass(errors.CorruptCapture, errors.InputError)
    assert issubclass(errors.PermissionDenied, errors.CaptureError)


def test_clip_cuts_long_input() -> None:
    assert errors.clip("abc") == "'abc'"
    cut = errors.clip("x" * 500)
    assert len(cut) == 80 and cut.endswith("...")
