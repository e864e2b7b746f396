"""What every part of a run shares: the installation's ports and settings, the session,
the report, and the few facts one part learns for another (which opportunities were
edited, which orders' lines wait for reconciliation).

The parts (:mod:`staging`, :mod:`pairing`, :mod:`planner`, :mod:`writers`,
:mod:`recorder`, :mod:`lines`) each hold a :class:`RunContext` and nothing global; a run
builds one context and the parts around it (:class:`engine.sync.Engine`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from shopsync.config.model import Config, Datatype, ShareConfig
from shopsync.engine.binder import Binder
from shopsync.engine.labels import record_label, snapshot_label
from shopsync.engine.mapping.base import LinkMapping
from shopsync.engine.matching import Matcher
from shopsync.engine.model import WEBCRM, WEBSHOP, Item
from shopsync.engine.ports import WebcrmPort, WebshopPort
from shopsync.engine.report import PlanLine, RunReport
from shopsync.store import repo
from shopsync.store.rows import LinkEntry
from shopsync.store.statistics import Growth

Progress = Callable[[Datatype, str, int], None]


@dataclass
class RunContext:
    config: Config
    session: Session
    webcrm: WebcrmPort
    webshop: WebshopPort
    maps: Mapping[Datatype, LinkMapping]
    binder: Binder
    matcher: Matcher
    report: RunReport
    progress: Progress
    dry_run: bool = False
    """Only :meth:`commit` and the run's end look at this: a dry run's parts are the dry
    writers and recorder (:mod:`writers`, :mod:`recorder`), chosen once by the engine."""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    onboarded_at: datetime | None = None
    full: bool = False
    """``sync --full``: every record is read and compared (no cursor, no fast path)."""
    force_sweep: bool = False
    lines_complete: bool = False
    """Every webCRM quotation line is staged in this run (a first run or a sweep)."""
    another_pass: bool = False
    """Something this pass did (a delete staged) needs one more pass over the datatype."""
    edited_opportunities: set[str] = field(default_factory=set)
    """Linked opportunities whose webCRM values changed in this run (not echoes)."""
    orders_with_lines: set[str] = field(default_factory=set)
    """Webshop orders whose lines are reconciled after the orders, staged in this run
    with the order as last read or written (their reminder row in the inbox holds it;
    a reminder left by an earlier run holds nothing this run trusts: that order is read
    again)."""
    deferred_intents: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """Intents of records linked since the last commit, deleted by :meth:`commit`."""
    growth: Growth = field(default_factory=Growth)
    """How much this run has grown the state tables (:meth:`commit` analyses them)."""
    merge_keys_added: int = 0
    """Merge-key rows this run has written (for :meth:`_tables_grown`)."""

    def commit(self) -> None:
        """Commit (a dry run only flushes: everything is rolled back at its end).

        Intents of records linked since the last commit are deleted here, in one
        statement per datatype and side, in the same transaction as the links.
        """
        for (dt, system), ids in self.deferred_intents.items():
            repo.clear_intents_many(self.session, dt, system, ids)
        self.deferred_intents.clear()
        if self.dry_run:
            self.session.flush()
        else:
            self.session.commit()
            self._tables_grown()

    def _tables_grown(self) -> None:
        """Analyse the tables this run has grown, each time it has doubled what it added
        (PostgreSQL plans from statistics autovacuum refreshes only minutes later:
        :mod:`shopsync.store.statistics`). Records read fill the inbox and the merge
        keys of the records whose keys changed (an edited phone number or price adds
        an inbox row and no key: the keys' statistics still hold); records created or
        merged add links and snapshots."""
        stats = self.report.stats.values()
        read = sum(x.read_webcrm + x.read_webshop - x.unchanged for x in stats)
        linked = sum(x.created_in_webshop + x.created_in_webcrm + x.linked_by_merge for x in stats)
        grown = [
            self.growth.added(self.session, tables, rows)
            for tables, rows in (
                (("inbox",), read),
                (("merge_keys",), self.merge_keys_added),
                (("links", "snapshots"), linked),
            )
        ]
        if any(grown):
            self.session.commit()  # ANALYZE holds a lock (on autovacuum's work) until then

    def intent_spent(self, dt: Datatype, system: str, record_id: str) -> None:
        """The create intent of ``record_id`` (of ``system``) is done once this commits."""
        self.deferred_intents.setdefault((dt.value, system), []).append(record_id)

    def share(self, dt: Datatype, target: str) -> ShareConfig:
        cfg = self.config.datatype(dt)
        return cfg.to_webshop if target == WEBSHOP else cfg.to_webcrm

    def plan(
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
        link: LinkEntry | None = None,
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
            snap = repo.get_snapshot(self.session, link) if link.id is not None else None
            label = snapshot_label(self.config, dt, snap.props if snap else None)
        self.report.plan.append(PlanLine(dt.value, action, target, record, detail, label))

    def wrote(self, dt: Datatype, target: str, kind: str, n: int = 1) -> None:
        """Count ``n`` writes of ``kind`` (``created``/``updated``) into ``target``: the
        run's figures and rule 9's per-day update counts, in one place."""
        if n <= 0:
            return
        stats = self.report.stats[dt]
        if target == WEBSHOP:
            if kind == "created":
                stats.created_in_webshop += n
            else:
                stats.updated_in_webshop += n
            stats.updates_to_webshop += n
        else:
            if kind == "created":
                stats.created_in_webcrm += n
            else:
                stats.updated_in_webcrm += n
            stats.updates_to_webcrm += n
        repo.add_updates(self.session, dt.value, f"to_{target}", n)
