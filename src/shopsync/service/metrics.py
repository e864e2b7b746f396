"""Prometheus metrics of the service (``GET /metrics``), in a registry of its own.

A registry per service (not the process-wide default) keeps tests that build several
services in one process from sharing counters, and keeps library metrics out.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shopsync.config.model import Datatype
from shopsync.engine.report import DatatypeStats, RunReport
from shopsync.service.budget import KINDS

RECORD_OUTCOMES: tuple[tuple[str, str, str], ...] = (
    # (DatatypeStats field, direction, outcome)
    ("read_webcrm", "from_webcrm", "read"),
    ("read_webshop", "from_webshop", "read"),
    ("created_in_webshop", "to_webshop", "created"),
    ("updated_in_webshop", "to_webshop", "updated"),
    ("created_in_webcrm", "to_webcrm", "created"),
    ("updated_in_webcrm", "to_webcrm", "updated"),
    ("linked_by_merge", "both", "merged"),
    ("conflicts", "both", "conflict"),
    ("deleted", "both", "deleted"),
    ("unchanged", "both", "unchanged"),
    ("put_aside", "both", "put_aside"),
)
"""How a run report's figures become ``shopsync_records_total`` series."""

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.runs = Counter(
            "shopsync_runs", "Sync runs by what started them and how they ended.",
            ["trigger", "outcome"], registry=r,
        )  # fmt: skip
        self.records = Counter(
            "shopsync_records", "Records by datatype, direction and outcome (from the runs).",
            ["datatype", "direction", "outcome"], registry=r,
        )  # fmt: skip
        self.requests = Counter(
            "shopsync_api_requests", "API requests sent, per system.", ["system"], registry=r
        )
        self.rate_limited = Counter(
            "shopsync_api_rate_limited", "429 answers received, per system.", ["system"],
            registry=r,
        )  # fmt: skip
        self.hooks = Counter(
            "shopsync_hook_deliveries",
            "Hook and webhook calls received, by source and result (accepted, refused).",
            ["source", "result"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "shopsync_propagation_seconds",
            "From a hook's arrival to the end of the run that synced its change.",
            ["source"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.waiting = Gauge(
            "shopsync_waiting_records", "Records waiting for a reference.", ["datatype"],
            registry=r,
        )  # fmt: skip
        self.put_aside = Gauge(
            "shopsync_put_aside_records", "Records put aside (shopsync problems).", ["datatype"],
            registry=r,
        )  # fmt: skip
        self.pending = Gauge(
            "shopsync_pending_work",
            "Queued work items (single records and whole-datatype reads), by datatype.",
            ["datatype"],
            registry=r,
        )  # fmt: skip
        self.budget = Counter(
            "shopsync_webcrm_budget_requests",
            "webCRM requests by the kind of work that spent them.", ["kind"], registry=r,
        )  # fmt: skip
        self.budget_in_window = Gauge(
            "shopsync_webcrm_budget_in_window",
            "webCRM requests counted in the current rate-limit window.", registry=r,
        )  # fmt: skip
        self.budget_limit = Gauge(
            "shopsync_webcrm_budget_limit", "webCRM requests allowed per window.", registry=r
        )
        self.running = Gauge(
            "shopsync_run_in_progress", "1 while a sync run is in progress.", registry=r
        )
        self.last_success = Gauge(
            "shopsync_last_successful_run_timestamp_seconds",
            "When the last run finished without failing (Unix time).", registry=r,
        )  # fmt: skip
        # Every series exists from the start (at 0), so a dashboard never shows "no data"
        # for a count that simply has not moved yet.
        for dt in Datatype:
            for _, direction, outcome in RECORD_OUTCOMES:
                self.records.labels(dt.value, direction, outcome)
            self.waiting.labels(dt.value)
            self.put_aside.labels(dt.value)
            self.pending.labels(dt.value)
        for system in ("webcrm", "webshop"):
            self.requests.labels(system)
            self.rate_limited.labels(system)
            self.latency.labels(system)
            for result in ("accepted", "refused"):
                self.hooks.labels(system, result)
        for kind in KINDS:
            self.budget.labels(kind)

    def observe_report(self, report: RunReport) -> None:
        for dt, stats in report.stats.items():
            for name, direction, outcome in RECORD_OUTCOMES:
                n = _figure(stats, name)
                if n:
                    self.records.labels(dt.value, direction, outcome).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _figure(stats: DatatypeStats, name: str) -> int:
    value = getattr(stats, name)
    return int(value) if isinstance(value, int) else 0
