"""Benchmark: how fast `shopsync serve` carries one edit across, each way, with hooks.

Starts the webCRM emulator, the reference webshop and `shopsync serve` (with
`public_url`, so both systems call back; polling set to an hour, so only hooks count),
links ``--records`` organisations with shop customers, then makes ``--edits`` edits in
webCRM, one after the other, each timed from the write until the shop answers the new
value; then the same number in the shop, timed until webCRM answers it. Edits rotate
over the records. ``--interval`` spaces them (0: the next edit right after the last
one arrived).

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200, help="edits each way")
    parser.add_argument("--records", type=int, default=20, help="linked records edited")
    parser.add_argument("--rate-limit", type=int, default=250, help="service's webCRM budget")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between edits")
    args = parser.parse_args()

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
        f'[serve]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
        "poll_seconds = 3600\n",
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
        to_shop: list[float] = []
        for n in range(args.edits):
            oid, cid = pairs[n % len(pairs)]
            value = f"+45 1{n:07d}"
            started = time.monotonic()
            crm.upsert("Organisation", [{"OrganisationId": oid, "OrganisationTelephone": value}])
            wait_for(lambda cid=cid, value=value: shop.get("customers", cid)["phone"] == value,  # type: ignore[misc, index]
                     f"edit {n} in the shop")  # fmt: skip
            to_shop.append(time.monotonic() - started)
            time.sleep(args.interval)
        to_crm: list[float] = []
        for n in range(args.edits):
            oid, cid = pairs[n % len(pairs)]
            value = f"+49 2{n:07d}"
            started = time.monotonic()
            shop.update("customers", cid, {"phone": value})
            wait_for(
                lambda oid=oid, value=value: (
                    (crm.get("Organisation", oid) or {}).get(  # type: ignore[misc]
                        "OrganisationTelephone"
                    )
                    == value
                ),
                f"edit {n} in webCRM",
            )
            to_crm.append(time.monotonic() - started)
            time.sleep(args.interval)
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

    print(f"shopsync serve latency, {args.edits} edits each way over {args.records} records, "
          f"webCRM budget {args.rate_limit}/60 s, interval {args.interval} s")  # fmt: skip
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
