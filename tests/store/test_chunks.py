"""``among()``: a list of ids as one parameter, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, insert, select, text
from sqlalchemy.exc import CompileError
from sqlalchemy.orm import Session, sessionmaker

from shopsync.store.chunks import among, in_chunks
from shopsync.store.models import InboxRecord, Intent, Link, MergeKey, PutAside
from shopsync.store.repo._common import _of


def add_links(s: Session, n: int) -> None:
    s.execute(
        insert(Link),
        [
            {
                "datatype": "customers",
                "webcrm_id": str(i),
                "webshop_id": f"c{i}",
                "state": "active",
                "created_by": "webcrm",
                "created_at": datetime(2026, 11, 30, tzinfo=UTC),
                "updated_at": datetime(2026, 11, 30, tzinfo=UTC),
            }
            for i in range(n)
        ],
    )


def test_among_picks_the_listed_ids_of_a_text_or_integer_column(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        add_links(s, 50)
        found = s.scalars(select(Link.webcrm_id).where(among(Link.webcrm_id, ["3", "7", "x"])))
        assert sorted(found) == ["3", "7"]
        ids = sorted(s.scalars(select(Link.id)))[:3]
        assert sorted(s.scalars(select(Link.id).where(among(Link.id, ids)))) == ids
        assert list(s.scalars(select(Link.id).where(among(Link.id, [])))) == []
        # Numbers asked of a text column are compared as text (as IN did on SQLite).
        found = s.scalars(select(Link.webcrm_id).where(among(Link.webcrm_id, [3, 7])))
        assert sorted(found) == ["3", "7"]
        # Text that looks like SQL or JSON is an id like any other.
        odd = ['a"b', "c'); DROP TABLE links; --", "[1]", "æøå"]
        assert list(s.scalars(select(Link.id).where(among(Link.webcrm_id, odd)))) == []
        # The statement is cached once and sent with each call's own list.
        for chunk in in_chunks([str(i) for i in range(50)], 7):
            got = s.scalars(select(Link.webcrm_id).where(among(Link.webcrm_id, chunk)))
            assert sorted(got) == sorted(chunk)
        gone = s.execute(delete(Link).where(among(Link.webcrm_id, ["1", "2"])))
        assert gone.rowcount == 2
        assert s.scalar(select(Link.id).where(Link.webcrm_id == "9")) is not None


def test_among_uses_the_index_on_sqlite(sessions: sessionmaker[Session], engine: Engine) -> None:
    """Not ``(… IN …) = 1``, which SQLite answers by reading the whole table."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    stmt = select(InboxRecord.id).where(
        InboxRecord.datatype == "customers",
        InboxRecord.system == "webcrm",
        among(InboxRecord.record_id, ["1", "2"]),
    )
    sql = str(stmt.compile(engine))
    assert "json_each" in sql and "= 1" not in sql
    with sessions() as s:
        cursor = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        rows = cursor.execute(f"EXPLAIN QUERY PLAN {sql}", ("customers", "webcrm", "[]"))
        plan = " ".join(str(row[-1]) for row in rows)
    assert "SEARCH" in plan and "SCAN inbox" not in plan, plan


@pytest.mark.parametrize("model", [MergeKey, InboxRecord, PutAside, Intent])
def test_records_are_read_by_an_index_on_their_id_on_sqlite(
    sessions: sessionmaker[Session], engine: Engine, model: Any
) -> None:
    """Each table read a page of records at a time (``_of``: datatype, system and the
    page's ids) is searched by the record ids, not by its datatype and system alone:
    that read every row of the datatype for each page (merge keys until migration
    0006)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    sql = str(select(model.id).where(*_of(model, "customers", "webcrm", ["1"])).compile(engine))
    with sessions() as s:
        cursor = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        rows = cursor.execute(f"EXPLAIN QUERY PLAN {sql}", ("customers", "webcrm", "[]"))
        plan = " ".join(str(row[-1]) for row in rows)
    assert "record_id=?" in plan, plan


def test_among_refuses_a_database_it_was_not_written_for() -> None:
    from sqlalchemy.dialects import mysql

    with pytest.raises(CompileError, match="SQLite and PostgreSQL"):
        select(Link.id).where(among(Link.id, [1])).compile(dialect=mysql.dialect())


def test_among_uses_the_index_on_postgresql(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    """The JSON list is made an array once (an init plan), and the index is searched
    with it, for a text column and an integer one."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's query plan")
    sent: list[tuple[str, Any]] = []
    with sessions() as s:
        add_links(s, 5000)
        s.commit()
        s.execute(text("ANALYZE links"))
        for column, ids in ((Link.webcrm_id, ["3", "7"]), (Link.id, [3, 7])):
            stmt = select(Link.id).where(Link.datatype == "customers", among(column, ids))
            with event_listened(engine, sent):
                s.execute(stmt).all()
            sql, params = sent.pop()
            cursor = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
            plan = "\n".join(str(r[0]) for r in cursor.execute(f"EXPLAIN {sql}", params))
            assert "Index" in plan and "Seq Scan" not in plan, plan


@contextmanager
def event_listened(engine: Engine, sent: list[tuple[str, Any]]) -> Iterator[None]:
    """Each statement the engine sends, as the driver gets it."""

    def keep(_c: Any, _cur: Any, stmt: str, params: Any, _ctx: Any, _many: bool) -> None:
        sent.append((stmt, params))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", keep)
