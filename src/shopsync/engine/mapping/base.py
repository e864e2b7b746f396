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

Two exceptions leave the converters, and the engine treats them differently:

* :class:`Unresolved`: a reference is not linked yet; the record waits (rule 6);
* :class:`MappingError`: the value cannot be written to the other side at all (unknown
  country, text longer than webCRM allows, ...); the record is put aside with the
  reason (rule 7).

Normalizers never raise: a value they cannot read is kept as it is, so a change to it is
still seen, and the converter then raises :class:`MappingError` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from shopsync.config.model import Config, Datatype
from shopsync.connectors.webcrm.schema import ENTITIES


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


class MappingError(Exception):
    """A value that cannot be written to the other side: the record is put aside (rule 7).

    ``field`` names the field of the record being read (the webCRM field when mapping to
    the webshop, the webshop path when mapping to webCRM; for a webCRM body that fails
    validation, the webCRM field). Converters raise it with ``field=""``;
    :class:`LinkMapping` fills in the row's field. ``problems`` lists every
    ``(field, message)`` found when there are several (body validation).
    """

    def __init__(
        self, field: str, message: str, problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.problems: list[tuple[str, str]] = problems or [(field, message)]


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

    def unlinked(self, datatype: Datatype, side: str, ref_id: str) -> str | None:
        """Why ``side``'s record ``ref_id`` is linked no more (its partner was deleted),
        or None when it was never linked (it may still be: the record waits)."""


class _Omit:
    """The type of :data:`OMIT`."""

    _instance: _Omit | None = None

    def __new__(cls) -> _Omit:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""A converter's "leave this field as it is": the field is left out of the body. Used
inside a tuple for one of a row's webCRM fields (the status table's "percent unset")."""


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
    empty_default: str | None = None
    """Set when an empty webCRM value stands for a default rather than for "no value"
    (``mapping.stock_status``'s ``""`` row, ``mapping.default_currency``, 0 for a line's
    empty quantity): what it becomes and which setting says so, as ``shopsync check``
    reports it (``"in_stock (mapping.stock_status)"``). ``norm_webcrm`` gives the default
    too, so the value written is no change; when two existing records are merged
    (rule 2) the webCRM value still counts as empty (:func:`webcrm_is_empty`)."""

    def webcrm_is_empty(self, raw: Any) -> bool:
        """Is this raw webCRM value empty, before any default stands in for it?"""
        if isinstance(raw, tuple):
            return all(empty_to_none(v) is None for v in raw)
        return empty_to_none(raw) is None


IDENTITY = Conversion("identity")


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


def validate_webcrm(entity: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems webCRM would reject ``body`` of ``entity`` (``"Organisation"``…) for.

    Checks every field against the generated schema: that the field exists, its JSON type,
    webCRM's maximum string length and enum values. Returns ``(field, message)`` pairs;
    empty when the body is fine. Values are not echoed for long texts, only their length.
    """
    spec = ENTITIES.get(entity)
    if spec is None:
        return [("", f"{entity!r} is not a webCRM entity ({', '.join(sorted(ENTITIES))})")]
    problems: list[tuple[str, str]] = []
    for name, value in body.items():
        fs = spec.by_name.get(name)
        if fs is None:
            problems.append((name, f"is not a field of webCRM {entity}"))
            continue
        if value is None:
            continue
        if fs.type == "string":
            if not isinstance(value, str):
                problems.append((name, f"must be text, got {type(value).__name__}"))
            elif fs.max_length is not None and len(value) > fs.max_length:
                problems.append(
                    (name, f"is {len(value)} characters; webCRM allows at most {fs.max_length}")
                )
            elif fs.enum is not None and value not in fs.enum:
                problems.append((name, f"{value!r} is not one of {', '.join(fs.enum)}"))
        elif fs.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append((name, f"must be a whole number, got {value!r}"))
            elif fs.format == "int32" and not -(2**31) <= value < 2**31:
                problems.append((name, f"{value} is out of webCRM's 32-bit range"))
        elif fs.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append((name, f"must be a number, got {value!r}"))
            elif value != value or value in (float("inf"), float("-inf")):
                problems.append((name, f"must be a finite number, got {value!r}"))
        elif fs.type == "boolean" and not isinstance(value, bool):
            problems.append((name, f"must be true or false, got {value!r}"))
    return problems


def require_webcrm_field(entity: str, name: str, where: str) -> None:
    """Fail early, naming the configuration key, when a configured field does not exist.

    A typo such as ``fields.product_sku = "ProductCustom01"`` would otherwise surface as
    every product being put aside by webCRM.
    """
    spec = ENTITIES[entity]
    fs = spec.by_name.get(name)
    if fs is None:
        raise ValueError(f"{where} = {name!r}: not a field of webCRM {entity}")
    if fs.type != "string":
        raise ValueError(f"{where} = {name!r}: webCRM {entity} field is {fs.type}, not text")


_Reader = tuple[tuple[str, "str | tuple[str, ...]", Normalizer], ...]


