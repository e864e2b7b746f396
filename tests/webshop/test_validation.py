"""Request validation: every bad field named by its path, decimals only as strings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopsync.emulators.webshop.problems import Problem
from shopsync.emulators.webshop.validation import (
    CustomerIn,
    OrderIn,
    ProductIn,
    check,
    field_path,
    merge_patch,
    parse_body,
    validate,
)


def errors(model: Any, document: dict[str, Any]) -> dict[str, str]:
    result, found = check(model, document)
    assert result is None
    return {e.field: e.message for e in found}


def test_every_bad_customer_field_is_named() -> None:
    found = errors(
        CustomerIn,
        {
            "name": "",
            "email": "not-an-email",
            "billing_address": {"country": "XX", "city": 7},
            "shipping_address": {"country": "dk", "street": "x"},
            "surprise": True,
            "version": 3,
        },
    )
    assert set(found) == {
        "name", "email", "billing_address.country", "billing_address.city",
        "shipping_address.country", "shipping_address.street", "surprise", "version",
    }  # fmt: skip
    assert found["surprise"] == "unknown field"
    assert found["version"] == "read-only: set by the server"
    assert "alpha-2" in found["billing_address.country"]
    assert "email" in found["email"]


def test_json_numbers_for_decimals_are_refused_by_name() -> None:
    found = errors(
        OrderIn,
        {
            "order_number": "O-1", "customer_id": "cus_1", "currency": "DKK",
            "discount_percent": 5,
            "lines": [
                {"quantity": "1", "unit_price": "1"},
                {"quantity": 2.5, "unit_price": "1.234", "discount_percent": "101"},
            ],
        },
    )  # fmt: skip
    assert set(found) == {
        "discount_percent", "lines[1].quantity", "lines[1].unit_price",
        "lines[1].discount_percent",
    }  # fmt: skip
    assert found["lines[1].quantity"].endswith("not a JSON number")
    assert "2 after the point" in found["lines[1].unit_price"]


def test_product_rules() -> None:
    found = errors(
        ProductIn,
        {
            "sku": "", "name": "x" * 201, "unit_price": "-1", "currency": "EURO",
            "vat_rate": "100.5", "stock_status": "sold", "active": "yes",
        },
    )  # fmt: skip
    assert set(found) == {
        "sku",
        "name",
        "unit_price",
        "currency",
        "vat_rate",
        "stock_status",
        "active",
    }
    assert "in_stock" in found["stock_status"]


def test_required_and_null() -> None:
    assert errors(ProductIn, {"name": None}) == {
        "sku": "required", "name": "must not be null", "unit_price": "required",
        "currency": "required",
    }  # fmt: skip


def test_valid_documents_and_defaults() -> None:
    product = validate(ProductIn, {"sku": "A", "name": "B", "unit_price": "1", "currency": "DKK"})
    assert product.model_dump()["vat_rate"] == 0
    assert product.model_dump()["stock_status"] == "in_stock"
    assert product.model_dump()["active"] is True
    customer = validate(CustomerIn, {"name": "Æblegård ApS", "billing_address": {"country": "NO"}})
    assert customer.model_dump()["billing_address"]["country"] == "NO"


def test_strings_postgresql_cannot_store() -> None:
    found = errors(CustomerIn, {"name": "a\x00b", "notes": "\ud800", "phone": "ok"})
    assert set(found) == {"name", "notes"}
    assert "U+0000" in found["name"]


def test_dates_must_be_calendar_dates() -> None:
    base = {"order_number": "O", "customer_id": "c", "currency": "DKK"}
    assert set(errors(OrderIn, {**base, "order_date": "2025-02-30"})) == {"order_date"}
    assert set(errors(OrderIn, {**base, "order_date": 20250101})) == {"order_date"}
    assert validate(OrderIn, {**base, "order_date": "2024-02-29"}).model_dump()["order_date"]


def test_body_must_be_a_json_object() -> None:
    with pytest.raises(Problem) as bad_json:
        parse_body(b'{"name": ')
    assert bad_json.value.status == 400
    with pytest.raises(Problem) as array:
        parse_body(b"[1]")
    assert array.value.status == 400
    assert parse_body('{"name": "Ø"}'.encode()) == {"name": "Ø"}


def test_field_paths() -> None:
    assert field_path(("lines", 2, "quantity")) == "lines[2].quantity"
    assert field_path(("billing_address", "country")) == "billing_address.country"
    assert field_path(("events", 0)) == "events[0]"


def test_merge_patch() -> None:
    current = {"name": "A", "notes": "n", "address": {"city": "X", "line1": "Y"}, "lines": [1, 2]}
    patched = merge_patch(current, {"notes": None, "address": {"city": "Z"}, "lines": [3]})
    assert patched == {
        "name": "A",
        "notes": None,
        "address": {"city": "Z", "line1": "Y"},
        "lines": [3],
    }
    assert merge_patch({"address": None}, {"address": {"city": "Z"}}) == {"address": {"city": "Z"}}
    assert current["notes"] == "n"  # the original is untouched


@given(st.floats(allow_nan=False) | st.integers())
def test_no_json_number_is_ever_a_price(number: float) -> None:
    found = errors(ProductIn, {"sku": "A", "name": "B", "unit_price": number, "currency": "DKK"})
    assert set(found) == {"unit_price"}
