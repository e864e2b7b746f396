"""Opportunities ⇄ Order, end to end over real HTTP (dataflow.md table 3, rules 4–6)."""

from __future__ import annotations

from typing import Any

import pytest

from shopsync.config.model import (
    Datatype,
    DatatypeConfig,
    MappingConfig,
    SelectiveConfig,
    ShareConfig,
)
from shopsync.engine.streams import parse_time
from shopsync.store import repo
from tests.engine.conftest import Env, customer, org

C, ORD = Datatype.customers, Datatype.orders


def opportunity(org_id: int, **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "OpportunityOrganisationId": org_id,
        "OpportunityNumber": "O-1001",
        "OpportunityCurrencyName": "DKK",
        "OpportunityOrderDate": "2026-03-02T00:00:00Z",
        "OpportunityDescription": "Levering fredag før kl. 12",
        "OpportunityDiscount": 5.0,
        "OpportunityPercent": 50,
    }
    rec.update(kw)
    return rec


def order(customer_id: str, **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "order_number": "W-2001",
        "customer_id": customer_id,
        "status": "pending",
        "currency": "EUR",
        "order_date": "2026-04-01",
        "discount_percent": "0",
        "notes": "Bitte klingeln",
        "lines": [],
    }
    rec.update(kw)
    return rec


def date_of(value: Any) -> str | None:
    moment = parse_time(value)
    return None if moment is None else moment.date().isoformat()


# (webCRM field, webshop field, a new webCRM value, the webshop value it becomes,
#  a new webshop value, the webCRM value it becomes (compared through ``crm_view``))
ROWS: list[tuple[str, str, Any, Any, Any, Any]] = [
    ("OpportunityNumber", "order_number", "O-7", "O-7", "W-77", "W-77"),
    ("OpportunityCurrencyName", "currency", "EUR", "EUR", "SEK", "SEK"),
    ("OpportunityOrderDate", "order_date", "2026-06-30T00:00:00Z", "2026-06-30", "2026-07-15", "2026-07-15"),
    ("OpportunityDescription", "notes", "Ring før levering", "Ring før levering", "Lieferung Montag", "Lieferung Montag"),
    ("OpportunityDiscount", "discount_percent", 7.5, "7.5", "10", 10.0),
]  # fmt: skip


def crm_view(field: str, value: Any) -> Any:
    return date_of(value) if field == "OpportunityOrderDate" else value


@pytest.fixture
def customer_linked(env: Env) -> tuple[Env, int, str]:
    org_id = env.crm_create("Organisation", org())
    env.sync()
    link = env.link(C, webcrm=org_id)
    assert link is not None
    return env, org_id, link.webshop_id


@pytest.fixture
def linked(customer_linked: tuple[Env, int, str]) -> tuple[Env, int, str]:
    env, org_id, _ = customer_linked
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    env.sync()
    link = env.link(ORD, webcrm=opp_id)
    assert link is not None
    return env, opp_id, link.webshop_id


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_webcrm_edit_flows_to_webshop(linked: tuple[Env, int, str], row: tuple[Any, ...]) -> None:
    env, opp_id, shop_id = linked
    field, path, crm_value, shop_expected, _, _ = row
    env.crm_update("Opportunity", opp_id, **{field: crm_value})
    report = env.sync()
    assert report.stats[ORD].updated_in_webshop == 1
    assert report.stats[ORD].updates_to_webshop == 1
    assert env.shop_get("orders", shop_id)[path] == shop_expected
    assert env.sync().writes == 0


@pytest.mark.parametrize("row", ROWS, ids=[r[1] for r in ROWS])
def test_webshop_edit_flows_to_webcrm(linked: tuple[Env, int, str], row: tuple[Any, ...]) -> None:
    env, opp_id, shop_id = linked
    field, path, _, _, shop_value, crm_expected = row
    env.shop_update("orders", shop_id, **{path: shop_value})
    report = env.sync()
    assert report.stats[ORD].updated_in_webcrm == 1
    assert report.stats[ORD].updates_to_webcrm == 1
    rec = env.crm_get("Opportunity", opp_id)
    assert crm_view(field, rec[field]) == crm_expected
    assert rec["OpportunityErpStatus"] == "Synchronized"
    assert env.sync().writes == 0


