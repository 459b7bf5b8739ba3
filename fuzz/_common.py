"""What every fuzz target shares: the invariant, scratch files, seeds and the atheris driver.

The invariant (issue 7): whatever the bytes, a reader either returns records or raises one of
the package's own errors (``capture.errors.EgresslensError``) whose message names the file.
Anything else escaping -- ``struct.error``, ``IndexError``, ``RecursionError``, a polars
error -- is a crash.  ``one_input`` functions only need this module, not atheris, so
``tests/test_fuzz_regressions.py`` replays saved crashes without it.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"
INSTRUMENT = ("capture", "analyze")
"""Packages whose Python code atheris instruments for coverage (polars and numpy are native)."""

_SCRATCH = Path(tempfile.mkdtemp(prefix="egresslens-fuzz-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


class InvariantViolation(AssertionError):
    """A reader broke the fuzzing invariant without raising (e.g. an error not naming the file)."""


def scratch(name: str, data: bytes) -> Path:
    """Write ``data`` to a scratch file called ``name`` (same path every call) and return it."""
    path = _SCRATCH / name
    path.write_bytes(data)
    return path


@contextlib.contextmanager
def expect_clean_errors(path: Path, options: tuple[str, ...] = ()) -> Iterator[None]:
    """Let only the package's own errors out, and check that they name ``path``.

    Our errors are swallowed (they are a valid outcome); every other exception propagates
    and is a crash for atheris.  A ``UsageError`` about one of ``options`` (e.g.
    ``--log-format``) names the option instead of the file.
    """
    from capture.errors import EgresslensError, UsageError

    try:
        yield
    except EgresslensError as exc:
        text = str(exc)
        if isinstance(exc, UsageError) and any(text.startswith(o) for o in options):
            return
        if str(path) not in text and path.name not in text:
            raise InvariantViolation(f"error does not name the file: {exc!r}") from exc


def names_the_file(messages: Iterable[str], path: Path) -> None:
    """Every warning or note must say which file it is about."""
    for m in messages:
        if path.name not in m:
            raise InvariantViolation(f"message does not name the file: {m!r}")


def instrumented() -> contextlib.AbstractContextManager[object]:
    """Instrument our packages' imports for coverage when atheris drives the target."""
    if "atheris" not in sys.modules:
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=list(INSTRUMENT))  # type: ignore[no-any-return]


def fixtures(*patterns: str) -> list[Path]:
    """Committed fixture files matching ``patterns`` (globs relative to the repository)."""
    found = {p for pat in patterns for p in ROOT.glob(pat) if p.is_file()}
    return sorted(found)


def main(name: str, one_input: Callable[[bytes], None], seeds: Iterable[bytes]) -> None:
    """Run ``one_input`` under atheris with libFuzzer flags from ``sys.argv``.

    Without a corpus directory on the command line, ``fuzz/corpus/<name>/`` is used.  The
    seeds are written into the (first) corpus directory, so new interesting inputs join them
    there and are kept between runs.  Crashes are written to ``fuzz/crashes/<name>-crash-*``.
    """
    import atheris

    argv = list(sys.argv)
    dirs = [a for a in argv[1:] if not a.startswith("-")]
    if not dirs:
        dirs = [str(FUZZ / "corpus" / name)]
        argv.append(dirs[0])
    corpus = Path(dirs[0])
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i:03d}").write_bytes(seed)
    if not any(a.startswith("-artifact_prefix=") for a in argv):
        crashes = FUZZ / "crashes"
        crashes.mkdir(exist_ok=True)
        argv.insert(1, f"-artifact_prefix={crashes}/{name}-")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
