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
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList
from stdnum import get_cc_module
from stdnum.exceptions import InvalidChecksum, ValidationError

from shopsync.config.model import Config, Datatype, System
from shopsync.engine.mapping.base import get_path
from shopsync.engine.mapping.conversions import country_code, norm_text

if TYPE_CHECKING:
    from stdnum.util import NumberValidationModule

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

# ------------------------------------------------------------------------- VAT

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


# --------------------------------------------------------------------- website

SHARED_PLATFORMS: dict[str, tuple[str, ...]] = {
    "social network": (
        "facebook.com", "fb.com", "fb.me", "instagram.com", "linkedin.com", "lnkd.in",
        "x.com", "twitter.com", "t.co", "youtube.com", "youtu.be", "tiktok.com",
        "pinterest.*", "snapchat.com", "threads.net", "threads.com", "reddit.com",
        "tumblr.com", "vimeo.com", "whatsapp.com", "wa.me", "t.me", "telegram.me",
        "discord.com", "discord.gg", "twitch.tv", "bsky.app", "xing.com", "vk.com",
    ),
    "marketplace": (
        "amazon.*", "ebay.*", "etsy.com", "aliexpress.*", "alibaba.com", "zalando.*",
        "bol.com", "allegro.pl", "rakuten.*", "walmart.com", "wish.com", "temu.com",
        "shein.com", "vinted.*", "cdon.*", "fruugo.*", "miinto.*", "dba.dk",
        "guloggratis.dk", "blocket.se", "tradera.com", "finn.no", "tori.fi",
        "marktplaats.nl", "kleinanzeigen.de", "booking.com", "airbnb.*", "wolt.com",
        "just-eat.*",
    ),
    "directory, maps, reviews": (
        "google.*", "g.page", "goo.gl", "yelp.*", "tripadvisor.*", "trustpilot.*",
        "virk.dk", "cvrapi.dk", "proff.*", "krak.dk", "degulesider.dk", "eniro.*",
        "hitta.se", "allabolag.se", "gulesider.no", "brreg.no", "northdata.*",
    ),
    "free mail": (
        "gmail.com", "googlemail.com", "hotmail.*", "outlook.*", "live.*", "msn.com",
        "yahoo.*", "ymail.com", "aol.*", "icloud.com", "me.com", "mac.com", "proton.me",
        "protonmail.*", "pm.me", "gmx.*", "web.de", "mail.com", "mail.ru", "yandex.*",
        "zoho.com", "tutanota.com", "tuta.io", "fastmail.com", "mail.dk", "jubii.dk",
        "ofir.dk",
    ),
    "site builder, blog, hosting": (
        "myshopify.com", "shopify.com", "wix.com", "wixsite.com", "editorx.io",
        "squarespace.com", "wordpress.com", "wp.com", "weebly.com", "weeblysite.com",
        "jimdo.com", "jimdofree.com", "jimdosite.com", "webnode.*", "simplesite.com",
        "godaddysites.com", "business.site", "company.site", "square.site",
        "strikingly.com", "mystrikingly.com", "site123.me", "carrd.co", "webflow.io",
        "framer.website", "notion.site", "blogspot.*", "blogger.com", "medium.com",
        "substack.com", "github.io", "github.com", "gitlab.io", "netlify.app",
        "vercel.app", "herokuapp.com", "pages.dev", "web.app", "firebaseapp.com",
        "bigcartel.com", "ecwid.com",
    ),
    "link hub, shortener": (
        "linktr.ee", "beacons.ai", "lnk.bio", "linkin.bio", "taplink.cc", "about.me",
        "bio.link", "campsite.bio", "bit.ly", "tinyurl.com", "ow.ly", "buff.ly",
        "rebrand.ly", "t.ly", "cutt.ly",
    ),
}  # fmt: skip
"""Registrable domains many companies share, which are therefore never a key: the
company is in the path (``facebook.com/alphabakery``) or in a subdomain the platform
hands out (``alpha.wordpress.com``), or the domain is a mail provider's. ``name.*`` is
that name under any public suffix (``amazon.de``, ``amazon.co.uk``). Platforms listed
in the private section of the Public Suffix List (``github.io``, ``myshopify.com``,
``netlify.app``, and hundreds more) are caught by :func:`normalize_host` even when they
are missing here."""


@cache
def _platform_index() -> tuple[dict[str, str], dict[str, str]]:
    """:data:`SHARED_PLATFORMS` as ``{domain: category}`` and ``{name: category}`` (for
    the ``name.*`` entries)."""
    exact: dict[str, str] = {}
    named: dict[str, str] = {}
    for category, entries in SHARED_PLATFORMS.items():
        for entry in entries:
            if entry.endswith(".*"):
                named[entry.removesuffix(".*")] = category
            else:
                exact[entry] = category
    return exact, named


