"""Lines that travel with a new order: a webshop order created from an opportunity
carries its quotation lines in the same request, and an opportunity created from a
webshop order gets that order's lines in the PATCH after it (rule 6)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.creates import Creates
from shopsync.engine.mapping.base import MappingError
from shopsync.engine.model import WEBCRM, WEBSHOP, Item
from shopsync.engine.recorder import Recorder
from shopsync.store import repo
from shopsync.store.rows import InboxEntry

LINES = Datatype.order_lines
_LINE_ERROR = re.compile(r"lines\[(\d+)\]")


def refused_lines(exc: Exception) -> dict[int, list[str]] | None:
    """The webshop's errors for an order's lines, by line index; None when any error
    is not about one line (then the order itself is refused)."""
    by_index: dict[int, list[str]] = {}
    for text in (str(e) for e in getattr(exc, "errors", None) or []):
        m = _LINE_ERROR.match(text)
        if m is None:
            return None
        by_index.setdefault(int(m.group(1)), []).append(text)
    return by_index or None


class Travel:
    def __init__(self, ctx: RunContext, recorder: Recorder, creates: Creates) -> None:
        self.ctx = ctx
        self.recorder = recorder
        self.creates = creates

    def attach_lines(self, item: Item) -> None:
        """A new webshop order carries its lines (rule 6: an order's lines with it)."""
        ctx = self.ctx
        assert item.c_raw is not None and item.shop_body is not None
        if not ctx.share(LINES, WEBSHOP).enabled:
            return  # lines are not shared into the webshop (rule 8): the order goes without
        opp_id = str(item.c_raw["OpportunityId"])
        rows: list[InboxEntry] = [
            r
            for r in repo.inbox_children(ctx.session, LINES.value, WEBCRM, opp_id)
            if not r.deleted and r.data is not None
        ]
        lines: dict[str, dict[str, Any]] = {r.record_id: dict(r.data or {}) for r in rows}
        if not ctx.lines_complete:
            for rec in ctx.webcrm.quotation_lines_of(int(opp_id)):
                lines.setdefault(str(rec["QuotationLineId"]), rec)
        ordered = sorted(
            lines.values(),
            key=lambda r: (r.get("QuotationLineSortOrder") or 0, r.get("QuotationLineId") or 0),
        )
        line_map = ctx.maps[LINES]
        body_lines: list[dict[str, Any]] = []
        item.crm_lines = []
        for rec in ordered:
            try:
                body_lines.append(line_map.to_webshop(rec, ctx.binder))
            except MappingError as exc:  # this line is put aside, the order goes (rule 7)
                rid = str(rec["QuotationLineId"])
                self.recorder.lines.put_aside_line(WEBCRM, rid, str(exc), rec, target=WEBSHOP)
                continue
            item.crm_lines.append(rec)
        item.shop_body["lines"] = body_lines
        item.line_rows = rows

    def drop_refused_lines(self, item: Item, exc: Exception) -> bool:
        """A new order refused only for some of its lines: put those lines aside and leave
        them out, so that the order and its other lines are created (rule 7)."""
        if item.crm_lines is None or item.shop_body is None:
            return False
        by_index = refused_lines(exc)
        if by_index is None or any(i >= len(item.crm_lines) for i in by_index):
            return False
        for index, texts in sorted(by_index.items()):
            rec = item.crm_lines[index]
            reason = "webshop refused: " + "; ".join(texts)
            self.recorder.lines.put_aside_line(
                WEBCRM, str(rec["QuotationLineId"]), reason, rec, target=WEBSHOP
            )
        keep = [i for i in range(len(item.crm_lines)) if i not in by_index]
        item.crm_lines = [item.crm_lines[i] for i in keep]
        item.shop_body["lines"] = [item.shop_body["lines"][i] for i in keep]
        return True

    def lines_for_new_opportunities(self, items: Sequence[Item]) -> None:
        """A new opportunity made from a webshop order gets that order's lines."""
        ctx = self.ctx
        line_map = ctx.maps[LINES]
        records: list[dict[str, Any]] = []
        owners: list[tuple[Item, dict[str, Any]]] = []
        for item in items:
            if item.crm_id is None or item.s_raw is None:
                continue
            org = item.crm_body.get("OpportunityOrganisationId") if item.crm_body else None
            for line in item.s_raw.get("lines") or []:
                try:
                    body = line_map.to_webcrm(line, ctx.binder)
                except MappingError as exc:
                    ctx.plan(LINES, "put-aside", WEBCRM, str(line.get("id")), str(exc))
                    continue
                body["QuotationLineOpportunityId"] = int(item.crm_id)
                if org is not None:
                    body["QuotationLineOrganisationId"] = org
                records.append(body)
                owners.append((item, line))
                ctx.plan(LINES, "create", WEBCRM, f"from webshop line {line.get('id')}")
        if records:
            self._send(records, owners)

    def _send(
        self, records: list[dict[str, Any]], owners: list[tuple[Item, dict[str, Any]]]
    ) -> None:
        results = self.ctx.webcrm.upsert(
            "QuotationLine",
            records,
            on_send=lambda indices: self.creates.mark_sent(
                LINES, [(str(owners[i][1]["id"]), records[i], owners[i][1]) for i in indices]
            ),
        )
        for r in results:
            if r.error is None and r.id is not None:
                owner, line = owners[r.index]
                self.recorder.lines.new_lines.setdefault(id(owner), []).append(
                    (line, records[r.index], r.id)
                )
        for r in results:
            if r.error is not None:
                line = owners[r.index][1]
                self.creates.refused(LINES, [str(line.get("id"))])
                self.recorder.lines.put_aside_line(
                    WEBSHOP, str(line.get("id")), f"webCRM refused: {r.error}", line
                )


class DryTravel(Travel):
    """A dry run plans the lines of new opportunities without sending them."""

    def _send(
        self, records: list[dict[str, Any]], owners: list[tuple[Item, dict[str, Any]]]
    ) -> None:
        return None
