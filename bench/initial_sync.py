"""Benchmark: the initial sync of a large installation, then an incremental one.

Seeds the webCRM emulator with 10,000 organisations, 2,000 products, 5,000
opportunities (about 50,000 quotation lines) and the reference webshop with about a
fifth of that (part of it matching by VAT number, website or SKU), then runs a real
`Installation.sync()` over HTTP with webCRM's real limit of 250 requests per minute.
Then 100 edits on each side and an incremental sync.

Prints: wall time, requests per side (by the client and by the emulator's own counter),
the request floor ⌈rows read/1000⌉ + ⌈rows written/batch⌉, records per second of engine
work, and the process's peak memory. Run:

    .venv/bin/python bench/initial_sync.py [--scale 1.0] [--rate-limit 250]
    .venv/bin/python bench/initial_sync.py --scale 0.3 --profile "echo pass"

``--profile RUN`` runs that one run (``initial``, ``echo pass``, ``incremental``,
``converged``) under cProfile and prints shopsync's top functions by cumulative time
after the table (that run's figures are then slower than the others').
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from shopsync import logs
from shopsync.config.model import Config, Datatype, StateConfig, WebcrmConfig, WebshopConfig
from shopsync.emulators.launch import start_webcrm_emulator, start_webshop_server
from shopsync.engine.report import RunReport
from shopsync.runtime import Installation
from shopsync.store import repo

AUTH = "bench-0000-0000-0000-000000000000"
TOKEN = "bench-webshop-token"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rows_read(report: RunReport) -> int:
    return sum(s.received_webcrm for s in report.stats.values())


def webcrm_rows_written(report: RunReport) -> int:
    return sum(s.updates_to_webcrm for s in report.stats.values())


def summary(name: str, report: RunReport, batch: int, emulator_requests: int) -> dict[str, Any]:
    read = rows_read(report)
    written = webcrm_rows_written(report)
    floor = math.ceil(read / 1000) + math.ceil(written / batch)
    records = sum(s.read_webcrm + s.read_webshop for s in report.stats.values())
    return {
        "run": name,
        "wall s": round(report.seconds, 1),
        "webCRM requests (client)": report.webcrm_requests,
        "webCRM requests (emulator)": emulator_requests,
        "webCRM rows read": read,
        "webCRM rows written": written,
        "floor": floor,
        "over floor %": round(100 * (report.webcrm_requests - floor) / max(floor, 1), 1),
        "webshop requests": report.webshop_requests,
        "records/s": round(records / max(report.seconds, 1e-9)),
        "writes": report.writes,
    }


def emulator_total(url: str) -> int:
    return int(httpx.get(url + "/_emulator/counters", timeout=30).json()["total"])


def timed_sync(inst: Installation, name: str, profile: str | None, out: list[str]) -> RunReport:
    """``inst.sync()``; under cProfile when ``name`` is the run to profile."""
    if profile != name:
        return inst.sync()
    prof = cProfile.Profile()
    report = prof.runcall(inst.sync)
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text).sort_stats("cumulative")
    stats.print_stats("shopsync/", 40)
    out.append(f"--- profile: {name} ---\n{text.getvalue()}")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = the full data set")
    ap.add_argument("--rate-limit", type=int, default=250, help="requests per 60 s (webCRM's)")
    ap.add_argument("--batch", type=int, default=500, help="records per PATCH")
    ap.add_argument("--profile", default=None, help="profile this run (e.g. 'echo pass')")
    args = ap.parse_args()
    logs.configure("warning")
    orgs, products, opps = (int(x * args.scale) for x in (10_000, 2_000, 5_000))
    shop_customers = int(2_000 * args.scale)

    with tempfile.TemporaryDirectory(prefix="shopsync-bench-") as tmp:
        d = Path(tmp)
        crm = start_webcrm_emulator(
            d / "crm.sqlite", auth_code=AUTH, rate_limit=args.rate_limit, log_path=d / "crm.log"
        )
        shop = start_webshop_server(str(d / "shop.sqlite"), token=TOKEN, log_path=d / "shop.log")
        try:
            t = time.monotonic()
            seeded = httpx.post(
                crm.url + "/_emulator/seed",
                json={"n": orgs, "products": products, "opportunities": opps, "seed": 11},
                timeout=900,
            ).json()
            shop_seeded = httpx.post(
                shop.url + "/_webshop/seed", json={"n": shop_customers, "seed": 11}, timeout=900
            ).json()
            print(f"seeded in {time.monotonic() - t:.0f} s: webCRM {seeded}; webshop {shop_seeded}")
            httpx.delete(crm.url + "/_emulator/counters", timeout=30)

            config = Config(
                webcrm=WebcrmConfig(
                    base_url=crm.url, auth_code=SecretStr(AUTH), rate_limit=args.rate_limit,
                    batch_size=args.batch,
                ),
                webshop=WebshopConfig(base_url=shop.url, token=SecretStr(TOKEN)),
                state=StateConfig(url=f"sqlite:///{d / 'state.sqlite'}"),
            )  # fmt: skip
            results = []
            profiles: list[str] = []
            with Installation(config) as inst:
                rss0 = peak_rss_mb()
                first = timed_sync(inst, "initial", args.profile, profiles)
                results.append(summary("initial", first, args.batch, emulator_total(crm.url)))
                rss1 = peak_rss_mb()
                with inst.session() as s:
                    links = {
                        dt.value: sum(repo.count_links(s, dt.value).values()) for dt in Datatype
                    }
                print(f"links: {links}")

                # The next run reads our own writes back (webCRM's UpdatedAt moved with each
                # write) and drops them; measured on its own so the incremental figure below
                # is what an installation pays in steady state.
                httpx.delete(crm.url + "/_emulator/counters", timeout=30)
                settle = timed_sync(inst, "echo pass", args.profile, profiles)
                results.append(summary("echo pass", settle, args.batch, emulator_total(crm.url)))

                # 100 edits on each side, then an incremental sync
                rng = random.Random(5)
                with inst.session() as s:
                    customer_links = list(repo.active_links(s, Datatype.customers.value))
                picks = rng.sample(customer_links, 200)
                inst.webcrm.upsert(
                    "Organisation",
                    [{"OrganisationId": int(ln.webcrm_id), "OrganisationTelephone": f"+45 {i:08d}"}
                     for i, ln in enumerate(picks[:100])],
                )  # fmt: skip
                for i, ln in enumerate(picks[100:]):
                    inst.webshop.update("customers", ln.webshop_id, {"phone": f"+46 {i:08d}"})
                httpx.delete(crm.url + "/_emulator/counters", timeout=30)
                second = timed_sync(inst, "incremental", args.profile, profiles)
                results.append(
                    summary(
                        "incremental (100+100 edits)", second, args.batch, emulator_total(crm.url)
                    )
                )
                httpx.delete(crm.url + "/_emulator/counters", timeout=30)
                third = timed_sync(inst, "converged", args.profile, profiles)
                results.append(summary("converged", third, args.batch, emulator_total(crm.url)))
                rss2 = peak_rss_mb()
        finally:
            crm.stop()
            shop.stop()

    cols = list(results[0])
    print()
    print(" | ".join(cols))
    for r in results:
        print(" | ".join(str(r[c]) for c in cols))
    print()
    print(
        f"peak RSS: {rss0:.0f} MB before, {rss1:.0f} MB after the initial sync, {rss2:.0f} MB at the end"
    )
    for text in profiles:
        print(text)
    for name, report in (("initial", first), ("incremental", second)):
        print(f"{name}: " + ", ".join(
            f"{dt.value} c→s {st.created_in_webshop}/{st.updated_in_webshop} "
            f"s→c {st.created_in_webcrm}/{st.updated_in_webcrm} merged {st.linked_by_merge} "
            f"waiting {st.waiting} aside {st.put_aside}"
            for dt, st in report.stats.items()
        ))  # fmt: skip


if __name__ == "__main__":
    main()
