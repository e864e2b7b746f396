"""One linked order's lines, reconciled both ways (rules 3–7 for lines).

A webshop order holds its lines and is written as a whole; webCRM holds each line as
a QuotationLine. :class:`OrderLines` works in steps: the webCRM rows staged for the
opportunity (:meth:`~OrderLines.plan_webcrm`), the webshop lines not handled by them
(:meth:`~OrderLines.plan_webshop`), links whose webshop line is gone
(:meth:`~OrderLines.plan_removed`). :mod:`.write` then writes the order's lines to the
shop in one update and queues the webCRM side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.creates import Creates
from shopsync.engine.differ import Props, Side, decide
from shopsync.engine.mapping.base import MappingError
from shopsync.engine.mapping.merge import pair_lines
from shopsync.engine.model import WEBCRM, WEBSHOP, may_be_own_create, may_still_land
from shopsync.engine.recorder import Recorder
from shopsync.engine.streams import STREAMS, parse_time, webcrm_updated
from shopsync.store import repo
from shopsync.store.models import InboxRecord, Link

LINES = Datatype.order_lines
Line = dict[str, Any]


@dataclass
class _Plan:
    """What one order's reconciliation decided, step by step."""

    new_list: list[Line]
    """The order's lines as they will be written to the shop."""
    shop_changed: bool = False
    crm_updates: list[tuple[Link, Line, Line | None, Line]] = field(default_factory=list)
    """(link, body, webCRM line or None, webshop line) to update in webCRM."""
    crm_creates: list[tuple[Line, Line]] = field(default_factory=list)
    """(body, webshop line) to create in webCRM."""
    crm_deletes: list[Link] = field(default_factory=list)
    appended: list[tuple[Line, Line]] = field(default_factory=list)
    """(webCRM line, the new shop line made from it)."""
    handled: set[str] = field(default_factory=set)
    """Webshop line ids already handled by a webCRM row."""
    done_rows: list[InboxRecord] = field(default_factory=list)
    snapshots: list[tuple[Link, Props | None, Line | None, str]] = field(default_factory=list)
    """Links whose snapshot is refreshed from the order as written (nothing to send)."""
    changed_by: dict[int, tuple[InboxRecord, Line | None]] = field(default_factory=dict)
    """id() of a line in ``new_list`` → (the webCRM row that changed it, the line before;
    None for a line added): a refused line is put aside without its neighbours."""
    waiting: str | None = None
    """Why a line of the order waits for an interrupted webCRM create to be settled:
    the order is not reconciled until it is."""
    crm_landing: bool = False
    """A webCRM line of the order may be a create of ours landing: the order's
    unlinked webshop lines wait with it (one of them may be what it pairs with)."""


