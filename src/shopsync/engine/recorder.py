"""The recorder: what a written item leaves in the state database, in one place.

Links (through the binder's tables), snapshots of the agreed values, rule-9 counts
(:meth:`RunContext.wrote`), put-aside entries and waiting reasons, and the inbox rows
that leave once their work is recorded. Single order lines are recorded by
:class:`~shopsync.engine.lines.recording.LineRecorder` (``Recorder.lines``). A dry run records nothing
(:class:`DryRecorder`): its rows only leave the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.differ import snapshot_after
from shopsync.engine.lines.recording import LineRecorder
from shopsync.engine.model import WEBCRM, WEBSHOP, Batch, Item, other
from shopsync.engine.policies import POLICIES
from shopsync.engine.streams import STREAMS, parse_time, webcrm_updated
from shopsync.store import deferred, repo
from shopsync.store.models import Link
from shopsync.store.rows import InboxEntry, LinkEntry

log = structlog.get_logger("shopsync.engine")


class Recorder:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.aside_seen: set[tuple[str, str, str]] = set()
        """(datatype, system, id) with a put-aside entry, seen while planning this run."""
        self.lines = LineRecorder(ctx)
        """Links, snapshots and put-aside entries of single order lines."""
        self._linked_now: set[tuple[str, str, str]] = set()
        """(datatype, system, id) linked in this run, not yet flushed to the database."""
        self._checked: dict[tuple[str, str], set[str]] = {}
        self._linked_before: dict[tuple[str, str], set[str]] = {}

    # ------------------------------------------------------------------ put aside
    def fingerprint(self, dt: Datatype, system: str, data: Mapping[str, Any]) -> str:
        mapping = self.ctx.maps[dt]
        values = mapping.webcrm_values(data) if system == WEBCRM else mapping.webshop_values(data)
        return repo.fingerprint(values)

    def put_aside(self, item: Item, reason: str, batch: Batch, *, retry: bool = False) -> None:
        """Set the record aside with ``reason`` until it changes (``retry``: every run).

        Its fingerprint is taken from the record as read (the staged row), not from
        ``c_raw``/``s_raw`` that planning may have completed (an assigned order number),
        so that the unchanged record is recognised as still put aside on the next run.
        """
        ctx, dt = self.ctx, item.datatype
        item.refused = reason
        row = item.c_row if item.source == WEBCRM else item.s_row
        data = item.c_raw if item.source == WEBCRM else item.s_raw
        if row is not None and row.data is not None:
            data = row.data
        rid = (item.crm_id if item.source == WEBCRM else item.shop_id) or (
            row.record_id if row else "?"
        )
        fp = "" if retry else self.fingerprint(dt, item.source, data or {})
        repo.put_aside(ctx.session, dt.value, item.source, rid, reason, fp, data)
        ctx.report.stats[dt].put_aside += 1
        ctx.plan(
            dt, "put-aside", other(item.source), f"{item.source}:{rid}", reason,
            data=data, system=item.source,
        )  # fmt: skip
        batch.done(*item.rows)
        batch.done(*item.line_rows)

    def put_aside_now(self, item: Item, reason: str, *, retry: bool = False) -> None:
        """:meth:`put_aside` after the item's batch was recorded: its rows leave now."""
        batch = Batch()
        self.put_aside(item, reason, batch, retry=retry)
        self.discard(batch.done_rows)

    def wait(self, batch: Batch, row: InboxEntry, reason: str) -> None:
        """The row stays in the inbox, with why (``status`` and ``check`` show it)."""
        batch.claim(row)
        if row.waiting_reason is None:
            self.ctx.plan(
                Datatype(row.datatype), "wait", "-", f"{row.system}:{row.record_id}", reason,
                data=row.data, system=row.system,
            )  # fmt: skip
        repo.set_waiting(self.ctx.session, row, reason)

    def discard(self, rows: Iterable[InboxEntry]) -> None:
        """Take rows whose work is done out of the inbox."""
        deferred.delete_inbox_rows(self.ctx.session, rows)

    # ---------------------------------------------------------------------- links
    def expect(self, dt: Datatype, items: Iterable[Item]) -> None:
        """Before recording ``items``: which of the ids they would link are linked
        already, in one query per side (instead of two per new link)."""
        wanted: dict[str, list[str]] = {WEBCRM: [], WEBSHOP: []}
        for item in items:
            if item.link is None and item.crm_id is not None and item.shop_id is not None:
                wanted[WEBCRM].append(item.crm_id)
                wanted[WEBSHOP].append(item.shop_id)
        for system, ids in wanted.items():
            key = (dt.value, system)
            self._checked[key] = set(ids)
            self._linked_before[key] = repo.linked_ids(self.ctx.session, dt.value, system, ids)

    def _linked(self, dt: Datatype, system: str, rid: str) -> bool:
        key = (dt.value, system)
        if (dt.value, system, rid) in self._linked_now:
            return True
        if rid in self._checked.get(key, ()):
            return rid in self._linked_before[key]
        return repo.link_by_id(self.ctx.session, dt.value, system, rid) is not None

    def linked_elsewhere(self, dt: Datatype, crm_id: str, shop_id: str) -> str | None:
        """Why ``crm_id`` ⇄ ``shop_id`` cannot be linked (one is linked already), or None."""
        for system, rid in ((WEBCRM, crm_id), (WEBSHOP, shop_id)):
            if self._linked(dt, system, rid):
                return (
                    f"{system} record {rid} is linked already; webcrm:{crm_id} ⇄ "
                    f"webshop:{shop_id} was not linked (a duplicate: please merge by hand)"
                )
        return None

    def record(self, dt: Datatype, item: Item, batch: Batch) -> None:
        """Record a written item: link, snapshot, counts; its rows leave the inbox."""
        if item.crm_id is None or item.shop_id is None:
            batch.done(*item.rows)
            return
        new = item.link is None
        link = item.link or self._new_link(dt, item, batch)
        if link is None:
            return
        self._count(dt, item)
        if link.state == "active":
            self._snapshot(dt, item, link)
        POLICIES[dt].after_write(self.ctx.binder, item)
        if POLICIES[dt].children is not None:
            self._order_written(item, repo.orm_link(self.ctx.session, link), new=new)
        self._release(dt, item)
        batch.done(*item.rows)

    def _new_link(self, dt: Datatype, item: Item, batch: Batch) -> Link | None:
        assert item.crm_id is not None and item.shop_id is not None
        clash = self.linked_elsewhere(dt, item.crm_id, item.shop_id)
        if clash is not None:
            # never a unique-key violation that fails the run after its writes (and
            # has the next run write them again): the pair is reported, not linked
            log.error("refusing a second link", datatype=dt.value, detail=clash)
            self.put_aside(item, clash, batch)
            return None
        self._linked_now.add((dt.value, WEBCRM, item.crm_id))
        self._linked_now.add((dt.value, WEBSHOP, item.shop_id))
        link = repo.add_link(
            self.ctx.session, dt.value, item.crm_id, item.shop_id, item.created_by, flush=False
        )
        item.link = link
        if item.created_by == "merge":
            self.ctx.report.stats[dt].linked_by_merge += 1
            how = (
                f"matched by {item.matched_by}" if item.matched_by else "matched by merge criteria"
            )
            self.ctx.plan(dt, "link", "-", item.label, how, item=item)
        return link

    def _count(self, dt: Datatype, item: Item) -> None:
        ctx = self.ctx
        assert item.crm_id is not None and item.shop_id is not None
        if item.shop_create:
            ctx.wrote(dt, WEBSHOP, "created")
            ctx.intent_spent(dt, WEBCRM, item.crm_id)
        elif item.shop_body is not None and item.s_after is not None:
            ctx.wrote(dt, WEBSHOP, "updated")
        if item.crm_create:
            ctx.wrote(dt, WEBCRM, "created")
            ctx.intent_spent(dt, WEBSHOP, item.shop_id)
        elif item.crm_sent:
            ctx.wrote(dt, WEBCRM, "updated")
        if item.shop_body is None and not item.crm_sent and not item.crm_create:
            ctx.report.stats[dt].unchanged += 1

    def _snapshot(self, dt: Datatype, item: Item, link: LinkEntry) -> None:
        s_now = item.s_after if item.s_after is not None else item.s_raw
        c_raw = {} if item.crm_create else item.c_raw  # a new record holds what was sent
        d = item.decision
        props = snapshot_after(
            self.ctx.maps[dt], item.snapshot, c_raw, s_now, item.crm_sent,
            c_values=d.c_values if d is not None and item.crm_body is None else None,
            s_values=d.s_values if d is not None and item.s_after is None else None,
        )  # fmt: skip
        version = s_now.get("version") if s_now else None
        repo.put_snapshot(
            self.ctx.session, link, props,
            webcrm_updated(STREAMS[dt], item.c_raw) if item.c_raw else None,
            parse_time(s_now.get("updated_at")) if s_now else None,
            version if isinstance(version, int) else None, known=item.snapshot_row,
        )  # fmt: skip

    def _release(self, dt: Datatype, item: Item) -> None:
        """A side's entry goes once that side's record was part of this item and synced
        (not when only the other side's re-read record passed through unchanged)."""
        for system, aside_id, row in (
            (WEBCRM, item.crm_id, item.c_row),
            (WEBSHOP, item.shop_id, item.s_row),
        ):
            seen = (dt.value, system, aside_id) in self.aside_seen
            if seen and aside_id is not None and (row is not None or item.source == system):
                repo.clear_put_aside(self.ctx.session, dt.value, system, aside_id)

    def _order_written(self, item: Item, link: Link, *, new: bool) -> None:
        """An order's lines: link those that travelled with it, and leave its lines to be
        reconciled after the orders (a row in the inbox says so until they are: a run
        that dies before then leaves the work for the next one, not forgotten). The row
        holds the order as it now stands, so its lines are reconciled without reading it
        again, and a large run does not hold every such order in memory until then.

        Reconciled are the lines of an order read from the shop's change feed (its lines
        may have changed: they travel inside it) and of a pair linked just now (a merge
        pairs their lines). An order written only because its opportunity changed keeps
        its lines as they were agreed: a shop edit of them since would have moved the
        order in the change feed (and failed our ``If-Match``), so it is read next time.
        """
        self.lines.link_travelled_lines(item, link)
        s_now = item.s_after if item.s_after is not None else item.s_raw
        changed = item.s_row is not None or new
        if (
            changed
            and link.state == "active"
            and not item.shop_create
            and s_now
            and "lines" in s_now
        ):
            assert item.shop_id is not None
            self.ctx.orders_with_lines.add(item.shop_id)
            repo.stage(
                self.ctx.session, Datatype.order_lines.value, WEBSHOP, item.shop_id,
                updated_at=None, data=s_now, parent_id=item.crm_id,
            )  # fmt: skip


class DryRecorder(Recorder):
    """A dry run's recorder: nothing was written, so nothing is linked or counted."""

    def record(self, dt: Datatype, item: Item, batch: Batch) -> None:
        batch.done(*item.rows)
