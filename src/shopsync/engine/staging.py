"""Staging: each side's changes since its cursor, into the inbox a page at a time.

Each page, its records' merge keys and the cursor's advance past it commit together,
so a run killed while reading resumes after the last committed page. A record whose
values are the agreed ones (an echo of our own write, a re-read of the overlap window,
a sweep's unchanged row) never reaches the inbox (:mod:`unchanged`).

webCRM cannot report deletes, so a *delete sweep* reads every row of a datatype that
has one (products, quotation lines) on its own schedule and stages a deletion for each
linked record it did not see; between sweeps, the lines of opportunities edited in
webCRM are re-read per batch of opportunities (:meth:`Stager.lines_of_edited_orders`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from shopsync.config.model import Datatype
from shopsync.connectors.webcrm.queries import build_select, in_
from shopsync.engine import hygiene
from shopsync.engine.context import RunContext
from shopsync.engine.model import WEBCRM, WEBSHOP, other
from shopsync.engine.policies import POLICIES
from shopsync.engine.streams import STREAMS, format_time, parse_time, webcrm_id, webcrm_updated
from shopsync.engine.unchanged import Staged, without_unchanged
from shopsync.store import repo

log = structlog.get_logger("shopsync.engine")

SWEEP_META = "sweep:"
"""State-database meta key prefix: the time of each datatype's last delete sweep."""
SETTLED_META = "settled:"
"""Meta key prefix (``settled:<datatype>:webcrm``): a time before which every webCRM
write had committed when the last incremental read began (:class:`Cursor`)."""
LINES_QUERY_CHUNK = 200
"""Opportunities whose lines one ``/Queries`` request asks for between sweeps."""


@dataclass
class Cursor:
    """One side's incremental position in one datatype (dlt's ``Incremental``).

    ``start`` is where this run reads from (None: everything), ``last`` the newest
    change time seen so far; :meth:`save` stores ``last`` (after the page it covers).

    ``settled`` bounds webCRM's read overlap: the run that saved the cursor began
    reading at its ``ctx.now``, so every write older than that, less the overlap (how
    late a write may commit) and as much again for the clocks' skew, was there to be
    read. A cursor left behind by a burst of writes long ago then costs one page per
    run instead of the burst's last ``overlap_seconds`` read again each time.
    """

    datatype: Datatype
    system: str
    start: datetime | None
    last: datetime | None
    settled: datetime | None = None
    _settled_saved: bool = field(default=False, init=False, repr=False)

    @classmethod
    def load(cls, ctx: RunContext, dt: Datatype, system: str, *, full: bool) -> Cursor:
        start = None if full else parse_time(repo.get_cursor(ctx.session, dt.value, system))
        settled = parse_time(repo.get_meta(ctx.session, cls._settled_key(dt, system)))
        return cls(dt, system, start, start, settled)

    @staticmethod
    def _settled_key(dt: Datatype, system: str) -> str:
        return f"{SETTLED_META}{dt.value}:{system}"

    def advance(self, updated: datetime | None) -> None:
        if updated is not None and (self.last is None or updated > self.last):
            self.last = updated

    def in_window(self, updated: datetime | None, overlap: timedelta) -> bool:
        """Whether a row read by a full scan is new enough to stage (the overlap
        window re-reads rows that changed while the last run read)."""
        return self.start is None or updated is None or updated >= self.start - overlap

    def save(self, ctx: RunContext) -> None:
        value = format_time(self.last) if self.last else None
        repo.set_cursor(ctx.session, self.datatype.value, self.system, value)
        if self.system == WEBCRM and not self._settled_saved:  # the same all run long
            margin = 2 * timedelta(seconds=ctx.config.webcrm.overlap_seconds)
            settled = format_time(ctx.now - margin)
            repo.set_meta(ctx.session, self._settled_key(self.datatype, self.system), settled)
            self._settled_saved = True


