"""A client-side sliding-window limiter: stay under webCRM's 250 requests per 60 s.

webCRM counts requests per application token over a sliding one-minute window and
answers 429 beyond it. A client that merely *reacts* to 429s wastes requests and time
(each refused request also counts); this limiter makes the client *never* exceed the
window, so a full read runs at the floor of requests.

Exactness. Each request holds a *slot*. A slot is stamped when the request is sent and
stamped again when its answer arrives; the server saw the request somewhere in between,
so the second stamp is never earlier than the server's own record of it. A slot stops
counting ``window + margin`` seconds after its *answer*, and a request in flight always
counts. Hence the server, whatever the network latency, never sees more than ``limit``
requests from us in any window of ``window`` seconds; ``margin`` (0.5 s) only absorbs
clock-rate differences.

Sharing. One application token has one budget, however many clients use it in a
process (the runner's reader and writer, ``shopsync check``), so limiters are shared
through :func:`shared_limiter`, keyed by a hash of base URL and token.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(eq=False)
class Slot:
    """One request's place in the window."""

    stamp: float
    in_flight: bool = True


@dataclass
class SlidingWindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds (see the module docstring)."""

    limit: int
    window: float = 60.0
    margin: float = 0.5
    clock: Clock = time.monotonic
    _slots: list[Slot] = field(default_factory=list)
    _paused_until: float = 0.0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    waited_seconds: float = 0.0
    """Total time callers spent waiting in :meth:`acquire` (for benchmarks and logs)."""

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.window <= 0:
            raise ValueError("window must be positive")

    def _prune(self, now: float) -> None:
        horizon = now - (self.window + self.margin)
        self._slots = [s for s in self._slots if s.in_flight or s.stamp > horizon]

    def _wait_time(self, now: float) -> float:
        """Seconds until a slot frees (0: one is free now); caller holds the lock."""
        self._prune(now)
        pause = self._paused_until - now
        if len(self._slots) < self.limit:
            return max(pause, 0.0)
        done = [s.stamp for s in self._slots if not s.in_flight]
        if not done:
            return max(pause, 0.05)  # all in flight: woken by release()
        # The oldest finished slots must expire until one slot is free.
        done.sort()
        excess = len(self._slots) - self.limit  # slots beyond the limit, >= 0
        free_at = done[min(excess, len(done) - 1)] + self.window + self.margin
        return max(pause, free_at - now, 0.001)

    def acquire(self, sleep: Callable[[float], None] | None = None) -> Slot:
        """Block until a request may be sent; the returned slot must be released."""
        waited = 0.0
        with self._cond:
            while True:
                now = self.clock()
                delay = self._wait_time(now)
                if delay <= 0:
                    slot = Slot(now)
                    self._slots.append(slot)
                    self.waited_seconds += waited
                    return slot
                if sleep is None:
                    self._cond.wait(delay)
                else:  # an injected sleep (tests with a fake clock) must not hold the lock
                    self._cond.release()
                    try:
                        sleep(delay)
                    finally:
                        self._cond.acquire()
                waited += delay

    def release(self, slot: Slot) -> None:
        """The answer (or the failure) is in: restamp, so the slot expires from now."""
        with self._cond:
            slot.stamp = self.clock()
            slot.in_flight = False
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (the server's ``Retry-After``)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self.clock() + seconds)

    def headroom(self) -> int:
        """Requests that could be sent right now without waiting."""
        with self._cond:
            self._prune(self.clock())
            return max(self.limit - len(self._slots), 0)

    def in_window(self) -> int:
        """Requests counted in the current window (including those in flight)."""
        with self._cond:
            self._prune(self.clock())
            return len(self._slots)


_REGISTRY: dict[str, SlidingWindowLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def limiter_key(base_url: str, auth_code: str) -> str:
    """Registry key: a hash, so the token itself is not kept around as a dict key."""
    raw = f"{base_url.rstrip('/')}\0{auth_code}".encode()
    return hashlib.sha256(raw).hexdigest()


def shared_limiter(
    base_url: str, auth_code: str, limit: int, window: float = 60.0
) -> SlidingWindowLimiter:
    """The process-wide limiter for one application token at one webCRM.

    Two clients asking with different limits get the stricter of the two.
    """
    key = limiter_key(base_url, auth_code)
    with _REGISTRY_LOCK:
        limiter = _REGISTRY.get(key)
        if limiter is None:
            limiter = SlidingWindowLimiter(limit=limit, window=window)
            _REGISTRY[key] = limiter
        else:
            with limiter._cond:
                limiter.limit = min(limiter.limit, limit)
                limiter.window = max(limiter.window, window)
        return limiter
