"""Quotationline ⇄ Order line: the fourth table of ``dataflow.md``, row by row.

The table maps one webCRM ``QuotationLine`` record to one element of a webshop order's
``lines`` list (paths without the ``lines[].`` prefix). The engine assembles the list:
the webshop replaces ``lines`` as a whole on PATCH, keeping a line's ``id`` when it is
sent back, so the engine adds the linked line's ``id`` to each element it maps.
"""

from __future__ import annotations

from typing import Any

from shopsync.config.model import Config, Datatype
from shopsync.engine.mapping.base import (
    EngineSet,
    FieldMap,
    LinkMapping,
    both,
    require_webcrm_field,
    to_webshop,
)
from shopsync.engine.mapping.conversions import (
    DISCOUNT,
    INTEGER,
    LINE_MONEY,
    LINE_QUANTITY,
    MONEY,
    PERCENT,
    PRODUCT_BY_SKU,
    TEXT,
)


def line_mapping(cfg: Config) -> LinkMapping:
    """The Quotationline ⇄ order line link; ``QuotationLineId`` ⇄ ``lines[].id``."""
    f = cfg.fields
    require_webcrm_field("QuotationLine", f.line_sku, "fields.line_sku")
    require_webcrm_field("QuotationLine", f.line_description, "fields.line_description")
    # fmt: off
    rows: list[FieldMap] = [
        both(f.line_sku,                    "sku",              TEXT),
        both(f.line_description,            "description",      TEXT),
        both("QuotationLineQuantity",       "quantity",         LINE_QUANTITY),  # required
        both("QuotationLinePrice",          "unit_price",       LINE_MONEY),     # required
        both("QuotationLineListPrice",      "list_price",       MONEY),
        both("QuotationLineCostPrice",      "cost_price",       MONEY),
        both("QuotationLineDiscount",       "discount_percent", DISCOUNT),
        both("QuotationLineVatPercentage",  "vat_rate",         PERCENT),
        both("QuotationLineSortOrder",      "position",         INTEGER),
        to_webshop(f.line_sku,              "product_id",       PRODUCT_BY_SKU),
    ]
    engine_set = (
        EngineSet(("QuotationLineOpportunityId",), "the order",
                  "the opportunity linked to the line's order: line_parents()"),
        EngineSet(("QuotationLineOrganisationId",), "—",
                  "← the opportunity's organisation: line_parents()"),
    )
    # fmt: on
    return LinkMapping(
        Datatype.order_lines,
        tuple(rows),
        webcrm_entity="QuotationLine",
        id_fields=("QuotationLineId", "id"),
        engine_set=engine_set,
    )


def line_parents(opportunity_id: int, organisation_id: int | None) -> dict[str, Any]:
    """The fields the engine adds to every QuotationLine body it writes: the line belongs
    to the opportunity linked to its order, and to that opportunity's organisation."""
    return {
        "QuotationLineOpportunityId": int(opportunity_id),
        "QuotationLineOrganisationId": None if organisation_id is None else int(organisation_id),
    }
