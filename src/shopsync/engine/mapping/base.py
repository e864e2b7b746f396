"""The mapper's building blocks: a field pair, a conversion, a link's table.

A link (``customers``, ``products``, ``orders``, ``order_lines``) is declared as a
tuple of :class:`FieldMap` rows, each one row of a table in ``dataflow.md``: the webCRM
field(s), the webshop field (a dotted path into the JSON record), the direction, and a
named :class:`Conversion`. The engine never looks at field names itself; it asks the
link's :class:`LinkMapping` for

* ``webcrm_values`` / ``webshop_values``: each property's *normalized* value on that
  side, used to compare a record with the last agreed snapshot (rule 3);
* ``to_webshop`` / ``to_webcrm``: the body to write for a set of changed properties.

Comparing each side with *its own* last agreed value is what keeps lossy conversions
from flip-flopping (rule 4): a side is rewritten only when the other side changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from shopsync.config.model import Config, Datatype


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


class Unresolved(Exception):
    """A reference that is not linked yet: the record waits and is retried (rule 6)."""

    def __init__(self, datatype: Datatype, side: str, ref_id: str) -> None:
        super().__init__(f"waiting for {datatype.value} {side} id {ref_id} to be linked")
        self.datatype = datatype
        self.side = side
        self.ref_id = ref_id


class MapContext(Protocol):
    """What conversions may consult besides the value: configuration and the links."""

    @property
    def config(self) -> Config: ...

    def webshop_id(self, datatype: Datatype, webcrm_id: str) -> str | None:
        """The webshop id linked to a webCRM id, or None when not linked."""

    def webcrm_id(self, datatype: Datatype, webshop_id: str) -> str | None:
        """The webCRM id linked to a webshop id, or None when not linked."""

    def product_id_for_sku(self, sku: str) -> str | None:
        """The webshop product whose sku equals ``sku``, when one exists."""


Converter = Callable[[Any, MapContext], Any]
Normalizer = Callable[[Any], Any]


def _identity(value: Any, ctx: MapContext) -> Any:
    return value


def empty_to_none(value: Any) -> Any:
    """``""`` and whitespace-only strings count as empty, like ``None``."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


@dataclass(frozen=True)
class Conversion:
    """A named pair of converters, plus how each side's value is normalized.

    ``to_webshop`` takes the webCRM value (a tuple when the row has several webCRM
    fields) and returns the webshop value; ``to_webcrm`` the reverse (returning a tuple
    aligned with the row's webCRM fields when there are several). The normalizers turn a
    raw value into a JSON-able canonical form, so ``"12.5"`` and ``"12.50"`` compare equal
    and the snapshot can be stored.
    """

    name: str
    to_webshop: Converter = _identity
    to_webcrm: Converter = _identity
    norm_webcrm: Normalizer = empty_to_none
    norm_webshop: Normalizer = empty_to_none


IDENTITY = Conversion("identity")


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """Read a dotted path (``billing_address.city``); a missing step gives None."""
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
        if len(self.webcrm) == 1:
            body[self.webcrm[0]] = value
        else:
            for name, v in zip(self.webcrm, value, strict=True):
                body[name] = v


def both(webcrm: str, webshop: str, conversion: Conversion = IDENTITY) -> FieldMap:
    """A ``⇄`` row."""
    return FieldMap((webcrm,), webshop, Direction.BOTH, conversion)


def to_webshop(
    webcrm: str | tuple[str, ...], webshop: str, conversion: Conversion = IDENTITY
) -> FieldMap:
    """A ``→`` row (webCRM to webshop only)."""
    fields = (webcrm,) if isinstance(webcrm, str) else webcrm
    return FieldMap(fields, webshop, Direction.TO_WEBSHOP, conversion)


def to_webcrm(webcrm: str, webshop: str, conversion: Conversion = IDENTITY) -> FieldMap:
    """A ``←`` row (webshop to webCRM only)."""
    return FieldMap((webcrm,), webshop, Direction.TO_WEBCRM, conversion)


@dataclass(frozen=True)
class LinkMapping:
    """A link's whole table, and the conversions of whole records through it."""

    datatype: Datatype
    fields: tuple[FieldMap, ...]
    by_name: dict[str, FieldMap] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"{self.datatype.value}: duplicate property names {sorted(dupes)}")
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def webcrm_values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized webCRM-side value of every property that reads from webCRM."""
        return {f.name: f.webcrm_value(record) for f in self.fields if f.webcrm}

    def webshop_values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized webshop-side value of every property."""
        return {f.name: f.webshop_value(record) for f in self.fields}

    def to_webshop(
        self, record: Mapping[str, Any], ctx: MapContext, only: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The webshop body for the ``only`` properties (all ``→``/``⇄`` ones by default).

        Raises :class:`Unresolved` when a reference is not linked yet.
        """
        wanted = set(only) if only is not None else None
        body: dict[str, Any] = {}
        for f in self.fields:
            if not f.direction.to_webshop or (wanted is not None and f.name not in wanted):
                continue
            set_path(body, f.webshop, f.conversion.to_webshop(f.raw_webcrm(record), ctx))
        return body

    def to_webcrm(
        self, record: Mapping[str, Any], ctx: MapContext, only: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The webCRM body for the ``only`` properties (all ``←``/``⇄`` ones by default)."""
        wanted = set(only) if only is not None else None
        body: dict[str, Any] = {}
        for f in self.fields:
            if not f.direction.to_webcrm or not f.webcrm:
                continue
            if wanted is not None and f.name not in wanted:
                continue
            f.write_webcrm(body, f.conversion.to_webcrm(f.raw_webshop(record), ctx))
        return body
