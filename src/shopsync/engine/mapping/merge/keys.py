"""Each datatype's merge keys, strongest criterion first: :func:`merge_keys`, and the
functions per datatype and side that it calls.

Only which field of each side feeds which criterion is here; how a value is normalized
is in ``vat.py``, ``hosts.py`` and ``names.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopsync.config.model import Config, Datatype, System
from shopsync.engine.mapping.conversions.text import norm_text
from shopsync.engine.mapping.merge.criteria import MergeKey
from shopsync.engine.mapping.merge.hosts import normalize_host
from shopsync.engine.mapping.merge.names import normalize_name, normalize_postcode, normalize_sku
from shopsync.engine.mapping.merge.vat import normalize_vat
from shopsync.engine.mapping.rows import get_path


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
