"""Quotationline ⇄ Order line, end to end over real HTTP (dataflow.md table 4, rules 5, 6)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shopsync.config.model import Datatype, DatatypeConfig, ShareConfig, WebcrmConfig
from shopsync.store import repo
from tests.engine.conftest import Env, crm_product, customer, org, shop_product
from tests.engine.test_orders import opportunity, order

C, P, ORD, L = Datatype.customers, Datatype.products, Datatype.orders, Datatype.order_lines


def qline(opp_id: int, sku: str = "SKU-1", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "QuotationLineOpportunityId": opp_id,
        "QuotationLineData1": sku,
        "QuotationLineData2": "Skrivebord eg",
        "QuotationLineQuantity": 2.0,
        "QuotationLinePrice": 1249.5,
        "QuotationLineListPrice": 1499.0,
        "QuotationLineCostPrice": 800.0,
        "QuotationLineDiscount": 0.0,
        "QuotationLineVatPercentage": 25.0,
        "QuotationLineSortOrder": 1,
    }
    rec.update(kw)
    return rec


def sline(sku: str = "SKU-9", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "sku": sku,
        "description": "Bürostuhl",
        "quantity": "3",
        "unit_price": "399.00",
        "list_price": "449.00",
        "cost_price": "200.00",
        "discount_percent": "0",
        "vat_rate": "25",
        "position": 1,
    }
    rec.update(kw)
    return rec


# (webCRM field, webshop line field, a new webCRM value, the webshop value it becomes,
#  a new webshop value, the webCRM value it becomes)
ROWS: list[tuple[str, str, Any, Any, Any, Any]] = [
    ("QuotationLineData1", "sku", "SKU-2", "SKU-2", "SKU-8", "SKU-8"),
    ("QuotationLineData2", "description", "Spisebord bøg", "Spisebord bøg", "Stehpult", "Stehpult"),
    ("QuotationLineQuantity", "quantity", 2.5, "2.5", "4", 4.0),
    ("QuotationLinePrice", "unit_price", 99.5, "99.50", "120.00", 120.0),
    ("QuotationLineListPrice", "list_price", 150.0, "150.00", "130.25", 130.25),
    ("QuotationLineCostPrice", "cost_price", 60.1, "60.10", "55.00", 55.0),
    ("QuotationLineDiscount", "discount_percent", 10.0, "10", "12.5", 12.5),
    ("QuotationLineVatPercentage", "vat_rate", 12.5, "12.5", "6", 6.0),
    ("QuotationLineSortOrder", "position", 3, 3, 5, 5),
]  # fmt: skip


@pytest.fixture
def order_linked(env: Env) -> tuple[Env, int, int, str]:
    """An organisation and its opportunity, synced: (env, org id, opportunity id, order id)."""
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    env.sync()
    return env, org_id, opp_id, env.link(ORD, webcrm=opp_id).webshop_id


@pytest.fixture
def line_linked(env: Env) -> tuple[Env, int, str, str]:
    """A synced opportunity with one line: (env, line id, order id, webshop line id)."""
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    line_id = env.crm_create("QuotationLine", qline(opp_id))
    env.sync()
    link = env.link(L, webcrm=line_id)
    assert link is not None
    return env, line_id, env.link(ORD, webcrm=opp_id).webshop_id, link.webshop_id


def shop_line(env: Env, order_id: str, line_id: str) -> dict[str, Any]:
    lines = [x for x in env.shop_get("orders", order_id)["lines"] if x["id"] == line_id]
    assert len(lines) == 1, f"line {line_id} not in order {order_id}"
    return dict(lines[0])


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_webcrm_line_edit_flows_to_webshop(
    line_linked: tuple[Env, int, str, str], row: tuple[Any, ...]
) -> None:
    env, line_id, order_id, sid = line_linked
    field, path, crm_value, shop_expected, _, _ = row
    env.crm_update("QuotationLine", line_id, **{field: crm_value})
    report = env.sync()
    assert report.stats[L].updated_in_webshop == 1
    assert report.stats[L].updates_to_webshop == 1
    assert shop_line(env, order_id, sid)[path] == shop_expected
    assert env.sync().writes == 0


@pytest.mark.parametrize("row", ROWS, ids=[r[1] for r in ROWS])
def test_webshop_line_edit_flows_to_webcrm(
    line_linked: tuple[Env, int, str, str], row: tuple[Any, ...]
) -> None:
    env, line_id, order_id, sid = line_linked
    field, path, _, _, shop_value, crm_expected = row
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update(
        "orders", order_id, lines=[{**x, path: shop_value} if x["id"] == sid else x for x in lines]
    )
    report = env.sync()
    assert report.stats[L].updated_in_webcrm == 1
    assert report.stats[L].updates_to_webcrm == 1
    assert env.crm_get("QuotationLine", line_id)[field] == crm_expected
    assert env.sync().writes == 0


def test_order_from_opportunity_carries_its_lines_in_the_create(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    first = env.crm_create("QuotationLine", qline(opp_id, QuotationLineSortOrder=1))
    second = env.crm_create(
        "QuotationLine",
        qline(opp_id, "SKU-2", QuotationLineData2="Stol", QuotationLineQuantity=4.0,
              QuotationLinePrice=250.0, QuotationLineSortOrder=2),
    )  # fmt: skip
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1
    assert report.stats[L].created_in_webshop == 2
    order_id = env.link(ORD, webcrm=opp_id).webshop_id
    shop = env.shop_get("orders", order_id)
    assert shop["version"] == 1  # created with its lines, not patched afterwards
    assert [(x["sku"], x["quantity"], x["unit_price"], x["position"]) for x in shop["lines"]] == [
        ("SKU-1", "2", "1249.50", 1),
        ("SKU-2", "4", "250.00", 2),
    ]
    assert shop["lines"][0]["description"] == "Skrivebord eg"
    assert shop["lines"][0]["list_price"] == "1499.00"
    assert shop["lines"][0]["cost_price"] == "800.00"
    assert shop["lines"][0]["vat_rate"] == "25"
    assert env.link(L, webcrm=first).webshop_id == shop["lines"][0]["id"]
    assert env.link(L, webcrm=second).webshop_id == shop["lines"][1]["id"]
    # OpportunityOrderValue ← total_excl_vat of the lines (less the 5 % order discount)
    assert shop["total_excl_vat"] == "3324.05"
    assert env.crm_get("Opportunity", opp_id)["OpportunityOrderValue"] == 3324.05
    assert env.sync().writes == 0


def test_lines_of_a_new_webshop_order_become_quotation_lines(env: Env) -> None:
    cust = env.shop_create("customers", customer())
    created = env.shop_create(
        "orders",
        order(cust["id"], lines=[sline(), sline("SKU-10", description="Tisch", position=2,
                                               discount_percent="10", quantity="1.5")]),
    )  # fmt: skip
    report = env.sync()
    assert report.stats[ORD].created_in_webcrm == 1
    assert report.stats[L].created_in_webcrm == 2
    opp_id = int(env.link(ORD, webshop=created["id"]).webcrm_id)
    org_id = int(env.link(C, webshop=cust["id"]).webcrm_id)
    lines = sorted(env.crm.quotation_lines_of(opp_id), key=lambda r: r["QuotationLineSortOrder"])
    assert [(r["QuotationLineData1"], r["QuotationLineQuantity"]) for r in lines] == [
        ("SKU-9", 3.0),
        ("SKU-10", 1.5),
    ]
    first, second = lines
    assert first["QuotationLineData2"] == "Bürostuhl"
    assert first["QuotationLinePrice"] == 399.0
    assert first["QuotationLineListPrice"] == 449.0
    assert first["QuotationLineCostPrice"] == 200.0
    assert first["QuotationLineVatPercentage"] == 25.0
    assert second["QuotationLineDiscount"] == 10.0
    assert all(r["QuotationLineOrganisationId"] == org_id for r in lines)
    shop_ids = [x["id"] for x in created["lines"]]
    assert env.link(L, webcrm=first["QuotationLineId"]).webshop_id == shop_ids[0]
    assert env.link(L, webcrm=second["QuotationLineId"]).webshop_id == shop_ids[1]
    assert env.sync().writes == 0


def test_line_added_in_webshop_gets_the_opportunitys_organisation(
    order_linked: tuple[Env, int, int, str],
) -> None:
    env, org_id, opp_id, order_id = order_linked
    env.shop_update("orders", order_id, lines=[sline()])
    report = env.sync()
    assert report.stats[L].created_in_webcrm == 1
    (line,) = env.crm.quotation_lines_of(opp_id)
    assert line["QuotationLineOrganisationId"] == org_id
    assert line["QuotationLineData1"] == "SKU-9"
    sid = env.shop_get("orders", order_id)["lines"][0]["id"]
    assert env.link(L, webcrm=line["QuotationLineId"]).webshop_id == sid
    assert env.sync().writes == 0


def test_line_added_in_webcrm_is_added_to_the_order(
    line_linked: tuple[Env, int, str, str],
) -> None:
    env, line_id, order_id, sid = line_linked
    opp_id = env.crm_get("QuotationLine", line_id)["QuotationLineOpportunityId"]
    new_id = env.crm_create("QuotationLine", qline(opp_id, "SKU-3", QuotationLineSortOrder=2))
    report = env.sync()
    assert report.stats[L].created_in_webshop == 1
    lines = env.shop_get("orders", order_id)["lines"]
    assert [x["sku"] for x in lines] == ["SKU-1", "SKU-3"]
    assert lines[0]["id"] == sid  # the existing line keeps its id
    assert env.link(L, webcrm=new_id).webshop_id == lines[1]["id"]
    assert env.sync().writes == 0


def test_line_deleted_in_webcrm_is_removed_from_the_order(
    line_linked: tuple[Env, int, str, str],
) -> None:
    env, line_id, order_id, _sid = line_linked
    opp_id = env.crm_get("QuotationLine", line_id)["QuotationLineOpportunityId"]
    keep = env.crm_create("QuotationLine", qline(opp_id, "SKU-3", QuotationLineSortOrder=2))
    env.sync()
    env.crm.delete("QuotationLine", line_id)
    report = env.sync(sweep=True)  # webCRM reports no deletes: the sweep finds it
    assert report.stats[L].deleted == 1
    lines = env.shop_get("orders", order_id)["lines"]
    assert [x["sku"] for x in lines] == ["SKU-3"]
    assert env.link(L, webcrm=keep).webshop_id == lines[0]["id"]
    assert env.link(L, webcrm=line_id).state != "active"
    assert env.sync().writes == 0


def test_line_removed_in_webshop_is_deleted_in_webcrm(
    line_linked: tuple[Env, int, str, str],
) -> None:
    env, line_id, order_id, sid = line_linked
    opp_id = env.crm_get("QuotationLine", line_id)["QuotationLineOpportunityId"]
    keep = env.crm_create("QuotationLine", qline(opp_id, "SKU-3", QuotationLineSortOrder=2))
    env.sync()
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update("orders", order_id, lines=[x for x in lines if x["id"] != sid])
    report = env.sync()
    assert report.stats[L].deleted == 1
    assert env.crm.get("QuotationLine", line_id) is None
    assert [r["QuotationLineId"] for r in env.crm.quotation_lines_of(opp_id)] == [keep]
    assert env.link(L, webcrm=line_id).state != "active"
    assert env.sync().writes == 0


def test_product_id_is_the_webshop_product_with_the_lines_sku(env: Env) -> None:
    product_id = env.crm_create("Product", crm_product("SKU-1"))
    shop_only = env.shop_create("products", shop_product("SKU-9"))
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp_id, "SKU-1", QuotationLineSortOrder=1))
    env.crm_create("QuotationLine", qline(opp_id, "SKU-9", QuotationLineSortOrder=2))
    env.crm_create("QuotationLine", qline(opp_id, "NO-SUCH-SKU", QuotationLineSortOrder=3))
    env.sync()
    lines = env.shop_get("orders", env.link(ORD, webcrm=opp_id).webshop_id)["lines"]
    assert [x["product_id"] for x in lines] == [
        env.link(P, webcrm=product_id).webshop_id,
        shop_only["id"],
        None,
    ]
    assert env.sync().writes == 0


def test_product_id_follows_a_changed_sku(line_linked: tuple[Env, int, str, str]) -> None:
    env, line_id, order_id, sid = line_linked
    assert shop_line(env, order_id, sid)["product_id"] is None
    shop = env.shop_create("products", shop_product("SKU-7"))
    env.crm_update("QuotationLine", line_id, QuotationLineData1="SKU-7")
    env.sync()
    assert shop_line(env, order_id, sid)["product_id"] == shop["id"]
    assert env.sync().writes == 0


def test_line_of_an_opportunity_not_linked_yet_waits_then_goes(env: Env) -> None:
    env.reconfigure(customers=DatatypeConfig(to_webshop=ShareConfig(enabled=False)))
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    line_id = env.crm_create("QuotationLine", qline(opp_id))
    report = env.sync()
    assert report.stats[ORD].waiting == 1
    assert report.stats[L].waiting == 1
    with env.inst.session() as s:
        assert {(w.datatype, w.record_id) for w in repo.waiting(s)} == {
            ("orders", str(opp_id)),
            ("order_lines", str(line_id)),
        }
    assert env.shop_all("orders") == []
    env.reconfigure(customers=DatatypeConfig())
    env.crm_update("Organisation", org_id, OrganisationCity="Aarhus N")
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1
    lines = env.shop_get("orders", env.link(ORD, webcrm=opp_id).webshop_id)["lines"]
    assert [x["sku"] for x in lines] == ["SKU-1"]
    assert env.link(L, webcrm=line_id).webshop_id == lines[0]["id"]
    with env.inst.session() as s:
        assert repo.waiting(s) == []
    assert env.sync().writes == 0


def test_line_added_to_an_order_created_in_the_same_run(
    order_linked: tuple[Env, int, int, str],
) -> None:
    """A later line on a linked opportunity and a webshop-side edit in one run."""
    env, _org_id, opp_id, order_id = order_linked
    line_id = env.crm_create("QuotationLine", qline(opp_id))
    env.shop_update("orders", order_id, notes="Neue Notiz")
    report = env.sync()
    assert report.stats[L].created_in_webshop == 1
    # two writes to the opportunity: the notes, then the order value the new line changed
    assert report.stats[ORD].updated_in_webcrm == 2
    assert env.crm_get("Opportunity", opp_id)["OpportunityOrderValue"] == 2374.05
    shop = env.shop_get("orders", order_id)
    assert [x["sku"] for x in shop["lines"]] == ["SKU-1"] and shop["notes"] == "Neue Notiz"
    assert env.link(L, webcrm=line_id).webshop_id == shop["lines"][0]["id"]
    assert env.sync().writes == 0


def test_product_id_of_a_webshop_product_that_is_not_linked(env: Env) -> None:
    """Products not shared into webCRM: the line still points at the shop's product."""
    env.reconfigure(products=DatatypeConfig(to_webcrm=ShareConfig(enabled=False)))
    shop_only = env.shop_create("products", shop_product("SKU-9"))
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp_id, "SKU-9"))
    env.sync()
    assert env.link(P, webshop=shop_only["id"]) is None
    lines = env.shop_get("orders", env.link(ORD, webcrm=opp_id).webshop_id)["lines"]
    assert lines[0]["product_id"] == shop_only["id"]
    assert env.sync().writes == 0


