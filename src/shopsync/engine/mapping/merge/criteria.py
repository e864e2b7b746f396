"""The merge criteria themselves: which ones each datatype has, in which order, and how
strong each is.

The tables the rest of ``merge`` and ``engine/matching.py`` read: what a key is
(:data:`MergeKey`), each datatype's criteria strongest first (:data:`CRITERIA`), each
criterion's :data:`STRENGTH`, and which ones a company's branches share
(:data:`COMPANY_WIDE`).
"""

from __future__ import annotations

from enum import StrEnum

from shopsync.config.model import Datatype

MergeKey = tuple[str, str]
"""``(criterion, canonical value)``, e.g. ``("vat", "DK12345678")``."""

CRITERIA: dict[Datatype, tuple[str, ...]] = {
    Datatype.customers: ("vat", "host", "name_postcode"),
    Datatype.products: ("sku",),
    Datatype.orders: ("order_number",),
    Datatype.order_lines: (),
}
"""Each datatype's criteria, strongest first (dataflow.md's numbered lists)."""


class Strength(StrEnum):
    strong = "strong"
    """Names one legal entity or one record: equal values are the same thing."""
    weak = "weak"
    """Evidence only: two companies can share it (a group's domain, a common name)."""


STRENGTH: dict[str, Strength] = {
    "vat": Strength.strong,
    "sku": Strength.strong,
    "order_number": Strength.strong,
    "host": Strength.weak,
    "name_postcode": Strength.weak,
}
"""The strength of each criterion of :data:`CRITERIA`. A weak key never merges two
records whose strong keys both exist and disagree (``engine/matching.py``)."""

COMPANY_WIDE: frozenset[str] = frozenset({"vat", "host"})
"""Criteria that every branch of one company shares (its VAT number, its website), as
opposed to those of one site (name + postal code). When a record's VAT number is shared
by branches, a company-wide weak key cannot tell which branch is which, so it is not
used; name + postal code still can be."""
