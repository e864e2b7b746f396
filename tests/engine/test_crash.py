"""Exactly once, whatever is killed when (issue 8).

Both servers are seeded so the initial sync has work of every kind: merges, creates in
both directions, orders with lines, many small PATCH batches. First an uninterrupted
`shopsync sync` gives the reference end state. Then, round after round, the same
seeded world is synced by real `shopsync sync` processes SIGKILLed at random instants
spread over the length of an uninterrupted run (so the kills land in staging, in
creates each way, in PATCH batches, in line writes and in recording alike), until a
run finishes. After each round both systems must hold exactly what the reference run
made (the same records, compared by their values and references, not their ids),
every link one-to-one, nothing waiting or put aside, and a further run writes nothing.

``SHOPSYNC_CRASH_KILLS`` sets how many kills in all (default 6, the quick variant CI
runs on SQLite and on PostgreSQL); ``SHOPSYNC_CRASH_KILLS=100`` is the long one.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopsync.config.model import Datatype
from shopsync.emulators.launch import RunningServer
from shopsync.store import repo
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN
from tests.engine.conftest import Env, customer

KILLS = int(os.environ.get("SHOPSYNC_CRASH_KILLS", "6"))
TIMEOUT = 3.0
"""The client's request timeout: an interrupted create is resolved once it has passed."""
SETTLE = TIMEOUT + 1.5


def write_config(
    path: Path,
    crm: RunningServer,
    shop: RunningServer,
    state_url: str,
    *,
    batch_size: int = 20,
    timeout: float = TIMEOUT,
) -> None:
    path.write_text(
        f"""
[webcrm]
base_url = "{crm.url}"
auth_code = "{AUTH_CODE}"
rate_limit = 10000
max_retries = 2
batch_size = {batch_size}
timeout_seconds = {timeout}

[webshop]
base_url = "{shop.url}"
token = "{WEBSHOP_TOKEN}"
max_retries = 2

[state]
url = "{state_url}"
""",
        encoding="utf-8",
    )


def run_sync(config: Path, kill_after: float | None) -> int | None:
    """Run one `shopsync sync`; SIGKILL it after ``kill_after`` seconds if still running."""
    log = (config.parent / "sync.log").open("a", encoding="utf-8")
    log.write(f"--- shopsync sync (kill after {kill_after})\n")
    log.flush()
    reports = (config.parent / "reports.json").open("a", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shopsync", "--log-level", "info", "sync", "--config",
         str(config), "--json"],
        stdout=reports,  # a finished run's figures, for explain()
        stderr=log,
    )  # fmt: skip
    log.close()
    reports.close()
    if kill_after is None:
        return proc.wait(timeout=300)
    try:
        return proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return None


def seed(env: Env, seed: int = 7) -> None:
    httpx.post(
        env.crm_server.url + "/_emulator/seed", json={"n": 60, "seed": seed}, timeout=60
    ).raise_for_status()
    httpx.post(
        env.shop_server.url + "/_webshop/seed", json={"n": 30, "seed": seed}, timeout=60
    ).raise_for_status()


# ------------------------------------------------------------------ the end state
_VOLATILE = re.compile(
    r"(Id|CreatedAt|UpdatedAt|CreatedBy|UpdatedBy|ErpSyncDateTime)$"
    r"|^(id|created_at|updated_at|version|etag)$|_id$"
)
"""Fields that differ between two correct runs: ids, timestamps, who wrote last."""


def _canon(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _canon(v)) for k, v in value.items() if not _VOLATILE.search(k)))
    if isinstance(value, list):
        return tuple(sorted((_canon(x) for x in value), key=repr))
    if isinstance(value, float):
        return round(value, 6)
    return value


