"""What every conversion is made of, and what its converters may consult, return and raise.

:class:`Conversion` pairs two converters with two normalizers; a converter is given the
:class:`MapContext` (configuration and links), may return :data:`OMIT`, and raises
:class:`Unresolved` (the record waits, rule 6) or :class:`MappingError` (put aside,
rule 7). A module of its own that imports nothing else of the mapper, so that the
conversion modules, the rows (``mapping/rows.py``) and the link's table
(``mapping/link.py``) all import it without an import cycle; ``mapping/base.py``
re-exports all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shopsync.config.model import Config, Datatype


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
