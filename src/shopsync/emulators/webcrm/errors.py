"""The emulator's error answers, shaped like webCRM's (``{"Message": …}`` bodies)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

UNAUTHORIZED = "Authorization has been denied for this request."


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer encoded once, without FastAPI's per-field encoder (lists are big)."""
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def raw_json_response(text: str) -> Response:
    """An answer whose JSON text is already made (stored rows joined into an array)."""
    return Response(text.encode("utf-8"), media_type="application/json")


class ApiError(Exception):
    """Raised anywhere in a request; turned into a JSON error answer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "BadRequestException",
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.field = field
        self.headers = headers

    def response(self) -> Response:
        body: dict[str, Any] = {"Message": self.message, "Type": self.kind}
        if self.field is not None:
            body["Field"] = self.field
        return json_response(body, self.status, self.headers)


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, message, field=field)


def not_found(message: str) -> ApiError:
    return ApiError(404, message, kind="NotFoundException")


def unauthorized() -> ApiError:
    return ApiError(
        401, UNAUTHORIZED, kind="UnauthorizedException", headers={"WWW-Authenticate": "Bearer"}
    )


def too_many_requests(retry_after: int, limit: int | None = None) -> Response:
    """webCRM's 429: ``Retry-After`` header and the JSON body the notes describe."""
    if limit:
        message = f"API calls quota exceeded! maximum admitted {limit} per 1m."
    else:
        message = "API calls quota exceeded!"
    return json_response(
        {"RetryAfterSeconds": retry_after, "Message": message, "Type": "TooManyRequestsException"},
        429,
        {"Retry-After": str(retry_after)},
    )
