"""Statistics refreshed when a run has grown a table (:mod:`shopsync.store.statistics`)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from shopsync.store import repo, statistics


def test_tables_are_analysed_each_time_the_rows_added_double(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    done: list[tuple[str, ...]] = []
    monkeypatch.setattr(statistics, "analyze", lambda _s, tables: done.append(tuple(tables)))
    growth = statistics.Growth(first=10)
    with sessions() as s:
        seen = [growth.added(s, ("inbox",), n) for n in (0, 9, 10, 15, 19, 20, 39, 45, 89, 90)]
    assert seen == [False, False, True, False, False, True, False, True, False, True]
    assert done == [("inbox",)] * 4


def test_each_group_of_tables_keeps_its_own_count(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "analyze", lambda _s, _tables: None)
    growth = statistics.Growth(first=10)
    with sessions() as s:
        assert growth.added(s, ("inbox", "merge_keys"), 12)
        assert growth.added(s, ("links", "snapshots"), 12)
        assert not growth.added(s, ("inbox", "merge_keys"), 20)


def test_only_the_tables_a_run_grows_are_named(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, pytest.raises(ValueError, match="not a table a run grows"):
        statistics.analyze(s, ["inbox; DROP TABLE links"])


def test_analyze_gives_postgresql_the_rows_a_transaction_added(
    sessions: sessionmaker[Session],
) -> None:
    """On PostgreSQL the planner's row count (``pg_class.reltuples``) follows the rows
    staged, within the transaction that staged them; on SQLite nothing is sent."""
    with sessions() as s:
        for i in range(50):
            repo.stage(s, "customers", "webshop", f"cus_{i}", updated_at=None, data={"i": i})
        s.flush()
        statistics.analyze(s, ["inbox"])
        if s.get_bind().dialect.name != "postgresql":
            assert s.execute(text("SELECT count(*) FROM inbox")).scalar_one() == 50
            return
        tuples = s.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'inbox'")
        ).scalar_one()
        assert tuples == 50
