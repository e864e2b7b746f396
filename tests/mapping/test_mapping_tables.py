"""Whole records through the link tables, and the helpers the engine calls around them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mapping_fakes import FakeContext

from shopsync.config.model import Config, Datatype, FieldsConfig, MappingConfig
from shopsync.emulators.common.seeddata import company, item
from shopsync.engine.mapping import mappings
from shopsync.engine.mapping.base import (
    LinkMapping,
    MappingError,
    Unresolved,
    validate_webcrm,
)
from shopsync.engine.mapping.lines import line_parents
from shopsync.engine.mapping.orders import (
    assign_order_number,
    erp_stamp,
    is_won,
    mark_lost,
    needs_order_number,
)
from shopsync.engine.mapping.products import product_deleted
from tests.conftest import examples

CFG = Config()
MAPS = mappings(CFG)


def _ctx() -> FakeContext:
    return FakeContext(CFG, skus={"SKU-000-000001": "prd_1"}).link(Datatype.customers, "7", "cus_7")


def organisation(i: int) -> dict[str, Any]:
    """A webCRM organisation as a person typed it, from the shared seed universe."""
    c = company(0, i)
    return {
        "OrganisationId": i + 1,
        "OrganisationName": c.name,
        "OrganisationAddress": c.address,
        "OrganisationPostCode": c.postal_code,
        "OrganisationCity": c.city,
        "OrganisationState": c.region or "",
        "OrganisationCountry": c.country_name,
        "OrganisationDeliveryAddress": c.delivery_address or "",
        "OrganisationDeliveryPostCode": c.delivery_postal_code or "",
        "OrganisationDeliveryCity": c.delivery_city or "",
        "OrganisationTelephone": c.phone,
        "OrganisationWww": c.website,
        "OrganisationVatNumber": c.vat_number,
    }


def product(i: int) -> dict[str, Any]:
    it = item(0, i)
    return {
        "ProductId": i + 1,
        "ProductCustom1": it.sku,
        "ProductCustom2": it.name,
        "ProductMemo": it.description,
        "ProductPrice": float(it.unit_price),
        "ProductListPrice": float(it.list_price),
        "ProductCostPrice": float(it.cost_price),
        "ProductVatCode": str(it.vat_rate),
        "ProductStockStatus": {v: k for k, v in CFG.mapping.stock_status.items()}[it.stock_status],
    }


OPPORTUNITY = {
    "OpportunityId": 42,
    "OpportunityNumber": "WC-000042",
    "OpportunityOrganisationId": 7,
    "OpportunityCurrencyName": "DKK",
    "OpportunityOrderDate": "2026-11-26T00:00:00Z",
    "OpportunityDescription": "Levering før jul",
    "OpportunityDiscount": 5.0,
    "OpportunityPercent": 100,
    "OpportunityLostDate": None,
}
LINE = {
    "QuotationLineId": 9,
    "QuotationLineOpportunityId": 42,
    "QuotationLineData1": "SKU-000-000001",
    "QuotationLineData2": "Kontorstol grå",
    "QuotationLineQuantity": 2.0,
    "QuotationLinePrice": 1249.5,
    "QuotationLineListPrice": 1300.0,
    "QuotationLineCostPrice": 800.0,
    "QuotationLineDiscount": 0.0,
    "QuotationLineVatPercentage": 25.0,
    "QuotationLineSortOrder": 1,
}


def _crm_values_without_refs(lm: LinkMapping, record: dict[str, Any]) -> dict[str, Any]:
    skip = {"customer_id", "product_id"}
    return {k: v for k, v in lm.webcrm_values(record).items() if k not in skip}


def _shop_values_without_refs(lm: LinkMapping, record: dict[str, Any]) -> dict[str, Any]:
    skip = {"customer_id", "product_id"}
    vals = lm.webshop_values(record)
    return {k: v for k, v in vals.items() if k not in skip and lm.by_name[k].webcrm}


@pytest.mark.parametrize("i", range(40))
def test_seeded_organisation_round_trips(i: int) -> None:
    lm = MAPS[Datatype.customers]
    org = organisation(i)
    customer = lm.to_webshop(org, _ctx())
    assert customer["billing_address"]["country"] == company(0, i).country
    # what the product wrote normalizes to what it was written from (no echo)
    assert lm.webshop_values(customer) == lm.webcrm_values(org)
    back = lm.to_webcrm(customer, _ctx())
    assert lm.webcrm_values(back) == lm.webcrm_values(org)


@pytest.mark.parametrize("i", range(40))
def test_seeded_product_round_trips(i: int) -> None:
    lm = MAPS[Datatype.products]
    prod = product(i)
    shop = lm.to_webshop(prod, _ctx())
    assert shop["unit_price"] == str(item(0, i).unit_price)
    assert shop["currency"] == "DKK"
    assert shop["active"] is True
    assert _shop_values_without_refs(lm, shop) == lm.webcrm_values(prod)
    back = lm.to_webcrm(shop, _ctx())
    assert lm.webcrm_values(back) == lm.webcrm_values(prod)


def test_order_and_line_round_trip() -> None:
    orders, lines = MAPS[Datatype.orders], MAPS[Datatype.order_lines]
    order = orders.to_webshop(OPPORTUNITY, _ctx())
    assert order == {
        "order_number": "WC-000042",
        "customer_id": "cus_7",
        "currency": "DKK",
        "order_date": "2026-11-26",
        "notes": "Levering før jul",
        "discount_percent": "5.00",
        "status": "confirmed",
    }
    order |= {"id": "ord_42", "total_excl_vat": "2499.00"}
    back = orders.to_webcrm(order, _ctx())
    assert back["OpportunityOrganisationId"] == 7
    assert back["OpportunityErpId"] == "ord_42"
    assert back["OpportunityOrderValue"] == 2499.0
    assert _crm_values_without_refs(orders, back) == {
        **_crm_values_without_refs(orders, OPPORTUNITY),
        "total_excl_vat": "2499.00",
        "erp_id": "ord_42",
    }
    shop_line = lines.to_webshop(LINE, _ctx())
    assert shop_line == {
        "sku": "SKU-000-000001",
        "description": "Kontorstol grå",
        "quantity": "2",
        "unit_price": "1249.50",
        "list_price": "1300.00",
        "cost_price": "800.00",
        "discount_percent": "0.00",
        "vat_rate": "25.00",
        "position": 1,
        "product_id": "prd_1",
    }
    assert lines.webcrm_values(lines.to_webcrm(shop_line, _ctx())) == lines.webcrm_values(LINE)


def test_only_writes_the_named_properties() -> None:
    lm = MAPS[Datatype.customers]
    body = lm.to_webshop(organisation(0), _ctx(), only=["billing_address.city"])
    assert body == {"billing_address": {"city": company(0, 0).city}}
    assert lm.to_webcrm({"phone": "+45 1"}, _ctx(), only=["phone"]) == {
        "OrganisationTelephone": "+45 1"
    }


def test_webcrm_values_leave_out_constant_rows() -> None:
    lm = MAPS[Datatype.products]
    assert "currency" not in lm.webcrm_values(product(0))
    assert lm.webshop_values({"currency": "DKK", "active": True})["active"] is True


# ---------------------------------------------------------- errors the engine sees


def test_too_long_values_put_the_record_aside_with_every_problem() -> None:
    lm = MAPS[Datatype.customers]
    customer = {"name": "N" * 201, "billing_address": {"city": "C" * 51}}
    with pytest.raises(MappingError) as err:
        lm.to_webcrm(customer, _ctx())
    assert err.value.field == "OrganisationName"
    assert set(err.value.problems) == {
        ("OrganisationName", "is 201 characters; webCRM allows at most 200"),
        ("OrganisationCity", "is 51 characters; webCRM allows at most 50"),
    }
    assert "OrganisationName: is 201 characters" in str(err.value)
    assert lm.to_webcrm(customer, _ctx(), validate=False)["OrganisationName"] == "N" * 201


def test_mapping_error_names_the_source_field() -> None:
    lm = MAPS[Datatype.customers]
    with pytest.raises(MappingError) as err:
        lm.to_webshop({"OrganisationName": "X", "OrganisationCountry": "Atlantis"}, _ctx())
    assert err.value.field == "OrganisationCountry"
    assert "Atlantis" in err.value.message
    with pytest.raises(MappingError) as err:
        lm.to_webcrm({"name": "X", "billing_address": {"country": "ZZ"}}, _ctx())
    assert err.value.field == "billing_address.country"
    with pytest.raises(MappingError) as err:
        lm.to_webshop({"OrganisationName": ""}, _ctx(), only=["name"])
    assert err.value.field == "OrganisationName"
    assert "requires a name" in err.value.message


def test_order_waits_for_its_customer_and_needs_one() -> None:
    lm = MAPS[Datatype.orders]
    with pytest.raises(Unresolved) as waiting:
        lm.to_webshop({**OPPORTUNITY, "OpportunityOrganisationId": 8}, _ctx())
    assert waiting.value.ref_id == "8"
    with pytest.raises(MappingError) as err:
        lm.to_webshop({**OPPORTUNITY, "OpportunityOrganisationId": None}, _ctx())
    assert err.value.field == "OpportunityOrganisationId"
    assert "without an organisation" in err.value.message
    # an unchanged reference is not looked up: other properties still flow
    body = lm.to_webshop({**OPPORTUNITY, "OpportunityOrganisationId": 8}, _ctx(), only=["notes"])
    assert body == {"notes": "Levering før jul"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"OrganisationFoo": "x"}, "is not a field of webCRM Organisation"),
        ({"OrganisationName": 5}, "must be text"),
        ({"OrganisationId": "5"}, "must be a whole number"),
        ({"OrganisationId": 2**31}, "32-bit"),
        ({"OrganisationNoAds": "yes"}, "true or false"),
    ],
)
def test_validate_webcrm(body: dict[str, Any], problem: str) -> None:
    (found,) = validate_webcrm("Organisation", body)
    assert found[0] == next(iter(body))
    assert problem in found[1]


def test_validate_webcrm_numbers_and_enums() -> None:
    assert validate_webcrm("Opportunity", {"OpportunityOrderValue": 1.5}) == []
    assert validate_webcrm("Opportunity", {"OpportunityOrderValue": float("nan")})
    assert validate_webcrm("Opportunity", {"OpportunityErpStatus": "Done"})
    assert validate_webcrm("Opportunity", {"OpportunityErpStatus": "Synchronized"}) == []
    assert validate_webcrm("Organisation", {"OrganisationName": None}) == []
    assert validate_webcrm("Nope", {})[0][1].startswith("'Nope' is not a webCRM entity")


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"product_sku": "ProductCustom99"}, "fields.product_sku"),
        ({"product_name": "ProductPrice"}, "fields.product_name"),
        ({"line_sku": "QuotationLineFoo"}, "fields.line_sku"),
        ({"line_description": "Nope"}, "fields.line_description"),
        ({"organisation_email": "OrganisationMail"}, "fields.organisation_email"),
    ],
)
def test_misconfigured_field_names_fail_early(fields: dict[str, str], key: str) -> None:
    # The config model refuses these already; mappings() checks again for a config that
    # was built without validation (model_construct), naming the same key.
    with pytest.raises(ValueError):
        FieldsConfig(**fields)
    unchecked = FieldsConfig.model_construct(**{**FieldsConfig().model_dump(), **fields})
    with pytest.raises(ValueError, match=key):
        mappings(Config.model_construct(**{**dict(CFG), "fields": unchecked}))


# ------------------------------------------------------------------ order helpers


def test_confirmed_order_without_date_gets_todays_order_date() -> None:
    lm = MAPS[Datatype.orders]
    before = datetime.now(UTC).date()
    body = lm.to_webcrm({"status": "confirmed", "order_date": None}, _ctx(), only=["status"])
    after = datetime.now(UTC).date()  # the same day, unless the call straddled midnight
    assert body["OpportunityPercent"] == 100
    assert body["OpportunityOrderDate"] in {f"{d.isoformat()}T00:00:00Z" for d in (before, after)}
    # a dated order keeps its date (it flows through the order_date row)
    body = lm.to_webcrm({"status": "completed", "order_date": "2026-01-02"}, _ctx())
    assert body["OpportunityOrderDate"] == "2026-01-02T00:00:00Z"
    body = lm.to_webcrm(
        {"status": "confirmed", "order_date": "2026-01-02"}, _ctx(), only=["status"]
    )
    assert "OpportunityOrderDate" not in body
    # not won: no date is invented
    body = lm.to_webcrm({"status": "pending"}, _ctx(), only=["status"])
    assert "OpportunityOrderDate" not in body
    # a body that does not touch the status is left alone
    assert lm.to_webcrm({"notes": "x"}, _ctx(), only=["notes"]) == {"OpportunityDescription": "x"}


def test_assign_order_number() -> None:
    assert assign_order_number(CFG, 42) == "WC-000042"
    assert assign_order_number(CFG, "7") == "WC-000007"
    for bad in ("{id", "{number}"):
        mapping = MappingConfig.model_construct(
            **{**dict(CFG.mapping), "order_number_pattern": bad}
        )
        cfg = Config.model_construct(**{**dict(CFG), "mapping": mapping})
        with pytest.raises(ValueError, match=r"mapping\.order_number_pattern.*\{id\}"):
            assign_order_number(cfg, 1)
    assert needs_order_number({"OpportunityNumber": " "})
    assert needs_order_number({})
    assert not needs_order_number({"OpportunityNumber": "A-1"})


def test_erp_stamp_and_mark_lost() -> None:
    at = datetime(2026, 11, 26, 10, 15, 30, 999, tzinfo=UTC)
    stamp = erp_stamp(at, order_id="ord_1")
    assert stamp == {
        "OpportunityErpStatus": "Synchronized",
        "OpportunityErpSyncDateTime": "2026-11-26T10:15:30Z",
        "OpportunityErpId": "ord_1",
    }
    assert validate_webcrm("Opportunity", stamp) == []
    lost = mark_lost(date(2026, 11, 26))
    assert lost == {"OpportunityPercent": 0, "OpportunityLostDate": "2026-11-26T00:00:00Z"}
    status = MAPS[Datatype.orders].by_name["status"]
    assert status.webcrm_value(lost) == "cancelled"


def test_is_won() -> None:
    assert is_won(CFG, {"OpportunityPercent": 100})
    assert is_won(CFG, {"OpportunityPercent": 100.0, "OpportunityLostDate": ""})
    assert not is_won(CFG, {"OpportunityPercent": 90})
    assert not is_won(CFG, {})
    assert not is_won(CFG, {"OpportunityPercent": 100, "OpportunityLostDate": "2026-01-01"})
    assert is_won(Config(mapping=MappingConfig(won_percent=90)), {"OpportunityPercent": 90})


def test_line_and_product_helpers() -> None:
    assert line_parents(42, 7) == {
        "QuotationLineOpportunityId": 42,
        "QuotationLineOrganisationId": 7,
    }
    assert validate_webcrm("QuotationLine", line_parents(42, None)) == []
    assert product_deleted() == {"active": False}


# The readers that run for every record read (the unchanged fast path) are compiled
# from the rows once; they must give what the rows give, one by one.
_ANY = st.one_of(
    st.none(), st.text(max_size=12), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
)  # fmt: skip


@settings(max_examples=examples(60))
@given(data=st.data())
def test_whole_record_readers_give_what_each_row_gives(data: st.DataObject) -> None:
    for link in mappings(Config()).values():
        crm_keys = sorted({k for f in link.fields for k in f.webcrm})
        crm = data.draw(st.fixed_dictionaries({k: _ANY for k in crm_keys}))
        assert link.webcrm_values(crm) == {
            f.name: f.webcrm_value(crm) for f in link.fields if f.webcrm
        }
        shop: dict[str, object] = {}
        for f in link.fields:
            steps = f.webshop.split(".")
            target = shop
            for step in steps[:-1]:
                nested = data.draw(st.sampled_from([{}, None, "x"]))
                if not isinstance(target.get(step), dict):
                    target[step] = nested
                if not isinstance(target[step], dict):
                    break
                target = target[step]  # type: ignore[assignment]
            else:
                target[steps[-1]] = data.draw(_ANY)
        assert link.webshop_values(shop) == {f.name: f.webshop_value(shop) for f in link.fields}