def test_new_opportunity_creates_order_with_every_field(
    customer_linked: tuple[Env, int, str],
) -> None:
    env, org_id, customer_id = customer_linked
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityPercent=100))
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1
    assert report.stats[ORD].updates_to_webshop == 1
    shop_id = env.link(ORD, webcrm=opp_id).webshop_id
    shop = env.shop_get("orders", shop_id)
    assert shop["order_number"] == "O-1001"
    assert shop["customer_id"] == customer_id
    assert shop["currency"] == "DKK"
    assert shop["order_date"] == "2026-03-02"
    assert shop["notes"] == "Levering fredag før kl. 12"
    assert shop["discount_percent"] == "5"
    assert shop["status"] == "confirmed"
    rec = env.crm_get("Opportunity", opp_id)
    assert rec["OpportunityErpId"] == shop_id  # ← the webshop id
    assert rec["OpportunityErpStatus"] == "Synchronized"
    assert parse_time(rec["OpportunityErpSyncDateTime"]) is not None
    assert rec["OpportunityOrderValue"] == 0.0  # ← total_excl_vat of an order without lines
    assert env.sync().writes == 0


def test_new_order_creates_opportunity_with_every_field(
    customer_linked: tuple[Env, int, str],
) -> None:
    env, org_id, customer_id = customer_linked
    created = env.shop_create(
        "orders", order(customer_id, status="confirmed", discount_percent="2.5")
    )
    report = env.sync()
    assert report.stats[ORD].created_in_webcrm == 1
    assert report.stats[ORD].updates_to_webcrm == 1
    link = env.link(ORD, webshop=created["id"])
    rec = env.crm_get("Opportunity", link.webcrm_id)
    assert rec["OpportunityNumber"] == "W-2001"
    assert rec["OpportunityOrganisationId"] == org_id
    assert rec["OpportunityCurrencyName"] == "EUR"
    assert date_of(rec["OpportunityOrderDate"]) == "2026-04-01"
    assert rec["OpportunityDescription"] == "Bitte klingeln"
    assert rec["OpportunityDiscount"] == 2.5
    assert rec["OpportunityPercent"] == 100
    assert rec["OpportunityErpId"] == created["id"]
    assert rec["OpportunityErpStatus"] == "Synchronized"
    assert parse_time(rec["OpportunityErpSyncDateTime"]) is not None
    assert env.shop_get("orders", created["id"])["status"] == "confirmed"
    assert env.sync().writes == 0


def test_opportunity_without_number_gets_one_from_the_pattern(
    customer_linked: tuple[Env, int, str],
) -> None:
    env, org_id, _ = customer_linked
    env.reconfigure(mapping=MappingConfig(order_number_pattern="SO-{id:05d}"))
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber=None))
    env.sync()
    expected = f"SO-{opp_id:05d}"
    assert env.crm_get("Opportunity", opp_id)["OpportunityNumber"] == expected  # written back
    assert (
        env.shop_get("orders", env.link(ORD, webcrm=opp_id).webshop_id)["order_number"] == expected
    )
    assert env.sync().writes == 0


def test_merge_by_order_number(customer_linked: tuple[Env, int, str]) -> None:
    env, org_id, customer_id = customer_linked
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="M-500"))
    shop = env.shop_create("orders", order(customer_id, order_number="M-500"))
    report = env.sync()
    assert report.stats[ORD].linked_by_merge == 1
    assert report.stats[ORD].created_in_webshop == 0 and report.stats[ORD].created_in_webcrm == 0
    assert env.link(ORD, webcrm=opp_id).webshop_id == shop["id"]
    assert len(env.shop_all("orders")) == 1 and len(env.crm_all("Opportunity")) == 1
    assert env.sync().writes == 0


