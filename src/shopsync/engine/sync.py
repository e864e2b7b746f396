"""The sync engine: one run over the four links (the importers/exporters).

A run has two phases per datatype, in the order of rule 6 (customers, products, then
orders with their lines):

1. **Stage.** Read each side's changes since its cursor into the ``inbox`` table, a
   page at a time; each page and the cursor advance past it commit together. Records
   not linked yet get their merge-criterion keys stored. webCRM products and quotation
   lines are read in full (only changed rows are staged) because that is the only way
   to notice their deletion.
2. **Process.** Take inbox rows in batches: pair each with its linked counterpart,
   decide per property what flows where (``differ``), or match an unlinked record by the
   merge criteria, or create it on the other side; write in bulk (webCRM ``PATCH``) or
   one by one (webshop, with ``Idempotency-Key`` / ``If-Match``); then, in one
   transaction, store links and snapshots and remove the processed rows from the inbox.

Because a record leaves the inbox only in the transaction that records its outcome, a
run killed at any instant resumes where it stopped; a create whose answer was lost is
recognised by the webshop's idempotency key or, on webCRM, by the merge criteria
(orders carry the webshop id in ``OpportunityErpId`` and the order number).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from shopsync.config.model import Config, Datatype, ShareConfig
from shopsync.connectors.webcrm.queries import build_select, in_
from shopsync.engine import hygiene, intents
from shopsync.engine.binder import Binder
from shopsync.engine.differ import Decision, Props, Side, decide, snapshot_after
from shopsync.engine.labels import record_label, snapshot_label
from shopsync.engine.mapping.base import LinkMapping, MappingError, Unresolved
from shopsync.engine.mapping.orders import is_won
from shopsync.engine.matching import Matcher, Outcome
from shopsync.engine.ports import UpsertOutcome, WebcrmPort, WebshopPort
from shopsync.engine.report import PlanLine, RunReport
from shopsync.engine.streams import (
    STREAMS,
    Stream,
    format_time,
    parse_time,
    webcrm_created,
    webcrm_id,
    webcrm_updated,
)
from shopsync.store import repo
from shopsync.store.models import InboxRecord, Link, Snapshot

log = structlog.get_logger("shopsync.engine")

WEBCRM = "webcrm"
WEBSHOP = "webshop"
BATCH = 200
"""Inbox rows processed per transaction."""
ORDER: tuple[Datatype, ...] = (Datatype.customers, Datatype.products, Datatype.orders)
SWEEP_META = "sweep:"
"""State-database meta key prefix: the time of each datatype's last delete sweep."""
LINES_QUERY_CHUNK = 200
"""Opportunities whose lines one ``/Queries`` request asks for between sweeps."""
MAX_SERVER_ERRORS = 5
"""Webshop writes in a row answered 5xx (after retries) that are put aside, each for
itself, before the next one stops the run: beyond that the shop is down, not the record."""
"""Webshop creates in flight at once."""


def other(system: str) -> str:
    return WEBSHOP if system == WEBCRM else WEBCRM


@dataclass(frozen=True)
class _Hold:
    """Why an unlinked record is neither merged nor created now."""

    reason: str
    aside: bool = False
    """Put it aside (an ambiguous key) rather than let it wait (a holder being synced)."""


class _KeyLookup:
    """The ``merge_keys`` table as :meth:`Matcher.choose` reads it."""

    def __init__(self, engine: Engine, dt: Datatype) -> None:
        self.engine = engine
        self.dt = dt

    def holders(self, system: str, key: str) -> Sequence[str]:
        return repo.find_by_merge_key(self.engine.s, self.dt.value, system, key)

    def keys_of(self, system: str, record_id: str) -> Sequence[str] | None:
        row = repo.inbox_get(self.engine.s, self.dt.value, system, record_id)
        data = row.data if row is not None else self.engine._fetch(self.dt, system, record_id)
        return None if data is None else self.engine.matcher.keys(self.dt, system, data)


@dataclass(frozen=True)
class _Outcome:
    """One record's result of a batched upsert, re-indexed for its own order."""

    index: int
    id: int | None
    error: str | None


@dataclass
class Item:
    """One pair's planned work inside a batch."""

    datatype: Datatype
    source: str
    """The side whose change started this item (for put-aside and reports)."""
    link: Link | None = None
    c_row: InboxRecord | None = None
    s_row: InboxRecord | None = None
    c_raw: dict[str, Any] | None = None
    s_raw: dict[str, Any] | None = None
    snapshot: Props | None = None
    created_by: str = "merge"
    shop_body: dict[str, Any] | None = None
    shop_create: bool = False
    shop_key: str | None = None
    shop_id: str | None = None
    if_match: int | None = None
    crm_body: dict[str, Any] | None = None
    crm_create: bool = False
    crm_id: str | None = None
    s_after: dict[str, Any] | None = None
    crm_sent: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None
    retry: bool = False
    # orders: the webCRM lines that go with a new webshop order (sorted as sent)
    crm_lines: list[dict[str, Any]] | None = None
    line_rows: list[InboxRecord] = field(default_factory=list)
    prefetched: tuple[dict[str, Any] | None, Exception | None] | None = None
    """A create's answer (or error) already fetched by :meth:`Engine._create_in_parallel`."""
    decision: Decision | None = None

    @property
    def rows(self) -> list[InboxRecord]:
        return [r for r in (self.c_row, self.s_row) if r is not None]


@dataclass
class Batch:
    items: list[Item] = field(default_factory=list)
    claimed: set[int] = field(default_factory=set)
    done_rows: list[InboxRecord] = field(default_factory=list)
    progress: bool = False

    def claim(self, row: InboxRecord | None) -> None:
        if row is not None:
            self.claimed.add(row.id)


