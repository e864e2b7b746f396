"""Currency: webCRM's currency name ⇄ the webshop's ISO 4217 code.

Apart from the countries although both read pycountry: an empty webCRM currency stands
for a configured default (``mapping.default_currency``), which no country does.
"""

from __future__ import annotations

from typing import Any

import pycountry

from shopsync.engine.mapping.conversions.base import Conversion, MapContext, MappingError
from shopsync.engine.mapping.conversions.text import norm_text


def currency_code(value: str) -> str | None:
    """ISO 4217 code of ``DKK``/``dkk``/``Danish Krone``, or None."""
    text = value.strip()
    if not text:
        return None
    c = pycountry.currencies.get(alpha_3=text.upper())
    if c is None:
        try:
            c = pycountry.currencies.lookup(text)
        except LookupError:
            return None
    return str(c.alpha_3)


def currency(default: str) -> Conversion:
    """webCRM's currency name ⇄ ISO 4217; an empty webCRM currency is ``default``."""

    def norm_crm(value: Any) -> str | None:
        text = norm_text(value)
        if text is None:
            return default
        return currency_code(text) or text

    def norm_shop(value: Any) -> str | None:
        text = norm_text(value)
        if text is None:
            return None
        return currency_code(text) or text

    def to_shop(value: Any, ctx: MapContext) -> str:
        text = norm_text(value)
        if text is None:
            return default
        code = currency_code(text)
        if code is None:
            raise MappingError("", f"{text!r} is not an ISO 4217 currency")
        return code

    def to_crm(value: Any, ctx: MapContext) -> str:
        text = norm_text(value)
        if text is None:
            return ""
        return currency_code(text) or text

    return Conversion(
        "currency",
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm_crm,
        norm_webshop=norm_shop,
        empty_default=f"{default} (mapping.default_currency)",
    )
