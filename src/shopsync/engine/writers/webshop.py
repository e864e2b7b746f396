"""Writing into the webshop: creates with an ``Idempotency-Key``, updates with
``If-Match``, a batch at a time where the shop offers ``POST /{collection}/batch``.

Each answer is applied to its item: the record as the shop now holds it, or the
reason it was refused (put aside, rule 7), or a 412 (read again, decided again, written
again once), or a 404/410 on a linked record (the delete it is, rule 5). A dry run
uses :class:`DryWebshopWriter`, which only plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shopsync.config.model import Datatype
from shopsync.connectors.webshop import client as ws
from shopsync.engine.context import RunContext
from shopsync.engine.differ import Side, decide
from shopsync.engine.lines.travel import Travel
from shopsync.engine.model import MAX_SERVER_ERRORS, WEBCRM, WEBSHOP, Batch, Item
from shopsync.engine.pairing import Pairing
from shopsync.engine.planner import Planner
from shopsync.engine.policies import POLICIES
from shopsync.engine.recorder import Recorder
from shopsync.engine.streams import STREAMS
from shopsync.store import repo
from shopsync.store.models import Link


class WebshopWriter:
    def __init__(
        self,
        ctx: RunContext,
        pairing: Pairing,
        planner: Planner,
        recorder: Recorder,
        travel: Travel,
    ) -> None:
        self.ctx = ctx
        self.pairing = pairing
        self.planner = planner
        self.recorder = recorder
        self.travel = travel
        self._server_errors = 0

    def write_all(self, dt: Datatype, items: Sequence[Item]) -> None:
        """Write a batch's webshop side: creates and updates sent together, then each
        answer applied (a 412 is decided and written again, once)."""
        collection = STREAMS[dt].webshop_collection
        assert collection is not None
        self._send(dt, collection, items)
        for item in items:
            if item.shop_body is None:
                continue
            self.write(dt, collection, item)
            if item.retry and item.shop_id is not None:
                self._again(dt, collection, item)
            if POLICIES[dt].children is not None and item.shop_create and item.s_after:
                self._back_to_webcrm(item)

    def _send(self, dt: Datatype, collection: str, items: Sequence[Item]) -> None:
        """Send a batch's webshop creates and updates together, before they are applied.

        Creates record their intent (and idempotency key) first, committed before any
        request leaves. ``write_many`` uses the shop's ``POST /{collection}/batch`` where
        the shop offers it (a request per few hundred records) and single requests,
        several in flight, where it does not. Each create carries its idempotency key
        and each update its ``If-Match``, so a batch that is retried, or a run killed
        after it, writes nothing twice.
        """
        ctx = self.ctx
        creates = [(i, i.c_row.record_id) for i in items if i.shop_create and i.c_row is not None]
        if creates:
            keys = repo.intent_keys(ctx.session, dt.value, WEBCRM, [rid for _, rid in creates])
            for item, rid in creates:
                item.shop_key = keys[rid]
        ctx.commit()
        writes = [i for i in items if i.shop_body is not None]
        ops: list[ws.WriteOp] = []
        for item in writes:
            assert item.shop_body is not None
            if item.shop_create:
                assert item.shop_key is not None
                ops.append(ws.CreateOp(item.shop_body, item.shop_key))
            else:
                assert item.shop_id is not None
                ops.append(ws.UpdateOp(item.shop_id, item.shop_body, item.if_match))
        if not ops:
            return
        for item, outcome in zip(writes, ctx.webshop.write_many(collection, ops), strict=True):
            item.prefetched = (None, outcome) if isinstance(outcome, Exception) else (outcome, None)

    def write(self, dt: Datatype, collection: str, item: Item) -> None:
        """Apply one item's answer (or send it, when it was not sent with the batch)."""
        self._plan(dt, item)
        try:
            answer = self._answer(collection, item)
        except ws.WebshopPreconditionFailed:
            item.retry = True
        except (ws.WebshopValidationError, ws.WebshopConflict) as exc:
            if item.shop_create and self.travel.drop_refused_lines(item, exc):
                self.write(dt, collection, item)  # again, without those lines
                return
            self.recorder.put_aside_now(item, f"webshop refused: {exc}")
        except (ws.WebshopGone, ws.WebshopNotFound) as exc:
            if item.shop_create or item.link is None:
                raise  # POST /{collection} itself is missing: nothing works, stop
            self._vanished(dt, item, exc)
        except ws.WebshopAuthError:
            raise
        except ws.WebshopUnavailable as exc:
            if exc.status is None or self._server_errors >= MAX_SERVER_ERRORS:
                raise  # unreachable, or failing for every record: the run stops
            self._server_errors += 1
            self.recorder.put_aside_now(item, f"webshop failed: {exc}", retry=True)
        except ws.WebshopError as exc:  # an unexpected answer for this one record
            self.recorder.put_aside_now(item, f"webshop answered: {exc}")
        else:
            self._server_errors = 0
            item.s_after = answer
            item.shop_id = str(answer["id"])

    def _plan(self, dt: Datatype, item: Item) -> None:
        assert item.shop_body is not None
        label = item.shop_id or (item.crm_id and f"from webcrm:{item.crm_id}") or "?"
        action = "create" if item.shop_create else "update"
        fields = ", ".join(sorted(_flat(item.shop_body)))
        self.ctx.plan(dt, action, WEBSHOP, str(label), fields, item=item)

    def _answer(self, collection: str, item: Item) -> dict[str, Any]:
        assert item.shop_body is not None
        if item.prefetched is not None:
            answer, error = item.prefetched
            item.prefetched = None
            if error is not None:
                raise error
            assert answer is not None
            return answer
        webshop = self.ctx.webshop
        if item.shop_create:
            assert item.shop_key is not None
            return webshop.create(collection, item.shop_body, item.shop_key)
        assert item.shop_id is not None
        return webshop.update(collection, item.shop_id, item.shop_body, if_match=item.if_match)

    def _again(self, dt: Datatype, collection: str, item: Item) -> None:
        """After a 412: read the record again, decide again, write again (once)."""
        assert item.shop_id is not None
        fresh = self.pairing.fetch(dt, WEBSHOP, item.shop_id)
        item.retry = False
        item.s_after = None
        if fresh is None or item.link is None:
            return
        snap = repo.get_snapshot(self.ctx.session, item.link)
        item.s_raw = fresh  # the staged row (if any) is stale now; it still leaves
        item.shop_body = item.crm_body = None
        item.if_match = fresh.get("version")
        item.snapshot = snap.props if snap else None
        self.planner.plan_update(dt, item, Batch())
        if item.shop_body is not None:
            self.write(dt, collection, item)

    def _vanished(self, dt: Datatype, item: Item, exc: Exception) -> None:
        """A linked webshop record answers 404 (purged, no tombstone) or 410: deleted.

        It is handled as the delete it is (rule 5): a deletion is staged for it, which
        the next pass of this run applies as for a tombstone read from the change
        feed, and the rows of this change leave the inbox (the pair no longer syncs).
        """
        ctx = self.ctx
        assert item.link is not None and item.shop_id is not None
        item.refused = "gone"
        parent = ctx.session.get(Link, item.link.parent_id) if item.link.parent_id else None
        repo.stage(
            ctx.session, dt.value, WEBSHOP, item.shop_id, updated_at=datetime.now(UTC),
            data=None, deleted=True, parent_id=parent.webcrm_id if parent else None,
        )  # fmt: skip
        status = getattr(exc, "status", None)
        ctx.plan(
            dt, "gone", WEBSHOP, item.label,
            f"HTTP {status} on update: handled as deleted in the webshop", item=item,
        )  # fmt: skip
        ctx.another_pass = True
        self.recorder.discard([r for r in item.rows if r.system == WEBCRM])

    def _back_to_webcrm(self, item: Item) -> None:
        """After creating a webshop order, write its id (and totals) onto the opportunity."""
        assert item.s_after is not None and item.c_raw is not None
        ctx, dt = self.ctx, item.datatype
        mapping = ctx.maps[dt]
        d = decide(mapping, None, Side(item.c_raw, None), Side(item.s_after, None), ctx.binder)
        back = {n for n in d.to_webcrm if not mapping.by_name[n].direction.to_webshop}
        body = dict(item.crm_body or {})
        if back:
            body.update(mapping.to_webcrm(item.s_after, ctx.binder, back))
        POLICIES[dt].stamp(body)
        item.crm_body = body


class DryWebshopWriter(WebshopWriter):
    """A dry run's webshop writer: every write is planned, none is sent."""

    def write_all(self, dt: Datatype, items: Sequence[Item]) -> None:
        for item in items:
            if item.shop_body is not None:
                self._plan(dt, item)


def _flat(body: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in body.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"
