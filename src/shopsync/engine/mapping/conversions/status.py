"""Order status: an opportunity's percent and lost date ⇄ the webshop order's ``status``,
by ``mapping.status_table``.

A module of its own because the status is the one conversion whose way back must be
worked out from the table: :func:`status_writes` finds, per status, what writing it to
webCRM does so that the opportunity reads back as that status, and refuses a table in
which a status cannot be written at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shopsync.config.model import StatusRule
from shopsync.engine.mapping.conversions.base import OMIT, Conversion, MapContext, MappingError
from shopsync.engine.mapping.conversions.dates import _parse_date, webcrm_datetime
from shopsync.engine.mapping.conversions.numbers import _to_decimal, _to_int
from shopsync.engine.mapping.conversions.text import norm_text

ORDER_STATUSES = ("pending", "confirmed", "completed", "cancelled")


def percent_of(value: Any) -> int | None:
    """An opportunity percent as a whole number (50.0 → 50); None when empty or unreadable."""
    try:
        return _to_int(value)
    except MappingError:
        try:
            d = _to_decimal(value)
        except MappingError:
            return None
        return None if d is None else int(d)


def date_is_set(value: Any) -> bool:
    """True when a webCRM date field holds a date (not empty, not .NET's 0001-01-01)."""
    try:
        return _parse_date(value) is not None
    except MappingError:
        return bool(norm_text(value))  # unreadable but present: still set


def _first_match(rules: Sequence[StatusRule], percent: int | None, has_lost: bool) -> str | None:
    for rule in rules:
        if rule.lost == has_lost and (rule.percent is None or rule.percent == percent):
            return rule.status
    return None


def status_of(rules: Sequence[StatusRule], percent: Any, lost: Any) -> str | None:
    """The order status of an opportunity by ``mapping.status_table``: the first row whose
    ``lost`` equals "has a lost date" and whose ``percent`` is unset or equal; None when
    no row matches (a table without a catch-all for lost opportunities)."""
    return _first_match(rules, percent_of(percent), date_is_set(lost))


# Every percent a row can name, and "no percent" (an empty or unreadable percent, or one
# outside 0..100, matches exactly the rows a missing percent matches).
_ALL_PERCENTS: tuple[int | None, ...] = (None, *range(101))


@dataclass(frozen=True)
class StatusWrite:
    """What writing one webshop status does to the opportunity (see :func:`status_writes`)."""

    percent: int | None
    """``OpportunityPercent`` to write; None: leave the percent as it is (:data:`OMIT`)."""
    lost: bool
    """Set ``OpportunityLostDate`` (to now) or clear it."""
    reads_as: str
    """The status the table reads the written opportunity as: the canonical value."""


def status_writes(rules: Sequence[StatusRule]) -> dict[str, StatusWrite]:
    """Per status of ``mapping.status_table``, what writing it to webCRM does.

    The first row for the status gives the lost date (set or cleared) and the percent.
    A row without a percent leaves webCRM's percent as it is *only when every percent
    reads back as that status* (the default ``cancelled``: a lost date wins at any
    percent); otherwise the lowest percent that reads back as it is written (the default
    ``pending`` writes 0, since leaving a won opportunity's 100 would read back as
    ``confirmed``). So a status written to webCRM always reads back as itself, or as
    the first status of its lossy class (statuses whose writes are equal: ``completed``
    reads back as ``confirmed``).

    Raises ValueError, naming ``mapping.status_table``, for a table where a status
    cannot be written at all: every percent reads back as another status (a row above
    it matches first).
    """
    table = tuple(rules)
    planned: dict[str, tuple[int | None, bool, frozenset[str | None]]] = {}
    for rule in table:
        if rule.status in planned:
            continue
        if rule.percent is not None:
            percent: int | None = rule.percent
            reads = frozenset({_first_match(table, rule.percent, rule.lost)})
        else:
            every = frozenset(_first_match(table, p, rule.lost) for p in _ALL_PERCENTS)
            found = [p for p in range(101) if _first_match(table, p, rule.lost) == rule.status]
            if every == {rule.status} or not found:
                percent, reads = None, every
            else:
                percent, reads = found[0], frozenset({rule.status})
        planned[rule.status] = (percent, rule.lost, reads)

    writes: dict[str, StatusWrite] = {}
    for status, (percent, lost, reads) in planned.items():
        # Reading back as another status is fine only when that status is written the
        # same way (one lossy class, e.g. confirmed/completed at the won percent).
        wrong = sorted(str(r) for r in reads if r is None or planned[r][:2] != (percent, lost))
        if wrong or len(reads) != 1:
            what = "any percent" if percent is None else f"percent {percent}"
            state = "with" if lost else "without"
            raise ValueError(
                f"mapping.status_table: {status!r} cannot be written to webCRM: {what} "
                f"{state} a lost date reads back as {', '.join(wrong) or 'several statuses'}"
                " (an earlier row matches it first)"
            )
        writes[status] = StatusWrite(percent, lost, str(next(iter(reads))))
    return writes


def order_status(rules: Sequence[StatusRule]) -> Conversion:
    """``(OpportunityPercent, OpportunityLostDate)`` ⇄ the webshop order ``status``, by
    ``mapping.status_table`` (``StatusRule`` rows, see ``config/model.py``).

    To the webshop: :func:`status_of`. Back: :func:`status_writes`, so the written
    opportunity reads back as the status written (the percent is :data:`OMIT`, left as
    it is, only where every percent reads back the same). With the default table:
    ``confirmed`` and ``completed`` → (won percent, no lost date); ``cancelled`` →
    (percent left, lost date now); ``pending`` → (0, no lost date). The order date of a
    won opportunity is the orders link's ``complete_webcrm`` step.

    Lossy: statuses whose writes are equal are one value on both sides, the status the
    write reads back as (``completed`` normalizes to ``confirmed``), and the webCRM side
    is only its status (a percent moving 10 → 50, or the lost date's time, is no
    change). So a webshop order going from confirmed to completed is no change.
    """
    table = tuple(rules)
    writes = status_writes(table)
    canonical = {s: w.reads_as for s, w in writes.items()}

    def describe(percent: Any, lost: Any) -> str:
        state = "with" if date_is_set(lost) else "without"
        return f"percent {percent_of(percent)} {state} a lost date"

    def to_shop(value: Any, ctx: MapContext) -> str:
        percent, lost = value
        status = status_of(table, percent, lost)
        if status is None:
            raise MappingError(
                "", f"no row of mapping.status_table matches {describe(percent, lost)}"
            )
        return status

    def to_crm(value: Any, ctx: MapContext) -> tuple[Any, str | None]:
        status = norm_text(value)
        if status is None or status not in writes:
            raise MappingError(
                "", f"{value!r} is not an order status ({', '.join(ORDER_STATUSES)})"
            )
        write = writes[status]
        return (
            OMIT if write.percent is None else write.percent,
            webcrm_datetime(datetime.now(UTC)) if write.lost else None,
        )

    def norm_shop(value: Any) -> str | None:
        status = norm_text(value)
        return None if status is None else canonical.get(status, status)

    def norm_crm(value: Any) -> str | None:
        if isinstance(value, tuple | list) and len(value) == 2:
            status = status_of(table, value[0], value[1])
            if status is None:
                return f"(no status: {describe(value[0], value[1])})"
            return canonical.get(status, status)
        return norm_shop(value)  # an already normalized status

    return Conversion(
        "status", to_webshop=to_shop, to_webcrm=to_crm, norm_webcrm=norm_crm, norm_webshop=norm_shop
    )
