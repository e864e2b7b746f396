"""Benchmark: a full read of N webCRM organisations at the real rate limit.

Starts the webCRM emulator as a child process with the live service's limit (250
requests per 60 s per application token), seeds N organisations through its seed
control, and reads them all with :class:`WebcrmClient`:

1. ``iter_all`` (``GET /Organisations?Page&Size=1000``);
2. ``iter_updated_since(None)`` (``/Queries`` with keyset paging, the incremental path);
3. ``iter_all`` once more, by default: the three passes need more than 250 requests
   in one minute, so this pass shows the limiter holding the client back instead of
   drawing a 429.

For each pass it prints rows, requests used beside the floor ⌈rows/1000⌉, wall time,
time spent waiting on the limiter, and 429s received; and the emulator's own request
counter as a cross-check. Run::

    .venv/bin/python bench/read.py            # 100,000 rows
    .venv/bin/python bench/read.py --rows 20000 --passes 2
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shopsync.connectors.webcrm.client import WebcrmClient
from shopsync.connectors.webcrm.ratelimit import SlidingWindowLimiter
from shopsync.emulators.launch import start_webcrm_emulator

AUTH_CODE = "bench-0000-1111-2222-333333333333"


@dataclass
class Pass:
    name: str
    rows: int
    unique: int
    requests: int
    read_requests: int
    seconds: float
    waited: float
    responses_429: int


def run_pass(
    name: str,
    client: WebcrmClient,
    limiter: SlidingWindowLimiter,
    read: Callable[[WebcrmClient], Iterator[list[dict[str, Any]]]],
    endpoint: str,
) -> Pass:
    before_requests, before_wait = client.requests_made, limiter.waited_seconds
    before_reads = client.requests_by_endpoint[endpoint]
    before_429 = client.responses_429
    ids: set[int] = set()
    rows = 0
    started = time.perf_counter()
    for page in read(client):
        rows += len(page)
        ids.update(int(r["OrganisationId"]) for r in page)
    seconds = time.perf_counter() - started
    return Pass(
        name=name,
        rows=rows,
        unique=len(ids),
        requests=client.requests_made - before_requests,
        read_requests=client.requests_by_endpoint[endpoint] - before_reads,
        seconds=seconds,
        waited=limiter.waited_seconds - before_wait,
        responses_429=client.responses_429 - before_429,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="organisations to seed")
    parser.add_argument("--rate-limit", type=int, default=250, help="requests per 60 s")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--passes", type=int, default=3, choices=(1, 2, 3), help="how many of the passes to run"
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        start_webcrm_emulator(
            Path(tmp) / "bench.sqlite",
            auth_code=AUTH_CODE,
            rate_limit=args.rate_limit,
            log_path=Path(tmp) / "emulator.log",
            timeout=60,
        ) as server,
    ):
        started = time.perf_counter()
        seeded = httpx.post(
            server.url + "/_emulator/seed",
            json={"n": args.rows, "seed": 1, "products": 0, "opportunities": 0},
            timeout=3600,
        )
        seeded.raise_for_status()
        seed_seconds = time.perf_counter() - started
        httpx.delete(server.url + "/_emulator/counters", timeout=30).raise_for_status()

        limiter = SlidingWindowLimiter(limit=args.rate_limit, window=60.0)
        client = WebcrmClient(
            server.url, AUTH_CODE, page_size=args.page_size, limiter=limiter, timeout=120
        )
        passes = [
            (
                "iter_all",
                lambda c: c.iter_all("Organisation"),
                "GET /Organisations",
            ),
            (
                "iter_updated_since(None)",
                lambda c: c.iter_updated_since("Organisation", None),
                "GET /Queries",
            ),
            (
                "iter_all again (window already used)",
                lambda c: c.iter_all("Organisation"),
                "GET /Organisations",
            ),
        ][: args.passes]
        results: list[Pass] = []
        with client:
            client.login()
            for name, read, endpoint in passes:
                results.append(run_pass(name, client, limiter, read, endpoint))
        counters = httpx.get(server.url + "/_emulator/counters", timeout=30).json()

    floor = math.ceil(args.rows / args.page_size)
    allowed = floor + (1 if args.rows % args.page_size == 0 else 0)
    print(f"rows seeded: {args.rows:,} in {seed_seconds:.1f} s (emulator seed control)")
    print(
        f"rate limit: {args.rate_limit} requests / 60 s (emulator and client); "
        f"page size {args.page_size}"
    )
    print(f"floor: ceil(rows/{args.page_size}) = {floor} read requests per pass")
    print()
    header = (
        f"{'pass':<38} {'rows':>8} {'unique':>8} {'reads':>6} {'floor':>6} {'over':>7} "
        f"{'wall s':>7} {'waited s':>9} {'429s':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        over = (r.read_requests - floor) / floor * 100
        print(
            f"{r.name:<38} {r.rows:>8,} {r.unique:>8,} {r.read_requests:>6} {floor:>6} "
            f"{over:>6.1f}% {r.seconds:>7.1f} {r.waited:>9.1f} {r.responses_429:>5}"
        )
    total_client = client.requests_made
    print()
    print(
        f"client requests in total: {total_client} "
        f"({dict(sorted(client.requests_by_endpoint.items()))})"
    )
    print(f"emulator counted: {counters['total']} ({dict(sorted(counters['endpoints'].items()))})")
    print(f"429 answers received: {client.responses_429}")
    ok = all(
        r.read_requests <= allowed and r.read_requests <= math.ceil(floor * 1.05) + 1
        for r in results
    ) and all(r.unique == args.rows for r in results)
    print(
        "within 5% of the floor (+1 for an empty last page at most), every row read: "
        + ("yes" if ok else "NO")
    )


if __name__ == "__main__":
    main()