def test_a_refused_line_is_put_aside_and_does_not_block_the_others(
    line_linked: tuple[Env, int, str, str],
) -> None:
    """Rule 7 for lines: the order's lines are written as a whole, yet one bad line
    must not hold back the others of the same order."""
    env, line_id, order_id, sid = line_linked
    opp_id = env.crm_get("QuotationLine", line_id)["QuotationLineOpportunityId"]
    bad = env.crm_create(
        "QuotationLine",
        qline(opp_id, "SKU-BAD", QuotationLinePrice=-10.0, QuotationLineSortOrder=2),
    )
    good = env.crm_create("QuotationLine", qline(opp_id, "SKU-3", QuotationLineSortOrder=3))
    env.crm_update("QuotationLine", line_id, QuotationLineQuantity=7.0)
    report = env.sync()
    assert report.stats[L].put_aside == 1
    lines = env.shop_get("orders", order_id)["lines"]
    assert [(x["sku"], x["quantity"]) for x in lines] == [("SKU-1", "7"), ("SKU-3", "2")]
    assert lines[0]["id"] == sid
    assert env.link(L, webcrm=good).webshop_id == lines[1]["id"]
    assert env.link(L, webcrm=bad) is None
    with env.inst.session() as s:
        (entry,) = repo.all_put_aside(s)
    assert (entry.datatype, entry.record_id) == ("order_lines", str(bad))
    assert "unit_price" in entry.reason
    again = env.sync()  # unchanged: not retried
    assert again.writes == 0 and again.stats[L].put_aside == 0
    env.crm_update("QuotationLine", bad, QuotationLinePrice=10.0)
    report = env.sync()
    assert report.stats[L].created_in_webshop == 1
    lines = env.shop_get("orders", order_id)["lines"]
    assert sorted((x["position"], x["sku"], x["unit_price"]) for x in lines) == [
        (1, "SKU-1", "1249.50"), (2, "SKU-BAD", "10.00"), (3, "SKU-3", "1249.50"),
    ]  # fmt: skip
    with env.inst.session() as s:
        assert repo.all_put_aside(s) == []
    assert env.sync().writes == 0


