"""The named conversions the mapping tables use, one small object per kind of value.

Each :class:`~shopsync.engine.mapping.base.Conversion` has two converters (webCRM value →
webshop value, and back) and two normalizers (a side's raw value → a JSON-able canonical
value, compared with that side's last snapshot). Three promises hold for every one of
them, and ``tests/mapping/test_properties.py`` checks them with hypothesis:

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
"""

from __future__ import annotations

import gettext
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import pycountry

from shopsync.config.model import Datatype, StatusRule
from shopsync.engine.mapping.base import OMIT, Conversion, MapContext, MappingError, Unresolved

# --------------------------------------------------------------------------- text


def norm_text(value: Any) -> str | None:
    """Canonical text: NFC, ``\\r\\n`` → ``\\n``, outer whitespace dropped, empty → None.

    Outer whitespace and Unicode composition are invisible to people and some systems
    change them on save; counting them as edits would make echoes. The text itself
    (æ ø å ß, inner spacing, case) is kept exactly.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.strip() or None


def _text_to_webshop(value: Any, ctx: MapContext) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _text_to_webcrm(value: Any, ctx: MapContext) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


TEXT = Conversion(
    "text",
    to_webshop=_text_to_webshop,
    to_webcrm=_text_to_webcrm,
    norm_webcrm=norm_text,
    norm_webshop=norm_text,
)
"""Free text. Values are written as typed; webCRM's maximum lengths are checked on the
whole body (``LinkMapping.to_webcrm`` → ``validate_webcrm``), not truncated."""


def required(conversion: Conversion, what: str) -> Conversion:
    """``conversion``, but an empty result towards the webshop is a :class:`MappingError`.

    For webshop fields the contract requires (a customer's name, a product's sku...):
    better put aside with "is empty" than sent and refused.
    """
    inner = conversion.to_webshop

    def to_shop(value: Any, ctx: MapContext) -> Any:
        result = inner(value, ctx)
        if result is None:
            raise MappingError("", f"is empty, and the webshop requires {what}")
        return result

    return Conversion(
        f"required {conversion.name}",
        to_webshop=to_shop,
        to_webcrm=conversion.to_webcrm,
        norm_webcrm=conversion.norm_webcrm,
        norm_webshop=conversion.norm_webshop,
    )


# ------------------------------------------------------------------------ numbers


def _to_decimal(value: Any) -> Decimal | None:
    """A JSON number or decimal string as a finite Decimal; None when empty.

    Floats go through ``repr`` (the shortest text that reads back as the same double), so
    webCRM's ``1.005`` is the decimal 1.005 a person typed, not 1.00499999….
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise MappingError("", f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MappingError("", f"expected a finite number, got {value!r}")
        d = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise MappingError("", f"{value!r} is not a decimal number") from None
    else:
        raise MappingError("", f"expected a number, got {type(value).__name__}")
    if not d.is_finite():
        raise MappingError("", f"expected a finite number, got {value!r}")
    return d


_WIDE = Context(prec=400, traps=[InvalidOperation])
"""Enough digits for any double (up to 1e308); beyond that, a clear error. One context
for every call: entering a ``localcontext`` per value cost more than the rounding."""
_STEPS = {places: Decimal(1).scaleb(-places) for places in range(0, 9)}


def _quantize(d: Decimal, places: int) -> Decimal:
    step = _STEPS.get(places) or Decimal(1).scaleb(-places)
    try:
        q = d.quantize(step, rounding=ROUND_HALF_UP, context=_WIDE)
    except InvalidOperation:
        raise MappingError("", f"{d} is too large") from None
    return q if q != 0 else abs(q)  # no "-0.00"


def _format(d: Decimal, places: int, trim: bool) -> str:
    q = _quantize(d, places)
    if trim:
        q = q.normalize()
        q = q if q != 0 else Decimal(0)
    return format(q, "f")


def decimal_conversion(
    name: str,
    places: int,
    *,
    trim: bool = False,
    empty_is_zero: bool = False,
    empty_default: str | None = None,
) -> Conversion:
    """webCRM double ⇄ webshop decimal string, rounded half-up to ``places``.

    ``trim`` writes ``"2"`` rather than ``"2.0000"`` (quantities); ``empty_is_zero`` treats
    an empty value as 0 on both sides (a discount that is not set is no discount);
    ``empty_default`` marks that 0 as a default (see ``Conversion.empty_default``).
    """
    zero = Decimal(0)

    def dec(value: Any) -> Decimal | None:
        d = _to_decimal(value)
        return zero if d is None and empty_is_zero else d

    def to_shop(value: Any, ctx: MapContext) -> str | None:
        d = dec(value)
        return None if d is None else _format(d, places, trim)

    def to_crm(value: Any, ctx: MapContext) -> float | None:
        d = dec(value)
        return None if d is None else float(_quantize(d, places))

    def norm(value: Any) -> Any:
        try:
            d = dec(value)
            return None if d is None else _format(d, places, trim)
        except MappingError:
            return norm_text(value)

    return Conversion(
        name,
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm,
        norm_webshop=norm,
        empty_default=empty_default,
    )


MONEY = decimal_conversion("money", 2)
"""Prices and totals: ``1249.5`` ⇄ ``"1249.50"``; None stays None."""
PERCENT = decimal_conversion("percent", 2)
"""A rate in percent (VAT on a line): ``25`` ⇄ ``"25.00"``."""
DISCOUNT = decimal_conversion("discount", 2, empty_is_zero=True)
"""A discount in percent; empty is 0 (``"0.00"``), as the webshop's field is required."""
QUANTITY = decimal_conversion("quantity", 4, trim=True)
"""Quantities: up to 4 decimals (``0.3333`` hours, ``2.5`` m), written trimmed (``"2"``)."""
LINE_QUANTITY = decimal_conversion(
    "quantity, empty is 0", 4, trim=True, empty_is_zero=True, empty_default="0 (empty is 0)"
)
"""An order line's quantity, which the webshop requires: as :data:`QUANTITY`, and an
empty webCRM quantity (a text line) is 0, what webCRM computes the line's value with."""
LINE_MONEY = decimal_conversion(
    "money, empty is 0", 2, empty_is_zero=True, empty_default="0.00 (empty is 0)"
)
"""An order line's unit price, which the webshop requires: as :data:`MONEY`, and an empty
webCRM price (a text line) is 0.00."""


def _to_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise MappingError("", f"expected a whole number, got {value!r}")
    d = _to_decimal(value)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise MappingError("", f"expected a whole number, got {value!r}")
    return int(d)


def _int_convert(value: Any, ctx: MapContext) -> int | None:
    return _to_int(value)


def _norm_int(value: Any) -> Any:
    try:
        return _to_int(value)
    except MappingError:
        return norm_text(value)


INTEGER = Conversion(
    "integer",
    to_webshop=_int_convert,
    to_webcrm=_int_convert,
    norm_webcrm=_norm_int,
    norm_webshop=_norm_int,
)
"""Whole numbers (a line's sort order ⇄ position)."""


# ------------------------------------------------------------------------ country

# Colloquial names no translation catalogue lists. The constituent countries of the
# United Kingdom map to GB because ISO 3166-1 has no code for them.
COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "britain": "GB",
    "storbritannien": "GB",
    "storbritannia": "GB",
    "england uk": "GB",
    "grossbritannien": "GB",
    "großbritannien": "GB",
    "us": "US",
    "u s": "US",
    "usa": "US",
    "u s a": "US",
    "america": "US",
    "united states of america": "US",
    "amerika": "US",
    "holland": "NL",
    "the netherlands": "NL",
    "kalaallit nunaat": "GL",
    "grønland": "GL",
    "færøerne": "FO",
    "føroyar": "FO",
    "faroe islands": "FO",
    "czech republic": "CZ",
    "tjekkiet": "CZ",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "vietnam": "VN",
    "turkey": "TR",
}

