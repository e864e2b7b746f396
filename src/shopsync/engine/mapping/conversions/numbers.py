"""Numbers: decimals rounded half-up (money, percents, quantities) and whole numbers.

webCRM stores doubles and the webshop decimal strings; reading both through
:class:`~decimal.Decimal` with one rounding rule keeps webCRM's ``1.005`` the 1.005 a
person typed. The private readers (``_to_decimal``, ``_to_int``, ``_format``) are also
how the VAT table (``tables.py``) and the status table (``status.py``) read numbers.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from shopsync.engine.mapping.conversions.base import Conversion, MapContext, MappingError
from shopsync.engine.mapping.conversions.text import norm_text


def _to_decimal(value: Any) -> Decimal | None:
    """A JSON number or decimal string as a finite Decimal; None when empty.

    Floats go through ``repr`` (the shortest text that reads back as the same double), so
    webCRM's ``1.005`` is the decimal 1.005 a person typed, not 1.00499999….
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise MappingError("", f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MappingError("", f"expected a finite number, got {value!r}")
        d = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise MappingError("", f"{value!r} is not a decimal number") from None
    else:
        raise MappingError("", f"expected a number, got {type(value).__name__}")
    if not d.is_finite():
        raise MappingError("", f"expected a finite number, got {value!r}")
    return d


_WIDE = Context(prec=400, traps=[InvalidOperation])
"""Enough digits for any double (up to 1e308); beyond that, a clear error. One context
for every call: entering a ``localcontext`` per value cost more than the rounding."""
_STEPS = {places: Decimal(1).scaleb(-places) for places in range(0, 9)}


def _quantize(d: Decimal, places: int) -> Decimal:
    step = _STEPS.get(places) or Decimal(1).scaleb(-places)
    try:
        q = d.quantize(step, rounding=ROUND_HALF_UP, context=_WIDE)
    except InvalidOperation:
        raise MappingError("", f"{d} is too large") from None
    return q if q != 0 else abs(q)  # no "-0.00"


def _format(d: Decimal, places: int, trim: bool) -> str:
    q = _quantize(d, places)
    if trim:
        q = q.normalize()
        q = q if q != 0 else Decimal(0)
    return format(q, "f")


def decimal_conversion(
    name: str,
    places: int,
    *,
    trim: bool = False,
    empty_is_zero: bool = False,
    empty_default: str | None = None,
) -> Conversion:
    """webCRM double ⇄ webshop decimal string, rounded half-up to ``places``.

    ``trim`` writes ``"2"`` rather than ``"2.0000"`` (quantities); ``empty_is_zero`` treats
    an empty value as 0 on both sides (a discount that is not set is no discount);
    ``empty_default`` marks that 0 as a default (see ``Conversion.empty_default``).
    """
    zero = Decimal(0)

    def dec(value: Any) -> Decimal | None:
        d = _to_decimal(value)
        return zero if d is None and empty_is_zero else d

    def to_shop(value: Any, ctx: MapContext) -> str | None:
        d = dec(value)
        return None if d is None else _format(d, places, trim)

    def to_crm(value: Any, ctx: MapContext) -> float | None:
        d = dec(value)
        return None if d is None else float(_quantize(d, places))

    def norm(value: Any) -> Any:
        try:
            d = dec(value)
            return None if d is None else _format(d, places, trim)
        except MappingError:
            return norm_text(value)

    return Conversion(
        name,
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm,
        norm_webshop=norm,
        empty_default=empty_default,
    )


MONEY = decimal_conversion("money", 2)
"""Prices and totals: ``1249.5`` ⇄ ``"1249.50"``; None stays None."""
PERCENT = decimal_conversion("percent", 2)
"""A rate in percent (VAT on a line): ``25`` ⇄ ``"25.00"``."""
DISCOUNT = decimal_conversion("discount", 2, empty_is_zero=True)
"""A discount in percent; empty is 0 (``"0.00"``), as the webshop's field is required."""
QUANTITY = decimal_conversion("quantity", 4, trim=True)
"""Quantities: up to 4 decimals (``0.3333`` hours, ``2.5`` m), written trimmed (``"2"``)."""
LINE_QUANTITY = decimal_conversion(
    "quantity, empty is 0", 4, trim=True, empty_is_zero=True, empty_default="0 (empty is 0)"
)
"""An order line's quantity, which the webshop requires: as :data:`QUANTITY`, and an
empty webCRM quantity (a text line) is 0, what webCRM computes the line's value with."""
LINE_MONEY = decimal_conversion(
    "money, empty is 0", 2, empty_is_zero=True, empty_default="0.00 (empty is 0)"
)
"""An order line's unit price, which the webshop requires: as :data:`MONEY`, and an empty
webCRM price (a text line) is 0.00."""


def _to_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise MappingError("", f"expected a whole number, got {value!r}")
    d = _to_decimal(value)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise MappingError("", f"expected a whole number, got {value!r}")
    return int(d)


def _int_convert(value: Any, ctx: MapContext) -> int | None:
    return _to_int(value)


def _norm_int(value: Any) -> Any:
    try:
        return _to_int(value)
    except MappingError:
        return norm_text(value)


INTEGER = Conversion(
    "integer",
    to_webshop=_int_convert,
    to_webcrm=_int_convert,
    norm_webcrm=_norm_int,
    norm_webshop=_norm_int,
)
"""Whole numbers (a line's sort order ⇄ position)."""
