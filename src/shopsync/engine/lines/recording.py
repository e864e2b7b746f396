"""What a line leaves in the state database: its link and snapshot, or its put-aside entry.

Order lines are recorded line by line inside their order's reconciliation
(:mod:`engine.lines`), not item by item as the other datatypes are (:mod:`recorder`):
a line is linked when it is created or paired, its snapshot is stored when either side
is written, and a line that cannot be synced is put aside alone while its order and
the other lines go on (rule 7). Lines are fingerprinted as read (their raw JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.differ import Props, snapshot_after
from shopsync.engine.model import WEBCRM, WEBSHOP, Item
from shopsync.store import deferred, repo
from shopsync.store.models import Link

NewLine = tuple[dict[str, Any], dict[str, Any], int]
"""``(webshop line, body sent to webCRM, new QuotationLineId)`` of a new opportunity."""


class LineRecorder:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.new_lines: dict[int, list[NewLine]] = {}
        """id() of an order item → the lines created in webCRM for its new opportunity."""

    def put_aside_line(
        self,
        system: str,
        rid: str,
        reason: str,
        data: Mapping[str, Any] | None,
        *,
        target: str | None = None,
    ) -> None:
        """Put one order line aside (rule 7): its order and the other lines go on.

        ``target`` also writes a plan line for it.
        """
        ctx, lines = self.ctx, Datatype.order_lines
        repo.put_aside(
            ctx.session, lines.value, system, rid, reason,
            repo.fingerprint(data), dict(data) if data is not None else None,
        )  # fmt: skip
        ctx.report.stats[lines].put_aside += 1
        if target is not None:
            ctx.plan(
                lines, "put-aside", target, f"{system}:{rid}", reason, data=data, system=system
            )

    def line_still_aside(self, system: str, rid: str, data: Mapping[str, Any] | None) -> bool:
        entry = repo.get_put_aside(self.ctx.session, Datatype.order_lines.value, system, rid)
        return entry is not None and entry.fingerprint == repo.fingerprint(data)

    def link_travelled_lines(self, item: Item, link: Link) -> None:
        """Link the lines created together with an order, on either side."""
        ctx, lines = self.ctx, Datatype.order_lines
        if item.shop_create and item.s_after is not None and item.crm_lines is not None:
            shop_lines = item.s_after.get("lines") or []
            for crm_line, shop_line in zip(item.crm_lines, shop_lines, strict=False):
                self.link_line(
                    link, str(crm_line["QuotationLineId"]), str(shop_line["id"]), WEBCRM,
                    crm_line, shop_line, {}, known_new=True,
                )  # fmt: skip
            deferred.delete_inbox_rows(ctx.session, item.line_rows)
            ctx.wrote(lines, WEBSHOP, "created", len(shop_lines))
        for shop_line, sent, new_id in self.new_lines.pop(id(item), []):
            ctx.intent_spent(lines, WEBSHOP, str(shop_line["id"]))
            self.link_line(
                link, str(new_id), str(shop_line["id"]), WEBSHOP,
                {**sent, "QuotationLineId": new_id}, shop_line, sent, known_new=True,
            )  # fmt: skip
            ctx.wrote(lines, WEBCRM, "created")

    def link_line(
        self,
        parent: Link,
        crm_id: str,
        shop_id: str,
        created_by: str,
        c_raw: Mapping[str, Any] | None,
        s_raw: Mapping[str, Any] | None,
        sent: Mapping[str, Any],
        previous: Props | None = None,
        *,
        known_new: bool = False,
    ) -> Link:
        """Link a line pair and store its snapshot; ``known_new`` skips the lookup and
        leaves the INSERTs for the next flush (a created order's lines come in bulk)."""
        ctx, lines = self.ctx, Datatype.order_lines
        link = None if known_new else repo.link_by_webcrm(ctx.session, lines.value, crm_id)
        if link is None:
            link = repo.add_link(
                ctx.session, lines.value, crm_id, shop_id, created_by,
                parent=parent, flush=not known_new,
            )  # fmt: skip
        self.line_snapshot(link, previous, c_raw, s_raw, sent)
        return link

    def line_snapshot(
        self,
        link: Link,
        previous: Props | None,
        c_raw: Mapping[str, Any] | None,
        s_raw: Mapping[str, Any] | None,
        sent: Mapping[str, Any],
    ) -> None:
        """Store the values a line pair now agrees on."""
        props = snapshot_after(self.ctx.maps[Datatype.order_lines], previous, c_raw, s_raw, sent)
        repo.put_snapshot(self.ctx.session, link, props, None, None, None)