# Languages whose country names pycountry's ISO 3166 catalogue translates and that a
# webCRM user around the Nordics is likely to type: Nordic languages and neighbours.
COUNTRY_LANGUAGES = (
    "da", "nb_NO", "nn", "sv", "fi", "is", "fo", "kl", "de", "nl", "fr", "es", "it",
    "pt", "pl", "et", "lv", "lt",
)  # fmt: skip


def _country_key(text: str) -> str:
    """Case, dots, commas, hyphens and spacing do not matter in a country name."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[.,\-()/']", " ", text)
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    """Every name, common and official name of every country, in English and in
    :data:`COUNTRY_LANGUAGES`, → alpha-2. A spelling two countries share is left out."""
    found: dict[str, set[str]] = {}
    catalogues = [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang], fallback=True)
        for lang in COUNTRY_LANGUAGES
    ]
    for c in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            english = getattr(c, attr, None)
            if not english:
                continue
            spellings = {english}
            for cat in catalogues:
                spellings.update(cat.gettext(english).split(";"))
            for spelling in spellings:
                key = _country_key(spelling)
                if key:
                    found.setdefault(key, set()).add(c.alpha_2)
    index = {k: next(iter(v)) for k, v in found.items() if len(v) == 1}
    for k, v in COUNTRY_ALIASES.items():
        index[_country_key(k)] = v
    return index


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country as people write it, or None.

    Accepts codes (``DK``, ``DNK``, ``208``), English names (``Denmark``), names in
    :data:`COUNTRY_LANGUAGES` (``Danmark``, ``Deutschland``, ``Sverige``, ``Norge``) and
    :data:`COUNTRY_ALIASES` (``UK``, ``England``, ``USA``), in any case.
    """
    text = value.strip()
    if not text:
        return None
    upper = text.upper()
    if len(upper) == 2 and (c := pycountry.countries.get(alpha_2=upper)) is not None:
        return str(c.alpha_2)
    if len(upper) == 3 and (c := pycountry.countries.get(alpha_3=upper)) is not None:
        return str(c.alpha_2)
    if upper.isdigit() and (c := pycountry.countries.get(numeric=upper.zfill(3))) is not None:
        return str(c.alpha_2)
    return _country_index().get(_country_key(text))


