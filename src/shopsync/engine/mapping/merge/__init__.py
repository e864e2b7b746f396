"""Merge criteria (rule 2): how a record of one side finds the same record on the other.

Before creating a record the engine computes its *merge keys* and looks for an unlinked
record of the other side with an equal key, criterion by criterion, in the order given:
a VAT number outranks a website, which outranks name + postal code. A key is a tagged
pair ``(criterion, canonical value)``, so keys of different criteria never meet. A
record lacking the data for a criterion simply has no key for it, and so does a value
that identifies no one: a VAT field holding ``N/A`` or ``00000000``, a website on a
platform many companies share (``facebook.com/…``, ``….myshopify.com``, ``gmail.com``).

Each criterion is :data:`STRENGTH` strong (it names one legal entity or one record: VAT,
sku, order number) or weak (domain, name + postal code). How the keys are weighed
against each other, and what counts as ambiguous, is ``engine/matching.py``
(:meth:`Matcher.choose`).

Lines have no merge keys of their own: they belong to their order. When two existing
orders are merged, :func:`pair_lines` pairs their lines.

One module per criterion's kind of value; this package re-exports every public name, so
``from shopsync.engine.mapping.merge import merge_keys`` is the way in:

* ``criteria.py``: :data:`MergeKey`, :data:`CRITERIA`, :data:`STRENGTH`,
  :data:`COMPANY_WIDE`;
* ``vat.py``: :func:`normalize_vat`, :func:`vat_variants`;
* ``hosts.py``: :func:`normalize_host`, :data:`SHARED_PLATFORMS`, :func:`platform_of`;
* ``names.py``: :func:`normalize_name`, :func:`normalize_postcode`, :func:`normalize_sku`;
* ``keys.py``: :func:`merge_keys` and the keys of each datatype and side;
* ``lines.py``: :func:`pair_lines`, :func:`line_keys`, :func:`line_match_key`.
"""

from __future__ import annotations

from shopsync.engine.mapping.merge.criteria import (
    COMPANY_WIDE,
    CRITERIA,
    STRENGTH,
    MergeKey,
    Strength,
)
from shopsync.engine.mapping.merge.hosts import SHARED_PLATFORMS, normalize_host, platform_of
from shopsync.engine.mapping.merge.keys import (
    customer_keys_webcrm,
    customer_keys_webshop,
    merge_keys,
    order_keys_webcrm,
    order_keys_webshop,
    product_keys_webcrm,
    product_keys_webshop,
)
from shopsync.engine.mapping.merge.lines import (
    LineKey,
    LinePairing,
    line_keys,
    line_match_key,
    pair_lines,
)
from shopsync.engine.mapping.merge.names import normalize_name, normalize_postcode, normalize_sku
from shopsync.engine.mapping.merge.vat import VAT_MIN_DIGITS, normalize_vat, vat_variants

__all__ = [
    "COMPANY_WIDE",
    "CRITERIA",
    "SHARED_PLATFORMS",
    "STRENGTH",
    "VAT_MIN_DIGITS",
    "LineKey",
    "LinePairing",
    "MergeKey",
    "Strength",
    "customer_keys_webcrm",
    "customer_keys_webshop",
    "line_keys",
    "line_match_key",
    "merge_keys",
    "normalize_host",
    "normalize_name",
    "normalize_postcode",
    "normalize_sku",
    "normalize_vat",
    "order_keys_webcrm",
    "order_keys_webshop",
    "pair_lines",
    "platform_of",
    "product_keys_webcrm",
    "product_keys_webshop",
    "vat_variants",
]
