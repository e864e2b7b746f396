"""Products ⇄ Product, end to end over real HTTP (dataflow.md table 2, rules 1, 2, 4, 5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shopsync.config.model import Datatype, MappingConfig
from tests.engine.conftest import Env, crm_product, shop_product

P = Datatype.products

# (webCRM field, webshop field, a new webCRM value, the webshop value it becomes,
#  a new webshop value, the webCRM value it becomes)
ROWS: list[tuple[str, str, Any, Any, Any, Any]] = [
    ("ProductCustom1", "sku", "SKU-ÆØÅ-2", "SKU-ÆØÅ-2", "SKU-ß-3", "SKU-ß-3"),
    ("ProductCustom2", "name", "Spisebord bøg", "Spisebord bøg", "Schreibtisch", "Schreibtisch"),
    ("ProductMemo", "description", "Olieret bøg", "Olieret bøg", "Geölte Buche", "Geölte Buche"),
    ("ProductPrice", "unit_price", 1099.5, "1099.50", "1199.95", 1199.95),
    ("ProductListPrice", "list_price", 1600.0, "1600.00", "1700.10", 1700.1),
    ("ProductCostPrice", "cost_price", 750.25, "750.25", "640.00", 640.0),
    ("ProductVatCode", "vat_rate", "12.5", "12.5", "6.00", "6"),
    ("ProductStockStatus", "stock_status", "Out of stock", "out_of_stock", "backorder", "Backorder"),
]  # fmt: skip


@pytest.fixture
def linked(env: Env) -> tuple[Env, int, str]:
    product_id = env.crm_create("Product", crm_product())
    env.sync()
    link = env.link(P, webcrm=product_id)
    assert link is not None
    return env, product_id, link.webshop_id


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_webcrm_edit_flows_to_webshop(linked: tuple[Env, int, str], row: tuple[Any, ...]) -> None:
    env, product_id, shop_id = linked
    field, path, crm_value, shop_expected, _, _ = row
    env.crm_update("Product", product_id, **{field: crm_value})
    report = env.sync()
    assert report.stats[P].updated_in_webshop == 1
    assert report.stats[P].updates_to_webshop == 1 and report.stats[P].updates_to_webcrm == 0
    assert env.shop_get("products", shop_id)[path] == shop_expected
    assert env.sync().writes == 0


@pytest.mark.parametrize("row", ROWS, ids=[r[1] for r in ROWS])
def test_webshop_edit_flows_to_webcrm(linked: tuple[Env, int, str], row: tuple[Any, ...]) -> None:
    env, product_id, shop_id = linked
    field, path, _, _, shop_value, crm_expected = row
    env.shop_update("products", shop_id, **{path: shop_value})
    report = env.sync()
    assert report.stats[P].updated_in_webcrm == 1
    assert report.stats[P].updates_to_webcrm == 1 and report.stats[P].updates_to_webshop == 0
    assert env.crm_get("Product", product_id)[field] == crm_expected
    assert env.sync().writes == 0


def test_new_webcrm_product_creates_webshop_product_with_every_field(env: Env) -> None:
    env.reconfigure(mapping=MappingConfig(default_currency="EUR"))
    product_id = env.crm_create("Product", crm_product())
    report = env.sync()
    assert report.stats[P].created_in_webshop == 1
    assert report.stats[P].updates_to_webshop == 1  # rule 9
    link = env.link(P, webcrm=product_id)
    shop = env.shop_get("products", link.webshop_id)
    assert shop["sku"] == "SKU-1"
    assert shop["name"] == "Skrivebord eg"
    assert shop["description"] == "Massivt egetræ"
    assert shop["unit_price"] == "1249.50"
    assert shop["list_price"] == "1499.00"
    assert shop["cost_price"] == "800.00"
    assert shop["vat_rate"] == "25"  # the webshop writes rates plain
    assert shop["stock_status"] == "in_stock"
    assert shop["currency"] == "EUR"  # → from the configured default currency
    assert shop["active"] is True
    assert env.sync().writes == 0


def test_new_webshop_product_creates_webcrm_product(env: Env) -> None:
    created = env.shop_create("products", shop_product(stock_status="backorder"))
    report = env.sync()
    assert report.stats[P].created_in_webcrm == 1
    assert report.stats[P].updates_to_webcrm == 1
    link = env.link(P, webshop=created["id"])
    rec = env.crm_get("Product", link.webcrm_id)
    assert rec["ProductCustom1"] == "SKU-9"
    assert rec["ProductCustom2"] == "Bürostuhl"
    assert rec["ProductMemo"] == "Ergonomisch"
    assert rec["ProductPrice"] == 399.0
    assert rec["ProductListPrice"] == 449.0
    assert rec["ProductCostPrice"] == 200.0
    assert rec["ProductVatCode"] == "25"
    assert rec["ProductStockStatus"] == "Backorder"
    assert env.sync().writes == 0


def test_price_rounds_to_two_places_without_flip_flop(linked: tuple[Env, int, str]) -> None:
    env, product_id, shop_id = linked
    env.crm_update("Product", product_id, ProductPrice=10.005)
    env.sync()
    assert env.shop_get("products", shop_id)["unit_price"] == "10.01"  # half up, as typed
    # the rounded value does not come back: webCRM keeps what the user typed
    assert env.crm_get("Product", product_id)["ProductPrice"] == 10.005
    assert env.sync().writes == 0
    # a real webshop change flows back
    env.shop_update("products", shop_id, unit_price="10.02")
    env.sync()
    assert env.crm_get("Product", product_id)["ProductPrice"] == 10.02
    assert env.sync().writes == 0


def test_vat_codes_through_a_configured_table(env: Env) -> None:
    codes = {"S": Decimal("25"), "R": Decimal("12.5"), "Z": Decimal("0")}
    env.reconfigure(mapping=MappingConfig(vat_codes=codes))
    product_id = env.crm_create("Product", crm_product(ProductVatCode="S"))
    env.sync()
    shop_id = env.link(P, webcrm=product_id).webshop_id
    assert env.shop_get("products", shop_id)["vat_rate"] == "25"
    env.shop_update("products", shop_id, vat_rate="12.50")
    env.sync()
    assert env.crm_get("Product", product_id)["ProductVatCode"] == "R"
    env.crm_update("Product", product_id, ProductVatCode="Z")
    env.sync()
    assert env.shop_get("products", shop_id)["vat_rate"] == "0"
    assert env.sync().writes == 0
    created = env.shop_create("products", shop_product(sku="SKU-R", vat_rate="12.5"))
    env.sync()
    new_id = env.link(P, webshop=created["id"]).webcrm_id
    assert env.crm_get("Product", new_id)["ProductVatCode"] == "R"
    assert env.sync().writes == 0


@pytest.mark.parametrize(
    ("crm_text", "shop_value"),
    [("In stock", "in_stock"), ("Out of stock", "out_of_stock"), ("Backorder", "backorder")],
)
def test_stock_status_table_both_ways(env: Env, crm_text: str, shop_value: str) -> None:
    product_id = env.crm_create("Product", crm_product(ProductStockStatus=crm_text))
    created = env.shop_create("products", shop_product(sku="SKU-S", stock_status=shop_value))
    env.sync()
    assert env.shop_get("products", env.link(P, webcrm=product_id).webshop_id)["stock_status"] == (
        shop_value
    )
    assert (
        env.crm_get("Product", env.link(P, webshop=created["id"]).webcrm_id)["ProductStockStatus"]
        == crm_text
    )
    assert env.sync().writes == 0


def test_stock_status_configured_table(env: Env) -> None:
    table = {"På lager": "in_stock", "Udsolgt": "out_of_stock", "Restordre": "backorder"}
    env.reconfigure(mapping=MappingConfig(stock_status=table))
    product_id = env.crm_create("Product", crm_product(ProductStockStatus="Udsolgt"))
    env.sync()
    shop_id = env.link(P, webcrm=product_id).webshop_id
    assert env.shop_get("products", shop_id)["stock_status"] == "out_of_stock"
    env.shop_update("products", shop_id, stock_status="backorder")
    env.sync()
    assert env.crm_get("Product", product_id)["ProductStockStatus"] == "Restordre"
    assert env.sync().writes == 0


def test_merge_by_sku_links_instead_of_duplicating(env: Env) -> None:
    product_id = env.crm_create("Product", crm_product(sku="SKU-M", ProductMemo=None))
    shop = env.shop_create(
        "products", shop_product(sku="SKU-M", name="Skrivebord eg", description="Aus Eiche")
    )
    report = env.sync()
    assert report.stats[P].linked_by_merge == 1
    assert report.stats[P].created_in_webshop == 0 and report.stats[P].created_in_webcrm == 0
    assert env.link(P, webcrm=product_id).webshop_id == shop["id"]
    assert len(env.shop_all("products")) == 1 and len(env.crm_all("Product")) == 1
    # rule 2: the empty memo does not overwrite the webshop's description
    assert env.shop_get("products", shop["id"])["description"] == "Aus Eiche"
    assert env.crm_get("Product", product_id)["ProductMemo"] == "Aus Eiche"
    assert env.sync().writes == 0


def test_product_deleted_in_webcrm_becomes_inactive_and_is_not_recreated(
    linked: tuple[Env, int, str],
) -> None:
    env, product_id, shop_id = linked
    env.crm.delete("Product", product_id)
    assert env.sync().stats[P].deleted == 0  # seen by the next delete sweep ([deletes])
    report = env.sync(sweep=True)
    assert report.stats[P].deleted == 1
    shop = env.shop_get("products", shop_id)
    assert shop["active"] is False and shop["sku"] == "SKU-1"
    assert env.link(P, webcrm=product_id).state == "webcrm_deleted"
    assert env.sync().writes == 0
    # an edit of the inactive webshop product does not bring the webCRM product back
    env.shop_update("products", shop_id, name="Udgået")
    assert env.sync().stats[P].created_in_webcrm == 0
    assert env.crm_all("Product") == []
    assert len(env.shop_all("products")) == 1


def test_a_product_deleted_in_webcrm_and_edited_in_the_webshop_in_one_run_stays_deleted(
    linked: tuple[Env, int, str],
) -> None:
    """Both rows of one link in one batch: the webCRM delete, planned first, unlinks
    the pair, and the webshop edit planned after it sees that (one link object for
    both rows), instead of writing into the deleted webCRM product."""
    env, product_id, shop_id = linked
    env.crm.delete("Product", product_id)
    env.shop_update("products", shop_id, name="Udgået")
    report = env.sync(sweep=True)
    assert report.stats[P].deleted == 1
    assert report.stats[P].updated_in_webcrm == 0 and report.stats[P].put_aside == 0
    assert env.shop_get("products", shop_id)["active"] is False
    assert env.link(P, webcrm=product_id).state == "webcrm_deleted"
    assert env.crm_all("Product") == []
    assert env.sync().writes == 0


def test_product_deleted_in_webshop_unlinks_and_webcrm_keeps_it(
    linked: tuple[Env, int, str],
) -> None:
    env, product_id, shop_id = linked
    env.shop.delete("products", shop_id)
    report = env.sync()
    assert report.stats[P].deleted == 1
    assert env.link(P, webcrm=product_id).state == "webshop_deleted"
    assert env.links(P) == []
    assert env.crm_get("Product", product_id)["ProductCustom1"] == "SKU-1"
    assert env.sync().writes == 0
    assert env.shop_all("products") == []


def test_product_with_empty_stock_status_and_vat_code_syncs_instead_of_put_aside(
    env: Env,
) -> None:
    """Issue 9: most webCRM users never fill in ProductStockStatus (nor, often, the VAT
    code); the default configuration writes in_stock and 25 % instead of putting the
    product aside, writes nothing back to webCRM, and converges."""
    product_id = env.crm_create(
        "Product", crm_product(ProductStockStatus=None, ProductVatCode=None)
    )
    report = env.sync()
    assert report.stats[P].put_aside == 0
    assert report.stats[P].created_in_webshop == 1
    shop_id = env.link(P, webcrm=product_id).webshop_id
    shop = env.shop_get("products", shop_id)
    assert shop["stock_status"] == "in_stock" and shop["vat_rate"] == "25"
    crm = env.crm_get("Product", product_id)
    assert not crm["ProductStockStatus"] and not crm["ProductVatCode"]  # left as they are
    assert env.sync().writes == 0
    # a later webshop change flows back as the table's text
    env.shop_update("products", shop_id, stock_status="out_of_stock")
    env.sync()
    assert env.crm_get("Product", product_id)["ProductStockStatus"] == "Out of stock"
    assert env.sync().writes == 0


def test_an_empty_stock_status_never_overwrites_the_webshop_in_a_merge(env: Env) -> None:
    """Rule 2 with the default: the webCRM product, edited after the webshop's, has no
    stock status; the webshop's out_of_stock stays and fills the webCRM field."""
    shop = env.shop_create("products", shop_product(sku="SKU-M", stock_status="out_of_stock"))
    product_id = env.crm_create("Product", crm_product(sku="SKU-M", ProductStockStatus=""))
    report = env.sync()
    assert report.stats[P].linked_by_merge == 1 and report.stats[P].put_aside == 0
    assert env.shop_get("products", shop["id"])["stock_status"] == "out_of_stock"
    assert env.crm_get("Product", product_id)["ProductStockStatus"] == "Out of stock"
    assert env.sync().writes == 0
