"""How each link's records are found on each side: ids, timestamps, collections.

One declaration per datatype (singer-sdk style): the webCRM entity and the webshop
collection, the primary keys and the incremental cursor fields, and whether the webCRM
side is read in full every run (the only way to see webCRM deletes of products and
quotation lines, which the API does not report).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shopsync.config.model import Datatype


@dataclass(frozen=True)
class Stream:
    datatype: Datatype
    webcrm_entity: str
    webshop_collection: str | None
    """None for order lines: they live inside webshop orders."""
    webcrm_full_scan: bool
    """Read every webCRM row each run (stage only the changed ones) to notice deletes."""

    # Cached: read for every record (its id and change time, several times each).
    @functools.cached_property
    def webcrm_id_field(self) -> str:
        return f"{self.webcrm_entity}Id"

    @functools.cached_property
    def webcrm_updated_field(self) -> str:
        return f"{self.webcrm_entity}UpdatedAt"

    @functools.cached_property
    def webcrm_created_field(self) -> str:
        return f"{self.webcrm_entity}CreatedAt"


STREAMS: dict[Datatype, Stream] = {
    Datatype.customers: Stream(Datatype.customers, "Organisation", "customers", False),
    Datatype.products: Stream(Datatype.products, "Product", "products", True),
    Datatype.orders: Stream(Datatype.orders, "Opportunity", "orders", False),
    Datatype.order_lines: Stream(Datatype.order_lines, "QuotationLine", None, True),
}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 / ISO 8601 timestamp as an aware UTC datetime (naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _utc(value)
    return _parse_text(str(value))


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> datetime:
    """A record's change time is read some six times while it is synced (staging, the
    stale check, each side of the decision, the snapshot): parsed once. Datetimes are
    immutable, so sharing one is safe."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _utc(datetime.fromisoformat(text))


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webcrm_id(stream: Stream, record: Mapping[str, Any]) -> str:
    return str(record[stream.webcrm_id_field])


def webcrm_updated(stream: Stream, record: Mapping[str, Any]) -> datetime | None:
    return parse_time(record.get(stream.webcrm_updated_field))


def webcrm_created(stream: Stream, record: Mapping[str, Any]) -> datetime | None:
    return parse_time(record.get(stream.webcrm_created_field))