def world(env: Env) -> dict[str, Counter[Any]]:
    """Both systems' records as multisets of their values, references by label."""
    orgs = env.crm_all("Organisation")
    products = env.crm_all("Product")
    opps = env.crm_all("Opportunity")
    lines = env.crm_all("QuotationLine")
    org_name = {o["OrganisationId"]: o.get("OrganisationName") for o in orgs}
    product_name = {p["ProductId"]: p.get("ProductName") for p in products}
    opp_number = {o["OpportunityId"]: o.get("OpportunityNumber") for o in opps}
    customers = env.shop_all("customers")
    shop_products = env.shop_all("products")
    orders = env.shop_all("orders")
    customer_name = {c["id"]: c.get("name") for c in customers}
    sku = {p["id"]: p.get("sku") for p in shop_products}

    def crm(rec: dict[str, Any]) -> Any:
        rec = dict(rec)
        for key in list(rec):
            if key.endswith("OrganisationId"):
                rec["@" + key] = org_name.get(rec[key])
            elif key.endswith("OpportunityId") and not key.startswith("Opportunity"):
                rec["@" + key] = opp_number.get(rec[key])
            elif key.endswith("ProductId") and not key.startswith("Product"):
                rec["@" + key] = product_name.get(rec[key])
            elif key == "OpportunityErpId":
                rec[key] = None  # the webshop's order id: random per run
            elif key == "OpportunityLostDate":
                rec[key] = bool(rec[key])  # set to the time of the sync that marks it
        return _canon(rec)

    def shop(rec: dict[str, Any]) -> Any:
        rec = dict(rec)
        if "customer_id" in rec:
            rec["@customer"] = customer_name.get(rec["customer_id"])
        if "lines" in rec:
            rec["lines"] = [{**x, "@product": sku.get(x.get("product_id"))} for x in rec["lines"]]
        return _canon(rec)

    return {
        "webcrm Organisation": Counter(map(crm, orgs)),
        "webcrm Product": Counter(map(crm, products)),
        "webcrm Opportunity": Counter(map(crm, opps)),
        "webcrm QuotationLine": Counter(map(crm, lines)),
        "webshop customers": Counter(map(shop, customers)),
        "webshop products": Counter(map(shop, shop_products)),
        "webshop orders": Counter(map(shop, orders)),
    }


def assert_same_world(got: dict[str, Counter[Any]], want: dict[str, Counter[Any]]) -> None:
    for name in want:
        extra, missing = got[name] - want[name], want[name] - got[name]
        if extra and missing:  # show how the nearest pair differs, not two whole records
            a, b = dict(next(iter(extra))), dict(next(iter(missing)))
            diff = {
                k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)
            }
        else:
            diff = {}
        assert not extra and not missing, (
            f"{name}: {sum(extra.values())} extra, {sum(missing.values())} missing; "
            f"first extra vs first missing differ in {diff}"
        )


def assert_consistent(env: Env) -> None:
    """Links one-to-one, one record per link on each side, nothing waiting or aside."""
    with env.inst.session() as s:
        links = {dt: list(s.scalars(repo.select_links(dt.value))) for dt in Datatype}
        waiting = [(w.datatype, w.record_id, w.waiting_reason) for w in repo.waiting(s)]
        aside = [(a.datatype, a.record_id, a.reason) for a in repo.all_put_aside(s)]
        inbox = repo.inbox_counts(s)
    assert not aside and not waiting, (aside[:5], waiting[:5])
    assert not any(inbox.values()), f"work left in the inbox: {inbox}"
    for dt, rows in links.items():
        assert len({r.webcrm_id for r in rows}) == len(rows), dt
        assert len({r.webshop_id for r in rows}) == len(rows), dt
    assert len(env.crm_all("Organisation")) == len(links[Datatype.customers])
    assert len(env.shop_all("customers")) == len(links[Datatype.customers])
    assert len(env.crm_all("Opportunity")) == len(links[Datatype.orders])
    assert len(env.shop_all("orders")) == len(links[Datatype.orders])
    shop_lines = {str(x["id"]) for o in env.shop_all("orders") for x in o.get("lines") or []}
    crm_lines = {str(x["QuotationLineId"]) for x in env.crm_all("QuotationLine")}
    line_links = links[Datatype.order_lines]
    dangling = [
        (ln.webcrm_id, ln.webshop_id, ln.state, ln.created_by)
        for ln in line_links
        if ln.webcrm_id not in crm_lines or ln.webshop_id not in shop_lines
    ]
    assert not dangling, f"{len(dangling)} line links to a missing line: {dangling[:5]}"
    assert len(crm_lines) == len(shop_lines) == len(line_links), (
        len(crm_lines), len(shop_lines), len(line_links),
    )  # fmt: skip


def converge(env: Env, config: Path) -> None:
    """Let every interrupted create become resolvable, then sync to the end."""
    time.sleep(SETTLE)
    assert run_sync(config, None) == 0
    final = env.sync()
    assert final.writes == 0, [p for p in final.plan if p.action != "wait"][:10]


