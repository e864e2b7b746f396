"""Defaults for webshop-required fields that webCRM users leave empty (issue 9, item 10).

An empty ``ProductStockStatus`` or ``ProductVatCode``, or a quotation line's empty
quantity or price, is ordinary CRM data: the default configuration writes a documented
default instead of putting the record aside, the written value never comes back as a
change, and in an onboarding merge the default never overwrites the webshop's value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from mapping_fakes import FakeContext
from pydantic import ValidationError

from shopsync.config.model import Config, Datatype, MappingConfig
from shopsync.engine.differ import Side, decide, snapshot_after
from shopsync.engine.mapping import LinkMapping, mappings
from shopsync.engine.mapping.base import MappingError

CFG = Config()
MAPS = mappings(CFG)
CTX = FakeContext(CFG).link(Datatype.customers, "7", "cus_7")
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
LATE = datetime(2026, 6, 1, tzinfo=UTC)


def crm_product(**kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "ProductId": 1,
        "ProductCustom1": "SKU-1",
        "ProductCustom2": "Skrivebord eg",
        "ProductPrice": 1249.5,
        "ProductVatCode": "25",
        "ProductStockStatus": "In stock",
    }
    rec.update(kw)
    return rec


def shop_record(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """What the webshop gives back after a create: the body, an id, absent fields null."""
    return {
        "id": "prd_1",
        "description": None,
        "list_price": None,
        "cost_price": None,
        **body,
        **kw,
    }


def created_then_synced_again(lm: LinkMapping, crm: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Create the webshop record from ``crm``, take the snapshot as the engine does, and
    decide the next sync with both sides unchanged."""
    shop = shop_record(lm.to_webshop(crm, CTX))
    snap = snapshot_after(lm, None, crm, shop)
    decision = decide(lm, snap, Side(crm, EARLY), Side(shop, EARLY), CTX)
    return shop, decision


# ------------------------------------------------------------------ stock status


@pytest.mark.parametrize("empty", ["", None, "   ", "absent"])
def test_empty_stock_status_is_in_stock_and_round_trips_without_a_diff(empty: Any) -> None:
    lm = MAPS[Datatype.products]
    crm = crm_product(ProductStockStatus=empty)
    if empty == "absent":
        del crm["ProductStockStatus"]
    shop, decision = created_then_synced_again(lm, crm)
    assert shop["stock_status"] == "in_stock"
    assert decision.to_webshop == set() and decision.to_webcrm == set()
    # a webshop change flows back as the table's text; the empty text is never written
    assert lm.to_webcrm({**shop, "stock_status": "in_stock"}, CTX)["ProductStockStatus"] == (
        "In stock"
    )
    assert lm.to_webcrm({**shop, "stock_status": "backorder"}, CTX)["ProductStockStatus"] == (
        "Backorder"
    )


def test_webcrm_filling_in_in_stock_over_the_default_writes_nothing() -> None:
    lm = MAPS[Datatype.products]
    crm = crm_product(ProductStockStatus="")
    shop = shop_record(lm.to_webshop(crm, CTX))
    snap = snapshot_after(lm, None, crm, shop)
    typed = {**crm, "ProductStockStatus": "In stock"}
    decision = decide(lm, snap, Side(typed, LATE), Side(shop, EARLY), CTX)
    assert decision.to_webshop == set() and decision.to_webcrm == set()
    typed = {**crm, "ProductStockStatus": "Out of stock"}
    decision = decide(lm, snap, Side(typed, LATE), Side(shop, EARLY), CTX)
    assert decision.to_webshop == {"stock_status"}


def test_a_table_without_the_empty_row_puts_the_product_aside() -> None:
    table = {"In stock": "in_stock", "Out of stock": "out_of_stock", "Backorder": "backorder"}
    lm = mappings(Config(mapping=MappingConfig(stock_status=table)))[Datatype.products]  # type: ignore[arg-type]
    with pytest.raises(MappingError) as err:
        lm.to_webshop(crm_product(ProductStockStatus=""), CTX)
    assert err.value.field == "ProductStockStatus"
    assert 'mapping.stock_status has no "" row' in err.value.message


def test_the_empty_row_is_no_text_for_writing_to_webcrm() -> None:
    with pytest.raises(ValidationError, match="missing: in_stock"):
        MappingConfig(stock_status={"": "in_stock", "Udsolgt": "out_of_stock", "Rest": "backorder"})
    with pytest.raises(ValidationError, match='one row for an empty field: ""'):
        MappingConfig(
            stock_status={
                "": "in_stock",
                " ": "out_of_stock",
                "På lager": "in_stock",
                "Udsolgt": "out_of_stock",
                "Rest": "backorder",
            }
        )


# ----------------------------------------------------------------------- VAT code


@pytest.mark.parametrize("empty", ["", None, " "])
def test_empty_vat_code_is_the_default_rate_and_round_trips_without_a_diff(empty: Any) -> None:
    lm = MAPS[Datatype.products]
    assert CFG.mapping.vat_codes == {"": Decimal(25)}
    shop, decision = created_then_synced_again(lm, crm_product(ProductVatCode=empty))
    assert shop["vat_rate"] == "25.00"
    assert decision.to_webshop == set() and decision.to_webcrm == set()
    # the shop answering "25" (its own spelling) is no change either
    decision = decide(
        lm,
        snapshot_after(lm, None, crm_product(ProductVatCode=empty), shop),
        Side(crm_product(ProductVatCode=empty), EARLY),
        Side({**shop, "vat_rate": "25"}, LATE),
        CTX,
    )
    assert decision.to_webcrm == set()
    # numeric codes are still their rate: the "" row is no code table
    assert lm.to_webshop(crm_product(ProductVatCode="12,5"), CTX)["vat_rate"] == "12.50"
    assert lm.to_webcrm({**shop, "vat_rate": "12.50"}, CTX)["ProductVatCode"] == "12.5"