class Stager:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.swept_lines = False
        self._page: list[Staged] = []

    def stage(self, dt: Datatype) -> None:
        self.stage_webcrm(dt)
        if STREAMS[dt].webshop_collection is not None:
            self.stage_webshop(dt)

    # ----------------------------------------------------------------------- webCRM
    def stage_webcrm(self, dt: Datatype) -> None:
        ctx, stream = self.ctx, STREAMS[dt]
        cursor = Cursor.load(ctx, dt, WEBCRM, full=ctx.full)
        if dt is Datatype.order_lines:
            ctx.lines_complete = cursor.start is None
        if stream.webcrm_full_scan and (cursor.start is None or self.sweep_due(dt)):
            self.sweep(dt, cursor)
            return
        stats = ctx.report.stats[dt]
        pages = ctx.webcrm.iter_updated_since(
            stream.webcrm_entity, cursor.start, settled=cursor.settled
        )
        for page in pages:
            stats.received_webcrm += len(page)
            for rec in page:
                rid = webcrm_id(stream, rec)
                if self.unreadable(dt, WEBCRM, rid, rec):
                    continue
                updated = webcrm_updated(stream, rec)
                self.collect(dt, rid, updated, rec)
                stats.read_webcrm += 1
                cursor.advance(updated)
            self.flush(dt, WEBCRM)
            cursor.save(ctx)
            ctx.commit()
            ctx.progress(dt, "read webCRM", stats.read_webcrm)

    def sweep(self, dt: Datatype, cursor: Cursor) -> None:
        """Read every webCRM row of ``dt``: changed rows are staged, and each linked
        record not among them is staged as deleted (rule 5)."""
        ctx, stream = self.ctx, STREAMS[dt]
        stats = ctx.report.stats[dt]
        seen: set[str] = set()
        overlap = timedelta(seconds=ctx.config.webcrm.overlap_seconds)
        for page in ctx.webcrm.iter_all(stream.webcrm_entity):
            stats.received_webcrm += len(page)
            for rec in page:
                rid = webcrm_id(stream, rec)
                seen.add(rid)
                if self.unreadable(dt, WEBCRM, rid, rec):
                    continue
                updated = webcrm_updated(stream, rec)
                if cursor.in_window(updated, overlap):
                    self.collect(dt, rid, updated, rec)
                    stats.read_webcrm += 1
                cursor.advance(updated)
            self.flush(dt, WEBCRM)
            ctx.commit()
            ctx.progress(dt, "read webCRM", stats.read_webcrm)
        for rid, parent in repo.missing_webcrm_ids(ctx.session, dt.value, seen):
            self.stage_deleted(dt, WEBCRM, rid, parent)
        cursor.save(ctx)
        repo.set_meta(ctx.session, SWEEP_META + dt.value, format_time(ctx.now))
        self.swept_lines = self.swept_lines or dt is Datatype.order_lines
        ctx.plan(dt, "sweep", "-", f"webcrm:{stream.webcrm_entity}", f"{len(seen)} read")
        ctx.commit()

    def sweep_due(self, dt: Datatype) -> bool:
        """Whether this run reads every webCRM row of ``dt`` to see its deletes."""
        if self.ctx.force_sweep:
            return True
        last = parse_time(repo.get_meta(self.ctx.session, SWEEP_META + dt.value))
        interval = timedelta(minutes=self.ctx.config.deletes.sweep_interval_minutes)
        return last is None or self.ctx.now - last >= interval

    def lines_of_edited_orders(self) -> None:
        """Between sweeps: the lines of each linked opportunity edited in webCRM (its
        values differ from the agreed ones: not our own write read back), read by one
        ``/Queries`` request per :data:`LINES_QUERY_CHUNK` opportunities, show which of
        its linked lines were deleted in webCRM, so a line deleted together with an
        edit of its opportunity is seen at once."""
        ctx, lines = self.ctx, Datatype.order_lines
        if ctx.lines_complete or self.swept_lines or not ctx.edited_opportunities:
            return
        by_opp = repo.line_links_of_orders(ctx.session, sorted(ctx.edited_opportunities))
        ctx.edited_opportunities.clear()
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
                for page in ctx.webcrm.iter_query(script)
                for rec in page
            }
            for opp_id in chunk:
                for link in by_opp[opp_id]:
                    staged = repo.inbox_get(ctx.session, lines.value, WEBCRM, link.webcrm_id)
                    if link.webcrm_id not in present and (staged is None or staged.deleted):
                        self.stage_deleted(lines, WEBCRM, link.webcrm_id, opp_id)
            ctx.commit()  # the session does not autoflush: the deletions must be seen

    def stage_deleted(self, dt: Datatype, system: str, rid: str, parent: str | None) -> None:
        repo.stage(
            self.ctx.session, dt.value, system, rid,
            updated_at=self.ctx.now, data=None, deleted=True, parent_id=parent,
        )  # fmt: skip

    # ---------------------------------------------------------------------- webshop
    def stage_webshop(self, dt: Datatype) -> None:
        ctx, stream = self.ctx, STREAMS[dt]
        assert stream.webshop_collection is not None
        stats = ctx.report.stats[dt]
        cursor = Cursor.load(ctx, dt, WEBSHOP, full=ctx.full)
        for page in ctx.webshop.iter_changes(stream.webshop_collection, cursor.start, True):
            for item in page.items:
                rid = str(item.get("id"))
                if self.unreadable(dt, WEBSHOP, rid, item):
                    continue
                updated = parse_time(item.get("updated_at"))
                self.collect(dt, rid, updated, None if item.get("deleted") else item)
                stats.read_webshop += 1
                cursor.advance(updated)
            self.flush(dt, WEBSHOP)
            cursor.save(ctx)
            ctx.commit()
            ctx.progress(dt, "read webshop", stats.read_webshop)

    # ------------------------------------------------------------------------ pages
    def unreadable(self, dt: Datatype, system: str, rid: str, rec: Mapping[str, Any]) -> bool:
        """Put aside a record that cannot be synced as read (see :mod:`hygiene`).

        It is not staged. Read again unchanged (an overlap window, a full scan), it is
        not reported again; its next version is read and staged as any other.
        """
        why = hygiene.problem(STREAMS[dt], system, rec)
        if why is None:
            return False
        self._aside_as_read(dt, system, rid, rec, why)
        return True

    def _aside_as_read(
        self, dt: Datatype, system: str, rid: str, rec: Mapping[str, Any], why: str
    ) -> None:
        ctx = self.ctx
        fp = repo.fingerprint(rec)
        entry = repo.get_put_aside(ctx.session, dt.value, system, rid)
        if entry is not None and entry.fingerprint == fp:
            return
        repo.put_aside(ctx.session, dt.value, system, rid, why, fp, hygiene.cleaned(rec))
        ctx.report.stats[dt].put_aside += 1
        ctx.plan(dt, "put-aside", other(system), f"{system}:{rid}", why, data=rec, system=system)
        log.warning("record put aside as read", datatype=dt.value, system=system, id=rid)

    def _not_finite(
        self,
        dt: Datatype,
        system: str,
        entry: Staged,
        as_read: Mapping[str, dict[str, Any] | None],
    ) -> bool:
        """Put aside a record about to be staged that holds NaN or Infinity, as it was
        read (``as_read``, by id, when the staged one has lost its nulls)."""
        rid, _, data, _ = entry
        why = hygiene.not_finite(data) if data is not None else None
        if why is not None:
            self._aside_as_read(dt, system, rid, as_read.get(rid, data) or {}, why)
        return why is not None

    def collect(
        self, dt: Datatype, rid: str, updated: datetime | None, data: dict[str, Any] | None
    ) -> None:
        """Collect a record for :meth:`flush` (staged a page at a time)."""
        self._page.append((rid, updated, data, POLICIES[dt].parent_of(data)))

    def flush(self, dt: Datatype, system: str) -> None:
        """Stage the collected page and refresh the merge keys of its records.

        Linked records keep their keys: a VAT number a linked pair holds is still a
        branch number that makes a new record's match ambiguous (docs/mapping.md,
        "What the engine's look-up must report"). A deleted record's keys go.
        """
        page, self._page = self._page, []
        if not self.ctx.full:
            page = without_unchanged(self.ctx, dt, system, page)
        as_read: dict[str, dict[str, Any] | None] = {}
        if system == WEBCRM:
            # The nulls go first: a null is no NaN, and the walk for one then reads an
            # organisation's 15 set fields, not its 112.
            as_read = {rid: data for rid, _, data, _ in page}
            page = [(rid, at, without_nulls(data), parent) for rid, at, data, parent in page]
        page = [entry for entry in page if not self._not_finite(dt, system, entry, as_read)]
        if not page:
            return
        ctx = self.ctx
        repo.stage_page(ctx.session, dt.value, system, page)
        if not POLICIES[dt].keeps_merge_keys:
            return
        keys = {
            rid: ctx.matcher.keys(dt, system, data) if data is not None else []
            for rid, _, data, _ in page
        }
        ctx.merge_keys_added += repo.replace_merge_keys(ctx.session, dt.value, system, keys)


def without_nulls(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A webCRM record as the inbox keeps it: without its null fields.

    webCRM hands back every field of its definition, null when unset: an organisation
    has 112, of which a typical one sets 15 (3.2 kB of JSON, 0.5 kB without the nulls).
    Every reader of a staged record takes a field with ``.get`` (the mapping, the merge
    keys, the labels, line pairing), so a null field and an absent one read the same
    (``tests/engine/test_staging_nulls.py`` holds them to it); the inbox's JSON is then a
    sixth of the size to write, for PostgreSQL to parse and store (above 2 kB it was
    compressed out of line), and to read back.
    """
    if record is None:
        return None
    return {name: value for name, value in record.items() if value is not None}