@pytest.mark.slow
@pytest.mark.timeout(max(900, 60 * KILLS))  # each kill costs a restart; rounds re-seed
def test_sigkill_at_random_points_loses_and_duplicates_nothing(env: Env, tmp_path: Path) -> None:
    config = tmp_path / "shopsync.toml"
    seed(env)
    write_config(config, env.crm_server, env.shop_server, env.inst.config.state.url or "")
    started = time.monotonic()
    assert run_sync(config, None) == 0
    duration = time.monotonic() - started
    converge(env, config)
    assert_consistent(env)
    reference = world(env)

    rng = random.Random(int(os.environ.get("SHOPSYNC_CRASH_SEED", "20261130")))
    killed = rounds = 0
    while killed < KILLS:
        rounds += 1
        env.fresh_state()
        seed(env)
        write_config(config, env.crm_server, env.shop_server, env.inst.config.state.url or "")
        while killed < KILLS:
            # instants spread over a whole uninterrupted run (start-up included)
            if run_sync(config, rng.uniform(0.2, duration)) is not None:
                break  # this run finished before its kill
            killed += 1
        try:
            converge(env, config)
            assert_consistent(env)
            assert_same_world(world(env), reference)
        except AssertionError:
            explain(env, config)
            raise
    print(f"{killed} kills in {rounds} rounds; reference run {duration:.1f} s")


def explain(env: Env, config: Path) -> None:
    """What a failed round leaves for diagnosis, printed into the test's report (the
    temporary directory with the runs' log is gone soon after a CI run): the shop lines
    without a link, by order, and the end of the log of the killed and resumed runs."""
    with env.inst.session() as s:
        linked = {ln.webshop_id for ln in s.scalars(repo.select_links("order_lines"))}
    for order in env.shop_all("orders"):
        loose = [x for x in order.get("lines") or [] if str(x.get("id")) not in linked]
        if loose:
            print(f"order {order.get('id')} version {order.get('version')} "
                  f"updated {order.get('updated_at')}: {len(order.get('lines') or [])} lines, "
                  f"unlinked {[(x.get('id'), x.get('sku'), x.get('quantity')) for x in loose]}")  # fmt: skip
    _explain_doubled_lines(env)
    reports = config.parent / "reports.json"
    if reports.exists():  # one pretty-printed JSON document per finished run
        print("--- what each finished run did (non-zero figures)")
        decoder, text, at = json.JSONDecoder(), reports.read_text(encoding="utf-8"), 0
        while (at := len(text) - len(text[at:].lstrip())) < len(text):
            report, at = decoder.raw_decode(text, at)
            print({
                dt: {k: v for k, v in figures.items() if v}
                for dt, figures in report.get("stats", {}).items()
            })  # fmt: skip
    log = config.parent / "sync.log"
    if log.exists():
        print("--- last 300 lines of sync.log")
        print("\n".join(log.read_text(encoding="utf-8").splitlines()[-300:]))


def _explain_doubled_lines(env: Env, most: int = 2) -> None:
    """For the first opportunities holding one product and quantity more than once (a
    line made twice), every line of theirs on both sides and its link."""
    by_opp: dict[Any, list[dict[str, Any]]] = {}
    for x in env.crm_all("QuotationLine"):
        by_opp.setdefault(x.get("QuotationLineOpportunityId"), []).append(x)
    with env.inst.session() as s:
        links = list(s.scalars(repo.select_links("order_lines")))
        orders = {ln.webcrm_id: ln for ln in s.scalars(repo.select_links("orders"))}
    by_crm = {ln.webcrm_id: ln for ln in links}
    by_shop = {ln.webshop_id: ln for ln in links}
    shown = 0
    for opp_id, lines in sorted(by_opp.items(), key=lambda kv: str(kv[0])):
        keys = Counter((x.get("QuotationLineData1"), x.get("QuotationLineQuantity")) for x in lines)
        if shown >= most or max(keys.values(), default=0) < 2:
            continue
        shown += 1
        order = orders.get(str(opp_id))
        pair = order and (order.webshop_id, order.created_by, order.created_at)
        print(f"opportunity {opp_id}: order link {pair}")
        for x in sorted(lines, key=lambda x: x["QuotationLineId"]):
            ln = by_crm.get(str(x["QuotationLineId"]))
            print(f"  webCRM line {x['QuotationLineId']} {x.get('QuotationLineData1')} "
                  f"x{x.get('QuotationLineQuantity')} created {x.get('QuotationLineCreatedAt')} "
                  f"link {ln and (ln.webshop_id, ln.created_by, ln.created_at)}")  # fmt: skip
        if order is not None:
            for x in env.shop_get("orders", order.webshop_id).get("lines") or []:
                ln = by_shop.get(str(x.get("id")))
                print(f"  shop line {x.get('id')} {x.get('sku')} x{x.get('quantity')} "
                      f"link {ln and (ln.webcrm_id, ln.created_by, ln.created_at)}")  # fmt: skip


