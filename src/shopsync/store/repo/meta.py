"""The small bookkeeping tables: read cursors per datatype and system, meta values,
rule 9's update counts, and runs.

Each is a row or a few looked up by key. The update count row is cached in
``Session.info`` because ``add_updates`` is called once per record written.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopsync.store.models import Cursor, Meta, Run, UpdateCount
from shopsync.store.repo._common import now


def get_cursor(s: Session, datatype: str, system: str) -> str | None:
    row = s.get(Cursor, (datatype, system))
    return row.value if row else None


def set_cursor(s: Session, datatype: str, system: str, value: str | None) -> None:
    row = s.get(Cursor, (datatype, system))
    if row is None:
        s.add(Cursor(datatype=datatype, system=system, value=value, updated_at=now()))
        s.flush()  # a later get() in the same transaction must find it (no autoflush)
    else:
        row.value = value
        row.updated_at = now()


def get_meta(s: Session, key: str) -> str | None:
    row = s.get(Meta, key)
    return row.value if row else None


def set_meta(s: Session, key: str, value: str) -> None:
    row = s.get(Meta, key)
    if row is None:
        s.add(Meta(key=key, value=value))
        s.flush()
    else:
        row.value = value


def add_updates(s: Session, datatype: str, direction: str, n: int) -> None:
    """Add ``n`` to rule 9's count of updates of ``datatype`` in ``direction``.

    Called once per record written: the session keeps the row it found (a ``get`` by
    key costs more than the count), and looks it up again when it has left the session
    (after a rollback).
    """
    if n <= 0:
        return
    known: dict[tuple[str, str], UpdateCount] = s.info.setdefault("shopsync.update_counts", {})
    key = (datatype, direction)
    row = known.get(key)
    if row is None or row not in s:
        row = s.get(UpdateCount, key)
        if row is None:
            row = UpdateCount(datatype=datatype, direction=direction, count=0)
            s.add(row)
            s.flush()
        known[key] = row
    row.count += n


def update_counts(s: Session) -> dict[tuple[str, str], int]:
    return {(r.datatype, r.direction): r.count for r in s.scalars(select(UpdateCount))}


def start_run(s: Session, mode: str) -> Run:
    run = Run(started_at=now(), finished_at=None, status="running", mode=mode)
    s.add(run)
    s.flush()
    return run


def recent_runs(s: Session, limit: int = 10) -> Sequence[Run]:
    return s.scalars(select(Run).order_by(Run.id.desc()).limit(limit)).all()