def country_name(code: str) -> str | None:
    """The English common name webCRM gets for an alpha-2 code (``GB`` → United Kingdom)."""
    c = pycountry.countries.get(alpha_2=code.strip().upper())
    if c is None:
        return None
    return str(getattr(c, "common_name", None) or c.name)


def _norm_country(value: Any) -> str | None:
    text = norm_text(value)
    if text is None:
        return None
    return country_code(text) or text


def _country_to_webshop(value: Any, ctx: MapContext) -> str | None:
    text = norm_text(value)
    if text is None:
        return None
    code = country_code(text)
    if code is None:
        raise MappingError("", f"{text!r} is not a country name or code shopsync recognizes")
    return code


def _country_to_webcrm(value: Any, ctx: MapContext) -> str:
    text = norm_text(value)
    if text is None:
        return ""
    code = country_code(text)
    name = country_name(code) if code else None
    if name is None:
        raise MappingError("", f"{text!r} is not an ISO 3166-1 alpha-2 country code")
    return name


COUNTRY = Conversion(
    "country",
    to_webshop=_country_to_webshop,
    to_webcrm=_country_to_webcrm,
    norm_webcrm=_norm_country,
    norm_webshop=_norm_country,
)
"""webCRM's free-text country (``Danmark``, ``Denmark``, ``DK``) ⇄ alpha-2 (``DK``).

Both sides normalize to alpha-2, so retyping ``Denmark`` as ``Danmark`` is no change. An
unrecognized country is kept as text by the normalizer and is a :class:`MappingError`
on the way to the webshop (never silently dropped)."""


# ----------------------------------------------------------------------- currency


def currency_code(value: str) -> str | None:
    """ISO 4217 code of ``DKK``/``dkk``/``Danish Krone``, or None."""
    text = value.strip()
    if not text:
        return None
    c = pycountry.currencies.get(alpha_3=text.upper())
    if c is None:
        try:
            c = pycountry.currencies.lookup(text)
        except LookupError:
            return None
    return str(c.alpha_3)


def currency(default: str) -> Conversion:
    """webCRM's currency name ⇄ ISO 4217; an empty webCRM currency is ``default``."""

    def norm_crm(value: Any) -> str | None:
        text = norm_text(value)
        if text is None:
            return default
        return currency_code(text) or text

    def norm_shop(value: Any) -> str | None:
        text = norm_text(value)
        if text is None:
            return None
        return currency_code(text) or text

    def to_shop(value: Any, ctx: MapContext) -> str:
        text = norm_text(value)
        if text is None:
            return default
        code = currency_code(text)
        if code is None:
            raise MappingError("", f"{text!r} is not an ISO 4217 currency")
        return code

    def to_crm(value: Any, ctx: MapContext) -> str:
        text = norm_text(value)
        if text is None:
            return ""
        return currency_code(text) or text

    return Conversion(
        "currency",
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm_crm,
        norm_webshop=norm_shop,
        empty_default=f"{default} (mapping.default_currency)",
    )


