"""Dates: webCRM's date-times ⇄ the webshop's ISO dates.

Only the ``YYYY-MM-DD`` forms are read (not ISO 8601's basic or week forms), a date is
taken as written (not shifted to UTC), and .NET's ``0001-01-01`` is empty. The status
table reads webCRM's lost date with the same parser and writes it with
:func:`webcrm_datetime`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from shopsync.engine.mapping.conversions.base import Conversion, MapContext, MappingError
from shopsync.engine.mapping.conversions.text import norm_text

# A date is written ``YYYY-MM-DD``, optionally followed by ``T`` (or a space) and a time:
# what webCRM's date-times and the webshop contract's dates look like. Python's
# ``fromisoformat`` also reads ISO 8601's basic and week forms (``20261126``,
# ``2026-W48-4``); those are not dates here, so a number such as 27670201 is not
# mistaken for the 1st of February 2767.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ].+)?", re.ASCII | re.DOTALL)


def _parse_date(value: Any) -> date | None:
    """The date of an ISO date or date-time; ``0001-01-01`` (.NET's empty date) is None.

    The date is taken as written, not shifted to UTC: ``2026-11-26T23:30:00-05:00`` is
    the 26th, the day the person who wrote it meant.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        d = value.date()
    elif isinstance(value, date):
        d = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            if not _ISO_DATE.fullmatch(text):
                raise ValueError(text)
            d = datetime.fromisoformat(text).date() if len(text) > 10 else date.fromisoformat(text)
        except ValueError:
            raise MappingError("", f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
    else:
        raise MappingError("", f"expected a date, got {type(value).__name__}")
    return None if d.year == 1 else d


def webcrm_datetime(d: date | datetime) -> str:
    """webCRM's date-time text: a date is midnight UTC (``2026-11-26T00:00:00Z``)."""
    if isinstance(d, datetime):
        moment = d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)
        return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{d.isoformat()}T00:00:00Z"


def _date_to_webshop(value: Any, ctx: MapContext) -> str | None:
    d = _parse_date(value)
    return None if d is None else d.isoformat()


def _date_to_webcrm(value: Any, ctx: MapContext) -> str | None:
    d = _parse_date(value)
    return None if d is None else webcrm_datetime(d)


def _norm_date(value: Any) -> str | None:
    """The ISO date, or the value's text when it is not a date.

    Idempotent by construction: the text kept for a value that is not a date is parsed
    once more (so ``norm(norm(v)) == norm(v)`` even if the text of a non-date read as a
    date), and text that does not parse is kept as it is.
    """
    try:
        d = _parse_date(value)
    except MappingError:
        text = norm_text(value)
        try:
            d = _parse_date(text)
        except MappingError:
            return text
    return None if d is None else d.isoformat()


DATE = Conversion(
    "date",
    to_webshop=_date_to_webshop,
    to_webcrm=_date_to_webcrm,
    norm_webcrm=_norm_date,
    norm_webshop=_norm_date,
)
"""webCRM date-time ⇄ webshop date; both normalize to the ISO date."""
