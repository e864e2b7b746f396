"""Stream declarations, singer-sdk style: what each readable collection *is*.

A stream says its primary key, the cursor field that orders changes, and its schema,
and nothing about HTTP. The engine iterates streams without knowing which system it
talks to; paging and auth stay in the clients. webCRM's schema is the generated field
list (``schema.py``); the webshop's records are the contract's JSON objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopsync.config.model import Datatype, System
from shopsync.connectors.webcrm.fieldspec import EntitySpec
from shopsync.connectors.webcrm.schema import OPPORTUNITY, ORGANISATION, PRODUCT, QUOTATIONLINE


@dataclass(frozen=True)
class Stream:
    """One readable collection of one system."""

    system: System
    datatype: Datatype
    name: str
    """webCRM entity (``Organisation``) or webshop collection (``customers``)."""
    primary_key: str
    cursor_field: str
    """Monotonic per change; incremental reads resume from its last value."""
    schema: EntitySpec | None = None
    """webCRM field list; None for webshop streams (their schema is the contract)."""
    parent: str | None = None
    """Read through another stream (order lines live inside orders in the webshop)."""


def _webcrm(datatype: Datatype, spec: EntitySpec) -> Stream:
    return Stream(
        system=System.webcrm,
        datatype=datatype,
        name=spec.name,
        primary_key=spec.id_field,
        cursor_field=spec.updated_at_field,
        schema=spec,
    )


WEBCRM_STREAMS: dict[Datatype, Stream] = {
    Datatype.customers: _webcrm(Datatype.customers, ORGANISATION),
    Datatype.products: _webcrm(Datatype.products, PRODUCT),
    Datatype.orders: _webcrm(Datatype.orders, OPPORTUNITY),
    Datatype.order_lines: _webcrm(Datatype.order_lines, QUOTATIONLINE),
}

WEBSHOP_STREAMS: dict[Datatype, Stream] = {
    Datatype.customers: Stream(System.webshop, Datatype.customers, "customers", "id", "updated_at"),
    Datatype.products: Stream(System.webshop, Datatype.products, "products", "id", "updated_at"),
    Datatype.orders: Stream(System.webshop, Datatype.orders, "orders", "id", "updated_at"),
    Datatype.order_lines: Stream(
        System.webshop, Datatype.order_lines, "orders", "id", "updated_at", parent="orders"
    ),
}
"""The webshop has no line collection: lines are read (and written) with their order."""