# ------------------------------------------------------------------------- dates


# A date is written ``YYYY-MM-DD``, optionally followed by ``T`` (or a space) and a time:
# what webCRM's date-times and the webshop contract's dates look like. Python's
# ``fromisoformat`` also reads ISO 8601's basic and week forms (``20261126``,
# ``2026-W48-4``); those are not dates here, so a number such as 27670201 is not
# mistaken for the 1st of February 2767.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ].+)?", re.ASCII | re.DOTALL)


def _parse_date(value: Any) -> date | None:
    """The date of an ISO date or date-time; ``0001-01-01`` (.NET's empty date) is None.

    The date is taken as written, not shifted to UTC: ``2026-11-26T23:30:00-05:00`` is
    the 26th, the day the person who wrote it meant.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        d = value.date()
    elif isinstance(value, date):
        d = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            if not _ISO_DATE.fullmatch(text):
                raise ValueError(text)
            d = datetime.fromisoformat(text).date() if len(text) > 10 else date.fromisoformat(text)
        except ValueError:
            raise MappingError("", f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
    else:
        raise MappingError("", f"expected a date, got {type(value).__name__}")
    return None if d.year == 1 else d


def webcrm_datetime(d: date | datetime) -> str:
    """webCRM's date-time text: a date is midnight UTC (``2026-11-26T00:00:00Z``)."""
    if isinstance(d, datetime):
        moment = d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)
        return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{d.isoformat()}T00:00:00Z"


def _date_to_webshop(value: Any, ctx: MapContext) -> str | None:
    d = _parse_date(value)
    return None if d is None else d.isoformat()


def _date_to_webcrm(value: Any, ctx: MapContext) -> str | None:
    d = _parse_date(value)
    return None if d is None else webcrm_datetime(d)


def _norm_date(value: Any) -> str | None:
    """The ISO date, or the value's text when it is not a date.

    Idempotent by construction: the text kept for a value that is not a date is parsed
    once more (so ``norm(norm(v)) == norm(v)`` even if the text of a non-date read as a
    date), and text that does not parse is kept as it is.
    """
    try:
        d = _parse_date(value)
    except MappingError:
        text = norm_text(value)
        try:
            d = _parse_date(text)
        except MappingError:
            return text
    return None if d is None else d.isoformat()


DATE = Conversion(
    "date",
    to_webshop=_date_to_webshop,
    to_webcrm=_date_to_webcrm,
    norm_webcrm=_norm_date,
    norm_webshop=_norm_date,
)
"""webCRM date-time ⇄ webshop date; both normalize to the ISO date."""


# ----------------------------------------------------------------- value tables


def _rate_text(d: Decimal) -> str:
    return _format(d, 2, trim=False)


