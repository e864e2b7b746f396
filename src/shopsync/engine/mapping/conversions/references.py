"""References to linked records: a webCRM id ⇄ the linked webshop id
(:func:`reference`), and an order line's sku → the webshop product
(:data:`PRODUCT_BY_SKU`).

The only conversions that consult the links in the :class:`MapContext`, and so the only
ones that raise :class:`Unresolved` (the record waits, rule 6).
"""

from __future__ import annotations

from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.mapping.conversions.base import (
    Conversion,
    MapContext,
    MappingError,
    Unresolved,
)
from shopsync.engine.mapping.conversions.text import norm_text


def _norm_ref(value: Any) -> str | None:
    """A reference id as text; webCRM's 0 means none."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and value == 0):
        return None
    text = norm_text(value)
    if text is None or text == "0":
        return None
    return text


def reference(datatype: Datatype, *, required_for: str = "") -> Conversion:
    """A webCRM id ⇄ webshop id of a linked record (``OpportunityOrganisationId`` ⇄
    ``customer_id``), translated through the links in the :class:`MapContext`.

    A reference that is set but not linked yet raises :class:`Unresolved` (the record
    waits, rule 6). An empty reference is None, except that when ``required_for`` names
    what needs it, an empty webCRM reference is a :class:`MappingError` (an opportunity
    without an organisation cannot become an order). Both sides normalize to their own
    id as text; the two id spaces are never compared with each other.
    """

    def to_shop(value: Any, ctx: MapContext) -> str | None:
        ref = _norm_ref(value)
        if ref is None:
            if required_for:
                raise MappingError("", f"is empty; {required_for}")
            return None
        linked = ctx.webshop_id(datatype, ref)
        if linked is None:
            raise _unresolved(ctx, datatype, "webcrm", ref)
        return linked

    def to_crm(value: Any, ctx: MapContext) -> int | None:
        ref = _norm_ref(value)
        if ref is None:
            return None
        linked = ctx.webcrm_id(datatype, ref)
        if linked is None:
            raise _unresolved(ctx, datatype, "webshop", ref)
        try:
            return int(linked)
        except ValueError:
            raise MappingError("", f"linked webCRM id {linked!r} is not a number") from None

    return Conversion(
        f"reference {datatype.value}",
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=_norm_ref,
        norm_webshop=_norm_ref,
    )


def _unresolved(ctx: MapContext, datatype: Datatype, side: str, ref: str) -> Exception:
    """Waiting (:class:`Unresolved`) for a reference that may yet be linked; put aside
    (:class:`MappingError`) for one whose link ended with a delete: it never will be."""
    why = ctx.unlinked(datatype, side, ref)
    if why is None:
        return Unresolved(datatype, side, ref)
    return MappingError("", why)


def _product_for_sku(value: Any, ctx: MapContext) -> str | None:
    sku = norm_text(value)
    return None if sku is None else ctx.product_id_for_sku(sku)


PRODUCT_BY_SKU = Conversion(
    "product by sku",
    to_webshop=_product_for_sku,
    norm_webcrm=norm_text,
    norm_webshop=_norm_ref,
)
"""A line's sku → the webshop product with that sku (None when there is none). Only
``→``; the webCRM side's value is the sku, the webshop side's the product id."""
