"""Seed data: deterministic, in the emulator's locales, partly the emulator's companies."""

from __future__ import annotations

import re
from decimal import Decimal

from shopsync.contract.money import LineAmounts, order_total
from shopsync.emulators.common.seeddata import COUNTRY, company, item
from shopsync.emulators.webshop.seeding import FAR, product_count, seed_plan, shares_company
from shopsync.emulators.webshop.validation import CustomerIn, OrderIn, ProductIn, validate


def normalized_vat(vat: str, country: str) -> str:
    """Merge criterion 1 of dataflow.md."""
    text = re.sub(r"[\s.\-]", "", vat).upper()
    return text[len(country) :] if text.startswith(country) else text


def host(website: str) -> str:
    text = re.sub(r"^https?://", "", website).rstrip("/")
    return text.removeprefix("www.")


def test_same_seed_same_shop() -> None:
    assert seed_plan(3, 40) == seed_plan(3, 40)
    assert seed_plan(3, 40) != seed_plan(4, 40)
    # A bigger shop starts with the same records.
    assert seed_plan(3, 60).customers[:40] == seed_plan(3, 40).customers


def test_a_third_of_customers_are_emulator_companies() -> None:
    seed, n = 7, 90
    plan = seed_plan(seed, n)
    assert len(plan.customers) == n
    shared = [i for i in range(n) if shares_company(i)]
    assert len(shared) == 30
    spellings = set()
    for i, customer in enumerate(plan.customers):
        if i in shared:
            c = company(seed, i)
            assert normalized_vat(customer["vat_number"], c.country) == normalized_vat(
                c.vat_number, c.country
            )
            assert host(customer["website"]) == host(c.website)
            assert customer["name"] == c.name
            spellings.add(customer["vat_number"] == c.vat_number)
        else:
            c = company(seed, FAR + i)
            assert customer["vat_number"] == c.vat_number
            # A new company: not one of the emulator's first n.
            assert all(
                normalized_vat(customer["vat_number"], c.country)
                != normalized_vat(company(seed, j).vat_number, company(seed, j).country)
                for j in range(0, n, 9)
            )
        assert customer["billing_address"]["country"] == c.country
    assert spellings == {True, False}  # some VAT numbers are spelt differently


def test_locales_are_the_emulators() -> None:
    countries = {c["billing_address"]["country"] for c in seed_plan(1, 60).customers}
    assert countries <= set(COUNTRY.values())
    assert len(countries) >= 4


def test_products_share_skus_with_even_items() -> None:
    plan = seed_plan(2, 200)
    assert len(plan.products) == product_count(200) == 40
    for j, product in enumerate(plan.products):
        expected = item(2, j if j % 2 == 0 else FAR + j)
        assert product["sku"] == expected.sku
        assert product["unit_price"] == expected.unit_price
    assert len({p["sku"] for p in plan.products}) == 40


def test_orders_reference_seeded_customers_and_products() -> None:
    plan = seed_plan(5, 60)
    customers = {c["id"] for c in plan.customers}
    products = {p["id"]: p["sku"] for p in plan.products}
    assert plan.orders
    numbers = [o["order_number"] for o in plan.orders]
    assert numbers == [f"WS-{10001 + k}" for k in range(len(numbers))]
    with_product = without = 0
    for order in plan.orders:
        assert order["customer_id"] in customers
        assert 1 <= len(order["lines"]) <= 5
        for line in order["lines"]:
            if line["product_id"] is None:
                without += 1
                assert line["sku"] not in products.values()
            else:
                with_product += 1
                assert products[line["product_id"]] == line["sku"]
        order_total(
            [
                LineAmounts(x["quantity"], x["unit_price"], x["discount_percent"])
                for x in order["lines"]
            ],
            order["discount_percent"],
        )
    assert with_product > without > 0


def test_seed_records_pass_the_servers_own_validation() -> None:
    plan = seed_plan(9, 30)

    def json_ready(values: dict[str, object]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in values.items():
            if key in ("id",) or key.startswith("_"):
                continue
            if isinstance(value, Decimal):
                value = f"{value:f}"
            elif isinstance(value, list):
                value = [json_ready(v) for v in value]  # type: ignore[arg-type]
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            out[key] = value
        return out

    for customer in plan.customers:
        validate(CustomerIn, json_ready(customer))
    for product in plan.products:
        validate(ProductIn, json_ready(product))
    for order in plan.orders:
        validate(OrderIn, json_ready(order))
