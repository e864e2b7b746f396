"""A mapping table's rows: :class:`FieldMap` and the helpers that declare one
(:func:`both`, :func:`to_webshop`, :func:`to_webcrm`, :func:`constant`), the rows the
engine fills in itself (:class:`EngineSet`), and the dotted webshop paths rows read and
write (:func:`get_path`, :func:`set_path`).

A row is one line of a table in ``dataflow.md``; each link's module (``customers.py``,
``products.py``, ``orders.py``, ``lines.py``) is a list of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shopsync.engine.mapping.conversions.base import (
    IDENTITY,
    OMIT,
    Conversion,
    MapContext,
    Normalizer,
    empty_to_none,
)


class Direction(StrEnum):
    BOTH = "⇄"
    TO_WEBSHOP = "→"
    TO_WEBCRM = "←"

    @property
    def to_webshop(self) -> bool:
        return self in (Direction.BOTH, Direction.TO_WEBSHOP)

    @property
    def to_webcrm(self) -> bool:
        return self in (Direction.BOTH, Direction.TO_WEBCRM)


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """Read a dotted path (``billing_address.city``); a missing step gives None."""
    if "." not in path:  # most paths: one key (this runs for every field of every record)
        return record.get(path)
    value: Any = record
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    """Write a dotted path, creating the nested objects on the way."""
    steps = path.split(".")
    target = record
    for step in steps[:-1]:
        nxt = target.get(step)
        if not isinstance(nxt, dict):
            nxt = {}
            target[step] = nxt
        target = nxt
    target[steps[-1]] = value


@dataclass(frozen=True)
class FieldMap:
    """One row of a mapping table."""

    webcrm: tuple[str, ...]
    """webCRM field(s); empty for a webshop-only value set from configuration."""
    webshop: str
    """Dotted path in the webshop record."""
    direction: Direction = Direction.BOTH
    conversion: Conversion = IDENTITY
    name: str = ""
    """The property's key in snapshots and reports; defaults to the webshop path."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.webshop)

    def raw_webcrm(self, record: Mapping[str, Any]) -> Any:
        if len(self.webcrm) == 1:
            return record.get(self.webcrm[0])
        return tuple(record.get(f) for f in self.webcrm)

    def raw_webshop(self, record: Mapping[str, Any]) -> Any:
        return get_path(record, self.webshop)

    def webcrm_value(self, record: Mapping[str, Any]) -> Any:
        return self.conversion.norm_webcrm(self.raw_webcrm(record))

    def webshop_value(self, record: Mapping[str, Any]) -> Any:
        return self.conversion.norm_webshop(self.raw_webshop(record))

    def write_webcrm(self, body: dict[str, Any], value: Any) -> None:
        """Put a converted value into a webCRM body; :data:`OMIT` parts are left out."""
        if len(self.webcrm) == 1:
            if value is not OMIT:
                body[self.webcrm[0]] = value
        else:
            for name, v in zip(self.webcrm, value, strict=True):
                if v is not OMIT:
                    body[name] = v


def both(
    webcrm: str | tuple[str, ...],
    webshop: str,
    conversion: Conversion = IDENTITY,
    name: str = "",
) -> FieldMap:
    """A ``⇄`` row; several webCRM fields make the values tuples (see :class:`Conversion`)."""
    fields = (webcrm,) if isinstance(webcrm, str) else webcrm
    return FieldMap(fields, webshop, Direction.BOTH, conversion, name)


def to_webshop(
    webcrm: str | tuple[str, ...],
    webshop: str,
    conversion: Conversion = IDENTITY,
    name: str = "",
) -> FieldMap:
    """A ``→`` row (webCRM to webshop only)."""
    fields = (webcrm,) if isinstance(webcrm, str) else webcrm
    return FieldMap(fields, webshop, Direction.TO_WEBSHOP, conversion, name)


def to_webcrm(
    webcrm: str, webshop: str, conversion: Conversion = IDENTITY, name: str = ""
) -> FieldMap:
    """A ``←`` row (webshop to webCRM only)."""
    return FieldMap((webcrm,), webshop, Direction.TO_WEBCRM, conversion, name)


def constant(webshop: str, value: Any, norm: Normalizer = empty_to_none) -> FieldMap:
    """A ``→`` row with no webCRM field: the webshop gets a value fixed by configuration.

    The value is written whenever the row is (on create, or when the engine asks for it
    by name); as nothing on the webCRM side can change it, it is never rewritten later.
    """

    def write(_value: Any, _ctx: MapContext) -> Any:
        return value

    conversion = Conversion(f"constant {value!r}", to_webshop=write, norm_webshop=norm)
    return FieldMap((), webshop, Direction.TO_WEBSHOP, conversion)


@dataclass(frozen=True)
class EngineSet:
    """A table row the engine fills in itself rather than a conversion.

    Kept beside the rows so the table in code still shows every row of ``dataflow.md``
    (e.g. ``OpportunityErpStatus`` is stamped after a write, ``QuotationLineOpportunityId``
    is the linked opportunity of the line's order).
    """

    webcrm: tuple[str, ...]
    webshop: str
    """What the row names on the webshop side (``—`` when nothing)."""
    note: str
    """How the engine sets it, and which helper it calls."""
