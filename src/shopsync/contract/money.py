"""Decimal formats of the contract and the order total, computed exactly.

Money, quantities and percentages travel as decimal strings. The patterns below are the
ones in the OpenAPI document (a test keeps them equal); a value with more decimals than a
pattern allows is refused, never rounded, so a value written is the value read back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

MONEY_PATTERN = r"^[0-9]{1,13}(\.[0-9]{1,2})?$"
QUANTITY_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,4})?$"
PERCENT_PATTERN = r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$"
CENT = Decimal("0.01")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class DecimalFormat:
    """One decimal kind: how it is written in requests, and what a bad one is told."""

    name: str
    pattern: str
    rule: str
    """Human wording of the pattern, used in 422 messages."""

    def matches(self, text: str) -> bool:
        return re.fullmatch(self.pattern, text) is not None


MONEY = DecimalFormat(
    "money",
    MONEY_PATTERN,
    'a decimal string ≥ 0 with at most 13 digits before and 2 after the point, e.g. "1249.50"',
)
QUANTITY = DecimalFormat(
    "quantity",
    QUANTITY_PATTERN,
    'a decimal string ≥ 0 with at most 10 digits before and 4 after the point, e.g. "2" or "1.5"',
)
PERCENT = DecimalFormat(
    "percent",
    PERCENT_PATTERN,
    'a percentage from "0" to "100" with at most 2 decimals, e.g. "25" or "12.5"',
)


def format_money(value: Decimal) -> str:
    """Money as the server answers it: exactly two decimals (``"1249.50"``)."""
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):f}"


def format_plain(value: Decimal) -> str:
    """Quantities and percentages: no exponent, no trailing zeros (``"2"``, ``"12.5"``)."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class LineAmounts:
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal = Decimal(0)


def order_total(lines: Iterable[LineAmounts], order_discount_percent: Decimal) -> Decimal:
    """``Σ q × p × (1 − d/100)``, then ``× (1 − D/100)``, rounded once, half up, to cents.

    Everything before the final rounding is exact: the sum is taken in hundredths of
    percent with enough precision for any values the formats allow (1000 lines of
    10-digit quantities and 13-digit prices need < 50 digits).
    """
    with localcontext() as ctx:
        ctx.prec = 80
        gross = sum(
            (line.quantity * line.unit_price * (HUNDRED - line.discount_percent) for line in lines),
            Decimal(0),
        )
        exact = gross * (HUNDRED - order_discount_percent) / (HUNDRED * HUNDRED)
        return exact.quantize(CENT, rounding=ROUND_HALF_UP)
