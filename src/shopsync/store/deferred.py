"""Set-based writes for rows a session has loaded: snapshot and link updates, inbox
deletes.

A changed record ends its run with three writes to rows the session holds: its
snapshot's new values, its link's ``updated_at``, and the removal of its inbox row.
Through the unit of work each costs an object's change tracking at flush (about a
third of a changed record's engine time); here the new values are set on the loaded
objects as if read from the database (``set_committed_value``: they are not dirty, and
the session keeps answering with them) and sent as one ``UPDATE ... WHERE key = ?``
``executemany`` per table. Inbox rows leave the session and go in one
``DELETE ... WHERE id IN (...)``.

Pending updates are sent before any statement the session executes, before each flush
and before a commit, so no query in the same transaction sees an older row; a rollback
drops them with everything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, event, inspect, update
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import set_committed_value

from shopsync.store.chunks import among, in_chunks
from shopsync.store.models import InboxRecord, Link, Snapshot

_KEY = "shopsync.deferred"

SNAPSHOT_COLUMNS = (
    "props",
    "webcrm_updated_at",
    "webshop_updated_at",
    "webshop_version",
    "webcrm_fp",
    "webshop_fp",
    "updated_at",
)


@dataclass
class _Pending:
    snapshots: dict[int, dict[str, Any]] = field(default_factory=dict)
    """link id → the snapshot's new column values."""
    links: dict[int, datetime] = field(default_factory=dict)
    """link id → its new ``updated_at``."""

    def __bool__(self) -> bool:
        return bool(self.snapshots or self.links)


def _pending(s: Session) -> _Pending:
    pending: _Pending | None = s.info.get(_KEY)
    if pending is None:
        pending = s.info[_KEY] = _Pending()
        event.listen(s, "do_orm_execute", _before_execute)
        event.listen(s, "before_flush", lambda session, _ctx, _objs: send(session))
        event.listen(s, "before_commit", send)
        event.listen(s, "after_rollback", lambda session: _drop(session))
    return pending


def _before_execute(state: ORMExecuteState) -> None:
    send(state.session)


def _drop(s: Session) -> None:
    pending: _Pending | None = s.info.get(_KEY)
    if pending is not None:
        pending.snapshots.clear()
        pending.links.clear()


def is_loaded(s: Session, obj: object) -> bool:
    """Whether ``obj`` is a row of this session read from (or flushed to) the database."""
    state = inspect(obj)
    return bool(state.persistent and state.session_id == s.hash_key)


def update_snapshot(s: Session, snap: Snapshot, values: dict[str, Any]) -> None:
    """Give a loaded snapshot ``values`` (columns of :data:`SNAPSHOT_COLUMNS`)."""
    for name, value in values.items():
        set_committed_value(snap, name, value)
    _pending(s).snapshots[snap.link_id] = values


def touch_link(s: Session, link: Link, at: datetime) -> None:
    """Set a link's ``updated_at``; a link not yet flushed takes it the usual way."""
    if not is_loaded(s, link):
        link.updated_at = at
        return
    set_committed_value(link, "updated_at", at)
    _pending(s).links[link.id] = at


def send(s: Session) -> None:
    """Send the pending updates now (one ``executemany`` per table)."""
    pending: _Pending | None = s.info.get(_KEY)
    if not pending:
        return
    snapshots, links = list(pending.snapshots.items()), list(pending.links.items())
    pending.snapshots.clear()
    pending.links.clear()
    conn = s.connection()
    if snapshots:
        table = cast(Table, Snapshot.__table__)
        stmt = (
            update(table)
            .where(table.c.link_id == bindparam("b_link_id"))
            .values({name: bindparam(name) for name in SNAPSHOT_COLUMNS})
        )
        conn.execute(stmt, [{"b_link_id": key, **values} for key, values in snapshots])
    if links:
        table = cast(Table, Link.__table__)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(updated_at=bindparam("b_updated_at"))
        )
        conn.execute(stmt, [{"b_id": key, "b_updated_at": at} for key, at in links])


def delete_inbox_rows(s: Session, rows: Iterable[InboxRecord]) -> None:
    """Take rows out of the inbox: loaded ones in one ``DELETE``, added ones unadded."""
    ids: list[int] = []
    for row in rows:
        if row not in s:
            continue
        if is_loaded(s, row):
            ids.append(row.id)
        s.expunge(row)
    table = cast(Table, InboxRecord.__table__)
    for chunk in in_chunks(ids):
        s.execute(delete(table).where(among(table.c.id, chunk)))
