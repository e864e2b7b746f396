"""The state store on SQLite and on PostgreSQL: schema, constraints, repository, locks."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shopsync.locking import Busy, exclusive
from shopsync.store import db, repo
from shopsync.store.models import Base, Snapshot


def test_upgrade_creates_every_table_and_is_idempotent(engine: Engine) -> None:
    assert db.current_revision(engine) == db.head_revision()
    before, after = db.upgrade(engine)
    assert before == after == db.head_revision()
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            conn.execute(text(f'SELECT COUNT(*) FROM "{table.name}"'))


def test_refuses_a_schema_it_does_not_know(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'zzzz_newer'"))
    with pytest.raises(db.SchemaError, match="does not know"):
        db.ensure_current(engine)
    with pytest.raises(db.SchemaError, match="does not know"):
        db.upgrade(engine)


def test_an_empty_database_must_be_upgraded_first(tmp_path: Path) -> None:
    eng = db.make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with pytest.raises(db.SchemaError, match="shopsync db upgrade"):
        db.ensure_current(eng)
    db.ensure_current(eng, auto_upgrade=True)
    assert db.current_revision(eng) == db.head_revision()


def test_links_are_one_to_one(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        repo.add_link(s, "customers", "1", "cus_a", "webcrm")
        s.commit()
        repo.add_link(s, "products", "1", "cus_a", "webcrm")  # other datatype: fine
        s.commit()
        with pytest.raises(IntegrityError):
            repo.add_link(s, "customers", "1", "cus_b", "webcrm")
        s.rollback()
        with pytest.raises(IntegrityError):
            repo.add_link(s, "customers", "2", "cus_a", "webshop")
        s.rollback()
        assert repo.link_by_webshop(s, "customers", "cus_a").webcrm_id == "1"  # type: ignore[union-attr]


def test_snapshot_with_a_new_link_in_one_flush(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        link = repo.add_link(s, "order_lines", "7", "lin_x", "webcrm", flush=False)
        repo.put_snapshot(s, link, {"sku": {"c": "A", "s": "A"}}, None, None, 3)
        s.commit()
        snap = repo.get_snapshot(s, link)
        assert snap is not None and snap.props["sku"] == {"c": "A", "s": "A"}
        repo.put_snapshot(s, link, {"sku": {"c": "B", "s": "B"}}, None, None, None)
        s.commit()
        snap = repo.get_snapshot(s, link)
        assert snap is not None and snap.props["sku"]["c"] == "B" and snap.webshop_version == 3


def test_stage_page_keeps_the_newest_version(sessions: sessionmaker[Session]) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with sessions() as s:
        repo.stage_page(s, "customers", "webshop", [("c1", t0, {"name": "old"}, None)])
        s.commit()
        repo.stage_page(
            s, "customers", "webshop",
            [("c1", t0 + timedelta(seconds=1), {"name": "new"}, None), ("c2", t0, None, None)],
        )  # fmt: skip
        s.commit()
        repo.stage_page(s, "customers", "webshop", [("c1", t0, {"name": "older"}, None)])
        s.commit()
        row = repo.inbox_get(s, "customers", "webshop", "c1")
        assert row is not None and row.data == {"name": "new"}
        gone = repo.inbox_get(s, "customers", "webshop", "c2")
        assert gone is not None and gone.deleted


def test_cursor_and_counts_survive_a_new_session(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        repo.set_cursor(s, "customers", "webcrm", "2026-11-26T10:00:00Z")
        repo.set_cursor(s, "customers", "webcrm", "2026-11-26T11:00:00Z")
        repo.add_updates(s, "customers", "to_webshop", 2)
        repo.add_updates(s, "customers", "to_webshop", 3)
        s.commit()
    with sessions() as s:
        assert repo.get_cursor(s, "customers", "webcrm") == "2026-11-26T11:00:00Z"
        assert repo.update_counts(s)[("customers", "to_webshop")] == 5


def test_update_counts_survive_a_rollback_and_add_up(sessions: sessionmaker[Session]) -> None:
    """The session keeps the count row it found; after a rollback (which takes a row
    added in it away) the count is looked up again, and nothing is counted twice."""
    with sessions() as s:
        repo.add_updates(s, "products", "to_webcrm", 2)
        s.rollback()  # the row added is gone
        repo.add_updates(s, "products", "to_webcrm", 1)
        s.commit()
        repo.add_updates(s, "products", "to_webcrm", 4)
        s.rollback()  # the 4 are not counted
        repo.add_updates(s, "products", "to_webcrm", 10)
        s.commit()
    with sessions() as s:
        assert repo.update_counts(s) == {("products", "to_webcrm"): 11}


def test_values_fingerprint_is_the_same_for_equal_values_and_reads_any_value() -> None:
    one = {"name": "Århus Cykler", "price": "12.50", "vat": None}
    assert repo.values_fingerprint(one) == repo.values_fingerprint(dict(reversed(one.items())))
    assert repo.values_fingerprint(one) != repo.values_fingerprint({**one, "price": "12.5"})
    # The current form is marked; the forms older releases stored are not, so a stored
    # fingerprint tells which form it is in.
    assert repo.is_current_fingerprint(repo.values_fingerprint(one))
    escaped, unmarked = repo.older_values_fingerprints(one)
    assert escaped != unmarked  # json escaped non-ASCII, orjson does not
    assert not {escaped, unmarked} & {repo.values_fingerprint(one)}
    assert not repo.is_current_fingerprint(escaped) and not repo.is_current_fingerprint(unmarked)
    assert not repo.is_current_fingerprint(None)
    ascii_only = {"name": "Aarhus", "price": "12.50"}
    assert len(set(repo.older_values_fingerprints(ascii_only))) == 1
    # What orjson refuses still has a fingerprint, and a stable one that fits the column.
    odd = {"name": "lone \udc80 surrogate", "n": 2**70}
    assert repo.values_fingerprint(odd) == repo.values_fingerprint(dict(odd))
    assert len(repo.values_fingerprint(odd)) == 31 <= Snapshot.__table__.c.webcrm_fp.type.length


def test_uncommitted_work_is_lost_together(sessions: sessionmaker[Session]) -> None:
    """A link, its snapshot and the inbox removal commit together or not at all."""
    with sessions() as s:
        repo.stage(s, "customers", "webcrm", "9", updated_at=None, data={"OrganisationId": 9})
        s.commit()
    with sessions() as s:
        row = repo.inbox_get(s, "customers", "webcrm", "9")
        link = repo.add_link(s, "customers", "9", "cus_9", "webcrm")
        repo.put_snapshot(s, link, {}, None, None, None)
        s.delete(row)
        s.rollback()  # the process died before COMMIT
    with sessions() as s:
        assert repo.inbox_get(s, "customers", "webcrm", "9") is not None
        assert repo.link_by_webcrm(s, "customers", "9") is None


def test_intent_keys_of_a_batch_are_made_once_and_kept(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        first = repo.intent_key(s, "customers", "webcrm", "1")
        keys = repo.intent_keys(s, "customers", "webcrm", ["1", "2", "3", "2"])
        assert set(keys) == {"1", "2", "3"} and keys["1"] == first
        assert len(set(keys.values())) == 3
        s.commit()
        assert repo.intent_keys(s, "customers", "webcrm", ["3", "2", "1"]) == keys
        assert repo.intent_key(s, "customers", "webcrm", "2") == keys["2"]
        # another datatype or side has keys of its own
        assert repo.intent_keys(s, "customers", "webshop", ["1"])["1"] != keys["1"]
        assert repo.intent_keys(s, "customers", "webcrm", []) == {}


def test_put_aside_and_intents(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        repo.put_aside(s, "products", "webcrm", "5", "too long", "fp1", {"x": 1})
        repo.put_aside(s, "products", "webcrm", "5", "still too long", "fp2", {"x": 2})
        key = repo.intent_key(s, "products", "webcrm", "5")
        assert repo.intent_key(s, "products", "webcrm", "5") == key
        s.commit()
        (entry,) = repo.all_put_aside(s)
        assert (
            entry.attempts == 2 and entry.fingerprint == "fp2" and entry.reason == "still too long"
        )
        repo.clear_intents_many(s, "products", "webcrm", ["5"])
        s.commit()
        assert not repo.has_intent(s, "products", "webcrm", "5")


def test_lock_is_exclusive_and_freed_when_its_holder_dies(sessions: sessionmaker[Session]) -> None:
    with (
        exclusive(sessions),
        pytest.raises(Busy, match="holds the 'sync' lock"),
        exclusive(sessions),
    ):
        pass
    with exclusive(sessions):
        pass  # released by the first holder
    # a holder on this host whose process is gone: taken over at once
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    with sessions() as s:
        owner = f"{socket.gethostname()}:{dead.stdout.strip()}:abcd"
        assert repo.try_lock(s, "sync", owner, timedelta(minutes=30))
    with exclusive(sessions):
        pass


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_processes_opening_a_new_database_at_once_all_find_it_migrated(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two syncs started together on a new state database both migrate it: one waits for
    the other's write lock and then finds the schema at head (it got "database is
    locked" before)."""
    url = (
        f"sqlite:///{tmp_path / 'new.sqlite'}"
        if kind == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    script = (
        "import sys\nfrom shopsync.store import db\n"
        "engine = db.make_engine(sys.argv[1])\n"
        "db.ensure_current(engine, auto_upgrade=True)\n"
        "print(db.current_revision(engine))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]  # fmt: skip
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == db.head_revision()


def test_the_migrations_make_the_schema_the_models_declare(engine: Engine) -> None:
    """Every table, column and index of ``models.py`` is made by a migration (a model
    changed without one would work in tests that create tables from the models, and
    fail on a user's upgraded database)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_connections_get_the_engine_pragmas(tmp_path: Path) -> None:
    """Every SQLite connection is set up the same way: a write-ahead log checkpointed
    every SQLITE_WAL_CHECKPOINT_PAGES pages, normal syncing, foreign keys on."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "wal_autocheckpoint")
            }
    finally:
        engine.dispose()
    assert pragma == {
        "journal_mode": "wal", "synchronous": 1, "foreign_keys": 1,
        "wal_autocheckpoint": db.SQLITE_WAL_CHECKPOINT_PAGES,
    }  # fmt: skip


def test_links_and_snapshots_leave_room_for_updates_on_postgresql(engine: Engine) -> None:
    """Migrated and declared alike: PostgreSQL fills the pages of the two tables every
    changed record rewrites to 60 %, so a row's next version fits beside it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL storage parameter; SQLite has none")
    from sqlalchemy.schema import CreateTable

    with engine.connect() as conn:
        options = dict(
            conn.execute(
                text("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:names)"),
                {"names": ["links", "snapshots", "inbox"]},
            ).all()
        )
        declared = str(CreateTable(Snapshot.__table__).compile(conn))  # type: ignore[arg-type]
    assert options == {
        "links": ["fillfactor=60"], "snapshots": ["fillfactor=60"], "inbox": None,
    }  # fmt: skip
    assert "WITH (fillfactor = 60)" in declared
