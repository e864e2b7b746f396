"""The rules for every link (dataflow.md rules 1–9) and ``--dry-run``, end to end over
real HTTP against both servers, with a real state database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shopsync.config.model import Datatype, DatatypeConfig, MappingConfig, ShareConfig
from shopsync.engine.streams import parse_time
from shopsync.store import repo
from shopsync.sync_cli import requeue_put_aside
from tests.engine.conftest import Env, crm_product, customer, org, shop_product
from tests.engine.test_lines import qline, sline
from tests.engine.test_orders import opportunity, order

C, P, ORD, L = Datatype.customers, Datatype.products, Datatype.orders, Datatype.order_lines


def put_aside(env: Env) -> list[Any]:
    with env.inst.session() as s:
        return list(repo.all_put_aside(s))


def update_counts(env: Env) -> dict[tuple[str, str], int]:
    with env.inst.session() as s:
        return repo.update_counts(s)


# ------------------------------------------------------------------------ rule 1
def test_rule1_product_link_survives_a_sku_change(env: Env) -> None:
    product_id = env.crm_create("Product", crm_product("SKU-1"))
    env.sync()
    shop_id = env.link(P, webcrm=product_id).webshop_id
    env.crm_update("Product", product_id, ProductCustom1="SKU-1-NEW")
    env.sync()
    assert env.shop_get("products", shop_id)["sku"] == "SKU-1-NEW"
    env.shop_update("products", shop_id, sku="SKU-1-NEWER", name="Nyt navn")
    env.sync()
    rec = env.crm_get("Product", product_id)
    assert rec["ProductCustom1"] == "SKU-1-NEWER" and rec["ProductCustom2"] == "Nyt navn"
    assert len(env.crm_all("Product")) == 1 and len(env.shop_all("products")) == 1
    assert env.link(P, webcrm=product_id).webshop_id == shop_id
    assert env.sync().writes == 0


def test_rule1_order_link_survives_an_order_number_change(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="O-1"))
    env.sync()
    shop_id = env.link(ORD, webcrm=opp_id).webshop_id
    env.shop_update("orders", shop_id, order_number="W-1")
    env.sync()
    env.crm_update("Opportunity", opp_id, OpportunityNumber="O-2", OpportunityDescription="x")
    env.sync()
    assert env.shop_get("orders", shop_id)["order_number"] == "O-2"
    assert env.shop_get("orders", shop_id)["notes"] == "x"
    assert len(env.crm_all("Opportunity")) == 1 and len(env.shop_all("orders")) == 1
    assert env.sync().writes == 0


# ------------------------------------------------------------------------ rule 2
def test_rule2_onboarding_merge_with_both_sides_populated(env: Env) -> None:
    # webCRM: two organisations, two products, one opportunity
    org_a = env.crm_create("Organisation", org())
    org_b = env.crm_create("Organisation", org("Kun i CRM ApS", OrganisationVatNumber="DK55555555",
                                               OrganisationWww=None, OrganisationPostCode="5000"))  # fmt: skip
    p_same = env.crm_create("Product", crm_product("SKU-1", ProductListPrice=None))
    p_crm = env.crm_create("Product", crm_product("SKU-CRM"))
    opp = env.crm_create("Opportunity", opportunity(org_a, OpportunityNumber="N-1",
                                                    OpportunityDescription=None))  # fmt: skip
    # webshop: the same customer (by VAT), one more; the same product (by sku), one more;
    # the same order (by number)
    c_same = env.shop_create("customers", customer("Nørre Æble ApS", vat_number="DK12345678",
                                                   website=None, phone=None,
                                                   billing_address={"country": "DK"}))  # fmt: skip
    c_shop = env.shop_create("customers", customer())
    s_same = env.shop_create("products", shop_product("SKU-1", description=None))
    s_shop = env.shop_create("products", shop_product("SKU-SHOP"))
    o_same = env.shop_create("orders", order(c_same["id"], order_number="N-1", notes="Fra shoppen"))
    report = env.sync()
    assert report.stats[C].linked_by_merge == 1
    assert report.stats[C].created_in_webshop == 1 and report.stats[C].created_in_webcrm == 1
    assert report.stats[P].linked_by_merge == 1
    assert report.stats[P].created_in_webshop == 1 and report.stats[P].created_in_webcrm == 1
    assert report.stats[ORD].linked_by_merge == 1
    assert report.stats[ORD].created_in_webshop == 0 and report.stats[ORD].created_in_webcrm == 0
    assert len(env.crm_all("Organisation")) == 3 and len(env.shop_all("customers")) == 3
    assert len(env.crm_all("Product")) == 3 and len(env.shop_all("products")) == 3
    assert len(env.crm_all("Opportunity")) == 1 and len(env.shop_all("orders")) == 1
    assert env.link(C, webcrm=org_a).webshop_id == c_same["id"]
    assert env.link(C, webshop=c_shop["id"]) is not None
    assert env.link(C, webcrm=org_b) is not None
    assert env.link(P, webcrm=p_same).webshop_id == s_same["id"]
    assert env.link(P, webcrm=p_crm) is not None and env.link(P, webshop=s_shop["id"]) is not None
    assert env.link(ORD, webcrm=opp).webshop_id == o_same["id"]
    # an empty value never overwrites: each side's value fills the other's gap
    assert env.shop_get("customers", c_same["id"])["phone"] == "+45 86 12 34 56"
    assert env.crm_get("Organisation", org_a)["OrganisationTelephone"] == "+45 86 12 34 56"
    assert env.shop_get("products", s_same["id"])["description"] == "Massivt egetræ"
    assert env.crm_get("Product", p_same)["ProductMemo"] == "Massivt egetræ"
    assert env.shop_get("products", s_same["id"])["list_price"] == "449.00"
    assert env.crm_get("Product", p_same)["ProductListPrice"] == 449.0
    assert env.crm_get("Opportunity", opp)["OpportunityDescription"] == "Fra shoppen"
    assert env.shop_get("orders", o_same["id"])["notes"] == "Fra shoppen"
    assert env.sync().writes == 0


def test_rule2_merge_with_a_second_state_database_links_instead_of_duplicating(env: Env) -> None:
    """Onboarding again (a new state database) over already synced systems."""
    org_id = env.crm_create("Organisation", org())
    product_id = env.crm_create("Product", crm_product())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp_id))
    env.sync()
    env.fresh_state()
    report = env.sync()
    assert report.stats[C].linked_by_merge == 1
    assert report.stats[P].linked_by_merge == 1
    assert report.stats[ORD].linked_by_merge == 1
    assert sum(s.created_in_webshop + s.created_in_webcrm for s in report.stats.values()) == 0
    assert len(env.shop_all("customers")) == 1 and len(env.shop_all("products")) == 1
    assert len(env.shop_all("orders")) == 1
    assert len(env.shop_all("orders")[0]["lines"]) == 1
    assert len(env.crm.quotation_lines_of(opp_id)) == 1
    assert env.link(P, webcrm=product_id) is not None
    assert env.sync().writes == 0


# ------------------------------------------------------------------------ rule 3
def test_rule3_different_properties_edited_on_each_side_both_survive(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    product_id = env.crm_create("Product", crm_product())
    env.sync()
    cust_id = env.link(C, webcrm=org_id).webshop_id
    shop_pid = env.link(P, webcrm=product_id).webshop_id
    env.crm_update("Organisation", org_id, OrganisationName="Navn fra CRM")
    env.shop_update("customers", cust_id, phone="+45 70 00 00 00")
    env.crm_update("Product", product_id, ProductPrice=999.0)
    env.shop_update("products", shop_pid, description="Fra shoppen")
    report = env.sync()
    assert report.stats[C].conflicts == 0 and report.stats[P].conflicts == 0
    rec, shop = env.crm_get("Organisation", org_id), env.shop_get("customers", cust_id)
    assert rec["OrganisationName"] == shop["name"] == "Navn fra CRM"
    assert rec["OrganisationTelephone"] == shop["phone"] == "+45 70 00 00 00"
    prec, pshop = env.crm_get("Product", product_id), env.shop_get("products", shop_pid)
    assert prec["ProductPrice"] == 999.0 and pshop["unit_price"] == "999.00"
    assert prec["ProductMemo"] == pshop["description"] == "Fra shoppen"
    assert env.sync().writes == 0


@pytest.mark.parametrize("last", ["webcrm", "webshop"])
def test_rule3_same_property_most_recent_edit_wins(env: Env, last: str) -> None:
    product_id = env.crm_create("Product", crm_product())
    env.sync()
    shop_pid = env.link(P, webcrm=product_id).webshop_id
    if last == "webshop":
        env.crm_update("Product", product_id, ProductCustom2="CRM navn", ProductMemo="CRM memo")
        env.shop_update("products", shop_pid, name="Shop-Name")
    else:
        env.shop_update("products", shop_pid, name="Shop-Name", cost_price="1.00")
        env.crm_update("Product", product_id, ProductCustom2="CRM navn")
    report = env.sync()
    assert report.stats[P].conflicts == 1
    winner = "Shop-Name" if last == "webshop" else "CRM navn"
    assert env.crm_get("Product", product_id)["ProductCustom2"] == winner
    assert env.shop_get("products", shop_pid)["name"] == winner
    # the other property, edited on one side only, flows as usual
    if last == "webshop":
        assert env.shop_get("products", shop_pid)["description"] == "CRM memo"
    else:
        assert env.crm_get("Product", product_id)["ProductCostPrice"] == 1.0
    assert env.sync().writes == 0


def test_rule3_both_sides_edited_to_the_same_value_is_no_conflict(env: Env) -> None:
    product_id = env.crm_create("Product", crm_product())
    env.sync()
    shop_pid = env.link(P, webcrm=product_id).webshop_id
    env.crm_update("Product", product_id, ProductPrice=10.5)
    env.shop_update("products", shop_pid, unit_price="10.50")
    report = env.sync()
    assert report.stats[P].conflicts == 0 and report.writes == 0
    assert env.sync().writes == 0


# ------------------------------------------------------------------------ rule 4
def test_rule4_a_full_world_converges_and_then_writes_nothing(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    env.crm_create("Product", crm_product())
    opp = env.crm_create("Opportunity", opportunity(org_id, OpportunityPercent=100))
    env.crm_create("QuotationLine", qline(opp))
    cust = env.shop_create("customers", customer())
    env.shop_create("products", shop_product())
    env.shop_create("orders", order(cust["id"], status="completed", lines=[sline()]))
    first = env.sync()
    assert first.writes > 0
    for _ in range(2):
        again = env.sync()
        assert again.writes == 0, again.plan
        assert sum(s.conflicts for s in again.stats.values()) == 0


def test_rule4_lossy_values_do_not_flip_flop(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    product_id = env.crm_create("Product", crm_product(ProductPrice=0.125))
    env.crm_create("Opportunity", opportunity(org_id, OpportunityPercent=100))
    env.sync()
    shop_pid = env.link(P, webcrm=product_id).webshop_id
    assert env.shop_get("products", shop_pid)["unit_price"] == "0.13"
    order_id = env.shop_all("orders")[0]["id"]
    env.shop_update("orders", order_id, status="completed")
    env.shop_update("products", shop_pid, name="Nyt navn")  # the rounded price is not touched
    env.sync()
    assert env.crm_get("Product", product_id)["ProductPrice"] == 0.125
    assert env.shop_get("orders", order_id)["status"] == "completed"
    for _ in range(2):
        assert env.sync().writes == 0


# ------------------------------------------------------------------------ rule 5
def test_rule5_deleted_webshop_customer_unlinks_and_organisation_stays(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    env.sync()
    cust_id = env.link(C, webcrm=org_id).webshop_id
    env.shop.delete("customers", cust_id)
    report = env.sync()
    assert report.stats[C].deleted == 1
    assert env.links(C) == []
    assert env.crm_get("Organisation", org_id)["OrganisationName"] == "Nørre Æble ApS"
    assert env.sync().writes == 0
    assert env.shop_all("customers") == []


# ------------------------------------------------------------------------ rule 6
def test_rule6_customers_and_products_before_orders_in_one_run(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    product_id = env.crm_create("Product", crm_product("SKU-1"))
    opp = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp, "SKU-1"))
    cust = env.shop_create("customers", customer())
    created = env.shop_create("orders", order(cust["id"], order_number="W-9", lines=[sline()]))
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1 and report.stats[ORD].created_in_webcrm == 1
    assert report.stats[ORD].waiting == 0 and report.stats[L].waiting == 0
    shop = env.shop_get("orders", env.link(ORD, webcrm=opp).webshop_id)
    assert shop["customer_id"] == env.link(C, webcrm=org_id).webshop_id
    assert shop["lines"][0]["product_id"] == env.link(P, webcrm=product_id).webshop_id
    new_opp = env.crm_get("Opportunity", env.link(ORD, webshop=created["id"]).webcrm_id)
    assert new_opp["OpportunityOrganisationId"] == int(env.link(C, webshop=cust["id"]).webcrm_id)
    with env.inst.session() as s:
        assert repo.waiting(s) == []
    assert env.sync().writes == 0


def test_rule6_waiting_record_is_retried_every_run_and_never_dropped(env: Env) -> None:
    env.reconfigure(customers=DatatypeConfig(to_webshop=ShareConfig(enabled=False)))
    org_id = env.crm_create("Organisation", org())
    opp = env.crm_create("Opportunity", opportunity(org_id))
    for attempt in (1, 2, 3):
        report = env.sync()
        assert report.stats[ORD].waiting == 1
        with env.inst.session() as s:
            (row,) = repo.waiting(s)
            assert (row.datatype, row.record_id, row.attempts) == ("orders", str(opp), attempt)
            assert "customers" in (row.waiting_reason or "") or str(org_id) in (
                row.waiting_reason or ""
            )
    env.reconfigure(customers=DatatypeConfig())
    env.crm_update("Organisation", org_id, OrganisationCity="Aarhus N")
    assert env.sync().stats[ORD].created_in_webshop == 1
    with env.inst.session() as s:
        assert repo.waiting(s) == []


# ------------------------------------------------------------------------ rule 7
def test_rule7_too_long_for_webcrm_is_put_aside_with_the_field(env: Env) -> None:
    long_www = "https://www." + "lang" * 12 + ".de"  # webCRM: OrganisationWww max 50
    bad = env.shop_create("customers", customer("Lang Web", vat_number="DE1", website=long_www))
    good = env.shop_create("customers", customer("God Kunde", vat_number="DE2", website=None))
    report = env.sync()
    assert report.stats[C].put_aside == 1 and report.stats[C].created_in_webcrm == 1
    assert env.link(C, webshop=good["id"]) is not None and env.link(C, webshop=bad["id"]) is None
    (entry,) = put_aside(env)
    assert (entry.datatype, entry.system, entry.record_id) == ("customers", "webshop", bad["id"])
    assert "OrganisationWww" in entry.reason
    # unchanged: not retried
    again = env.sync()
    assert again.stats[C].put_aside == 0 and again.writes == 0
    assert put_aside(env)[0].attempts == 1
    # changed: retried, and it goes through
    env.shop_update("customers", bad["id"], website="https://lang.de")
    assert env.sync().stats[C].created_in_webcrm == 1
    assert put_aside(env) == []
    assert env.sync().writes == 0


def test_rule7_unknown_country_is_put_aside_and_does_not_block(env: Env) -> None:
    bad = env.crm_create("Organisation", org("Atlantis A/S", OrganisationCountry="Atlantis",
                                             OrganisationVatNumber="DK1", OrganisationWww=None))  # fmt: skip
    good = env.crm_create("Organisation", org("Godt Firma", OrganisationVatNumber="DK2",
                                              OrganisationWww=None))  # fmt: skip
    report = env.sync()
    assert report.stats[C].put_aside == 1 and report.stats[C].created_in_webshop == 1
    assert env.link(C, webcrm=good) is not None and env.link(C, webcrm=bad) is None
    (entry,) = put_aside(env)
    assert entry.record_id == str(bad) and entry.system == "webcrm"
    assert "OrganisationCountry" in entry.reason or "country" in entry.reason
    assert "Atlantis" in entry.reason
    assert env.sync().stats[C].put_aside == 0
    env.crm_update("Organisation", bad, OrganisationCountry="Norge")
    assert env.sync().stats[C].created_in_webshop == 1
    shop = env.shop_get("customers", env.link(C, webcrm=bad).webshop_id)
    assert shop["billing_address"]["country"] == "NO"
    assert put_aside(env) == []


def test_rule7_negative_price_refused_by_the_webshop(env: Env) -> None:
    bad = env.crm_create("Product", crm_product("SKU-NEG", ProductPrice=-5.0))
    good = env.crm_create("Product", crm_product("SKU-OK"))
    report = env.sync()
    assert report.stats[P].put_aside == 1 and report.stats[P].created_in_webshop == 1
    assert env.link(P, webcrm=good) is not None and env.link(P, webcrm=bad) is None
    (entry,) = put_aside(env)
    assert entry.record_id == str(bad) and "unit_price" in entry.reason
    assert env.sync().stats[P].put_aside == 0  # unchanged: not sent again
    assert len(env.shop_all("products")) == 1
    env.crm_update("Product", bad, ProductPrice=5.0)
    assert env.sync().stats[P].created_in_webshop == 1
    assert put_aside(env) == []
    assert env.sync().writes == 0


def test_rule7_refused_update_of_a_linked_record_is_put_aside(env: Env) -> None:
    product_id = env.crm_create("Product", crm_product())
    other = env.crm_create("Product", crm_product("SKU-2"))
    env.sync()
    env.crm_update("Product", product_id, ProductPrice=-1.0)
    env.crm_update("Product", other, ProductPrice=77.0)
    report = env.sync()
    assert report.stats[P].put_aside == 1 and report.stats[P].updated_in_webshop == 1
    assert env.shop_get("products", env.link(P, webcrm=other).webshop_id)["unit_price"] == "77.00"
    assert "unit_price" in put_aside(env)[0].reason
    env.crm_update("Product", product_id, ProductPrice=2.0)
    env.sync()
    assert env.shop_get("products", env.link(P, webcrm=product_id).webshop_id)["unit_price"] == (
        "2.00"
    )
    assert put_aside(env) == []
    assert env.sync().writes == 0


def test_rule7_retry_command_requeues_after_the_cause_is_fixed(env: Env) -> None:
    """A refusal caused elsewhere (a sku taken by another product): the unchanged record
    stays put aside until ``shopsync retry`` re-reads and re-queues it."""
    first = env.crm_create("Product", crm_product("SKU-X"))
    env.sync()
    second = env.crm_create("Product", crm_product("SKU-X", ProductCustom2="Dublet"))
    report = env.sync()
    assert report.stats[P].put_aside == 1
    (entry,) = put_aside(env)
    assert entry.record_id == str(second) and "sku" in entry.reason
    env.crm_update("Product", first, ProductCustom1="SKU-Y")  # the operator frees the sku
    report = env.sync()
    assert report.stats[P].updated_in_webshop == 1 and report.stats[P].created_in_webshop == 0
    assert len(put_aside(env)) == 1  # unchanged: not retried by a plain sync
    assert requeue_put_aside(env.inst, None) == 1
    report = env.sync()
    assert report.stats[P].created_in_webshop == 1
    assert env.link(P, webcrm=second) is not None
    assert sorted(p["sku"] for p in env.shop_all("products")) == ["SKU-X", "SKU-Y"]
    assert put_aside(env) == []
    assert env.sync().writes == 0


def test_rule7_retry_after_a_configuration_fix(env: Env) -> None:
    env.reconfigure(mapping=MappingConfig(vat_codes={"S": Decimal("25")}))
    product_id = env.crm_create("Product", crm_product(ProductVatCode="R"))
    assert env.sync().stats[P].put_aside == 1
    (entry,) = put_aside(env)
    assert "ProductVatCode" in entry.reason and "'R'" in entry.reason
    env.reconfigure(mapping=MappingConfig(vat_codes={"S": Decimal("25"), "R": Decimal("12.5")}))
    assert requeue_put_aside(env.inst, P) == 1
    report = env.sync()
    assert report.stats[P].created_in_webshop == 1
    assert env.shop_get("products", env.link(P, webcrm=product_id).webshop_id)["vat_rate"] == "12.5"
    assert put_aside(env) == []
    assert env.sync().writes == 0


# ------------------------------------------------------------------------ rule 8
def test_rule8_share_disabled_into_the_webshop(env: Env) -> None:
    env.reconfigure(products=DatatypeConfig(to_webshop=ShareConfig(enabled=False)))
    crm_only = env.crm_create("Product", crm_product("SKU-C"))
    shop = env.shop_create("products", shop_product("SKU-S"))
    report = env.sync()
    assert report.stats[P].created_in_webshop == 0 and report.stats[P].created_in_webcrm == 1
    assert [p["sku"] for p in env.shop_all("products")] == ["SKU-S"]
    assert env.link(P, webcrm=crm_only) is None
    crm_id = env.link(P, webshop=shop["id"]).webcrm_id
    env.crm_update("Product", crm_id, ProductCustom2="Ændret i CRM")
    env.shop_update("products", shop["id"], description="Changed in shop")
    report = env.sync()
    assert report.stats[P].updates_to_webshop == 0
    assert env.shop_get("products", shop["id"])["name"] == "Bürostuhl"  # nothing written there
    assert env.crm_get("Product", crm_id)["ProductMemo"] == "Changed in shop"


def test_rule8_share_disabled_into_webcrm(env: Env) -> None:
    env.reconfigure(orders=DatatypeConfig(to_webcrm=ShareConfig(enabled=False)))
    org_id = env.crm_create("Organisation", org())
    opp = env.crm_create("Opportunity", opportunity(org_id))
    env.sync()
    cust_id = env.link(C, webcrm=org_id).webshop_id
    env.shop_create("orders", order(cust_id, order_number="W-5"))
    shop_id = env.link(ORD, webcrm=opp).webshop_id
    env.shop_update("orders", shop_id, notes="Nur im Shop")
    report = env.sync()
    assert report.stats[ORD].updates_to_webcrm == 0 and report.stats[ORD].created_in_webcrm == 0
    assert len(env.crm_all("Opportunity")) == 1
    assert env.crm_get("Opportunity", opp)["OpportunityDescription"] == "Levering fredag før kl. 12"
    env.crm_update("Opportunity", opp, OpportunityDescription="Fra CRM")
    env.sync()
    assert env.shop_get("orders", shop_id)["notes"] == "Fra CRM"


def test_rule8_full_sync_off_only_newer_records(env: Env) -> None:
    off = ShareConfig(full_sync=False)
    env.reconfigure(products=DatatypeConfig(to_webshop=off, to_webcrm=off))
    old_crm = env.crm_create("Product", crm_product("SKU-OLD-C"))
    old_shop = env.shop_create("products", shop_product("SKU-OLD-S"))
    report = env.sync()  # onboarding
    assert report.stats[P].created_in_webshop == 0 and report.stats[P].created_in_webcrm == 0
    with env.inst.session() as s:
        onboarded = parse_time(repo.get_meta(s, "onboarded_at"))
    assert onboarded is not None
    assert parse_time(old_shop["created_at"]) < onboarded  # type: ignore[operator]
    new_crm = env.crm_create("Product", crm_product("SKU-NEW-C"))
    new_shop = env.shop_create("products", shop_product("SKU-NEW-S"))
    env.crm_update("Product", old_crm, ProductMemo="edited after onboarding")
    report = env.sync()
    assert report.stats[P].created_in_webshop == 1 and report.stats[P].created_in_webcrm == 1
    assert (
        env.link(P, webcrm=new_crm) is not None and env.link(P, webshop=new_shop["id"]) is not None
    )
    assert env.link(P, webcrm=old_crm) is None and env.link(P, webshop=old_shop["id"]) is None
    assert sorted(p["sku"] for p in env.shop_all("products")) == [
        "SKU-NEW-C", "SKU-NEW-S", "SKU-OLD-S",
    ]  # fmt: skip
    with env.inst.session() as s:
        assert repo.get_meta(s, "onboarded_at") is not None
        assert parse_time(repo.get_meta(s, "onboarded_at")) == onboarded  # set once
    assert env.sync().writes == 0


# ------------------------------------------------------------------------ rule 9
def test_rule9_update_counts_per_datatype_and_direction(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    product_id = env.crm_create("Product", crm_product())
    report = env.sync()
    assert report.stats[C].updates_to_webshop == 1  # a create with all its properties: one
    assert report.stats[P].updates_to_webshop == 1
    cust_id = env.link(C, webcrm=org_id).webshop_id
    env.crm_update("Organisation", org_id, OrganisationName="Nyt Navn", OrganisationCity="Odense",
                   OrganisationPostCode="5000", OrganisationTelephone="+45 1")  # fmt: skip
    report = env.sync()
    assert report.stats[C].updates_to_webshop == 1  # four properties written together: one
    assert report.stats[C].updates_to_webcrm == 0
    env.shop_update("customers", cust_id, phone="+45 2", website="https://nyt.dk")
    env.shop_update(
        "products", env.link(P, webcrm=product_id).webshop_id, name="X", description="Y"
    )
    report = env.sync()
    assert report.stats[C].updates_to_webcrm == 1 and report.stats[C].updates_to_webshop == 0
    assert report.stats[P].updates_to_webcrm == 1 and report.stats[P].updates_to_webshop == 0
    assert update_counts(env) == {
        ("customers", "to_webshop"): 2,
        ("customers", "to_webcrm"): 1,
        ("products", "to_webshop"): 1,
        ("products", "to_webcrm"): 1,
    }
    env.sync()
    assert sum(update_counts(env).values()) == 5  # a converged run adds nothing


def test_rule9_counts_for_orders_and_lines(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    opp = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp))
    env.crm_create("QuotationLine", qline(opp, "SKU-2", QuotationLineSortOrder=2))
    report = env.sync()
    assert report.stats[ORD].updates_to_webshop == 1
    assert report.stats[L].updates_to_webshop == 2  # one per line created
    counts = update_counts(env)
    assert counts[("orders", "to_webshop")] == 1 and counts[("order_lines", "to_webshop")] == 2


# ------------------------------------------------------------------------ dry run
def test_dry_run_writes_nothing_but_reports_the_plan(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    env.crm_create("Product", crm_product())
    opp = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp))
    env.shop_create("customers", customer())
    crm_before = {e: env.crm_all(e) for e in ("Organisation", "Product", "Opportunity")}
    report = env.sync(dry_run=True)
    assert report.dry_run
    actions = {(p.datatype, p.action, p.target) for p in report.plan}
    assert ("customers", "create", "webshop") in actions
    assert ("customers", "create", "webcrm") in actions
    assert ("products", "create", "webshop") in actions
    # nothing written to either system
    assert {e: env.crm_all(e) for e in crm_before} == crm_before
    assert len(env.shop_all("customers")) == 1
    assert env.shop_all("products") == [] and env.shop_all("orders") == []
    # nor to the state
    assert env.links(C) == [] and env.links(P) == [] and env.links(ORD) == []
    assert update_counts(env) == {}
    with env.inst.session() as s:
        assert repo.get_meta(s, "onboarded_at") is None
        assert repo.all_put_aside(s) == []
    # the real run then does what the plan said
    real = env.sync()
    assert real.stats[C].created_in_webshop == 1 and real.stats[C].created_in_webcrm == 1
    assert real.stats[P].created_in_webshop == 1 and real.stats[ORD].created_in_webshop == 1
    assert env.sync().writes == 0


def test_dry_run_after_convergence_plans_only_the_pending_change(env: Env) -> None:
    product_id = env.crm_create("Product", crm_product())
    env.sync()
    shop_pid = env.link(P, webcrm=product_id).webshop_id
    env.crm_update("Product", product_id, ProductPrice=1.0)
    report = env.sync(dry_run=True)
    updates = [p for p in report.plan if p.action == "update"]
    assert [(p.datatype, p.target) for p in updates] == [("products", "webshop")]
    assert "unit_price" in updates[0].detail
    assert env.shop_get("products", shop_pid)["unit_price"] == "1249.50"
    report = env.sync()
    assert report.stats[P].updated_in_webshop == 1
    assert env.shop_get("products", shop_pid)["unit_price"] == "1.00"


STATE_TABLES = ("links", "snapshots", "inbox", "merge_keys", "put_aside", "intents",
                "cursors", "update_counts", "runs", "meta")  # fmt: skip


def state_dump(env: Env) -> dict[str, list[tuple[Any, ...]]]:
    from sqlalchemy import text

    with env.inst.session() as s:
        return {
            t: sorted((tuple(r) for r in s.execute(text(f"SELECT * FROM {t}"))), key=repr)
            for t in STATE_TABLES
        }


def world_dump(env: Env) -> dict[str, Any]:
    crm = {e: env.crm_all(e) for e in ("Organisation", "Product", "Opportunity", "QuotationLine")}
    shop = {c: env.shop_all(c, include_deleted=True) for c in ("customers", "products", "orders")}
    return {**crm, **shop}


def test_dry_run_over_a_synced_world_changes_nothing_anywhere(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    product_id = env.crm_create("Product", crm_product())
    opp = env.crm_create("Opportunity", opportunity(org_id))
    line_id = env.crm_create("QuotationLine", qline(opp))
    doomed = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="D-1"))
    env.sync()
    # changes of every kind on both sides
    env.crm_update("Product", product_id, ProductPrice=1.0)
    env.crm.delete("QuotationLine", line_id)
    env.crm_create("QuotationLine", qline(opp, "SKU-2", QuotationLineSortOrder=2))
    env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber=None))
    env.shop.delete("orders", env.link(ORD, webcrm=doomed).webshop_id)
    env.shop_create("products", shop_product("SKU-NEW"))
    env.crm_create("Product", crm_product("SKU-NEG", ProductPrice=-3.0))  # would be put aside
    world, state = world_dump(env), state_dump(env)
    report = env.sync(dry_run=True, sweep=True)  # the sweep sees the webCRM line delete
    assert world_dump(env) == world
    assert state_dump(env) == state
    planned = {(p.datatype, p.action, p.target) for p in report.plan}
    assert ("products", "update", "webshop") in planned
    assert ("products", "create", "webcrm") in planned
    assert ("orders", "create", "webshop") in planned
    assert ("order_lines", "delete", "webshop") in planned
    assert ("order_lines", "create", "webshop") in planned
    assert ("orders", "mark lost", "webcrm") in planned
    # the same run for real does the work
    real = env.sync(sweep=True)
    assert real.stats[P].created_in_webcrm == 1 and real.stats[P].put_aside == 1
    assert real.stats[ORD].created_in_webshop == 1 and real.stats[ORD].deleted == 1
    assert env.sync().writes == 0
