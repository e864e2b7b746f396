"""webCRM's request budget, shared by every kind of work the service does.

webCRM allows 250 requests per 60 s per application token. The connector's
sliding-window limiter (:mod:`shopsync.connectors.webcrm.ratelimit`) already makes every
request wait for a free slot, so the service never draws a 429 of its own making,
whoever sends. What the limiter cannot know is *which* work matters more: a change a
person just made (a hook) should not wait behind a routine poll. So:

* work driven by a hook (and the start-up sync) may always start; the limiter paces it;
* a poll starts only while at least :attr:`Budget.reserve` requests of the window are
  free, keeping that much for hook-driven work that arrives meanwhile;
* every request is accounted to a *kind* after the fact, from the client's per-endpoint
  counters, so ``/metrics`` says how much of the budget each kind used.
"""

from __future__ import annotations

import collections
import threading
from typing import Protocol

KINDS = ("targeted", "poll", "start", "sweep", "write", "auth", "hooks")
"""``targeted``: reads of a run a hook asked for; ``poll``, ``start``: reads of a poll and
of the start-up run; ``sweep``: full reads of products and quotation lines (the delete
sweep, whatever run did it); ``write``: record writes of any run; ``auth``: logins and
token refreshes; ``hooks``: hook registrations."""
SWEEP_PATHS = frozenset({"/Products", "/QuotationLines"})
"""Reading these lists in full is what a delete sweep does (changes are read through
``/Queries``)."""

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _Limiter(Protocol):
    limit: int

    def headroom(self) -> int: ...

    def in_window(self) -> int: ...


class _Counted(Protocol):
    requests_by_endpoint: collections.Counter[str]


def kind_of(endpoint: str, reads: str) -> str:
    """The budget kind of one request (``"GET /Queries"``) made by work of kind ``reads``."""
    method, _, path = endpoint.partition(" ")
    if path.startswith("/Auth/"):
        return "auth"
    if "/Hooks" in path:
        return "hooks"
    if method in WRITE_METHODS:
        return "write"
    if path in SWEEP_PATHS:
        return "sweep"
    return reads


class Budget:
    """Which work may start now, and what the requests so far were spent on."""

    def __init__(self, client: _Counted, limiter: _Limiter, *, reserve: int | None = None) -> None:
        self._client = client
        self.limiter = limiter
        self.reserve = reserve if reserve is not None else max(5, limiter.limit // 5)
        """Requests of the window kept free for hook-driven work: a poll waits for them."""
        self._seen: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def poll_may_start(self) -> bool:
        return self.limiter.headroom() >= min(self.reserve, self.limiter.limit)

    def in_window(self) -> int:
        return self.limiter.in_window()

    def account(self, reads: str) -> dict[str, int]:
        """The requests made since the last call, by kind; reads count as ``reads``."""
        with self._lock:
            now = collections.Counter(self._client.requests_by_endpoint)
            delta = now - self._seen
            self._seen = now
        used: dict[str, int] = collections.defaultdict(int)
        for endpoint, n in delta.items():
            used[kind_of(endpoint, reads)] += n
        return dict(used)
