"""Products ⇄ Product: the second table of ``dataflow.md``, row by row.

webCRM has no sku or name field: ``fields.product_sku`` / ``fields.product_name`` say
which free fields hold them (``ProductCustom1`` / ``ProductCustom2`` by default).
"""

from __future__ import annotations

from typing import Any

from shopsync.config.model import Config, Datatype
from shopsync.engine.mapping.base import (
    FieldMap,
    LinkMapping,
    both,
    constant,
    require_webcrm_field,
)
from shopsync.engine.mapping.conversions import MONEY, TEXT, required, value_table, vat_codes


def product_mapping(cfg: Config) -> LinkMapping:
    """The Products ⇄ Product link; ``ProductId`` ⇄ ``id`` is the link itself."""
    f, m = cfg.fields, cfg.mapping
    require_webcrm_field("Product", f.product_sku, "fields.product_sku")
    require_webcrm_field("Product", f.product_name, "fields.product_name")
    # fmt: off
    rows: list[FieldMap] = [
        both(f.product_sku,          "sku",          required(TEXT, "a sku")),  # merge criterion
        both(f.product_name,         "name",         required(TEXT, "a name")),
        both("ProductMemo",          "description",  TEXT),
        both("ProductPrice",         "unit_price",   required(MONEY, "a unit_price")),
        both("ProductListPrice",     "list_price",   MONEY),
        both("ProductCostPrice",     "cost_price",   MONEY),
        both("ProductVatCode",       "vat_rate",     vat_codes(m.vat_codes)),
        both("ProductStockStatus",   "stock_status", value_table("mapping.stock_status", m.stock_status)),
        constant("currency",         m.default_currency),
        constant("active",           True),  # deleted in webCRM → PRODUCT_DELETED (engine)
    ]
    # fmt: on
    return LinkMapping(
        Datatype.products,
        tuple(rows),
        webcrm_entity="Product",
        id_fields=("ProductId", "id"),
    )


def product_deleted() -> dict[str, Any]:
    """The webshop patch for a product deleted in webCRM (rule 5): it stays, inactive."""
    return {"active": False}
