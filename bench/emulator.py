"""Benchmark the webCRM emulator: is it fast enough not to be the bottleneck?

Starts ``shopsync webcrm-emulator`` as a real child process (rate limit off), seeds it,
then measures over real HTTP, one keep-alive client unless stated:

* seeding 10,000 organisations + 2,000 products + 5,000 opportunities (+ ~50,000 lines),
* list pages of 1000 rows per second (Organisations, QuotationLines, ``/Queries``),
* the same list pages with 4 concurrent clients,
* ``PATCH`` rows per second: 1000-record inserts and 1000-record merges.

Run: ``.venv/bin/python bench/emulator.py`` (``--help`` for sizes). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from shopsync.emulators.launch import start_webcrm_emulator

AUTH = "bench-application-token"
SERVER_MS: list[float] = []
"""``Server-Timing`` of every timed answer: the emulator's own share of the wall time."""


def _note(r: httpx.Response) -> httpx.Response:
    r.raise_for_status()
    timing = r.headers.get("server-timing", "")
    if timing.startswith("app;dur="):
        SERVER_MS.append(float(timing.split("=", 1)[1]))
    return r


def _client(url: str) -> httpx.Client:
    r = httpx.post(url + "/Auth/ApiLogin", data={"authCode": AUTH}, timeout=30)
    r.raise_for_status()
    token = r.json()["AccessToken"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


ID_FIELD = {"/Organisations": "OrganisationId", "/QuotationLines": "QuotationLineId",
            "/Queries": "OrganisationId"}  # fmt: skip


def _get_rows(client: httpx.Client, path: str, params: dict[str, Any]) -> int:
    """Rows in one answer, counted in the raw bytes (``"<Id>":`` occurs once per row,
    and never inside a JSON string, where its quotes would be escaped): the figure is
    the emulator's, not the client's JSON parser's."""
    r = _note(client.get(path, params=params))
    return r.content.count(f'"{ID_FIELD[path]}":'.encode())


def _pages(client: httpx.Client, path: str, params: dict[str, Any], pages: int) -> tuple[int, int]:
    """Read pages 1..pages; returns (pages read, rows read)."""
    rows = 0
    for p in range(pages):
        rows += _get_rows(client, path, {**params, "Page": p + 1, "Size": 1000})
    return pages, rows


def _timed(fn: Callable[[], tuple[int, int]], repeats: int) -> tuple[float, float, float]:
    """Best-of-``repeats`` (units/s, rows/s) over real HTTP, and the emulator's median
    time per call (ms, from ``Server-Timing``)."""
    best_units = best_rows = 0.0
    SERVER_MS.clear()
    for _ in range(repeats):
        t = time.perf_counter()
        units, rows = fn()
        dt = time.perf_counter() - t
        best_units = max(best_units, units / dt)
        best_rows = max(best_rows, rows / dt)
    return best_units, best_rows, statistics.median(SERVER_MS) if SERVER_MS else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--organisations", type=int, default=10_000)
    ap.add_argument("--products", type=int, default=2_000)
    ap.add_argument("--opportunities", type=int, default=5_000)
    ap.add_argument("--patch-calls", type=int, default=10, help="1000-record PATCH calls")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    results: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        with start_webcrm_emulator(
            db, auth_code=AUTH, rate_limit=0, log_path=Path(tmp) / "emulator.log"
        ) as server:
            url = server.url
            t = time.perf_counter()
            r = httpx.post(
                url + "/_emulator/seed",
                json={
                    "n": args.organisations,
                    "products": args.products,
                    "opportunities": args.opportunities,
                    "seed": 1,
                },
                timeout=600,
            )
            r.raise_for_status()
            seeded = r.json()
            seed_s = time.perf_counter() - t
            results.append(
                (
                    f"seed {seeded['organisations']:,} organisations, {seeded['products']:,} "
                    f"products, {seeded['opportunities']:,} opportunities, "
                    f"{seeded['quotation_lines']:,} lines",
                    f"{seed_s:.1f} s",
                    "",
                )
            )

            client = _client(url)
            org_pages = max(1, args.organisations // 1000)
            line_pages = max(1, seeded["quotation_lines"] // 1000)
            first = client.get("/Organisations", params={"Size": 1000}).json()
            assert (
                len(first) == 1000 and _get_rows(client, "/Organisations", {"Size": 1000}) == 1000
            )

            t = time.perf_counter()
            for p in range(org_pages):
                client.get("/Organisations", params={"Page": p + 1, "Size": 1000}).json()
            parsed = org_pages / (time.perf_counter() - t)

            u, rows, ms = _timed(
                lambda: _pages(client, "/Organisations", {}, org_pages), args.repeats
            )
            results.append(
                (
                    "GET /Organisations, pages of 1000 (118 fields)",
                    f"{u:.1f} pages/s ({rows:,.0f} rows/s)",
                    f"{ms:.0f} ms",
                )
            )
            results.append(
                (
                    "the same, the client parsing each page with json (one pass)",
                    f"{parsed:.1f} pages/s",
                    "",
                )
            )
            u, rows, ms = _timed(
                lambda: _pages(client, "/QuotationLines", {}, min(line_pages, 20)), args.repeats
            )
            results.append(
                (
                    "GET /QuotationLines, pages of 1000 (27 fields)",
                    f"{u:.1f} pages/s ({rows:,.0f} rows/s)",
                    f"{ms:.0f} ms",
                )
            )
            script = (
                "SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= '2000-01-01' "
                "ORDER BY OrganisationUpdatedAt"
            )
            u, rows, ms = _timed(
                lambda: _pages(client, "/Queries", {"script": script}, org_pages), args.repeats
            )
            results.append(
                (
                    "GET /Queries (UpdatedAt cursor), pages of 1000",
                    f"{u:.1f} pages/s ({rows:,.0f} rows/s)",
                    f"{ms:.0f} ms",
                )
            )

            clients = [_client(url) for _ in range(4)]

            def concurrent() -> tuple[int, int]:
                with ThreadPoolExecutor(4) as pool:
                    outs = list(
                        pool.map(lambda c: _pages(c, "/Organisations", {}, org_pages), clients)
                    )
                return sum(o[0] for o in outs), sum(o[1] for o in outs)

            u, rows, ms = _timed(concurrent, args.repeats)
            results.append(
                (
                    "GET /Organisations, 4 concurrent clients",
                    f"{u:.1f} pages/s ({rows:,.0f} rows/s)",
                    f"{ms:.0f} ms",
                )
            )

            def patch_inserts() -> tuple[int, int]:
                n = 0
                for c in range(args.patch_calls):
                    batch = [
                        {
                            "OrganisationName": f"Bench Ærø {c}-{i} ApS",
                            "OrganisationCity": "København",
                            "OrganisationPostCode": "2100",
                            "OrganisationCountry": "Danmark",
                            "OrganisationVatNumber": f"DK{10_000_000 + c * 1000 + i}",
                            "OrganisationWww": f"www.bench-{c}-{i}.dk",
                        }
                        for i in range(1000)
                    ]
                    r = _note(client.patch("/Organisations", json=batch))
                    assert all(x.isdigit() for x in r.json()), r.json()[:3]
                    n += len(batch)
                return args.patch_calls, n

            u, rows, ms = _timed(patch_inserts, args.repeats)
            results.append(
                (
                    "PATCH /Organisations, 1000 new records per call",
                    f"{rows:,.0f} rows/s ({u:.1f} calls/s)",
                    f"{ms:.0f} ms",
                )
            )

            ids = list(range(1, min(args.organisations, args.patch_calls * 1000) + 1))

            def patch_updates() -> tuple[int, int]:
                calls = 0
                for start in range(0, len(ids), 1000):
                    batch = [
                        {"OrganisationId": i, "OrganisationCity": f"Århus {start}"}
                        for i in ids[start : start + 1000]
                    ]
                    _note(client.patch("/Organisations", json=batch))
                    calls += 1
                return calls, len(ids)

            u, rows, ms = _timed(patch_updates, args.repeats)
            results.append(
                (
                    "PATCH /Organisations, 1000 merges per call",
                    f"{rows:,.0f} rows/s ({u:.1f} calls/s)",
                    f"{ms:.0f} ms",
                )
            )
            for c in [client, *clients]:
                c.close()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"webCRM emulator benchmark — {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"load average {load} at the end, best of {args.repeats}\n"
    )
    print("| measurement | over HTTP, best of N | emulator time per call (median) |")
    print("|---|---|---|")
    for label, value, per_call in results:
        print(f"| {label} | {value} | {per_call} |")


if __name__ == "__main__":
    main()