@cache
def _psl(*, only_icann: bool) -> PublicSuffixList:
    """The Public Suffix List snapshot the ``publicsuffixlist`` package ships (offline).
    Unknown top-level domains are not suffixes: ``acme.intranet`` has no key."""
    return PublicSuffixList(accept_unknown=False, only_icann=only_icann)


def platform_of(domain: str) -> str | None:
    """The :data:`SHARED_PLATFORMS` category of a registrable domain, or None."""
    exact, named = _platform_index()
    return exact.get(domain) or named.get(domain.split(".", 1)[0])


_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


def _host(text: str) -> str | None:
    """The ASCII (punycode) host name of a URL, domain or e-mail address, or None."""
    text = text.lower()
    if "://" not in text:
        text = "http://" + text.lstrip("/")
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid internationalized name
        return None
    return host if _HOSTNAME.match(host) else None


def normalize_host(url: Any) -> str | None:
    """The registrable domain of a website, domain or e-mail address: its key, or None.

    Lower case, scheme, port, path and subdomains removed with the Public Suffix List:
    ``https://www.Example.com/kontakt``, ``shop.example.com`` and ``info@example.com``
    are all ``example.com``; ``shop.example.co.uk`` is ``example.co.uk``.
    Internationalized names compare in their ASCII (punycode) form.

    No key for a host that does not name one company:

    * a domain of :data:`SHARED_PLATFORMS` (social networks, marketplaces, directories,
      free mail, site builders, link hubs), with any subdomain or path;
    * any host under an entry of the list's *private* section, i.e. a subdomain handed
      out by a platform (``alpha.github.io``, ``alpha.myshopify.com``,
      ``alpha.wixsite.com``): such tenancies follow an account, not a company (Wix
      serves several sites of one account under paths, agencies build customers' shops
      on their own account, free blogs change hands), so they are not a safe key.
      Name + postal code or VAT still merge such a company;
    * an IP address, a name without a dot (``n/a``, ``localhost``), a name under an
      unknown top-level domain (``acme.intranet``, ``acme.dkk``), or not a host name.
    """
    text = norm_text(url)
    return _host_key(text) if text is not None else None


@lru_cache(maxsize=65536)
def _host_key(text: str) -> str | None:
    host = _host(text)
    if host is None:
        return None
    if host.rsplit(".", 1)[-1].isdigit():  # an IPv4 address (IPv6 is no host name)
        return None
    registrable = _psl(only_icann=True).privatesuffix(host)
    if registrable is None:
        return None
    if _psl(only_icann=False).privatesuffix(host) != registrable:
        return None  # a tenant of a platform in the list's private section
    return None if platform_of(registrable) else registrable


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


def _keys(*pairs: tuple[str, str | None]) -> list[MergeKey]:
    """Keys in criterion order, without empty values or repeats."""
    out: list[MergeKey] = []
    for tag, value in pairs:
        if value is not None and (tag, value) not in out:
            out.append((tag, value))
    return out


def _name_postcode(name: Any, postcode: Any) -> str | None:
    n, p = normalize_name(name), normalize_postcode(postcode)
    return f"{n}|{p}" if n and p else None


# ------------------------------------------------------------------- customers


def customer_keys_webcrm(org: Mapping[str, Any]) -> list[MergeKey]:
    """Merge keys of a webCRM organisation: VAT, then the hosts of ``OrganisationWww`` and
    ``OrganisationDomain``, then name + postal code."""
    country = org.get("OrganisationCountry")
    return _keys(
        ("vat", normalize_vat(org.get("OrganisationVatNumber"), country)),
        ("host", normalize_host(org.get("OrganisationWww"))),
        ("host", normalize_host(org.get("OrganisationDomain"))),
        (
            "name_postcode",
            _name_postcode(org.get("OrganisationName"), org.get("OrganisationPostCode")),
        ),
    )


def customer_keys_webshop(customer: Mapping[str, Any]) -> list[MergeKey]:
    """Merge keys of a webshop customer (billing address country and postal code)."""
    country = get_path(customer, "billing_address.country")
    return _keys(
        ("vat", normalize_vat(customer.get("vat_number"), country)),
        ("host", normalize_host(customer.get("website"))),
        (
            "name_postcode",
            _name_postcode(customer.get("name"), get_path(customer, "billing_address.postal_code")),
        ),
    )


# ------------------------------------------------------------ products, orders


def normalize_sku(sku: Any) -> str | None:
    """A sku compares exactly after trimming: case counts (``ab-1`` is not ``AB-1``), as
    the webshop's uniqueness of sku does."""
    return norm_text(sku)