def test_vat_code_table_with_an_empty_row() -> None:
    codes = {"": Decimal(25), "S": Decimal(25), "R": Decimal("12.5")}
    lm = mappings(Config(mapping=MappingConfig(vat_codes=codes)))[Datatype.products]
    assert lm.to_webshop(crm_product(ProductVatCode=""), CTX)["vat_rate"] == "25.00"
    assert lm.to_webshop(crm_product(ProductVatCode="r"), CTX)["vat_rate"] == "12.50"
    assert lm.to_webcrm({"vat_rate": "25.00"}, CTX, only=["vat_rate"]) == {"ProductVatCode": "S"}
    with pytest.raises(MappingError, match=r"VAT code '25' is not in mapping\.vat_codes"):
        lm.to_webshop(crm_product(ProductVatCode="25"), CTX)


def test_without_the_empty_row_an_empty_vat_code_is_put_aside() -> None:
    lm = mappings(Config(mapping=MappingConfig(vat_codes={})))[Datatype.products]
    with pytest.raises(MappingError) as err:
        lm.to_webshop(crm_product(ProductVatCode=""), CTX)
    assert err.value.field == "ProductVatCode"
    assert 'mapping.vat_codes has no "" row' in err.value.message
    with pytest.raises(ValidationError, match='one row for an empty VAT code: ""'):
        MappingConfig(vat_codes={"": Decimal(25), "  ": Decimal(0)})


# ------------------------------------------------------------------ onboarding merge


def test_a_default_never_overwrites_the_webshop_in_a_merge() -> None:
    """Rule 2: an empty webCRM value, even read through a default, does not overwrite the
    webshop's value; the webshop's value fills the empty webCRM field instead."""
    lm = MAPS[Datatype.products]
    crm = crm_product(ProductStockStatus="", ProductVatCode="")
    shop = shop_record(
        lm.to_webshop(crm_product(), CTX), stock_status="out_of_stock", vat_rate="0.00"
    )
    decision = decide(lm, None, Side(crm, LATE), Side(shop, EARLY), CTX)  # webCRM newer
    assert "stock_status" not in decision.to_webshop and "vat_rate" not in decision.to_webshop
    assert {"stock_status", "vat_rate"} <= decision.to_webcrm
    body = lm.to_webcrm(shop, CTX, only=decision.to_webcrm)
    assert body["ProductStockStatus"] == "Out of stock" and body["ProductVatCode"] == "0"


def test_an_empty_order_currency_does_not_overwrite_the_webshop_in_a_merge() -> None:
    lm = MAPS[Datatype.orders]
    opp = {
        "OpportunityId": 42,
        "OpportunityNumber": "WC-000042",
        "OpportunityOrganisationId": 7,
        "OpportunityCurrencyName": "",
        "OpportunityPercent": 0,
    }
    order = {"id": "ord_1", **lm.to_webshop(opp, CTX), "currency": "EUR"}
    decision = decide(lm, None, Side(opp, LATE), Side(order, EARLY), CTX)
    assert "currency" not in decision.to_webshop and "currency" in decision.to_webcrm


# --------------------------------------------------------------------- order lines


def test_a_text_line_with_no_quantity_or_price_is_zero_and_round_trips() -> None:
    lm = MAPS[Datatype.order_lines]
    line = {
        "QuotationLineId": 5,
        "QuotationLineData2": "Levering uge 48",
        "QuotationLineQuantity": None,
        "QuotationLinePrice": None,
    }
    body = lm.to_webshop(line, CTX)
    assert body["quantity"] == "0" and body["unit_price"] == "0.00"
    shop = {"id": "lin_1", **body, "quantity": "0.0000"}  # a shop that keeps 4 places
    snap = snapshot_after(lm, None, line, shop)
    decision = decide(lm, snap, Side(line, EARLY), Side(shop, EARLY), CTX)
    assert decision.to_webshop == set() and decision.to_webcrm == set()
    back = lm.to_webcrm({**shop, "quantity": "2", "unit_price": "10"}, CTX)
    assert back["QuotationLineQuantity"] == 2.0 and back["QuotationLinePrice"] == 10.0


def test_conversions_name_their_defaults() -> None:
    """What ``shopsync check`` reports as "filled with a default"."""
    products, lines = MAPS[Datatype.products], MAPS[Datatype.order_lines]
    assert products.by_name["stock_status"].conversion.empty_default == (
        "in_stock (mapping.stock_status)"
    )
    assert products.by_name["vat_rate"].conversion.empty_default == "25 % (mapping.vat_codes)"
    assert products.by_name["unit_price"].conversion.empty_default is None  # never guessed
    assert products.by_name["sku"].conversion.empty_default is None
    assert lines.by_name["quantity"].conversion.empty_default == "0 (empty is 0)"
    assert MAPS[Datatype.orders].by_name["currency"].conversion.empty_default == (
        "DKK (mapping.default_currency)"
    )
