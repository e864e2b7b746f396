"""Shared fixtures: real server processes and real databases.

* ``webcrm_emulator`` / ``webshop_server``: session-wide child processes reached over real
  HTTP (``shopsync.emulators.launch``); tests that need a clean slate call
  ``reset_emulator`` / ``reset_webshop`` (their ``/_…/reset`` controls).
* ``pg_url``: a throw-away PostgreSQL database on 127.0.0.1:5432, dropped afterwards;
  the test is skipped, with the reason, when no server answers there.
* Hypothesis profiles (``docs/testing.md``): ``deterministic`` by default (a fixed seed
  per test, no deadline: a run is a verdict, never luck or machine speed) and
  ``explore`` with ``SHOPSYNC_HYPOTHESIS=explore`` (random seeds, 10× the examples).
  Tests that set ``max_examples`` themselves write ``max_examples=examples(60)``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings

from shopsync.emulators.launch import RunningServer, start_webcrm_emulator, start_webshop_server

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SWAGGER = SHARED / "reference" / "webcrm-swagger.json"
DATAFLOW = SHARED / "spec" / "dataflow.md"

AUTH_CODE = "11111111-2222-3333-4444-555555555555"
WEBSHOP_TOKEN = "test-webshop-token"
PG_ADMIN_URL = os.environ.get("SHOPSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# ------------------------------------------------------------------ hypothesis

EXPLORE_FACTOR = 10
"""How many times more examples the ``explore`` profile runs than the suite's own."""
_TIMING = [HealthCheck.too_slow]  # the machine's speed must never fail a test
settings.register_profile(
    "deterministic",
    derandomize=True,  # the seed is derived from the test: the same cases on every run
    deadline=None,
    print_blob=True,
    suppress_health_check=_TIMING,
)
settings.register_profile(
    "explore",
    derandomize=False,  # a new seed each run (``--hypothesis-seed=N`` to replay one)
    max_examples=EXPLORE_FACTOR * settings.get_profile("default").max_examples,
    deadline=None,
    print_blob=True,
    suppress_health_check=_TIMING,
)
HYPOTHESIS_PROFILE = os.environ.get("SHOPSYNC_HYPOTHESIS", "deterministic")
settings.load_profile(HYPOTHESIS_PROFILE)  # an unknown name fails here, naming it


def examples(n: int) -> int:
    """``max_examples`` for a test that sets its own: ``n``, or 10× that when exploring."""
    return n * EXPLORE_FACTOR if HYPOTHESIS_PROFILE == "explore" else n


@pytest.fixture(scope="session")
def swagger_path() -> Path:
    if not SWAGGER.exists():
        pytest.skip(f"webCRM swagger definition not found at {SWAGGER}")
    return SWAGGER


@pytest.fixture(scope="session")
def webcrm_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The emulator with the rate limit off (tests that need it switch it per token)."""
    d = tmp_path_factory.mktemp("webcrm")
    with start_webcrm_emulator(
        d / "emulator.sqlite", auth_code=AUTH_CODE, rate_limit=0, log_path=d / "emulator.log"
    ) as server:
        yield server


@pytest.fixture(scope="session")
def webshop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    d = tmp_path_factory.mktemp("webshop")
    with start_webshop_server(
        str(d / "webshop.sqlite"), token=WEBSHOP_TOKEN, log_path=d / "webshop.log"
    ) as server:
        yield server


@pytest.fixture
def reset_emulator(webcrm_emulator: RunningServer) -> RunningServer:
    httpx.post(webcrm_emulator.url + "/_emulator/reset", timeout=30).raise_for_status()
    return webcrm_emulator


@pytest.fixture
def reset_webshop(webshop_server: RunningServer) -> RunningServer:
    httpx.post(webshop_server.url + "/_webshop/reset", timeout=30).raise_for_status()
    return webshop_server


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means: skip, and say why
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (SQLAlchemy URL, psycopg 3 driver)."""
    yield from _pg_database()


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """One PostgreSQL database for a whole test session (per xdist worker)."""
    yield from _pg_database()


def _pg_database() -> Iterator[str]:
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"shopsync_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