class OrderLines:
    def __init__(
        self,
        ctx: RunContext,
        recorder: Recorder,
        creates: Creates,
        order_link: Link,
        shop_raw: dict[str, Any],
    ) -> None:
        self.ctx, self.recorder, self.creates = ctx, recorder, creates
        self.order_link, self.shop_raw = order_link, shop_raw
        self.opp_id = order_link.webcrm_id
        self.mapping = ctx.maps[LINES]
        self.stats = ctx.report.stats[LINES]
        self.shop_lines: list[Line] = [dict(x) for x in shop_raw.get("lines") or []]
        self.by_shop = {str(x["id"]): x for x in self.shop_lines if x.get("id") is not None}
        children = repo.children(ctx.session, order_link)
        self.links = {ln.webcrm_id: ln for ln in children if ln.state == "active"}
        self.links_by_shop = {ln.webshop_id: ln for ln in self.links.values()}
        self.share_shop = ctx.share(LINES, WEBSHOP).enabled
        self.share_crm = ctx.share(LINES, WEBCRM).enabled
        self.p = _Plan(new_list=[dict(x) for x in self.shop_lines])
        self.now_by_id: dict[str, Line] = {}
        self.shop_now: dict[str, Any] = shop_raw
        """The order as the shop holds it after :meth:`write_webshop`."""
        self.records: list[Line] = []
        self._sources: dict[int, Line] = {}

    # ------------------------------------------------------------------ webCRM rows
    def plan_webcrm(self, rows: Sequence[InboxRecord]) -> None:
        """Each staged webCRM line: deleted, unchanged and put aside, linked, or new."""
        candidates: list[InboxRecord] = []
        for row in rows:
            link = self.links.get(row.record_id)
            if row.deleted:
                self._deleted_in_webcrm(row, link)
            elif self.recorder.lines.line_still_aside(WEBCRM, row.record_id, row.data):
                self.p.done_rows.append(row)  # put aside and unchanged: not retried (rule 7)
            elif link is not None:
                self._linked_row(row, link)
            elif self.creates.may_be_landing(LINES, row.data or {}):
                row.waiting_reason = may_be_own_create(self.creates.longest_wait(LINES))
                self.p.waiting, self.p.crm_landing = row.waiting_reason, True
            else:
                candidates.append(row)
        self._new_in_webcrm(candidates)

    def _deleted_in_webcrm(self, row: InboxRecord, link: Link | None) -> None:
        p = self.p
        if link is not None and link.webshop_id in self.by_shop and self.share_shop:
            p.new_list = [x for x in p.new_list if str(x.get("id")) != link.webshop_id]
            p.shop_changed = True
            p.handled.add(link.webshop_id)
            self.stats.deleted += 1
            self.ctx.plan(LINES, "delete", WEBSHOP, link.webshop_id, "line deleted in webCRM")
        if link is not None:
            link.state = "webcrm_deleted"
        p.done_rows.append(row)

    def _linked_row(self, row: InboxRecord, link: Link) -> None:
        p, ctx = self.p, self.ctx
        assert row.data is not None
        s_line = self.by_shop.get(link.webshop_id)
        p.handled.add(link.webshop_id)
        p.done_rows.append(row)
        if s_line is None:  # deleted in the webshop (the order no longer has it)
            if self.share_crm:
                p.crm_deletes.append(link)
            link.state = "webshop_deleted"
            return
        snap = repo.get_snapshot(ctx.session, link)
        prev = snap.props if snap else None
        c = Side(row.data, webcrm_updated(STREAMS[LINES], row.data))
        s = Side(s_line, parse_time(self.shop_raw.get("updated_at")))
        d = decide(self.mapping, prev, c, s, ctx.binder)
        self.stats.conflicts += len(d.conflicts)
        for prop, winner in sorted(d.conflicts.items()):
            detail = f"{prop}: {winner} was edited last"
            ctx.plan(LINES, "conflict", winner, f"webcrm:{row.record_id}", detail)
        try:
            if d.to_webshop and self.share_shop:
                patch = self.mapping.to_webshop(row.data, ctx.binder, d.to_webshop)
                for target in p.new_list:
                    if str(target.get("id")) == link.webshop_id:
                        p.changed_by[id(target)] = (row, dict(target))
                        target.update(patch)
                p.shop_changed = True
                fields = ", ".join(sorted(d.to_webshop))
                ctx.plan(LINES, "update", WEBSHOP, link.webshop_id, fields)
            if d.to_webcrm and self.share_crm:
                body = self.mapping.to_webcrm(s_line, ctx.binder, d.to_webcrm)
                p.crm_updates.append((link, body, row.data, s_line))
            else:
                if not d.to_webshop:
                    self.stats.unchanged += 1
                p.snapshots.append((link, prev, row.data, link.webshop_id))
        except MappingError as exc:
            self.recorder.lines.put_aside_line(WEBCRM, row.record_id, str(exc), row.data)

    def _new_in_webcrm(self, rows: Sequence[InboxRecord]) -> None:
        """webCRM lines not linked yet: each pairs with an unlinked webshop line by
        :func:`pair_lines` (sku or description, and occurrence), or is added."""
        unlinked = [x for x in self.shop_lines if str(x.get("id")) not in self.links_by_shop]
        pairing = pair_lines(self.ctx.config, [r.data or {} for r in rows], unlinked)
        matches = {id(crm): shop for crm, shop in pairing.pairs}
        for row in rows:
            assert row.data is not None
            match = matches.get(id(row.data))
            self.p.done_rows.append(row)
            if match is not None:
                self._merge(row, dict(match))
            elif self.share_shop:
                self._add_to_shop(row)

    def _merge(self, row: InboxRecord, match: Line) -> None:
        self.p.handled.add(str(match["id"]))
        self.links[row.record_id] = self.recorder.lines.link_line(
            self.order_link, row.record_id, str(match["id"]), "merge", row.data, match, {}
        )
        self.stats.linked_by_merge += 1

    def _add_to_shop(self, row: InboxRecord) -> None:
        assert row.data is not None
        try:
            new_line = self.mapping.to_webshop(row.data, self.ctx.binder)
        except MappingError as exc:
            self.recorder.lines.put_aside_line(WEBCRM, row.record_id, str(exc), row.data)
            return
        p = self.p
        p.new_list.append(new_line)
        p.appended.append((row.data, new_line))
        p.changed_by[id(new_line)] = (row, None)
        p.shop_changed = True
        detail = f"order {self.order_link.webshop_id}"
        self.ctx.plan(LINES, "create", WEBSHOP, f"from webcrm:{row.record_id}", detail)

    # ----------------------------------------------------------------- webshop lines
    def plan_webshop(self) -> None:
        """Webshop lines not handled by a webCRM row: edits and additions."""
        org_id = self._organisation()
        for s_line in self.shop_lines:
            sid = str(s_line.get("id"))
            if sid in self.p.handled:
                continue
            link = self.links_by_shop.get(sid)
            if link is not None:
                self._edited_in_shop(link, s_line, sid)
            elif self.share_crm:
                self._new_in_shop(s_line, sid, org_id)

    def _edited_in_shop(self, link: Link, s_line: Line, sid: str) -> None:
        ctx = self.ctx
        snap = repo.get_snapshot(ctx.session, link)
        prev = snap.props if snap else None
        d = decide(self.mapping, prev, None, Side(s_line, None), ctx.binder)
        if not (d.to_webcrm and self.share_crm):
            self.p.snapshots.append((link, prev, None, sid))
            return
        try:
            body = self.mapping.to_webcrm(s_line, ctx.binder, d.to_webcrm)
        except MappingError as exc:
            self.recorder.lines.put_aside_line(WEBSHOP, sid, str(exc), s_line)
            return
        self.p.crm_updates.append((link, body, None, s_line))

    def _new_in_shop(self, s_line: Line, sid: str, org_id: str | None) -> None:
        ctx = self.ctx
        left = self.creates.unsettled.get(LINES, {}).get(sid)
        if left is not None:  # its own create may still land
            self.p.waiting = may_still_land(left)
        if left is not None or self.p.crm_landing:
            # (or a webCRM line of the order that may be such a create waits): created
            # now, it could be made twice
            ctx.plan(LINES, "wait", "-", f"webshop:{sid}", self.p.waiting or "")
            return
        if self.recorder.lines.line_still_aside(WEBSHOP, sid, s_line):
            return
        try:
            body = self.mapping.to_webcrm(s_line, ctx.binder)
        except MappingError as exc:
            self.recorder.lines.put_aside_line(WEBSHOP, sid, str(exc), s_line)
            return
        body["QuotationLineOpportunityId"] = int(self.opp_id)
        if org_id is not None:
            body["QuotationLineOrganisationId"] = int(org_id)
        self.p.crm_creates.append((body, s_line))
        detail = f"opportunity {self.opp_id}"
        ctx.plan(LINES, "create", WEBCRM, f"from webshop line {sid}", detail)

    def _organisation(self) -> str | None:
        customer = self.shop_raw.get("customer_id")
        if customer is None:
            return None
        return self.ctx.binder.webcrm_id(Datatype.customers, str(customer))

    def plan_removed(self) -> None:
        """Linked lines the webshop order no longer has: deleted in the shop."""
        p = self.p
        kept = {str(x.get("id")) for x in p.new_list}
        for link in list(self.links.values()):
            if link.state != "active" or link.webshop_id in self.by_shop:
                continue
            if link.webshop_id in p.handled or link.webshop_id in kept:
                continue
            if self.share_crm:
                p.crm_deletes.append(link)
            link.state = "webshop_deleted"

    def reconciled(self) -> None:
        """This order's lines are reconciled: its reminder leaves the inbox. When one of
        its webshop lines waits for an interrupted create to settle, the reminder stays,
        waiting, so the order is reconciled again: a create found lost then goes again
        (no shop edit of the order would bring it back)."""
        if self.p.waiting is None:
            reconciled(self.ctx, self.order_link.webshop_id)
            return
        ctx, shop_id = self.ctx, self.order_link.webshop_id
        row = repo.inbox_get(ctx.session, LINES.value, WEBSHOP, shop_id)
        if row is None:
            repo.stage(
                ctx.session, LINES.value, WEBSHOP, shop_id,
                updated_at=None, data=None, parent_id=self.order_link.webcrm_id,
            )  # fmt: skip
            ctx.session.flush()
            row = repo.inbox_get(ctx.session, LINES.value, WEBSHOP, shop_id)
        assert row is not None
        row.waiting_reason = self.p.waiting

    def plan_dry(self) -> None:
        for link in self.p.crm_deletes:
            detail = "line deleted in the webshop"
            self.ctx.plan(LINES, "delete", WEBCRM, link.webcrm_id, detail)


def reconciled(ctx: RunContext, shop_order_id: str) -> None:
    """An order's lines are reconciled: its reminder row leaves the inbox."""
    row = repo.inbox_get(ctx.session, LINES.value, WEBSHOP, shop_order_id)
    if row is not None:
        ctx.session.delete(row)
