"""Free text: :data:`TEXT`, :func:`norm_text` and :func:`required`.

:func:`norm_text` is the canonical text every other normalizer falls back on for a value
it cannot read (the first promise in the package docstring), so it lives in the module
the others import. :func:`required` turns an empty webshop value into a
:class:`MappingError` for the fields the webshop contract requires.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from shopsync.engine.mapping.conversions.base import Conversion, MapContext, MappingError


def norm_text(value: Any) -> str | None:
    """Canonical text: NFC, ``\\r\\n`` → ``\\n``, outer whitespace dropped, empty → None.

    Outer whitespace and Unicode composition are invisible to people and some systems
    change them on save; counting them as edits would make echoes. The text itself
    (æ ø å ß, inner spacing, case) is kept exactly.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.strip() or None


def _text_to_webshop(value: Any, ctx: MapContext) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _text_to_webcrm(value: Any, ctx: MapContext) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


TEXT = Conversion(
    "text",
    to_webshop=_text_to_webshop,
    to_webcrm=_text_to_webcrm,
    norm_webcrm=norm_text,
    norm_webshop=norm_text,
)
"""Free text. Values are written as typed; webCRM's maximum lengths are checked on the
whole body (``LinkMapping.to_webcrm`` → ``validate_webcrm``), not truncated."""


def required(conversion: Conversion, what: str) -> Conversion:
    """``conversion``, but an empty result towards the webshop is a :class:`MappingError`.

    For webshop fields the contract requires (a customer's name, a product's sku...):
    better put aside with "is empty" than sent and refused.
    """
    inner = conversion.to_webshop

    def to_shop(value: Any, ctx: MapContext) -> Any:
        result = inner(value, ctx)
        if result is None:
            raise MappingError("", f"is empty, and the webshop requires {what}")
        return result

    return Conversion(
        f"required {conversion.name}",
        to_webshop=to_shop,
        to_webcrm=conversion.to_webcrm,
        norm_webcrm=conversion.norm_webcrm,
        norm_webshop=conversion.norm_webshop,
    )
