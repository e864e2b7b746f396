"""The sliding-window limiter, on a simulated clock: never more than ``limit`` per window."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.connectors.webcrm.ratelimit import SlidingWindowLimiter, shared_limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def max_in_window(stamps: list[float], window: float) -> int:
    """The most events in any half-open window of ``window`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=12),
    window=st.floats(min_value=1.0, max_value=60.0),
    # per request: pause before sending, and how long the server takes to answer
    requests=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=5.0), st.floats(min_value=0.0, max_value=3.0)),
        min_size=1,
        max_size=60,
    ),
)
def test_server_never_sees_more_than_limit_per_window(
    limit: int, window: float, requests: list[tuple[float, float]]
) -> None:
    """Whatever the pauses and latencies, the *server's* arrival times (somewhere between
    send and answer — here the worst case, the moment of the answer) never put more
    than ``limit`` requests into one window."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=limit, window=window, margin=0.0, clock=clock)
    arrivals: list[float] = []
    sends: list[float] = []
    for pause, latency in requests:
        clock.now += pause
        slot = limiter.acquire(sleep=clock.sleep)
        sends.append(clock.now)
        clock.now += latency
        arrivals.append(clock.now)  # latest possible arrival
        limiter.release(slot)
    assert max_in_window(sorted(arrivals), window) <= limit
    assert max_in_window(sends, window) <= limit


def test_full_window_waits_exactly_until_the_oldest_answer_expires() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=3, window=60.0, margin=0.5, clock=clock)
    start = clock.now
    for _ in range(3):
        limiter.release(limiter.acquire(sleep=clock.sleep))
        clock.now += 1.0
    assert limiter.headroom() == 0
    limiter.release(limiter.acquire(sleep=clock.sleep))
    # first answer at `start`, so the fourth waits until start + 60.5
    assert abs(clock.now - (start + 60.5)) < 0.01


def test_back_to_back_requests_do_not_wait() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=250, window=60.0, clock=clock)
    for _ in range(250):
        limiter.release(limiter.acquire(sleep=clock.sleep))
    assert clock.now == 1000.0
    assert limiter.headroom() == 0
    assert limiter.in_window() == 250


def test_pause_holds_every_request() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=10, window=60.0, clock=clock)
    limiter.pause(7.0)
    limiter.release(limiter.acquire(sleep=clock.sleep))
    assert clock.now >= 1007.0


def test_requests_in_flight_count_until_answered() -> None:
    """Threads sharing a limiter: a slot held by a request in flight is not reused."""
    limiter = SlidingWindowLimiter(limit=2, window=0.3, margin=0.0)
    held = [limiter.acquire(), limiter.acquire()]
    got: list[float] = []

    def third() -> None:
        limiter.release(limiter.acquire())
        got.append(time.monotonic())

    t = threading.Thread(target=third)
    t.start()
    time.sleep(0.5)  # longer than the window: only in-flight slots block now
    assert got == []
    released = time.monotonic()
    limiter.release(held[0])
    t.join(timeout=5)
    assert got and got[0] - released >= 0.29  # waited a full window after the answer


def test_shared_limiter_is_per_token_and_takes_the_stricter_limit() -> None:
    a = shared_limiter("http://x.test/", "token-one-shared", 250)
    b = shared_limiter("http://x.test", "token-one-shared", 100)
    c = shared_limiter("http://x.test", "token-two-shared", 250)
    assert a is b
    assert a.limit == 100
    assert c is not a
