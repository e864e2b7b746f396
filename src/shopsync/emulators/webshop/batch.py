"""Batch writes (optional in the contract): the envelope of ``POST /{collection}/batch``.

The envelope (``{"items": [...]}``, each item's ``op``, key, id, ``If-Match`` and the
type of its ``body`` or ``patch``) is checked as a whole before anything is written: a
malformed envelope is a client bug, refused with one 422 naming every bad member
(``items[3].op``). What is *inside* an item's ``body`` or ``patch`` is the record, and
is checked per item by the single-record code (``service.Records._create``/``_patch``),
so an invalid record is that item's 422 and nothing else's.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from shopsync.emulators.common.controls import require_local

from .problems import FieldError, invalid
from .service import (
    IDEMPOTENCY_KEY,
    IF_MATCH,
    BatchCreate,
    BatchItem,
    BatchUpdate,
    Outcome,
    parse_if_match,
)
from .validation import field_path

DEFAULT_MAX_ITEMS = 500
ENVELOPE_DEPTH = 3
"""Levels a batch adds around an item's body (the object, ``items``, the item)."""
MEMBERS = {
    "create": ("op", "idempotency_key", "body"),
    "update": ("op", "id", "if_match", "patch"),
}


class BatchSettings(BaseModel):
    """Whether the server offers batch writes; the test controls switch it (``/_webshop/batch``)."""

    enabled: bool = Field(True, description="offer POST /{collection}/batch")
    max_items: int = Field(
        DEFAULT_MAX_ITEMS, ge=1, le=10_000, description="the most items one batch may carry"
    )
    capabilities: bool = Field(
        True, description="serve GET /capabilities (false: 404, as a shop that predates it)"
    )

    def document(self) -> dict[str, Any]:
        """The ``GET /capabilities`` answer."""
        return {"batch": {"max_items": self.max_items}} if self.enabled else {}

    def update_from(self, other: BatchSettings) -> None:
        """Change in place: the routes hold this one object."""
        for name in BatchSettings.model_fields:
            setattr(self, name, getattr(other, name))

    def restore(self) -> None:
        """Back to the defaults (``/_webshop/reset``)."""
        self.update_from(BatchSettings())


def batch_controls(prefix: str, batching: BatchSettings) -> APIRouter:
    """``GET|PUT {prefix}/batch``: offer batch writes or not (a client's fallback is then
    tested against a real shop without them), their ``max_items``, and whether
    ``GET /capabilities`` exists at all."""
    router = APIRouter(prefix=prefix, tags=["controls"])

    @router.get("/batch")
    async def get_batch(request: Request) -> BatchSettings:
        require_local(request)
        return batching

    @router.put("/batch")
    async def put_batch(request: Request, body: BatchSettings) -> BatchSettings:
        require_local(request)
        batching.update_from(body)
        return batching

    return router


def parse_items(data: dict[str, Any], max_items: int) -> list[BatchItem]:
    """The batch's items, or one 422 naming every member of the envelope that is wrong."""
    errors = [FieldError(field_path((key,)), "unknown field") for key in data if key != "items"]
    items = data.get("items")
    if not isinstance(items, list):
        errors.append(FieldError("items", "required: a list of create and update items"))
        raise invalid(errors)
    if not items:
        errors.append(FieldError("items", "must have at least 1 item"))
    if len(items) > max_items:
        errors.append(
            FieldError("items", f"must have at most {max_items} items (this shop's max_items)")
        )
        raise invalid(errors)  # not worth checking each of that many
    parsed: list[BatchItem] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        found = _item(item, where, errors)
        if found is not None:
            parsed.append(found)
    if errors:
        raise invalid(errors)
    return parsed


def _item(item: Any, where: str, errors: list[FieldError]) -> BatchItem | None:
    if not isinstance(item, dict):
        errors.append(FieldError(where, "must be an object"))
        return None
    op = item.get("op")
    if not isinstance(op, str) or op not in MEMBERS:
        errors.append(FieldError(f"{where}.op", 'required: "create" or "update"'))
        return None
    before = len(errors)
    errors += [
        FieldError(f"{where}.{field_path((key,))}", "unknown field")
        for key in item
        if key not in MEMBERS[op]
    ]
    if op == "create":
        key, body = item.get("idempotency_key"), item.get("body")
        if not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key):
            errors.append(
                FieldError(
                    f"{where}.idempotency_key",
                    "required: 1 to 255 visible ASCII characters, e.g. a UUID",
                )
            )
        if not isinstance(body, dict):
            errors.append(FieldError(f"{where}.body", "required: the record to create (an object)"))
        if len(errors) > before:
            return None
        assert isinstance(key, str) and isinstance(body, dict)
        return BatchCreate(body, key)
    record_id, patch = item.get("id"), item.get("patch")
    if not isinstance(record_id, str) or not 1 <= len(record_id) <= 100:
        errors.append(FieldError(f"{where}.id", "required: the record's id (1 to 100 characters)"))
    if_match: int | None = None
    if "if_match" in item:
        value = item["if_match"]
        if isinstance(value, str) and IF_MATCH.fullmatch(value):
            if_match = parse_if_match(value)
        else:
            errors.append(
                FieldError(
                    f"{where}.if_match", 'must be a version number, "<version>" or *, e.g. "3"'
                )
            )
    if not isinstance(patch, dict):
        errors.append(FieldError(f"{where}.patch", "required: a JSON merge patch (an object)"))
    if len(errors) > before:
        return None
    assert isinstance(record_id, str) and isinstance(patch, dict)
    return BatchUpdate(record_id, patch, if_match)


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    if outcome.problem is not None:
        return {"status": outcome.status, "problem": outcome.problem.body()}
    result: dict[str, Any] = {"status": outcome.status, "record": outcome.record}
    if outcome.replayed:
        result["replayed"] = True
    return result


def batch_response(outcomes: list[Outcome]) -> Response:
    """``200 {"results": [...]}`` in request order.

    Encoded like a problem (``problems.Problem.response``): a lone surrogate echoed from
    the request (an unknown id in a 404's detail) is sent as the JSON escape it came in as.
    """
    body = {"results": [outcome_json(o) for o in outcomes]}
    return Response(
        json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace"),
        media_type="application/json",
    )
