"""The emulator's own OpenAPI document (``GET /openapi.json``): what it takes and answers.

FastAPI generates the paths and their parameters from the routes. The routes read their
JSON bodies themselves (so that every error is webCRM's ``{"Message": …}`` 400), so
FastAPI cannot see the bodies; this module describes them, and the answers, from the
same field definitions (``schema.py``) the emulator validates with:

* ``{Dto}``: a record as answered; every field present, ``null`` when unset.
* ``{Dto}Write``: the body of ``POST``/``PUT``. Every writable field with its type,
  ``maxLength``, enum and int32 range, and ``null`` allowed; the server-set fields take
  any value (it is ignored), and so do unknown fields (ignored too, as by the live API).
* ``{Dto}Upsert``: one record of a ``PATCH`` array; as ``…Write``, but the id names the
  record to merge into (``0`` or ``null`` inserts).
* ``{Entity}HookDtoWrite``/``{Entity}HookDto``: a hook as sent and as answered.

Validation errors are documented as the 400 they are (FastAPI's default 422 never
happens here), calls behind the token carry the bearer scheme and its 401 and 429.
``tests/emulator/test_fuzz.py`` runs schemathesis against this document.
"""

from __future__ import annotations

from typing import Any

from shopsync.connectors.webcrm.fieldspec import EntitySpec, FieldSpec
from shopsync.connectors.webcrm.schema import ENTITIES
from shopsync.emulators.webcrm.validation import INT32_MAX, INT32_MIN

SECURITY_SCHEME = "bearerAuth"
HOOK_EVENTS = ("Create", "Update", "Delete")
HOOK_FIELDS = ("Id", "CreatedAt", "CreatedBy", "UpdatedAt", "UpdatedBy")
_EMPTY = "x-empty"
URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"
"""An absolute http(s) URL with something for a host (the emulator checks the rest)."""


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a JSON body itself."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def form_body(fields: dict[str, str], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads an urlencoded form itself."""
    return {
        "requestBody": {
            "required": False,
            "description": description,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            name: {"type": "string", "description": text}
                            for name, text in fields.items()
                        },
                    }
                }
            },
        }
    }


