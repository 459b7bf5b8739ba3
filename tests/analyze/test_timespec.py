"""--since / --until forms, as journalctl reads them (systemd.time(7))."""

from __future__ import annotations

import datetime as dt

import pytest

from analyze.timespec import parse_time

NOW = dt.datetime(2026, 12, 3, 17, 45, 30, 250_000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("today", dt.datetime(2026, 12, 3, tzinfo=dt.UTC)),
        ("Yesterday", dt.datetime(2026, 12, 2, tzinfo=dt.UTC)),
        ("tomorrow", dt.datetime(2026, 12, 4, tzinfo=dt.UTC)),
        ("-1h", NOW - dt.timedelta(hours=1)),
        ("+30min", NOW + dt.timedelta(minutes=30)),
        ("-90s", NOW - dt.timedelta(seconds=90)),
        ("1h ago", NOW - dt.timedelta(hours=1)),
        ("2 days ago", NOW - dt.timedelta(days=2)),
        ("1h 30min ago", NOW - dt.timedelta(minutes=90)),
        ("-1h30m", NOW - dt.timedelta(minutes=90)),
        ("1w ago", NOW - dt.timedelta(days=7)),
        ("-2M", NOW - dt.timedelta(days=2 * 30.4375)),
        ("-2m", NOW - dt.timedelta(minutes=2)),
        ("-500ms", NOW - dt.timedelta(milliseconds=500)),
        ("2026-12-01T10:00:00Z", dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)),
        ("2026-12-01 10:00:00", dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)),
        ("2026-12-01T12:00:00+02:00", dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)),
        ("2026-12-01", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)),
        ("@1764755400", dt.datetime(2025, 12, 3, 9, 50, tzinfo=dt.UTC)),
    ],
)
def test_forms(text: str, expected: dt.datetime) -> None:
    got = parse_time(text, now=NOW)
    assert got == expected
    assert got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("text", ["", "soon", "-1 fortnight", "1h later", "@x", "2026-13-01", "ago", "-"])
def test_rejects_name_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a time: .*accepted: ISO 8601"):
        parse_time(text, now=NOW)


def test_relative_to_the_real_clock_by_default() -> None:
    before = dt.datetime.now(dt.UTC)
    got = parse_time("-1h")
    after = dt.datetime.now(dt.UTC)
    assert before - dt.timedelta(hours=1) <= got <= after - dt.timedelta(hours=1)


def test_analyze_takes_the_relative_forms() -> None:
    """The demo evidence is from the past: ``--since yesterday`` keeps none, ``--until tomorrow`` all."""
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from analyze.cli import cli

    demo = Path(__file__).resolve().parents[2] / "pcaps" / "demo"
    base = ["analyze", "--inventory", str(demo / "inventory.yaml"), "--format", "json",
            str(demo / "webapp-vm.pcap"), str(demo / "auth.log")]  # fmt: skip

    def count(*extra: str) -> int:
        result = CliRunner().invoke(cli, [*base, *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return len(json.loads(result.stdout)["connections"])

    everything = count()
    assert everything > 0
    assert count("--until", "tomorrow") == everything
    assert count("--since", "1h ago") == 0
    assert count("--since", "yesterday") == 0
