"""Many rows inserted or updated in one driver-level ``executemany`` (inserts on
PostgreSQL: one ``COPY``).

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

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME

from shopsync.store.models import Base

Processor = Callable[[Any], Any] | None
_SQLITE_FORMAT = SQLITE_DATETIME._storage_format
"""SQLAlchemy's default text form of a time on SQLite, which :func:`_sqlite_datetime` writes."""


def insert_many(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT`` ``rows`` into ``model``'s table (mappings of column name → value, all
    with the same keys): a ``COPY`` on PostgreSQL, an ``executemany`` on SQLite."""
    if not rows:
        return
    table = _table(model)
    columns = list(rows[0])
    names = ", ".join(_name(conn, c) for c in columns)
    if conn.dialect.name == "postgresql":
        _copy(conn, table, f"COPY {_name(conn, table.name)} ({names}) FROM STDIN", columns, rows)
        return
    sql = (
        f"INSERT INTO {_name(conn, table.name)} ({names}) "
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
    conn.exec_driver_sql(sql, list(_values(conn, table, columns, rows)))


def _values(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> Iterator[tuple[Any, ...]]:
    """Each row's values in ``columns`` order, through their columns' bind processors.

    The values are taken together (``itemgetter``) and only the columns with a
    processor are passed through it: a generator over every column of every row had
    cost as much as the processors themselves."""
    processed = [
        (i, p) for i, c in enumerate(columns) if (p := _processor(conn, table, c)) is not None
    ]
    get = itemgetter(*columns)
    single = len(columns) == 1
    for row in rows:
        taken = get(row)
        values = [taken] if single else list(taken)
        for i, process in processed:
            values[i] = process(values[i])
        yield tuple(values)


def _copy(
    conn: Connection,
    table: Table,
    sql: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """PostgreSQL: the rows as one ``COPY ... FROM STDIN`` in the connection's
    transaction. An ``executemany`` of an ``INSERT`` is still one statement per row for
    the server (psycopg pipelines them); ``COPY`` is one stream, a fraction of the cost
    for a page of inbox rows. The values pass the same bind processors first."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        for values in _values(conn, table, columns, rows):
            copy.write_row(values)


def _processor(conn: Connection, table: Table, column: str) -> Processor:
    dialect = conn.dialect
    impl = table.c[column].type.dialect_impl(dialect)
    process = impl.bind_processor(dialect)
    if isinstance(impl, SQLITE_DATETIME) and impl._storage_format == _SQLITE_FORMAT:
        return _sqlite_datetime(process)
    return process


def _sqlite_datetime(general: Processor) -> Processor:
    """SQLAlchemy's SQLite text of a datetime (``YYYY-MM-DD HH:MM:SS.ffffff``, its zone
    left out) written by ``isoformat``, which is the same text: SQLAlchemy's own fills a
    format from a dictionary made per value, a fifth of what writing a page of snapshot
    updates cost. Anything but a datetime goes to SQLAlchemy's."""

    def process(value: Any) -> Any:
        if type(value) is datetime:
            # the zone's offset, if any, follows the 26 characters of the time itself
            return value.isoformat(" ", "microseconds")[:26]
        return general(value) if general is not None else value

    return process


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _name(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _mark(conn: Connection) -> str:
    """The driver's placeholder: ``?`` for sqlite3, ``%s`` for psycopg."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"
