"""Opportunities ⇄ Order: the third table of ``dataflow.md``, row by row.

Besides the table, the helpers the engine calls around it:

* :func:`assign_order_number`: a new opportunity without a number gets one from
  ``mapping.order_number_pattern`` before it is mapped (and the number is written back
  to webCRM), so ``order_number`` is never empty on the way to the webshop;
* :func:`erp_stamp`: the ``←`` row ``OpportunityErpStatus``/``OpportunityErpSyncDateTime``;
* :func:`mark_lost`: what a deleted webshop order does to its opportunity (rule 5);
* :func:`is_won`: the selective-sync filter (only won opportunities become orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from shopsync.config.model import Config, Datatype, StatusRule, default_status_table
from shopsync.engine.mapping.base import (
    EngineSet,
    FieldMap,
    LinkMapping,
    both,
    to_webcrm,
)
from shopsync.engine.mapping.conversions import (
    DATE,
    DISCOUNT,
    MONEY,
    TEXT,
    currency,
    order_status,
    reference,
    required,
    status_of,
    webcrm_datetime,
)

ORDER_NEEDS_CUSTOMER = "an opportunity without an organisation cannot become a webshop order"


def order_mapping(cfg: Config) -> LinkMapping:
    """The Opportunities ⇄ Order link; ``OpportunityId`` ⇄ ``id`` is the link itself."""
    m = cfg.mapping
    customer = reference(Datatype.customers, required_for=ORDER_NEEDS_CUSTOMER)
    # fmt: off
    rows: list[FieldMap] = [
        both("OpportunityNumber",         "order_number",     required(TEXT, "an order_number")),
        both("OpportunityOrganisationId", "customer_id",      customer),
        both("OpportunityCurrencyName",   "currency",         currency(m.default_currency)),
        both("OpportunityOrderDate",      "order_date",       DATE),
        both("OpportunityDescription",    "notes",            TEXT),
        both("OpportunityDiscount",       "discount_percent", DISCOUNT),
        both(("OpportunityPercent", "OpportunityLostDate"), "status", order_status(_status_table(cfg))),
        to_webcrm("OpportunityOrderValue", "total_excl_vat",  MONEY),
        to_webcrm("OpportunityErpId",      "id",              TEXT, name="erp_id"),
    ]
    engine_set = (
        EngineSet(("OpportunityErpStatus", "OpportunityErpSyncDateTime"), "—",
                  "← 'Synchronized' and the time of the last successful write: erp_stamp()"),
    )
    # fmt: on
    return LinkMapping(
        Datatype.orders,
        tuple(rows),
        webcrm_entity="Opportunity",
        id_fields=("OpportunityId", "id"),
        engine_set=engine_set,
        complete_webcrm=_order_date_when_won,
    )


def _status_table(cfg: Config) -> list[StatusRule]:
    """``mapping.status_table``; the model fills in the default, this is a second guard."""
    return cfg.mapping.status_table or default_status_table(cfg.mapping.won_percent)


WON_STATUSES = ("confirmed", "completed")


def _order_date_when_won(body: dict[str, Any], order: Mapping[str, Any]) -> None:
    """``confirmed``/``completed`` → percent won *and order date* (dataflow.md).

    When a body writes the status (the status row always writes the lost date, set or
    cleared) of a won order that has no ``order_date``, the opportunity's
    ``OpportunityOrderDate`` becomes today (midnight UTC) instead of staying empty. A
    webshop order that has a date carries it in the ``order_date`` row (linked records
    agree on it), so it is left alone.
    """
    if "OpportunityLostDate" not in body or order.get("status") not in WON_STATUSES:
        return
    if order.get("order_date") or body.get("OpportunityOrderDate"):
        return
    body["OpportunityOrderDate"] = webcrm_datetime(datetime.now(UTC).date())


def assign_order_number(cfg: Config, opportunity_id: int | str) -> str:
    """The number a new opportunity without one gets: ``mapping.order_number_pattern``
    with ``{id}`` the opportunity id (``WC-{id:06d}`` → ``WC-000042``)."""
    pattern = cfg.mapping.order_number_pattern
    try:
        return pattern.format(id=int(opportunity_id))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"mapping.order_number_pattern = {pattern!r} cannot number opportunity "
            f"{opportunity_id}: {exc.__class__.__name__}: {exc} (use {{id}}, e.g. 'WC-{{id:06d}}')"
        ) from None


def needs_order_number(opportunity: Mapping[str, Any]) -> bool:
    """True when the opportunity has no ``OpportunityNumber`` yet."""
    number = opportunity.get("OpportunityNumber")
    return number is None or not str(number).strip()


def erp_stamp(at: datetime | None = None, order_id: str | None = None) -> dict[str, Any]:
    """The webCRM fields the engine writes after a successful write of the opportunity's
    order: ``OpportunityErpStatus`` ``Synchronized``, ``OpportunityErpSyncDateTime`` and,
    when given, ``OpportunityErpId`` (the ``erp_id`` row's value, for a freshly created
    order)."""
    stamp: dict[str, Any] = {
        "OpportunityErpStatus": "Synchronized",
        "OpportunityErpSyncDateTime": webcrm_datetime(at or datetime.now(UTC)),
    }
    if order_id is not None:
        stamp["OpportunityErpId"] = str(order_id)
    return stamp


def mark_lost(at: datetime | date | None = None) -> dict[str, Any]:
    """The webCRM patch for an opportunity whose webshop order was deleted (rule 5): it
    cannot be deleted through the API, so it is marked lost, like a cancelled order."""
    return {
        "OpportunityPercent": 0,
        "OpportunityLostDate": webcrm_datetime(at or datetime.now(UTC)),
    }


def is_won(cfg: Config, opportunity: Mapping[str, Any]) -> bool:
    """Selective sync: the opportunity's status by ``mapping.status_table`` is
    ``confirmed`` or ``completed`` (default: at the won percent and not lost)."""
    status = status_of(
        _status_table(cfg),
        opportunity.get("OpportunityPercent"),
        opportunity.get("OpportunityLostDate"),
    )
    return status in WON_STATUSES
