"""Writing one order's reconciled lines: the order's lines to the shop in one update
(a refused line put aside and the rest written without it), then the webCRM updates and
creates through the :class:`~engine.lines.queue.LineQueue`, whose answers
:meth:`OrderLineWrites.finish` records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shopsync.connectors.webshop import client as ws
from shopsync.engine.lines.reconcile import LINES, Line, OrderLines
from shopsync.engine.lines.travel import refused_lines
from shopsync.engine.model import WEBCRM, WEBSHOP
from shopsync.engine.ports import UpsertOutcome
from shopsync.store import repo
from shopsync.store.models import Link


class OrderLineWrites(OrderLines):
    """:class:`OrderLines` planned, then written (one order's :class:`LineWork`)."""

    # --------------------------------------------------------------------- writing
    def write_webshop(self) -> bool:
        """Write the order's lines as a whole; False when nothing more is to be done
        for this order now (it changed meanwhile, or the shop refused it)."""
        p = self.p
        shop_now = self.shop_raw
        if p.shop_changed:
            try:
                shop_now = self._update_lines()
            except ws.WebshopPreconditionFailed:
                return False  # the order changed meanwhile: the rows stay for the next pass
            except (ws.WebshopValidationError, ws.WebshopConflict) as exc:
                self._refused_whole(exc)
                return False
        self._written(shop_now)
        return True

    def _update_lines(self) -> dict[str, Any]:
        p, ctx = self.p, self.ctx
        version = self.shop_raw.get("version")
        if_match = version if isinstance(version, int) else None
        order_id = self.order_link.webshop_id
        try:
            return ctx.webshop.update("orders", order_id, {"lines": p.new_list}, if_match=if_match)
        except (ws.WebshopValidationError, ws.WebshopConflict) as exc:
            if not self._set_aside_refused(exc):
                raise
            p.appended[:] = [a for a in p.appended if any(a[1] is x for x in p.new_list)]
            if p.new_list == self.shop_lines:  # every change was refused
                return self.shop_raw
            return ctx.webshop.update("orders", order_id, {"lines": p.new_list}, if_match=if_match)

    def _set_aside_refused(self, exc: Exception) -> bool:
        """When every error names a line this run added or changed, put those lines
        aside, take them out of the list (an added line) or undo their change, and
        answer True so the rest is written without them (rule 7)."""
        p = self.p
        by_index = refused_lines(exc)
        if by_index is None or any(
            i >= len(p.new_list) or id(p.new_list[i]) not in p.changed_by for i in by_index
        ):
            return False
        dropped: set[int] = set()
        for index, texts in sorted(by_index.items()):
            target = p.new_list[index]
            row, before = p.changed_by.pop(id(target))
            reason = "webshop refused: " + "; ".join(texts)
            self.recorder.lines.put_aside_line(
                WEBCRM, row.record_id, reason, row.data, target=WEBSHOP
            )
            if before is None:
                dropped.add(id(target))
            else:
                target.clear()
                target.update(before)
                # the snapshot stays as it was: the change is seen again when retried
                sid = str(before.get("id"))
                p.snapshots[:] = [x for x in p.snapshots if x[3] != sid]
        p.new_list[:] = [x for x in p.new_list if id(x) not in dropped]
        return True

    def _refused_whole(self, exc: Exception) -> None:
        """The shop refused the order's lines for a reason no line alone explains."""
        for row in self.p.done_rows:
            if row.data is not None:
                self.recorder.lines.put_aside_line(
                    WEBCRM, row.record_id, f"webshop refused: {exc}", row.data
                )
        self.recorder.discard(self.p.done_rows)
        self.reconciled()

    def _written(self, shop_now: dict[str, Any]) -> None:
        """Count and link what the shop now holds; the webCRM side is queued next."""
        p, ctx = self.p, self.ctx
        self.shop_now = shop_now
        updated = sum(1 for _row, before in p.changed_by.values() if before is not None)
        ctx.wrote(LINES, WEBSHOP, "updated", updated)  # additions are counted below
        for row in p.done_rows:  # a line put aside before and now through: no longer aside
            entry = repo.get_put_aside(ctx.session, LINES.value, WEBCRM, row.record_id)
            if entry is not None and entry.fingerprint != repo.fingerprint(row.data):
                repo.clear_put_aside(ctx.session, LINES.value, WEBCRM, row.record_id)
        now_lines = shop_now.get("lines") or []
        fresh = [x for x in now_lines if str(x.get("id")) not in self.by_shop]
        for (crm_raw, _sent), shop_line in zip(p.appended, fresh, strict=False):
            self.recorder.lines.link_line(
                self.order_link, str(crm_raw["QuotationLineId"]), str(shop_line["id"]),
                WEBCRM, crm_raw, shop_line, {},
            )  # fmt: skip
            ctx.wrote(LINES, WEBSHOP, "created")
        self.now_by_id = {str(x.get("id")): x for x in now_lines}
        self.records = [
            {**body, "QuotationLineId": int(link.webcrm_id)} for link, body, _, _ in p.crm_updates
        ]
        for body, s_line in p.crm_creates:
            self.records.append(body)
            self._sources[id(body)] = s_line

    # ------------------------------------------------------------- webCRM answers
    def source_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        return self._sources.get(id(record))

    def finish(self, results: Sequence[UpsertOutcome]) -> None:
        """After the batched PATCH: links, snapshots, deletes; the rows leave the inbox."""
        n_upd = len(self.p.crm_updates)
        for r in results:
            if r.index < n_upd:
                self._updated(r, *self.p.crm_updates[r.index])
            else:
                self._created(r, *self.p.crm_creates[r.index - n_upd])
        for link in self.p.crm_deletes:
            self.ctx.webcrm.delete("QuotationLine", int(link.webcrm_id))
            self.stats.deleted += 1
            detail = "line deleted in the webshop"
            self.ctx.plan(LINES, "delete", WEBCRM, link.webcrm_id, detail)
        for link, prev, c_raw, sid in self.p.snapshots:
            s_line = self.now_by_id.get(sid)
            if s_line is not None:
                self.recorder.lines.line_snapshot(link, prev, c_raw, s_line, {})
        self.recorder.discard(self.p.done_rows)
        self.reconciled()

    def _updated(
        self, r: UpsertOutcome, link: Link, body: Line, c_raw: Line | None, s_line: Line
    ) -> None:
        if r.error is not None:
            reason = f"webCRM refused: {r.error}"
            self.recorder.lines.put_aside_line(WEBSHOP, link.webshop_id, reason, s_line)
            return
        snap = repo.get_snapshot(self.ctx.session, link)
        now = self.now_by_id.get(link.webshop_id, s_line)
        self.recorder.lines.line_snapshot(link, snap.props if snap else None, c_raw, now, body)
        self.ctx.wrote(LINES, WEBCRM, "updated")
        self.ctx.plan(LINES, "update", WEBCRM, link.webcrm_id, ", ".join(sorted(body)))

    def _created(self, r: UpsertOutcome, body: Line, s_line: Line) -> None:
        sid = str(s_line.get("id"))
        if r.error is not None or r.id is None:
            self.creates.refused(LINES, [sid])
            self.recorder.lines.put_aside_line(WEBSHOP, sid, f"webCRM refused: {r.error}", s_line)
            return
        self.ctx.intent_spent(LINES, WEBSHOP, sid)
        self.recorder.lines.link_line(
            self.order_link, str(r.id), sid, WEBSHOP, {**body, "QuotationLineId": r.id},
            s_line, body,
        )  # fmt: skip
        self.ctx.wrote(LINES, WEBCRM, "created")
