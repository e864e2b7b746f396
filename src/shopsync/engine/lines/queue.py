"""The PATCH queue of order lines: the webCRM line writes of many orders go together
in whole batches (the rate limit counts calls, not records)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.creates import Creates
from shopsync.engine.model import LineOutcome
from shopsync.engine.ports import UpsertOutcome

LINES = Datatype.order_lines


class LineWork(Protocol):
    """One order's line writes, waiting for their answers."""

    records: list[dict[str, Any]]

    def source_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The webshop line a create in ``records`` comes from (its intent's source)."""

    def finish(self, results: Sequence[UpsertOutcome]) -> None: ...


class LineQueue:
    def __init__(self, ctx: RunContext, creates: Creates) -> None:
        self.ctx = ctx
        self.creates = creates
        self._queue: list[LineWork] = []
        self._sent: dict[int, int] = {}
        self._results: dict[int, list[LineOutcome]] = {}

    def add(self, work: LineWork) -> None:
        self._queue.append(work)
        if sum(len(w.records) for w in self._queue) >= 2 * self.ctx.config.webcrm.batch_size:
            self.flush(final=False)

    def flush(self, *, final: bool = True) -> None:
        """PATCH the queued line writes together.

        Unless ``final``, only whole batches go: an order whose lines straddle the cut
        keeps the rest queued and is finished when all of its lines have an answer.
        """
        size = self.ctx.config.webcrm.batch_size
        total = sum(len(w.records) for w in self._queue)
        budget = total if final else (total // size) * size
        records: list[dict[str, Any]] = []
        sources: list[dict[str, Any] | None] = []
        taken: list[tuple[int, int]] = []  # (queue position, how many of its records)
        for pos, work in enumerate(self._queue):
            if len(records) >= budget:
                break
            start = self._sent.get(pos, 0)
            n = min(len(work.records) - start, budget - len(records))
            if n > 0:
                chunk = work.records[start : start + n]
                records.extend(chunk)
                sources.extend(work.source_of(r) for r in chunk)
                taken.append((pos, n))

        def on_send(indices: range) -> None:
            self.creates.mark_sent(
                LINES,
                [
                    (str(src["id"]), records[i], src)
                    for i in indices
                    if (src := sources[i]) is not None
                ],
            )

        results = (
            self.ctx.webcrm.upsert("QuotationLine", records, on_send=on_send) if records else []
        )
        self._settle(taken, {r.index: r for r in results})

    def _settle(self, taken: list[tuple[int, int]], by_index: dict[int, UpsertOutcome]) -> None:
        offset = 0
        for pos, n in taken:
            got = self._results.setdefault(pos, [])
            base = len(got)  # read once: a generator extending ``got`` would see it grow
            got.extend(
                LineOutcome(base + k, by_index[offset + k].id, by_index[offset + k].error)
                for k in range(n)
            )
            self._sent[pos] = self._sent.get(pos, 0) + n
            offset += n
        done = 0
        for pos, work in enumerate(self._queue):
            if self._sent.get(pos, 0) < len(work.records):
                break
            work.finish(self._results.get(pos, []))
            done = pos + 1
        self._queue = self._queue[done:]
        self._sent = {p - done: n for p, n in self._sent.items() if p >= done}
        self._results = {p - done: r for p, r in self._results.items() if p >= done}
