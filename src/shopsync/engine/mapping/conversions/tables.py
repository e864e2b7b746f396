"""Conversions through a configured table: ``mapping.vat_codes`` (a webCRM VAT code ⇄
the webshop's rate, :func:`vat_codes`) and ``mapping.stock_status`` (:func:`value_table`).

Both are lossy the same way: several webCRM values may stand for one webshop value, so
both sides normalize to the webshop's value and the way back takes the *first* key; a
``""`` key is what an empty webCRM field stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from shopsync.engine.mapping.conversions.base import Conversion, MapContext, MappingError
from shopsync.engine.mapping.conversions.numbers import _format, _to_decimal
from shopsync.engine.mapping.conversions.text import norm_text


def _rate_text(d: Decimal) -> str:
    return _format(d, 2, trim=False)


def _code_number(code: str) -> Decimal | None:
    """A VAT code that is a number (``25``, ``12,5``, ``25 %``) as that number."""
    text = code.strip().removesuffix("%").strip().replace(",", ".")
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _no_vat_rate(value: Any, *, listed: bool) -> MappingError:
    """Why a webCRM VAT code gives the webshop no rate: it is empty and the table has no
    ``""`` row, or it is not in the table (``listed``: the table lists codes), or it is
    not a number (the table lists none)."""
    text = norm_text(value)
    if text is None:
        return MappingError(
            "",
            'is empty, and the webshop requires vat_rate (mapping.vat_codes has no "" row)',
        )
    if listed:
        return MappingError("", f"VAT code {text!r} is not in mapping.vat_codes")
    return MappingError(
        "", f"VAT code {text!r} is not a number and mapping.vat_codes lists no codes"
    )


def _vat_code_for(table: Mapping[str, Decimal], rate: Decimal) -> str:
    """The *first* code of ``table`` listing ``rate`` (the way back when codes are listed)."""
    for code, r in table.items():
        if r == rate and code.strip():
            return code
    raise MappingError("", f"no VAT code for rate {_rate_text(rate)} in mapping.vat_codes")


def _norm_vat_rate(value: Any) -> Any:
    """The webshop side of :func:`vat_codes`: the rate with two decimals, whatever the
    table (a value that is no number is kept as text)."""
    try:
        rate = _to_decimal(value)
        return None if rate is None else _rate_text(rate)
    except MappingError:
        return norm_text(value)


def _vat_empty_default(empty_rate: Decimal | None) -> str | None:
    """:attr:`Conversion.empty_default` of :func:`vat_codes`: the ``""`` row's rate."""
    if empty_rate is None:
        return None
    return f"{_format(empty_rate, 2, trim=True)} % (mapping.vat_codes)"


def vat_codes(table: Mapping[str, Decimal]) -> Conversion:
    """webCRM ``ProductVatCode`` ⇄ webshop ``vat_rate`` through ``mapping.vat_codes``.

    A key ``""`` is the rate of an empty code (the default table: ``"" = 25``); the
    other keys are codes. Without codes a code that is a number is that rate
    (``"25"`` ⇄ ``"25.00"``), and the rate goes back as the shortest number (``"12.5"``).
    With codes, the way back is the *first* code listing the rate, and both sides
    normalize to the rate, so two codes for one rate are one value (a user switching
    between them is no change); the empty code's rate normalizes the same way, so the
    rate written for it is no change either. An empty code without a ``""`` row cannot
    become a product's rate (the webshop requires ``vat_rate``): a :class:`MappingError`.
    """
    by_code = {k.strip(): v for k, v in table.items() if k.strip()}
    by_fold = {k.casefold(): v for k, v in by_code.items()}
    empty_rate = next((v for k, v in table.items() if not k.strip()), None)

    def rate_of(code: Any) -> Decimal | None:
        text = norm_text(code) or ""
        if not text:
            return empty_rate
        if by_code:
            hit = by_code.get(text)
            return hit if hit is not None else by_fold.get(text.casefold())
        return _code_number(text)

    def to_shop(value: Any, ctx: MapContext) -> str:
        rate = rate_of(value)
        if rate is None:
            raise _no_vat_rate(value, listed=bool(by_code))
        return _rate_text(rate)

    def to_crm(value: Any, ctx: MapContext) -> str:
        rate = _to_decimal(value)
        if rate is None:
            return ""
        if not by_code:
            return _format(rate, 2, trim=True)
        return _vat_code_for(table, rate)

    def norm_crm(value: Any) -> Any:
        try:
            rate = rate_of(value)
            return _rate_text(rate) if rate is not None else norm_text(value)
        except MappingError:
            return norm_text(value)

    return Conversion(
        "vat code",
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm_crm,
        norm_webshop=_norm_vat_rate,
        empty_default=_vat_empty_default(empty_rate),
    )


def value_table(name: str, table: Mapping[str, str]) -> Conversion:
    """webCRM free text ⇄ a webshop enum through a configured table (stock status).

    A webCRM value matches its key exactly or ignoring case; the way back uses the
    *first* key for a value. Both sides normalize to the enum value. A key ``""`` gives
    the value of an empty webCRM field (the default ``mapping.stock_status`` has
    ``"" = "in_stock"``: stock not tracked in webCRM); it is never written back, and the
    normalizer gives the value too, so writing it is no change. Unknown values either
    way are a :class:`MappingError` naming the table.
    """
    by_fold = {k.strip().casefold(): v for k, v in table.items()}
    back: dict[str, str] = {}
    for k, v in table.items():
        if k.strip():
            back.setdefault(v, k)
    empty = by_fold.get("")

    def lookup(value: Any) -> str | None:
        text = norm_text(value) or ""
        return by_fold.get(text.casefold())

    def to_shop(value: Any, ctx: MapContext) -> str:
        hit = lookup(value)
        if hit is None:
            text = norm_text(value)
            if text is None:
                raise MappingError(
                    "", f'is empty, and the webshop requires a value ({name} has no "" row)'
                )
            known = ", ".join(repr(k) for k in table if k.strip())
            raise MappingError("", f"{text!r} is not in {name} ({known})")
        return hit

    def to_crm(value: Any, ctx: MapContext) -> str:
        text = norm_text(value)
        if text is None:
            return ""
        if text not in back:
            raise MappingError("", f"{text!r} has no webCRM value in {name}")
        return back[text]

    def norm_crm(value: Any) -> str | None:
        return lookup(value) or norm_text(value)

    return Conversion(
        name,
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm_crm,
        norm_webshop=norm_text,
        empty_default=None if empty is None else f"{empty} ({name})",
    )
