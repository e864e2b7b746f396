"""The service's one worker: it takes due work off the queue and runs it, one run at a time.

What is queued, and how it is debounced, coalesced and ordered, is :mod:`.queue`'s
business. Here:

* **Hooks first.** Hook-driven work (and the start-up run) starts whenever it is due;
  a poll starts only when the budget keeps a reserve free (:mod:`.budget`), and a due
  poll never goes before due hook work.
* **Follow-ups.** A record that had to wait for a reference (an order whose customer
  was not linked yet) is retried right after a run that wrote its upstream datatype,
  not at the next poll.
* **Never overlapping.** Runs happen on this one thread, and each run also holds the
  state database's lease lock (``Installation.sync``), so a ``shopsync sync`` started by
  hand meanwhile is refused, or makes this service wait and retry.
* **Stopping.** :meth:`Scheduler.shutdown` lets the run in flight finish within a grace
  period; past it, the run is interrupted at its next progress point. Either way nothing
  is lost: an interrupted run is redone by the next one (docs/sync-engine.md,
  "Exactly once"), and its queued work is queued again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import func, select

from shopsync.config.model import Datatype, ServeConfig
from shopsync.engine.report import RunReport
from shopsync.logs import scrub
from shopsync.runtime import Installation
from shopsync.service.budget import Budget
from shopsync.service.metrics import Metrics
from shopsync.service.queue import DEBOUNCE, Job, Key, Work, WorkQueue
from shopsync.store import repo

log = structlog.get_logger("shopsync.serve")


class Stopping(Exception):
    """Raised at a run's progress point when the service must stop now."""


@dataclass
class SystemState:
    """What the service last learned about a system (for ``/readyz``)."""

    ok: bool | None = None
    """None: not contacted yet."""
    reason: str = "not contacted yet"
    at: float = 0.0