def test_a_refused_line_edit_is_undone_in_the_write_and_retried_when_changed(
    line_linked: tuple[Env, int, str, str],
) -> None:
    env, line_id, order_id, sid = line_linked
    opp_id = env.crm_get("QuotationLine", line_id)["QuotationLineOpportunityId"]
    other = env.crm_create("QuotationLine", qline(opp_id, "SKU-3", QuotationLineSortOrder=2))
    env.sync()
    env.crm_update("QuotationLine", line_id, QuotationLinePrice=-1.0, QuotationLineData2="Ny")
    env.crm_update("QuotationLine", other, QuotationLineQuantity=5.0)
    report = env.sync()
    assert report.stats[L].put_aside == 1
    assert report.stats[L].updated_in_webshop == 1 and report.stats[L].updates_to_webshop == 1
    assert shop_line(env, order_id, sid)["unit_price"] == "1249.50"  # unchanged
    assert shop_line(env, order_id, sid)["description"] == "Skrivebord eg"
    assert shop_line(env, order_id, env.link(L, webcrm=other).webshop_id)["quantity"] == "5"
    with env.inst.session() as s:
        (entry,) = repo.all_put_aside(s)
    assert entry.record_id == str(line_id) and "unit_price" in entry.reason
    env.crm_update("QuotationLine", line_id, QuotationLinePrice=3.0)
    env.sync()
    line = shop_line(env, order_id, sid)
    assert (line["unit_price"], line["description"]) == ("3.00", "Ny")  # the whole change
    with env.inst.session() as s:
        assert repo.all_put_aside(s) == []
    assert env.sync().writes == 0


