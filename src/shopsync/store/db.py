"""Opening the state database and keeping its schema current.

SQLite (WAL, a busy timeout so a second process waits instead of failing) is the
embedded default; PostgreSQL is chosen by URL. The schema is owned by Alembic:
``shopsync db upgrade`` migrates, and every other command refuses to run against a
schema it does not know (a newer shopsync wrote it) or one that is behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from shopsync.logs import mask_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaError(Exception):
    """The database's schema is not the one this shopsync knows."""


Problem = Literal["unusable", "refused", "unreachable"]


class StateDatabaseError(Exception):
    """The state database cannot be opened or used.

    ``str()`` is one paragraph naming the database (its URL with the password masked),
    what went wrong and what to do; ``problem`` says which kind of failure it is:
    ``unreachable`` (no answer from the server), ``refused`` (the server refused the
    credentials) or ``unusable`` (not a database, cannot be created, no such database).
    """

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message)
        self.problem: Problem = problem


def _one_paragraph(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def describe_error(url: str, exc: BaseException) -> StateDatabaseError:
    """Translate a failure to open or reach the state database into a clear error."""
    where = f"state database {mask_url(url)}"
    hint = "check [state] url in the configuration (or SHOPSYNC_STATE_URL)"
    orig = getattr(exc, "orig", None) or exc
    detail = _one_paragraph(mask_url(str(orig))) or type(orig).__name__
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return StateDatabaseError(
            f"{where}: cannot create {exc.filename or 'its directory'} ({reason}); {hint}",
            "unusable",
        )
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError):
        return StateDatabaseError(
            f"{where}: not a usable database URL ({detail}); {hint}", "unusable"
        )
    sqlite = normalize_url(url).startswith("sqlite")
    if sqlite and "not a database" in detail:
        return StateDatabaseError(
            f"{where}: the file is not an SQLite database ({detail}); point [state] url at "
            "another file, or move this one away and run `shopsync db upgrade`",
            "unusable",
        )
    if sqlite:
        return StateDatabaseError(f"{where}: cannot open it ({detail}); {hint}", "unusable")
    refused = ("authentication failed", "no password supplied", 'role "')
    if any(text in detail for text in refused):
        return StateDatabaseError(
            f"{where}: the server refused the credentials ({detail}); {hint}", "refused"
        )
    if "does not exist" in detail:
        return StateDatabaseError(f"{where}: {detail}; create the database, or {hint}", "unusable")
    if not isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return StateDatabaseError(f"{where}: cannot use it ({detail}); {hint}", "unusable")
    return StateDatabaseError(
        f"{where} cannot be reached ({detail}); check that the server is running and "
        f"accepts connections, and {hint}",
        "unreachable",
    )


CONNECTION_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError)
"""Errors that mean the state database went away (or never answered) during a command."""


@contextmanager
def opening(url: str) -> Iterator[None]:
    """Errors while opening the database inside become a :class:`StateDatabaseError`."""
    try:
        yield
    except (sa_exc.DBAPIError, sa_exc.ArgumentError, sa_exc.NoSuchModuleError, OSError) as exc:
        raise describe_error(url, exc) from exc


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` (psycopg 3 driver) and plain paths."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return mask_url(url)


def dump_json(value: Any) -> str:
    """JSON columns (and the JSON documents of batched updates) are written by orjson
    (several times faster than ``json``: a sync run writes a snapshot and reads an inbox
    row per record; times are written in C, in ISO 8601 with their offset). What orjson
    refuses (a lone surrogate, an integer past 64 bits) is written by ``json``, times
    as ``isoformat`` writes them."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=_iso)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def load_json(text: str | bytes) -> Any:
    """Read a JSON column with orjson; what ``json`` wrote and orjson refuses (``NaN``,
    an escaped lone surrogate) is read by ``json``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("json_serializer", dump_json)
    kwargs.setdefault("json_deserializer", load_json)
    with opening(url):
        return _make_engine(normalize_url(url), **kwargs)


SQLITE_WAL_CHECKPOINT_PAGES = 10_000
"""SQLite copies its write-ahead log into the database (a checkpoint, with an fsync) at
the commit that takes the log past this many pages: 40 MB of 4 kB pages instead of the
default 1,000. A changed run rewrites the same snapshot and inbox pages commit after
commit; with fewer checkpoints each page is copied once for many commits. Measured with
``bench/engine_micro.py`` (docs/benchmarks.md, stop 21): commits of a 40,000-record
changed run took 0.47 and 1.11 s at 1,000 pages, 0.31 and 0.79 s at 10,000."""


def _make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
            # pysqlite commits DDL on its own; let SQLAlchemy's BEGIN cover everything, so
            # a migration killed half-way leaves no tables behind (transactional DDL).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A writer that began with a read and finds the database changed since cannot
            # wait for it (SQLite answers "locked" at once); a sync run's session takes
            # the write lock when it begins instead (``engine.execution_options(
            # sqlite_immediate=True)``), so other writers queue behind it and it behind them.
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with opening(engine.url.render_as_string(hide_password=False)), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


MIGRATION_LOCK = 0x5EA5_5C0F
"""PostgreSQL advisory-lock key that serializes shopsync schema migrations."""


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to ``revision``; returns (before, after)."""
    before = current_revision(engine)
    _check_known(before)
    cfg = _alembic_config()
    # Two processes that open a new database at once both migrate: the write lock is
    # taken before the version table is read (SQLite: BEGIN IMMEDIATE, which waits the
    # busy timeout; PostgreSQL: a transaction advisory lock), so the second one waits,
    # then finds the schema at head and does nothing.
    with engine.execution_options(sqlite_immediate=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, current_revision(engine) or ""


def _check_known(revision: str | None) -> None:
    if revision is None:
        return
    script = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if revision not in known:
        raise SchemaError(
            f"the state database is at schema revision {revision}, which this shopsync "
            f"does not know (a newer version wrote it); upgrade shopsync"
        )


def ensure_current(engine: Engine, *, auto_upgrade: bool = False) -> None:
    """Refuse a newer or older schema; create or upgrade it when ``auto_upgrade``."""
    rev = current_revision(engine)
    _check_known(rev)
    if rev == head_revision():
        return
    if auto_upgrade:
        upgrade(engine)
        return
    raise SchemaError(
        f"the state database is at revision {rev or '(empty)'}, this shopsync needs "
        f"{head_revision()}: run `shopsync db upgrade`"
    )
