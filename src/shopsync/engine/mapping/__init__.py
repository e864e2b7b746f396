"""The mapping tables of ``dataflow.md`` in code, and the merge criteria.

``mappings(config)`` gives the engine one :class:`LinkMapping` per datatype; the
conversions live in ``conversions/``, the merge keys in ``merge/``. See
``docs/mapping.md`` for the tables as implemented and the decisions behind them.
"""

from __future__ import annotations

from shopsync.config.model import Config, Datatype
from shopsync.engine.mapping.base import (
    Direction,
    EngineSet,
    FieldMap,
    LinkMapping,
    MapContext,
    MappingError,
    Unresolved,
    validate_webcrm,
)
from shopsync.engine.mapping.customers import customer_mapping
from shopsync.engine.mapping.lines import line_mapping
from shopsync.engine.mapping.orders import order_mapping
from shopsync.engine.mapping.products import product_mapping

__all__ = [
    "Direction",
    "EngineSet",
    "FieldMap",
    "LinkMapping",
    "MapContext",
    "MappingError",
    "Unresolved",
    "mappings",
    "validate_webcrm",
]


def mappings(config: Config) -> dict[Datatype, LinkMapping]:
    """Every link's table for this configuration, in the order a run works (rule 6).

    Raises ValueError naming the configuration key when a configured webCRM field does
    not exist (``fields.product_sku = "ProductCustom99"``).
    """
    return {
        Datatype.customers: customer_mapping(config),
        Datatype.products: product_mapping(config),
        Datatype.orders: order_mapping(config),
        Datatype.order_lines: line_mapping(config),
    }
