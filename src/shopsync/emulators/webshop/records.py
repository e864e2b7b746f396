"""The three collections: how a row becomes a record and a validated document a row.

Each resource moves between three forms: the row (columns), *values* (a dict of Python
values — Decimal, date, nested dicts — keyed by API field names, used to compare and
assign), and the rendered JSON record. Comparing values, not rows, is what lets a PATCH
that changes nothing leave ``version`` and ``updated_at`` alone.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from shopsync.contract.money import LineAmounts, format_money, format_plain, order_total

from .clock import rfc3339
from .db import CustomerRow, OrderLineRow, OrderRow, ProductRow, RecordMixin, new_id
from .problems import FieldError, Problem
from .validation import CustomerIn, OrderIn, ProductIn, _Input, storable

ADDRESS_KEYS = ("line1", "line2", "postal_code", "city", "region", "country")
MONEY_FIELDS = frozenset({"unit_price", "list_price", "cost_price", "total_excl_vat"})
LINE_FIELDS = (
    "sku", "product_id", "description", "quantity", "unit_price", "list_price",
    "cost_price", "discount_percent", "vat_rate", "position",
)  # fmt: skip


def render(values: dict[str, Any]) -> dict[str, Any]:
    """Values as JSON: money with two decimals, other decimals plain, dates ISO."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Decimal):
            out[key] = format_money(value) if key in MONEY_FIELDS else format_plain(value)
        elif isinstance(value, date):
            out[key] = value.isoformat()
        elif isinstance(value, dict):
            out[key] = render(value)
        elif isinstance(value, list):
            out[key] = [render(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def tombstone(row: RecordMixin) -> dict[str, Any]:
    return {"id": row.id, "deleted": True, "updated_at": rfc3339(row.updated_at)}


class Resource:
    """What the API needs to know about one collection."""

    name: ClassVar[str]
    collection: ClassVar[str]
    prefix: ClassVar[str]
    row_type: ClassVar[type[RecordMixin]]
    model: ClassVar[type[_Input]]
    unique: ClassVar[str]

    def values(self, row: Any) -> dict[str, Any]:
        raise NotImplementedError

    def model_values(self, model: _Input) -> dict[str, Any]:
        return model.model_dump()

    def assign(self, row: Any, values: dict[str, Any]) -> None:
        for key, value in values.items():
            setattr(row, key, value)

    def extra(self, row: Any) -> dict[str, Any]:
        return {}

    def references(
        self, session: Session, values: dict[str, Any], current: Any | None
    ) -> list[FieldError]:
        """Checks that need the database (apart from uniqueness)."""
        return []

    def new_row(self, record_id: str | None = None) -> Any:
        row: Any = self.row_type()
        row.id = record_id or new_id(self.prefix)
        return row

    def to_api(self, row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            **render(self.values(row)),
            **render(self.extra(row)),
            "version": row.version,
            "created_at": rfc3339(row.created_at),
            "updated_at": rfc3339(row.updated_at),
        }

    def writable(self, row: Any) -> dict[str, Any]:
        """The record's writable fields as JSON: what a merge patch applies to."""
        return render(self.values(row))

    def check_unique(
        self, session: Session, values: dict[str, Any], current_id: str | None
    ) -> None:
        value = values.get(self.unique)
        if value is None:
            return
        column = getattr(self.row_type, self.unique)
        query = select(self.row_type.id).where(column == value, self.row_type.deleted == false())
        if current_id is not None:
            query = query.where(self.row_type.id != current_id)
        other = session.scalars(query.limit(1)).first()
        if other is not None:
            raise Problem(
                409,
                "conflict",
                f"{self.unique} {value!r} is already used by {self.name} {other}",
                [FieldError(self.unique, f"already used by {self.name} {other}")],
            )


def _address(row: Any, prefix: str) -> dict[str, Any] | None:
    address = {key: getattr(row, f"{prefix}_{key}") for key in ADDRESS_KEYS}
    return address if any(v is not None for v in address.values()) else None


def _clean_address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    if address is None or all(v is None for v in address.values()):
        return None
    return address


class Customers(Resource):
    name = "customer"
    collection = "customers"
    prefix = "cus"
    row_type = CustomerRow
    model = CustomerIn
    unique = "customer_number"
    SCALARS = ("customer_number", "name", "email", "phone", "vat_number", "website")

    def values(self, row: Any) -> dict[str, Any]:
        values = {key: getattr(row, key) for key in self.SCALARS}
        values["billing_address"] = _address(row, "billing")
        values["shipping_address"] = _address(row, "shipping")
        values["notes"] = row.notes
        return values

    def model_values(self, model: _Input) -> dict[str, Any]:
        values = model.model_dump()
        for key in ("billing_address", "shipping_address"):
            values[key] = _clean_address(values[key])
        return values

    def assign(self, row: Any, values: dict[str, Any]) -> None:
        for key in (*self.SCALARS, "notes"):
            setattr(row, key, values[key])
        for prefix in ("billing", "shipping"):
            address = values[f"{prefix}_address"] or {}
            for key in ADDRESS_KEYS:
                setattr(row, f"{prefix}_{key}", address.get(key))


class Products(Resource):
    name = "product"
    collection = "products"
    prefix = "prd"
    row_type = ProductRow
    model = ProductIn
    unique = "sku"
    FIELDS = (
        "sku", "name", "description", "unit_price", "list_price", "cost_price",
        "currency", "vat_rate", "stock_status", "active",
    )  # fmt: skip

    def values(self, row: Any) -> dict[str, Any]:
        return {key: getattr(row, key) for key in self.FIELDS}


class Orders(Resource):
    name = "order"
    collection = "orders"
    prefix = "ord"
    row_type = OrderRow
    model = OrderIn
    unique = "order_number"
    SCALARS = (
        "order_number", "customer_id", "status", "currency", "order_date",
        "discount_percent", "notes",
    )  # fmt: skip

    def values(self, row: Any) -> dict[str, Any]:
        values = {key: getattr(row, key) for key in self.SCALARS}
        values["lines"] = [
            {"id": line.id, **{key: getattr(line, key) for key in LINE_FIELDS}}
            for line in row.lines
        ]
        return values

    def model_values(self, model: _Input) -> dict[str, Any]:
        values = model.model_dump()
        for index, line in enumerate(values["lines"], start=1):
            if line["position"] is None:
                line["position"] = index
        return values

    def extra(self, row: Any) -> dict[str, Any]:
        return {"total_excl_vat": row.total_excl_vat}

    def assign(self, row: Any, values: dict[str, Any]) -> None:
        for key in self.SCALARS:
            setattr(row, key, values[key])
        existing = {line.id: line for line in row.lines}
        lines: list[OrderLineRow] = []
        for seq, line_values in enumerate(values["lines"]):
            line = existing.pop(line_values["id"], None) if line_values["id"] else None
            if line is None:
                line = OrderLineRow(id=new_id("lin"))
            line.seq = seq
            for key in LINE_FIELDS:
                setattr(line, key, line_values[key])
            lines.append(line)
        row.lines = lines
        row.total_excl_vat = order_total(
            (LineAmounts(x.quantity, x.unit_price, x.discount_percent) for x in lines),
            row.discount_percent,
        )

    def references(
        self, session: Session, document: dict[str, Any], current: Any | None
    ) -> list[FieldError]:
        errors: list[FieldError] = []
        customer_id = document.get("customer_id")
        if storable(customer_id) and (current is None or customer_id != current.customer_id):
            customer = session.get(CustomerRow, customer_id)
            if customer is None:
                errors.append(FieldError("customer_id", f"no customer with id {customer_id}"))
            elif customer.deleted:
                errors.append(FieldError("customer_id", f"customer {customer_id} is deleted"))
        lines = document.get("lines")
        lines = [x for x in lines if isinstance(x, dict)] if isinstance(lines, list) else []
        product_ids = {x["product_id"] for x in lines if storable(x.get("product_id"))}
        known = (
            set(session.scalars(select(ProductRow.id).where(ProductRow.id.in_(product_ids))))
            if product_ids
            else set()
        )
        own = {line.id for line in current.lines} if current is not None else set()
        seen: set[str] = set()
        for index, line in enumerate(document.get("lines") or []):
            if not isinstance(line, dict):
                continue
            product_id = line.get("product_id")
            if storable(product_id) and product_id not in known:
                errors.append(
                    FieldError(f"lines[{index}].product_id", f"no product with id {product_id}")
                )
            line_id = line.get("id")
            if not isinstance(line_id, str):
                continue
            if line_id not in own:
                errors.append(
                    FieldError(
                        f"lines[{index}].id",
                        "not a line of this order (leave id out for a new line)",
                    )
                )
            elif line_id in seen:
                errors.append(FieldError(f"lines[{index}].id", "the same line is sent twice"))
            seen.add(line_id)
        return errors


RESOURCES: dict[str, Resource] = {r.collection: r for r in (Customers(), Products(), Orders())}
