"""Opening the state database and keeping its schema current.

SQLite (WAL, a busy timeout so a second process waits instead of failing) is the
embedded default; PostgreSQL is chosen by URL. The schema is owned by Alembic:
``shopsync db upgrade`` migrates, and every other command refuses to run against a
schema it does not know (a newer shopsync wrote it) or one that is behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaError(Exception):
    """The database's schema is not the one this shopsync knows."""


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
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
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
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
            # pysqlite commits DDL on its own; let SQLAlchemy's BEGIN cover everything, so
            # a migration killed half-way leaves no tables behind (transactional DDL).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

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
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to ``revision``; returns (before, after)."""
    before = current_revision(engine)
    _check_known(before)
    cfg = _alembic_config()
    with engine.begin() as conn:
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
