"""Driver-level ``executemany`` (:mod:`shopsync.store.bulk`), on both databases: rows land
exactly as SQLAlchemy's own ``insert``/``update`` would have written them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from shopsync.store import bulk
from shopsync.store.models import InboxRecord
from shopsync.store.repo import as_utc

TABLE = cast(Table, InboxRecord.__table__)
AT = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def _row(rid: str, data: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {
        "datatype": "customers", "system": "webshop", "record_id": rid, "parent_id": None,
        "updated_at": AT, "deleted": data is None, "data": data, "waiting_reason": None,
        "attempts": 0, "received_at": AT, **extra,
    }  # fmt: skip


ODD: list[dict[str, Any] | None] = [
    {"name": 'Århus "Cykler" ApS', "n": 2**70, "nested": {"x": [1, 2.5, None]}},
    None,  # a deletion: no data
    {"name": "it's 100% o'clock", "empty": ""},
]


def _stored(s: Session, prefix: str) -> list[tuple[Any, ...]]:
    rows = s.execute(
        select(
            InboxRecord.record_id, InboxRecord.data, InboxRecord.updated_at,
            InboxRecord.deleted, InboxRecord.attempts, InboxRecord.received_at,
        ).where(InboxRecord.record_id.like(f"{prefix}%")).order_by(InboxRecord.record_id)
    )  # fmt: skip
    return [(r[0].removeprefix(prefix), r[1], as_utc(r[2]), r[3], r[4], as_utc(r[5])) for r in rows]


def test_insert_many_writes_what_a_core_insert_writes(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        s.execute(insert(TABLE), [_row(f"core-{i}", d) for i, d in enumerate(ODD)])
        bulk.insert_many(
            s.connection(), InboxRecord, [_row(f"bulk-{i}", d) for i, d in enumerate(ODD)]
        )
        s.commit()
        assert _stored(s, "bulk-") == _stored(s, "core-")
        assert len(_stored(s, "bulk-")) == 3
        # a deletion's data is stored as SQLAlchemy stores None in a JSON column
        kinds = s.execute(
            text("SELECT record_id, data IS NULL FROM inbox WHERE record_id LIKE '%-1'")
        ).all()
        assert len({isnull for _, isnull in kinds}) == 1, kinds


def test_update_many_writes_what_a_core_update_writes(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        s.execute(
            insert(TABLE), [_row(f"{p}-{i}", None) for p in ("core", "bulk") for i in range(3)]
        )
        ids = {rid: i for rid, i in s.execute(select(InboxRecord.record_id, InboxRecord.id))}
        later = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
        changes = [
            {"data": d, "deleted": d is None, "updated_at": later, "attempts": i}
            for i, d in enumerate(ODD)
        ]
        for i, change in enumerate(changes):
            s.execute(update(TABLE).where(TABLE.c.id == ids[f"core-{i}"]).values(**change))
        bulk.update_many(
            s.connection(),
            InboxRecord,
            "id",
            [{"id": ids[f"bulk-{i}"], **c} for i, c in enumerate(changes)],
        )
        s.commit()
        assert _stored(s, "bulk-") == _stored(s, "core-")
        assert [r[4] for r in _stored(s, "bulk-")] == [0, 1, 2]


def test_nothing_to_write_sends_nothing(engine: Engine) -> None:
    sent: list[str] = []
    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    with engine.begin() as conn:
        bulk.insert_many(conn, InboxRecord, [])
        bulk.update_many(conn, InboxRecord, "id", [])
    assert [x for x in sent if x != "BEGIN"] == []  # SQLite's own BEGIN aside


def test_placeholders_match_the_driver(engine: Engine) -> None:
    """``?`` for sqlite3 and ``%s`` for psycopg: a wrong one fails at once."""
    with engine.begin() as conn:
        bulk.insert_many(conn, InboxRecord, [_row("mark", {"n": 1})])
        got = conn.execute(select(InboxRecord.data).where(InboxRecord.record_id == "mark"))
        assert got.scalar_one() == {"n": 1}


def test_times_are_stored_as_the_same_text_as_sqlalchemy_writes(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    """On SQLite a time is text: a time with and without microseconds, with a zone and
    without, before year 1000, is written character for character as SQLAlchemy writes
    it (the engine compares and sorts these texts)."""
    from datetime import timedelta, timezone

    times = [
        AT,
        AT.replace(microsecond=0),
        AT.replace(tzinfo=None),
        AT.astimezone(timezone(timedelta(hours=2))),  # SQLAlchemy keeps the wall time
        datetime(999, 1, 2, 3, 4, 5, 6),
    ]
    with sessions() as s:
        for i, at in enumerate(times):
            s.execute(insert(TABLE), [_row(f"core-{i}", None, updated_at=at, received_at=at)])
            bulk.insert_many(
                s.connection(),
                InboxRecord,
                [_row(f"bulk-{i}", None, updated_at=at, received_at=at)],
            )
        s.commit()
        rows = s.execute(text("SELECT record_id, CAST(updated_at AS TEXT) FROM inbox"))
        raw = {rid: at for rid, at in rows}
    for i in range(len(times)):
        assert raw[f"bulk-{i}"] == raw[f"core-{i}"], (i, raw)
    if engine.dialect.name == "sqlite":
        assert raw["bulk-0"] == "2026-11-30 12:00:00.123456"
