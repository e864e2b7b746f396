"""A link's whole table (:class:`LinkMapping`): each side's normalized values of a
record, and the body to write for the properties asked for.

The value readers are compiled once per link: they run for every record read, the
unchanged ones included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shopsync.config.model import Datatype
from shopsync.engine.mapping.conversions.base import OMIT, MapContext, MappingError, Normalizer
from shopsync.engine.mapping.rows import EngineSet, FieldMap, set_path
from shopsync.engine.mapping.validation import validate_webcrm

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
    webcrm_reading: tuple[tuple[str, bool], ...] = field(init=False, repr=False, compare=False)
    """Each property's name, and whether it reads from webCRM (in the table's order)."""
    _by_webcrm_field: dict[str, tuple[FieldMap, ...]] = field(init=False, repr=False, compare=False)
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
        object.__setattr__(
            self, "webcrm_reading", tuple((f.name, bool(f.webcrm)) for f in self.fields)
        )
        reading: dict[str, list[FieldMap]] = {}
        for f in self.fields:
            for name in f.webcrm:
                reading.setdefault(name, []).append(f)
        object.__setattr__(
            self, "_by_webcrm_field", {name: tuple(fs) for name, fs in reading.items()}
        )

    def webcrm_values(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized webCRM-side value of every property that reads from webCRM (what
        :meth:`FieldMap.webcrm_value` gives, row by row)."""
        get = record.get
        return {
            name: norm(get(key) if isinstance(key, str) else tuple(get(k) for k in key))
            for name, key, norm in self._readers[0]
        }

    def sent_webcrm_values(self, sent: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized webCRM value of each property whose webCRM fields are all in
        ``sent`` (a body written): what the record holds of them after the write, known
        without reading it back. Found from the fields sent, not by a walk of the table."""
        values: dict[str, Any] = {}
        for key in sent:
            for f in self._by_webcrm_field.get(key, ()):
                if f.name not in values and all(name in sent for name in f.webcrm):
                    values[f.name] = f.webcrm_value(sent)
        return values

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
