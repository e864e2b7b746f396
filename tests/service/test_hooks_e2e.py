"""Hook-driven propagation: polling is set to an hour, so only hooks can explain a change
crossing within the deadline."""

from __future__ import annotations

import subprocess
import sys

from tests.engine.conftest import crm_product, customer, org
from tests.service.conftest import World, wait_for


def _hooks(world: World, collection: str) -> list[dict[str, object]]:
    body = world.crm._send("GET", f"/{collection}/Hooks").json()
    return [h for h in body if "/hooks/webcrm/" in str(h["TargetUrl"])]


def _subscriptions(world: World) -> list[dict[str, object]]:
    return world.shop.webhooks() or []


def test_start_onboards_then_hooks_carry_edits_and_deletes_both_ways(world: World) -> None:
    org_id = world.crm_create("Organisation", org("Hook Æble ApS", OrganisationVatNumber="DK111"))
    product_id = world.crm_create("Product", crm_product("SKU-HOOK", "Bord"))
    world.shop.create("customers", customer("Hook Straße GmbH", vat_number="DE222"),
                      idempotency_key="c1")  # fmt: skip

    service = world.serve_started()
    # Onboarding without a separate `shopsync sync`: both records crossed.
    shop_customer = wait_for(
        lambda: next(
            (c for c in world.shop_all("customers") if c["name"] == "Hook Æble ApS"), None
        ),
        "the organisation as a shop customer",
    )
    crm_org = wait_for(
        lambda: next(
            (
                o
                for o in world.crm_all("Organisation")
                if o["OrganisationName"] == "Hook Straße GmbH"
            ),
            None,
        ),
        "the shop customer as a webCRM organisation",
    )
    shop_product = wait_for(
        lambda: next((p for p in world.shop_all("products") if p["sku"] == "SKU-HOOK"), None),
        "the product in the shop",
    )
    for collection in ("Organisations", "Products", "Opportunities", "QuotationLines"):
        hooks = _hooks(world, collection)
        assert sorted(str(h["EventType"]) for h in hooks) == ["Create", "Delete", "Update"]
    assert len(_subscriptions(world)) == 1
    service.wait_idle()

    # webCRM → shop, through an Update hook.
    world.crm_update("Organisation", org_id, OrganisationName="Hook Æble Renamed ApS")
    wait_for(
        lambda: (
            world.shop.get("customers", shop_customer["id"])["name"]  # type: ignore[index]
            == "Hook Æble Renamed ApS"
        ),
        "the renamed organisation in the shop",
    )
    # shop → webCRM, through a signed webhook.
    world.shop.update("customers", shop_customer["id"], {"phone": "+45 70 10 20 30"})
    wait_for(
        lambda: (
            (world.crm.get("Organisation", org_id) or {}).get("OrganisationTelephone")
            == "+45 70 10 20 30"
        ),
        "the shop's phone in webCRM",
    )
    world.shop.update("customers", str(next(
        c["id"] for c in world.shop_all("customers") if c["name"] == "Hook Straße GmbH"
    )), {"name": "Hook Straße Neu GmbH"})  # fmt: skip
    wait_for(
        lambda: (
            (world.crm.get("Organisation", int(crm_org["OrganisationId"])) or {}).get(
                "OrganisationName"
            )
            == "Hook Straße Neu GmbH"
        ),
        "the renamed shop customer in webCRM",
    )
    # A delete in webCRM (no change feed reports it): its Delete hook makes a sweep.
    world.crm.delete("Product", product_id)
    wait_for(
        lambda: world.shop.get("products", shop_product["id"])["active"] is False,  # type: ignore[index]
        "the webCRM-deleted product deactivated in the shop",
    )
    metrics = service.metrics()
    assert metrics['shopsync_hook_deliveries_total{result="accepted",source="webcrm"}'] >= 2
    assert metrics['shopsync_hook_deliveries_total{result="accepted",source="webshop"}'] >= 2
    assert metrics['shopsync_propagation_seconds_count{source="webcrm"}'] >= 1
    assert metrics['shopsync_webcrm_budget_requests_total{kind="targeted"}'] >= 1
    assert metrics['shopsync_api_rate_limited_total{system="webcrm"}'] == 0
    assert service.terminate() < 10


def test_a_restart_reuses_the_registrations_and_unregister_removes_them(world: World) -> None:
    first = world.serve_started()
    ids = {c: sorted(str(h["Id"]) for h in _hooks(world, c)) for c in ("Organisations", "Products")}
    subscription = [s["id"] for s in _subscriptions(world)]
    assert first.terminate() < 10

    second = world.serve_started()
    again = {
        c: sorted(str(h["Id"]) for h in _hooks(world, c)) for c in ("Organisations", "Products")
    }
    assert again == ids
    assert [s["id"] for s in _subscriptions(world)] == subscription
    assert second.terminate() < 10

    done = subprocess.run(
        [sys.executable, "-m", "shopsync", "serve", "--config", str(second.config_path),
         "--unregister-hooks"],
        capture_output=True, timeout=120, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for collection in ("Organisations", "Products", "Opportunities", "QuotationLines"):
        assert _hooks(world, collection) == []
    assert _subscriptions(world) == []


def test_a_new_shop_order_and_its_new_customer_cross_together_and_its_delete_follows(
    world: World,
) -> None:
    service = world.serve_started()
    service.wait_idle()
    # A new customer and its order at once: the order must not go before its customer
    # (or must be retried as soon as the customer is in), whatever order the hooks come in.
    cust = world.shop.create("customers", customer("Order Kunde GmbH", vat_number="DE444"),
                             idempotency_key="oc1")  # fmt: skip
    created = world.shop.create(
        "orders",
        {"order_number": "W-7001", "customer_id": cust["id"], "status": "pending",
         "currency": "EUR", "order_date": "2026-04-01", "discount_percent": "0",
         "notes": "via hook", "lines": []},
        idempotency_key="oo1",
    )  # fmt: skip
    opportunity = wait_for(
        lambda: next(
            (o for o in world.crm_all("Opportunity") if o.get("OpportunityNumber") == "W-7001"),
            None,
        ),
        "the shop order as a webCRM opportunity",
    )
    organisation = next(
        o for o in world.crm_all("Organisation") if o["OrganisationName"] == "Order Kunde GmbH"
    )
    assert opportunity["OpportunityOrganisationId"] == organisation["OrganisationId"]
    assert not opportunity.get("OpportunityLostDate")
    # A delete in the shop: its webhook marks the opportunity lost.
    world.shop.delete("orders", created["id"])
    wait_for(
        lambda: (world.crm.get("Opportunity", int(opportunity["OpportunityId"])) or {}).get(
            "OpportunityLostDate"
        ),
        "the deleted order's opportunity marked lost",
    )
    assert service.terminate() < 10