def test_customer_reference_translates_through_links(env: Env) -> None:
    org_a = env.crm_create("Organisation", org())
    org_b = env.crm_create("Organisation", org("Anden Kunde A/S", OrganisationVatNumber="DK11111111",
                                               OrganisationWww="www.anden.dk"))  # fmt: skip
    opp_id = env.crm_create("Opportunity", opportunity(org_a))
    env.sync()
    cust_a = env.link(C, webcrm=org_a).webshop_id
    cust_b = env.link(C, webcrm=org_b).webshop_id
    shop_id = env.link(ORD, webcrm=opp_id).webshop_id
    assert env.shop_get("orders", shop_id)["customer_id"] == cust_a
    env.crm_update("Opportunity", opp_id, OpportunityOrganisationId=org_b)
    env.sync()
    assert env.shop_get("orders", shop_id)["customer_id"] == cust_b
    env.shop_update("orders", shop_id, customer_id=cust_a)
    env.sync()
    assert env.crm_get("Opportunity", opp_id)["OpportunityOrganisationId"] == org_a
    assert env.sync().writes == 0


def test_order_waits_until_its_customer_is_linked(env: Env) -> None:
    off = DatatypeConfig(to_webshop=ShareConfig(enabled=False))
    env.reconfigure(customers=off)
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    report = env.sync()
    assert report.stats[ORD].waiting == 1 and report.stats[ORD].created_in_webshop == 0
    with env.inst.session() as s:
        waiting = repo.waiting(s, ORD.value)
        assert [w.record_id for w in waiting] == [str(opp_id)]
        assert waiting[0].waiting_reason
    assert env.shop_all("orders") == []
    assert env.sync().stats[ORD].waiting == 1  # still waiting, not dropped
    env.reconfigure(customers=DatatypeConfig())
    env.crm_update("Organisation", org_id, OrganisationCity="Aarhus N")  # the org is read again
    report = env.sync()
    assert report.stats[C].created_in_webshop == 1
    assert report.stats[ORD].created_in_webshop == 1 and report.stats[ORD].waiting == 0
    shop = env.shop_get("orders", env.link(ORD, webcrm=opp_id).webshop_id)
    assert shop["customer_id"] == env.link(C, webcrm=org_id).webshop_id
    with env.inst.session() as s:
        assert repo.waiting(s) == []
    assert env.sync().writes == 0


@pytest.mark.parametrize(
    ("percent", "lost", "status"),
    [
        (100, None, "confirmed"),
        (50, "2026-05-01T00:00:00Z", "cancelled"),
        (100, "2026-05-01T00:00:00Z", "cancelled"),
        (30, None, "pending"),
    ],
)
def test_status_from_webcrm_by_default_table(
    linked: tuple[Env, int, str], percent: int, lost: str | None, status: str
) -> None:
    env, opp_id, shop_id = linked
    env.crm_update("Opportunity", opp_id, OpportunityPercent=percent, OpportunityLostDate=lost)
    env.sync()
    assert env.shop_get("orders", shop_id)["status"] == status
    assert env.sync().writes == 0


@pytest.mark.parametrize("status", ["confirmed", "completed"])
def test_won_status_from_webshop_sets_percent_and_order_date(
    customer_linked: tuple[Env, int, str], status: str
) -> None:
    env, org_id, _ = customer_linked
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityOrderDate=None))
    env.sync()
    shop_id = env.link(ORD, webcrm=opp_id).webshop_id
    env.shop_update("orders", shop_id, status=status)
    env.sync()
    rec = env.crm_get("Opportunity", opp_id)
    assert rec["OpportunityPercent"] == 100
    assert date_of(rec["OpportunityOrderDate"]) is not None
    assert date_of(rec["OpportunityLostDate"]) is None
    # lossy: completed and confirmed are both percent 100; neither side flips
    assert env.shop_get("orders", shop_id)["status"] == status
    assert env.sync().writes == 0


def test_completed_confirmed_no_flip_flop(linked: tuple[Env, int, str]) -> None:
    env, opp_id, shop_id = linked
    env.crm_update("Opportunity", opp_id, OpportunityPercent=100)
    env.sync()
    assert env.shop_get("orders", shop_id)["status"] == "confirmed"
    env.shop_update("orders", shop_id, status="completed")
    report = env.sync()
    assert report.writes == 0  # webCRM already says won
    assert env.shop_get("orders", shop_id)["status"] == "completed"
    assert env.crm_get("Opportunity", opp_id)["OpportunityPercent"] == 100
    # a webCRM edit of another property leaves the webshop's completed alone
    env.crm_update("Opportunity", opp_id, OpportunityDescription="Faktureret")
    env.sync()
    shop = env.shop_get("orders", shop_id)
    assert shop["status"] == "completed" and shop["notes"] == "Faktureret"
    assert env.sync().writes == 0