def _walk(record: Mapping[str, Any], steps: tuple[str, ...]) -> Any:
    """:func:`get_path` with the path split already."""
    value: Any = record
    for step in steps:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


CompleteWebcrm = Callable[[dict[str, Any], Mapping[str, Any]], None]
"""``(webcrm_body, webshop_record)``: a link-wide step after the rows (see orders.py)."""


@dataclass(frozen=True)
class LinkMapping:
    """A link's whole table, and the conversions of whole records through it."""

    datatype: Datatype
    fields: tuple[FieldMap, ...]
    webcrm_entity: str = ""
    """The webCRM entity name in ``schema.ENTITIES`` (``"Organisation"``); bodies built by
    :meth:`to_webcrm` are validated against it. Empty: no validation."""
    id_fields: tuple[str, str] = ("", "id")
    """The link row: ``(webCRM id field, webshop id path)``, never copied as data."""
    engine_set: tuple[EngineSet, ...] = ()
    complete_webcrm: CompleteWebcrm | None = None
    """Runs after the rows on every :meth:`to_webcrm` body, for rules that span rows."""
    by_name: dict[str, FieldMap] = field(init=False, repr=False, compare=False)
    _readers: tuple[_Reader, _Reader] = field(init=False, repr=False, compare=False)
    """The rows as ``(name, key or keys, normalizer)`` per side, for the two functions
    below: they run for every record read, the unchanged ones included."""

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"{self.datatype.value}: duplicate property names {sorted(dupes)}")
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})
        crm: _Reader = tuple(
            (f.name, f.webcrm[0] if len(f.webcrm) == 1 else f.webcrm, f.conversion.norm_webcrm)
            for f in self.fields
            if f.webcrm
        )
        shop: _Reader = tuple(
            (f.name, f.webshop if "." not in f.webshop else tuple(f.webshop.split(".")),
             f.conversion.norm_webshop)
            for f in self.fields
        )  # fmt: skip
        object.__setattr__(self, "_readers", (crm, shop))

    def webcrm_values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized webCRM-side value of every property that reads from webCRM (what
        :meth:`FieldMap.webcrm_value` gives, row by row)."""
        get = record.get
        return {
            name: norm(get(key) if isinstance(key, str) else tuple(get(k) for k in key))
            for name, key, norm in self._readers[0]
        }

    def webshop_values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized webshop-side value of every property (:meth:`FieldMap.webshop_value`
        row by row)."""
        get = record.get
        return {
            name: norm(get(key) if isinstance(key, str) else _walk(record, key))
            for name, key, norm in self._readers[1]
        }

    def to_webshop(
        self, record: Mapping[str, Any], ctx: MapContext, only: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The webshop body for the ``only`` properties (all ``→``/``⇄`` ones by default).

        Raises :class:`Unresolved` when a reference is not linked yet, and
        :class:`MappingError` (naming the webCRM field) when a value cannot be converted.
        """
        wanted = set(only) if only is not None else None
        body: dict[str, Any] = {}
        for f in self.fields:
            if not f.direction.to_webshop or (wanted is not None and f.name not in wanted):
                continue
            try:
                value = f.conversion.to_webshop(f.raw_webcrm(record), ctx)
            except MappingError as exc:
                if exc.field:
                    raise
                where = ", ".join(f.webcrm) or f.webshop
                raise MappingError(where, exc.message) from exc
            if value is not OMIT:
                set_path(body, f.webshop, value)
        return body

    def to_webcrm(
        self,
        record: Mapping[str, Any],
        ctx: MapContext,
        only: Iterable[str] | None = None,
        *,
        validate: bool = True,
    ) -> dict[str, Any]:
        """The webCRM body for the ``only`` properties (all ``←``/``⇄`` ones by default).

        Raises :class:`Unresolved` when a reference is not linked yet, and
        :class:`MappingError` when a value cannot be converted (naming the webshop path) or
        when the body breaks webCRM's schema (too long, ...; naming the webCRM field, with
        every problem in ``problems``), so the record is put aside before it is sent.
        """
        wanted = set(only) if only is not None else None
        body: dict[str, Any] = {}
        for f in self.fields:
            if not f.direction.to_webcrm or not f.webcrm:
                continue
            if wanted is not None and f.name not in wanted:
                continue
            try:
                value = f.conversion.to_webcrm(f.raw_webshop(record), ctx)
            except MappingError as exc:
                if exc.field:
                    raise
                raise MappingError(f.webshop, exc.message) from exc
            f.write_webcrm(body, value)
        if self.complete_webcrm is not None:
            self.complete_webcrm(body, record)
        if validate and self.webcrm_entity:
            problems = self.validate_webcrm(body)
            if problems:
                first_field, first_message = problems[0]
                raise MappingError(first_field, first_message, problems)
        return body

    def validate_webcrm(self, body: Mapping[str, Any]) -> list[tuple[str, str]]:
        """See :func:`validate_webcrm`; for this link's webCRM entity."""
        if not self.webcrm_entity:
            return []
        return validate_webcrm(self.webcrm_entity, body)
