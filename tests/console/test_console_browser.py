"""The console in Chromium, against ``shopsync serve`` with both systems as real processes.

Nothing waits a fixed time: each wait polls for a condition (Playwright's auto-waiting
expectations, or ``wait_for``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shopsync.store import console_queries as cq
from shopsync.store.models import Link, Meta
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN
from tests.console.conftest import ADMIN_TOKEN, serious_violations, served, shot, state
from tests.engine.conftest import crm_product, customer, org
from tests.service.conftest import DEADLINE, World, wait_for

PAGES = ("/", "/activity", "/problems", "/links")


def expect(page: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    pw_expect.set_options(timeout=DEADLINE * 1000)
    return pw_expect(page)


def seed(world: World) -> None:
    world.crm_create("Organisation", org("Søgetest ApS", OrganisationVatNumber="DK40000001"))
    world.crm_create("Organisation", org("Anden ApS", OrganisationVatNumber="DK40000002",
                                         OrganisationWww="anden.dk"))  # fmt: skip
    world.shop.create(
        "customers", customer("Kunde GmbH", vat_number="DE400000003", website=None),
        idempotency_key="seed-1",
    )  # fmt: skip
    world.crm_create("Product", crm_product("CON-1", "Konsolbord"))


def cell(page: Any, key: str) -> int:
    return int(page.locator(f'[data-count="{key}"]').first.inner_text().split()[0])


def test_overview_counts_equal_the_state_database(world: World, page: Any) -> None:
    seed(world)
    service = served(world, public=False)
    page.goto(service.url + "/")
    expect(page.locator("h1")).to_have_text("Overview")
    with state(world) as s:
        counts = cq.counts(s)
    for dt in ("customers", "products", "orders", "order_lines"):
        assert cell(page, f"{dt}.linked") == counts.links.get((dt, "active"), 0)
        for direction, source in (("to_webshop", "webcrm"), ("to_webcrm", "webshop")):
            assert cell(page, f"{dt}.{direction}.waiting") == counts.inbox.get(
                (dt, source, True), 0
            )
            assert cell(page, f"{dt}.{direction}.put_aside") == counts.put_aside.get(
                (dt, source), 0
            )
            assert cell(page, f"{dt}.{direction}.updates") == counts.updates.get((dt, direction), 0)
    assert cell(page, "customers.linked") == 3
    assert cell(page, "customers.to_webshop.updates") == 2  # two organisations created
    # The chart shows today's updates (per-day counts come from the runs table).
    chart = page.locator("svg.spark").first
    assert "2 updates in 30 days" in (chart.get_attribute("aria-label") or "")
    # The figures refresh in place: a new organisation shows without a reload.
    world.crm_create("Organisation", org("Neu ApS", OrganisationVatNumber="DK40000009",
                                         OrganisationWww="neu.dk"))  # fmt: skip
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("#msg")).to_contain_text("run queued")
    expect(page.locator('[data-count="customers.linked"]')).to_have_text("4")
    shot(page, "overview")
    assert serious_violations(page) == []
    assert service.terminate() < 10


def test_a_retry_from_the_problems_page_writes_the_record_once_fixed(
    world: World, page: Any
) -> None:
    pid = world.crm_create("Product", crm_product("NOPRICE-1", "Prisløs stol", ProductPrice=None))
    service = served(world, public=False)  # polls hourly: only the retry brings the fix
    page.goto(service.url + "/problems")
    row = page.locator("#aside tbody tr", has_text="NOPRICE-1")
    expect(row).to_contain_text("ProductPrice")
    expect(row).to_contain_text(f"webcrm: {pid}")
    shot(page, "problems")
    assert serious_violations(page) == []
    # Retrying before the fix puts it aside again; fixed in webCRM, the retry writes it.
    world.crm_update("Product", pid, ProductPrice=99.5)
    row.get_by_role("button", name=f"Retry webcrm {pid}").click()
    expect(page.locator("#msg")).to_contain_text("queued for a run")
    product = wait_for(
        lambda: next((p for p in world.shop_all("products") if p["sku"] == "NOPRICE-1"), None),
        "the fixed product in the shop",
    )
    assert product["unit_price"] in ("99.50", "99.5")
    service.wait_idle()
    page.goto(service.url + "/problems")
    expect(page.locator("#no-aside")).to_be_visible()
    page.goto(service.url + "/activity?datatype=products&direction=to_webshop")
    expect(page.locator("table.grid tbody")).to_contain_text("NOPRICE-1")
    shot(page, "activity")
    assert serious_violations(page) == []
    assert service.terminate() < 10


def test_a_switch_survives_a_restart_and_changes_what_the_next_sync_does(
    world: World, page: Any
) -> None:
    service = served(world, public=False)
    page.goto(service.url + "/")
    page.get_by_role("button", name="Turn off customers.to_webshop.enabled").click()
    expect(page.locator('[data-switch="customers.to_webshop.enabled"]')).to_have_text(
        "off (set here)"
    )
    assert service.terminate() < 10

    again = served(world, public=False, poll_seconds=1)
    page.goto(again.url + "/")
    expect(page.locator('[data-switch="customers.to_webshop.enabled"]')).to_have_text(
        "off (set here)"
    )
    status = subprocess.run(
        [sys.executable, "-m", "shopsync", "status", "--json", "--config", str(again.config_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    shown = {sw["key"]: sw for sw in json.loads(status.stdout)["switches"]}
    assert shown["customers.to_webshop.enabled"] == {
        "key": "customers.to_webshop.enabled", "value": False, "file": True, "console": True,
    }  # fmt: skip
    # A new organisation is not shared while the switch is off …
    world.crm_create("Organisation", org("Schalter ApS", OrganisationVatNumber="DK40000005"))
    runs = again.runs("ok")
    wait_for(lambda: again.runs("ok") >= runs + 2, "two polls after the create")
    assert [c for c in world.shop_all("customers") if c["name"] == "Schalter ApS"] == []
    # … and is, once it is back on (the file's value), at the next poll.
    page.get_by_role("button", name="Use file value for customers.to_webshop.enabled").click()
    expect(page.locator('[data-switch="customers.to_webshop.enabled"]')).to_have_text("on")
    wait_for(
        lambda: [c for c in world.shop_all("customers") if c["name"] == "Schalter ApS"],
        "the organisation in the shop once the switch is on",
    )
    assert again.terminate() < 10


def test_search_finds_a_link_and_shows_both_sides(world: World, page: Any) -> None:
    seed(world)
    service = served(world, public=False)
    with state(world) as s:
        link = s.scalars(
            select(Link).where(Link.datatype == "products", Link.webcrm_id.is_not(None))
        ).one()
    for q in ("konsol", "con-1", "Konsolbord", link.webshop_id, link.webcrm_id):
        page.goto(service.url + "/links?" + str(httpx.QueryParams({"q": q})))
        expect(page.locator("#links tbody")).to_contain_text("CON-1 · Konsolbord")
    # A webCRM id is a small number: other datatypes may have it too; the filter narrows.
    page.get_by_label("Link", exact=True).select_option("products")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"datatype=products"))
    expect(page.locator("#links tbody tr")).to_have_count(1)
    shot(page, "links")
    assert serious_violations(page) == []
    page.get_by_role("link", name="CON-1 · Konsolbord").click()
    expect(page.locator("#values")).to_contain_text("Konsolbord")
    expect(page.locator("dd").nth(1)).to_contain_text(link.webcrm_id)
    shot(page, "link")
    assert serious_violations(page) == []
    page.goto(service.url + "/links?q=nothing-like-this")
    expect(page.locator("#no-links")).to_be_visible()
    assert service.terminate() < 10


def test_an_admin_token_refuses_the_unauthenticated_and_no_page_carries_a_secret(
    world: World, page: Any
) -> None:
    seed(world)
    service = served(world, public=True, extra=f'admin_token = "{ADMIN_TOKEN}"\n')
    anon = httpx.Client(base_url=service.url, timeout=10)
    for path in PAGES:
        r = anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    r = anon.post("/switches", data={"key": "customers.to_webshop.enabled", "value": "off"})
    assert r.status_code == 403
    r = anon.post("/problems/retry-all")
    assert r.status_code == 403
    # Health and metrics stay open (they are for probes); hooks keep their own token.
    assert anon.get("/healthz").status_code == 200

    page.goto(service.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    page.get_by_label("Admin token").fill("wrong-token-wrong-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".alert")).to_contain_text("not the admin token")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("Overview")

    # Signed in, a POST still needs the page's CSRF token and our own Origin.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    signed = httpx.Client(base_url=service.url, timeout=10, cookies=cookies)
    form = {"key": "customers.to_webshop.enabled", "value": "off"}
    assert signed.post("/switches", data=form).status_code == 403
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert csrf
    evil = signed.post(
        "/switches", data={**form, "csrf": csrf}, headers={"Origin": "http://evil.example"}
    )
    assert evil.status_code == 403
    with state(world) as s:
        assert cq.switches(s) == {}

    with state(world) as s:
        secrets = (
            [AUTH_CODE, WEBSHOP_TOKEN, ADMIN_TOKEN]
            + [m.value for m in s.scalars(select(Meta).where(Meta.key.like("%serve:%")))]
            + [m.value for m in s.scalars(select(Meta).where(Meta.key == "console:session_key"))]
        )
        link_id = s.scalars(select(Link.id)).first()
    assert len(secrets) >= 5  # the hook token, the webhook secret and the session key too
    for path in (*PAGES, f"/links/{link_id}", "/links?q=søge", "/fragments/overview"):
        page.goto(service.url + path)
        html = page.content()
        for secret in secrets:
            assert secret not in html, (path, "carries a secret")
        if not path.startswith("/fragments/"):  # a fragment is no document of its own
            assert serious_violations(page) == [], path
    cookie = cookies["shopsync_console"]
    for secret in secrets:
        assert secret not in cookie
    page.goto(service.url + "/")
    shot(page, "overview-signed-in")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert service.terminate() < 10


def test_every_page_says_so_when_webcrm_refuses_the_token(world: World, page: Any) -> None:
    wrong = "99999999-8888-7777-6666-555555555555"
    service = world.serve(public=False, auth_code=wrong)
    wait_for(
        lambda: (
            service.client.get("/readyz").status_code == 503
            and "refused" in service.client.get("/readyz").json()["checks"]["webcrm"]["detail"]
        ),
        "/readyz knows the token is refused",
    )
    for path in PAGES:
        page.goto(service.url + path)
        banner = page.locator("#reauth")
        expect(banner).to_contain_text("Configuration › Integration › API")
        expect(banner).to_contain_text("SHOPSYNC_WEBCRM_AUTH_CODE")
        assert wrong not in page.content()
    shot(page, "reauthorise")
    assert serious_violations(page) == []
    assert service.terminate() < 10


@pytest.mark.parametrize("host", ["evil.example:80", "attacker.test"])
def test_without_a_token_only_loopback_host_names_are_served(world: World, host: str) -> None:
    service = world.serve(public=False)
    r = service.client.get("/", headers={"Host": host})
    assert r.status_code == 403
    assert service.client.get("/").status_code == 200
    assert service.terminate() < 10
