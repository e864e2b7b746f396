"""Benchmark: webshop writes one record per request against batch writes.

Starts the reference webshop as a child process (SQLite in a temporary directory, or the
database given with ``--db``), then creates N customers and N orders (three lines each)
through ``WebshopClient.write_many`` three ways: one request at a time, four single
requests in flight (what the engine's creates do today), and ``POST /{collection}/batch``.
The batch endpoint is switched off for the first two with the server's ``/_webshop/batch``
control, so they are exactly a shop without it. Every run starts from an empty shop.
``--latency-ms`` adds that much to every request on the server (its ``latency_ms``
fault switch), as a network round trip to a shop elsewhere would; requests in flight
wait in parallel.

Prints, per run: records, requests (the client's count and the server's own counter),
wall seconds and records per second. Run:

    .venv/bin/python bench/webshop_batch.py [--n 2000] [--batch 500] [--latency-ms 0] [--db URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from shopsync.connectors.webshop.client import CreateOp, WebshopClient, WriteOp
from shopsync.emulators.launch import RunningServer, start_webshop_server

TOKEN = "bench-webshop-token"
RUNS = (
    ("single requests, 1 in flight", False, 1),
    ("single requests, 4 in flight", False, 4),
    ("batches", True, 1),
)


def control(server: RunningServer, method: str, path: str, **body: Any) -> Any:
    response = httpx.request(method, f"{server.url}/_webshop{path}", json=body, timeout=600)
    response.raise_for_status()
    return response.json()


def customer_ops(n: int) -> list[WriteOp]:
    return [
        CreateOp(
            {
                "customer_number": f"B-{i:06d}",
                "name": f"Bench Kunde {i} ApS",
                "email": f"kunde{i}@example.com",
                "vat_number": f"DK{10_000_000 + i}",
                "billing_address": {"line1": f"Søndergade {i}", "postal_code": "8000",
                                    "city": "Aarhus C", "country": "DK"},
            },
            str(uuid.uuid4()),
        )
        for i in range(n)
    ]  # fmt: skip


def order_ops(customer_ids: list[str]) -> list[WriteOp]:
    line = {"sku": "DESK-OAK-160", "quantity": "2", "unit_price": "1249.50", "vat_rate": "25"}
    return [
        CreateOp(
            {
                "order_number": f"BO-{i:06d}",
                "customer_id": cid,
                "currency": "DKK",
                "order_date": "2025-03-14",
                "lines": [line, {**line, "sku": "LAMP", "quantity": "1"}, {**line, "sku": "X"}],
            },
            str(uuid.uuid4()),
        )
        for i, cid in enumerate(customer_ids)
    ]


def timed(
    server: RunningServer, client: WebshopClient, collection: str, ops: list[WriteOp]
) -> tuple[list[Any], float, int, int]:
    control(server, "DELETE", "/counters")
    before = client.requests_made
    started = time.perf_counter()
    out = client.write_many(collection, ops)
    seconds = time.perf_counter() - started
    failed = [o for o in out if not isinstance(o, dict)]
    if failed:
        raise SystemExit(f"{len(failed)} {collection} failed, e.g. {failed[0]}")
    counted = int(control(server, "GET", "/counters")["total"])
    return out, seconds, client.requests_made - before, counted


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2000, help="customers (and orders) per run")
    ap.add_argument("--batch", type=int, default=500, help="max items per batch request")
    ap.add_argument("--latency-ms", type=int, default=0, help="added to every request")
    ap.add_argument("--db", help="database URL for the shop (default: SQLite in a temp dir)")
    args = ap.parse_args()
    rows: list[tuple[str, str, int, int, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="shopsync-bench-") as tmp:
        db = args.db or str(Path(tmp) / "shop.sqlite")
        server = start_webshop_server(db, token=TOKEN, log_path=Path(tmp) / "shop.log")
        try:
            for name, batch, in_flight in RUNS:
                control(server, "POST", "/reset")
                control(server, "PUT", "/batch", enabled=batch, max_items=args.batch)
                control(server, "PUT", "/faults", latency_ms=args.latency_ms)
                with WebshopClient(
                    server.url, TOKEN, fallback_concurrency=in_flight, max_batch_items=args.batch
                ) as client:
                    client.capabilities()  # asked once per client; not part of the figures
                    made, seconds, sent, counted = timed(
                        server, client, "customers", customer_ops(args.n)
                    )
                    rows.append((name, "customers", len(made), sent, counted, seconds))
                    ids = [str(c["id"]) for c in made]
                    orders, seconds, sent, counted = timed(server, client, "orders", order_ops(ids))
                    rows.append((name, "orders (3 lines)", len(orders), sent, counted, seconds))
        finally:
            server.stop()
    print(f"reference webshop, {'SQLite' if not args.db else 'given database'}, "
          f"batches of at most {args.batch}, {args.latency_ms} ms added per request")  # fmt: skip
    print()
    header = ("run", "records", "n", "requests (client/server)", "wall s", "records/s")
    print(f"{header[0]:<30} {header[1]:<17} {header[2]:>6} {header[3]:>25} {header[4]:>8} "
          f"{header[5]:>10}")  # fmt: skip
    for name, what, n, sent, counted, seconds in rows:
        print(f"{name:<30} {what:<17} {n:>6} {f'{sent} / {counted}':>25} {seconds:>8.2f} "
              f"{n / seconds:>10.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
