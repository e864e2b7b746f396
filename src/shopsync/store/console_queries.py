"""The console's reads and writes of the state database (``service/console``).

Kept apart from :mod:`shopsync.store.repo`, which serves the engine: nothing here is on
a sync's path, and every query a page makes is bounded (a page of rows, found through an
index) so that pages stay fast with millions of links (``bench/console_load.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from shopsync.store import repo
from shopsync.store.chunks import among
from shopsync.store.models import (
    ConsoleActivity,
    ConsoleDailyUpdates,
    ConsoleIgnored,
    ConsoleSwitch,
    InboxRecord,
    Link,
    Meta,
    PutAside,
    Run,
    Snapshot,
)
from shopsync.store.repo import get_meta, set_meta

RUNS_INGESTED = "console:runs_ingested"
"""Meta key: the id of the last run whose update counts are in the daily table."""
STALE_RUN = timedelta(hours=6)
"""A run still marked ``running`` after this long was killed: its counts are lost, and
the daily table moves on past it instead of waiting for it forever."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------- counts
@dataclass(frozen=True)
class Counts:
    """What the overview shows, as the state database holds it right now."""

    links: dict[tuple[str, str], int]
    """(datatype, state) → links."""
    inbox: dict[tuple[str, str, bool], int]
    """(datatype, source system, waiting) → inbox rows."""
    put_aside: dict[tuple[str, str], int]
    """(datatype, source system) → records put aside."""
    updates: dict[tuple[str, str], int]
    """(datatype, direction) → rule 9's update counts since the first run."""


def link_counts(s: Session) -> dict[tuple[str, str], int]:
    """(datatype, state) → links: a scan of the whole table (about 0.1 s per 100,000
    links on SQLite), so the console caches it (``Console.link_counts``)."""
    return {
        (dt, st): n
        for dt, st, n in s.execute(
            select(Link.datatype, Link.state, func.count()).group_by(Link.datatype, Link.state)
        )
    }


def counts(s: Session, links: dict[tuple[str, str], int] | None = None) -> Counts:
    """The overview's figures; ``links`` when the caller has them already (the other
    three read small tables: the inbox, put-aside records and the update counts)."""
    if links is None:
        links = link_counts(s)
    inbox = repo.inbox_counts(s)
    aside = {
        (dt, sy): n
        for dt, sy, n in s.execute(
            select(PutAside.datatype, PutAside.system, func.count()).group_by(
                PutAside.datatype, PutAside.system
            )
        )
    }
    updates = repo.update_counts(s)
    return Counts(links, inbox, aside, updates)


def last_runs(s: Session, limit: int = 5) -> Sequence[Run]:
    return s.scalars(select(Run).order_by(Run.id.desc()).limit(limit)).all()


def meta_values(s: Session, keys: Sequence[str]) -> dict[str, str]:
    return dict(s.execute(select(Meta.key, Meta.value).where(among(Meta.key, keys))).tuples().all())


# ------------------------------------------------------------------ per-day updates
def runs_to_ingest(s: Session) -> bool:
    """Whether a run newer than the last one ingested exists (a read: the overview
    takes the write lock for :func:`ingest_runs` only then)."""
    upto = int(get_meta(s, RUNS_INGESTED) or 0)
    return s.scalar(select(Run.id).where(Run.id > upto).limit(1)) is not None


def ingest_runs(s: Session, now: datetime | None = None) -> int:
    """Add the update counts of runs finished since the last call to the per-day table
    (by the UTC day each run ended). Reads the ``runs`` table, so runs of ``shopsync
    sync`` started by hand count too. Returns how many runs were added; the caller
    commits."""
    now = now or utcnow()
    upto = int(get_meta(s, RUNS_INGESTED) or 0)
    rows = s.execute(
        select(Run.id, Run.status, Run.started_at, Run.finished_at, Run.stats)
        .where(Run.id > upto)
        .order_by(Run.id)
        .limit(5000)
    ).all()
    added: dict[tuple[str, str, str], int] = {}
    done = 0
    for rid, status, started, finished, stats in rows:
        if status == "running":
            if started is not None and _aware(started) > now - STALE_RUN:
                break  # still going: its counts come with a later call
        elif status != "dry-run" and finished is not None and stats:
            day = _aware(finished).date().isoformat()
            for dt, figures in (stats.get("stats") or {}).items():
                for direction in ("to_webshop", "to_webcrm"):
                    n = int(figures.get(f"updates_{direction}", 0) or 0)
                    if n:
                        key = (day, dt, direction)
                        added[key] = added.get(key, 0) + n
        upto = rid
        done += 1
    for (day, dt, direction), n in added.items():
        row = s.get(ConsoleDailyUpdates, (day, dt, direction))
        if row is None:
            s.add(ConsoleDailyUpdates(day=day, datatype=dt, direction=direction, count=n))
        else:
            row.count += n
    if done:
        set_meta(s, RUNS_INGESTED, str(upto))
    return done