class Engine:
    """Runs syncs for one installation (one webCRM, one webshop, one state database)."""

    def __init__(
        self,
        config: Config,
        session: Session,
        webcrm: WebcrmPort,
        webshop: WebshopPort,
        *,
        mappings: Mapping[Datatype, LinkMapping],
        dry_run: bool = False,
        on_progress: Callable[[Datatype, str, int], None] | None = None,
    ) -> None:
        self.config = config
        self.s = session
        self.webcrm = webcrm
        self.webshop = webshop
        self.maps = mappings
        self.dry_run = dry_run
        self.binder = Binder(session, config)
        self.matcher = Matcher(config)
        self.report = RunReport(dry_run=dry_run)
        self.on_progress = on_progress or (lambda dt, phase, n: None)
        self._lines_complete = False
        self._now = datetime.now(UTC)
        self._server_errors = 0
        self._another_pass = False
        self._force_sweep = False
        self._full = False
        self._swept_lines = False
        self._edited_opportunities: set[str] = set()
        """Linked opportunities whose webCRM values changed in this run (not echoes)."""
        self._onboarded_at: datetime | None = None
        self._line_pairs: dict[str, dict[str, Any] | None] = {}
        self._crm_queue: list[Item] = []
        self._line_sent: dict[int, int] = {}
        self._line_results: dict[int, list[_Outcome]] = {}
        self._deferred_intents: dict[tuple[str, str], list[str]] = {}
        self._pf_links: dict[tuple[str, str], Link | None] = {}
        self._pf_snaps: dict[int, Snapshot | None] = {}
        self._pf_inbox: dict[tuple[str, str], InboxRecord | None] = {}
        self._pf_aside: set[tuple[str, str]] = set()
        self._aside_seen: set[tuple[str, str, str]] = set()
        self._pending_line_links: dict[int, list[tuple[dict[str, Any], dict[str, Any], int]]] = {}
        self._staging: list[tuple[str, datetime | None, dict[str, Any] | None, str | None]] = []
        self._line_queue: list[
            tuple[list[dict[str, Any]], Callable[[Sequence[UpsertOutcome]], None]]
        ] = []
        self._unsettled: dict[Datatype, dict[str, float]] = {}
        """Per datatype, webshop ids whose webCRM create may still land (seconds left)."""
        self._landing_since: dict[Datatype, datetime] = {}
        self._replays_since: datetime | None = None
        """In this pass: new webshop records created since may be interrupted creates of
        ours being redone (see :meth:`_open_webshop_creates`)."""
        """Per datatype with unsettled creates: a new webCRM record created since this
        may be one of them landing, so it is not taken for a new record yet."""
        self._line_create_src: dict[int, dict[str, Any]] = {}
        """id() of a queued webCRM line create → the webshop line it comes from."""
        self._linked_now: set[tuple[str, str, str]] = set()
        """(datatype, system, id) linked in this run, not yet flushed to the database."""

    # ------------------------------------------------------------------ entry points
    def run(
        self, only: Sequence[Datatype] | None = None, *, full: bool = False, sweep: bool = False
    ) -> RunReport:
        """One sync run over ``only`` (default all) datatypes; ``sweep`` (or ``full``)
        reads every webCRM product and quotation line now to see deletes."""
        self._force_sweep = sweep or full
        self._full = full
        started = time.monotonic()
        crm0, shop0 = self.webcrm.requests_made, self.webshop.requests_made
        wanted = set(only or Datatype)
        if Datatype.orders in wanted:
            wanted.add(Datatype.order_lines)
        self._onboarded_at = self._onboarding()
        run = repo.start_run(self.s, "dry-run" if self.dry_run else ("full" if full else "incr"))
        run_id = run.id
        self._commit()
        try:
            for dt in ORDER:
                if dt in wanted:
                    self._stage(dt, full=full)
            if Datatype.order_lines in wanted:
                self._stage(Datatype.order_lines, full=full)
            for dt in ORDER:
                if dt in wanted:
                    self._resolve_creates(dt)
                    self._process(dt)
            if Datatype.order_lines in wanted:
                self._lines_of_changed_opportunities()
                self._resolve_creates(Datatype.order_lines)
                self._process_lines()
            self._count_waiting()
        except BaseException as exc:
            self.s.rollback()
            self._finish(run_id, "failed", started, crm0, shop0, error=repr(exc)[:2000])
            raise
        self._finish(run_id, "dry-run" if self.dry_run else "ok", started, crm0, shop0)
        return self.report

    def _finish(
        self,
        run_id: int,
        status: str,
        started: float,
        crm0: int,
        shop0: int,
        error: str | None = None,
    ) -> None:
        self.report.seconds = time.monotonic() - started
        self.report.webcrm_requests = self.webcrm.requests_made - crm0
        self.report.webshop_requests = self.webshop.requests_made - shop0
        if self.dry_run:
            self.s.rollback()
        from shopsync.store.models import Run

        run = self.s.get(Run, run_id)
        if run is not None:
            run.status = status
            run.finished_at = datetime.now(UTC)
            run.stats = self.report.to_json()
            run.error = error
        self.s.commit()

    def _commit(self) -> None:
        """Commit (or, in a dry run, only flush: everything is rolled back at the end).

        Intents of records linked since the last commit are deleted here, in one
        statement per datatype and side, in the same transaction as the links.
        """
        for (dt, system), ids in self._deferred_intents.items():
            repo.clear_intents_many(self.s, dt, system, ids)
        self._deferred_intents.clear()
        if self.dry_run:
            self.s.flush()
        else:
            self.s.commit()

    def _onboarding(self) -> datetime:
        value = repo.get_meta(self.s, "onboarded_at")
        if value is None:
            repo.set_meta(self.s, "onboarded_at", format_time(self._now))
            self._commit()
            return self._now
        parsed = parse_time(value)
        assert parsed is not None
        return parsed

    # ------------------------------------------------- interrupted webCRM creates
    def _resolve_creates(self, dt: Datatype) -> None:
        """Settle the webCRM creates of ``dt`` whose answer was never recorded, by asking
        webCRM what landed, before anything of ``dt`` is sent (``engine/intents.py``)."""
        rows = repo.sent_intents(self.s, dt.value)
        if not rows:
            return
        linked = repo.linked_ids(self.s, dt.value, WEBSHOP, [r.record_id for r in rows])
        if linked:  # linked since (by the merge criteria): nothing left to find out
            repo.clear_intents_many(self.s, dt.value, WEBSHOP, sorted(linked))
            rows = [r for r in rows if r.record_id not in linked]
            if not rows:
                self._commit()
                return
        sent: dict[str, intents.Sent] = {}
        sources: dict[str, dict[str, Any] | None] = {}
        for row in rows:
            payload = row.payload or {}
            when = repo.as_utc(row.sent_at)
            assert when is not None
            sent[row.record_id] = intents.Sent(row.record_id, payload.get("sent") or {}, when)
            sources[row.record_id] = payload.get("source")
        bound = self.config.webcrm.timeout_seconds + 1.0
        now = datetime.now(UTC)
        ready, pending = intents.split_by_age(sent.values(), now, bound)
        self._unsettled[dt] = pending
        if pending:
            self._landing_since[dt] = intents.since(
                [i for i in sent.values() if i.webshop_id in pending]
            )
        if not ready:
            return
        stream = STREAMS[dt]
        landed = [
            rec
            for page in self.webcrm.iter_created_since(stream.webcrm_entity, intents.since(ready))
            for rec in page
        ]
        ids = [str(rec.get(stream.webcrm_id_field)) for rec in landed]
        taken = repo.linked_ids(self.s, dt.value, WEBCRM, ids)
        found = intents.pair(dt, ready, landed, stream.webcrm_id_field, taken)
        for shop_id, record in found.landed.items():
            self._link_landed(dt, shop_id, record, sent[shop_id].body, sources[shop_id])
        repo.unsend_intents(self.s, dt.value, found.lost)
        log.info(
            "resolved interrupted webCRM creates", datatype=dt.value,
            landed=len(found.landed), lost=len(found.lost), pending=len(pending),
        )  # fmt: skip
        self._commit()

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
        stream = STREAMS[dt]
        crm_id = str(record[stream.webcrm_id_field])
        stats = self.report.stats[dt]
        if dt is Datatype.order_lines:
            parent = repo.link_by_webcrm(
                self.s, Datatype.orders.value, str(sent.get("QuotationLineOpportunityId"))
            )
            if parent is None or source is None:
                return  # its order is not linked yet: resolved again next time
            if repo.link_by_webshop(self.s, dt.value, shop_id) is None:
                self._link_line(parent, crm_id, shop_id, WEBSHOP, record, source, sent)
        elif repo.link_by_webshop(self.s, dt.value, shop_id) is None:
            link = repo.add_link(self.s, dt.value, crm_id, shop_id, WEBSHOP, flush=True)
            props = snapshot_after(self.maps[dt], None, {}, source, sent)
            version = source.get("version") if source else None
            repo.put_snapshot(
                self.s, link, props, None,
                parse_time(source.get("updated_at")) if source else None,
                version if isinstance(version, int) else None,
            )  # fmt: skip
        self._deferred_intents.setdefault((dt.value, WEBSHOP), []).append(shop_id)
        stats.created_in_webcrm += 1
        stats.updates_to_webcrm += 1
        repo.add_updates(self.s, dt.value, "to_webcrm", 1)
        self._plan(
            dt, "create", WEBCRM, crm_id, f"landed before an interruption (webshop {shop_id})"
        )

    def _open_webshop_creates(self, dt: Datatype) -> datetime | None:
        """Since when new webshop records may be our own creates from an interrupted run.

        A webshop create is idempotent: its source record, still in the inbox, sends it
        again with the same key and gets the same record back, then links it. Until that
        is done (this pass), a new webshop record created since the oldest such intent is
        not taken for a record of its own (it would be created in webCRM a second time);
        it waits for the next pass, where it is found linked. Intents whose source is no
        longer in the inbox are spent and dropped.
        """
        if self.dry_run:
            return None
        open_ = repo.open_intents(self.s, dt.value, WEBCRM)
        if not open_:
            return None
        queued = set(repo.inbox_record_ids(self.s, dt.value, WEBCRM))
        spent = [rid for rid, _ in open_ if rid not in queued]
        if spent:
            repo.clear_intents_many(self.s, dt.value, WEBCRM, spent)
            self._commit()
        times = [when for rid, when in open_ if rid in queued]
        return min(times) - intents.SKEW if times else None

    def _may_be_landing(self, dt: Datatype, data: Mapping[str, Any]) -> bool:
        """Whether an unlinked webCRM record may be an interrupted create of ours that
        landed (and so must not be taken for a new record until that is resolved)."""
        since = self._landing_since.get(dt)
        if since is None:
            return False
        created = webcrm_created(STREAMS[dt], data)
        return created is None or created >= since

    def _mark_sent(
        self, dt: Datatype, sent: Sequence[tuple[str, dict[str, Any], Mapping[str, Any] | None]]
    ) -> None:
        """Commit that these webCRM creates leave now (``(webshop id, body, source)``)."""
        if sent:
            repo.mark_sent(
                self.s, dt.value,
                [(sid, {"sent": body, "source": source}) for sid, body, source in sent],
                datetime.now(UTC),
            )  # fmt: skip
            self._commit()

    def _settle_refused(self, dt: Datatype, shop_ids: Sequence[str]) -> None:
        """webCRM refused these creates: nothing landed, nothing to resolve later."""
        repo.unsend_intents(self.s, dt.value, list(shop_ids))

    def _plan(
        self,
        dt: Datatype,
        action: str,
        target: str,
        record: str,
        detail: str = "",
        *,
        data: Mapping[str, Any] | None = None,
        system: str = WEBCRM,
        item: Item | None = None,
        link: Link | None = None,
    ) -> None:
        """One line of the plan/report; ``data`` (as ``system`` sent it), ``item`` or
        ``link`` give the record's label (name, SKU or number)."""
        label = ""
        if item is not None:
            label = record_label(self.config, dt, WEBCRM, item.c_raw) or record_label(
                self.config, dt, WEBSHOP, item.s_raw
            )
        elif data is not None:
            label = record_label(self.config, dt, system, data)
        elif link is not None:
            snap = self._snapshot_for(link) if link.id is not None else None
            label = snapshot_label(self.config, dt, snap.props if snap else None)
        self.report.plan.append(PlanLine(dt.value, action, target, record, detail, label))

    # ----------------------------------------------------------------------- staging
    def _stage(self, dt: Datatype, *, full: bool) -> None:
        self._stage_webcrm(dt, full=full)
        if STREAMS[dt].webshop_collection is not None:
            self._stage_webshop(dt, full=full)

    def _stage_webcrm(self, dt: Datatype, *, full: bool) -> None:
        stream = STREAMS[dt]
        stats = self.report.stats[dt]
        cursor = None if full else parse_time(repo.get_cursor(self.s, dt.value, WEBCRM))
        if dt is Datatype.order_lines:
            self._lines_complete = cursor is None
        newest = cursor
        if stream.webcrm_full_scan and (cursor is None or self._sweep_due(dt)):
            seen: set[str] = set()
            overlap = timedelta(seconds=self.config.webcrm.overlap_seconds)
            for page in self.webcrm.iter_all(stream.webcrm_entity):
                stats.received_webcrm += len(page)
                for rec in page:
                    rid = webcrm_id(stream, rec)
                    seen.add(rid)
                    if self._unreadable(dt, WEBCRM, rid, rec):
                        continue
                    updated = webcrm_updated(stream, rec)
                    if cursor is None or updated is None or updated >= cursor - overlap:
                        self._stage_one(dt, WEBCRM, rid, updated, rec)
                        stats.read_webcrm += 1
                    if updated is not None and (newest is None or updated > newest):
                        newest = updated
                self._flush_stage(dt, WEBCRM)
                self._commit()
                self.on_progress(dt, "read webCRM", stats.read_webcrm)
            for link in list(repo.active_links(self.s, dt.value)):
                if link.webcrm_id not in seen:
                    parent = self._parent_webcrm_id(link)
                    repo.stage(
                        self.s, dt.value, WEBCRM, link.webcrm_id,
                        updated_at=self._now, data=None, deleted=True, parent_id=parent,
                    )  # fmt: skip
            repo.set_cursor(self.s, dt.value, WEBCRM, format_time(newest) if newest else None)
            repo.set_meta(self.s, SWEEP_META + dt.value, format_time(self._now))
            self._swept_lines = self._swept_lines or dt is Datatype.order_lines
            self._plan(dt, "sweep", "-", f"webcrm:{stream.webcrm_entity}", f"{len(seen)} read")
            self._commit()
            return
        for page in self.webcrm.iter_updated_since(stream.webcrm_entity, cursor):
            stats.received_webcrm += len(page)
            for rec in page:
                rid = webcrm_id(stream, rec)
                if self._unreadable(dt, WEBCRM, rid, rec):
                    continue
                updated = webcrm_updated(stream, rec)
                self._stage_one(dt, WEBCRM, rid, updated, rec)
                stats.read_webcrm += 1
                if updated is not None and (newest is None or updated > newest):
                    newest = updated
            self._flush_stage(dt, WEBCRM)
            repo.set_cursor(self.s, dt.value, WEBCRM, format_time(newest) if newest else None)
            self._commit()
            self.on_progress(dt, "read webCRM", stats.read_webcrm)

    def _sweep_due(self, dt: Datatype) -> bool:
        """Whether this run reads every webCRM row of ``dt`` to see its deletes."""
        if self._force_sweep:
            return True
        last = parse_time(repo.get_meta(self.s, SWEEP_META + dt.value))
        interval = timedelta(minutes=self.config.deletes.sweep_interval_minutes)
        return last is None or self._now - last >= interval

    def _lines_of_changed_opportunities(self) -> None:
        """Between sweeps: the lines of each linked opportunity edited in webCRM (its
        values differ from the agreed ones: not our own write read back), read by one
        ``/Queries`` request per :data:`LINES_QUERY_CHUNK` opportunities (a page of
        1000 lines each), show which of its linked lines were deleted in webCRM, so a
        line deleted together with an edit of its opportunity is seen at once."""
        if self._lines_complete or self._swept_lines or not self._edited_opportunities:
            return
        by_opp = repo.line_links_of_orders(self.s, sorted(self._edited_opportunities))
        self._edited_opportunities.clear()
        wanted = sorted(by_opp, key=int)
        for start in range(0, len(wanted), LINES_QUERY_CHUNK):
            chunk = wanted[start : start + LINES_QUERY_CHUNK]
            script = build_select(
                "QuotationLine",
                in_("QuotationLine", "QuotationLineOpportunityId", [int(i) for i in chunk]),
                order_by=("QuotationLineId",),
            )
            present = {
                str(rec.get("QuotationLineId"))
                for page in self.webcrm.iter_query(script)
                for rec in page
            }
            for opp_id in chunk:
                for link in by_opp[opp_id]:
                    staged = repo.inbox_get(
                        self.s, Datatype.order_lines.value, WEBCRM, link.webcrm_id
                    )
                    if link.webcrm_id not in present and (staged is None or staged.deleted):
                        repo.stage(
                            self.s, Datatype.order_lines.value, WEBCRM, link.webcrm_id,
                            updated_at=self._now, data=None, deleted=True, parent_id=opp_id,
                        )  # fmt: skip

    def _parent_webcrm_id(self, link: Link) -> str | None:
        if link.parent_id is None:
            return None
        parent = self.s.get(Link, link.parent_id)
        return parent.webcrm_id if parent is not None else None

    def _stage_webshop(self, dt: Datatype, *, full: bool) -> None:
        stream = STREAMS[dt]
        assert stream.webshop_collection is not None
        stats = self.report.stats[dt]
        cursor = None if full else parse_time(repo.get_cursor(self.s, dt.value, WEBSHOP))
        newest = cursor
        for page in self.webshop.iter_changes(stream.webshop_collection, cursor, True):
            for item in page.items:
                if self._unreadable(dt, WEBSHOP, str(item.get("id")), item):
                    continue
                updated = parse_time(item.get("updated_at"))
                deleted = bool(item.get("deleted"))
                self._stage_one(dt, WEBSHOP, str(item["id"]), updated, None if deleted else item)
                stats.read_webshop += 1
                if updated is not None and (newest is None or updated > newest):
                    newest = updated
            self._flush_stage(dt, WEBSHOP)
            repo.set_cursor(self.s, dt.value, WEBSHOP, format_time(newest) if newest else None)
            self._commit()
            self.on_progress(dt, "read webshop", stats.read_webshop)

    def _unreadable(self, dt: Datatype, system: str, rid: str, rec: Mapping[str, Any]) -> bool:
        """Put aside a record that cannot be synced as read (see :mod:`hygiene`).

        It is not staged. Read again unchanged (an overlap window, a full scan), it is
        not reported again; its next version is read and staged as any other.
        """
        why = hygiene.problem(STREAMS[dt], system, rec)
        if why is None:
            return False
        fp = repo.fingerprint(rec)
        entry = repo.get_put_aside(self.s, dt.value, system, rid)
        if entry is not None and entry.fingerprint == fp:
            return True
        repo.put_aside(self.s, dt.value, system, rid, why, fp, hygiene.cleaned(rec))
        self.report.stats[dt].put_aside += 1
        self._plan(dt, "put-aside", other(system), f"{system}:{rid}", why, data=rec, system=system)
        log.warning("record put aside as read", datatype=dt.value, system=system, id=rid)
        return True

    def _stage_one(
        self,
        dt: Datatype,
        system: str,
        rid: str,
        updated: datetime | None,
        data: dict[str, Any] | None,
    ) -> None:
        """Collect a record for :meth:`_flush_stage` (staged a page at a time)."""
        parent = None
        if dt is Datatype.order_lines and data is not None:
            value = data.get("QuotationLineOpportunityId")
            parent = str(value) if value is not None else None
        self._staging.append((rid, updated, data, parent))

    def _flush_stage(self, dt: Datatype, system: str) -> None:
        """Stage the collected page and refresh the merge keys of its records.

        Linked records keep their keys: a VAT number a linked pair holds is still a
        branch number that makes a new record's match ambiguous (docs/mapping.md,
        "What the engine's look-up must report"). A deleted record's keys go.
        """
        page, self._staging = self._staging, []
        if not self._full:
            page = self._without_unchanged(dt, system, page)
        if not page:
            return
        repo.stage_page(self.s, dt.value, system, page)
        if dt is Datatype.order_lines:
            return
        keys = {
            rid: self.matcher.keys(dt, system, data) if data is not None else []
            for rid, _, data, _ in page
        }
        repo.replace_merge_keys(self.s, dt.value, system, keys)

    def _without_unchanged(
        self,
        dt: Datatype,
        system: str,
        page: list[tuple[str, datetime | None, dict[str, Any] | None, str | None]],
    ) -> list[tuple[str, datetime | None, dict[str, Any] | None, str | None]]:
        """The page without records of active links whose values are the agreed ones.

        Such a record (our own write read back, an overlap re-read, a full scan's
        unchanged row) has nothing to sync: it is decided from the snapshots in one
        query a page, before any inbox row or other ORM object is built, and counted as
        unchanged. Kept: records with a row waiting in the inbox (the newer version must
        replace it), deletions, order lines (reconciled per order) and webshop orders
        (their lines travel inside them).
        """
        if dt is Datatype.order_lines or (dt is Datatype.orders and system == WEBSHOP):
            return page
        ids = [rid for rid, _, data, _ in page if data is not None]
        agreed = repo.agreed_values(self.s, dt.value, system, ids)
        if not agreed:
            return page
        waiting = repo.inbox_ids_among(self.s, dt.value, system, list(agreed))
        mapping, side = self.maps[dt], "c" if system == WEBCRM else "s"
        kept = []
        for entry in page:
            rid, _, data, _ = entry
            props = agreed.get(rid)
            if data is None or props is None or rid in waiting:
                kept.append(entry)
                continue
            try:
                values = (
                    mapping.webcrm_values(data)
                    if system == WEBCRM
                    else mapping.webshop_values(data)
                )
            except Exception:  # unreadable for the mapping: the full path reports it
                kept.append(entry)
                continue
            if all(side in props.get(n, {}) and props[n][side] == v for n, v in values.items()):
                self.report.stats[dt].unchanged += 1
            else:
                kept.append(entry)
        return kept

    # -------------------------------------------------------------------- processing
    def _process(self, dt: Datatype) -> None:
        """Work through the inbox of one datatype until a pass makes no progress."""
        claimed: set[int] = set()
        for _ in range(4):
            progress = False
            after = 0
            claimed.clear()
            self._replays_since = self._open_webshop_creates(dt)
            while True:
                rows = repo.inbox_batch(self.s, dt.value, after, BATCH)
                if not rows:
                    break
                after = rows[-1].id
                batch = Batch(claimed=claimed)
                self._prefetch(dt, rows)
                for row in rows:
                    if row.id in batch.claimed:
                        continue
                    self._plan_row(dt, row, batch)
                self._execute(dt, batch)
                progress = progress or batch.progress or self._another_pass
                self._another_pass = False
                self._commit()
                self.on_progress(dt, "synced", after)
            self._flush_webcrm(dt)
            self._commit()
            if not progress:
                break

    def _done(self, batch: Batch, *rows: InboxRecord | None) -> None:
        for row in rows:
            if row is not None:
                batch.claim(row)
                batch.done_rows.append(row)
                batch.progress = True

    def _wait(self, batch: Batch, row: InboxRecord, reason: str) -> None:
        batch.claim(row)
        if row.waiting_reason is None:
            self._plan(
                Datatype(row.datatype), "wait", "-", f"{row.system}:{row.record_id}", reason,
                data=row.data, system=row.system,
            )  # fmt: skip
        row.waiting_reason = reason
        row.attempts += 1

    def _share(self, dt: Datatype, target: str) -> ShareConfig:
        cfg = self.config.datatype(dt)
        return cfg.to_webshop if target == WEBSHOP else cfg.to_webcrm

    def _created_before_onboarding(
        self, dt: Datatype, system: str, data: Mapping[str, Any]
    ) -> bool:
        if system == WEBCRM:
            created = webcrm_created(STREAMS[dt], data)
        else:
            created = parse_time(data.get("created_at"))
        return (
            created is not None and self._onboarded_at is not None and created < self._onboarded_at
        )

    def _may_create(self, dt: Datatype, system: str, data: Mapping[str, Any]) -> str | None:
        """None when a record of ``system`` may be created on the other side, else why not."""
        share = self._share(dt, other(system))
        if not share.enabled:
            return f"sharing {dt.value} into {other(system)} is disabled"
        if not share.full_sync and self._created_before_onboarding(dt, system, data):
            return "created before onboarding and full sync is off"
        if (
            dt is Datatype.orders
            and system == WEBCRM
            and self.config.selective.only_won_opportunities
            and not is_won(self.config, data)
        ):
            return "selective sync: only won opportunities become orders"
        return None

    def _plan_row(self, dt: Datatype, row: InboxRecord, batch: Batch) -> None:
        system = row.system
        batch.claim(row)
        link = self._link_for(dt, system, row.record_id)
        if row.deleted:
            self._plan_delete(dt, row, link, batch)
            return
        assert row.data is not None
        if self._still_put_aside(dt, row):
            self._done(batch, row)
            return
        if link is not None:
            if link.state != "active":
                self._done(batch, row)
                return
            other_id = link.webshop_id if system == WEBCRM else link.webcrm_id
            snap = self._snapshot_for(link)
            if self._stale(row, snap):
                self._done(batch, row)
                return
            other_row = self._inbox_for(dt, other(system), other_id)
            if other_row is not None and (other_row.id in batch.claimed or other_row.deleted):
                other_row = None
            if other_row is not None and self._stale(other_row, snap):
                self._done(batch, other_row)
                other_row = None
            batch.claim(other_row)
            item = Item(dt, system, link=link, created_by=link.created_by)
            self._set_rows(item, row, other_row)
            item.snapshot = snap.props if snap is not None else None
            if snap is not None and item.s_raw is None:
                item.if_match = snap.webshop_version
            self._plan_update(dt, item, batch)
            return
        if system == WEBCRM and self._may_be_landing(dt, row.data):
            left = max(self._unsettled.get(dt, {}).values(), default=0.0)
            self._wait(batch, row, _may_be_own_create(left))
            return
        if system == WEBSHOP and self._replays_since is not None:
            created = parse_time(row.data.get("created_at"))
            if created is None or created >= self._replays_since:
                self._wait(batch, row, "new in the webshop while an interrupted create is redone")
                return
        if dt is Datatype.products and system == WEBCRM:
            sku = self.maps[dt].webcrm_values(row.data).get("sku")
            retired = self.binder.retired_product(str(sku)) if sku else None
            if retired is not None:  # the shop's product with this SKU: its own, deleted
                self._take_back(dt, row, retired, batch)
                return
        match = self._find_match(dt, row, batch)
        if isinstance(match, _Hold) and match.aside:
            item = Item(dt, system)
            self._set_rows(item, row, None)
            self._refuse(item, match.reason, batch)
            return
        if isinstance(match, _Hold):
            self._wait(batch, row, match.reason)
            return
        if match is not None:
            other_id, other_row, other_data = match
            item = Item(dt, system, created_by="merge")
            if other_row is not None:
                batch.claim(other_row)
            self._set_rows(item, row, other_row)
            if system == WEBCRM:
                item.s_raw = other_data
                item.shop_id = other_id
                item.crm_id = row.record_id
            else:
                item.c_raw = other_data
                item.crm_id = other_id
                item.shop_id = row.record_id
            self._plan_update(dt, item, batch)
            return
        reason = self._may_create(dt, system, row.data)
        if reason is not None:
            self._done(batch, row)
            return
        self._plan_create(dt, row, batch)

    @staticmethod
    def _stale(row: InboxRecord, snap: Snapshot | None) -> bool:
        """A staged version older than the one the snapshot already agreed on."""
        if snap is None or row.updated_at is None:
            return False
        seen = snap.webcrm_updated_at if row.system == WEBCRM else snap.webshop_updated_at
        seen, staged = repo.as_utc(seen), repo.as_utc(row.updated_at)
        return seen is not None and staged is not None and staged < seen

    def _set_rows(self, item: Item, row: InboxRecord, other_row: InboxRecord | None) -> None:
        c_row, s_row = (row, other_row) if row.system == WEBCRM else (other_row, row)
        item.c_row, item.s_row = c_row, s_row
        item.c_raw = c_row.data if c_row is not None else None
        item.s_raw = s_row.data if s_row is not None else None
        if item.link is not None:
            item.crm_id, item.shop_id = item.link.webcrm_id, item.link.webshop_id
        if item.s_raw is not None:
            version = item.s_raw.get("version")
            item.if_match = int(version) if isinstance(version, int) else item.if_match

    def _prefetch(self, dt: Datatype, rows: Sequence[InboxRecord]) -> None:
        """Load what planning a batch needs in a few queries instead of several per row."""
        ids = {WEBCRM: [r.record_id for r in rows if r.system == WEBCRM],
               WEBSHOP: [r.record_id for r in rows if r.system == WEBSHOP]}  # fmt: skip
        self._pf_links = {}
        for system, wanted in ids.items():
            for rid in wanted:
                self._pf_links[(system, rid)] = None
            for link in repo.links_for(self.s, dt.value, system, wanted):
                rid = link.webcrm_id if system == WEBCRM else link.webshop_id
                self._pf_links[(system, rid)] = link
        links = [ln for ln in self._pf_links.values() if ln is not None]
        self._pf_snaps = {ln.id: None for ln in links}
        self._pf_snaps.update(repo.snapshots_for(self.s, [ln.id for ln in links]))
        self._pf_inbox = {}
        for system in (WEBCRM, WEBSHOP):
            others = [
                (ln.webshop_id if system == WEBCRM else ln.webcrm_id)
                for (sys_, _), ln in self._pf_links.items()
                if ln is not None and sys_ == system
            ]
            target = other(system)
            for rid in others:
                self._pf_inbox[(target, rid)] = None
            for row in repo.inbox_rows(self.s, dt.value, target, others):
                self._pf_inbox[(target, row.record_id)] = row
        self._pf_aside = set()
        for system, wanted in ids.items():
            for rid in repo.put_aside_ids(self.s, dt.value, system, wanted):
                self._pf_aside.add((system, rid))
                self._aside_seen.add((dt.value, system, rid))

    def _link_for(self, dt: Datatype, system: str, rid: str) -> Link | None:
        key = (system, rid)
        if key in self._pf_links:
            return self._pf_links[key]
        return repo.link_by_id(self.s, dt.value, system, rid)

    def _snapshot_for(self, link: Link) -> Snapshot | None:
        if link.id in self._pf_snaps:
            return self._pf_snaps[link.id]
        return repo.get_snapshot(self.s, link)

    def _inbox_for(self, dt: Datatype, system: str, rid: str) -> InboxRecord | None:
        key = (system, rid)
        if key in self._pf_inbox:
            return self._pf_inbox[key]
        return repo.inbox_get(self.s, dt.value, system, rid)

    def _still_put_aside(self, dt: Datatype, row: InboxRecord) -> bool:
        if (row.system, row.record_id) not in self._pf_aside:
            return False
        entry = repo.get_put_aside(self.s, dt.value, row.system, row.record_id)
        if entry is None:
            return False
        return entry.fingerprint == self._fingerprint(dt, row.system, row.data or {})

    def _fingerprint(self, dt: Datatype, system: str, data: Mapping[str, Any]) -> str:
        mapping = self.maps[dt]
        values = mapping.webcrm_values(data) if system == WEBCRM else mapping.webshop_values(data)
        return repo.fingerprint(values)

    def _find_match(
        self, dt: Datatype, row: InboxRecord, batch: Batch
    ) -> tuple[str, InboxRecord | None, dict[str, Any]] | _Hold | None:
        """The one record on the other side that is this record (rule 2), decided by
        :meth:`Matcher.choose` over the ``merge_keys`` table; None: create it.

        A :class:`_Hold` instead says why not: the key's holder is being worked on in
        this pass (often this record's own create, coming back: the next pass sees it
        linked), or the key is ambiguous and ``[matching] on_ambiguous`` puts it aside.
        """
        assert row.data is not None
        target = other(row.system)

        def claimed(rid: str) -> bool:
            other_row = repo.inbox_get(self.s, dt.value, target, rid)
            return other_row is not None and other_row.id in batch.claimed

        def taken(rid: str) -> bool:
            return repo.link_by_id(self.s, dt.value, target, rid) is not None or claimed(rid)

        decision = self.matcher.choose(
            dt, row.system, row.data, _KeyLookup(self, dt), record_id=row.record_id, taken=taken
        )
        if decision.outcome is Outcome.match and decision.candidate is not None:
            candidate = decision.candidate
            other_row = repo.inbox_get(self.s, dt.value, target, candidate)
            if other_row is not None and other_row.data is not None:
                return candidate, other_row, other_row.data
            data = self._fetch(dt, target, candidate)
            if data is not None:
                return candidate, None, data
            repo.clear_merge_keys(self.s, dt.value, target, candidate)
            return None
        if decision.outcome is Outcome.ambiguous:
            busy = [rid for rid in decision.taken if claimed(rid)]
            if busy:
                return _Hold(f"{target} record {busy[0]} with {decision.key} is being synced")
            if self.config.matching.on_ambiguous == "put_aside":
                return _Hold(decision.reason, aside=True)
        return None

    def _fetch(self, dt: Datatype, system: str, rid: str) -> dict[str, Any] | None:
        stream = STREAMS[dt]
        try:
            if system == WEBCRM:
                return self.webcrm.get(stream.webcrm_entity, int(rid))
            assert stream.webshop_collection is not None
            return self.webshop.get(stream.webshop_collection, rid)
        except Exception as exc:  # gone (410) or unreadable: treat as absent
            log.info("fetch failed", datatype=dt.value, system=system, id=rid, error=str(exc))
            return None

    # ------------------------------------------------------------------ plan helpers
    def _plan_update(self, dt: Datatype, item: Item, batch: Batch) -> None:
        """Decide per property, then build the bodies for each side."""
        mapping = self.maps[dt]
        c = Side(item.c_raw, webcrm_updated(STREAMS[dt], item.c_raw)) if item.c_raw else None
        s = Side(item.s_raw, parse_time(item.s_raw.get("updated_at"))) if item.s_raw else None
        source = item.source  # whose value could not be converted, when one cannot
        if (
            dt is Datatype.orders
            and item.link is not None
            and item.c_row is not None
            and item.c_raw is not None
            and item.crm_id is not None
            and self._edited_in_webcrm(mapping, item.c_raw, item.snapshot)
        ):
            self._edited_opportunities.add(item.crm_id)
        try:
            d = decide(mapping, item.snapshot, c, s, self.binder)
            item.decision = d
            if not self._share(dt, WEBSHOP).enabled:
                d.to_webshop.clear()
            if not self._share(dt, WEBCRM).enabled:
                d.to_webcrm.clear()
            if d.to_webshop and item.c_raw is not None:
                source = WEBCRM
                item.shop_body = mapping.to_webshop(item.c_raw, self.binder, d.to_webshop)
            if d.to_webcrm and item.s_raw is not None:
                source = WEBSHOP
                item.crm_body = mapping.to_webcrm(item.s_raw, self.binder, d.to_webcrm)
        except Unresolved as exc:
            for row in item.rows:
                self._wait(batch, row, str(exc))
            return
        except MappingError as exc:
            item.source = source
            self._refuse(item, str(exc), batch)
            return
        if d.conflicts:
            self.report.stats[dt].conflicts += len(d.conflicts)
            for prop, winner in sorted(d.conflicts.items()):
                self._plan(
                    dt,
                    "conflict",
                    winner,
                    self._label(item),
                    f"{prop}: {winner} was edited last",
                    item=item,
                )
        if dt is Datatype.orders and item.crm_body is not None:
            self._erp_fields(item.crm_body)
        batch.items.append(item)

    @staticmethod
    def _edited_in_webcrm(
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

    def _erp_fields(self, body: dict[str, Any]) -> None:
        body["OpportunityErpStatus"] = "Synchronized"
        body["OpportunityErpSyncDateTime"] = format_time(datetime.now(UTC))

    def _label(self, item: Item) -> str:
        return f"webcrm:{item.crm_id or '-'} ⇄ webshop:{item.shop_id or '-'}"

    def _plan_create(self, dt: Datatype, row: InboxRecord, batch: Batch) -> None:
        mapping = self.maps[dt]
        assert row.data is not None
        item = Item(dt, row.system, created_by=row.system)
        try:
            if row.system == WEBCRM:
                item.c_row, item.c_raw, item.crm_id = row, dict(row.data), row.record_id
                if dt is Datatype.orders:
                    self._ensure_order_number(item)
                item.shop_body = mapping.to_webshop(item.c_raw, self.binder)
                item.shop_create = True
                if dt is Datatype.orders:
                    self._attach_lines(item, batch)
            else:
                left = self._unsettled.get(dt, {}).get(row.record_id)
                if left is not None:
                    # An earlier run sent this create and died: its request may still be
                    # landing in webCRM. The next run asks webCRM whether it did.
                    self._wait(batch, row, _may_still_land(left))
                    return
                item.s_row, item.s_raw, item.shop_id = row, row.data, row.record_id
                body = mapping.to_webcrm(row.data, self.binder)
                if dt is Datatype.orders:
                    self._erp_fields(body)
                item.crm_body = body
                item.crm_create = True
        except Unresolved as exc:
            self._wait(batch, row, str(exc))
            return
        except MappingError as exc:
            self._refuse(item, str(exc), batch)
            return
        batch.items.append(item)

    def _take_back(self, dt: Datatype, row: InboxRecord, link: Link, batch: Batch) -> None:
        """A webCRM product created again with the SKU of one deleted before: its
        deactivated webshop product is linked to the new one, made active and given
        every value of the new record (rule 5 undone, never a second product)."""
        assert row.data is not None
        old = link.webcrm_id
        item = Item(dt, WEBCRM, link=link, created_by=link.created_by)
        item.c_row, item.c_raw = row, dict(row.data)
        item.crm_id, item.shop_id = row.record_id, link.webshop_id
        try:
            body = self.maps[dt].to_webshop(item.c_raw, self.binder)
        except MappingError as exc:
            self._refuse(item, str(exc), batch)
            return
        item.shop_body = {**body, "active": True}
        link.webcrm_id, link.state = row.record_id, "active"  # its snapshot is rewritten
        self._plan(
            dt, "link", "-", self._label(item),
            f"takes back the webshop product of deleted webCRM product {old} (same SKU)",
            item=item,
        )  # fmt: skip
        batch.items.append(item)

    def _ensure_order_number(self, item: Item) -> None:
        from shopsync.engine.mapping.orders import assign_order_number

        assert item.c_raw is not None
        if not item.c_raw.get("OpportunityNumber"):
            number = assign_order_number(self.config, int(item.c_raw["OpportunityId"]))
            item.c_raw["OpportunityNumber"] = number
            item.crm_body = {"OpportunityNumber": number}
            item.crm_sent = {}

    def _attach_lines(self, item: Item, batch: Batch) -> None:
        """A new webshop order carries its lines (rule 6: an order's lines with it)."""
        assert item.c_raw is not None and item.shop_body is not None
        if not self._share(Datatype.order_lines, WEBSHOP).enabled:
            return  # lines are not shared into the webshop (rule 8): the order goes without
        opp_id = str(item.c_raw["OpportunityId"])
        rows = [
            r
            for r in repo.inbox_children(self.s, Datatype.order_lines.value, WEBCRM, opp_id)
            if not r.deleted and r.data is not None
        ]
        lines: dict[str, dict[str, Any]] = {r.record_id: dict(r.data or {}) for r in rows}
        if not self._lines_complete:
            for rec in self.webcrm.quotation_lines_of(int(opp_id)):
                lines.setdefault(str(rec["QuotationLineId"]), rec)
        ordered = sorted(
            lines.values(),
            key=lambda r: (r.get("QuotationLineSortOrder") or 0, r.get("QuotationLineId") or 0),
        )
        line_map = self.maps[Datatype.order_lines]
        body_lines: list[dict[str, Any]] = []
        item.crm_lines = []
        for rec in ordered:
            try:
                body_lines.append(line_map.to_webshop(rec, self.binder))
            except MappingError as exc:  # this line is put aside, the order goes (rule 7)
                self._put_aside_new_line(rec, str(exc))
                continue
            item.crm_lines.append(rec)
        item.shop_body["lines"] = body_lines
        item.line_rows = rows

    def _put_aside_new_line(self, rec: Mapping[str, Any], reason: str) -> None:
        lines_dt = Datatype.order_lines
        rid = str(rec["QuotationLineId"])
        repo.put_aside(
            self.s, lines_dt.value, WEBCRM, rid, reason, repo.fingerprint(rec), dict(rec)
        )
        self.report.stats[lines_dt].put_aside += 1
        self._plan(lines_dt, "put-aside", WEBSHOP, f"webcrm:{rid}", reason, data=rec)

    def _drop_refused_new_lines(self, item: Item, exc: Exception) -> bool:
        """A new order refused only for some of its lines: put those lines aside and leave
        them out, so that the order and its other lines are created (rule 7)."""
        import re

        if item.crm_lines is None or item.shop_body is None:
            return False
        by_index: dict[int, list[str]] = {}
        for text in (str(e) for e in getattr(exc, "errors", None) or []):
            m = re.match(r"lines\[(\d+)\]", text)
            if m is None or int(m.group(1)) >= len(item.crm_lines):
                return False
            by_index.setdefault(int(m.group(1)), []).append(text)
        if not by_index:
            return False
        for index, texts in sorted(by_index.items()):
            self._put_aside_new_line(item.crm_lines[index], "webshop refused: " + "; ".join(texts))
        keep = [i for i in range(len(item.crm_lines)) if i not in by_index]
        item.crm_lines = [item.crm_lines[i] for i in keep]
        item.shop_body["lines"] = [item.shop_body["lines"][i] for i in keep]
        return True

    def _refuse(self, item: Item, reason: str, batch: Batch) -> None:
        item.refused = reason
        self._put_aside(item, reason, batch)

    def _put_aside(self, item: Item, reason: str, batch: Batch, *, retry: bool = False) -> None:
        """Set the record aside with ``reason`` until it changes (``retry``: every run).

        Its fingerprint is taken from the record as read (the staged row), not from
        ``c_raw``/``s_raw`` that planning may have completed (an assigned order number),
        so that the unchanged record is recognised as still put aside on the next run.
        """
        dt = item.datatype
        row = item.c_row if item.source == WEBCRM else item.s_row
        data = item.c_raw if item.source == WEBCRM else item.s_raw
        if row is not None and row.data is not None:
            data = row.data
        rid = (item.crm_id if item.source == WEBCRM else item.shop_id) or (
            row.record_id if row else "?"
        )
        fp = "" if retry else self._fingerprint(dt, item.source, data or {})
        repo.put_aside(self.s, dt.value, item.source, rid, reason, fp, data)
        self.report.stats[dt].put_aside += 1
        self._plan(
            dt, "put-aside", other(item.source), f"{item.source}:{rid}", reason,
            data=data, system=item.source,
        )  # fmt: skip
        self._done(batch, *item.rows)
        self._done(batch, *item.line_rows)

    def _plan_delete(self, dt: Datatype, row: InboxRecord, link: Link | None, batch: Batch) -> None:
        """Rule 5."""
        stats = self.report.stats[dt]
        repo.clear_merge_keys(self.s, dt.value, row.system, row.record_id)
        if link is None or link.state != "active":
            self._done(batch, row)
            return
        if row.system == WEBCRM and dt is Datatype.products:
            item = Item(dt, WEBCRM, link=link, c_row=row, crm_id=link.webcrm_id)
            item.shop_id = link.webshop_id
            if self._share(dt, WEBSHOP).enabled:
                item.shop_body = {"active": False}
            link.state = "webcrm_deleted"
            stats.deleted += 1
            self._plan(dt, "deactivate", WEBSHOP, link.webshop_id, "deleted in webCRM", link=link)
            batch.items.append(item)
            return
        if row.system == WEBSHOP:
            link.state = "webshop_deleted"
            stats.deleted += 1
            self._plan(
                dt, "unlink", "-", self._label_link(link), "deleted in the webshop", link=link
            )
            if dt is Datatype.orders:
                for child in repo.children(self.s, link):
                    child.state = "webshop_deleted"
                if self._share(dt, WEBCRM).enabled:
                    item = Item(dt, WEBSHOP, link=link, s_row=row, crm_id=link.webcrm_id)
                    item.crm_body = {"OpportunityLostDate": format_time(datetime.now(UTC))}
                    self._plan(
                        dt,
                        "mark lost",
                        WEBCRM,
                        link.webcrm_id,
                        "order deleted in the webshop",
                        link=link,
                    )
                    batch.items.append(item)
                    return
        else:
            link.state = "webcrm_deleted"
            stats.deleted += 1
        self._done(batch, row)

    def _label_link(self, link: Link) -> str:
        return f"webcrm:{link.webcrm_id} ⇄ webshop:{link.webshop_id}"

    # --------------------------------------------------------------------- execution
    def _execute(self, dt: Datatype, batch: Batch) -> None:
        stream = STREAMS[dt]
        collection = stream.webshop_collection
        assert collection is not None
        items = [i for i in batch.items if i.refused is None]
        # Creates record their intent (and idempotency key) before any request is sent.
        for item in items:
            if item.shop_create and item.c_row is not None:
                item.shop_key = repo.intent_key(self.s, dt.value, WEBCRM, item.c_row.record_id)
        self._commit()
        if not self.dry_run:
            self._send_webshop_writes(collection, items)
        for item in items:
            if item.shop_body is None:
                continue
            self._write_webshop(dt, collection, item)
            if item.retry and item.shop_id is not None:
                fresh = self._fetch(dt, WEBSHOP, item.shop_id)
                item.retry = False
                item.s_after = None
                if fresh is not None and item.link is not None:
                    snap = repo.get_snapshot(self.s, item.link)
                    item.s_raw = fresh  # the staged row (if any) is stale now; it still leaves
                    item.shop_body = item.crm_body = None
                    item.if_match = fresh.get("version")
                    item.snapshot = snap.props if snap else None
                    self._plan_update(dt, item, Batch())
                    if item.shop_body is not None:
                        self._write_webshop(dt, collection, item)
            if dt is Datatype.orders and item.shop_create and item.s_after is not None:
                self._order_backwrite(item)
        for item in items:
            if item.refused is not None or item.retry:
                continue
            if item.crm_body is not None:
                # webCRM writes wait for a full PATCH batch (the rate limit counts calls)
                self._crm_queue.append(item)
                batch.progress = True
            else:
                self._finalize(dt, item, batch)
        self._discard(batch.done_rows)
        if len(self._crm_queue) >= self.config.webcrm.batch_size:
            self._flush_webcrm(dt, final=False)

    def _flush_webcrm(self, dt: Datatype, *, final: bool = True) -> None:
        """Send the queued webCRM writes in full PATCH batches, then record their outcome.

        Unless ``final``, only whole batches go and the rest stays queued, so no request
        carries a part batch before the end. Until then their inbox rows stay put: a run
        killed here redoes the items, and the webshop side, already written, then
        compares equal and is not written again.
        """
        size = self.config.webcrm.batch_size
        cut = len(self._crm_queue) if final else (len(self._crm_queue) // size) * size
        items, self._crm_queue = self._crm_queue[:cut], self._crm_queue[cut:]
        if not items:
            return
        self._write_webcrm(dt, STREAMS[dt], items)
        if dt is Datatype.orders:
            self._create_lines_for_new_opportunities(
                [i for i in items if i.crm_create and i.refused is None]
            )
        batch = Batch()
        for item in items:
            if item.refused is None:
                self._finalize(dt, item, batch)
        self._discard(batch.done_rows)

    def _send_webshop_writes(self, collection: str, items: list[Item]) -> None:
        """Send a batch's webshop creates and updates together, before they are applied.

        ``write_many`` uses the shop's ``POST /{collection}/batch`` where the shop offers
        it (a request per few hundred records) and single requests, several in flight,
        where it does not. Each create carries its idempotency key and each update its
        ``If-Match``, so a batch that is retried, or a run killed after it, writes
        nothing twice. The answers (or each record's error) are applied on this thread
        by :meth:`_write_webshop`, which owns the database session.
        """
        from shopsync.connectors.webshop.client import CreateOp, UpdateOp, WriteOp

        writes = [i for i in items if i.shop_body is not None]
        ops: list[WriteOp] = []
        for item in writes:
            assert item.shop_body is not None
            if item.shop_create:
                assert item.shop_key is not None
                ops.append(CreateOp(item.shop_body, item.shop_key))
            else:
                assert item.shop_id is not None
                ops.append(UpdateOp(item.shop_id, item.shop_body, item.if_match))
        if not ops:
            return
        for item, outcome in zip(writes, self.webshop.write_many(collection, ops), strict=True):
            item.prefetched = (None, outcome) if isinstance(outcome, Exception) else (outcome, None)

    def _write_webshop(self, dt: Datatype, collection: str, item: Item) -> None:
        assert item.shop_body is not None
        from shopsync.connectors.webshop import client as ws

        label = item.shop_id or (item.crm_id and f"from webcrm:{item.crm_id}") or "?"
        action = "create" if item.shop_create else "update"
        self._plan(
            dt, action, WEBSHOP, str(label), ", ".join(sorted(_flat(item.shop_body))), item=item
        )
        if self.dry_run:
            item.s_after = None
            return
        try:
            if item.prefetched is not None:
                answer, error = item.prefetched
                item.prefetched = None
                if error is not None:
                    raise error
                assert answer is not None
                item.s_after = answer
                item.shop_id = str(answer["id"])
            elif item.shop_create:
                assert item.shop_key is not None
                item.s_after = self.webshop.create(collection, item.shop_body, item.shop_key)
                item.shop_id = str(item.s_after["id"])
            else:
                assert item.shop_id is not None
                item.s_after = self.webshop.update(
                    collection, item.shop_id, item.shop_body, if_match=item.if_match
                )
        except ws.WebshopPreconditionFailed:
            item.retry = True
        except (ws.WebshopValidationError, ws.WebshopConflict) as exc:
            if item.shop_create and self._drop_refused_new_lines(item, exc):
                self._write_webshop(dt, collection, item)  # again, without those lines
                return
            self._refuse_after(item, f"webshop refused: {exc}")
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
            self._refuse_after(item, f"webshop failed: {exc}", retry=True)
        except ws.WebshopError as exc:  # an unexpected answer for this one record
            self._refuse_after(item, f"webshop answered: {exc}")
        else:
            self._server_errors = 0

    def _vanished(self, dt: Datatype, item: Item, exc: Exception) -> None:
        """A linked webshop record answers 404 (purged, no tombstone) or 410: deleted.

        It is handled as the delete it is (rule 5): a deletion is staged for it, which
        the next pass of this run applies as for a tombstone read from the change
        feed, and the rows of this change leave the inbox (the pair no longer syncs).
        """
        assert item.link is not None and item.shop_id is not None
        item.refused = "gone"
        status = getattr(exc, "status", None)
        repo.stage(
            self.s, dt.value, WEBSHOP, item.shop_id, updated_at=datetime.now(UTC), data=None,
            deleted=True,
            parent_id=self._parent_webcrm_id(item.link),
        )  # fmt: skip
        self._plan(
            dt, "gone", WEBSHOP, self._label(item),
            f"HTTP {status} on update: handled as deleted in the webshop",
            item=item,
        )  # fmt: skip
        self._another_pass = True
        self._discard([r for r in item.rows if r.system == WEBCRM])

    def _discard(self, rows: Iterable[InboxRecord]) -> None:
        """Take rows whose work is done out of the inbox."""
        for row in rows:
            if row in self.s:
                self.s.delete(row)

    def _refuse_after(self, item: Item, reason: str, *, retry: bool = False) -> None:
        item.refused = reason
        batch = Batch()
        self._put_aside(item, reason, batch, retry=retry)
        self._discard(batch.done_rows)

    def _order_backwrite(self, item: Item) -> None:
        """After creating a webshop order, write its id (and totals) onto the opportunity."""
        assert item.s_after is not None and item.c_raw is not None
        mapping = self.maps[Datatype.orders]
        d = decide(mapping, None, Side(item.c_raw, None), Side(item.s_after, None), self.binder)
        back = {n for n in d.to_webcrm if not mapping.by_name[n].direction.to_webshop}
        body = dict(item.crm_body or {})
        if back:
            body.update(mapping.to_webcrm(item.s_after, self.binder, back))
        self._erp_fields(body)
        item.crm_body = body

    def _write_webcrm(self, dt: Datatype, stream: Stream, items: list[Item]) -> None:
        if not items:
            return
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
            self._plan(dt, action, WEBCRM, str(label), ", ".join(sorted(item.crm_body)), item=item)
        if self.dry_run:
            return

        def on_send(indices: range) -> None:
            self._mark_sent(
                dt,
                [
                    (items[i].shop_id or "", records[i], items[i].s_raw)
                    for i in indices
                    if items[i].crm_create and items[i].shop_id
                ],
            )

        creates = any(item.crm_create for item in items)
        results = self.webcrm.upsert(
            stream.webcrm_entity, records, on_send=on_send if creates else None
        )
        for result in results:
            item = items[result.index]
            if result.error is not None:
                if item.crm_create and item.shop_id:
                    self._settle_refused(dt, [item.shop_id])
                self._refuse_after(item, f"webCRM refused: {result.error}")
                continue
            item.crm_sent = dict(records[result.index])
            if item.crm_create:
                item.crm_id = str(result.id)

    def _create_lines_for_new_opportunities(self, items: list[Item]) -> None:
        """A new opportunity made from a webshop order gets that order's lines."""
        line_map = self.maps[Datatype.order_lines]
        records: list[dict[str, Any]] = []
        owners: list[tuple[Item, dict[str, Any]]] = []
        for item in items:
            if item.crm_id is None or item.s_raw is None:
                continue
            org = item.crm_body.get("OpportunityOrganisationId") if item.crm_body else None
            for line in item.s_raw.get("lines") or []:
                try:
                    body = line_map.to_webcrm(line, self.binder)
                except MappingError as exc:
                    self._plan(
                        Datatype.order_lines, "put-aside", WEBCRM, str(line.get("id")), str(exc)
                    )
                    continue
                body["QuotationLineOpportunityId"] = int(item.crm_id)
                if org is not None:
                    body["QuotationLineOrganisationId"] = org
                records.append(body)
                owners.append((item, line))
                self._plan(
                    Datatype.order_lines, "create", WEBCRM, f"from webshop line {line.get('id')}"
                )
        if not records or self.dry_run:
            return
        lines_dt = Datatype.order_lines
        results = self.webcrm.upsert(
            "QuotationLine",
            records,
            on_send=lambda indices: self._mark_sent(
                lines_dt, [(str(owners[i][1]["id"]), records[i], owners[i][1]) for i in indices]
            ),
        )
        for r in results:
            if r.error is None and r.id is not None:
                owner, line = owners[r.index]
                self._pending_line_links.setdefault(id(owner), []).append(
                    (line, records[r.index], r.id)
                )
        for r in results:
            if r.error is not None:
                line = owners[r.index][1]
                self._settle_refused(lines_dt, [str(line.get("id"))])
                repo.put_aside(
                    self.s, Datatype.order_lines.value, WEBSHOP, str(line.get("id")),
                    f"webCRM refused: {r.error}", repo.fingerprint(line), line,
                )  # fmt: skip
                self.report.stats[Datatype.order_lines].put_aside += 1

    def _finalize(self, dt: Datatype, item: Item, batch: Batch) -> None:
        """Record the outcome: link, snapshot, counts; the rows leave the inbox."""
        stats = self.report.stats[dt]
        mapping = self.maps[dt]
        if self.dry_run:
            self._done(batch, *item.rows)
            return
        if item.crm_id is None or item.shop_id is None:
            self._done(batch, *item.rows)
            return
        link = item.link
        if link is None:
            clash = self._linked_elsewhere(dt, item.crm_id, item.shop_id)
            if clash is not None:
                # never a unique-key violation that fails the run after its writes (and
                # has the next run write them again): the pair is reported, not linked
                log.error("refusing a second link", datatype=dt.value, detail=clash)
                self._put_aside(item, clash, batch)
                return
            self._linked_now.add((dt.value, WEBCRM, item.crm_id))
            self._linked_now.add((dt.value, WEBSHOP, item.shop_id))
            # orders flush at once: their lines need the link's id
            link = repo.add_link(
                self.s, dt.value, item.crm_id, item.shop_id, item.created_by,
                flush=dt is Datatype.orders,
            )  # fmt: skip
            item.link = link
            if item.created_by == "merge":
                stats.linked_by_merge += 1
                self._plan(
                    dt, "link", "-", self._label(item), "matched by merge criteria", item=item
                )
        if item.shop_create:
            stats.created_in_webshop += 1
            stats.updates_to_webshop += 1
            self._deferred_intents.setdefault((dt.value, WEBCRM), []).append(item.crm_id)
        elif item.shop_body is not None and item.s_after is not None:
            stats.updated_in_webshop += 1
            stats.updates_to_webshop += 1
        if item.crm_create:
            stats.created_in_webcrm += 1
            stats.updates_to_webcrm += 1
            self._deferred_intents.setdefault((dt.value, WEBSHOP), []).append(item.shop_id)
        elif item.crm_sent:
            stats.updated_in_webcrm += 1
            stats.updates_to_webcrm += 1
        if item.shop_body is None and not item.crm_sent and not item.crm_create:
            stats.unchanged += 1
        repo.add_updates(
            self.s, dt.value, "to_webshop", 1 if item.s_after is not None and item.shop_body else 0
        )
        repo.add_updates(self.s, dt.value, "to_webcrm", 1 if item.crm_sent else 0)
        if link.state == "active":
            s_now = item.s_after if item.s_after is not None else item.s_raw
            c_raw = {} if item.crm_create else item.c_raw  # a new record holds what was sent
            props = snapshot_after(mapping, item.snapshot, c_raw, s_now, item.crm_sent)
            version = s_now.get("version") if s_now else None
            repo.put_snapshot(
                self.s, link, props,
                webcrm_updated(STREAMS[dt], item.c_raw) if item.c_raw else None,
                parse_time(s_now.get("updated_at")) if s_now else None,
                version if isinstance(version, int) else None,
            )  # fmt: skip
        if dt is Datatype.products and item.s_after is not None:
            self.binder.remember_sku(item.s_after.get("sku"), item.shop_id)
        if dt is Datatype.orders:
            self._finalize_order_lines(item, link)
            s_now = item.s_after if item.s_after is not None else item.s_raw
            if link.state == "active" and not item.shop_create and s_now and "lines" in s_now:
                self._line_pairs[item.shop_id] = s_now  # its lines are reconciled after the orders
                # ... and until that is done, a row in the inbox says so (a run that dies
                # before then leaves the work for the next one, not forgotten)
                repo.stage(
                    self.s, Datatype.order_lines.value, WEBSHOP, item.shop_id,
                    updated_at=None, data=None, parent_id=item.crm_id,
                )  # fmt: skip
        # a side's entry goes once that side's record was part of this item and synced
        # (not when only the other side's re-read record passed through unchanged)
        for system, aside_id, row in (
            (WEBCRM, item.crm_id, item.c_row),
            (WEBSHOP, item.shop_id, item.s_row),
        ):
            if (row is not None or item.source == system) and (
                dt.value,
                system,
                aside_id,
            ) in self._aside_seen:
                repo.clear_put_aside(self.s, dt.value, system, aside_id)
        self._done(batch, *item.rows)

    def _linked_elsewhere(self, dt: Datatype, crm_id: str, shop_id: str) -> str | None:
        """Why ``crm_id`` ⇄ ``shop_id`` cannot be linked (one is linked already), or None."""
        for system, rid in ((WEBCRM, crm_id), (WEBSHOP, shop_id)):
            if (dt.value, system, rid) in self._linked_now or repo.link_by_id(
                self.s, dt.value, system, rid
            ):
                return (
                    f"{system} record {rid} is linked already; webcrm:{crm_id} ⇄ "
                    f"webshop:{shop_id} was not linked (a duplicate: please merge by hand)"
                )
        return None

    def _finalize_order_lines(self, item: Item, link: Link) -> None:
        """Link the lines that travelled with a created order."""
        lines_dt = Datatype.order_lines
        if item.shop_create and item.s_after is not None and item.crm_lines is not None:
            shop_lines = item.s_after.get("lines") or []
            for crm_line, shop_line in zip(item.crm_lines, shop_lines, strict=False):
                self._link_line(
                    link,
                    str(crm_line["QuotationLineId"]),
                    str(shop_line["id"]),
                    WEBCRM,
                    crm_line,
                    shop_line,
                    {},
                    known_new=True,
                )
            for row in item.line_rows:
                if row in self.s:
                    self.s.delete(row)
            self.report.stats[lines_dt].created_in_webshop += len(shop_lines)
            self.report.stats[lines_dt].updates_to_webshop += len(shop_lines)
            repo.add_updates(self.s, lines_dt.value, "to_webshop", len(shop_lines))
        for shop_line, sent, new_id in self._pending_line_links.pop(id(item), []):
            self._deferred_intents.setdefault((lines_dt.value, WEBSHOP), []).append(
                str(shop_line["id"])
            )
            self._link_line(
                link,
                str(new_id),
                str(shop_line["id"]),
                WEBSHOP,
                {**sent, "QuotationLineId": new_id},
                shop_line,
                sent,
                known_new=True,
            )
            self.report.stats[lines_dt].created_in_webcrm += 1
            self.report.stats[lines_dt].updates_to_webcrm += 1
            repo.add_updates(self.s, lines_dt.value, "to_webcrm", 1)

    def _link_line(
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
        mapping = self.maps[Datatype.order_lines]
        link = None
        if not known_new:
            link = repo.link_by_webcrm(self.s, Datatype.order_lines.value, crm_id)
        if link is None:
            link = repo.add_link(
                self.s, Datatype.order_lines.value, crm_id, shop_id, created_by,
                parent_id=parent.id, flush=not known_new,
            )  # fmt: skip
        props = snapshot_after(mapping, previous, c_raw, s_raw, sent)
        repo.put_snapshot(self.s, link, props, None, None, None)
        return link

    # ------------------------------------------------------------------------- lines
    def _process_lines(self) -> None:
        """Order lines of linked orders: per order pair, reconcile its lines both ways."""
        lines_dt = Datatype.order_lines
        self._pending_line_links.clear()
        parents = set(repo.inbox_parents(self.s, lines_dt.value, WEBCRM))
        pairs: dict[str, tuple[Link, dict[str, Any] | None]] = {}
        due = dict.fromkeys(repo.inbox_record_ids(self.s, lines_dt.value, WEBSHOP))
        for shop_id, shop_raw in {**due, **self._line_pairs}.items():
            link = repo.link_by_webshop(self.s, Datatype.orders.value, shop_id)
            if link is not None and link.state == "active":
                pairs[link.webcrm_id] = (link, shop_raw)
            else:
                self._reconciled(shop_id)
        for opp_id in parents:
            if opp_id in pairs:
                continue
            link = repo.link_by_webcrm(self.s, Datatype.orders.value, opp_id)
            if link is not None and link.state == "active":
                if not self._echo_only(opp_id):
                    pairs[opp_id] = (link, None)
            else:
                reason = (
                    f"waiting for opportunity {opp_id} to be linked to an order"
                    if link is None
                    else f"the order of opportunity {opp_id} was deleted"
                )
                for row in repo.inbox_children(self.s, lines_dt.value, WEBCRM, opp_id):
                    if link is not None:
                        self.s.delete(row)
                    else:
                        if row.waiting_reason is None:
                            self._plan(
                                lines_dt, "wait", "-", f"webcrm:{row.record_id}", reason,
                                data=row.data,
                            )  # fmt: skip
                        row.waiting_reason = reason
        self._commit()
        for n, (_opp, (order_link, shop_raw)) in enumerate(sorted(pairs.items()), start=1):
            self._reconcile_lines(order_link, shop_raw)
            if n % 50 == 0:
                self._commit()
                self.on_progress(lines_dt, "synced", n)
        self._flush_lines()
        self._commit()

    def _aside_line(
        self, system: str, rid: str, reason: str, data: Mapping[str, Any] | None
    ) -> None:
        """Put one order line aside (rule 7): its order and the other lines go on."""
        lines_dt = Datatype.order_lines
        repo.put_aside(
            self.s, lines_dt.value, system, rid, reason,
            repo.fingerprint(data), dict(data) if data is not None else None,
        )  # fmt: skip
        self.report.stats[lines_dt].put_aside += 1

    def _reconciled(self, shop_order_id: str) -> None:
        """An order's lines are reconciled: its reminder leaves the inbox."""
        row = repo.inbox_get(self.s, Datatype.order_lines.value, WEBSHOP, shop_order_id)
        if row is not None:
            self.s.delete(row)

    def _echo_only(self, opp_id: str) -> bool:
        """True when an opportunity's staged lines are all linked and unchanged.

        They are then our own writes (or re-reads of the overlap window) coming back;
        the rows leave the inbox without fetching the webshop order.
        """
        lines_dt = Datatype.order_lines
        mapping = self.maps[lines_dt]
        rows = repo.inbox_children(self.s, lines_dt.value, WEBCRM, opp_id)
        for row in rows:
            if row.deleted or row.data is None:
                return False
            link = repo.link_by_webcrm(self.s, lines_dt.value, row.record_id)
            if link is None or link.state != "active":
                return False
            snap = repo.get_snapshot(self.s, link)
            if snap is None:
                return False
            values = mapping.webcrm_values(row.data)
            if any(snap.props.get(name, {}).get("c") != value for name, value in values.items()):
                return False
        for row in rows:
            self.s.delete(row)
        self.report.stats[lines_dt].unchanged += len(rows)
        return True

    def _reconcile_lines(self, order_link: Link, shop_raw: dict[str, Any] | None) -> None:
        lines_dt = Datatype.order_lines
        stats = self.report.stats[lines_dt]
        mapping = self.maps[lines_dt]
        opp_id = order_link.webcrm_id
        if shop_raw is None or "lines" not in shop_raw:
            shop_raw = self._fetch(Datatype.orders, WEBSHOP, order_link.webshop_id)
            if shop_raw is None:
                self._reconciled(order_link.webshop_id)
                return
        shop_lines: list[dict[str, Any]] = [dict(x) for x in shop_raw.get("lines") or []]
        by_shop = {str(x["id"]): x for x in shop_lines if x.get("id") is not None}
        links = {
            ln.webcrm_id: ln for ln in repo.children(self.s, order_link) if ln.state == "active"
        }
        links_by_shop = {ln.webshop_id: ln for ln in links.values()}
        rows = list(repo.inbox_children(self.s, lines_dt.value, WEBCRM, opp_id))
        # the deletion rows carry the opportunity as parent too
        new_list = [dict(x) for x in shop_lines]
        shop_changed = False
        crm_updates: list[
            tuple[Link | None, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]
        ] = []
        crm_deletes: list[Link] = []
        appended: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (crm raw, new shop line)
        handled_shop: set[str] = set()
        done_rows: list[InboxRecord] = []
        snapshots: list[tuple[Link, Props | None, dict[str, Any] | None, str]] = []
        # id() of a line in new_list → (the webCRM row that changed it, the line before;
        # None for a line added): a refused line is put aside without its neighbours
        changed_by: dict[int, tuple[InboxRecord, dict[str, Any] | None]] = {}
        share_shop = self._share(lines_dt, WEBSHOP).enabled
        share_crm = self._share(lines_dt, WEBCRM).enabled
        for row in rows:
            link = links.get(row.record_id)
            if row.deleted:
                if link is not None and link.webshop_id in by_shop and share_shop:
                    new_list = [x for x in new_list if str(x.get("id")) != link.webshop_id]
                    shop_changed = True
                    handled_shop.add(link.webshop_id)
                    stats.deleted += 1
                    self._plan(
                        lines_dt, "delete", WEBSHOP, link.webshop_id, "line deleted in webCRM"
                    )
                if link is not None:
                    link.state = "webcrm_deleted"
                done_rows.append(row)
                continue
            assert row.data is not None
            aside = repo.get_put_aside(self.s, lines_dt.value, WEBCRM, row.record_id)
            if aside is not None and aside.fingerprint == repo.fingerprint(row.data):
                done_rows.append(row)  # put aside and unchanged: not retried (rule 7)
                continue
            if link is not None:
                s_line = by_shop.get(link.webshop_id)
                handled_shop.add(link.webshop_id)
                if s_line is None:
                    # deleted in the webshop (the order no longer has it): delete in webCRM
                    if share_crm:
                        crm_deletes.append(link)
                    link.state = "webshop_deleted"
                    done_rows.append(row)
                    continue
                snap = repo.get_snapshot(self.s, link)
                prev = snap.props if snap else None
                d = decide(
                    mapping,
                    prev,
                    Side(row.data, webcrm_updated(STREAMS[lines_dt], row.data)),
                    Side(s_line, parse_time(shop_raw.get("updated_at"))),
                    self.binder,
                )
                stats.conflicts += len(d.conflicts)
                for prop, winner in sorted(d.conflicts.items()):
                    self._plan(
                        lines_dt, "conflict", winner, f"webcrm:{row.record_id}",
                        f"{prop}: {winner} was edited last",
                    )  # fmt: skip
                try:
                    if d.to_webshop and share_shop:
                        patch = mapping.to_webshop(row.data, self.binder, d.to_webshop)
                        for target in new_list:
                            if str(target.get("id")) == link.webshop_id:
                                changed_by[id(target)] = (row, dict(target))
                                target.update(patch)
                        shop_changed = True
                        self._plan(
                            lines_dt,
                            "update",
                            WEBSHOP,
                            link.webshop_id,
                            ", ".join(sorted(d.to_webshop)),
                        )
                    if d.to_webcrm and share_crm:
                        body = mapping.to_webcrm(s_line, self.binder, d.to_webcrm)
                        crm_updates.append((link, body, row.data, s_line))
                    elif not d.to_webshop:
                        stats.unchanged += 1
                        snapshots.append((link, prev, row.data, link.webshop_id))
                    else:
                        snapshots.append((link, prev, row.data, link.webshop_id))
                except MappingError as exc:
                    self._aside_line(WEBCRM, row.record_id, str(exc), row.data)
                done_rows.append(row)
                continue
            # a webCRM line not linked yet: match an unlinked webshop line, or add it
            if self._may_be_landing(lines_dt, row.data):
                left = max(self._unsettled.get(lines_dt, {}).values(), default=0.0)
                row.waiting_reason = _may_be_own_create(left)
                continue  # stays in the inbox
            key = self.matcher.line_key(WEBCRM, row.data)
            match = next(
                (
                    x
                    for x in shop_lines
                    if str(x.get("id")) not in links_by_shop
                    and str(x.get("id")) not in handled_shop
                    and self.matcher.line_key(WEBSHOP, x) == key
                ),
                None,
            )
            if match is not None:
                handled_shop.add(str(match["id"]))
                new_link = self._link_line(
                    order_link, row.record_id, str(match["id"]), "merge", row.data, match, {}
                )
                links[row.record_id] = new_link
                stats.linked_by_merge += 1
                done_rows.append(row)
                continue
            if not share_shop:
                done_rows.append(row)
                continue
            try:
                new_line = mapping.to_webshop(row.data, self.binder)
            except MappingError as exc:
                self._aside_line(WEBCRM, row.record_id, str(exc), row.data)
                done_rows.append(row)
                continue
            new_list.append(new_line)
            appended.append((row.data, new_line))
            changed_by[id(new_line)] = (row, None)
            shop_changed = True
            done_rows.append(row)
            self._plan(
                lines_dt,
                "create",
                WEBSHOP,
                f"from webcrm:{row.record_id}",
                f"order {order_link.webshop_id}",
            )
        # webshop lines: edits, additions and removals not yet handled
        org_id = self._organisation_of(shop_raw)
        crm_creates: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for s_line in shop_lines:
            sid = str(s_line.get("id"))
            if sid in handled_shop:
                continue
            link = links_by_shop.get(sid)
            if link is not None:
                snap = repo.get_snapshot(self.s, link)
                prev = snap.props if snap else None
                d = decide(mapping, prev, None, Side(s_line, None), self.binder)
                if d.to_webcrm and share_crm:
                    try:
                        body = mapping.to_webcrm(s_line, self.binder, d.to_webcrm)
                    except MappingError as exc:
                        self._aside_line(WEBSHOP, sid, str(exc), s_line)
                        continue
                    crm_updates.append((link, body, None, s_line))
                else:
                    snapshots.append((link, prev, None, sid))
                continue
            if not share_crm:
                continue
            if sid in self._unsettled.get(lines_dt, {}):
                wait = _may_still_land(self._unsettled[lines_dt][sid])
                self._plan(lines_dt, "wait", "-", f"webshop:{sid}", wait)
                continue
            if repo.get_put_aside(
                self.s, lines_dt.value, WEBSHOP, sid
            ) is not None and repo.get_put_aside(
                self.s, lines_dt.value, WEBSHOP, sid
            ).fingerprint == repo.fingerprint(s_line):  # type: ignore[union-attr]
                continue
            try:
                body = mapping.to_webcrm(s_line, self.binder)
            except MappingError as exc:
                repo.put_aside(
                    self.s, lines_dt.value, WEBSHOP, sid, str(exc), repo.fingerprint(s_line), s_line
                )
                stats.put_aside += 1
                continue
            body["QuotationLineOpportunityId"] = int(opp_id)
            if org_id is not None:
                body["QuotationLineOrganisationId"] = int(org_id)
            crm_creates.append((body, s_line))
            self._line_create_src[id(body)] = s_line
            self._plan(
                lines_dt, "create", WEBCRM, f"from webshop line {sid}", f"opportunity {opp_id}"
            )
        for link in list(links.values()):
            if (
                link.state == "active"
                and link.webshop_id not in by_shop
                and link.webshop_id not in handled_shop
            ):
                if link.webshop_id in {str(x.get("id")) for x in new_list}:
                    continue
                if share_crm:
                    crm_deletes.append(link)
                link.state = "webshop_deleted"
        if self.dry_run:
            for link in crm_deletes:
                self._plan(
                    lines_dt, "delete", WEBCRM, link.webcrm_id, "line deleted in the webshop"
                )
            return
        # --- write the webshop order's lines as a whole
        shop_now = shop_raw
        if shop_changed:
            version = shop_raw.get("version")
            from shopsync.connectors.webshop import client as ws

            try:
                try:
                    shop_now = self.webshop.update(
                        "orders", order_link.webshop_id, {"lines": new_list},
                        if_match=version if isinstance(version, int) else None,
                    )  # fmt: skip
                except (ws.WebshopValidationError, ws.WebshopConflict) as exc:
                    if not self._set_aside_refused_lines(exc, new_list, changed_by, snapshots):
                        raise
                    appended[:] = [a for a in appended if any(a[1] is x for x in new_list)]
                    if new_list != shop_lines:  # the lines that were not refused
                        shop_now = self.webshop.update(
                            "orders", order_link.webshop_id, {"lines": new_list},
                            if_match=version if isinstance(version, int) else None,
                        )  # fmt: skip
            except ws.WebshopPreconditionFailed:
                # The order changed meanwhile: keep the webCRM rows for the next pass/run.
                return
            except (ws.WebshopValidationError, ws.WebshopConflict) as exc:
                for row in done_rows:
                    if row.data is not None:
                        repo.put_aside(
                            self.s,
                            lines_dt.value,
                            WEBCRM,
                            row.record_id,
                            f"webshop refused: {exc}",
                            repo.fingerprint(row.data),
                            row.data,
                        )
                stats.put_aside += len(done_rows)
                for row in done_rows:
                    self.s.delete(row)
                self._reconciled(order_link.webshop_id)
                return
        for _row, before in changed_by.values():
            if before is not None:  # an update that was written (additions count below)
                stats.updated_in_webshop += 1
                stats.updates_to_webshop += 1
                repo.add_updates(self.s, lines_dt.value, "to_webshop", 1)
        for row in done_rows:  # a line put aside before and now through: no longer aside
            aside = repo.get_put_aside(self.s, lines_dt.value, WEBCRM, row.record_id)
            if aside is not None and aside.fingerprint != repo.fingerprint(row.data):
                repo.clear_put_aside(self.s, lines_dt.value, WEBCRM, row.record_id)
        now_lines = shop_now.get("lines") or []
        known = set(by_shop)
        fresh = [x for x in now_lines if str(x.get("id")) not in known]
        for (crm_raw, _sent_line), shop_line in zip(appended, fresh, strict=False):
            self._link_line(
                order_link,
                str(crm_raw["QuotationLineId"]),
                str(shop_line["id"]),
                WEBCRM,
                crm_raw,
                shop_line,
                {},
            )
            stats.created_in_webshop += 1
            stats.updates_to_webshop += 1
            repo.add_updates(self.s, lines_dt.value, "to_webshop", 1)
        now_by_id = {str(x.get("id")): x for x in now_lines}
        if shop_now is not shop_raw:
            self._order_follows_lines(order_link, shop_now)
        # --- webCRM: updates and creates in one PATCH, deletes one by one
        records = [
            {**body, "QuotationLineId": int(link.webcrm_id)}
            for link, body, _, _ in crm_updates
            if link is not None
        ]
        records += [body for body, _ in crm_creates]
        n_upd = len(crm_updates)

        def finish(results: Sequence[UpsertOutcome]) -> None:
            """After the batched PATCH: links, snapshots, deletes; the rows leave the inbox."""
            for r in results:
                if r.index < n_upd:
                    link, body, c_raw, s_line = crm_updates[r.index]
                    assert link is not None
                    if r.error is not None:
                        self._aside_line(
                            WEBSHOP, link.webshop_id, f"webCRM refused: {r.error}", s_line
                        )
                        continue
                    snap = repo.get_snapshot(self.s, link)
                    props = snapshot_after(
                        mapping,
                        snap.props if snap else None,
                        c_raw,
                        now_by_id.get(link.webshop_id, s_line),
                        body,
                    )
                    repo.put_snapshot(self.s, link, props, None, None, None)
                    stats.updated_in_webcrm += 1
                    stats.updates_to_webcrm += 1
                    repo.add_updates(self.s, lines_dt.value, "to_webcrm", 1)
                    self._plan(lines_dt, "update", WEBCRM, link.webcrm_id, ", ".join(sorted(body)))
                else:
                    body, s_line = crm_creates[r.index - n_upd]
                    self._line_create_src.pop(id(body), None)
                    sid = str(s_line.get("id"))
                    if r.error is not None or r.id is None:
                        self._settle_refused(lines_dt, [sid])
                        self._aside_line(WEBSHOP, sid, f"webCRM refused: {r.error}", s_line)
                        continue
                    self._deferred_intents.setdefault((lines_dt.value, WEBSHOP), []).append(sid)
                    self._link_line(
                        order_link,
                        str(r.id),
                        str(s_line["id"]),
                        WEBSHOP,
                        {**body, "QuotationLineId": r.id},
                        s_line,
                        body,
                    )
                    stats.created_in_webcrm += 1
                    stats.updates_to_webcrm += 1
                    repo.add_updates(self.s, lines_dt.value, "to_webcrm", 1)
            for link in crm_deletes:
                self.webcrm.delete("QuotationLine", int(link.webcrm_id))
                stats.deleted += 1
                self._plan(
                    lines_dt, "delete", WEBCRM, link.webcrm_id, "line deleted in the webshop"
                )
            for link, prev, c_raw, sid in snapshots:
                s_line = now_by_id.get(sid)
                if s_line is None:
                    continue
                props = snapshot_after(mapping, prev, c_raw, s_line, {})
                repo.put_snapshot(self.s, link, props, None, None, None)
            for row in done_rows:
                if row in self.s:
                    self.s.delete(row)
            self._reconciled(order_link.webshop_id)

        if not records:  # nothing for webCRM: finish now, holding nothing in memory
            finish([])
            return
        self._line_queue.append((records, finish))
        if sum(len(recs) for recs, _ in self._line_queue) >= 2 * self.config.webcrm.batch_size:
            self._flush_lines(final=False)

    def _flush_lines(self, *, final: bool = True) -> None:
        """PATCH the line writes of many orders together (the rate limit counts calls).

        Unless ``final``, only whole batches go: an order whose lines straddle the cut
        keeps the rest queued and is finished when all of its lines have an answer.
        """
        size = self.config.webcrm.batch_size
        total = sum(len(recs) for recs, _ in self._line_queue)
        budget = total if final else (total // size) * size
        records: list[dict[str, Any]] = []
        taken: list[tuple[int, int]] = []  # (queue position, how many of its records)
        for pos, (recs, _) in enumerate(self._line_queue):
            if len(records) >= budget:
                break
            start = self._line_sent.get(pos, 0)
            n = min(len(recs) - start, budget - len(records))
            if n > 0:
                records.extend(recs[start : start + n])
                taken.append((pos, n))
        lines_dt = Datatype.order_lines

        def on_send(indices: range) -> None:
            sources = [self._line_create_src.get(id(records[i])) for i in indices]
            self._mark_sent(
                lines_dt,
                [
                    (str(src["id"]), records[i], src)
                    for i, src in zip(indices, sources, strict=True)
                    if src is not None
                ],
            )

        results = self.webcrm.upsert("QuotationLine", records, on_send=on_send) if records else []
        by_index = {r.index: r for r in results}
        offset = 0
        for pos, n in taken:
            got = self._line_results.setdefault(pos, [])
            base = len(got)  # read once: a generator extending ``got`` would see it grow
            got.extend(
                _Outcome(base + k, by_index[offset + k].id, by_index[offset + k].error)
                for k in range(n)
            )
            self._line_sent[pos] = self._line_sent.get(pos, 0) + n
            offset += n
        done = 0
        for pos, (recs, finish) in enumerate(self._line_queue):
            if self._line_sent.get(pos, 0) < len(recs):
                break
            finish(self._line_results.get(pos, []))
            done = pos + 1
        self._line_queue = self._line_queue[done:]
        self._line_sent = {p - done: n for p, n in self._line_sent.items() if p >= done}
        self._line_results = {p - done: r for p, r in self._line_results.items() if p >= done}

    def _set_aside_refused_lines(
        self,
        exc: Exception,
        new_list: list[dict[str, Any]],
        changed_by: dict[int, tuple[InboxRecord, dict[str, Any] | None]],
        snapshots: list[tuple[Link, Props | None, dict[str, Any] | None, str]],
    ) -> bool:
        """The webshop refused an order's lines (they are written as a whole). When every
        error names a line this run added or changed, put those lines aside with the
        reason, take them out of ``new_list`` (an added line) or undo their change, and
        answer True so the rest is written without them (rule 7: never block the others).
        """
        import re

        errors = [str(e) for e in getattr(exc, "errors", None) or []]
        by_index: dict[int, list[str]] = {}
        for text in errors:
            m = re.match(r"lines\[(\d+)\]", text)
            if m is None:
                return False
            by_index.setdefault(int(m.group(1)), []).append(text)
        if not by_index or any(
            i >= len(new_list) or id(new_list[i]) not in changed_by for i in by_index
        ):
            return False
        lines_dt = Datatype.order_lines
        dropped: set[int] = set()
        for index, texts in sorted(by_index.items()):
            target = new_list[index]
            row, before = changed_by.pop(id(target))
            reason = "webshop refused: " + "; ".join(texts)
            repo.put_aside(
                self.s, lines_dt.value, WEBCRM, row.record_id, reason,
                repo.fingerprint(row.data), row.data,
            )  # fmt: skip
            self.report.stats[lines_dt].put_aside += 1
            self._plan(
                lines_dt, "put-aside", WEBSHOP, f"webcrm:{row.record_id}", reason, data=row.data
            )
            if before is None:
                dropped.add(id(target))
            else:
                target.clear()
                target.update(before)
                # the snapshot stays as it was: the change is seen again when retried
                sid = str(before.get("id"))
                snapshots[:] = [x for x in snapshots if x[3] != sid]
        new_list[:] = [x for x in new_list if id(x) not in dropped]
        return True

    def _order_follows_lines(self, order_link: Link, shop_now: dict[str, Any]) -> None:
        """After writing an order's lines, carry what they changed on the order itself
        (``total_excl_vat`` → ``OpportunityOrderValue``) to webCRM in the same run, and
        agree on the order as it now stands, so the next run has nothing left (rule 4)."""
        orders = Datatype.orders
        mapping = self.maps[orders]
        snap = repo.get_snapshot(self.s, order_link)
        prev = snap.props if snap is not None else None
        d = decide(mapping, prev, None, Side(shop_now, None), self.binder)
        body: dict[str, Any] = {}
        if d.to_webcrm and self._share(orders, WEBCRM).enabled:
            try:
                body = mapping.to_webcrm(shop_now, self.binder, d.to_webcrm)
            except (MappingError, Unresolved):
                return  # the order itself is processed (and put aside) on the next run
            self._erp_fields(body)
            record = {**body, "OpportunityId": int(order_link.webcrm_id)}
            result = self.webcrm.upsert("Opportunity", [record])[0]
            if result.error is not None:
                return  # the snapshot stays: the next run sees the change again
            stats = self.report.stats[orders]
            stats.updated_in_webcrm += 1
            stats.updates_to_webcrm += 1
            repo.add_updates(self.s, orders.value, "to_webcrm", 1)
            self._plan(orders, "update", WEBCRM, order_link.webcrm_id, ", ".join(sorted(body)))
        props = snapshot_after(mapping, prev, None, shop_now, body)
        version = shop_now.get("version")
        repo.put_snapshot(
            self.s, order_link, props, None, parse_time(shop_now.get("updated_at")),
            version if isinstance(version, int) else None,
        )  # fmt: skip

    def _organisation_of(self, shop_order: Mapping[str, Any]) -> str | None:
        customer = shop_order.get("customer_id")
        if customer is None:
            return None
        return self.binder.webcrm_id(Datatype.customers, str(customer))

    # ----------------------------------------------------------------------- summary
    def _count_waiting(self) -> None:
        for (dt, _system, is_waiting), n in repo.inbox_counts(self.s).items():
            if is_waiting:
                self.report.stats[Datatype(dt)].waiting += n


def _flat(body: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in body.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _may_still_land(seconds_left: float) -> str:
    return (
        f"a create sent to webCRM before an interruption may still land; webCRM is "
        f"asked whether it did in {max(seconds_left, 0.0):.0f} s (a later run)"
    )


def _may_be_own_create(seconds_left: float) -> str:
    return (
        f"new in webCRM while creates interrupted earlier are unresolved: it may be one "
        f"of them; decided in {max(seconds_left, 0.0):.0f} s (a later run)"
    )
