"""How names, postal codes and skus compare: :func:`normalize_name`,
:func:`normalize_postcode` and :func:`normalize_sku`.

Shared by the customers' name + postal code key (``keys.py``) and the pairing of order
lines by sku or description (``lines.py``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from shopsync.engine.mapping.conversions.text import norm_text


def normalize_name(name: Any) -> str | None:
    """A company name for comparison: case-folded, letters and digits only.

    ``Ærø Møbler A/S`` and ``ÆRØ MØBLER AS`` are equal; spacing and punctuation do not
    count, letters do (``ø`` is not ``o``). Legal forms are kept: ``Larsen A/S`` and
    ``Larsen ApS`` are different companies.
    """
    text = norm_text(name)
    if text is None:
        return None
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(ch for ch in folded if ch.isalnum())
    return kept or None


_POSTCODE_COUNTRY = re.compile(r"^[A-Z]{1,3}-(?=[0-9])")


def normalize_postcode(postcode: Any) -> str | None:
    """A postal code without spaces, upper case, and without a ``DK-`` style prefix."""
    text = norm_text(postcode)
    if text is None:
        return None
    v = "".join(text.split()).upper()
    v = _POSTCODE_COUNTRY.sub("", v)
    return v or None


def normalize_sku(sku: Any) -> str | None:
    """A sku compares exactly after trimming: case counts (``ab-1`` is not ``AB-1``), as
    the webshop's uniqueness of sku does."""
    return norm_text(sku)