def test_lines_not_shared_into_the_webshop(env: Env) -> None:
    """Rule 8 for lines: an order made from an opportunity then carries no lines."""
    env.reconfigure(order_lines=DatatypeConfig(to_webshop=ShareConfig(enabled=False)))
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp_id))
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1
    assert report.stats[L].created_in_webshop == 0 and report.stats[L].updates_to_webshop == 0
    order_id = env.link(ORD, webcrm=opp_id).webshop_id
    assert env.shop_get("orders", order_id)["lines"] == []
    env.shop_update("orders", order_id, lines=[sline()])  # webshop → webCRM still flows
    assert env.sync().stats[L].created_in_webcrm == 1
    assert len(env.crm.quotation_lines_of(opp_id)) == 2
    assert len(env.shop_get("orders", order_id)["lines"]) == 1


@pytest.mark.parametrize(
    ("bad_fields", "field"),
    [
        ({"QuotationLinePrice": -10.0}, "unit_price"),
        ({"QuotationLineDiscount": 150.0}, "discount_percent"),
    ],
    ids=["negative-price", "discount-over-100"],
)
def test_a_bad_line_does_not_hold_back_a_new_order(
    env: Env, bad_fields: dict[str, Any], field: str
) -> None:
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    good = env.crm_create("QuotationLine", qline(opp_id, "SKU-1", QuotationLineSortOrder=1))
    bad = env.crm_create("QuotationLine", qline(opp_id, "SKU-BAD", **bad_fields))
    report = env.sync()
    assert report.stats[ORD].created_in_webshop == 1 and report.stats[ORD].put_aside == 0
    assert report.stats[L].put_aside == 1
    order_id = env.link(ORD, webcrm=opp_id).webshop_id
    lines = env.shop_get("orders", order_id)["lines"]
    assert [x["sku"] for x in lines] == ["SKU-1"]
    assert env.link(L, webcrm=good).webshop_id == lines[0]["id"]
    with env.inst.session() as s:
        (entry,) = repo.all_put_aside(s)
    assert (entry.datatype, entry.record_id) == ("order_lines", str(bad))
    assert field in entry.reason
    again = env.sync()
    assert again.writes == 0 and again.stats[L].put_aside == 0
    env.crm_update("QuotationLine", bad, QuotationLinePrice=10.0, QuotationLineDiscount=0.0,
                   QuotationLineSortOrder=2)  # fmt: skip
    assert env.sync().stats[L].created_in_webshop == 1
    assert [x["sku"] for x in env.shop_get("orders", order_id)["lines"]] == ["SKU-1", "SKU-BAD"]
    with env.inst.session() as s:
        assert repo.all_put_aside(s) == []
    assert env.sync().writes == 0


