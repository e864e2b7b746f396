"""VAT numbers as merge keys: :func:`normalize_vat` and :func:`vat_variants`.

The strongest customer key, and the hardest to read: people type labels, separators,
a country prefix or none, an organisation number instead, or a placeholder.
python-stdnum compacts and validates the number for its country; what counts as no key
at all is said in :func:`normalize_vat`.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from stdnum import get_cc_module
from stdnum.exceptions import InvalidChecksum, ValidationError

from shopsync.engine.mapping.conversions.countries import country_code
from shopsync.engine.mapping.conversions.text import norm_text

if TYPE_CHECKING:
    from stdnum.util import NumberValidationModule


_VAT_LABEL = re.compile(
    r"^(?:VAT(?:ID|NO|NR|REG)?|CVR(?:NR|NO)?|MOMS(?:NR)?|UST(?:ID)?(?:NR)?|UID(?:NR)?"
    r"|BTW(?:NR)?|ORG(?:NR|NO))+(?=[A-Z]{0,3}[0-9])"
)
"""A label typed before the number (``CVR: 12345678``, ``USt-IdNr. DE…``, ``VAT no.``)."""
_VAT_PREFIX = re.compile(r"^([A-Z]{2})(?=[A-Z]?[0-9])")
"""A country prefix to take the country from: two letters, then a digit (``DK1…``) or
one more letter and a digit (Austria's ``ATU1…``, Spain's ``ESX1…``, ``CHE-1…``)."""
_VAT_ALIASES = {"EL": "GR", "XI": "GB"}
"""VAT prefixes that are not the ISO code: Greece's ``EL``; Northern Ireland's ``XI``
(the UK VAT number of a trader in Northern Ireland)."""
_VAT_SUFFIX = re.compile(r"(?:MVA|MWST|TVA|IVA|TPV)$")
"""Words that follow the number in Norway (``MVA``) and Switzerland (``MWST``, …)."""
_VAT_SUFFIX_NEEDED = {"NO": "MVA", "CH": "MWST"}
"""stdnum validates these countries' numbers only with the suffix: added when missing."""
VAT_MIN_DIGITS = 6
"""Fewer digits than this is no VAT number (``0``, ``123``, ``GD001``): such values are
placeholders far more often than numbers, and too short to tell companies apart."""


@lru_cache(maxsize=4096)
def _country(text: str) -> str | None:
    """:func:`country_code`, remembered: the same few spellings come on every record."""
    return country_code(text)


@cache
def _vat_module(cc: str) -> NumberValidationModule | None:
    """python-stdnum's VAT (or business number) module of a country, or None."""
    return get_cc_module(cc.lower(), "vat")


def _vat_junk(text: str) -> bool:
    """No VAT number at all: no digits (``N/A``, ``none``, ``tbd``, ``-``), fewer than
    :data:`VAT_MIN_DIGITS` digits (``0``), or a run of one digit (``00000000``,
    ``DK11111111``)."""
    digits = re.sub(r"\D", "", text)
    if len(digits) < VAT_MIN_DIGITS:
        return True
    run = max(re.findall(r"\d+", text), key=len)
    return len(set(run)) == 1


def _vat_national(cc: str, text: str) -> str | None:
    """The national part of ``text`` as a VAT number of country ``cc``, or None when it
    is no number of that country's form.

    With a python-stdnum module for the country the number is compacted and validated:
    valid, or well-formed with a wrong check digit (see :func:`normalize_vat`), gives the
    compact number without country prefix and without ``MVA``/``MWST``; wrong length or
    form gives None. Countries stdnum does not know keep the text as it is.
    """
    module = _vat_module(cc)
    if module is None:
        national = text.removeprefix(cc)
        return national if national and not _vat_junk(national) else None
    number = text
    suffix = _VAT_SUFFIX_NEEDED.get(cc)
    if suffix and not _VAT_SUFFIX.search(number):
        number += suffix
    if cc == "SE":  # an organisation number typed instead of the VAT number (+ "01")
        bare = number.removeprefix("SE")
        if len(bare) == 10 and bare.isdigit():
            number = bare + "01"
    try:
        compact = module.validate(number)
    except InvalidChecksum:
        compact = module.compact(number)
    except ValidationError:
        return None
    for prefix in (cc, *(k for k, c in _VAT_ALIASES.items() if c == cc)):
        if compact.startswith(prefix) and len(compact) > len(prefix) + 2:
            compact = compact[len(prefix) :]
            break
    national = _VAT_SUFFIX.sub("", compact)
    return national or None


