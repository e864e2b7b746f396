"""Benchmark: how fast `shopsync serve` carries one edit across, each way.

Starts the webCRM emulator, the reference webshop and `shopsync serve` (with
`public_url`, so both systems call back; polling set to an hour, so only hooks count),
links ``--records`` organisations with shop customers, then makes ``--edits`` edits in
webCRM, each timed from the write until the shop answers the new value; then the same
number in the shop, timed until webCRM answers it. Edits rotate over the records.

* ``--burst K`` makes the edits K at a time (K records edited at once: one webCRM
  ``PATCH`` of K organisations, or K shop updates back to back), each edit timed from
  the start of its burst until its own value arrived; the next burst starts when the
  last one has arrived. Default 1: one at a time.
* ``--interval`` spaces the edits or bursts (0: the next right after the last arrived).
* ``--poll-only S`` runs the service without ``public_url`` (no hooks) and polling
  every S seconds: the latency is then the poll interval's, about S/2 on average.

The service's client paces itself at ``--rate-limit`` requests per 60 s, as against the
live webCRM; the emulator itself does not limit (the benchmark's own reads would
otherwise share the service's budget). Prints p50, p95 and max per direction, the
requests the service spent per kind, and 429s (targets: p95 ≤ 2 s, max ≤ 5 s). Run:

    .venv/bin/python bench/latency.py [--edits 200] [--records 20] [--rate-limit 250]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shopsync.connectors.webcrm.client import WebcrmClient
from shopsync.connectors.webshop.client import WebshopClient
from shopsync.emulators.launch import free_port, start_webcrm_emulator, start_webshop_server

AUTH = "bench-0000-0000-0000-000000000000"
TOKEN = "bench-webshop-token"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout}s: {what}")
        time.sleep(0.01)


def metrics(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def line(name: str, values: list[float]) -> str:
    return (
        f"{name:<18} n={len(values):<4} p50={statistics.median(values):6.3f} s  "
        f"p95={percentile(values, 0.95):6.3f} s  max={max(values):6.3f} s"
    )


def timed(
    pairs: list[tuple[int, str]],
    args: argparse.Namespace,
    prefix: str,
    edit: Callable[[list[tuple[int, str, str]]], list[Callable[[], bool]]],
) -> list[float]:
    """Make ``args.edits`` edits ``args.burst`` at a time; each one's seconds from its
    write until ``edit``'s check for it holds."""
    took: list[float] = []
    for first in range(0, args.edits, args.burst):
        count = min(args.burst, args.edits - first)
        batch = [
            (*pairs[(first + i) % len(pairs)], f"{prefix}{first + i:07d}") for i in range(count)
        ]
        started = time.monotonic()
        checks = edit(batch)
        waiting = dict(enumerate(checks))
        deadline = started + 120.0
        while waiting:
            for i, check in list(waiting.items()):
                try:
                    arrived = check()
                except httpx.HTTPError:
                    arrived = False
                if arrived:
                    took.append(time.monotonic() - started)
                    del waiting[i]
            if time.monotonic() > deadline:
                raise SystemExit(f"not within 120 s: edits {first}..{first + count - 1}")
            time.sleep(0.01)
        time.sleep(args.interval)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200, help="edits each way")
    parser.add_argument("--records", type=int, default=20, help="linked records edited")
    parser.add_argument("--rate-limit", type=int, default=250, help="service's webCRM budget")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between edits")
    parser.add_argument("--burst", type=int, default=1, help="edits made at once")
    parser.add_argument(
        "--poll-only", type=float, default=None, metavar="S",
        help="no hooks: the service polls every S seconds",
    )  # fmt: skip
    args = parser.parse_args()
    if args.burst < 1 or args.burst > args.records:
        parser.error("--burst must be between 1 and --records")

    work = Path(tempfile.mkdtemp(prefix="shopsync-latency-"))
    crm_server = start_webcrm_emulator(
        work / "emulator.sqlite", auth_code=AUTH, rate_limit=0, log_path=work / "emulator.log"
    )
    shop_server = start_webshop_server(
        str(work / "webshop.sqlite"), token=TOKEN, log_path=work / "webshop.log"
    )
    port = free_port()
    config = work / "shopsync.toml"
    config.write_text(
        f'[webcrm]\nbase_url = "{crm_server.url}"\nauth_code = "{AUTH}"\n'
        f"rate_limit = {args.rate_limit}\n"
        f'[webshop]\nbase_url = "{shop_server.url}"\ntoken = "{TOKEN}"\n'
        f'[serve]\nlisten = "127.0.0.1:{port}"\n'
        + (
            f"poll_seconds = {args.poll_only}\n"
            if args.poll_only
            else f'public_url = "http://127.0.0.1:{port}"\npoll_seconds = 3600\n'
        ),
        encoding="utf-8",
    )
    crm = WebcrmClient(crm_server.url, AUTH, rate_limit=100_000)
    shop = WebshopClient(shop_server.url, TOKEN)
    ids = [
        int(r.id or 0)
        for r in crm.upsert(
            "Organisation",
            [
                {"OrganisationName": f"Latency {i} ApS", "OrganisationVatNumber": f"DK7{i:05d}"}
                for i in range(args.records)
            ],
        )
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSYNC_")}
    env["SHOPSYNC_LOG_LEVEL"] = "warning"
    log = open(work / "serve.log", "ab")  # noqa: SIM115
    service = subprocess.Popen(
        [sys.executable, "-m", "shopsync", "serve", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: metrics(url).get('shopsync_runs_total{outcome="ok",trigger="start"}'),
            "the start-up run",
        )
        by_name = wait_for(
            lambda: (
                found
                if len(found := {
                    c["name"]: c["id"]
                    for p in shop.iter_changes("customers", None)
                    for c in p.items
                }) >= args.records
                else None
            ),
            "every organisation in the shop",
        )  # fmt: skip
        pairs = [(oid, by_name[f"Latency {i} ApS"]) for i, oid in enumerate(ids)]
        time.sleep(1.0)  # let the start-up's echoes settle before timing
        began = time.monotonic()

        def crm_edits(batch: list[tuple[int, str, str]]) -> list[Callable[[], bool]]:
            crm.upsert(
                "Organisation",
                [{"OrganisationId": oid, "OrganisationTelephone": v} for oid, _, v in batch],
            )
            return [
                lambda cid=cid, v=v: shop.get("customers", cid)["phone"] == v  # type: ignore[misc, index]
                for _, cid, v in batch
            ]

        def shop_edits(batch: list[tuple[int, str, str]]) -> list[Callable[[], bool]]:
            for _, cid, v in batch:
                shop.update("customers", cid, {"phone": v})
            return [
                lambda oid=oid, v=v: (
                    (crm.get("Organisation", oid) or {}).get("OrganisationTelephone") == v  # type: ignore[misc]
                )
                for oid, _, v in batch
            ]

        to_shop = timed(pairs, args, "+45 1", crm_edits)
        to_crm = timed(pairs, args, "+49 2", shop_edits)
        elapsed = time.monotonic() - began
        m = metrics(url)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
        log.close()
        crm.close()
        shop.close()
        crm_server.stop()
        shop_server.stop()

    mode = f"polling only, every {args.poll_only} s" if args.poll_only else "hooks"
    print(f"shopsync serve latency ({mode}), {args.edits} edits each way over {args.records} "
          f"records, {args.burst} at a time, webCRM budget {args.rate_limit}/60 s, "
          f"interval {args.interval} s")  # fmt: skip
    print(line("webCRM → shop", to_shop))
    print(line("shop → webCRM", to_crm))
    budget = {
        k.split('"')[1]: int(v)
        for k, v in m.items()
        if k.startswith("shopsync_webcrm_budget_requests_total{")
    }
    print("webCRM requests by kind:", budget)
    print(
        "429s:",
        {k: int(v) for k, v in m.items() if k.startswith("shopsync_api_rate_limited_total")},
    )
    print(f"wall time of the edits: {elapsed:.1f} s")
    runs = {k: int(v) for k, v in m.items() if k.startswith("shopsync_runs_total{") and v}
    print("runs:", runs)
    print(f"files: {work}")


if __name__ == "__main__":
    main()