def _patches(env: Env) -> int:
    counters = httpx.get(env.crm_server.url + "/_emulator/counters", timeout=10).json()
    return int(counters["endpoints"].get("PATCH /Organisations", 0))


def _sent_intents(state_url: str) -> int:
    path = state_url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM intents WHERE sent_at IS NOT NULL").fetchone()
        except sqlite3.OperationalError:  # not created yet
            return 0
    return int(row[0])


@pytest.mark.slow
def test_a_create_still_running_on_the_server_when_its_sync_is_killed(
    env: Env, tmp_path: Path
) -> None:
    """webCRM holds each write 2 s before doing it; the sync is killed while a create
    waits there, and a new sync starts at once: it must not send the create again
    while it may still land, and once it has landed, link it instead of copying it."""
    state_url = env.inst.config.state.url or ""
    if not state_url.startswith("sqlite"):
        pytest.skip("watches the SQLite state file for the create in flight")
    for i in range(5):  # no VAT, no website, no postcode: no merge key would find them
        address = {"line1": f"Vej {i}", "line2": None, "postal_code": None,
                   "city": "Aarhus", "region": None, "country": "DK"}  # fmt: skip
        env.shop_create(
            "customers",
            customer(f"Held Create {i} ApS", vat_number=None, website=None,
                     billing_address=address),
        )  # fmt: skip
    httpx.put(
        env.crm_server.url + "/_emulator/faults", json={"write_latency_ms": 2000}, timeout=10
    ).raise_for_status()
    config = tmp_path / "shopsync.toml"
    timeout = 15.0  # the resolution waits this long after the send: well past the hold
    write_config(config, env.crm_server, env.shop_server, state_url, timeout=timeout)
    cmd = [sys.executable, "-m", "shopsync", "sync", "--config", str(config), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _patches(env) == 0:  # counted on arrival, before the server holds it
        assert proc.poll() is None, "the sync ended before its create was sent"
        assert time.monotonic() < deadline, "no create was sent within 60 s"
        time.sleep(0.05)
    assert _sent_intents(state_url) == 5  # committed before the request left
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = time.monotonic()
    # at once: the create is still held on the server; it must not be sent again
    assert run_sync(config, None) == 0
    with env.inst.session() as s:
        assert any("may still land" in (w.waiting_reason or "") for w in repo.waiting(s))
    time.sleep(max(0.0, killed_at + 2.5 - time.monotonic()))  # it has landed now
    assert len([o for o in env.crm_all("Organisation") if "Held Create" in str(o)]) == 5
    httpx.put(env.crm_server.url + "/_emulator/faults", json={}, timeout=10).raise_for_status()
    # past the client's timeout: the next run asks webCRM what landed
    time.sleep(max(0.0, killed_at + timeout + 1.5 - time.monotonic()))
    assert run_sync(config, None) == 0
    report = env.sync()
    assert report.writes == 0, report.plan
    assert len([o for o in env.crm_all("Organisation") if "Held Create" in str(o)]) == 5
    assert_consistent(env)


@pytest.mark.slow
def test_answers_lost_after_the_write_are_resolved_not_resent(env: Env, tmp_path: Path) -> None:
    """A third of webCRM's writes are done and then their answer is dropped: the client
    never resends a create, and the engine finds out what landed before sending again."""
    seed(env, seed=11)
    httpx.put(
        env.crm_server.url + "/_emulator/faults",
        json={"lost_answer_rate": 0.33, "seed": 5},
        timeout=10,
    ).raise_for_status()
    config = tmp_path / "shopsync.toml"
    state_url = env.inst.config.state.url or ""
    write_config(config, env.crm_server, env.shop_server, state_url, timeout=2.0)
    for _ in range(6):
        run_sync(config, None)  # runs may end with an error: the answers are lost
        time.sleep(3.5)
    httpx.put(env.crm_server.url + "/_emulator/faults", json={}, timeout=10).raise_for_status()
    converge(env, config)
    assert_consistent(env)
