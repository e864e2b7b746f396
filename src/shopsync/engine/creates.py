"""Interrupted creates: what a run that died mid-create left, settled before anything
of that datatype is sent again (exactly once, ``docs/sync-engine.md``).

webCRM creates commit an intent just before their PATCH leaves
(:meth:`Creates.mark_sent`); a later run asks webCRM what landed since
(:meth:`Creates.resolve`) and links what it finds (:mod:`engine.intents` pairs them).
Webshop creates carry an ``Idempotency-Key``: their source record, still in the inbox,
sends the same create again; until it has, new webshop records created since may be
those creates and wait (:meth:`Creates.open_webshop_creates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from shopsync.config.model import Datatype
from shopsync.engine import intents
from shopsync.engine.context import RunContext
from shopsync.engine.differ import snapshot_after
from shopsync.engine.model import WEBCRM, WEBSHOP
from shopsync.engine.recorder import Recorder
from shopsync.engine.streams import STREAMS, parse_time, webcrm_created
from shopsync.store import repo

log = structlog.get_logger("shopsync.engine")

SentCreate = tuple[str, dict[str, Any], Mapping[str, Any] | None]
"""``(webshop id, body sent, the webshop record it came from)``."""


class Creates:
    def __init__(self, ctx: RunContext, recorder: Recorder) -> None:
        self.ctx = ctx
        self.recorder = recorder
        self.unsettled: dict[Datatype, dict[str, float]] = {}
        """Per datatype, webshop ids whose webCRM create may still land (seconds left)."""
        self._landing_since: dict[Datatype, datetime] = {}
        """Per datatype with unsettled creates: a new webCRM record created since this
        may be one of them landing, so it is not taken for a new record yet."""
        self.replays_since: datetime | None = None
        """In this pass: new webshop records created since may be interrupted creates of
        ours being redone (see :meth:`open_webshop_creates`)."""

    def resolve(self, dt: Datatype) -> None:
        """Settle the webCRM creates of ``dt`` whose answer was never recorded, by asking
        webCRM what landed, before anything of ``dt`` is sent (``engine/intents.py``)."""
        ctx = self.ctx
        rows = repo.sent_intents(ctx.session, dt.value)
        if not rows:
            return
        linked = repo.linked_ids(ctx.session, dt.value, WEBSHOP, [r.record_id for r in rows])
        if linked:  # linked since (by the merge criteria): nothing left to find out
            repo.clear_intents_many(ctx.session, dt.value, WEBSHOP, sorted(linked))
            rows = [r for r in rows if r.record_id not in linked]
            if not rows:
                ctx.commit()
                return
        sent: dict[str, intents.Sent] = {}
        sources: dict[str, dict[str, Any] | None] = {}
        for row in rows:
            payload = row.payload or {}
            when = repo.as_utc(row.sent_at)
            assert when is not None
            sent[row.record_id] = intents.Sent(row.record_id, payload.get("sent") or {}, when)
            sources[row.record_id] = payload.get("source")
        bound = ctx.config.webcrm.timeout_seconds + 1.0
        ready, pending = intents.split_by_age(sent.values(), datetime.now(UTC), bound)
        self.unsettled[dt] = pending
        if pending:
            self._landing_since[dt] = intents.since(
                [i for i in sent.values() if i.webshop_id in pending]
            )
        if not ready:
            return
        stream = STREAMS[dt]
        landed = [
            rec
            for page in ctx.webcrm.iter_created_since(stream.webcrm_entity, intents.since(ready))
            for rec in page
        ]
        ids = [str(rec.get(stream.webcrm_id_field)) for rec in landed]
        taken = repo.linked_ids(ctx.session, dt.value, WEBCRM, ids)
        found = intents.pair(dt, ready, landed, stream.webcrm_id_field, taken)
        for shop_id, record in found.landed.items():
            self._link_landed(dt, shop_id, record, sent[shop_id].body, sources[shop_id])
        repo.unsend_intents(ctx.session, dt.value, found.lost)
        log.info(
            "resolved interrupted webCRM creates", datatype=dt.value,
            landed=len(found.landed), lost=len(found.lost), pending=len(pending),
        )  # fmt: skip
        ctx.commit()

    def _link_landed(
        self,
        dt: Datatype,
        shop_id: str,
        record: dict[str, Any],
        sent: Mapping[str, Any],
        source: Mapping[str, Any] | None,
    ) -> None:
        """A create that landed although its answer was lost: link it as the answer would
        have, with the snapshot of what was sent."""
        ctx = self.ctx
        crm_id = str(record[STREAMS[dt].webcrm_id_field])
        if dt is Datatype.order_lines:
            parent_id = str(sent.get("QuotationLineOpportunityId"))
            parent = repo.link_by_webcrm(ctx.session, Datatype.orders.value, parent_id)
            if parent is None or source is None:
                return  # its order is not linked yet: resolved again next time
            if repo.link_by_webshop(ctx.session, dt.value, shop_id) is None:
                self.recorder.lines.link_line(
                    parent, crm_id, shop_id, WEBSHOP, record, source, sent
                )
        elif repo.link_by_webshop(ctx.session, dt.value, shop_id) is None:
            link = repo.add_link(ctx.session, dt.value, crm_id, shop_id, WEBSHOP, flush=True)
            props = snapshot_after(ctx.maps[dt], None, {}, source, sent)
            version = source.get("version") if source else None
            repo.put_snapshot(
                ctx.session, link, props, None,
                parse_time(source.get("updated_at")) if source else None,
                version if isinstance(version, int) else None,
            )  # fmt: skip
        ctx.intent_spent(dt, WEBSHOP, shop_id)
        ctx.wrote(dt, WEBCRM, "created")
        ctx.plan(dt, "create", WEBCRM, crm_id, f"landed before an interruption (webshop {shop_id})")

    def open_webshop_creates(self, dt: Datatype) -> None:
        """Since when new webshop records may be our own creates from an interrupted run
        (:attr:`replays_since`, for this pass).

        A webshop create is idempotent: its source record, still in the inbox, sends it
        again with the same key and gets the same record back, then links it. Until that
        is done (this pass), a new webshop record created since the oldest such intent is
        not taken for a record of its own (it would be created in webCRM a second time);
        it waits for the next pass, where it is found linked. Intents whose source is no
        longer in the inbox are spent and dropped.
        """
        ctx = self.ctx
        self.replays_since = None
        if ctx.dry_run:
            return
        open_ = repo.open_intents(ctx.session, dt.value, WEBCRM)
        if not open_:
            return
        queued = set(repo.inbox_record_ids(ctx.session, dt.value, WEBCRM))
        spent = [rid for rid, _ in open_ if rid not in queued]
        if spent:
            repo.clear_intents_many(ctx.session, dt.value, WEBCRM, spent)
            ctx.commit()
        times = [when for rid, when in open_ if rid in queued]
        self.replays_since = min(times) - intents.SKEW if times else None

    def may_be_replay(self, data: Mapping[str, Any]) -> bool:
        """Whether a new webshop record may be one of our creates being redone."""
        if self.replays_since is None:
            return False
        created = parse_time(data.get("created_at"))
        return created is None or created >= self.replays_since

    def may_be_landing(self, dt: Datatype, data: Mapping[str, Any]) -> bool:
        """Whether an unlinked webCRM record may be an interrupted create of ours that
        landed (and so must not be taken for a new record until that is resolved)."""
        since = self._landing_since.get(dt)
        if since is None:
            return False
        created = webcrm_created(STREAMS[dt], data)
        return created is None or created >= since

    def longest_wait(self, dt: Datatype) -> float:
        return max(self.unsettled.get(dt, {}).values(), default=0.0)

    def mark_sent(self, dt: Datatype, sent: Sequence[SentCreate]) -> None:
        """Commit that these webCRM creates leave now."""
        if sent:
            repo.mark_sent(
                self.ctx.session, dt.value,
                [(sid, {"sent": body, "source": source}) for sid, body, source in sent],
                datetime.now(UTC),
            )  # fmt: skip
            self.ctx.commit()

    def refused(self, dt: Datatype, shop_ids: Sequence[str]) -> None:
        """webCRM refused these creates: nothing landed, nothing to resolve later."""
        repo.unsend_intents(self.ctx.session, dt.value, list(shop_ids))
