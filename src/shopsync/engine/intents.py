"""Exactly-once creates in webCRM, which has no idempotency key.

The webshop dedups a create by its ``Idempotency-Key``; webCRM cannot. So the engine
keeps, per webshop record whose webCRM twin it creates, an *intent*: just before the
``PATCH`` that inserts leaves (after the rate limiter let it go), the time and the body
are committed to the state database. The intent is settled in the transaction that
records the answer (the link), or when webCRM refuses the record.

An intent still marked *sent* at the start of a later run means the answer was never
recorded: the process was killed, or the request failed in mid-flight. Before anything
of that datatype is sent again, :func:`resolve` asks webCRM what actually landed, with
one ``/Queries`` request per datatype (records created since the oldest such intent,
minus a clock-skew margin), and pairs each intent with the landed record that carries
its marker (an opportunity's ``OpportunityErpId`` is the webshop order id) or, for the
others, whose values equal every value that was sent. Found: the engine links it, as
if the answer had arrived. Not found: the create did not land and may go again.

What stays timing-based: a request can still be on its way to webCRM, or running
there, when the resolution looks. The client gives up on a request after
``[webcrm] timeout_seconds``; an intent younger than that (plus a second) is therefore
not resolved yet: its record waits, and the next run resolves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.streams import parse_time

SKEW = timedelta(minutes=5)
"""How far webCRM's clock may be behind ours: landed records are looked for from the
oldest intent's send time minus this."""

MARKERS: dict[Datatype, str] = {Datatype.orders: "OpportunityErpId"}
"""A field the create writes that identifies the webshop record on its own: a landed
record with the intent's marker value is its create even if someone edited it since."""


@dataclass(frozen=True)
class Sent:
    """One unsettled create: the webshop record and the body that was sent."""

    webshop_id: str
    body: Mapping[str, Any]
    sent_at: datetime


@dataclass
class Resolution:
    landed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """webshop id → the webCRM record its create made."""
    lost: list[str] = field(default_factory=list)
    """webshop ids whose create did not land: they may be sent again."""
    pending: dict[str, float] = field(default_factory=dict)
    """webshop id → seconds until its create can be resolved (it may still land)."""


def split_by_age(
    intents: Iterable[Sent], now: datetime, bound: float
) -> tuple[list[Sent], dict[str, float]]:
    """The intents old enough to resolve, and the others with the seconds they wait."""
    ready: list[Sent] = []
    pending: dict[str, float] = {}
    for intent in intents:
        age = (now - intent.sent_at).total_seconds()
        if age >= bound:
            ready.append(intent)
        else:
            pending[intent.webshop_id] = bound - age
    return ready, pending


def since(intents: Sequence[Sent]) -> datetime:
    """From when to read landed records for these intents."""
    return min(i.sent_at for i in intents) - SKEW


def pair(
    datatype: Datatype,
    intents: Sequence[Sent],
    landed: Iterable[Mapping[str, Any]],
    id_field: str,
    taken: Iterable[str] = (),
) -> Resolution:
    """Pair each intent with at most one landed record (each record with one intent).

    ``landed`` is what webCRM created since :func:`since`, oldest first; ``taken`` are
    webCRM ids already linked (never another record's create). Two intents with equal
    bodies (two identical lines) may take either record: the outcome is the same.
    """
    out = Resolution()
    used = {str(x) for x in taken}
    pool = [dict(r) for r in landed if str(r.get(id_field)) not in used]
    marker = MARKERS.get(datatype)
    for intent in intents:
        found = None
        mark = intent.body.get(marker) if marker else None
        for record in pool:
            if str(record.get(id_field)) in used:
                continue
            if mark not in (None, "") and marker is not None:
                ok = _same(mark, record.get(marker))
            else:
                ok = same_values(intent.body, record)
            if ok:
                found = record
                break
        if found is None:
            out.lost.append(intent.webshop_id)
        else:
            used.add(str(found.get(id_field)))
            out.landed[intent.webshop_id] = found
    return out


def same_values(sent: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Every value that was sent reads back equal (fields webCRM does not return are
    skipped; at least one must compare)."""
    compared = 0
    for name, value in sent.items():
        if name not in record:
            continue
        if not _same(value, record[name]):
            return False
        compared += 1
    return compared > 0


def _same(a: Any, b: Any) -> bool:
    return bool(_norm(a) == _norm(b))


def _norm(value: Any) -> Any:
    """A value as webCRM may hand it back: numbers by value, date-times to the second,
    text trimmed, empty text as nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        number = _number(value)
        return number if number is not None else value
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-":
            try:
                moment = parse_time(text)
            except ValueError:
                moment = None
            if moment is not None:
                return moment.replace(microsecond=0)
        number = _number(text)
        return number if number is not None else text
    return value


def _number(value: Any) -> Decimal | None:
    """A number by value to six decimals (more than any money or quantity field, less
    than float noise), or None for what is no finite number."""
    try:
        number = Decimal(str(value))
        return number.quantize(Decimal("0.000001")) if number.is_finite() else None
    except (InvalidOperation, ValueError):
        return None
