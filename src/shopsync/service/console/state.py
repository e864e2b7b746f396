"""The console's work beside the service: what each run did, switches, retries.

The console needs two things from a run that the service does not keep: the run's
actions (``RunReport.plan``, for the Activity page) and the links it touched (to keep
the search terms current). It gets them by wrapping the one call every service run goes
through, ``Installation.sync`` (:meth:`Console.attach`): after the run the plan is
stored. The switches need no wrapping: ``Installation.run_config`` applies them to every
run, the service's and ``shopsync sync``'s alike. The engine and the scheduler stay as
they are, and runs of ``shopsync sync`` started by hand still count in the per-day
update figures, which are read from the ``runs`` table.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopsync.config.model import Config, Datatype
from shopsync.engine.labels import snapshot_label
from shopsync.engine.report import PlanLine, RunReport
from shopsync.engine.restage import Targets
from shopsync.logs import scrub
from shopsync.store import console_queries as cq
from shopsync.store import console_search as cs
from shopsync.store import repo
from shopsync.store.models import Link, Run

if TYPE_CHECKING:
    from shopsync.runtime import Installation
    from shopsync.service.app import Service

log = structlog.get_logger("shopsync.console")

TERMS_CHUNK = 5000
"""Links given search terms per transaction while catching up."""
TERMS_SECONDS = 2.0
"""How long one catch-up may take after a run (the next run waits for it); a large
installation's first catch-up therefore spreads over several runs."""
LINK_COUNTS_TTL = 60.0
"""Seconds the overview may show link counts from before a run it was not told of."""
_REF = re.compile(r"\b(webcrm|webshop)(?: line)?[: ]([^\s⇄]+)")


