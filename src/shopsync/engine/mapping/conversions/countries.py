"""Countries: webCRM's free-text country ⇄ the webshop's ISO 3166-1 alpha-2 code.

People type a country in many languages and spellings (``Danmark``, ``Denmark``,
``DK``, ``UK``); :func:`country_code` reads them all through pycountry's catalogues and
a few aliases, so retyping a country is no change. The merge keys use it too, for the
country of a VAT number (``merge``).
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from functools import lru_cache
from typing import Any

import pycountry

from shopsync.engine.mapping.conversions.base import Conversion, MapContext, MappingError
from shopsync.engine.mapping.conversions.text import norm_text

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