def test_line_edited_on_both_sides(line_linked: tuple[Env, int, str, str]) -> None:
    """Rule 3 on a line: different properties both survive; the same one, the later edit."""
    env, line_id, order_id, sid = line_linked
    env.crm_update("QuotationLine", line_id, QuotationLineQuantity=3.0, QuotationLineDiscount=5.0)
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update(
        "orders",
        order_id,
        lines=[{**x, "description": "Fra shop", "discount_percent": "8"} for x in lines],
    )  # fmt: skip  (the webshop's edit is the later one)
    report = env.sync()
    assert report.stats[L].conflicts == 1
    rec, line = env.crm_get("QuotationLine", line_id), shop_line(env, order_id, sid)
    assert rec["QuotationLineQuantity"] == 3.0 and line["quantity"] == "3"
    assert rec["QuotationLineData2"] == "Fra shop" and line["description"] == "Fra shop"
    assert rec["QuotationLineDiscount"] == 8.0 and line["discount_percent"] == "8"
    assert env.sync().writes == 0


def test_onboarding_merge_pairs_the_lines_of_merged_orders(env: Env) -> None:
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="N-1"))
    env.crm_create("QuotationLine", qline(opp_id, "SKU-1", QuotationLineSortOrder=1))
    env.crm_create("QuotationLine", qline(opp_id, "SKU-2", QuotationLineSortOrder=2))
    env.sync()  # customer linked; order created with two lines
    env.fresh_state()  # a second onboarding: everything exists on both sides
    order_id = env.shop_all("orders")[0]["id"]
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update("orders", order_id, lines=[*lines, sline("SKU-3", position=3)])
    report = env.sync()
    assert report.stats[ORD].linked_by_merge == 1
    assert report.stats[L].linked_by_merge == 2 and report.stats[L].created_in_webcrm == 1
    assert report.stats[L].created_in_webshop == 0
    crm_skus = sorted(r["QuotationLineData1"] for r in env.crm.quotation_lines_of(opp_id))
    shop_skus = sorted(x["sku"] for x in env.shop_get("orders", order_id)["lines"])
    assert crm_skus == shop_skus == ["SKU-1", "SKU-2", "SKU-3"]
    assert env.sync().writes == 0


