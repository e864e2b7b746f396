"""Rows of the state database read as plain values, for the engine's hot path.

The engine reads a batch's inbox rows, links and snapshots by the hundred and writes
each back at most once, by key. As ORM objects each cost an identity-map entry, change
tracking and attribute events; as plain values they cost a tuple. Nothing tracks a
change to a plain row: the repository's writers (``repo.set_waiting``,
``deferred.update_snapshot``, ``deferred.touch_link``, ``repo.set_link_state``,
``deferred.delete_inbox_rows``) write by key, and keep in step an ORM copy of the same
row that the session may hold (:func:`orm_copy`). Rows
the engine stages or changes one at a time (order lines, reminders, the links of
orders, which their lines' links hang from) stay ORM objects; ``InboxEntry``,
``LinkEntry`` and ``SnapshotEntry`` are either.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Table
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from shopsync.store.models import InboxRecord, Link, Snapshot

_Model = type[InboxRecord] | type[Link] | type[Snapshot]
_M = TypeVar("_M", InboxRecord, Link, Snapshot)


@dataclass(slots=True, eq=False)
class LinkRow:
    """A link read as plain values (``repo.link_rows_for``): the engine reads one per
    record of a batch of customers or products, and writes back at most its
    ``updated_at`` (``deferred.touch_link``) or, for a delete, its ``state``
    (``repo.set_link_state``); as an ORM object each cost twice as much to load."""

    id: int
    datatype: str
    webcrm_id: str
    webshop_id: str
    parent_id: int | None
    created_by: str
    state: str
    created_at: datetime
    updated_at: datetime


LinkEntry = Link | LinkRow
"""A link as the engine holds it: read plain for a batch of customers or products, or
as an ORM object where it is made, looked up one at a time, or has lines."""


@dataclass(slots=True, eq=False)
class SnapshotRow:
    """A snapshot read as plain values (``repo.snapshots_for``): the engine reads one per
    linked record of a batch and writes it back once, by link id
    (``deferred.update_snapshot``); an ORM object for each cost its identity-map entry
    and an attribute event per column written."""

    link_id: int
    props: dict[str, Any]
    webcrm_updated_at: datetime | None
    webshop_updated_at: datetime | None
    webshop_version: int | None
    webcrm_fp: str | None
    webshop_fp: str | None
    updated_at: datetime


SnapshotEntry = Snapshot | SnapshotRow
"""A snapshot as the engine holds it: read plain for a batch, or as an ORM object where
it is looked up (or added) one link at a time."""


@dataclass(slots=True, eq=False)
class InboxRow:
    """An inbox row read as plain values (``repo.inbox_batch``, ``repo.inbox_rows``).

    The engine reads tens of thousands of inbox rows a run only to take them out again;
    as ORM objects each cost an identity-map entry, change tracking and an expunge on
    the way out (a tenth of a changed record's engine time). Nothing tracks a change to
    one: ``repo.set_waiting`` writes the one change the engine makes to a row it keeps.
    """

    id: int
    datatype: str
    system: str
    record_id: str
    parent_id: str | None
    updated_at: datetime | None
    deleted: bool
    data: dict[str, Any] | None
    waiting_reason: str | None
    attempts: int
    received_at: datetime


InboxEntry = InboxRecord | InboxRow
"""An inbox row as the engine holds it: read plain in batches, or as an ORM object
where the engine stages or changes single rows (order lines, reminders)."""


def columns(model: _Model, row: type[Any]) -> tuple[Column[Any], ...]:
    """The columns of ``model``'s table a plain ``row`` type is built from, in the order
    its fields take them (``row(*values)`` of a ``select`` of them)."""
    table = cast(Table, model.__table__)
    return tuple(table.c[f.name] for f in fields(row))


def orm_copy(s: Session, model: type[_M], key: int) -> _M | None:
    """The ORM object of the row ``key`` of ``model`` that the session holds, if any
    (without a query): what a write of a plain row must keep in step."""
    found = s.identity_map.get(identity_key(model, key))
    return found if isinstance(found, model) else None