class Console:
    """Everything the console's pages and buttons use, around one service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.inst = service.inst
        self.file_config: Config = service.inst.config
        """The configuration as loaded (switches are applied on a copy)."""
        self.last_run: dict[str, float] = {}
        """Per datatype: when the last run that covered it ended (epoch seconds)."""
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._link_counts: tuple[float, dict[tuple[str, str], int]] | None = None

    def writer(self) -> Session:
        """A session for the console's writes that takes SQLite's write lock when it
        begins, as a sync run's does: one that began with a read could not wait for a
        run's commit (SQLite answers "locked" at once), it queues behind it instead."""
        return Session(
            self.inst.db.execution_options(sqlite_immediate=True),
            expire_on_commit=False,
            autoflush=False,
        )

    def link_counts(self, s: Any) -> dict[tuple[str, str], int]:
        """Links per datatype and state, counted again after each run (and at most
        :data:`LINK_COUNTS_TTL` old otherwise, for runs of ``shopsync sync`` by hand):
        counting a million links takes about a second, too long for every page, and
        too long to add to every run when nobody looks."""
        cached = self._link_counts
        if cached is None or time.monotonic() - cached[0] > LINK_COUNTS_TTL:
            cached = (time.monotonic(), cq.link_counts(s))
            self._link_counts = cached
        return cached[1]

    # ------------------------------------------------------------------ the wrap
    def attach(self) -> None:
        """Route every run of the service through :meth:`_run` (see the module doc)."""
        original = self.inst.sync

        def sync(
            only: Sequence[Datatype] | None = None,
            *,
            full: bool = False,
            sweep: bool = False,
            dry_run: bool = False,
            on_progress: Callable[[Datatype, str, int], None] | None = None,
            records: Targets | None = None,
        ) -> RunReport:
            report = original(
                only, full=full, sweep=sweep, dry_run=dry_run, on_progress=on_progress,
                records=records,
            )  # fmt: skip
            if not dry_run:
                self.after_run(report, only, records)
            return report

        self.inst.sync = sync  # type: ignore[method-assign]

    def effective_config(self) -> Config:
        """The configuration a run gets now (``Installation.run_config``)."""
        with self.inst.session() as s:
            return self.inst.run_config(s)

    def after_run(
        self, report: RunReport, only: Sequence[Datatype] | None, records: Targets | None = None
    ) -> None:
        """Store the run's actions, its update counts and fresh search terms. A failure
        here is logged and never fails the run (which has committed already)."""
        ended = time.time()
        covered = (
            set(Datatype) if only is None and not records else {*(only or ()), *(records or {})}
        )
        if Datatype.orders in covered:
            covered.add(Datatype.order_lines)
        for dt in covered:
            self.last_run[dt.value] = ended
        try:
            with self._lock, self.writer() as s:
                run_id = s.scalar(select(func.max(Run.id)))
                touched = record_activity(s, report.plan, run_id)
                cq.prune_activity(
                    s,
                    cq.utcnow() - timedelta(days=self.file_config.serve.activity_retention_days),
                )
                cq.ingest_runs(s)
                self.reindex(s, touched)
                s.commit()
                self._link_counts = None  # counted again when a page asks
                self.catch_up_terms(s, TERMS_SECONDS)
        except Exception as exc:  # the console's bookkeeping must never stop the sync
            self.last_error = scrub(str(exc)) or type(exc).__name__
            log.exception("console.after_run_failed", error=self.last_error)

    # ------------------------------------------------------------------ search terms
    def reindex(self, s: Any, link_ids: set[int]) -> None:
        """Fresh search terms for these links, from their snapshots (the agreed values)."""
        ids = sorted(link_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            links = {
                lid: dt
                for lid, dt in s.execute(select(Link.id, Link.datatype).where(Link.id.in_(chunk)))
            }
            snaps = cq.snapshots(s, chunk)
            cs.index_terms(
                s,
                {
                    lid: snapshot_label(
                        self.file_config, Datatype(dt), snaps[lid].props if lid in snaps else None
                    )
                    for lid, dt in links.items()
                },
            )

    def catch_up_terms(self, s: Any, seconds: float) -> int:
        """Give search terms to links created since the last catch-up, a chunk per
        transaction, for at most ``seconds``. Returns how many links were indexed."""
        return catch_up_terms(s, self.file_config, seconds)

    # ------------------------------------------------------------------ problems
    def retry_one(self, dt: Datatype, system: str, record_id: str) -> str:
        """Stage one put-aside or waiting record again, fresh from its system, and ask
        the scheduler for a run of its datatype; the outcome, in words."""
        outcome = self._restage(dt, system, record_id)
        self.request_run([dt])
        return outcome

    def retry_all(self) -> int:
        """Every put-aside record, as :meth:`retry_one` (one run queued at the end)."""
        with self.inst.session() as s:
            entries = [(e.datatype, e.system, e.record_id) for e in repo.all_put_aside(s)]
        for dt, system, record_id in entries:
            self._restage(Datatype(dt), system, record_id)
        self.request_run(list(Datatype))
        return len(entries)

    def _restage(self, dt: Datatype, system: str, record_id: str) -> str:
        """What ``engine.restage.retry_put_aside`` does for one record, with the read
        from its system outside any database transaction (it may take a while under
        the request budget) and the write in a short one that waits for a run's."""
        from shopsync.engine.model import WEBCRM
        from shopsync.engine.restage import read_record, stage_record

        inst = self.inst
        with inst.session() as s:
            entry = repo.get_put_aside(s, dt.value, system, record_id)
            row = repo.inbox_get(s, dt.value, system, record_id)
            kept = entry.data if entry is not None else (row.data if row else None)
        if entry is None and row is None:
            return f"{dt.value} {system}:{record_id} is no longer a problem"
        data: dict[str, Any] | None
        if dt is Datatype.order_lines:
            data = kept  # a line is read with its order: the copy kept is staged
        else:
            data = read_record(inst.webcrm, inst.webshop, dt, system, record_id)
        config = self.effective_config()
        with self.writer() as s:
            if entry is not None:
                repo.clear_put_aside(s, dt.value, system, record_id)
            if data is not None and (dt is not Datatype.order_lines or system == WEBCRM):
                stage_record(s, config, dt, system, record_id, data)
            s.commit()
        if data is None:
            return f"{dt.value} {system}:{record_id} is gone from {system}: cleared"
        return f"{dt.value} {system}:{record_id} read again and queued for a run"

    def request_run(self, dts: Sequence[Datatype]) -> None:
        """Queue a run as a hook would (it starts within the debounce, before polls)."""
        self.service.scheduler.hint(dts, source="console")


def catch_up_terms(s: Any, config: Config, seconds: float) -> int:
    """See :meth:`Console.catch_up_terms` (also used by ``bench/console_load.py``)."""
    started = time.monotonic()
    done = 0
    upto = cs.terms_upto(s)
    while time.monotonic() - started < seconds:
        rows = cs.links_after(s, upto, TERMS_CHUNK)
        if not rows:
            break
        cs.index_terms(
            s,
            {lid: snapshot_label(config, Datatype(dt), props) for lid, dt, props in rows},
        )
        upto = rows[-1][0]
        cs.set_terms_upto(s, upto)
        s.commit()
        done += len(rows)
    return done


ACTIVITY_CHUNK = 1000
"""Plan lines turned into activity rows per statement: a first sync plans an action per
record, a million of them, and the rows of all of them at once took most of a gigabyte."""


def record_activity(s: Any, plan: Sequence[PlanLine], run_id: int | None) -> set[int]:
    """One activity row per plan line (the service's runs and ``shopsync sync`` by
    hand), :data:`ACTIVITY_CHUNK` at a time, their links looked up together; returns
    the ids of the links they concern."""
    now = cq.utcnow()
    touched: set[int] = set()
    for start in range(0, len(plan), ACTIVITY_CHUNK):
        chunk = plan[start : start + ACTIVITY_CHUNK]
        rows: list[dict[str, Any]] = []
        for line, link_id in zip(chunk, links_of(s, chunk), strict=True):
            if link_id is not None:
                touched.add(link_id)
            rows.append(
                {
                    "at": now,
                    "run_id": run_id,
                    "datatype": line.datatype,
                    "action": line.action[:32],
                    "target": line.target[:16],
                    "record": line.record[:256],
                    "detail": line.detail,
                    "label": line.label[:512],
                    "link_id": link_id,
                }
            )
        cq.add_activity(s, rows)
    return touched


def _refs(line: PlanLine) -> list[tuple[str, str]]:
    """The records a plan line names, in the order they are tried: ``webcrm:12``,
    ``from webshop:…``, or a bare id of the system written to."""
    refs = _REF.findall(line.record)
    if not refs and line.target in ("webcrm", "webshop") and line.record:
        refs = [(line.target, line.record)]
    return [(system, rid) for system, rid in refs if rid != "-"]


def links_of(s: Any, lines: Sequence[PlanLine]) -> list[int | None]:
    """The link each plan line names, when it names one (the first of its records that
    is linked), in one query per datatype and system."""
    refs = [_refs(line) for line in lines]
    wanted: dict[tuple[str, str], set[str]] = {}
    for line, named in zip(lines, refs, strict=True):
        for system, rid in named:
            wanted.setdefault((line.datatype, system), set()).add(rid)
    found = {
        (dt, system): repo.link_ids_for(s, dt, system, sorted(ids))
        for (dt, system), ids in wanted.items()
    }
    return [
        next(
            (found[line.datatype, system][rid] for system, rid in named
             if rid in found[line.datatype, system]),
            None,
        )
        for line, named in zip(lines, refs, strict=True)
    ]  # fmt: skip


def keep_activity(inst: Installation, report: RunReport) -> None:
    """After ``shopsync sync`` by hand: its plan lines become activity too, and activity
    older than the retention period goes. A failure is logged, never raised (the run
    has committed already)."""
    try:
        with inst.session() as s:
            run_id = s.scalar(select(func.max(Run.id)))
            record_activity(s, report.plan, run_id)
            days = inst.config.serve.activity_retention_days
            cq.prune_activity(s, cq.utcnow() - timedelta(days=days))
            s.commit()
    except Exception as exc:
        log.warning("console.activity_not_kept", error=scrub(str(exc)) or type(exc).__name__)