def _code_number(code: str) -> Decimal | None:
    """A VAT code that is a number (``25``, ``12,5``, ``25 %``) as that number."""
    text = code.strip().removesuffix("%").strip().replace(",", ".")
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def vat_codes(table: Mapping[str, Decimal]) -> Conversion:
    """webCRM ``ProductVatCode`` ⇄ webshop ``vat_rate`` through ``mapping.vat_codes``.

    A key ``""`` is the rate of an empty code (the default table: ``"" = 25``); the
    other keys are codes. Without codes a code that is a number is that rate
    (``"25"`` ⇄ ``"25.00"``), and the rate goes back as the shortest number (``"12.5"``).
    With codes, the way back is the *first* code listing the rate, and both sides
    normalize to the rate, so two codes for one rate are one value (a user switching
    between them is no change); the empty code's rate normalizes the same way, so the
    rate written for it is no change either. An empty code without a ``""`` row cannot
    become a product's rate (the webshop requires ``vat_rate``): a :class:`MappingError`.
    """
    by_code = {k.strip(): v for k, v in table.items() if k.strip()}
    by_fold = {k.casefold(): v for k, v in by_code.items()}
    empty_rate = next((v for k, v in table.items() if not k.strip()), None)

    def rate_of(code: Any) -> Decimal | None:
        text = norm_text(code) or ""
        if not text:
            return empty_rate
        if by_code:
            hit = by_code.get(text)
            return hit if hit is not None else by_fold.get(text.casefold())
        return _code_number(text)

    def to_shop(value: Any, ctx: MapContext) -> str:
        rate = rate_of(value)
        if rate is None:
            text = norm_text(value)
            if text is None:
                raise MappingError(
                    "",
                    'is empty, and the webshop requires vat_rate (mapping.vat_codes has no "" row)',
                )
            if by_code:
                raise MappingError("", f"VAT code {text!r} is not in mapping.vat_codes")
            raise MappingError(
                "", f"VAT code {text!r} is not a number and mapping.vat_codes lists no codes"
            )
        return _rate_text(rate)

    def to_crm(value: Any, ctx: MapContext) -> str:
        rate = _to_decimal(value)
        if rate is None:
            return ""
        if not by_code:
            return _format(rate, 2, trim=True)
        for code, r in table.items():
            if r == rate and code.strip():
                return code
        raise MappingError("", f"no VAT code for rate {_rate_text(rate)} in mapping.vat_codes")

    def norm_crm(value: Any) -> Any:
        try:
            rate = rate_of(value)
            return _rate_text(rate) if rate is not None else norm_text(value)
        except MappingError:
            return norm_text(value)

    def norm_shop(value: Any) -> Any:
        try:
            rate = _to_decimal(value)
            return None if rate is None else _rate_text(rate)
        except MappingError:
            return norm_text(value)

    return Conversion(
        "vat code",
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm_crm,
        norm_webshop=norm_shop,
        empty_default=(
            None
            if empty_rate is None
            else f"{_format(empty_rate, 2, trim=True)} % (mapping.vat_codes)"
        ),
    )


def value_table(name: str, table: Mapping[str, str]) -> Conversion:
    """webCRM free text ⇄ a webshop enum through a configured table (stock status).

    A webCRM value matches its key exactly or ignoring case; the way back uses the
    *first* key for a value. Both sides normalize to the enum value. A key ``""`` gives
    the value of an empty webCRM field (the default ``mapping.stock_status`` has
    ``"" = "in_stock"``: stock not tracked in webCRM); it is never written back, and the
    normalizer gives the value too, so writing it is no change. Unknown values either
    way are a :class:`MappingError` naming the table.
    """
    by_fold = {k.strip().casefold(): v for k, v in table.items()}
    back: dict[str, str] = {}
    for k, v in table.items():
        if k.strip():
            back.setdefault(v, k)
    empty = by_fold.get("")

    def lookup(value: Any) -> str | None:
        text = norm_text(value) or ""
        return by_fold.get(text.casefold())

    def to_shop(value: Any, ctx: MapContext) -> str:
        hit = lookup(value)
        if hit is None:
            text = norm_text(value)
            if text is None:
                raise MappingError(
                    "", f'is empty, and the webshop requires a value ({name} has no "" row)'
                )
            known = ", ".join(repr(k) for k in table if k.strip())
            raise MappingError("", f"{text!r} is not in {name} ({known})")
        return hit

    def to_crm(value: Any, ctx: MapContext) -> str:
        text = norm_text(value)
        if text is None:
            return ""
        if text not in back:
            raise MappingError("", f"{text!r} has no webCRM value in {name}")
        return back[text]

    def norm_crm(value: Any) -> str | None:
        return lookup(value) or norm_text(value)

    return Conversion(
        name,
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=norm_crm,
        norm_webshop=norm_text,
        empty_default=None if empty is None else f"{empty} ({name})",
    )


# ------------------------------------------------------------------------ status

ORDER_STATUSES = ("pending", "confirmed", "completed", "cancelled")


def percent_of(value: Any) -> int | None:
    """An opportunity percent as a whole number (50.0 → 50); None when empty or unreadable."""
    try:
        return _to_int(value)
    except MappingError:
        try:
            d = _to_decimal(value)
        except MappingError:
            return None
        return None if d is None else int(d)


def date_is_set(value: Any) -> bool:
    """True when a webCRM date field holds a date (not empty, not .NET's 0001-01-01)."""
    try:
        return _parse_date(value) is not None
    except MappingError:
        return bool(norm_text(value))  # unreadable but present: still set


def _first_match(rules: Sequence[StatusRule], percent: int | None, has_lost: bool) -> str | None:
    for rule in rules:
        if rule.lost == has_lost and (rule.percent is None or rule.percent == percent):
            return rule.status
    return None


