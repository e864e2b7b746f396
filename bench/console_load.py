"""Page load times of the console with a large state database (docs/console.md).

Bulk-inserts ``--links`` links with their snapshots (Core executemany) and
``--activity`` activity rows into a fresh SQLite state database, gives the links their
search terms as the service does (timed), then serves the console with uvicorn on a
free loopback port, exactly as ``shopsync serve`` builds its app, but without starting
the scheduler (no system is contacted), and times HTTP GETs of ``/``, the overview
fragment, ``/links`` and ``/links?q=…`` (a name, a SKU, a webshop id, a webCRM id).

    .venv/bin/python bench/console_load.py                 # 1,000,000 links
    .venv/bin/python bench/console_load.py --links 100000 --repeat 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy import insert, text

from shopsync.config.model import Config, ServeConfig, StateConfig, WebcrmConfig, WebshopConfig
from shopsync.emulators.launch import free_port
from shopsync.runtime import Installation
from shopsync.store import db
from shopsync.store.models import ConsoleActivity, Link, Snapshot

DATATYPES = ("customers", "products", "orders", "order_lines")
CHUNK = 20_000


def props(dt: str, i: int) -> dict[str, Any]:
    """A snapshot's agreed values, shaped as the engine stores them (webshop paths)."""

    def both(v: Any) -> dict[str, Any]:
        return {"c": v, "s": v}

    if dt == "customers":
        return {"name": both(f"Firma {i} ApS"), "billing_address.city": both("Aarhus C"),
                "vat_number": both(f"DK{10000000 + i}")}  # fmt: skip
    if dt == "products":
        return {"sku": both(f"SKU-{i}"), "name": both(f"Stol model {i}"),
                "unit_price": both("399.00")}  # fmt: skip
    if dt == "orders":
        return {"order_number": both(f"WC-{i:07d}"), "status": both("confirmed")}
    return {"sku": both(f"SKU-{i % 5000}"), "description": both(f"Linje {i}"),
            "quantity": both("1")}  # fmt: skip


def fill(url: str, n: int, activity: int) -> None:
    engine = db.make_engine(url)
    db.ensure_current(engine, auto_upgrade=True)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with engine.begin() as conn:
        for first in range(1, n + 1, CHUNK):
            ids = range(first, min(first + CHUNK, n + 1))
            conn.execute(
                insert(Link),
                [{"id": i, "datatype": DATATYPES[i % 4], "webcrm_id": str(i),
                  "webshop_id": f"{DATATYPES[i % 4][:3]}_{i:08x}", "created_by": "webcrm",
                  "state": "active" if i % 50 else "webshop_deleted", "created_at": now,
                  "updated_at": now} for i in ids],
            )  # fmt: skip
            conn.execute(
                insert(Snapshot),
                [{"link_id": i, "props": props(DATATYPES[i % 4], i), "webcrm_updated_at": now,
                  "webshop_updated_at": now, "webshop_version": 1, "updated_at": now}
                 for i in ids],
            )  # fmt: skip
        for first in range(0, activity, CHUNK):
            conn.execute(
                insert(ConsoleActivity),
                [{"at": now, "run_id": 1 + i // 1000, "datatype": DATATYPES[i % 4],
                  "action": "update", "target": "webshop" if i % 3 else "webcrm",
                  "record": str(1 + i % max(n, 1)), "detail": "name, billing_address.city",
                  "label": f"Firma {i} ApS", "link_id": 1 + i % max(n, 1)}
                 for i in range(first, min(first + CHUNK, activity))],
            )  # fmt: skip
    print(f"inserted {n:,} links + snapshots, {activity:,} activity rows: "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def index_terms(inst: Installation) -> None:
    from shopsync.service.console.state import catch_up_terms

    started = time.perf_counter()
    with inst.session() as s:
        n = catch_up_terms(s, inst.config, 3600.0)
    print(f"search terms for {n:,} links: {time.perf_counter() - started:.1f} s")


def serve(inst: Installation, port: int) -> uvicorn.Server:
    from shopsync.service.app import Service, create_app

    service = Service(inst)
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_config=None, access_log=False,
        lifespan="off",  # no scheduler: nothing contacts webCRM or the shop
    )  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the console did not start within 30 s")
        time.sleep(0.05)
    return server


def measure(base: str, paths: list[str], repeat: int) -> None:
    print(f"{'GET':<44} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  bytes")
    with httpx.Client(base_url=base, timeout=120) as client:
        t0 = time.perf_counter()
        client.get("/").raise_for_status()  # the session cookie; counts the links once
        print(
            f"{'/ (first load: counts every link)':<44} {(time.perf_counter() - t0) * 1000:>10.1f}"
        )
        for path in paths:
            times = []
            size = 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                size = len(r.content)
            if "q=" in path and 'id="links"' not in r.text:
                raise SystemExit(f"{path}: found no link")
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"{path:<44} {statistics.median(times):>10.1f} {p95:>8.1f} "
                  f"{times[-1]:>8.1f}  {size:,}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, default=1_000_000)
    ap.add_argument("--activity", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--dir", type=Path, default=None, help="keep the database here")
    args = ap.parse_args()
    where = args.dir or Path(tempfile.mkdtemp(prefix="console-load-"))
    where.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{where / 'state.sqlite'}"
    fill(url, args.links, args.activity)
    config = Config(
        webcrm=WebcrmConfig(base_url="http://127.0.0.1:9", auth_code=SecretStr("x" * 36)),
        webshop=WebshopConfig(base_url="http://127.0.0.1:9", token=SecretStr("bench")),
        state=StateConfig(url=url),
        serve=ServeConfig(),
    )
    with Installation(config) as inst:
        index_terms(inst)
        port = free_port()
        server = serve(inst, port)
        n = args.links
        probe = max(4, (n - 4 * 777) // 4 * 4)  # a multiple of 4: a customer; +1: a product
        paths = [
            "/",
            "/fragments/overview",
            "/links",
            "/links?datatype=products",
            f"/links?before={n // 2}",
            f"/links?q=Firma+{probe}+ApS",
            "/links?q=firma+12",
            f"/links?q=SKU-{probe + 1}",
            "/links?q=stol",
            f"/links?q=cus_{probe:08x}",
            f"/links?q={probe}",
            f"/links/{probe}",
            "/activity",
            "/activity?datatype=orders&direction=to_webshop",
            "/problems",
        ]
        measure(f"http://127.0.0.1:{port}", paths, args.repeat)
        server.should_exit = True
    print(f"state database: {where / 'state.sqlite'}")


if __name__ == "__main__":
    main()
