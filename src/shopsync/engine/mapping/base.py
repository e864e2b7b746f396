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

The pieces live in their own modules and this one re-exports them all, so
``from shopsync.engine.mapping.base import LinkMapping`` is the way in:

* ``conversions/base.py``: :class:`Conversion`, :class:`MapContext`, :data:`OMIT`,
  :class:`Unresolved`, :class:`MappingError`;
* ``rows.py``: :class:`FieldMap`, :class:`Direction`, :class:`EngineSet`, the row
  helpers (:func:`both`, :func:`to_webshop`, :func:`to_webcrm`, :func:`constant`) and
  the dotted paths (:func:`get_path`, :func:`set_path`);
* ``validation.py``: :func:`validate_webcrm`, :func:`require_webcrm_field`;
* ``link.py``: :class:`LinkMapping`.
"""

from __future__ import annotations

from shopsync.engine.mapping.conversions.base import (
    IDENTITY,
    OMIT,
    Conversion,
    Converter,
    MapContext,
    MappingError,
    Normalizer,
    Unresolved,
    empty_to_none,
)
from shopsync.engine.mapping.link import CompleteWebcrm, LinkMapping
from shopsync.engine.mapping.rows import (
    Direction,
    EngineSet,
    FieldMap,
    both,
    constant,
    get_path,
    set_path,
    to_webcrm,
    to_webshop,
)
from shopsync.engine.mapping.validation import require_webcrm_field, validate_webcrm

__all__ = [
    "IDENTITY",
    "OMIT",
    "CompleteWebcrm",
    "Conversion",
    "Converter",
    "Direction",
    "EngineSet",
    "FieldMap",
    "LinkMapping",
    "MapContext",
    "MappingError",
    "Normalizer",
    "Unresolved",
    "both",
    "constant",
    "empty_to_none",
    "get_path",
    "require_webcrm_field",
    "set_path",
    "to_webcrm",
    "to_webshop",
    "validate_webcrm",
]
