"""The named conversions the mapping tables use, one small object per kind of value.

Each :class:`~shopsync.engine.mapping.conversions.base.Conversion` has two converters
(webCRM value → webshop value, and back) and two normalizers (a side's raw value → a
JSON-able canonical value, compared with that side's last snapshot). Three promises hold
for every one of them, and ``tests/mapping/test_mapping_properties.py`` checks them with
hypothesis:

1. A normalizer is idempotent and never raises: a value it cannot read is kept (as
   stripped text), so editing it is still a change and the converter then says why it
   cannot be written.
2. Both normalizers land in the *same* canonical domain where the conversion is lossless:
   ``norm_webshop(to_webshop(v)) == norm_webcrm(v)`` and
   ``norm_webcrm(to_webcrm(w)) == norm_webshop(w)``. A value the product wrote therefore
   normalizes to what it was written from, and never comes back as a change (rule 4).
3. Lossy conversions (the status, two VAT codes with one rate, ...) normalize to the
   coarser value, so the finer value on one side is only rewritten when the other side
   really changed.

Converters raise :class:`MappingError` (put the record aside, rule 7) or
:class:`Unresolved` (the record waits, rule 6). Empty text is ``None`` towards the
webshop (its fields are "string or null") and ``""`` towards webCRM (how webCRM stores
an emptied text field); empty numbers and dates are ``None`` both ways.

One module per kind of value, each importable on its own; this package re-exports every
public name, so ``from shopsync.engine.mapping.conversions import TEXT`` is the way in:

* ``base.py``: what every conversion is made of (:class:`Conversion`, :data:`OMIT`,
  :class:`MapContext`, :class:`MappingError`, :class:`Unresolved`), re-exported by
  ``mapping/base.py`` rather than here;
* ``text.py``: :data:`TEXT`, :func:`norm_text` (every normalizer's fallback),
  :func:`required`;
* ``numbers.py``: decimals (:data:`MONEY`, :data:`PERCENT`, :data:`DISCOUNT`,
  :data:`QUANTITY`, the line variants, :func:`decimal_conversion`) and :data:`INTEGER`;
* ``countries.py``: :data:`COUNTRY`, :func:`country_code`, :func:`country_name`;
* ``currency.py``: :func:`currency`, :func:`currency_code`;
* ``dates.py``: :data:`DATE`, :func:`webcrm_datetime`;
* ``tables.py``: configured value tables, :func:`vat_codes` and :func:`value_table`;
* ``status.py``: the order status by ``mapping.status_table`` (:func:`order_status`,
  :func:`status_writes`, :func:`status_of`);
* ``references.py``: linked records (:func:`reference`, :data:`PRODUCT_BY_SKU`).
"""

from __future__ import annotations

from shopsync.engine.mapping.conversions.countries import (
    COUNTRY,
    COUNTRY_ALIASES,
    COUNTRY_LANGUAGES,
    country_code,
    country_name,
)
from shopsync.engine.mapping.conversions.currency import currency, currency_code
from shopsync.engine.mapping.conversions.dates import DATE, webcrm_datetime
from shopsync.engine.mapping.conversions.numbers import (
    DISCOUNT,
    INTEGER,
    LINE_MONEY,
    LINE_QUANTITY,
    MONEY,
    PERCENT,
    QUANTITY,
    decimal_conversion,
)
from shopsync.engine.mapping.conversions.references import PRODUCT_BY_SKU, reference
from shopsync.engine.mapping.conversions.status import (
    ORDER_STATUSES,
    StatusWrite,
    date_is_set,
    order_status,
    percent_of,
    status_of,
    status_writes,
)
from shopsync.engine.mapping.conversions.tables import value_table, vat_codes
from shopsync.engine.mapping.conversions.text import TEXT, norm_text, required

__all__ = [
    "COUNTRY",
    "COUNTRY_ALIASES",
    "COUNTRY_LANGUAGES",
    "DATE",
    "DISCOUNT",
    "INTEGER",
    "LINE_MONEY",
    "LINE_QUANTITY",
    "MONEY",
    "ORDER_STATUSES",
    "PERCENT",
    "PRODUCT_BY_SKU",
    "QUANTITY",
    "TEXT",
    "StatusWrite",
    "country_code",
    "country_name",
    "currency",
    "currency_code",
    "date_is_set",
    "decimal_conversion",
    "norm_text",
    "order_status",
    "percent_of",
    "reference",
    "required",
    "status_of",
    "status_writes",
    "value_table",
    "vat_codes",
    "webcrm_datetime",
]
