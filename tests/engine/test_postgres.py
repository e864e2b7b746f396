"""The engine's end-to-end suite again, with the state in PostgreSQL.

The tests are the same functions as on SQLite (imported below); this module only swaps
the ``env`` fixture for one whose state database is a fresh PostgreSQL database, so
every scenario, the crash test and the property tests also run against PostgreSQL.
Skipped, with the reason, when no PostgreSQL server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from shopsync.config.model import Datatype
from shopsync.emulators.launch import RunningServer
from shopsync.runtime import Installation
from shopsync.store import db, repo
from shopsync.store.models import Base
from tests.engine.conftest import Env, make_config
from tests.engine.test_crash import (  # noqa: F401
    test_answers_lost_after_the_write_are_resolved_not_resent,
    test_sigkill_at_random_points_loses_and_duplicates_nothing,
    write_config,
)
from tests.engine.test_customers import *  # noqa: F403
from tests.engine.test_hostile import test_one_bad_record_fails_only_itself  # noqa: F401
from tests.engine.test_lock import (  # noqa: F401
    test_a_sync_longer_than_its_lease_keeps_the_lock,
    test_two_syncs_started_together_one_refuses_cleanly,
)
from tests.engine.test_state_machine import test_random_edits_on_both_sides_converge  # noqa: F401


@pytest.fixture
def env(
    reset_emulator: RunningServer, reset_webshop: RunningServer, pg_session_url: str
) -> Iterator[Env]:
    """A migrated PostgreSQL state database, emptied before each test (fast: TRUNCATE)."""
    engine = db.make_engine(pg_session_url)
    db.ensure_current(engine, auto_upgrade=True)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    inst = Installation(make_config(reset_emulator, reset_webshop, pg_session_url))
    e = Env(reset_emulator, reset_webshop, pg_session_url, inst)
    try:
        yield e
    finally:
        e.inst.close()


def test_state_is_in_postgres(env: Env) -> None:
    assert env.inst.db.dialect.name == "postgresql"


@pytest.mark.slow
def test_two_sync_processes_on_one_postgres_state(env: Env, tmp_path: Path) -> None:
    """Two workers started together: one syncs, the other refuses cleanly; nothing doubles."""
    httpx.post(
        env.crm_server.url + "/_emulator/seed", json={"n": 20, "seed": 3}, timeout=60
    ).raise_for_status()
    httpx.post(
        env.shop_server.url + "/_webshop/seed", json={"n": 10, "seed": 3}, timeout=60
    ).raise_for_status()
    config = tmp_path / "shopsync.toml"
    write_config(config, env.crm_server, env.shop_server, env.state_url)
    cmd = [sys.executable, "-m", "shopsync", "sync", "--config", str(config)]
    env.inst.db  # create the schema first, so both workers start from the same state  # noqa: B018
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read().decode() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0, results
    assert codes[1] in (0, 1), results
    if codes[1] == 1:
        assert any("holds the 'sync' lock" in err for _, err in results), results
    assert env.sync().writes >= 0
    assert env.sync().writes == 0
    with env.inst.session() as s:
        n = len(list(s.scalars(repo.select_links(Datatype.customers.value))))
    assert len(env.crm_all("Organisation")) == len(env.shop_all("customers")) == n