def product_keys_webcrm(cfg: Config, product: Mapping[str, Any]) -> list[MergeKey]:
    """The sku held in ``fields.product_sku``."""
    return _keys(("sku", normalize_sku(product.get(cfg.fields.product_sku))))


def product_keys_webshop(product: Mapping[str, Any]) -> list[MergeKey]:
    return _keys(("sku", normalize_sku(product.get("sku"))))


def order_keys_webcrm(opportunity: Mapping[str, Any]) -> list[MergeKey]:
    """``OpportunityNumber``, exact after trimming."""
    return _keys(("order_number", norm_text(opportunity.get("OpportunityNumber"))))


def order_keys_webshop(order: Mapping[str, Any]) -> list[MergeKey]:
    return _keys(("order_number", norm_text(order.get("order_number"))))


def merge_keys(
    cfg: Config, datatype: Datatype, system: System, record: Mapping[str, Any]
) -> list[MergeKey]:
    """The merge keys of a record of ``system``, strongest criterion first; ``[]`` for
    lines (see :func:`pair_lines`)."""
    webcrm = system == System.webcrm
    if datatype == Datatype.customers:
        return customer_keys_webcrm(record) if webcrm else customer_keys_webshop(record)
    if datatype == Datatype.products:
        return product_keys_webcrm(cfg, record) if webcrm else product_keys_webshop(record)
    if datatype == Datatype.orders:
        return order_keys_webcrm(record) if webcrm else order_keys_webshop(record)
    return []


# ----------------------------------------------------------------------- lines

LineKey = tuple[str, str, int]
"""``(kind, value, occurrence)``: ``("sku", "SKU-1", 0)`` is the first line with that sku."""


def line_match_key(cfg: Config, system: System, line: Mapping[str, Any]) -> tuple[str, str]:
    """What identifies a line within its order: its sku, else its description
    (case-folded, letters and digits), else nothing (``("none", "")``).

    Quantities and prices are deliberately not part of it: they are what the per-property
    sync reconciles after the pair is made.
    """
    if system == System.webcrm:
        sku, description = line.get(cfg.fields.line_sku), line.get(cfg.fields.line_description)
    else:
        sku, description = line.get("sku"), line.get("description")
    s = normalize_sku(sku)
    if s is not None:
        return ("sku", s)
    d = normalize_name(description)
    if d is not None:
        return ("description", d)
    return ("none", "")


def _position(system: System, line: Mapping[str, Any]) -> tuple[int, str]:
    pos = line.get("QuotationLineSortOrder" if system == System.webcrm else "position")
    ident = line.get("QuotationLineId" if system == System.webcrm else "id")
    try:
        p = int(pos) if pos is not None else 2**31
    except (TypeError, ValueError):
        p = 2**31
    return (p, str(ident or ""))


def line_keys(
    cfg: Config, system: System, lines: Sequence[Mapping[str, Any]]
) -> list[tuple[LineKey, Mapping[str, Any]]]:
    """Each line with its :data:`LineKey`, in position order: the n-th line with a given
    sku (or description) gets occurrence n, so an order with the same sku twice pairs
    first with first and second with second."""
    ordered = sorted(lines, key=lambda ln: _position(system, ln))
    seen: dict[tuple[str, str], int] = {}
    out: list[tuple[LineKey, Mapping[str, Any]]] = []
    for ln in ordered:
        base = line_match_key(cfg, system, ln)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(((base[0], base[1], n), ln))
    return out


@dataclass
class LinePairing:
    """The result of :func:`pair_lines`."""

    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = field(default_factory=list)
    """``(webCRM QuotationLine, webshop order line)`` to link."""
    webcrm_only: list[Mapping[str, Any]] = field(default_factory=list)
    """Lines to create on the webshop order."""
    webshop_only: list[Mapping[str, Any]] = field(default_factory=list)
    """Lines to create as QuotationLines."""


def pair_lines(
    cfg: Config,
    webcrm_lines: Sequence[Mapping[str, Any]],
    webshop_lines: Sequence[Mapping[str, Any]],
) -> LinePairing:
    """Pair the lines of a webCRM opportunity and a webshop order being merged.

    Lines pair by :func:`line_keys` (sku, or description, and occurrence); unpaired lines
    are created on the other side. Lines without sku and description never pair.
    """
    result = LinePairing()
    shop = {k: ln for k, ln in line_keys(cfg, System.webshop, webshop_lines) if k[0] != "none"}
    used: set[LineKey] = set()
    for key, crm_line in line_keys(cfg, System.webcrm, webcrm_lines):
        match = shop.get(key)
        if match is not None:
            result.pairs.append((crm_line, match))
            used.add(key)
        else:
            result.webcrm_only.append(crm_line)
    result.webshop_only = [
        ln for k, ln in line_keys(cfg, System.webshop, webshop_lines) if k not in used
    ]
    return result
