"""Timestamps of the emulator: one fixed-width text form, and a clock that never goes back.

Every date-time the emulator stores is ISO-8601 UTC with microseconds and a ``Z``
(``2026-11-26T10:00:00.123456Z``). All values have the same width, so comparing them
as text (SQLite, ``/Queries``) is the same as comparing them as times.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_ONE_US = timedelta(microseconds=1)


class OutOfRange(ValueError):
    """A date-time whose offset moves it out of the years 1 to 9999 in UTC."""

    def __init__(self, text: str) -> None:
        super().__init__(
            f"{text!r} is a date-time out of range: in UTC it is not within the years 1 to 9999"
        )


def format_ts(value: datetime) -> str:
    """The stored text form of an aware (or UTC-naive) datetime."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # isoformat always pads the year to four digits (strftime's %Y does not).
    return value.isoformat(timespec="microseconds") + "Z"


def utc_now() -> str:
    """The wall-clock time in the stored form (for logs, not for record timestamps)."""
    return format_ts(datetime.now(UTC))


def parse_ts(text: str) -> datetime:
    """Parse an ISO-8601 date or date-time; naive values are UTC. Raises ``ValueError``,
    also for a time whose offset moves it out of the years 1 to 9999 in UTC.

    Accepts ``2026-11-26``, ``2026-11-26T10:00``, ``2026-11-26T10:00:00``, with or
    without fraction (any number of digits up to 7, as .NET writes), ``Z`` or an offset.
    """
    s = text.strip()
    if not s:
        raise ValueError("empty date-time")
    if s[-1] in "zZ":
        s = s[:-1] + "+00:00"
    # .NET writes 7 fractional digits; Python accepts at most 6.
    if "." in s:
        head, _, rest = s.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        if digits == 0:
            raise ValueError(f"not a date-time: {text!r}")
        s = head + "." + rest[:digits][:6].ljust(6, "0") + rest[digits:]
    value = datetime.fromisoformat(s)
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 9999-12-31T23:59:59-05:00 is in year 10000 in UTC
            raise OutOfRange(text) from None
    return value


def normalize_ts(text: str) -> str:
    """Any accepted date-time text → the stored fixed-width form."""
    return format_ts(parse_ts(text))


class MonotonicClock:
    """Hands out strictly increasing UTC timestamps (microsecond steps).

    Two writes in the same microsecond, or a wall clock that steps back, still get
    increasing ``UpdatedAt`` values, so a client's "changed since" cursor never misses
    a write.
    """

    def __init__(self) -> None:
        self._last = datetime(1970, 1, 1)
        self._lock = threading.Lock()

    def advance_to(self, stored: str | None) -> None:
        """Never hand out a value at or before ``stored`` (used at start-up)."""
        if stored:
            with self._lock:
                self._last = max(self._last, parse_ts(stored))

    def now(self) -> str:
        with self._lock:
            current = datetime.now(UTC).replace(tzinfo=None)
            if current <= self._last:
                current = self._last + _ONE_US
            self._last = current
            return format_ts(current)
