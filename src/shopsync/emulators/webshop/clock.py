"""A server-wide clock whose readings strictly increase.

Every write takes one reading as its ``updated_at``. Because no two writes share an
instant and writes are serialized (``store.Store.write``), ``(updated_at, id)`` orders
all changes, and a listing cursor placed after one change never hides a later one.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

ONE_MICROSECOND = timedelta(microseconds=1)


def utc(value: datetime) -> datetime:
    """A stored (naive UTC) timestamp as an aware one."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive(value: datetime) -> datetime:
    """An aware timestamp as stored (naive UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def rfc3339(value: datetime) -> str:
    """``2025-03-14T09:26:53.589793+00:00``: always microseconds, always the offset."""
    return utc(value).isoformat(timespec="microseconds")


class Clock:
    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def not_before(self, value: datetime) -> None:
        """Never answer at or before ``value`` (e.g. the newest stored change)."""
        with self._lock:
            self._last = max(self._last, utc(value))

    def now(self) -> datetime:
        with self._lock:
            current = datetime.now(UTC)
            if current <= self._last:
                current = self._last + ONE_MICROSECOND
            self._last = current
            return current