def test_cancelled_in_webshop_sets_lost_date(linked: tuple[Env, int, str]) -> None:
    env, opp_id, shop_id = linked
    env.shop_update("orders", shop_id, status="cancelled")
    env.sync()
    assert date_of(env.crm_get("Opportunity", opp_id)["OpportunityLostDate"]) is not None
    assert env.sync().writes == 0
    env.shop_update("orders", shop_id, status="pending")  # reopened: the lost date goes
    env.sync()
    assert date_of(env.crm_get("Opportunity", opp_id)["OpportunityLostDate"]) is None
    assert env.shop_get("orders", shop_id)["status"] == "pending"
    assert env.sync().writes == 0


def test_order_value_follows_total_excl_vat(linked: tuple[Env, int, str]) -> None:
    env, opp_id, shop_id = linked
    line = {"sku": "SKU-1", "description": "Skrivebord", "quantity": "2", "unit_price": "100.00",
            "discount_percent": "0", "vat_rate": "25", "position": 1}  # fmt: skip
    env.shop_update("orders", shop_id, lines=[line])
    env.sync()
    total = env.shop_get("orders", shop_id)["total_excl_vat"]
    assert total == "190.00"  # 2 × 100, less the order's 5 % discount
    assert env.crm_get("Opportunity", opp_id)["OpportunityOrderValue"] == 190.0
    assert env.sync().writes == 0


def test_selective_sync_only_won_opportunities(customer_linked: tuple[Env, int, str]) -> None:
    env, org_id, _ = customer_linked
    env.reconfigure(selective=SelectiveConfig(only_won_opportunities=True))
    open_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="O-1"))
    won_id = env.crm_create(
        "Opportunity", opportunity(org_id, OpportunityNumber="O-2", OpportunityPercent=100)
    )
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1
    assert env.link(ORD, webcrm=won_id) is not None
    assert env.link(ORD, webcrm=open_id) is None
    assert [o["order_number"] for o in env.shop_all("orders")] == ["O-2"]
    env.crm_update("Opportunity", open_id, OpportunityPercent=100)  # won later: now it goes
    assert env.sync().stats[ORD].created_in_webshop == 1
    assert env.link(ORD, webcrm=open_id) is not None
    assert env.sync().writes == 0


def test_deleted_order_marks_opportunity_lost_and_unlinks(linked: tuple[Env, int, str]) -> None:
    env, opp_id, shop_id = linked
    env.shop.delete("orders", shop_id)
    report = env.sync()
    assert report.stats[ORD].deleted == 1
    rec = env.crm_get("Opportunity", opp_id)
    assert date_of(rec["OpportunityLostDate"]) is not None
    assert env.link(ORD, webcrm=opp_id).state == "webshop_deleted"
    assert env.links(ORD) == []
    assert env.sync().writes == 0
    assert env.shop_all("orders") == []  # not re-created from the opportunity


def test_new_order_of_an_unknown_customer_waits_and_then_goes(env: Env) -> None:
    env.reconfigure(customers=DatatypeConfig(to_webcrm=ShareConfig(enabled=False)))
    cust = env.shop_create("customers", customer())
    created = env.shop_create("orders", order(cust["id"]))
    report = env.sync()
    assert report.stats[ORD].waiting == 1 and env.crm_all("Opportunity") == []
    env.reconfigure(customers=DatatypeConfig())
    env.shop_update("customers", cust["id"], phone="+49 30 7654321")
    report = env.sync()
    assert report.stats[ORD].created_in_webcrm == 1
    opp = env.crm_get("Opportunity", env.link(ORD, webshop=created["id"]).webcrm_id)
    assert opp["OpportunityOrganisationId"] == int(env.link(C, webshop=cust["id"]).webcrm_id)
    assert env.sync().writes == 0


