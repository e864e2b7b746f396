"""What PostgreSQL's fill factor on links and snapshots does to a changed record's
writes (migration 0007): the same rounds of updates with pages filled to 100 % and to
60 %, and the look-up an echo pass makes, on each.

Per fill factor, in a database of its own (``shopsync_fill_<hex>``, dropped after), made
by shopsync's migrations: N links with their snapshots are inserted, then every
snapshot and every link is updated in batches of 1,000 a transaction, twice (what a
round of edits and the next round write: a snapshot's values, its link's
``updated_at``). Printed per round: the seconds it took and how many of its updates
PostgreSQL made "HOT" (the new version on the old one's page, no index entry added);
then the best of three echo look-ups of every record's fingerprint
(``repo.agreed_fingerprints``, 1,000 ids a query) and the two tables' size on disk.
``VACUUM ANALYZE`` runs between steps, as autovacuum would. Skipped, with the reason,
when PostgreSQL is not reachable.

Run::

    .venv/bin/python bench/pg_update_room.py
    .venv/bin/python bench/pg_update_room.py --n 100000 --fill 100,80,60
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence

import orjson
import psycopg
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shopsync.store import db, repo

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 1000


def hot_updates(conn: psycopg.Connection) -> int:
    """HOT updates of the two tables so far (the statistics flushed first)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    row = conn.execute(
        "SELECT coalesce(sum(n_tup_hot_upd), 0) FROM pg_stat_user_tables"
        " WHERE relname IN ('links', 'snapshots')"
    ).fetchone()
    return int(row[0]) if row else 0


def one(admin_url: str, fill: int, n: int) -> str:
    name = f"shopsync_fill_{uuid.uuid4().hex[:8]}"
    base, _, _ = admin_url.rpartition("/")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        engine: Engine | None = None
        try:
            engine = db.make_engine(f"{base}/{name}")
            db.upgrade(engine)
            with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
                return _measure(conn, engine, fill, n)
        finally:
            if engine is not None:
                engine.dispose()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _measure(conn: psycopg.Connection, engine: Engine, fill: int, n: int) -> str:
    for table in ("links", "snapshots"):
        conn.execute(f"ALTER TABLE {table} SET (fillfactor = {fill})")
    props = orjson.dumps({f"p{i}": {"c": f"value {i}", "s": f"value {i}"} for i in range(12)})
    conn.execute(
        "INSERT INTO links (datatype, webcrm_id, webshop_id, created_by, state, created_at,"
        " updated_at) SELECT 'customers', g::text, 'cus_' || g, 'webcrm', 'active', now(),"
        " now() FROM generate_series(1, %s) g",
        (n,),
    )
    conn.execute(
        "INSERT INTO snapshots (link_id, props, webcrm_fp, webshop_fp, updated_at)"
        " SELECT id, %s::json, 'v2:' || left(md5(id::text), 28),"
        " 'v2:' || left(md5(id::text), 28), now() FROM links",
        (props.decode(),),
    )
    conn.execute("VACUUM ANALYZE")
    rounds: list[str] = []
    for _ in range(2):
        hot0 = hot_updates(conn)
        started = time.perf_counter()
        for first in range(1, n + 1, BATCH):
            with conn.transaction():
                conn.execute(
                    "UPDATE snapshots SET props = props, updated_at = now()"
                    " WHERE link_id BETWEEN %s AND %s",
                    (first, first + BATCH - 1),
                )
                conn.execute(
                    "UPDATE links SET updated_at = now() WHERE id BETWEEN %s AND %s",
                    (first, first + BATCH - 1),
                )
        seconds = time.perf_counter() - started
        hot = hot_updates(conn) - hot0
        rounds.append(f"{seconds:6.2f} s ({100 * hot / (2 * n):3.0f} % HOT)")
        conn.execute("VACUUM ANALYZE")
    ids = [str(i) for i in range(1, n + 1)]
    best = float("inf")
    for _ in range(3):
        with Session(engine) as s:
            started = time.perf_counter()
            for k in range(0, n, BATCH):
                repo.agreed_fingerprints(s, "customers", "webcrm", ids[k : k + BATCH])
            best = min(best, time.perf_counter() - started)
    size = conn.execute(
        "SELECT pg_total_relation_size('snapshots') / 1048576.0,"
        " pg_total_relation_size('links') / 1048576.0"
    ).fetchone()
    assert size is not None
    return (
        f"{fill:>4} %  {rounds[0]}  {rounds[1]}  {best:6.3f} s   "
        f"{size[0]:7.1f} MB  {size[1]:6.1f} MB"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=40_000, help="links (default 40,000)")
    ap.add_argument("--fill", default="100,60", help="fill factors to compare (default 100,60)")
    ap.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = ap.parse_args(argv)
    try:
        psycopg.connect(args.pg_admin_url, connect_timeout=3).close()
    except Exception as exc:
        print(f"skipped: PostgreSQL not reachable at {args.pg_admin_url}: {exc}".strip())
        return 0
    print(f"{args.n:,} links and snapshots, each updated twice in batches of {BATCH:,}")
    print("fill   1st round of updates   2nd round of updates   echo look-up  snapshots   links")
    for fill in (int(f) for f in args.fill.split(",")):
        print(one(args.pg_admin_url, fill, args.n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
