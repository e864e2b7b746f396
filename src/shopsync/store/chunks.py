"""Lists of ids in a query: cut into chunks, and sent as one parameter each.

A page of 1000 records asks the state database about those records some ten times
(links, snapshots, fingerprints, inbox rows, merge keys). Sent as ``IN (?, ?, …)`` each
id is a parameter of its own, bound one by one in Python on every execution: on
PostgreSQL that cost 23 ms per 1000 ids, more than the query. :func:`among` sends the
whole list as one parameter instead, a JSON array: read by ``json_each`` on SQLite
(``col IN (SELECT value FROM json_each(:ids))``), made an array on the server on
PostgreSQL (``col = ANY(ARRAY(SELECT json_array_elements_text(:ids)))``). Sent as a
Python list, psycopg would write an array literal, quoting each element in Python,
which cost more than the query itself for a page of ids. Those are the two databases
shopsync supports; any other refuses to compile the statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import orjson
from sqlalchemy import BindParameter, Boolean, Integer, String, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")

IN_LIST = 500
"""Values per list: well under any database's parameter and statement limits, and long
enough that a page of 1000 records costs two statements."""


def in_chunks(values: Iterable[T], size: int = IN_LIST) -> Iterator[list[T]]:
    """``values`` as consecutive lists of at most ``size``."""
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class IdList(TypeDecorator[list[Any]]):
    """A list of ids bound as one parameter: a PostgreSQL array of the column's type, a
    JSON array on SQLite (read by ``json_each``)."""

    impl = String
    cache_ok = True

    def __init__(self, integers: bool) -> None:
        super().__init__()
        self.integers = integers

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        # A text column compared with numbers: ``IN`` compared them as text (SQLite's
        # column affinity), ``json_each`` would not, and would find nothing.
        ids = list(value) if self.integers else [v if isinstance(v, str) else str(v) for v in value]
        return orjson.dumps(ids).decode()


class Among(ColumnElement[bool]):
    """``column`` is one of ``values`` (see :func:`among`)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True
    """A comparison, as ``IN`` is: SQLite must not get it as ``(…) = 1`` (no index)."""
    _traverse_internals = [  # noqa: RUF012  (SQLAlchemy's declaration, read for the cache key)
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: Iterable[Any]) -> None:
        self.column = column
        integers = isinstance(column.type, Integer)
        self.ids: BindParameter[Any] = bindparam(
            None, list(values), type_=IdList(integers), unique=True
        )


def among(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values`` with the list as one parameter (see the module docstring)."""
    return Among(column, values)


@compiles(Among)
def _among_default(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"among() is written for SQLite and PostgreSQL, not {compiler.dialect.name}")


@compiles(Among, "postgresql")
def _among_postgresql(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    items = f"ARRAY(SELECT json_array_elements_text(CAST({ids} AS json)))"
    if isinstance(element.column.type, Integer):
        items = f"CAST({items} AS BIGINT[])"
    return f"{column} = ANY({items})"


@compiles(Among, "sqlite")
def _among_sqlite(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"
