"""webCRM's rate limit: N requests per sliding 60 seconds per application token.

All access tokens issued for one application token share one window. A refused
request (429) does not take a place in the window: webCRM answers it without doing
the work, and counting it would punish a client for asking when to come back.
``Retry-After`` is the time until the oldest counted request leaves the window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

WINDOW = 60.0


class RateLimiter:
    """Sliding-window counters per application key (thread-safe); limit 0 = off."""

    def __init__(self, limit: int, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def set_limit(self, limit: int) -> None:
        """Change the limit at run time; the windows start empty."""
        with self._lock:
            self.limit = limit
            self._hits.clear()

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()

    def acquire(self, app: str) -> int | None:
        """Count one request; returns None when allowed, else seconds to wait (≥ 1)."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(app, deque())
            edge = now - self.window
            while hits and hits[0] <= edge:
                hits.popleft()
            if len(hits) < self.limit:
                hits.append(now)
                return None
            return max(1, math.ceil(hits[0] + self.window - now))

    def used(self, app: str) -> int:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(app)
            return sum(1 for t in hits if t > now - self.window) if hits else 0