def test_merged_orders_pair_lines_of_one_sku_by_occurrence(env: Env) -> None:
    """pair_lines' rule in the engine: the n-th line of a SKU (by position) pairs with
    the n-th line of that SKU on the other side, whatever order the lines were created
    or staged in (the first one created here is the second by position)."""
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id, OpportunityNumber="N-1"))
    second = env.crm_create(
        "QuotationLine", qline(opp_id, "SKU-1", QuotationLineSortOrder=2, QuotationLineQuantity=5.0)
    )
    first = env.crm_create(
        "QuotationLine", qline(opp_id, "SKU-1", QuotationLineSortOrder=1, QuotationLineQuantity=1.0)
    )
    env.sync()
    env.fresh_state()  # a second onboarding: both lines exist on both sides
    report = env.sync()
    assert report.stats[L].linked_by_merge == 2
    order_id = env.link(ORD, webcrm=opp_id).webshop_id
    for line_id, quantity in ((first, "1"), (second, "5")):
        link = env.link(L, webcrm=line_id)
        assert link is not None
        assert shop_line(env, order_id, link.webshop_id)["quantity"].startswith(quantity)
    assert env.sync().writes == 0


def _killed_in(monkeypatch: pytest.MonkeyPatch, env: Env, method: str) -> None:
    """Run a sync that dies inside ``OrderLineWrites.<method>``, after the write it
    records reached the other system, before its links were committed (a kill)."""
    from shopsync.engine.lines.write import OrderLineWrites

    def killed(*_a: Any, **_k: Any) -> None:
        raise KeyboardInterrupt(f"killed in {method}")

    with monkeypatch.context() as m:
        m.setattr(OrderLineWrites, method, killed)
        with pytest.raises(KeyboardInterrupt):
            env.sync()


