"""Order totals and decimal formats: exact arithmetic, one rounding, half up."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopsync.contract import load_contract
from shopsync.contract.money import (
    MONEY,
    MONEY_PATTERN,
    PERCENT,
    PERCENT_PATTERN,
    QUANTITY,
    QUANTITY_PATTERN,
    LineAmounts,
    format_money,
    format_plain,
    order_total,
)

money = st.decimals(min_value=0, max_value=Decimal("9999999999999.99"), places=2)
quantity = st.decimals(min_value=0, max_value=Decimal("9999999999.9999"), places=4)
percent = st.decimals(min_value=0, max_value=100, places=2)
lines = st.lists(st.builds(LineAmounts, quantity, money, percent), max_size=25)


def reference_total(items: list[LineAmounts], discount: Decimal) -> Decimal:
    """The contract's formula with fractions, rounded half up by hand."""
    exact = sum(
        (
            Fraction(x.quantity) * Fraction(x.unit_price) * (1 - Fraction(x.discount_percent) / 100)
            for x in items
        ),
        Fraction(0),
    ) * (1 - Fraction(discount) / 100)
    cents = exact * 100
    whole = cents.numerator // cents.denominator
    if cents - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole) / 100


def test_contract_example_total() -> None:
    items = [
        LineAmounts(Decimal(2), Decimal("1249.50"), Decimal(10)),
        LineAmounts(Decimal(1), Decimal("349.00"), Decimal(0)),
    ]
    assert order_total(items, Decimal(5)) == Decimal("2468.20")
    example = load_contract()["components"]["examples"]["Order"]["value"]
    assert example["total_excl_vat"] == "2468.20"


@pytest.mark.parametrize(
    ("quantity_", "price", "discount", "expected"),
    [
        ("3", "0.35", "50", "0.53"),  # 0.525: half up, where half-even would give 0.52
        ("1", "0.01", "50", "0.01"),  # 0.005 → 0.01
        ("1", "0.01", "50.01", "0.00"),  # 0.004999 → 0.00
        ("0.125", "8.00", "0", "1.00"),
        ("2", "10", "100", "0.00"),
    ],
)
def test_rounding_once_half_up(quantity_: str, price: str, discount: str, expected: str) -> None:
    items = [LineAmounts(Decimal(quantity_), Decimal(price))]
    assert format_money(order_total(items, Decimal(discount))) == expected


def test_rounds_only_at_the_end() -> None:
    # Three lines of 0.005 each: rounding per line would give 0.03, the contract 0.02.
    items = [LineAmounts(Decimal("0.5"), Decimal("0.01"))] * 3
    assert order_total(items, Decimal(0)) == Decimal("0.02")


@given(lines, percent)
def test_total_is_the_exact_formula_rounded_half_up(items: list[LineAmounts], d: Decimal) -> None:
    assert order_total(items, d) == reference_total(items, d)


@given(lines, percent, st.randoms())
def test_line_order_does_not_matter(
    items: list[LineAmounts], d: Decimal, rnd: random.Random
) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert order_total(shuffled, d) == order_total(items, d)


@given(lines)
def test_full_order_discount_is_zero(items: list[LineAmounts]) -> None:
    assert order_total(items, Decimal(100)) == 0


@given(money)
def test_money_format_round_trips(value: Decimal) -> None:
    text = format_money(value)
    assert MONEY.matches(text) or len(text.split(".")[0]) > 13
    assert Decimal(text) == value
    assert text.split(".")[1].__len__() == 2


@given(st.one_of(quantity, percent))
def test_plain_format_has_no_exponent_or_trailing_zeros(value: Decimal) -> None:
    text = format_plain(value)
    assert "E" not in text and "e" not in text
    assert Decimal(text) == value
    if "." in text:
        assert not text.endswith("0")


@given(st.from_regex(MONEY_PATTERN, fullmatch=True))
def test_every_money_string_of_the_pattern_is_money(text: str) -> None:
    assert MONEY.matches(text)
    Decimal(text)


def test_patterns_are_the_contracts() -> None:
    schemas = load_contract()["components"]["schemas"]
    assert schemas["Money"]["pattern"] == MONEY_PATTERN
    assert schemas["Quantity"]["pattern"] == QUANTITY_PATTERN
    assert schemas["Percent"]["pattern"] == PERCENT_PATTERN


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        (MONEY, ["0", "12", "1249.50", "9999999999999.99"], ["-1", "1.234", "1e3", "", " 1", "١٢"]),
        (QUANTITY, ["0", "1.5", "0.0001", "9999999999"], ["1.23456", "-2", "12345678901"]),
        (PERCENT, ["0", "12.5", "100", "100.00", "99.99"], ["100.01", "101", "-1", "1.234"]),
    ],
)
def test_formats(fmt: object, good: list[str], bad: list[str]) -> None:
    for text in good:
        assert fmt.matches(text), text  # type: ignore[attr-defined]
    for text in bad:
        assert not fmt.matches(text), text  # type: ignore[attr-defined]
