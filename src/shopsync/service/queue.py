"""The service's queue: work per (datatype, record), debounced, coalesced, in order.

A key is a datatype with either one record (``system``, ``id``) or none. A hook that
names its record queues that record: the run reads it by id (``Engine.run(records=…)``),
so a ``Delete`` hook is seen at once, without waiting for a sweep, and an edit costs one
read however far the datatype's cursor is behind. A poll, the start-up run, a follow-up
and a hook that names no record queue the datatype: the run reads its changes since the
cursor.

* **Debounced.** A key is due :data:`DEBOUNCE` after its *first* hint; later hints for
  the same key join it without pushing it back, so a burst of edits of one record is
  one read and a steady stream cannot postpone it forever.
* **Coalesced.** When a run starts, a datatype queued as a whole swallows its queued
  records, and more than :data:`MAX_READS` records of one datatype and system become
  one read since the cursor (one request instead of many). Records named by a
  ``Delete`` hook are still read by id then (a read since the cursor does not report
  every delete), up to :data:`MAX_READS` of them; past that the run sweeps.
* **Dependency order.** Due hook work takes along the queued hook work of the datatypes
  it depends on (an order's customer and products), even if not due yet, and the
  engine works through one run's datatypes in rule 6's order.
* **Hooks first.** A job is ``urgent`` unless all of it is polling; the scheduler starts
  urgent jobs whenever they are due and polls only when the budget allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shopsync.config.model import Datatype

DEBOUNCE = 0.25
"""Seconds from a key's first hint to its run: a burst of edits becomes one run."""
MAX_READS = 5
"""Records of one datatype and system read by id in one run; more is one read since
the cursor (webCRM: one request either way once two records are queued, but a record
read by id is also seen when it was deleted, and its echo costs no page)."""
RANK = {"hook": 0, "start": 1, "follow": 2, "poll": 3}
"""When work of several kinds is queued for one key, the first kind here names it."""
ORDER = list(Datatype)
UPSTREAM: dict[Datatype, tuple[Datatype, ...]] = {
    Datatype.customers: (),
    Datatype.products: (),
    Datatype.orders: (Datatype.customers, Datatype.products),
    Datatype.order_lines: (Datatype.products, Datatype.orders),
}
"""What a datatype's records refer to (rule 6): queued with it when it runs."""


@dataclass(frozen=True)
class Key:
    datatype: Datatype
    system: str | None = None
    record_id: str | None = None

    def sort_key(self) -> tuple[int, str, str]:
        return ORDER.index(self.datatype), self.system or "", self.record_id or ""

    @property
    def whole(self) -> bool:
        """The datatype as a whole (its changes since the cursor), not one record."""
        return self.record_id is None


@dataclass
class Work:
    kind: str
    """``hook``, ``start``, ``follow`` (a waiting record's upstream was written) or ``poll``."""
    due: float
    sweep: bool = False
    deleted: bool = False
    """A hook said this record was deleted."""
    hinted: dict[str, float] = field(default_factory=dict)
    """Per source (``webcrm``, ``webshop``, ``console``): when its first hint arrived."""

    def merge(self, other: Work) -> None:
        if RANK[other.kind] < RANK[self.kind]:
            self.kind = other.kind
        self.due = min(self.due, other.due)
        self.sweep = self.sweep or other.sweep
        self.deleted = self.deleted or other.deleted
        for source, at in other.hinted.items():
            self.hinted[source] = min(at, self.hinted.get(source, at))

    def copy(self) -> Work:
        return Work(self.kind, self.due, self.sweep, self.deleted, dict(self.hinted))


@dataclass
class Job:
    """One run's worth of work, as ``Installation.sync`` takes it."""

    work: dict[Key, Work]
    only: list[Datatype] | None
    """Datatypes read since their cursor; None: all of them."""
    records: dict[Datatype, dict[str, list[str]]]
    sweep: bool

    @property
    def datatypes(self) -> list[Datatype]:
        named = {k.datatype for k in self.work}
        return [dt for dt in ORDER if dt in named]

    @property
    def trigger(self) -> str:
        return min((w.kind for w in self.work.values()), key=RANK.__getitem__)

    @classmethod
    def of(cls, work: dict[Key, Work]) -> Job:
        """Decide what a run reads for ``work`` (see the module docstring)."""
        whole = {k.datatype for k in work if k.whole}
        sweep = any(w.sweep for w in work.values())
        by_side: dict[tuple[Datatype, str], list[tuple[str, bool]]] = {}
        for key, w in sorted(work.items(), key=lambda kw: kw[0].sort_key()):
            if key.whole or (key.datatype in whole and not w.deleted):
                continue  # read since the cursor anyway (a delete may not be: kept)
            assert key.system is not None and key.record_id is not None
            by_side.setdefault((key.datatype, key.system), []).append((key.record_id, w.deleted))
        records: dict[Datatype, dict[str, list[str]]] = {}
        for (dt, system), ids in by_side.items():
            chosen = [rid for rid, _ in ids]
            if len(ids) > MAX_READS or dt in whole:
                whole.add(dt)
                chosen = [rid for rid, deleted in ids if deleted]
                if len(chosen) > MAX_READS:
                    sweep, chosen = True, []
            if chosen:
                records.setdefault(dt, {})[system] = chosen
        only = None if whole == set(ORDER) else [dt for dt in ORDER if dt in whole]
        return cls(work, only, records, sweep)


class WorkQueue:
    """The pending keys (not thread-safe: the scheduler holds its lock around calls)."""

    def __init__(self) -> None:
        self._pending: dict[Key, Work] = {}

    def add(self, keys: Iterable[Key], work: Work) -> None:
        for key in keys:
            if key in self._pending:
                self._pending[key].merge(work.copy())
            else:
                self._pending[key] = work.copy()

    def requeue(self, job: Job, due: float) -> None:
        for key, work in job.work.items():
            work.due = due
            self.add([key], work)

    def dues(self) -> list[float]:
        return [w.due for w in self._pending.values()]

    def by_datatype(self) -> dict[Datatype, Work]:
        """Per datatype, its queued work merged (for the console and the gauges)."""
        merged: dict[Datatype, Work] = {}
        for key, work in self._pending.items():
            if key.datatype in merged:
                merged[key.datatype].merge(work.copy())
            else:
                merged[key.datatype] = work.copy()
        return merged

    def counts(self) -> dict[Datatype, int]:
        found = dict.fromkeys(Datatype, 0)
        for key in self._pending:
            found[key.datatype] += 1
        return found

    def take_due(self, now: float, polls_may_start: bool) -> Job | None:
        """The due work (with the hook work it depends on) as one job, taken off the
        queue; None when nothing may start now. A due poll that may not start is
        pushed back a second."""
        due = {k: w for k, w in self._pending.items() if w.due <= now}
        urgent = {k: w for k, w in due.items() if w.kind != "poll"}
        if urgent:
            chosen = dict(urgent)
            for key, work in self._pending.items():
                if work.kind == "hook" and key not in chosen and self._feeds(key, chosen):
                    chosen[key] = work
        elif due and polls_may_start:
            chosen = due
        else:
            for work in due.values():
                work.due = now + 1.0
            return None
        for key in chosen:
            del self._pending[key]
        return Job.of(chosen)

    @staticmethod
    def _feeds(key: Key, chosen: dict[Key, Work]) -> bool:
        return any(key.datatype in UPSTREAM[k.datatype] for k in chosen)
