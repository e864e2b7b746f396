"""The inbox: records read from either system, waiting to be processed.

Staging puts a read in (a newer read replaces an older, a page at a time in one
``executemany``); the engine takes them out in batches by id, or asks about a page's
ids at once (``inbox_rows``, ``inbox_ids_among``); the CLI and the console count them
and list those waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from shopsync.store import bulk
from shopsync.store.models import InboxRecord
from shopsync.store.repo._common import _of, as_utc, now
from shopsync.store.rows import InboxEntry, InboxRow, columns

_ROW = columns(InboxRecord, InboxRow)
"""The columns of an :class:`InboxRow`, in the order its fields take them."""


def _plain(s: Session, q: Select[Any]) -> list[InboxRow]:
    return [InboxRow(*values) for values in s.execute(q)]


def stage(
    s: Session,
    datatype: str,
    system: str,
    record_id: str,
    *,
    updated_at: datetime | None,
    data: dict[str, Any] | None,
    deleted: bool = False,
    parent_id: str | None = None,
) -> bool:
    """Put a record read from ``system`` into the inbox; a newer read replaces an older.

    Returns False when the inbox already holds this version or a newer one.
    """
    row = s.scalar(
        select(InboxRecord).where(
            *_of(InboxRecord, datatype, system, record_id),
        )
    )
    if row is not None:
        old = as_utc(row.updated_at)
        if old is not None and updated_at is not None and updated_at < old:
            return False
        if old == updated_at and row.deleted == deleted and row.data == data:
            return False
        row.updated_at = updated_at
        row.data = data
        row.deleted = deleted
        row.parent_id = parent_id
        row.waiting_reason = None
        row.received_at = now()
        return True
    s.add(
        InboxRecord(
            datatype=datatype,
            system=system,
            record_id=record_id,
            parent_id=parent_id,
            updated_at=updated_at,
            deleted=deleted,
            data=data,
            waiting_reason=None,
            attempts=0,
            received_at=now(),
        )
    )
    return True


def stage_page(
    s: Session,
    datatype: str,
    system: str,
    records: Sequence[tuple[str, datetime | None, dict[str, Any] | None, str | None]],
) -> None:
    """Stage a page of ``(record_id, updated_at, data or None when deleted, parent_id)``.

    Like :func:`stage` for each, with one query for the rows already in the inbox; the
    new rows go in one Core ``executemany`` (no ORM objects, no ids fetched back), so
    they are visible to the next query at once.
    """
    if not records:
        return
    ids = [r[0] for r in records]
    existing = {
        row.record_id: row
        for row in s.scalars(
            select(InboxRecord).where(
                *_of(InboxRecord, datatype, system, ids),
            )
        )
    }
    t = now()
    new: dict[str, dict[str, Any]] = {}
    for record_id, updated_at, data, parent_id in records:
        row = existing.get(record_id)
        if row is None:
            before = new.get(record_id)
            if before is not None and _older(updated_at, before["updated_at"]):
                continue
            new[record_id] = {
                "datatype": datatype, "system": system, "record_id": record_id,
                "parent_id": parent_id, "updated_at": updated_at, "deleted": data is None,
                "data": data, "waiting_reason": None, "attempts": 0, "received_at": t,
            }  # fmt: skip
            continue
        if _older(updated_at, as_utc(row.updated_at)):
            continue
        row.updated_at, row.data, row.deleted = updated_at, data, data is None
        row.parent_id, row.waiting_reason, row.received_at = parent_id, None, t
    if new:
        s.flush()  # rows changed above go first, as a Session.execute would send them
        bulk.insert_many(s.connection(), InboxRecord, list(new.values()))


def _older(updated_at: datetime | None, than: datetime | None) -> bool:
    return updated_at is not None and than is not None and updated_at < than


def inbox_get(s: Session, datatype: str, system: str, record_id: str) -> InboxRecord | None:
    return s.scalar(
        select(InboxRecord).where(
            *_of(InboxRecord, datatype, system, record_id),
        )
    )


def inbox_rows(s: Session, datatype: str, system: str, ids: Sequence[str]) -> list[InboxRow]:
    """The inbox rows of ``ids`` (plain rows, one query)."""
    if not ids:
        return []
    return _plain(s, select(*_ROW).where(*_of(InboxRecord, datatype, system, ids)))


def inbox_ids_among(s: Session, datatype: str, system: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` have a row in the inbox (one query)."""
    if not ids:
        return set()
    return set(
        s.scalars(select(InboxRecord.record_id).where(*_of(InboxRecord, datatype, system, ids)))
    )


def inbox_batch(
    s: Session, datatype: str, after_id: int, limit: int, *, system: str | None = None
) -> list[InboxRow]:
    """The next ``limit`` inbox rows of a datatype with id > ``after_id`` (all systems),
    as plain rows."""
    q = select(*_ROW).where(InboxRecord.datatype == datatype, InboxRecord.id > after_id)
    if system is not None:
        q = q.where(InboxRecord.system == system)
    return _plain(s, q.order_by(InboxRecord.id).limit(limit))


def set_waiting(s: Session, row: InboxEntry, reason: str) -> None:
    """A row stays in the inbox, waiting for ``reason``; one more attempt is counted.

    An ORM row changes as any other (sent with the session's next flush); a plain row
    is written at once, by its id.
    """
    row.waiting_reason = reason
    row.attempts += 1
    if isinstance(row, InboxRow):
        s.execute(
            update(InboxRecord)
            .where(InboxRecord.id == row.id)
            .values(waiting_reason=reason, attempts=row.attempts)
        )


def inbox_children(s: Session, datatype: str, system: str, parent_id: str) -> Sequence[InboxRecord]:
    return s.scalars(
        select(InboxRecord)
        .where(
            InboxRecord.datatype == datatype,
            InboxRecord.system == system,
            InboxRecord.parent_id == parent_id,
        )
        .order_by(InboxRecord.id)
    ).all()


def inbox_record_ids(s: Session, datatype: str, system: str) -> list[str]:
    """The ids of every inbox row of a datatype and system."""
    return list(
        s.scalars(
            select(InboxRecord.record_id)
            .where(InboxRecord.datatype == datatype, InboxRecord.system == system)
            .order_by(InboxRecord.id)
        )
    )


def inbox_parents(s: Session, datatype: str, system: str) -> list[str]:
    rows = s.scalars(
        select(InboxRecord.parent_id)
        .where(
            InboxRecord.datatype == datatype,
            InboxRecord.system == system,
            InboxRecord.parent_id.is_not(None),
        )
        .distinct()
    )
    return [r for r in rows if r is not None]


def inbox_counts(s: Session) -> dict[tuple[str, str, bool], int]:
    rows = s.execute(
        select(
            InboxRecord.datatype,
            InboxRecord.system,
            InboxRecord.waiting_reason.is_not(None),
            func.count(),
        ).group_by(
            InboxRecord.datatype, InboxRecord.system, InboxRecord.waiting_reason.is_not(None)
        )
    )
    return {(d, sy, bool(w)): n for d, sy, w, n in rows}


def waiting(s: Session, datatype: str | None = None) -> Sequence[InboxRecord]:
    q = select(InboxRecord).where(InboxRecord.waiting_reason.is_not(None))
    if datatype:
        q = q.where(InboxRecord.datatype == datatype)
    return s.scalars(q.order_by(InboxRecord.id)).all()
