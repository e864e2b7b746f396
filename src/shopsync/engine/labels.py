"""A human label for a record (its name, SKU or number), shown beside its id.

Every listing (the sync plan, ``links``, ``problems``, ``status``) prints ids in full
and this label next to them, so that a person can tell ``cus_5264c3b…`` is "Acme ApS"
without opening either system.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shopsync.config.model import Config, Datatype


def text(value: Any) -> str:
    """A value on one line: JSON for structures, runs of whitespace as one space."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(str(value).split())


def record_label(
    config: Config, datatype: Datatype | str, system: str, data: Mapping[str, Any] | None
) -> str:
    """A human label for a record, from its data as one side sent it.

    Customers: the name; products: SKU and name; orders: the number (else the
    description); order lines: SKU and description. ``""`` when there is nothing.
    """
    if not data:
        return ""
    dt, f = Datatype(datatype), config.fields
    if system == "webcrm":
        keys = {
            Datatype.customers: ("OrganisationName",),
            Datatype.products: (f.product_sku, f.product_name),
            Datatype.orders: ("OpportunityNumber", "OpportunityDescription"),
            Datatype.order_lines: (f.line_sku, f.line_description),
        }[dt]
    else:
        keys = {
            Datatype.customers: ("name",),
            Datatype.products: ("sku", "name"),
            Datatype.orders: ("order_number", "notes"),
            Datatype.order_lines: ("sku", "description"),
        }[dt]
    parts = [found for key in keys if (found := text(data.get(key)))]
    if dt is Datatype.orders:
        parts = parts[:1]
    return " · ".join(parts)


def snapshot_label(config: Config, datatype: Datatype, props: Mapping[str, Any] | None) -> str:
    """A link's label from its last agreed values (property names are webshop paths)."""
    values = {}
    for prop, pair in (props or {}).items():
        if isinstance(pair, dict):
            values[prop] = pair.get("s") if pair.get("s") not in (None, "") else pair.get("c")
    return record_label(config, datatype, "webshop", values)
