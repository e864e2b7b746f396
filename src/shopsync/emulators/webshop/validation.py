"""Request validation: the contract's field rules as pydantic models, errors as field paths.

Every bad field is reported, each by its dotted path (``billing_address.country``,
``lines[2].quantity``), with a message a shop developer can act on. Decimals must be
strings in the contract's formats: a JSON number is refused, naming the field, rather
than passing a binary float through.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import pycountry
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from shopsync.contract.money import MONEY, PERCENT, QUANTITY, DecimalFormat

from .problems import FieldError, Problem, invalid

READ_ONLY = ("id", "version", "created_at", "updated_at", "total_excl_vat", "deleted")
STOCK_STATUSES = ("in_stock", "out_of_stock", "backorder")
ORDER_STATUSES = ("pending", "confirmed", "completed", "cancelled")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _decimal(fmt: DecimalFormat) -> Any:
    def check(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise PydanticCustomError("decimal_string", "must be {rule}", {"rule": fmt.rule})
        if isinstance(value, (int, float)):
            raise PydanticCustomError(
                "decimal_string", "must be {rule}, not a JSON number", {"rule": fmt.rule}
            )
        if not fmt.matches(value):
            raise PydanticCustomError("decimal_string", "must be {rule}", {"rule": fmt.rule})
        return Decimal(value)

    return PlainValidator(check, json_schema_input_type=str)


def _country(value: str) -> str:
    if len(value) != 2 or not value.isupper() or pycountry.countries.get(alpha_2=value) is None:
        raise PydanticCustomError(
            "country", 'not an ISO 3166-1 alpha-2 country code in upper case (e.g. "DK")'
        )
    return value


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isupper() or pycountry.currencies.get(alpha_3=value) is None:
        raise PydanticCustomError("currency", 'not an ISO 4217 currency code (e.g. "DKK")')
    return value


def _email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "email", "not a valid email address: {reason}", {"reason": str(exc)}
        ) from None
    return value


def _date(value: Any) -> date:
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("date", 'must be a date "YYYY-MM-DD"')


def _int(low: int, high: int) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PydanticCustomError("int", "must be an integer")
        if not low <= value <= high:
            raise PydanticCustomError(
                "int", "must be from {low} to {high}", {"low": low, "high": high}
            )
        return value

    return PlainValidator(check, json_schema_input_type=int)


def _text(low: int, high: int) -> Any:
    return StringConstraints(strict=True, min_length=low, max_length=high)


Money = Annotated[Decimal, _decimal(MONEY)]
Quantity = Annotated[Decimal, _decimal(QUANTITY)]
Percent = Annotated[Decimal, _decimal(PERCENT)]
Country = Annotated[str, _text(0, 10), AfterValidator(_country)]
Currency = Annotated[str, _text(0, 10), AfterValidator(_currency)]
Email = Annotated[str, _text(0, 254), AfterValidator(_email)]
Date = Annotated[date, PlainValidator(_date, json_schema_input_type=str)]
RefId = Annotated[str, _text(1, 100)]
Position = Annotated[int, _int(0, 1_000_000)]


Line = Annotated[str, _text(0, 250)]
PostalCode = Annotated[str, _text(0, 20)]
Place = Annotated[str, _text(0, 100)]
Name = Annotated[str, _text(1, 200)]
Number = Annotated[str, _text(1, 50)]
Short = Annotated[str, _text(0, 50)]
Website = Annotated[str, _text(0, 200)]
LongText = Annotated[str, _text(0, 10_000)]
Sku = Annotated[str, _text(1, 100)]
LineSku = Annotated[str, _text(0, 100)]
LineText = Annotated[str, _text(0, 1000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(_Input):
    line1: Line | None = None
    line2: Line | None = None
    postal_code: PostalCode | None = None
    city: Place | None = None
    region: Place | None = None
    country: Country | None = None


class CustomerIn(_Input):
    customer_number: Number | None = None
    name: Name
    email: Email | None = None
    phone: Short | None = None
    vat_number: Short | None = None
    website: Website | None = None
    billing_address: AddressIn | None = None
    shipping_address: AddressIn | None = None
    notes: LongText | None = None


class ProductIn(_Input):
    sku: Sku
    name: Name
    description: LongText | None = None
    unit_price: Money
    list_price: Money | None = None
    cost_price: Money | None = None
    currency: Currency
    vat_rate: Percent = Decimal(0)
    stock_status: Literal["in_stock", "out_of_stock", "backorder"] = "in_stock"
    active: StrictBool = True


class OrderLineIn(_Input):
    id: RefId | None = None
    sku: LineSku | None = None
    product_id: RefId | None = None
    description: LineText | None = None
    quantity: Quantity
    unit_price: Money
    list_price: Money | None = None
    cost_price: Money | None = None
    discount_percent: Percent = Decimal(0)
    vat_rate: Percent | None = None
    position: Position | None = None


class OrderIn(_Input):
    order_number: Number
    customer_id: RefId
    status: Literal["pending", "confirmed", "completed", "cancelled"] = "pending"
    currency: Currency
    order_date: Date | None = None
    discount_percent: Percent = Decimal(0)
    notes: LongText | None = None
    lines: list[OrderLineIn] = Field(default_factory=list, max_length=1000)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("lines", 2, "quantity")`` → ``lines[2].quantity``.

    A member name that is not valid Unicode (a lone surrogate) is shown escaped,
    ``\\udc00``, so the answer naming it can be encoded.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part).encode("utf-8", "backslashreplace").decode("utf-8")
            out += ("." if out else "") + name
    return out


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if error.get("input", 0) is None:
        return "must not be null"
    message = str(error["msg"])
    for old, new in (
        ("Input should be a valid dictionary or instance of AddressIn", "must be an object"),
        ("Input should be a valid dictionary or instance of OrderLineIn", "must be an object"),
        ("Input should be", "must be"),
        ("String should have", "must have"),
        ("List should have", "must have"),
    ):
        message = message.replace(old, new)
    return message


def check(model: type[_Input], document: dict[str, Any]) -> tuple[_Input | None, list[FieldError]]:
    """Validate a whole document: the model, or every bad field (never stops at one).

    Strings must be valid Unicode without U+0000 (PostgreSQL cannot store it), and
    read-only fields are refused so a client learns they are not applied.
    """
    errors = string_errors(document)
    errors += [
        FieldError(key, "read-only: set by the server") for key in READ_ONLY if key in document
    ]
    result: _Input | None = None
    try:
        result = model.model_validate({k: v for k, v in document.items() if k not in READ_ONLY})
    except ValidationError as exc:
        errors += [
            FieldError(field_path(tuple(e["loc"])), _message(e))
            for e in exc.errors()
            # Lone surrogates are named by ``string_errors`` (pydantic loses a member name's place).
            if e["type"] != "string_unicode"
        ]
    return (None if errors else result), errors


def validate(model: type[_Input], document: dict[str, Any]) -> _Input:
    """``check``, raising the 422."""
    result, errors = check(model, document)
    if result is None:
        raise invalid(errors)
    return result


MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a body may have (the contract's records need 3)."""


