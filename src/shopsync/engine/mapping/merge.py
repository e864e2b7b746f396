"""Merge criteria (rule 2): how a record of one side finds the same record on the other.

Before creating a record the engine computes its *merge keys* and looks for an unlinked
record of the other side with an equal key, criterion by criterion, in the order given:
a VAT number outranks a website, which outranks name + postal code. A key is a tagged
pair ``(criterion, canonical value)``, so keys of different criteria never meet. A
record lacking the data for a criterion simply has no key for it.

Lines have no merge keys of their own: they belong to their order. When two existing
orders are merged, :func:`pair_lines` pairs their lines.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from shopsync.config.model import Config, Datatype, System
from shopsync.engine.mapping.base import get_path
from shopsync.engine.mapping.conversions import country_code, norm_text

MergeKey = tuple[str, str]
"""``(criterion, canonical value)``, e.g. ``("vat", "DK12345678")``."""

CRITERIA: dict[Datatype, tuple[str, ...]] = {
    Datatype.customers: ("vat", "host", "name_postcode"),
    Datatype.products: ("sku",),
    Datatype.orders: ("order_number",),
    Datatype.order_lines: (),
}
"""Each datatype's criteria, strongest first (dataflow.md's numbered lists)."""

# ----------------------------------------------------------------- normalizers

_VAT_NOISE = re.compile(r"[\s.\-]")
_VAT_PREFIX = re.compile(r"^([A-Z]{2})(?=[A-Z]?[0-9])")
"""A country prefix to take the country from: two letters, then a digit (``DK1…``) or
one more letter and a digit (Austria's ``ATU1…``, Spain's ``ESX1…``)."""
_VAT_ALIASES = {"EL": "GR"}  # Greece's VAT prefix is EL, its ISO code GR


def normalize_vat(vat: Any, country: Any = None) -> str | None:
    """A VAT number as ``<alpha-2><national number>`` (``DK12345678``), or None.

    Spaces, dots and dashes are removed and letters upper-cased. A leading prefix equal
    to the record's country (given as alpha-2 or any spelling :func:`country_code`
    knows) is the same number without it: ``"DK 12 34 56 78"`` with ``Danmark`` and
    ``"12345678"`` with ``DK`` are both ``DK12345678``. The country stays in the key so
    that equal digits of two countries (DK and FI both have 8) never merge; a record
    without a country takes it from a prefix (``DK12345678``). Norwegian numbers may end
    in ``MVA`` ("VAT registered"), which is dropped.
    """
    text = norm_text(vat)
    if text is None:
        return None
    v = _VAT_NOISE.sub("", text).upper()
    cc = country_code(str(country)) if norm_text(country) else None
    if cc is None and (m := _VAT_PREFIX.match(v)):
        found = _VAT_ALIASES.get(m.group(1), m.group(1))
        if country_code(found) == found:
            cc = found
    if cc == "NO" or v.startswith("NO"):
        v = v.removesuffix("MVA")
    for prefix in (cc, *(k for k, c in _VAT_ALIASES.items() if c == cc)):
        if prefix and v.startswith(prefix):
            v = v[len(prefix) :]
            break
    if not v:
        return None
    return f"{cc}{v}" if cc else v


def normalize_host(url: Any) -> str | None:
    """The host of a website or domain, lower case, without ``www.``, port or path.

    ``https://www.Example.com/kontakt`` and ``example.com`` are both ``example.com``;
    internationalized names compare in their ASCII (punycode) form. Text that has no
    dotted host (``n/a``) has no key.
    """
    text = norm_text(url)
    if text is None:
        return None
    text = text.lower()
    if "://" not in text:
        text = "http://" + text.lstrip("/")
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").removeprefix("www.")
    with contextlib.suppress(UnicodeError):  # not a valid IDN: compare it as it is
        host = host.encode("idna").decode("ascii")
    if "." not in host or any(ch.isspace() for ch in host):
        return None
    return host


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