def status_of(rules: Sequence[StatusRule], percent: Any, lost: Any) -> str | None:
    """The order status of an opportunity by ``mapping.status_table``: the first row whose
    ``lost`` equals "has a lost date" and whose ``percent`` is unset or equal; None when
    no row matches (a table without a catch-all for lost opportunities)."""
    return _first_match(rules, percent_of(percent), date_is_set(lost))


# Every percent a row can name, and "no percent" (an empty or unreadable percent, or one
# outside 0..100, matches exactly the rows a missing percent matches).
_ALL_PERCENTS: tuple[int | None, ...] = (None, *range(101))


@dataclass(frozen=True)
class StatusWrite:
    """What writing one webshop status does to the opportunity (see :func:`status_writes`)."""

    percent: int | None
    """``OpportunityPercent`` to write; None: leave the percent as it is (:data:`OMIT`)."""
    lost: bool
    """Set ``OpportunityLostDate`` (to now) or clear it."""
    reads_as: str
    """The status the table reads the written opportunity as: the canonical value."""


def status_writes(rules: Sequence[StatusRule]) -> dict[str, StatusWrite]:
    """Per status of ``mapping.status_table``, what writing it to webCRM does.

    The first row for the status gives the lost date (set or cleared) and the percent.
    A row without a percent leaves webCRM's percent as it is *only when every percent
    reads back as that status* (the default ``cancelled``: a lost date wins at any
    percent); otherwise the lowest percent that reads back as it is written (the default
    ``pending`` writes 0, since leaving a won opportunity's 100 would read back as
    ``confirmed``). So a status written to webCRM always reads back as itself, or as
    the first status of its lossy class (statuses whose writes are equal: ``completed``
    reads back as ``confirmed``).

    Raises ValueError, naming ``mapping.status_table``, for a table where a status
    cannot be written at all: every percent reads back as another status (a row above
    it matches first).
    """
    table = tuple(rules)
    planned: dict[str, tuple[int | None, bool, frozenset[str | None]]] = {}
    for rule in table:
        if rule.status in planned:
            continue
        if rule.percent is not None:
            percent: int | None = rule.percent
            reads = frozenset({_first_match(table, rule.percent, rule.lost)})
        else:
            every = frozenset(_first_match(table, p, rule.lost) for p in _ALL_PERCENTS)
            found = [p for p in range(101) if _first_match(table, p, rule.lost) == rule.status]
            if every == {rule.status} or not found:
                percent, reads = None, every
            else:
                percent, reads = found[0], frozenset({rule.status})
        planned[rule.status] = (percent, rule.lost, reads)

    writes: dict[str, StatusWrite] = {}
    for status, (percent, lost, reads) in planned.items():
        # Reading back as another status is fine only when that status is written the
        # same way (one lossy class, e.g. confirmed/completed at the won percent).
        wrong = sorted(str(r) for r in reads if r is None or planned[r][:2] != (percent, lost))
        if wrong or len(reads) != 1:
            what = "any percent" if percent is None else f"percent {percent}"
            state = "with" if lost else "without"
            raise ValueError(
                f"mapping.status_table: {status!r} cannot be written to webCRM: {what} "
                f"{state} a lost date reads back as {', '.join(wrong) or 'several statuses'}"
                " (an earlier row matches it first)"
            )
        writes[status] = StatusWrite(percent, lost, str(next(iter(reads))))
    return writes