def test_lines_written_to_the_shop_by_a_killed_run_are_linked_not_written_again(
    line_linked: tuple[Env, int, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two webCRM lines reach the shop's order, and the run dies before linking them:
    the next run pairs them with their webCRM lines instead of adding them again."""
    env, _line_id, order_id, _sid = line_linked
    opp_id = int(env.link(ORD, webshop=order_id).webcrm_id)
    env.crm_create("QuotationLine", qline(opp_id, "SKU-7", QuotationLineSortOrder=2))
    env.crm_create("QuotationLine", qline(opp_id, "SKU-8", QuotationLineSortOrder=3))
    _killed_in(monkeypatch, env, "_written")
    assert len(env.shop_get("orders", order_id)["lines"]) == 3  # the write landed
    env.sync()
    assert env.sync().writes == 0
    lines = env.shop_get("orders", order_id)["lines"]
    crm = [x for x in env.crm_all("QuotationLine") if x["QuotationLineOpportunityId"] == opp_id]
    assert len(lines) == len(crm) == 3, (lines, crm)
    linked = {env.link(L, webcrm=x["QuotationLineId"]).webshop_id for x in crm}
    assert linked == {x["id"] for x in lines}


def _line_added_in_shop(env: Env, order_id: str) -> int:
    """With a 1 s webCRM request timeout, a second line added to the shop's order; the
    order's opportunity id."""
    webcrm = env.inst.config.webcrm.model_dump()
    env.reconfigure(webcrm=WebcrmConfig(**{**webcrm, "timeout_seconds": 1.0}))
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update("orders", order_id, lines=[*lines, sline("SKU-9", position=2)])
    return int(env.link(ORD, webshop=order_id).webcrm_id)


def _two_lines_linked(env: Env, opp_id: int, order_id: str) -> None:
    """The opportunity and the order hold two lines each, linked one to one."""
    crm = [x for x in env.crm_all("QuotationLine") if x["QuotationLineOpportunityId"] == opp_id]
    lines = env.shop_get("orders", order_id)["lines"]
    assert len(lines) == len(crm) == 2, (lines, crm)
    linked = {env.link(L, webcrm=x["QuotationLineId"]).webshop_id for x in crm}
    assert linked == {x["id"] for x in lines}


def test_a_shop_line_created_in_webcrm_by_a_killed_run_is_not_created_twice(
    line_linked: tuple[Env, int, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line added in the shop is created in webCRM, and the run dies before linking
    it: the next run finds its own create (the intent) instead of creating it again."""
    env, _line_id, order_id, _sid = line_linked
    opp_id = _line_added_in_shop(env, order_id)
    _killed_in(monkeypatch, env, "finish")
    crm = [x for x in env.crm_all("QuotationLine") if x["QuotationLineOpportunityId"] == opp_id]
    assert len(crm) == 2  # the create landed
    waiting = env.sync()
    # until it may have landed: the new webCRM line, and the order's reminder
    assert waiting.stats[L].waiting == 2 and waiting.writes == 0
    time.sleep(2.5)  # past the 1 s request timeout: webCRM is asked
    env.sync()
    assert env.sync().writes == 0
    _two_lines_linked(env, opp_id, order_id)


def test_a_shop_line_whose_interrupted_create_was_lost_is_created_once_settled(
    line_linked: tuple[Env, int, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line added in the shop: the run commits its create's intent and dies before
    the request leaves. The next run cannot tell yet whether the create landed, so the
    line waits, and the order's reminder waits with it; once webCRM says nothing landed
    the line is created, once. (The reminder used to go with that first wait, and the
    line was never created: the shop's order does not change again to bring it back,
    and a later order moves the shop's cursor past it.)"""
    from shopsync.connectors.webcrm.client import WebcrmClient

    env, _line_id, order_id, _sid = line_linked
    opp_id = _line_added_in_shop(env, order_id)
    upsert = WebcrmClient.upsert

    def dies_as_lines_leave(self: WebcrmClient, entity: str, records: Any, **kw: Any) -> Any:
        if entity == "QuotationLine" and kw.get("on_send") is not None:
            kw["on_send"](range(len(records)))  # the intents commit, then the kill
            raise KeyboardInterrupt("killed as the lines' PATCH leaves")
        return upsert(self, entity, records, **kw)

    with monkeypatch.context() as m:
        m.setattr(WebcrmClient, "upsert", dies_as_lines_leave)
        with pytest.raises(KeyboardInterrupt):
            env.sync()
    crm = [x for x in env.crm_all("QuotationLine") if x["QuotationLineOpportunityId"] == opp_id]
    assert len(crm) == 1  # nothing landed
    customer_id = env.shop_get("orders", order_id)["customer_id"]
    env.shop_create("orders", order(customer_id, order_number="W-2002"))  # the cursor moves on
    waiting = env.sync()
    assert waiting.stats[L].waiting == 1  # until it may have landed
    assert waiting.stats[L].created_in_webcrm == 0
    time.sleep(2.5)  # past the 1 s request timeout: webCRM is asked, and says lost
    env.sync()
    assert env.sync().writes == 0
    _two_lines_linked(env, opp_id, order_id)


def test_lines_of_an_order_created_by_a_killed_run_are_paired_not_copied(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run creates an opportunity's order in the shop, its lines inside, and dies
    before recording it, while a create of some other line in webCRM is unsettled.
    The next run pairs the order with the opportunity by its number; the opportunity's
    lines are then too new to be told from that create landing, so they wait, and the
    order's shop lines must wait with them, not be created in webCRM as new lines
    (which doubled every line of the order on both sides in the kill test)."""
    from datetime import UTC, datetime

    from shopsync.engine.recorder import Recorder

    webcrm = env.inst.config.webcrm.model_dump()
    env.reconfigure(webcrm=WebcrmConfig(**{**webcrm, "timeout_seconds": 1.0}))
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    env.crm_create("QuotationLine", qline(opp_id, QuotationLineSortOrder=1))
    env.crm_create("QuotationLine", qline(opp_id, "SKU-2", QuotationLineSortOrder=2))
    record = Recorder.record

    def dies_recording_the_order(self: Recorder, dt: Datatype, *a: Any, **k: Any) -> None:
        if dt is ORD:
            raise KeyboardInterrupt("killed before the order is recorded")
        record(self, dt, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(Recorder, "record", dies_recording_the_order)
        with pytest.raises(KeyboardInterrupt):
            env.sync()
    [order_id] = [o["id"] for o in env.shop_all("orders")]
    assert len(env.shop_get("orders", order_id)["lines"]) == 2  # the create landed
    with env.inst.session() as s:  # another line's create, sent just now by that run
        sent = {"QuotationLineOpportunityId": 999_999, "QuotationLineData1": "SKU-X"}
        repo.mark_sent(s, L.value, [("lin_elsewhere", {"sent": sent})], datetime.now(UTC))
        s.commit()
    env.sync()
    time.sleep(2.5)  # past the 1 s request timeout: the other create is found lost
    env.sync()
    env.sync()
    assert env.sync().writes == 0
    crm = [x for x in env.crm_all("QuotationLine") if x["QuotationLineOpportunityId"] == opp_id]
    lines = env.shop_get("orders", order_id)["lines"]
    assert len(lines) == len(crm) == 2, (lines, crm)
    linked = {env.link(L, webcrm=x["QuotationLineId"]).webshop_id for x in crm}
    assert linked == {x["id"] for x in lines}


def test_an_order_left_in_the_inbox_by_an_earlier_run_is_read_again(
    line_linked: tuple[Env, int, str, str],
) -> None:
    """A run keeps each order whose lines it reconciles after the orders in that order's
    reminder row of the inbox (not in memory). A reminder left by an earlier run that
    died holds the order as it was then; the next run must read the order again, not
    take that old copy for a shop edit and write it back to webCRM."""
    env, line_id, order_id, sid = line_linked
    old = env.shop_get("orders", order_id)
    lines = old["lines"]
    env.shop_update(
        "orders", order_id, lines=[{**x, "quantity": "7"} if x["id"] == sid else x for x in lines]
    )
    assert env.sync().stats[L].updated_in_webcrm == 1
    assert env.crm_get("QuotationLine", line_id)["QuotationLineQuantity"] == 7.0
    opp_id = env.link(ORD, webshop=order_id).webcrm_id
    with env.inst.session() as s:  # what a run that died before the lines leaves
        repo.stage(s, L.value, "webshop", order_id, updated_at=None, data=old, parent_id=opp_id)
        s.commit()
    report = env.sync()
    assert report.writes == 0
    assert env.crm_get("QuotationLine", line_id)["QuotationLineQuantity"] == 7.0
    assert shop_line(env, order_id, sid)["quantity"] == "7"
    with env.inst.session() as s:
        assert repo.inbox_record_ids(s, L.value, "webshop") == []
