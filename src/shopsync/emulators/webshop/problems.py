"""RFC 9457 problem details: the only error format the webshop API answers with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:shopsync:webshop:problem:"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition failed",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
}


@dataclass
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass
class Problem(Exception):
    """Raised anywhere in a request; the app turns it into a problem+json answer."""

    status: int
    kind: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.kind}: {self.detail}"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_PREFIX + self.kind,
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        return body

    def response(self) -> Response:
        return Response(
            # backslashreplace: a lone surrogate echoed from the request is sent as the
            # JSON escape it came in as, rather than failing the answer.
            json.dumps(self.body(), ensure_ascii=False).encode("utf-8", "backslashreplace"),
            status_code=self.status,
            media_type=PROBLEM_JSON,
            headers=self.headers,
        )


def invalid(errors: list[FieldError]) -> Problem:
    count = len(errors)
    detail = f"{count} invalid field{'s' if count != 1 else ''}: " + ", ".join(
        dict.fromkeys(e.field for e in errors)
    )
    return Problem(422, "validation", detail, errors)


def too_many(retry_after: int) -> Response:
    """The server's 429 (used by the shared fault switches too)."""
    return Problem(
        429,
        "too-many-requests",
        f"retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    ).response()
