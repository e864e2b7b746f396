"""Operations: polling without a public address, readiness with a refused token, and a
SIGTERM in the middle of a run."""

from __future__ import annotations

import httpx
import pytest

from tests.engine.conftest import customer, org
from tests.service.conftest import World, wait_for


def test_without_public_url_nothing_is_registered_and_polls_carry_changes(world: World) -> None:
    org_id = world.crm_create("Organisation", org("Poll ApS", OrganisationVatNumber="DK333"))
    service = world.serve_started(public=False, poll_seconds=1)
    shop_customer = wait_for(
        lambda: next((c for c in world.shop_all("customers") if c["name"] == "Poll ApS"), None),
        "the organisation in the shop",
    )
    for collection in ("Organisations", "Products", "Opportunities", "QuotationLines"):
        assert world.crm._send("GET", f"/{collection}/Hooks").json() == []
    assert world.shop.webhooks() == []
    # Nothing calls back: the poll finds the edit.
    world.crm_update("Organisation", org_id, OrganisationCity="Odense C")
    wait_for(
        lambda: (
            world.shop.get("customers", shop_customer["id"])["billing_address"]["city"]  # type: ignore[index]
            == "Odense C"
        ),
        "the edit carried by a poll",
    )
    # The poll run wrote the edit; its figures are in once it has ended.
    metrics = wait_for(
        lambda: (
            (m := service.metrics()).get('shopsync_runs_total{outcome="ok",trigger="poll"}') and m
        ),
        "the poll run counted",
    )
    assert metrics['shopsync_hook_deliveries_total{result="accepted",source="webcrm"}'] == 0
    assert metrics['shopsync_webcrm_budget_requests_total{kind="poll"}'] >= 1
    # The hook addresses exist but know no token but ours, which nobody was given.
    assert service.client.post("/hooks/webcrm/anything", json={}).status_code == 404
    assert service.terminate() < 10


def test_readyz_is_red_with_a_refused_webcrm_token_and_says_re_authorise(world: World) -> None:
    wrong = "99999999-8888-7777-6666-555555555555"
    service = world.serve(auth_code=wrong)
    assert service.client.get("/healthz").status_code == 200

    def refused() -> dict[str, object] | None:
        r = service.client.get("/readyz")
        body = r.json()
        return body if r.status_code == 503 and not body["checks"]["webcrm"]["ok"] else None

    body = wait_for(refused, "/readyz red for webCRM")
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert "re-authorise" in checks["webcrm"]["detail"]
    assert checks["state_db"]["ok"] is True
    assert wrong not in service.log()
    assert service.terminate() < 10


def test_readyz_turns_red_when_the_token_is_revoked_and_green_when_it_is_fixed(
    world: World,
) -> None:
    """The application token is revoked in webCRM (every issued token with it) while the
    service runs: its next poll is refused and /readyz says re-authorise; once webCRM
    accepts the token again, the next retry succeeds and /readyz is green, unrestarted."""
    service = world.serve_started(public=False, poll_seconds=1)
    control = world.crm_server.url + "/_emulator/auth-code"

    def ready(status: int) -> dict[str, object] | None:
        r = service.client.get("/readyz")
        return r.json() if r.status_code == status else None

    wait_for(lambda: ready(200), "/readyz green at first")
    httpx.put(control, json={"auth_code": "another-token-issued-instead"}, timeout=10)
    try:
        body = wait_for(lambda: ready(503), "/readyz red once the token is refused")
        checks = body["checks"]
        assert isinstance(checks, dict) and "re-authorise" in checks["webcrm"]["detail"]
        # While refused, the edits wait; nothing is lost.
        world.shop.create("customers", customer("Wieder Da GmbH", vat_number="DE4444"),
                          idempotency_key="readyz-back")  # fmt: skip
    finally:
        httpx.put(control, json={"auth_code": None}, timeout=10)
    wait_for(lambda: ready(200), "/readyz green again after the token was fixed")
    wait_for(
        lambda: any(
            o["OrganisationName"] == "Wieder Da GmbH" for o in world.crm_all("Organisation")
        ),
        "the customer made while refused, in webCRM",
    )
    assert service.terminate() < 10


def test_ready_when_both_systems_answer(world: World) -> None:
    service = world.serve_started(public=False)
    r = wait_for(
        lambda: (resp := service.client.get("/readyz")).status_code == 200 and resp,
        "/readyz green",
    )
    assert r.json()["ready"] is True
    assert service.terminate() < 10


@pytest.mark.parametrize(
    ("latency_ms", "public"),
    [
        pytest.param(400, True, id="the run in flight finishes"),
        pytest.param(3000, False, id="the run in flight is interrupted"),
    ],
)
def test_sigterm_in_the_middle_of_a_run_exits_within_10_s_and_loses_nothing(
    world: World, latency_ms: int, public: bool
) -> None:
    """Every shop request takes ``latency_ms``: at 400 ms the start-up run ends within
    the grace period; at 3 s it cannot, and is interrupted (or the process ended)."""
    world.crm.upsert(
        "Organisation",
        [org(f"Term {i} ApS", OrganisationVatNumber=f"DK9{i:04d}", OrganisationWww="")
         for i in range(12)],
    )  # fmt: skip
    for i in range(12):
        world.shop.create(
            "customers", customer(f"Term {i} GmbH", vat_number=f"DE8{i:05d}", website=None),
            idempotency_key=f"term-{i}",
        )  # fmt: skip
    faults = world.shop_server.url + "/_webshop/faults"
    httpx.put(faults, json={"latency_ms": latency_ms}, timeout=10).raise_for_status()
    try:
        service = world.serve(public=public)
        wait_for(
            lambda: service.metric("shopsync_run_in_progress") == 1, "a run in progress", every=0.02
        )
        took = service.terminate()
    finally:
        httpx.put(faults, json={}, timeout=10).raise_for_status()
    assert took < 10, took
    assert service.process.returncode == 0
    assert "serve.stopping" in service.log()

    # A new start finishes the work: each record exactly once on each side. (A webCRM
    # create cut off in flight makes its datatype wait up to timeout_seconds + 1 s before
    # webCRM is asked whether it landed: the polls of the new service do that.)
    again = world.serve_started(public=public, poll_seconds=1)
    expected = sorted([f"Term {i} ApS" for i in range(12)] + [f"Term {i} GmbH" for i in range(12)])
    wait_for(
        lambda: (
            sorted(c["name"] for c in world.shop_all("customers")) == expected
            and sorted(o["OrganisationName"] for o in world.crm_all("Organisation")) == expected
        ),
        "every record once on each side",
    )
    again.wait_idle()
    assert sorted(c["name"] for c in world.shop_all("customers")) == expected
    assert sorted(o["OrganisationName"] for o in world.crm_all("Organisation")) == expected
    assert again.terminate() < 10