def daily_updates(
    s: Session, days: int = 30, today: date | None = None
) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """(datatype, direction) → ``[(day, count)]`` for the last ``days`` days, oldest
    first, with zero days filled in."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    found: dict[tuple[str, str, str], int] = {
        (r.datatype, r.direction, r.day): r.count
        for r in s.scalars(
            select(ConsoleDailyUpdates).where(ConsoleDailyUpdates.day >= first.isoformat())
        )
    }
    series: dict[tuple[str, str], list[tuple[str, int]]] = {}
    keys = {(dt, d) for dt, d, _ in found}
    for dt, direction in keys:
        series[(dt, direction)] = [
            (day, found.get((dt, direction, day), 0))
            for day in ((first + timedelta(days=i)).isoformat() for i in range(days))
        ]
    return series


def no_updates(days: int = 30, today: date | None = None) -> list[tuple[str, int]]:
    """A series of ``days`` days without updates (oldest first)."""
    today = today or utcnow().date()
    return [((today - timedelta(days=days - 1 - i)).isoformat(), 0) for i in range(days)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------------- activity
def add_activity(s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk insert (Core executemany): a run can plan thousands of actions."""
    if rows:
        s.execute(insert(ConsoleActivity), list(rows))


def prune_activity(s: Session, older_than: datetime) -> int:
    result = s.execute(delete(ConsoleActivity).where(ConsoleActivity.at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


def activity(
    s: Session,
    *,
    datatype: str | None = None,
    target: str | None = None,
    link_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> Sequence[ConsoleActivity]:
    """Newest first, a page of ``limit`` older than id ``before`` (keyset paging)."""
    q = select(ConsoleActivity)
    if datatype:
        q = q.where(ConsoleActivity.datatype == datatype)
    if target:
        q = q.where(ConsoleActivity.target == target)
    if link_id is not None:
        q = q.where(ConsoleActivity.link_id == link_id)
    if before is not None:
        q = q.where(ConsoleActivity.id < before)
    return s.scalars(q.order_by(ConsoleActivity.id.desc()).limit(limit)).all()


# ------------------------------------------------------------------------- switches
def switches(s: Session) -> dict[str, bool]:
    return {r.key: r.value for r in s.scalars(select(ConsoleSwitch))}


def set_switch(s: Session, key: str, value: bool | None) -> None:
    """Store a switch (``None``: forget it, the config file's value applies again)."""
    row = s.get(ConsoleSwitch, key)
    if value is None:
        if row is not None:
            s.delete(row)
    elif row is None:
        s.add(ConsoleSwitch(key=key, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()


# ------------------------------------------------------------------------- problems
def ignored(s: Session) -> set[tuple[str, str, str]]:
    return {(r.datatype, r.system, r.record_id) for r in s.scalars(select(ConsoleIgnored)).all()}


def set_ignored(s: Session, datatype: str, system: str, record_id: str, on: bool) -> None:
    row = s.get(ConsoleIgnored, (datatype, system, record_id))
    if on and row is None:
        s.add(ConsoleIgnored(datatype=datatype, system=system, record_id=record_id, at=utcnow()))
    elif not on and row is not None:
        s.delete(row)


def put_aside_page(s: Session, datatype: str | None, after: int, limit: int) -> Sequence[PutAside]:
    q = select(PutAside).where(PutAside.id > after)
    if datatype:
        q = q.where(PutAside.datatype == datatype)
    return s.scalars(q.order_by(PutAside.id).limit(limit)).all()


def waiting_page(s: Session, datatype: str | None, after: int, limit: int) -> Sequence[InboxRecord]:
    q = select(InboxRecord).where(InboxRecord.waiting_reason.is_not(None), InboxRecord.id > after)
    if datatype:
        q = q.where(InboxRecord.datatype == datatype)
    return s.scalars(q.order_by(InboxRecord.id).limit(limit)).all()


def links_of(s: Session, datatype: str, system: str, ids: Iterable[str]) -> dict[str, Link]:
    """The links of some records of one side (for the other side's id), by record id."""
    wanted = list(ids)
    if not wanted:
        return {}
    col = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    rows = s.scalars(select(Link).where(Link.datatype == datatype, among(col, wanted))).all()
    return {(r.webcrm_id if system == "webcrm" else r.webshop_id): r for r in rows}


# ---------------------------------------------------------------------------- links
def links_page(s: Session, datatype: str | None, before: int | None, limit: int) -> Sequence[Link]:
    """Newest links first (the primary key's order), a page older than ``before``."""
    q = select(Link)
    if datatype:
        # ``datatype || ''`` keeps the planner on the primary key, walked backwards until
        # a page of this datatype is found: the (datatype, webcrm_id) index would fetch
        # and sort every link of the datatype first (0.3 s at a million links).
        q = q.where((Link.datatype + literal("")) == datatype)
    if before is not None:
        q = q.where(Link.id < before)
    return s.scalars(q.order_by(Link.id.desc()).limit(limit)).all()


def snapshots(s: Session, link_ids: Sequence[int]) -> dict[int, Snapshot]:
    if not link_ids:
        return {}
    return {
        r.link_id: r for r in s.scalars(select(Snapshot).where(among(Snapshot.link_id, link_ids)))
    }