def order_status(rules: Sequence[StatusRule]) -> Conversion:
    """``(OpportunityPercent, OpportunityLostDate)`` ⇄ the webshop order ``status``, by
    ``mapping.status_table`` (``StatusRule`` rows, see ``config/model.py``).

    To the webshop: :func:`status_of`. Back: :func:`status_writes`, so the written
    opportunity reads back as the status written (the percent is :data:`OMIT`, left as
    it is, only where every percent reads back the same). With the default table:
    ``confirmed`` and ``completed`` → (won percent, no lost date); ``cancelled`` →
    (percent left, lost date now); ``pending`` → (0, no lost date). The order date of a
    won opportunity is the orders link's ``complete_webcrm`` step.

    Lossy: statuses whose writes are equal are one value on both sides, the status the
    write reads back as (``completed`` normalizes to ``confirmed``), and the webCRM side
    is only its status (a percent moving 10 → 50, or the lost date's time, is no
    change). So a webshop order going from confirmed to completed is no change.
    """
    table = tuple(rules)
    writes = status_writes(table)
    canonical = {s: w.reads_as for s, w in writes.items()}

    def describe(percent: Any, lost: Any) -> str:
        state = "with" if date_is_set(lost) else "without"
        return f"percent {percent_of(percent)} {state} a lost date"

    def to_shop(value: Any, ctx: MapContext) -> str:
        percent, lost = value
        status = status_of(table, percent, lost)
        if status is None:
            raise MappingError(
                "", f"no row of mapping.status_table matches {describe(percent, lost)}"
            )
        return status

    def to_crm(value: Any, ctx: MapContext) -> tuple[Any, str | None]:
        status = norm_text(value)
        if status is None or status not in writes:
            raise MappingError(
                "", f"{value!r} is not an order status ({', '.join(ORDER_STATUSES)})"
            )
        write = writes[status]
        return (
            OMIT if write.percent is None else write.percent,
            webcrm_datetime(datetime.now(UTC)) if write.lost else None,
        )

    def norm_shop(value: Any) -> str | None:
        status = norm_text(value)
        return None if status is None else canonical.get(status, status)

    def norm_crm(value: Any) -> str | None:
        if isinstance(value, tuple | list) and len(value) == 2:
            status = status_of(table, value[0], value[1])
            if status is None:
                return f"(no status: {describe(value[0], value[1])})"
            return canonical.get(status, status)
        return norm_shop(value)  # an already normalized status

    return Conversion(
        "status", to_webshop=to_shop, to_webcrm=to_crm, norm_webcrm=norm_crm, norm_webshop=norm_shop
    )


# -------------------------------------------------------------------- references


def _norm_ref(value: Any) -> str | None:
    """A reference id as text; webCRM's 0 means none."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and value == 0):
        return None
    text = norm_text(value)
    if text is None or text == "0":
        return None
    return text


def reference(datatype: Datatype, *, required_for: str = "") -> Conversion:
    """A webCRM id ⇄ webshop id of a linked record (``OpportunityOrganisationId`` ⇄
    ``customer_id``), translated through the links in the :class:`MapContext`.

    A reference that is set but not linked yet raises :class:`Unresolved` (the record
    waits, rule 6). An empty reference is None, except that when ``required_for`` names
    what needs it, an empty webCRM reference is a :class:`MappingError` (an opportunity
    without an organisation cannot become an order). Both sides normalize to their own
    id as text; the two id spaces are never compared with each other.
    """

    def to_shop(value: Any, ctx: MapContext) -> str | None:
        ref = _norm_ref(value)
        if ref is None:
            if required_for:
                raise MappingError("", f"is empty; {required_for}")
            return None
        linked = ctx.webshop_id(datatype, ref)
        if linked is None:
            raise _unresolved(ctx, datatype, "webcrm", ref)
        return linked

    def to_crm(value: Any, ctx: MapContext) -> int | None:
        ref = _norm_ref(value)
        if ref is None:
            return None
        linked = ctx.webcrm_id(datatype, ref)
        if linked is None:
            raise _unresolved(ctx, datatype, "webshop", ref)
        try:
            return int(linked)
        except ValueError:
            raise MappingError("", f"linked webCRM id {linked!r} is not a number") from None

    return Conversion(
        f"reference {datatype.value}",
        to_webshop=to_shop,
        to_webcrm=to_crm,
        norm_webcrm=_norm_ref,
        norm_webshop=_norm_ref,
    )


def _unresolved(ctx: MapContext, datatype: Datatype, side: str, ref: str) -> Exception:
    """Waiting (:class:`Unresolved`) for a reference that may yet be linked; put aside
    (:class:`MappingError`) for one whose link ended with a delete: it never will be."""
    why = ctx.unlinked(datatype, side, ref)
    if why is None:
        return Unresolved(datatype, side, ref)
    return MappingError("", why)


def _product_for_sku(value: Any, ctx: MapContext) -> str | None:
    sku = norm_text(value)
    return None if sku is None else ctx.product_id_for_sku(sku)


PRODUCT_BY_SKU = Conversion(
    "product by sku",
    to_webshop=_product_for_sku,
    norm_webcrm=norm_text,
    norm_webshop=_norm_ref,
)
"""A line's sku → the webshop product with that sku (None when there is none). Only
``→``; the webCRM side's value is the sku, the webshop side's the product id."""
