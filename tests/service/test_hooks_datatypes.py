"""Hook-driven propagation of every datatype both ways, deletes included (issue 11).

Polling is set to an hour (the ``world`` default), so only a hook can explain a change
crossing within the deadline. One service serves every case, one after the other; each
case polls for its own condition.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.engine.conftest import crm_product, customer, org, shop_product
from tests.engine.test_lines import qline
from tests.engine.test_orders import opportunity
from tests.service.conftest import Service, World, wait_for


def _link_state(world: World, datatype: str, *, webshop_id: str) -> str | None:
    """The state of a link in the service's state database (read only, beside it)."""
    path = world.state_url.removeprefix("sqlite:///")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute(
            "SELECT state FROM links WHERE datatype = ? AND webshop_id = ?",
            (datatype, webshop_id),
        ).fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])


def _meta(world: World, key: str) -> str | None:
    path = world.state_url.removeprefix("sqlite:///")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])


def _shop_order(world: World, order_id: str) -> dict[str, Any]:
    order = world.shop.get("orders", order_id)
    assert order is not None
    return order


def _skus(world: World, order_id: str) -> list[str]:
    return [str(x["sku"]) for x in _shop_order(world, order_id)["lines"]]


def _runs(service: Service) -> float:
    return sum(v for k, v in service.metrics().items() if k.startswith("shopsync_runs_total{"))


def _webcrm_hooks_accepted(service: Service) -> float:
    return service.metric('shopsync_hook_deliveries_total{result="accepted",source="webcrm"}')


def test_products_orders_lines_and_customer_deletes_cross_through_hooks(world: World) -> None:
    # --- before the start: one of each on the side it begins on
    org_id = world.crm_create("Organisation", org("Linje Kunde ApS", OrganisationVatNumber="DK555"))
    opp_id = world.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="O-7100"))
    first = world.crm_create("QuotationLine", qline(opp_id, "SKU-L1"))
    second = world.crm_create("QuotationLine", qline(opp_id, "SKU-L2", QuotationLineSortOrder=2))
    crm_product_id = world.crm_create("Product", crm_product("SKU-HP1", "Bord"))
    shop_product_id = str(
        world.shop.create("products", shop_product("SKU-HP2", "Stuhl"), idempotency_key="hp2")["id"]
    )
    gone = world.shop.create("customers", customer("Lösch GmbH", vat_number="DE999"),
                             idempotency_key="dc1")  # fmt: skip

    service = world.serve_started()
    order = wait_for(
        lambda: next((o for o in world.shop_all("orders") if o["order_number"] == "O-7100"), None),
        "the opportunity as a shop order",
    )
    order_id = str(order["id"])
    assert sorted(_skus(world, order_id)) == ["SKU-L1", "SKU-L2"]
    shop_of_crm_product = wait_for(
        lambda: next((p for p in world.shop_all("products") if p["sku"] == "SKU-HP1"), None),
        "the webCRM product in the shop",
    )
    crm_of_shop_product = wait_for(
        lambda: next(
            (p for p in world.crm_all("Product") if p.get("ProductCustom1") == "SKU-HP2"), None
        ),
        "the shop product in webCRM",
    )
    gone_org = wait_for(
        lambda: next(
            (o for o in world.crm_all("Organisation") if o["OrganisationName"] == "Lösch GmbH"),
            None,
        ),
        "the shop customer as a webCRM organisation",
    )
    service.wait_idle()

    # --- 1. products both ways
    world.crm_update("Product", crm_product_id, ProductCustom2="Bord rundt")
    wait_for(
        lambda: (
            (world.shop.get("products", str(shop_of_crm_product["id"])) or {}).get("name")
            == "Bord rundt"
        ),
        "the webCRM product's new name in the shop",
    )
    world.shop.update("products", shop_product_id, {"name": "Stuhl drehbar"})
    wait_for(
        lambda: (
            (world.crm.get("Product", int(crm_of_shop_product["ProductId"])) or {}).get(
                "ProductCustom2"
            )
            == "Stuhl drehbar"
        ),
        "the shop product's new name in webCRM",
    )

    # --- 2. opportunity ⇄ order
    world.crm_update("Opportunity", opp_id, OpportunityDescription="Levering mandag")
    wait_for(
        lambda: _shop_order(world, order_id)["notes"] == "Levering mandag",
        "the opportunity's description as the order's notes",
    )
    world.shop.update("orders", order_id, {"notes": "Bitte klingeln"})
    wait_for(
        lambda: (
            (world.crm.get("Opportunity", opp_id) or {}).get("OpportunityDescription")
            == "Bitte klingeln"
        ),
        "the order's notes as the opportunity's description",
    )

    # --- 3. order lines both ways, deletes included
    third = world.crm_create("QuotationLine", qline(opp_id, "SKU-L3", QuotationLineSortOrder=3))
    wait_for(
        lambda: _skus(world, order_id) == ["SKU-L1", "SKU-L2", "SKU-L3"],
        "the webCRM-added line in the shop order",
    )
    world.crm_update("QuotationLine", third, QuotationLineQuantity=7.0)
    wait_for(
        lambda: [x["quantity"] for x in _shop_order(world, order_id)["lines"]][-1] == "7",
        "the webCRM line's new quantity in the shop order",
    )
    service.wait_idle()  # no run writes the order while its lines are read and sent back
    lines = _shop_order(world, order_id)["lines"]
    world.shop.update("orders", order_id, {"lines": [x for x in lines if x["sku"] != "SKU-L2"]})
    wait_for(
        lambda: world.crm.get("QuotationLine", second) is None,
        "the line removed from the shop order deleted in webCRM",
    )
    swept = _meta(world, "sweep:order_lines")
    world.crm.delete("QuotationLine", first)  # a Delete hook: no change feed reports it
    wait_for(
        lambda: _skus(world, order_id) == ["SKU-L3"],
        "the webCRM-deleted line removed from the shop order",
    )
    # The hook named the line: it was read by id and found gone, with no sweep.
    assert swept is not None and _meta(world, "sweep:order_lines") == swept
    remaining = world.crm.quotation_lines_of(opp_id)
    assert [int(r["QuotationLineId"]) for r in remaining] == [third]

    # --- 4. a customer deleted in the shop is unlinked, not re-created on either side
    world.shop.delete("customers", str(gone["id"]))
    wait_for(
        lambda: _link_state(world, "customers", webshop_id=str(gone["id"])) == "webshop_deleted",
        "the shop-deleted customer's link ended",
    )
    service.wait_idle()
    runs, hooks = _runs(service), _webcrm_hooks_accepted(service)
    world.crm_update("Organisation", int(gone_org["OrganisationId"]), OrganisationCity="Odense")
    wait_for(lambda: _webcrm_hooks_accepted(service) > hooks, "the organisation's Update hook")
    service.wait_idle(after_runs=runs + 1)  # the run that read the edit is done
    live = [i for p in world.shop.iter_changes("customers", None, include_deleted=False)
            for i in p.items]  # fmt: skip
    assert [c for c in live if c["name"] == "Lösch GmbH"] == []
    orgs = [o for o in world.crm_all("Organisation") if o["OrganisationName"] == "Lösch GmbH"]
    assert [o["OrganisationId"] for o in orgs] == [gone_org["OrganisationId"]]
    assert orgs[0]["OrganisationCity"] == "Odense"

    metrics = service.metrics()
    assert metrics['shopsync_api_rate_limited_total{system="webcrm"}'] == 0
    assert service.terminate() < 10
