"""Checking a client's record against the webCRM field definitions (``schema.py``).

The rules are the definition's: JSON type per field, ``maxLength`` for strings, the
enum where there is one, int32 range for ``int32`` fields. ``null`` is accepted for
every field (the live API returns ``null`` for unset fields, so it must take them).
Unknown fields are ignored and so are the server-set ``…Id``/``…CreatedAt``/
``…UpdatedAt``/``…CreatedBy``/``…UpdatedBy``, exactly as the live API ignores them.
"""

from __future__ import annotations

import math
from typing import Any

from shopsync.connectors.webcrm.fieldspec import EntitySpec, FieldSpec
from shopsync.emulators.webcrm.timeutil import OutOfRange, normalize_ts

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class FieldError(ValueError):
    """A value the definition does not allow; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_value(spec: FieldSpec, value: Any) -> Any:
    """The value as stored (date-times normalised, integral floats as int); or raise."""
    if value is None:
        return None
    name = spec.name
    if spec.type == "string":
        if not isinstance(value, str):
            raise FieldError(name, f"expected a string, got {_type_name(value)}")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise FieldError(name, f"longer than {spec.max_length} characters ({len(value)} given)")
        if spec.enum is not None and value not in spec.enum:
            raise FieldError(name, f"{value!r} is not one of {', '.join(spec.enum)}")
        if spec.format == "date-time":
            try:
                return normalize_ts(value)
            except OutOfRange as exc:
                raise FieldError(name, str(exc)) from None
            except ValueError:
                raise FieldError(name, f"{value!r} is not an ISO-8601 date-time") from None
        return value
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(name, f"expected an integer, got {_type_name(value)}")
        if isinstance(value, float):
            if not value.is_integer():
                raise FieldError(name, f"expected an integer, got {value!r}")
            value = int(value)
        if spec.format == "int32" and not INT32_MIN <= value <= INT32_MAX:
            raise FieldError(name, f"{value} is outside the int32 range")
        return value
    if spec.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(name, f"expected a number, got {_type_name(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise FieldError(name, f"{value!r} is not a finite number")
        return number
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise FieldError(name, f"expected true or false, got {_type_name(value)}")
        return value
    raise FieldError(name, f"unsupported field type {spec.type}")  # pragma: no cover


def clean_record(entity: EntitySpec, raw: Any) -> dict[str, Any]:
    """The writable fields present in ``raw``, checked and converted for storage.

    Raises :class:`FieldError` for the first field, in the body's order, that breaks a
    rule. Walks the body's keys (a few) rather than the definition's fields (100+).
    """
    if not isinstance(raw, dict):
        raise FieldError(entity.dto, f"expected a JSON object, got {_type_name(raw)}")
    server = entity.server_fields
    fields = entity.by_name
    out: dict[str, Any] = {}
    for name, value in raw.items():
        spec = fields.get(name)
        if spec is not None and name not in server:
            out[name] = check_value(spec, value)
    return out


def record_id(entity: EntitySpec, raw: dict[str, Any]) -> int | None:
    """The record's id for PATCH: ``None`` (insert) for a missing, null or 0 id.

    Checked like any other field of its type (an int32; ``5.0`` is 5), so an id no
    record can have fails only its own record rather than reaching SQLite.
    """
    value = check_value(entity.by_name[entity.id_field], raw.get(entity.id_field))
    if value is None or value == 0:
        return None
    assert isinstance(value, int)
    return value