class Scheduler:
    def __init__(
        self,
        inst: Installation,
        serve: ServeConfig,
        metrics: Metrics,
        budget: Budget,
        *,
        setup: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inst = inst
        self.serve = serve
        self.metrics = metrics
        self.budget = budget
        self._setup = setup
        self._clock = clock
        self._cond = threading.Condition()
        self._queue = WorkQueue()
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._main, name="shopsync-scheduler", daemon=True)
        self.systems: dict[str, SystemState] = {"webcrm": SystemState(), "webshop": SystemState()}
        self.runs = 0
        self._failures = 0
        self._counts = {"webcrm": (0, 0), "webshop": (0, 0)}

    # ------------------------------------------------------------------ feeding
    def hint(
        self,
        datatypes: Iterable[Datatype],
        *,
        source: str,
        sweep: bool = False,
        record: tuple[str, str] | None = None,
        deleted: bool = False,
    ) -> None:
        """A hook said these datatypes changed, or (``record``: system and id) this one
        record of them (thread-safe; returns at once)."""
        now = self._clock()
        work = Work("hook", now + DEBOUNCE, sweep, deleted, {source: now})
        self._add([Key(dt, *(record or (None, None))) for dt in datatypes], work)

    def _add(self, keys: Iterable[Key], work: Work) -> None:
        with self._cond:
            self._queue.add(keys, work)
            self._count_pending()
            self._cond.notify_all()

    def _count_pending(self) -> None:
        for dt, n in self._queue.counts().items():
            self.metrics.pending.labels(dt.value).set(n)

    def pending(self) -> dict[Datatype, Work]:
        """Per datatype, its queued work (records and whole) merged."""
        with self._cond:
            return self._queue.by_datatype()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_stop(self) -> None:
        """Take no new work; the run in flight goes on (see :meth:`shutdown`)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def shutdown(self, grace: float, deadline: float) -> bool:
        """Stop: the run in flight may finish for ``grace`` seconds, then it is
        interrupted at its next progress point; gives up waiting after ``deadline``.
        True when the scheduler's thread has ended."""
        self.request_stop()
        started = time.monotonic()
        self._thread.join(grace)
        if self._thread.is_alive():
            log.warning("serve.interrupting_run", grace_seconds=grace)
            self._abort.set()
            self._thread.join(max(deadline - (time.monotonic() - started), 0.0))
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ the loop
    def _main(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug: say so, and let /readyz show it
            log.exception("serve.scheduler_crashed", error=scrub(repr(exc)))
            self.systems["webcrm"] = SystemState(False, "the scheduler stopped: see the log")
            raise

    def _loop(self) -> None:
        setup_due: float | None = self._clock()
        setup_failures = 0
        self._add([Key(dt) for dt in Datatype], Work("start", self._clock()))
        next_poll = self._clock() + self.serve.poll_seconds
        while not self._stopping.is_set():
            now = self._clock()
            if setup_due is not None and now >= setup_due:
                if self._run_setup():
                    setup_due = None
                else:
                    setup_failures += 1
                    setup_due = now + min(2.0**setup_failures, self.serve.poll_seconds)
                continue
            if now >= next_poll:
                self._add([Key(dt) for dt in Datatype], Work("poll", now))
                next_poll = now + self.serve.poll_seconds
            job = self._take_due(now)
            if job is not None:
                self._execute(job)
                continue
            with self._cond:
                wake = [next_poll, *self._queue.dues()]
                if setup_due is not None:
                    wake.append(setup_due)
                timeout = min(max(min(wake) - self._clock(), 0.01), 1.0)
                if not self._stopping.is_set():
                    self._cond.wait(timeout)

    def _run_setup(self) -> bool:
        """Say hello to both systems (readiness), then register hooks if configured."""
        try:
            self.inst.webcrm.login()
            self._seen_ok("webcrm")
            self.inst.webshop.capabilities()
            self._seen_ok("webshop")
            if self._setup is not None:
                self._setup()
            return True
        except Exception as exc:
            self._note_failure(exc)
            log.warning("serve.setup_failed", error=scrub(str(exc)))
            return False
        finally:
            self._account("start")

    def _take_due(self, now: float) -> Job | None:
        with self._cond:
            job = self._queue.take_due(now, self.budget.poll_may_start())
            self._count_pending()
            return job

    def _execute(self, job: Job) -> None:
        from shopsync.locking import Busy

        trigger = job.trigger
        self.metrics.running.set(1)
        started = time.monotonic()
        outcome = "ok"
        report: RunReport | None = None
        log.info(
            "serve.run_started",
            trigger=trigger,
            datatypes=[dt.value for dt in (list(Datatype) if job.only is None else job.only)],
            records=sum(len(ids) for sides in job.records.values() for ids in sides.values()),
            sweep=job.sweep,
        )
        try:
            report = self.inst.sync(
                job.only, sweep=job.sweep, on_progress=self._progress, records=job.records or None
            )
        except Stopping:
            outcome = "interrupted"
            log.warning("serve.run_interrupted", detail="redone by the next run")
            self._requeue(job, 0.0)
        except Busy as exc:
            outcome = "busy"
            log.info("serve.lock_busy", detail=scrub(str(exc)))
            self._requeue(job, 2.0)
        except Exception as exc:
            outcome = "failed"
            self._failures += 1
            self._note_failure(exc)
            delay = min(2.0**self._failures, self.serve.poll_seconds)
            log.warning(
                "serve.run_failed", error=scrub(str(exc)) or type(exc).__name__, retry_in=delay
            )
            self._requeue(job, delay)
        finally:
            self.metrics.running.set(0)
            self._account("targeted" if trigger in ("hook", "follow") else trigger)
            self.metrics.runs.labels(trigger, outcome).inc()
            self.runs += 1
        if report is None:
            return
        self._failures = 0
        self._seen_ok("webcrm")
        self._seen_ok("webshop")
        self.metrics.observe_report(report)
        self.metrics.last_success.set(time.time())
        finished = self._clock()
        for work in job.work.values():
            for source, at in work.hinted.items():
                self.metrics.latency.labels(source).observe(max(finished - at, 0.0))
        self._gauges()
        self._follow_up(report, job.datatypes)
        log.info(
            "serve.run_finished",
            trigger=trigger,
            seconds=round(time.monotonic() - started, 3),
            writes=report.writes,
            webcrm_requests=report.webcrm_requests,
            webshop_requests=report.webshop_requests,
        )

    def _follow_up(self, report: RunReport, chosen: list[Datatype]) -> None:
        """Records waiting for a reference are retried as soon as their upstream moved."""
        wrote = any(
            report.stats[dt].writes
            or report.stats[dt].created_in_webcrm
            or report.stats[dt].created_in_webshop
            or report.stats[dt].linked_by_merge
            for dt in chosen
        )
        if not wrote:
            return
        first = min(list(Datatype).index(dt) for dt in chosen)
        downstream = [
            dt
            for dt in list(Datatype)[first + 1 :]
            if dt not in chosen and report.stats[dt].waiting
        ]
        if downstream:
            self._add([Key(dt) for dt in downstream], Work("follow", self._clock()))

    def _requeue(self, job: Job, delay: float) -> None:
        with self._cond:
            self._queue.requeue(job, self._clock() + delay)
            self._count_pending()
            self._cond.notify_all()

    def _progress(self, _dt: Datatype, _what: str, _n: int) -> None:
        if self._abort.is_set():
            raise Stopping("the service is stopping")

    # ------------------------------------------------------------------ bookkeeping
    def _seen_ok(self, system: str) -> None:
        self.systems[system] = SystemState(True, "ok", self._clock())

    def _note_failure(self, exc: BaseException) -> None:
        from shopsync.connectors.webcrm.client import WebcrmAuthError, WebcrmUnavailable
        from shopsync.connectors.webshop.client import WebshopAuthError, WebshopUnavailable

        reason = scrub(str(exc)) or type(exc).__name__
        if isinstance(exc, WebcrmAuthError):
            self.systems["webcrm"] = SystemState(False, f"refused: {reason}", self._clock())
        elif isinstance(exc, WebcrmUnavailable):
            self.systems["webcrm"] = SystemState(False, f"unreachable: {reason}", self._clock())
        elif isinstance(exc, WebshopAuthError):
            self.systems["webshop"] = SystemState(False, f"refused: {reason}", self._clock())
        elif isinstance(exc, WebshopUnavailable):
            self.systems["webshop"] = SystemState(False, f"unreachable: {reason}", self._clock())

    def _account(self, reads: str) -> None:
        for kind, n in self.budget.account(reads).items():
            self.metrics.budget.labels(kind).inc(n)
        self.metrics.budget_in_window.set(self.budget.in_window())
        self.metrics.budget_limit.set(self.budget.limiter.limit)
        for system in ("webcrm", "webshop"):
            client: Any = self.inst.__dict__.get(system)  # only clients already opened
            if client is None:
                continue
            made, limited = client.requests_made, client.responses_429
            before = self._counts[system]
            self.metrics.requests.labels(system).inc(max(made - before[0], 0))
            self.metrics.rate_limited.labels(system).inc(max(limited - before[1], 0))
            self._counts[system] = (made, limited)

    def _gauges(self) -> None:
        from shopsync.store.models import PutAside

        with self.inst.session() as s:
            waiting = {dt.value: 0 for dt in Datatype}
            for (name, _system, is_waiting), n in repo.inbox_counts(s).items():
                if is_waiting and name in waiting:
                    waiting[name] += n
            aside = dict(
                s.execute(select(PutAside.datatype, func.count()).group_by(PutAside.datatype)).all()
            )
        for dt in Datatype:
            self.metrics.waiting.labels(dt.value).set(waiting[dt.value])
            self.metrics.put_aside.labels(dt.value).set(int(aside.get(dt.value, 0)))
