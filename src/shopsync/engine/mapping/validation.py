"""webCRM's schema, applied before anything is sent: a body's fields, types, lengths and
enum values (:func:`validate_webcrm`), and a configured field name
(:func:`require_webcrm_field`).

Checked against the generated ``connectors/webcrm/schema.py``, so that a record webCRM
would refuse is put aside with every reason before it is sent (rule 7), and a typo in a
configured field name fails early, naming its configuration key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopsync.connectors.webcrm.schema import ENTITIES


def validate_webcrm(entity: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems webCRM would reject ``body`` of ``entity`` (``"Organisation"``…) for.

    Checks every field against the generated schema: that the field exists, its JSON type,
    webCRM's maximum string length and enum values. Returns ``(field, message)`` pairs;
    empty when the body is fine. Values are not echoed for long texts, only their length.
    """
    spec = ENTITIES.get(entity)
    if spec is None:
        return [("", f"{entity!r} is not a webCRM entity ({', '.join(sorted(ENTITIES))})")]
    problems: list[tuple[str, str]] = []
    for name, value in body.items():
        fs = spec.by_name.get(name)
        if fs is None:
            problems.append((name, f"is not a field of webCRM {entity}"))
            continue
        if value is None:
            continue
        if fs.type == "string":
            if not isinstance(value, str):
                problems.append((name, f"must be text, got {type(value).__name__}"))
            elif fs.max_length is not None and len(value) > fs.max_length:
                problems.append(
                    (name, f"is {len(value)} characters; webCRM allows at most {fs.max_length}")
                )
            elif fs.enum is not None and value not in fs.enum:
                problems.append((name, f"{value!r} is not one of {', '.join(fs.enum)}"))
        elif fs.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append((name, f"must be a whole number, got {value!r}"))
            elif fs.format == "int32" and not -(2**31) <= value < 2**31:
                problems.append((name, f"{value} is out of webCRM's 32-bit range"))
        elif fs.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append((name, f"must be a number, got {value!r}"))
            elif value != value or value in (float("inf"), float("-inf")):
                problems.append((name, f"must be a finite number, got {value!r}"))
        elif fs.type == "boolean" and not isinstance(value, bool):
            problems.append((name, f"must be true or false, got {value!r}"))
    return problems


def require_webcrm_field(entity: str, name: str, where: str) -> None:
    """Fail early, naming the configuration key, when a configured field does not exist.

    A typo such as ``fields.product_sku = "ProductCustom01"`` would otherwise surface as
    every product being put aside by webCRM.
    """
    spec = ENTITIES[entity]
    fs = spec.by_name.get(name)
    if fs is None:
        raise ValueError(f"{where} = {name!r}: not a field of webCRM {entity}")
    if fs.type != "string":
        raise ValueError(f"{where} = {name!r}: webCRM {entity} field is {fs.type}, not text")
