"""Writing into webCRM: one queue of updates and creates, sent in whole ``PATCH``
batches (the rate limit counts calls, not records).

Until a batch is answered its items' inbox rows stay put: a run killed here redoes
them, and the webshop side, already written, then compares equal and is not written
again. Creates commit their intent as their request leaves (:meth:`Creates.mark_sent`).
A dry run uses :class:`DryWebcrmWriter`, which only plans.
"""

from __future__ import annotations

from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.creates import Creates
from shopsync.engine.lines.travel import Travel
from shopsync.engine.model import WEBCRM, Batch, Item
from shopsync.engine.policies import POLICIES
from shopsync.engine.recorder import Recorder
from shopsync.engine.streams import STREAMS


class WebcrmWriter:
    def __init__(
        self, ctx: RunContext, creates: Creates, recorder: Recorder, travel: Travel
    ) -> None:
        self.ctx = ctx
        self.creates = creates
        self.recorder = recorder
        self.travel = travel
        self._queue: list[Item] = []

    def enqueue(self, item: Item) -> None:
        """Queue a write; :meth:`flush` sends it."""
        self._queue.append(item)

    def flush_full(self, dt: Datatype) -> None:
        """Send the whole batches queued so far (after a batch of rows was recorded)."""
        if len(self._queue) >= self.ctx.config.webcrm.batch_size:
            self.flush(dt, final=False)

    def flush(self, dt: Datatype, *, final: bool = True) -> None:
        """Send the queued writes in full PATCH batches, then record their outcome.

        Unless ``final``, only whole batches go and the rest stays queued, so no request
        carries a part batch before the end.
        """
        size = self.ctx.config.webcrm.batch_size
        cut = len(self._queue) if final else (len(self._queue) // size) * size
        items, self._queue = self._queue[:cut], self._queue[cut:]
        if not items:
            return
        self.write(dt, items)
        if POLICIES[dt].children is not None:
            new = [i for i in items if i.crm_create and i.refused is None]
            self.travel.lines_for_new_opportunities(new)
        batch = Batch()
        self.recorder.expect(dt, items)
        for item in items:
            if item.refused is None:
                self.recorder.record(dt, item, batch)
        self.recorder.discard(batch.done_rows)

    def write(self, dt: Datatype, items: list[Item]) -> None:
        stream = STREAMS[dt]
        records: list[dict[str, Any]] = []
        for item in items:
            assert item.crm_body is not None
            body = dict(item.crm_body)
            if not item.crm_create:
                assert item.crm_id is not None
                body[stream.webcrm_id_field] = int(item.crm_id)
            records.append(body)
            action = "create" if item.crm_create else "update"
            label = item.crm_id or f"from webshop:{item.shop_id}"
            fields = ", ".join(sorted(item.crm_body))
            self.ctx.plan(dt, action, WEBCRM, str(label), fields, item=item)
        self._send(dt, items, records)

    def _send(self, dt: Datatype, items: list[Item], records: list[dict[str, Any]]) -> None:
        def on_send(indices: range) -> None:
            self.creates.mark_sent(
                dt,
                [
                    (items[i].shop_id or "", records[i], items[i].s_raw)
                    for i in indices
                    if items[i].crm_create and items[i].shop_id
                ],
            )

        creates = any(item.crm_create for item in items)
        entity = STREAMS[dt].webcrm_entity
        results = self.ctx.webcrm.upsert(entity, records, on_send=on_send if creates else None)
        for result in results:
            item = items[result.index]
            if result.error is not None:
                if item.crm_create and item.shop_id:
                    self.creates.refused(dt, [item.shop_id])
                self.recorder.put_aside_now(item, f"webCRM refused: {result.error}")
                continue
            item.crm_sent = dict(records[result.index])
            if item.crm_create:
                item.crm_id = str(result.id)


class DryWebcrmWriter(WebcrmWriter):
    """A dry run's webCRM writer: every write is planned, none is sent."""

    def _send(self, dt: Datatype, items: list[Item], records: list[dict[str, Any]]) -> None:
        return None
