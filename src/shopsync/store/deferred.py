"""Set-based writes for rows a session has loaded: snapshot and link updates, inbox
deletes.

A changed record ends its run with three writes to rows the session holds, or read as
plain rows (:mod:`shopsync.store.rows`): its snapshot's new values, its link's
``updated_at``, and the removal of its inbox row.
Through the unit of work each costs an object's change tracking at flush (about a
third of a changed record's engine time); here the new values are set on the loaded
objects as if read from the database (``set_committed_value``: they are not dirty, and
the session keeps answering with them) and sent as one statement per table: an
``UPDATE ... WHERE key = ?`` driver-level ``executemany`` (:mod:`~shopsync.store.bulk`)
on SQLite, one ``UPDATE ... FROM json_to_recordset(...)`` over a JSON document of the
rows on PostgreSQL. Inbox rows leave the session and go in one ``DELETE ... WHERE id IN
(...)``.

Pending updates are sent before any statement the session executes, before each flush
and before a commit, so no query in the same transaction sees an older row; a rollback
drops them with everything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, event, inspect, text
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import set_committed_value

from shopsync.store import bulk
from shopsync.store.chunks import among, in_chunks
from shopsync.store.db import dump_json
from shopsync.store.models import InboxRecord, Link, Snapshot
from shopsync.store.rows import (
    InboxEntry,
    InboxRow,
    LinkEntry,
    LinkRow,
    SnapshotEntry,
    SnapshotRow,
    orm_copy,
)

_KEY = "shopsync.deferred"


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


def update_snapshot(s: Session, snap: SnapshotEntry, values: dict[str, Any]) -> None:
    """Give a snapshot read from the database ``values`` (its columns but ``link_id``, as
    :func:`~shopsync.store.repo.put_snapshot` makes them): a plain row and a loaded ORM
    object alike, and an ORM copy of a plain row in the session with it, so that a
    later look-up in this session answers with the new values."""
    orm = snap if isinstance(snap, Snapshot) else orm_copy(s, Snapshot, snap.link_id)
    if isinstance(snap, SnapshotRow):
        for name, value in values.items():
            setattr(snap, name, value)
    if orm is not None:
        for name, value in values.items():
            set_committed_value(orm, name, value)
    _pending(s).snapshots[snap.link_id] = values


def touch_link(s: Session, link: LinkEntry, at: datetime) -> None:
    """Set a link's ``updated_at``; a link not yet flushed takes it the usual way. A
    plain row is written by id, and an ORM copy of it in the session takes the value."""
    if isinstance(link, LinkRow):
        link.updated_at = at
        twin = orm_copy(s, Link, link.id)
        if twin is not None:
            set_committed_value(twin, "updated_at", at)
    elif is_loaded(s, link):
        set_committed_value(link, "updated_at", at)
    else:  # not yet flushed: its INSERT writes it
        link.updated_at = at
        return
    _pending(s).links[link.id] = at


def send(s: Session) -> None:
    """Send the pending updates now (one statement per table)."""
    pending: _Pending | None = s.info.get(_KEY)
    if not pending:
        return
    snapshots, links = list(pending.snapshots.items()), list(pending.links.items())
    pending.snapshots.clear()
    pending.links.clear()
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        _send_postgresql(conn, snapshots, links)
        return
    bulk.update_many(
        conn, Snapshot, "link_id", [{**values, "link_id": key} for key, values in snapshots]
    )
    bulk.update_many(conn, Link, "id", [{"id": key, "updated_at": at} for key, at in links])


_PG_SNAPSHOTS = text(
    """UPDATE snapshots AS t SET props = v.props,
        webcrm_updated_at = v.c_at, webshop_updated_at = v.s_at, webshop_version = v.version,
        webcrm_fp = v.c_fp, webshop_fp = v.s_fp, updated_at = v.at
    FROM json_to_recordset(CAST(:rows AS json)) AS v(link_id bigint, props json,
        c_at timestamptz, s_at timestamptz, version int, c_fp text, s_fp text, at timestamptz)
    WHERE t.link_id = v.link_id"""
)
_PG_LINKS = text(
    """UPDATE links AS t SET updated_at = v.at
    FROM json_to_recordset(CAST(:rows AS json)) AS v(id bigint, at timestamptz)
    WHERE t.id = v.id"""
)


def _send_postgresql(
    conn: Connection,
    snapshots: list[tuple[int, dict[str, Any]]],
    links: list[tuple[int, datetime]],
) -> None:
    """PostgreSQL: each table's updates as one statement over one JSON document of the
    rows (``json_to_recordset``). An ``executemany`` ran the ``UPDATE`` once per row on
    the server, which cost as much as the rest of recording a changed record; arrays
    (``unnest``) cost as much again in psycopg, which quotes each text element of an
    array in Python, and a snapshot's values are a JSON text full of quotes."""
    if snapshots:
        rows = [_snapshot_row(key, values) for key, values in snapshots]
        conn.execute(_PG_SNAPSHOTS, {"rows": dump_json(rows)})
    if links:
        rows = [{"id": key, "at": at} for key, at in links]
        conn.execute(_PG_LINKS, {"rows": dump_json(rows)})


def _snapshot_row(link_id: int, v: dict[str, Any]) -> dict[str, Any]:
    """One row of the JSON document :data:`_PG_SNAPSHOTS` reads, named as it names them."""
    return {
        "link_id": link_id, "props": v["props"], "c_at": v["webcrm_updated_at"],
        "s_at": v["webshop_updated_at"], "version": v["webshop_version"],
        "c_fp": v["webcrm_fp"], "s_fp": v["webshop_fp"], "at": v["updated_at"],
    }  # fmt: skip


def delete_inbox_rows(s: Session, rows: Iterable[InboxEntry]) -> None:
    """Take rows out of the inbox in one ``DELETE``: plain rows and loaded ORM rows by
    id (an ORM copy of a plain row leaves the session with it, so no later flush writes
    to a deleted row); ORM rows added and not yet flushed are just unadded."""
    ids: list[int] = []
    for row in rows:
        if isinstance(row, InboxRow):
            ids.append(row.id)
            twin = orm_copy(s, InboxRecord, row.id)
            if twin is not None:
                s.expunge(twin)
            continue
        if row not in s:
            continue
        if is_loaded(s, row):
            ids.append(row.id)
        s.expunge(row)
    table = cast(Table, InboxRecord.__table__)
    for chunk in in_chunks(ids):
        s.execute(delete(table).where(among(table.c.id, chunk)))
