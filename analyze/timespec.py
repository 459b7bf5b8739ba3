"""Times as people type them for ``--since`` / ``--until``, in journalctl's forms.

Accepted (systemd.time(7) is the model): an ISO 8601 time (``2026-12-01T10:00``,
``2026-12-01 10:00:00``, a trailing ``Z`` or an offset; without a zone: UTC), ``@EPOCH``
seconds, the words ``now``, ``today``, ``yesterday``, ``tomorrow`` (midnight UTC), and
relative spans: ``-1h``, ``+30min``, ``1h 30min ago``, ``2 days ago``. Units: ``us``, ``ms``,
``s``/``sec``/``second(s)``, ``m``/``min``/``minute(s)``, ``h``/``hr``/``hour(s)``,
``d``/``day(s)``, ``w``/``week(s)``, ``M``/``month(s)`` (30.44 days) and ``y``/``year(s)``
(365.25 days), as systemd counts them.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["FORMS", "parse_time"]

FORMS = "ISO 8601, @EPOCH, now, today, yesterday, tomorrow, -1h, +30min, '2 days ago'"

_US = 1
_UNITS: dict[str, int] = {}
for _names, _size in (
    (("us", "usec"), _US),
    (("ms", "msec"), 1_000),
    (("s", "sec", "second", "seconds"), 1_000_000),
    (("m", "min", "minute", "minutes"), 60_000_000),
    (("h", "hr", "hour", "hours"), 3_600_000_000),
    (("d", "day", "days"), 86_400_000_000),
    (("w", "week", "weeks"), 604_800_000_000),
    (("M", "month", "months"), 2_629_800_000_000),
    (("y", "year", "years"), 31_557_600_000_000),
):
    for _name in _names:
        _UNITS[_name] = _size

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)")
_SPAN = re.compile(r"^(?:\d+(?:\.\d+)?\s*[A-Za-z]+\s*)+$")


def _span_us(text: str) -> int | None:
    """Microseconds of a span such as ``1h 30min`` or ``2days``; None if it is not one."""
    text = text.strip()
    if not text or not _SPAN.match(text):
        return None
    total = 0.0
    for number, unit in _PART.findall(text):
        size = _UNITS.get(unit) or (None if unit == "M" else _UNITS.get(unit.lower()))
        if size is None:
            return None
        total += float(number) * size
    return round(total)


def parse_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC-aware time ``text`` names, relative forms counted from ``now``.

    Raises:
        ValueError: ``text`` is none of the accepted forms (the message lists them).
    """
    now = now or dt.datetime.now(dt.UTC)
    spec = text.strip()
    word = spec.lower()
    midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    words = {
        "now": now.astimezone(dt.UTC),
        "today": midnight,
        "yesterday": midnight - dt.timedelta(days=1),
        "tomorrow": midnight + dt.timedelta(days=1),
    }
    if word in words:
        return words[word]
    if spec.startswith("@"):
        try:
            return dt.datetime.fromtimestamp(float(spec[1:]), dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"not a time: {text!r} (accepted: {FORMS})") from None
    sign, body = 0, spec
    if spec[:1] in "+-" and _span_us(spec[1:]) is not None:
        sign, body = (1 if spec[0] == "+" else -1), spec[1:]
    elif word.endswith(" ago") and _span_us(spec[:-4]) is not None:
        sign, body = -1, spec[:-4]
    if sign:
        return (now + sign * dt.timedelta(microseconds=_span_us(body) or 0)).astimezone(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(spec.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (accepted: {FORMS})") from None
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