def normalize_vat(vat: Any, country: Any = None) -> str | None:
    """A VAT number as ``<alpha-2><national number>`` (``DK12345678``), or None.

    Separators and a label (``CVR:``, ``VAT no.``) are dropped and letters upper-cased;
    then python-stdnum compacts and validates the number for its country: the prefix it
    carries (``DK…``, ``EL…`` = GR, ``XI…`` = GB), else the record's country (alpha-2 or
    any spelling :func:`country_code` knows). ``"DK 12 34 56 78"`` with ``Danmark`` and
    ``"12345678"`` with ``DK`` are both ``DK12345678``; the country stays in the key so
    that equal digits of two countries (DK and FI both have 8) never merge. Norway's
    ``MVA`` and Switzerland's ``MWST`` are not part of the key; a Norwegian or Swedish
    organisation number typed instead of the VAT number gives the VAT number's key.

    None, i.e. no key, for what is no VAT number at all: no digits (``N/A``, ``none``,
    ``n.a.``, ``tbd``, ``-``), fewer than :data:`VAT_MIN_DIGITS` digits (``0``), one digit
    repeated (``00000000``), or a number of the wrong length or form for its country
    (``DK1234``, a Swedish number not ending in ``01``).

    A well-formed number whose **check digit is wrong is still a key** (compacted): an
    equal wrong number on both sides was copied from one source, so it still names one
    customer; as a strong key it also stops a weak key (a shared domain) from merging two
    records whose VAT fields disagree; and a checksum table that lags behind a country's
    new numbers must not cost a real key. Placeholder values are caught by the rules above
    instead, and a number shared by two records of one side is ambiguous, never a match.

    A record without a country whose number has no prefix keeps the bare number
    (``12345678``); it matches another bare number, and counts as a holder of the same
    number with a country (:func:`vat_variants`) when the engine weighs ambiguity.
    """
    raw = norm_text(vat)
    if raw is None:
        return None
    return _vat_key(raw, norm_text(country))


@lru_cache(maxsize=65536)  # a record's keys are computed when staged and when matched
def _vat_key(raw: str, country: str | None) -> str | None:
    text = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
    text = _VAT_LABEL.sub("", text)
    if _vat_junk(text):
        return None
    record_cc = _country(country) if country is not None else None
    prefix_cc = None
    if m := _VAT_PREFIX.match(text):
        found = _VAT_ALIASES.get(m.group(1), m.group(1))
        if _country(found) == found:
            prefix_cc = found
    tried = [cc for cc in (prefix_cc, record_cc) if cc is not None]
    for cc in dict.fromkeys(tried):
        national = _vat_national(cc, text)
        if national is not None:
            return f"{cc}{national}"
    return None if tried else text


_VARIANT_COUNTRIES = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR",
                      "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO",
                      "SE", "SI", "SK", "GB", "NO", "CH", "IS")  # fmt: skip
"""Where a number typed without a country may be from: the EU, the UK, Norway,
Switzerland, Iceland."""


@lru_cache(maxsize=65536)
def vat_variants(value: str) -> tuple[str, ...]:
    """The other keys one VAT number can have, depending on whether its record had a
    country: ``DK12345678`` ↔ the bare ``12345678``; a bare number ↔ the keys it has in
    each country whose form it fits (``12345678``: ``DK12345678``, ``FI12345678``, …).

    They are no match of their own (``engine/matching.py`` counts their holders as
    holders of the same number, so that a branch whose country is empty still makes its
    VAT number ambiguous), and two of them never disagree.
    """
    m = _VAT_PREFIX.match(value)
    if m and _country(m.group(1)) == m.group(1):
        return (value[2:],)
    return tuple(
        f"{cc}{national}"
        for cc in _VARIANT_COUNTRIES
        if (national := _vat_national(cc, value)) is not None
    )