def test_configured_status_table(customer_linked: tuple[Env, int, str]) -> None:
    from shopsync.config.model import StatusRule

    table = [
        StatusRule(status="cancelled", lost=True),
        StatusRule(status="completed", percent=100),
        StatusRule(status="confirmed", percent=90),
        StatusRule(status="pending"),
    ]
    env, org_id, _ = customer_linked
    env.reconfigure(mapping=MappingConfig(status_table=table))
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityPercent=90))
    env.sync()
    shop_id = env.link(ORD, webcrm=opp_id).webshop_id
    assert env.shop_get("orders", shop_id)["status"] == "confirmed"
    env.shop_update("orders", shop_id, status="completed")
    env.sync()
    assert env.crm_get("Opportunity", opp_id)["OpportunityPercent"] == 100
    env.crm_update("Opportunity", opp_id, OpportunityPercent=90)
    env.sync()
    assert env.shop_get("orders", shop_id)["status"] == "confirmed"
    # pending has no percent of its own: the lowest percent that reads back as pending
    # is written, so both sides agree (a status written to webCRM reads back as itself)
    env.shop_update("orders", shop_id, status="pending")
    env.sync()
    rec = env.crm_get("Opportunity", opp_id)
    assert rec["OpportunityPercent"] == 0 and date_of(rec["OpportunityLostDate"]) is None
    assert env.shop_get("orders", shop_id)["status"] == "pending"
    assert env.sync().writes == 0


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_new_order_status_becomes_percent_and_dates(
    customer_linked: tuple[Env, int, str], status: str
) -> None:
    env, _org_id, customer_id = customer_linked
    created = env.shop_create("orders", order(customer_id, status=status, order_date=None))
    env.sync()
    rec = env.crm_get("Opportunity", env.link(ORD, webshop=created["id"]).webcrm_id)
    if status == "completed":
        assert rec["OpportunityPercent"] == 100
        assert date_of(rec["OpportunityOrderDate"]) is not None  # won → an order date
        assert date_of(rec["OpportunityLostDate"]) is None
    else:
        assert date_of(rec["OpportunityLostDate"]) is not None
    assert env.shop_get("orders", created["id"])["status"] == status
    assert env.sync().writes == 0


def test_order_refused_for_bad_data_is_put_aside_with_its_lines_and_retried(
    customer_linked: tuple[Env, int, str],
) -> None:
    env, org_id, _ = customer_linked
    bad = env.crm_create(
        "Opportunity",
        opportunity(org_id, OpportunityNumber="B-1", OpportunityCurrencyName="Monopoly"),
    )
    line = env.crm_create(
        "QuotationLine",
        {"QuotationLineOpportunityId": bad, "QuotationLineData1": "SKU-1",
         "QuotationLineQuantity": 1.0, "QuotationLinePrice": 10.0, "QuotationLineSortOrder": 1},
    )  # fmt: skip
    good = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="G-1"))
    report = env.sync()
    assert report.stats[ORD].put_aside == 1 and report.stats[ORD].created_in_webshop == 1
    assert env.link(ORD, webcrm=good) is not None and env.link(ORD, webcrm=bad) is None
    with env.inst.session() as s:
        (entry,) = repo.all_put_aside(s)
    assert entry.record_id == str(bad) and "Monopoly" in entry.reason
    assert "OpportunityCurrencyName" in entry.reason or "currency" in entry.reason
    assert env.sync().stats[ORD].put_aside == 0
    env.crm_update("Opportunity", bad, OpportunityCurrencyName="NOK")
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1
    shop = env.shop_get("orders", env.link(ORD, webcrm=bad).webshop_id)
    assert shop["currency"] == "NOK"
    assert [x["sku"] for x in shop["lines"]] == ["SKU-1"]
    assert env.link(Datatype.order_lines, webcrm=line).webshop_id == shop["lines"][0]["id"]
    assert env.sync().writes == 0


def test_deleted_order_marks_opportunity_lost_as_mark_lost_says(
    linked: tuple[Env, int, str],
) -> None:
    """The engine's delete path and ``mapping.orders.mark_lost`` are one implementation:
    the opportunity gets a lost date and percent 0."""
    env, opp_id, shop_id = linked
    env.crm_update("Opportunity", opp_id, OpportunityPercent=60)
    env.sync()
    env.shop.delete("orders", shop_id)
    env.sync()
    rec = env.crm_get("Opportunity", opp_id)
    assert rec["OpportunityPercent"] == 0
    assert date_of(rec["OpportunityLostDate"]) is not None