def parse_body(raw: bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The request body as a JSON object; a 400 when it is not one.

    ``max_depth`` is larger for a batch, whose envelope wraps each record's body.
    """
    too_deep = Problem(
        400, "bad-request", f"the body is nested more than {max_depth} arrays or objects deep"
    )
    try:
        data = json.loads(raw)
    except RecursionError:  # the decoder recurses once per level
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "bad-request", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Problem(
            400, "bad-request", f"the body must be a JSON object, not {type(data).__name__}"
        )
    if _depth(data, max_depth) > max_depth:  # validation and the fingerprint recurse too
        raise too_deep
    return data


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply arrays and objects nest in ``value`` (without recursing)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                break
            stack.extend((child, level + 1) for child in children)
    return deepest


def storable(value: Any) -> bool:
    """A string any database can compare against (references are looked up only then)."""
    return isinstance(value, str) and 0 < len(value) <= 100 and not _bad_strings(value, ())


def string_errors(document: Any) -> list[FieldError]:
    """Strings PostgreSQL could not store: with U+0000, or with lone surrogates (in values
    and in member names)."""
    return [FieldError(path, message) for path, message in _bad_strings(document, ())]


def _bad_strings(value: Any, loc: tuple[int | str, ...]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _bad_strings(key, (*loc, key)) + _bad_strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _bad_strings(item, (*loc, index))
    elif isinstance(value, str):
        if "\x00" in value:
            found.append((field_path(loc), "must not contain the NUL character (U+0000)"))
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                found.append((field_path(loc), "is not valid Unicode (lone surrogate)"))
    return found


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 with one twist: ``null`` sets the member to null (instead of removing it),
    so that validation can tell a cleared nullable field from a forbidden null."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        result[key] = None if value is None else merge_patch(result.get(key), value)
    return result
