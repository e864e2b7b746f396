"""The garbage collector while a run works: objects from before the run are not walked
again and again, and a batch's short-lived objects die young.

Why: CPython's cyclic collector counts container allocations. A run creates and drops a
batch's worth of them at a time (ORM states, row dicts, JSON values), so with the
default thresholds (700, 10, 10) the objects alive while their batch is processed are
promoted, batch after batch, into the oldest generation, and every full collection then
walks every object of the process: the run's own and whatever the process held before
it (a service's application, connectors, caches; a benchmark's fake systems). Measured
by ``bench/engine_micro.py`` (docs/benchmarks.md): a quarter of a 40,000-record changed
run went to 22–24 full collections.

While any run is in :func:`quiet_collector`:

* the objects that exist when the first run begins are frozen (:func:`gc.freeze`: moved
  to a permanent generation that no collection walks; they are thawed when the last run
  ends, so garbage among them is collected then);
* the youngest generation's threshold is :data:`YOUNG_THRESHOLD` allocations instead of
  700, so a batch's objects are freed by reference counting before a collection can
  promote them. Cycles are still collected, only in fewer, larger passes.

Runs in threads of one process (the service) share one setting: the first to enter
sets it, the last to leave restores what was there before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000
"""Allocations between collections of the youngest generation while a run works (the
default is 700): more than a batch of records allocates between two of its commits."""

_lock = threading.Lock()
_runs = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def quiet_collector() -> Iterator[None]:
    """Tune the collector for the duration of a run (see the module's docstring)."""
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    global _runs, _saved
    with _lock:
        _runs += 1
        if _runs > 1:
            return
        young, middle, old = gc.get_threshold()
        _saved = (young, middle, old)
        gc.freeze()
        if young:  # 0: the collector is off (gc.disable does not set it); leave it so
            gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)


def _leave() -> None:
    global _runs, _saved
    with _lock:
        _runs -= 1
        if _runs > 0:
            return
        if _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
        gc.unfreeze()
