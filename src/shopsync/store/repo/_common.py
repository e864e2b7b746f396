"""The private helpers every part of :mod:`shopsync.store.repo` shares: the clock, UTC
for SQLite's naive datetimes, a model's Core table, and the WHERE terms that pick
records of a datatype and system.

Kept in one module so that no part of the package imports another for them; ``now``
and ``as_utc`` are also re-exported by the package, where the engine uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import ColumnElement, Table

from shopsync.store.chunks import among
from shopsync.store.models import Base, InboxRecord, Intent, MergeKey, PutAside


def _table(model: type[Base]) -> Table:
    """A model's table, for Core statements: an ``insert`` of many rows into it is one
    ``executemany``, where the ORM's would fetch every new id back."""
    return cast(Table, model.__table__)


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_Keyed = type[InboxRecord] | type[MergeKey] | type[PutAside] | type[Intent]


def _of(
    model: _Keyed, datatype: str, system: str, record_id: str | Sequence[str]
) -> tuple[ColumnElement[bool], ...]:
    """The WHERE terms picking one record (or several) of a datatype and system."""
    rid = (
        model.record_id == record_id
        if isinstance(record_id, str)
        else among(model.record_id, record_id)
    )
    return (model.datatype == datatype, model.system == system, rid)
