"""Many rows inserted or updated in one driver-level ``executemany``.

A Core ``insert``/``update`` executed with a list of rows goes through SQLAlchemy's
per-row parameter processing: a dictionary built per row, each value looked up by
name, then its type's processor. For a page of 1,000 changed records that was most of
what recording their snapshots cost on SQLite (86 of 112 samples in a py-spy profile of
``deferred.send``; SQLite's own work was 14). Here the statement is built once, each
column's bind processor is taken from its type once (JSON written by the engine's
serializer, SQLite's text form of a datetime), and the rows go to the driver as
tuples. Values land in the database exactly as SQLAlchemy would have written them.

Only for statements whose rows all have the same columns; nothing here is read back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table

from shopsync.store.models import Base

Processor = Callable[[Any], Any] | None


def insert_many(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT`` ``rows`` into ``model``'s table (mappings of column name → value, all
    with the same keys)."""
    if not rows:
        return
    table = _table(model)
    columns = list(rows[0])
    sql = (
        f"INSERT INTO {_name(conn, table.name)} ({', '.join(_name(conn, c) for c in columns)}) "
        f"VALUES ({', '.join([_mark(conn)] * len(columns))})"
    )
    _send(conn, table, sql, columns, rows)


def update_many(
    conn: Connection, model: type[Base], key: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``UPDATE`` each row's other columns in ``model``'s table ``WHERE key = row[key]``
    (all rows with the same keys)."""
    if not rows:
        return
    table = _table(model)
    columns = [c for c in rows[0] if c != key]
    mark = _mark(conn)
    sets = ", ".join(f"{_name(conn, c)} = {mark}" for c in columns)
    sql = f"UPDATE {_name(conn, table.name)} SET {sets} WHERE {_name(conn, key)} = {mark}"
    _send(conn, table, sql, [*columns, key], rows)


def _send(
    conn: Connection,
    table: Table,
    sql: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    dialect = conn.dialect
    processors: list[Processor] = [
        table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns
    ]
    params = [
        tuple(row[c] if p is None else p(row[c]) for c, p in zip(columns, processors, strict=True))
        for row in rows
    ]
    conn.exec_driver_sql(sql, params)


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _name(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _mark(conn: Connection) -> str:
    """The driver's placeholder: ``?`` for sqlite3, ``%s`` for psycopg."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"
