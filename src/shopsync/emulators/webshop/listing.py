"""Listing parameters and the opaque cursor.

The cursor is the position ``(updated_at, id)`` of the last record of a page, encoded
as URL-safe base64 JSON. Listing continues strictly after that position, so a record
changed while a client pages moves behind the cursor and shows up again on a later page
instead of being skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .clock import rfc3339, utc
from .problems import FieldError, invalid
from .validation import storable

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]+))?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 date-time with offset, as an aware UTC datetime (ValueError if not).

    Instants beyond the representable range clamp to its ends, so that an extreme but
    valid ``updated_since`` simply selects everything or nothing.
    """
    match = RFC3339.fullmatch(text)
    if not match:
        raise ValueError(text)
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    local = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{offset}")
    try:
        return local.astimezone(UTC)
    except OverflowError:
        return _MIN if local.year < 2 else _MAX


@dataclass(frozen=True)
class Listing:
    limit: int = DEFAULT_LIMIT
    updated_since: datetime | None = None
    after: tuple[datetime, str] | None = None
    include_deleted: bool = False

    @staticmethod
    def cursor_after(updated_at: datetime, record_id: str) -> str:
        raw = json.dumps({"t": rfc3339(updated_at), "i": record_id}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Listing:
        errors = [
            FieldError(name, "unknown query parameter")
            for name in query
            if name not in ("limit", "updated_since", "cursor", "include_deleted")
        ]
        limit = DEFAULT_LIMIT
        if "limit" in query:
            text = query["limit"]
            if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT:
                limit = int(text)
            else:
                errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_LIMIT}"))
        since = None
        if "updated_since" in query:
            try:
                since = parse_timestamp(query["updated_since"])
            except ValueError:
                errors.append(
                    FieldError(
                        "updated_since",
                        "must be an RFC 3339 date-time with offset, e.g. 2025-01-31T08:00:00Z "
                        '(encode "+" as %2B in a query string)',
                    )
                )
        after = None
        if "cursor" in query:
            after = _decode_cursor(query["cursor"])
            if after is None:
                errors.append(FieldError("cursor", "not a cursor this server gave out"))
        include_deleted = False
        if "include_deleted" in query:
            flag = query["include_deleted"]
            if flag not in ("true", "false"):
                errors.append(FieldError("include_deleted", "must be true or false"))
            include_deleted = flag == "true"
        if errors:
            raise invalid(errors)
        return cls(limit, since, after, include_deleted)


def _decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        at = parse_timestamp(data["t"])
        record_id = data["i"]
    except (ValueError, binascii.Error, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        return None  # RecursionError: JSON nested too deeply for the decoder
    if not storable(record_id):  # the id is compared in SQL: no NUL, no lone surrogate
        return None
    return utc(at), record_id