def answers(
    ok: dict[str, Any] | None, description: str, *errors: int
) -> dict[int | str, dict[str, Any]]:
    """``responses`` for a route: its 200 (with a JSON body or none) and its errors."""
    out: dict[int | str, dict[str, Any]] = {200: {"description": description}}
    if ok is None:
        out[200][_EMPTY] = True  # FastAPI documents a JSON body; ``finish`` removes it
    else:
        out[200]["content"] = {"application/json": {"schema": ok}}
    texts = {400: "a parameter or the body breaks a rule", 404: "no record with that id"}
    for status in errors:
        out[status] = {
            "description": texts[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


# --------------------------------------------------------------------------- schemas
def _field(spec: FieldSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [spec.type, "null"]}
    if spec.format is not None:
        schema["format"] = spec.format
    if spec.max_length is not None:
        schema["maxLength"] = spec.max_length
    if spec.enum is not None:
        schema["enum"] = [*spec.enum, None]
    if spec.type == "integer" and spec.format == "int32":
        schema["minimum"], schema["maximum"] = INT32_MIN, INT32_MAX
    return schema


def _ignored(name: str) -> dict[str, Any]:
    return {"description": f"{name} is set by the server; a value sent is ignored"}


def _entity_schemas(entity: EntitySpec) -> dict[str, dict[str, Any]]:
    server = set(entity.server_fields)
    answered = {f.name: _field(f) for f in entity.fields}
    write = {f.name: _ignored(f.name) if f.name in server else _field(f) for f in entity.fields}
    upsert = {**write, entity.id_field: _field(entity.by_name[entity.id_field])}
    upsert[entity.id_field]["description"] = "the record to merge into; 0 or null inserts"
    filters = {"type": "string", "enum": list(entity.hook_filters)}
    hook = f"{entity.name}HookDto"
    return {
        entity.dto: {
            "type": "object",
            "description": f"A {entity.name} as answered: every field, null when unset.",
            "properties": answered,
            "required": sorted(answered),
            "additionalProperties": False,
        },
        f"{entity.dto}Write": {
            "type": "object",
            "description": f"A {entity.name} to create or replace; unknown fields are ignored.",
            "properties": write,
        },
        f"{entity.dto}Upsert": {
            "type": "object",
            "description": f"One {entity.name} of a bulk upsert; unknown fields are ignored.",
            "properties": upsert,
        },
        f"{hook}Write": {
            "type": "object",
            "properties": {
                "TargetUrl": {"type": "string", "pattern": URL_PATTERN},
                "EventType": {"enum": [*HOOK_EVENTS, None], "description": "null: all three"},
                "IsEnabled": {"type": "boolean", "default": True},
                "Filter": {"type": ["array", "null"], "items": filters, "default": ["All"]},
                **{name: _ignored(name) for name in HOOK_FIELDS},
            },
            "required": ["TargetUrl"],
        },
        hook: {
            "type": "object",
            "properties": {
                "Id": {"type": "integer", "format": "int64"},
                "Entity": {"type": "string", "const": entity.name},
                "TargetUrl": {"type": "string"},
                "EventType": {"enum": [*HOOK_EVENTS, None]},
                "IsEnabled": {"type": "boolean"},
                "Filter": {"type": "array", "items": filters},
                "CreatedAt": {"type": "string", "format": "date-time"},
                "CreatedBy": {"type": "string"},
                "UpdatedAt": {"type": "string", "format": "date-time"},
                "UpdatedBy": {"type": "string"},
            },
            "required": ["Id", "TargetUrl", "EventType", "IsEnabled", "Filter"],
        },
    }


def _common_schemas() -> dict[str, dict[str, Any]]:
    nullable_string = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "properties": {
                "Message": {"type": "string"},
                "Type": {"type": "string"},
                "Field": {"type": "string", "description": "the parameter or field at fault"},
            },
            "required": ["Message", "Type"],
        },
        "TooManyRequests": {
            "type": "object",
            "properties": {
                "RetryAfterSeconds": {"type": "integer", "minimum": 1},
                "Message": {"type": "string"},
                "Type": {"type": "string", "const": "TooManyRequestsException"},
            },
            "required": ["RetryAfterSeconds", "Message", "Type"],
        },
        "TokenResponseDto": {
            "type": "object",
            "properties": {
                "AccessToken": nullable_string,
                "RefreshToken": nullable_string,
                "Error": nullable_string,
                "ErrorDescription": nullable_string,
                "IsError": {"type": "boolean"},
                "ExpiresIn": {"type": ["integer", "null"]},
                "TokenType": nullable_string,
            },
            "required": ["AccessToken", "RefreshToken", "IsError", "ExpiresIn", "TokenType"],
        },
    }


# --------------------------------------------------------------------------- document
def finish(document: dict[str, Any], controls_prefix: str) -> dict[str, Any]:
    """Complete FastAPI's document: schemas, the bearer scheme, and the real error codes."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_common_schemas())
    for entity in ENTITIES.values():
        schemas.update(_entity_schemas(entity))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "AccessToken from POST /Auth/ApiLogin",
        }
    }
    error = {"application/json": {"schema": ref("Error")}}
    for path, operations in document.get("paths", {}).items():
        guarded = not path.startswith(("/Auth/", controls_prefix + "/"))
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for answer in responses.values():
                if answer.pop(_EMPTY, False):
                    answer.pop("content", None)
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": "a parameter breaks a rule"})
                responses["400"]["content"] = error
            if guarded:
                operation["security"] = [{SECURITY_SCHEME: []}]
                responses["401"] = {"description": "no valid access token", "content": error}
                responses["429"] = {
                    "description": "over the rate limit; see Retry-After",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {"application/json": {"schema": ref("TooManyRequests")}},
                }
    return document
