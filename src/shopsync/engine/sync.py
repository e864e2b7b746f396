"""The sync engine's front door: one run over the four links.

A run has two phases per datatype, in the order of rule 6 (customers, products, then
orders with their lines):

1. **Stage** (:mod:`staging`). Read each side's changes since its cursor into the
   ``inbox`` table, a page at a time; each page and the cursor advance past it commit
   together. Unchanged records of linked pairs never reach the inbox.
2. **Process.** Take inbox rows in batches: the planner (:mod:`planner`, with
   :mod:`pairing`) pairs each with its linked counterpart and decides per property
   what flows where, or matches an unlinked record by the merge criteria, or creates
   it on the other side; the writers (:mod:`writers`) send the batch (webshop batch or
   parallel requests with ``Idempotency-Key`` / ``If-Match``, webCRM in whole ``PATCH``
   batches); the recorder (:mod:`recorder`) stores links and snapshots and takes the
   processed rows out of the inbox, in one transaction. Order lines follow, per
   linked order (:mod:`lines`).

Because a record leaves the inbox only in the transaction that records its outcome, a
run killed at any instant resumes where it stopped; a create whose answer was lost is
recognised by the webshop's idempotency key or by webCRM's intents (:mod:`creates`).
A dry run is the same engine with dry writers and a dry recorder, rolled back at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from shopsync.config.model import Config, Datatype
from shopsync.engine.binder import Binder
from shopsync.engine.context import RunContext
from shopsync.engine.creates import Creates
from shopsync.engine.heap import quiet_collector
from shopsync.engine.lines.process import DryLineProcessor, LineProcessor
from shopsync.engine.lines.travel import DryTravel, Travel
from shopsync.engine.mapping.base import LinkMapping
from shopsync.engine.matching import Matcher
from shopsync.engine.model import BATCH, PASSES, RUN_ORDER, Batch
from shopsync.engine.pairing import Pairing
from shopsync.engine.planner import Planner
from shopsync.engine.ports import WebcrmPort, WebshopPort
from shopsync.engine.recorder import DryRecorder, Recorder
from shopsync.engine.report import RunReport
from shopsync.engine.restage import Targets, stage_targets
from shopsync.engine.staging import SWEEP_META, Stager
from shopsync.engine.streams import format_time, parse_time
from shopsync.engine.writers.webcrm import DryWebcrmWriter, WebcrmWriter
from shopsync.engine.writers.webshop import DryWebshopWriter, WebshopWriter
from shopsync.store import repo
from shopsync.store.models import Run

__all__ = ["SWEEP_META", "Engine"]


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
        self.ctx = ctx = RunContext(
            config, session, webcrm, webshop, mappings, Binder(session, config),
            Matcher(config), RunReport(dry_run=dry_run),
            on_progress or (lambda dt, phase, n: None), dry_run=dry_run,
        )  # fmt: skip
        self.report = ctx.report
        self.recorder = DryRecorder(ctx) if dry_run else Recorder(ctx)
        self.creates = Creates(ctx, self.recorder)
        self.pairing = Pairing(ctx, self.recorder)
        self.stager = Stager(ctx)
        self.travel = (DryTravel if dry_run else Travel)(ctx, self.recorder, self.creates)
        self.planner = Planner(ctx, self.pairing, self.creates, self.recorder, self.travel)
        self.to_webshop = (DryWebshopWriter if dry_run else WebshopWriter)(
            ctx, self.pairing, self.planner, self.recorder, self.travel
        )
        self.to_webcrm = (DryWebcrmWriter if dry_run else WebcrmWriter)(
            ctx, self.creates, self.recorder, self.travel
        )
        self.lines = (DryLineProcessor if dry_run else LineProcessor)(
            ctx, self.pairing, self.recorder, self.creates
        )

    def run(
        self,
        only: Sequence[Datatype] | None = None,
        *,
        full: bool = False,
        sweep: bool = False,
        records: Targets | None = None,
    ) -> RunReport:
        """One sync run over ``only`` (default all) datatypes; ``sweep`` (or ``full``)
        reads every webCRM product and quotation line now to see deletes.

        ``records`` names records to sync on demand (datatype → system → ids): each is
        read by id (:mod:`restage`), and its datatype's changes since the cursor are not
        read, unless that datatype is also in ``only``. With ``records`` and no
        ``only``, the run is about those records alone.
        """
        ctx = self.ctx
        ctx.force_sweep, ctx.full = sweep or full, full
        started = time.monotonic()
        crm0, shop0 = ctx.webcrm.requests_made, ctx.webshop.requests_made
        targets = records or {}
        read: set[Datatype] = set(Datatype) if only is None and not targets else set(only or ())
        if Datatype.orders in read:
            read.add(Datatype.order_lines)
        wanted = read | set(targets)
        if Datatype.orders in wanted:
            wanted.add(Datatype.order_lines)
        with quiet_collector():
            ctx.onboarded_at = self._onboarding()
            mode = "dry-run" if ctx.dry_run else ("full" if full else "incr")
            run_id = repo.start_run(ctx.session, mode).id
            ctx.commit()
            try:
                self._run(wanted, read, targets)
            except BaseException as exc:
                ctx.session.rollback()
                self._finish(run_id, "failed", started, crm0, shop0, error=repr(exc)[:2000])
                raise
            self._finish(run_id, "dry-run" if ctx.dry_run else "ok", started, crm0, shop0)
        return self.report

    def _run(self, wanted: set[Datatype], read: set[Datatype], targets: Targets) -> None:
        for dt in (*RUN_ORDER, Datatype.order_lines):
            if dt in read:
                self.stager.stage(dt)
            for system, ids in targets.get(dt, {}).items():
                stage_targets(self.ctx, self.stager, dt, system, ids)
        for dt in RUN_ORDER:
            if dt in wanted:
                self.creates.resolve(dt)
                self._process(dt)
        if Datatype.order_lines in wanted:
            self.stager.lines_of_edited_orders()
            self.creates.resolve(Datatype.order_lines)
            self.lines.process()
        for (name, _system, is_waiting), n in repo.inbox_counts(self.ctx.session).items():
            if is_waiting:
                self.report.stats[Datatype(name)].waiting += n

    def _finish(
        self,
        run_id: int,
        status: str,
        started: float,
        crm0: int,
        shop0: int,
        error: str | None = None,
    ) -> None:
        ctx = self.ctx
        self.report.seconds = time.monotonic() - started
        self.report.webcrm_requests = ctx.webcrm.requests_made - crm0
        self.report.webshop_requests = ctx.webshop.requests_made - shop0
        if ctx.dry_run:
            ctx.session.rollback()
        run = ctx.session.get(Run, run_id)
        if run is not None:
            run.status = status
            run.finished_at = datetime.now(UTC)
            run.stats = self.report.to_json()
            run.error = error
        ctx.session.commit()

    def _onboarding(self) -> datetime:
        ctx = self.ctx
        value = repo.get_meta(ctx.session, "onboarded_at")
        if value is None:
            repo.set_meta(ctx.session, "onboarded_at", format_time(ctx.now))
            ctx.commit()
            return ctx.now
        parsed = parse_time(value)
        assert parsed is not None
        return parsed

    def _process(self, dt: Datatype) -> None:
        """Work through the inbox of one datatype until a pass makes no progress."""
        ctx = self.ctx
        claimed: set[int] = set()
        for _ in range(PASSES):
            progress = False
            after = 0
            claimed.clear()
            self.creates.open_webshop_creates(dt)
            while rows := repo.inbox_batch(ctx.session, dt.value, after, BATCH):
                after = rows[-1].id
                batch = Batch(claimed=claimed)
                self.pairing.prefetch(dt, rows)
                for row in rows:
                    if row.id not in batch.claimed:
                        self.planner.plan_row(dt, row, batch)
                self._execute(dt, batch)
                progress = progress or batch.progress or ctx.another_pass
                ctx.another_pass = False
                ctx.commit()
                ctx.progress(dt, "synced", after)
            self.to_webcrm.flush(dt)
            ctx.commit()
            if not progress:
                break

    def _execute(self, dt: Datatype, batch: Batch) -> None:
        """Write a planned batch: the webshop side now, the webCRM side queued for whole
        PATCH batches; what needs no webCRM write is recorded at once."""
        items = [i for i in batch.items if i.refused is None]
        self.to_webshop.write_all(dt, items)
        self.recorder.expect(dt, items)
        for item in items:
            if item.refused is not None or item.retry:
                continue
            if item.crm_body is not None:
                self.to_webcrm.enqueue(item)
                batch.progress = True
            else:
                self.recorder.record(dt, item, batch)
        self.recorder.discard(batch.done_rows)
        self.to_webcrm.flush_full(dt)
