"""Order lines of linked orders, after the orders: which orders need their lines
reconciled, and each one reconciled (:class:`OrderLines`)."""

from __future__ import annotations

from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.creates import Creates
from shopsync.engine.differ import Side, decide, snapshot_after
from shopsync.engine.lines.queue import LineQueue
from shopsync.engine.lines.reconcile import reconciled
from shopsync.engine.lines.write import OrderLineWrites
from shopsync.engine.mapping.base import MappingError, Unresolved
from shopsync.engine.model import WEBCRM, WEBSHOP
from shopsync.engine.pairing import Pairing
from shopsync.engine.policies import POLICIES
from shopsync.engine.recorder import Recorder
from shopsync.engine.streams import parse_time
from shopsync.store import repo
from shopsync.store.models import Link

LINES = Datatype.order_lines
ORDERS = Datatype.orders
COMMIT_EVERY = 50
"""Orders whose lines are reconciled per transaction."""
ECHO_COMMIT_EVERY = 200
"""Opportunities whose staged lines are checked for echoes per transaction (the session
holds each deleted row until its commit: one commit for all of them held every line the
echo pass read)."""


class LineProcessor:
    def __init__(
        self, ctx: RunContext, pairing: Pairing, recorder: Recorder, creates: Creates
    ) -> None:
        self.ctx = ctx
        self.pairing = pairing
        self.recorder = recorder
        self.creates = creates
        self.queue = LineQueue(ctx, creates)

    def process(self) -> None:
        """Per linked order with staged lines or a changed order, reconcile its lines."""
        ctx = self.ctx
        self.recorder.lines.new_lines.clear()
        due = self._orders_due()
        ctx.commit()
        for n, (_, shop_id) in enumerate(sorted(due.items()), start=1):
            self._reconcile_due(shop_id)
            if n % COMMIT_EVERY == 0:
                ctx.commit()
                ctx.progress(LINES, "synced", n)
        self.queue.flush()
        ctx.commit()

    def _orders_due(self) -> dict[str, str]:
        """Opportunity id → webshop order id for every linked order whose lines changed
        on either side; lines of unlinked opportunities wait. Ids only: a run over many
        orders holds neither their links nor the orders until each one's turn."""
        ctx, s = self.ctx, self.ctx.session
        due: dict[str, str] = {}
        for shop_id in repo.inbox_record_ids(s, LINES.value, WEBSHOP):
            link = repo.link_by_webshop(s, ORDERS.value, shop_id)
            if link is not None and link.state == "active":
                due[link.webcrm_id] = shop_id
            else:
                reconciled(ctx, shop_id)
        for n, opp_id in enumerate(repo.inbox_parents(s, LINES.value, WEBCRM), start=1):
            if n % ECHO_COMMIT_EVERY == 0:
                ctx.commit()  # the echoes' rows go for good: the session lets them go too
            if opp_id in due:
                continue
            link = repo.link_by_webcrm(s, ORDERS.value, opp_id)
            if link is not None and link.state == "active":
                if not self._echo_only(opp_id):
                    due[opp_id] = link.webshop_id
            elif link is not None:  # the order was deleted: its lines have nowhere to go
                self.recorder.discard(repo.inbox_children(s, LINES.value, WEBCRM, opp_id))
            else:
                self._wait_for_order(opp_id)
        return due

    def _reconcile_due(self, shop_id: str) -> None:
        """Reconcile the lines of a due order: with the order its reminder row holds when
        this run staged it (:meth:`Recorder._order_written`), else read afresh."""
        s = self.ctx.session
        link = repo.link_by_webshop(s, ORDERS.value, shop_id)
        if link is None:  # unlinked since (another worker): nothing to reconcile with
            reconciled(self.ctx, shop_id)
            return
        shop_raw = None
        if shop_id in self.ctx.orders_with_lines:
            row = repo.inbox_get(s, LINES.value, WEBSHOP, shop_id)
            shop_raw = row.data if row is not None else None
        self.reconcile(link, shop_raw)

    def _wait_for_order(self, opp_id: str) -> None:
        reason = f"waiting for opportunity {opp_id} to be linked to an order"
        for row in repo.inbox_children(self.ctx.session, LINES.value, WEBCRM, opp_id):
            if row.waiting_reason is None:
                where = f"webcrm:{row.record_id}"
                self.ctx.plan(LINES, "wait", "-", where, reason, data=row.data)
            row.waiting_reason = reason

    def _echo_only(self, opp_id: str) -> bool:
        """True when an opportunity's staged lines are all linked and unchanged.

        They are then our own writes (or re-reads of the overlap window) coming back;
        the rows leave the inbox without fetching the webshop order.
        """
        ctx, s = self.ctx, self.ctx.session
        mapping = ctx.maps[LINES]
        rows = repo.inbox_children(s, LINES.value, WEBCRM, opp_id)
        for row in rows:
            if row.deleted or row.data is None:
                return False
            link = repo.link_by_webcrm(s, LINES.value, row.record_id)
            if link is None or link.state != "active":
                return False
            snap = repo.get_snapshot(s, link)
            if snap is None:
                return False
            values = mapping.webcrm_values(row.data)
            if any(snap.props.get(name, {}).get("c") != value for name, value in values.items()):
                return False
        self.recorder.discard(rows)
        ctx.report.stats[LINES].unchanged += len(rows)
        return True

    def reconcile(self, order_link: Link, shop_raw: dict[str, Any] | None) -> None:
        """One order's lines: plan both sides, write the shop's, queue webCRM's."""
        if shop_raw is None or "lines" not in shop_raw:
            shop_raw = self.pairing.fetch(ORDERS, WEBSHOP, order_link.webshop_id)
            if shop_raw is None:
                reconciled(self.ctx, order_link.webshop_id)
                return
        work = OrderLineWrites(self.ctx, self.recorder, self.creates, order_link, shop_raw)
        rows = repo.inbox_children(self.ctx.session, LINES.value, WEBCRM, order_link.webcrm_id)
        work.plan_webcrm(rows)
        work.plan_webshop()
        work.plan_removed()
        self._write(work)

    def _write(self, work: OrderLineWrites) -> None:
        if not work.write_webshop():
            return
        if work.shop_now is not work.shop_raw:
            self._order_follows_lines(work.order_link, work.shop_now)
        if work.records:
            self.queue.add(work)
        else:  # nothing for webCRM: finish now, holding nothing in memory
            work.finish([])

    def _order_follows_lines(self, order_link: Link, shop_now: dict[str, Any]) -> None:
        """After writing an order's lines, carry what they changed on the order itself
        (``total_excl_vat`` → ``OpportunityOrderValue``) to webCRM in the same run, and
        agree on the order as it now stands, so the next run has nothing left (rule 4)."""
        ctx = self.ctx
        mapping = ctx.maps[ORDERS]
        snap = repo.get_snapshot(ctx.session, order_link)
        prev = snap.props if snap is not None else None
        d = decide(mapping, prev, None, Side(shop_now, None), ctx.binder)
        body: dict[str, Any] = {}
        if d.to_webcrm and ctx.share(ORDERS, WEBCRM).enabled:
            try:
                body = mapping.to_webcrm(shop_now, ctx.binder, d.to_webcrm)
            except (MappingError, Unresolved):
                return  # the order itself is processed (and put aside) on the next run
            POLICIES[ORDERS].stamp(body)
            record = {**body, "OpportunityId": int(order_link.webcrm_id)}
            result = ctx.webcrm.upsert("Opportunity", [record])[0]
            if result.error is not None:
                return  # the snapshot stays: the next run sees the change again
            ctx.wrote(ORDERS, WEBCRM, "updated")
            ctx.plan(ORDERS, "update", WEBCRM, order_link.webcrm_id, ", ".join(sorted(body)))
        props = snapshot_after(mapping, prev, None, shop_now, body)
        version = shop_now.get("version")
        repo.put_snapshot(
            ctx.session, order_link, props, None, parse_time(shop_now.get("updated_at")),
            version if isinstance(version, int) else None,
        )  # fmt: skip


class DryLineProcessor(LineProcessor):
    """A dry run plans each order's lines and writes nothing."""

    def _write(self, work: OrderLineWrites) -> None:
        work.plan_dry()
