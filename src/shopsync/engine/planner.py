"""The planner: one inbox row in, the work for its pair out (an :class:`Item` in the
batch), or a reason it waits or is put aside.

The rules live here, in the order a row meets them: deletes (rule 5), put aside and
unchanged (rule 7), linked pairs decided per property (rules 3 and 4, :mod:`differ`),
records that may be our own interrupted creates, matching (rule 2), and creates
within what sharing allows (rule 8). What a datatype does differently its
:class:`~engine.policies.Policy` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.creates import Creates
from shopsync.engine.deletes import plan_delete
from shopsync.engine.differ import Props, Side, decide
from shopsync.engine.lines.travel import Travel
from shopsync.engine.mapping.base import LinkMapping, MappingError, Unresolved
from shopsync.engine.model import (
    WEBCRM,
    WEBSHOP,
    Batch,
    Hold,
    Item,
    may_be_own_create,
    may_still_land,
    other,
)
from shopsync.engine.pairing import Match, Pairing
from shopsync.engine.policies import POLICIES
from shopsync.engine.recorder import Recorder
from shopsync.engine.streams import STREAMS, parse_time, webcrm_created, webcrm_updated
from shopsync.store.models import Link
from shopsync.store.rows import InboxEntry, LinkEntry


class Planner:
    def __init__(
        self,
        ctx: RunContext,
        pairing: Pairing,
        creates: Creates,
        recorder: Recorder,
        travel: Travel,
    ) -> None:
        self.ctx = ctx
        self.pairing = pairing
        self.creates = creates
        self.recorder = recorder
        self.travel = travel

    def plan_row(self, dt: Datatype, row: InboxEntry, batch: Batch) -> None:
        batch.claim(row)
        link = self.pairing.link_for(dt, row.system, row.record_id)
        if row.deleted:
            plan_delete(self.ctx, dt, row, link, batch)
            self.pairing.forget_holders()  # the deleted record's merge keys are gone
        elif self.pairing.still_put_aside(dt, row):
            batch.done(row)
        elif link is not None:
            self._plan_linked(dt, row, link, batch)
        else:
            self._plan_unlinked(dt, row, batch)

    def _plan_linked(self, dt: Datatype, row: InboxEntry, link: LinkEntry, batch: Batch) -> None:
        if link.state != "active":
            batch.done(row)
            return
        pairing, system = self.pairing, row.system
        other_id = link.webshop_id if system == WEBCRM else link.webcrm_id
        snap = pairing.snapshot_for(link)
        if pairing.stale(row, snap):
            batch.done(row)
            return
        other_row = pairing.inbox_for(dt, other(system), other_id)
        if other_row is not None and (other_row.id in batch.claimed or other_row.deleted):
            other_row = None
        if other_row is not None and pairing.stale(other_row, snap):
            batch.done(other_row)
            other_row = None
        batch.claim(other_row)
        item = Item(dt, system, link=link, created_by=link.created_by)
        self._set_rows(item, row, other_row)
        item.snapshot = snap.props if snap is not None else None
        item.snapshot_row = snap
        if snap is not None and item.s_raw is None:
            item.if_match = snap.webshop_version
        self.plan_update(dt, item, batch)

    def _plan_unlinked(self, dt: Datatype, row: InboxEntry, batch: Batch) -> None:
        assert row.data is not None
        system, creates = row.system, self.creates
        if system == WEBCRM and creates.may_be_landing(dt, row.data):
            self.recorder.wait(batch, row, may_be_own_create(creates.longest_wait(dt)))
            return
        if system == WEBSHOP and creates.may_be_replay(row.data):
            self.recorder.wait(
                batch, row, "new in the webshop while an interrupted create is redone"
            )
            return
        if system == WEBCRM:
            retired = POLICIES[dt].retired(self.ctx.binder, self.ctx.maps[dt], row.data)
            if retired is not None:
                self._take_back(dt, row, retired, batch)
                return
        match = self.pairing.find_match(dt, row, batch.claimed)
        if isinstance(match, Hold):
            if match.aside:
                item = Item(dt, system)
                self._set_rows(item, row, None)
                self.recorder.put_aside(item, match.reason, batch)
            else:
                self.recorder.wait(batch, row, match.reason)
        elif match is not None:
            self._plan_merge(dt, row, match, batch)
        elif self.may_create(dt, system, row.data) is not None:
            batch.done(row)
        else:
            self._plan_create(dt, row, batch)

    def _plan_merge(
        self,
        dt: Datatype,
        row: InboxEntry,
        match: Match,
        batch: Batch,
    ) -> None:
        other_id, other_row, other_data, key = match
        item = Item(dt, row.system, created_by="merge", matched_by=key)
        batch.claim(other_row)
        self._set_rows(item, row, other_row)
        if row.system == WEBCRM:
            item.s_raw, item.shop_id, item.crm_id = other_data, other_id, row.record_id
        else:
            item.c_raw, item.crm_id, item.shop_id = other_data, other_id, row.record_id
        self.plan_update(dt, item, batch)

    def _set_rows(self, item: Item, row: InboxEntry, other_row: InboxEntry | None) -> None:
        c_row, s_row = (row, other_row) if row.system == WEBCRM else (other_row, row)
        item.c_row, item.s_row = c_row, s_row
        item.c_raw = c_row.data if c_row is not None else None
        item.s_raw = s_row.data if s_row is not None else None
        if item.link is not None:
            item.crm_id, item.shop_id = item.link.webcrm_id, item.link.webshop_id
        if item.s_raw is not None:
            version = item.s_raw.get("version")
            item.if_match = int(version) if isinstance(version, int) else item.if_match

    def may_create(self, dt: Datatype, system: str, data: Mapping[str, Any]) -> str | None:
        """None when a record of ``system`` may be created on the other side, else why not."""
        share = self.ctx.share(dt, other(system))
        if not share.enabled:
            return f"sharing {dt.value} into {other(system)} is disabled"
        if not share.full_sync and self._created_before_onboarding(dt, system, data):
            return "created before onboarding and full sync is off"
        return POLICIES[dt].refuses_create(self.ctx.config, system, data)

    def _created_before_onboarding(
        self, dt: Datatype, system: str, data: Mapping[str, Any]
    ) -> bool:
        if system == WEBCRM:
            created = webcrm_created(STREAMS[dt], data)
        else:
            created = parse_time(data.get("created_at"))
        onboarded = self.ctx.onboarded_at
        return created is not None and onboarded is not None and created < onboarded

    # ----------------------------------------------------------------- updates
    def plan_update(self, dt: Datatype, item: Item, batch: Batch) -> None:
        """Decide per property, then build the bodies for each side."""
        ctx, mapping = self.ctx, self.ctx.maps[dt]
        c = Side(item.c_raw, webcrm_updated(STREAMS[dt], item.c_raw)) if item.c_raw else None
        s = Side(item.s_raw, parse_time(item.s_raw.get("updated_at"))) if item.s_raw else None
        source = item.source  # whose value could not be converted, when one cannot
        if (
            POLICIES[dt].children is not None
            and item.link is not None
            and item.c_row is not None
            and item.c_raw is not None
            and item.crm_id is not None
            and edited_in_webcrm(mapping, item.c_raw, item.snapshot)
        ):
            ctx.edited_opportunities.add(item.crm_id)
        try:
            d = decide(mapping, item.snapshot, c, s, ctx.binder)
            item.decision = d
            if not ctx.share(dt, WEBSHOP).enabled:
                d.to_webshop.clear()
            if not ctx.share(dt, WEBCRM).enabled:
                d.to_webcrm.clear()
            if d.to_webshop and item.c_raw is not None:
                source = WEBCRM
                item.shop_body = mapping.to_webshop(item.c_raw, ctx.binder, d.to_webshop)
            if d.to_webcrm and item.s_raw is not None:
                source = WEBSHOP
                item.crm_body = mapping.to_webcrm(item.s_raw, ctx.binder, d.to_webcrm)
        except Unresolved as exc:
            for row in item.rows:
                self.recorder.wait(batch, row, str(exc))
            return
        except MappingError as exc:
            item.source = source
            self.recorder.put_aside(item, str(exc), batch)
            return
        if d.conflicts:
            ctx.report.stats[dt].conflicts += len(d.conflicts)
            for prop, winner in sorted(d.conflicts.items()):
                detail = f"{prop}: {winner} was edited last"
                ctx.plan(dt, "conflict", winner, item.label, detail, item=item)
        if item.crm_body is not None:
            POLICIES[dt].stamp(item.crm_body)
        batch.items.append(item)

    # ----------------------------------------------------------------- creates
    def _plan_create(self, dt: Datatype, row: InboxEntry, batch: Batch) -> None:
        ctx, mapping, policy = self.ctx, self.ctx.maps[dt], POLICIES[dt]
        assert row.data is not None
        item = Item(dt, row.system, created_by=row.system)
        try:
            if row.system == WEBCRM:
                item.c_row, item.c_raw, item.crm_id = row, dict(row.data), row.record_id
                policy.before_shop_create(ctx.config, item)
                item.shop_body = mapping.to_webshop(item.c_raw, ctx.binder)
                item.shop_create = True
                if policy.children is not None:
                    self.travel.attach_lines(item)
            else:
                left = self.creates.unsettled.get(dt, {}).get(row.record_id)
                if left is not None:
                    # An earlier run sent this create and died: its request may still be
                    # landing in webCRM. The next run asks webCRM whether it did.
                    self.recorder.wait(batch, row, may_still_land(left))
                    return
                item.s_row, item.s_raw, item.shop_id = row, row.data, row.record_id
                item.crm_body = mapping.to_webcrm(row.data, ctx.binder)
                policy.stamp(item.crm_body)
                item.crm_create = True
        except Unresolved as exc:
            self.recorder.wait(batch, row, str(exc))
            return
        except MappingError as exc:
            self.recorder.put_aside(item, str(exc), batch)
            return
        batch.items.append(item)

    def _take_back(self, dt: Datatype, row: InboxEntry, link: Link, batch: Batch) -> None:
        """A webCRM product created again with the SKU of one deleted before: its
        deactivated webshop product is linked to the new one, made active and given
        every value of the new record (rule 5 undone, never a second product)."""
        assert row.data is not None
        old = link.webcrm_id
        item = Item(dt, WEBCRM, link=link, created_by=link.created_by)
        item.c_row, item.c_raw = row, dict(row.data)
        item.crm_id, item.shop_id = row.record_id, link.webshop_id
        try:
            body = self.ctx.maps[dt].to_webshop(item.c_raw, self.ctx.binder)
        except MappingError as exc:
            self.recorder.put_aside(item, str(exc), batch)
            return
        item.shop_body = {**body, "active": True}
        link.webcrm_id, link.state = row.record_id, "active"  # its snapshot is rewritten
        self.ctx.plan(
            dt, "link", "-", item.label,
            f"takes back the webshop product of deleted webCRM product {old} (same SKU)",
            item=item,
        )  # fmt: skip
        batch.items.append(item)


def edited_in_webcrm(
    mapping: LinkMapping, c_raw: Mapping[str, Any], snapshot: Props | None
) -> bool:
    """Whether a webCRM record's values differ from the last agreed ones."""
    if snapshot is None:
        return True
    try:
        values = mapping.webcrm_values(c_raw)
    except MappingError:
        return True
    return any(
        "c" in snapshot.get(name, {}) and snapshot[name]["c"] != value
        for name, value in values.items()
    )
