"""What sets one datatype apart, in one class per datatype (OCA connector's
``_apply_on``): the engine's parts ask the datatype's :class:`Policy` instead of testing
which datatype they hold.

Customers are the plain case (:class:`Policy`). Products are deactivated, not deleted,
in the shop and taken back when a product with the same SKU comes again; orders carry
their lines, are numbered, stamped and marked lost; order lines belong to an
opportunity and are reconciled per order (:mod:`engine.lines`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shopsync.config.model import Config, Datatype
from shopsync.engine.binder import Binder
from shopsync.engine.mapping.base import LinkMapping
from shopsync.engine.mapping.orders import assign_order_number, erp_stamp, is_won, mark_lost
from shopsync.engine.model import WEBCRM, Item
from shopsync.store.models import Link


class Policy:
    """The default: a record is merged, created, updated and unlinked when deleted."""

    datatype: Datatype = Datatype.customers
    keeps_merge_keys = True
    """Its records' merge-criterion keys are stored as they are staged (rule 2)."""
    children: Datatype | None = None
    """The datatype whose records travel inside this one's webshop records."""

    def fast_path(self, system: str) -> bool:
        """Whether an unchanged record of ``system`` may be set aside from its snapshot
        alone, before staging (:func:`unchanged.without_unchanged`)."""
        return True

    def parent_of(self, data: Mapping[str, Any] | None) -> str | None:
        """The webCRM id of the record this one belongs to (staged beside it)."""
        return None

    def refuses_create(self, config: Config, system: str, data: Mapping[str, Any]) -> str | None:
        """Why a record of ``system`` is not created on the other side, beyond sharing."""
        return None

    def retired(self, binder: Binder, mapping: LinkMapping, data: Mapping[str, Any]) -> Link | None:
        """A link this new webCRM record takes back instead of creating a webshop record."""
        return None

    def before_shop_create(self, config: Config, item: Item) -> None:
        """Complete a webCRM record before its webshop record is created from it."""

    def stamp(self, body: dict[str, Any]) -> None:
        """Add what every write into webCRM carries for this datatype."""

    def on_webcrm_delete(self) -> dict[str, Any] | None:
        """The webshop patch for a record deleted in webCRM; None: the pair is unlinked."""
        return None

    def on_webshop_delete(self) -> dict[str, Any] | None:
        """The webCRM patch for a record deleted in the webshop; None: only unlinked."""
        return None

    def after_write(self, binder: Binder, item: Item) -> None:
        """Tell the binder what a webshop write taught it."""


class CustomerPolicy(Policy):
    datatype = Datatype.customers


class ProductPolicy(Policy):
    datatype = Datatype.products

    def retired(self, binder: Binder, mapping: LinkMapping, data: Mapping[str, Any]) -> Link | None:
        """The shop's product with this SKU, deactivated when its webCRM product was
        deleted: rule 5 undone, never a second product with one SKU."""
        sku = mapping.webcrm_values(data).get("sku")
        return binder.retired_product(str(sku)) if sku else None

    def on_webcrm_delete(self) -> dict[str, Any] | None:
        return {"active": False}

    def after_write(self, binder: Binder, item: Item) -> None:
        if item.s_after is not None and item.shop_id is not None:
            binder.remember_sku(item.s_after.get("sku"), item.shop_id)


class OrderPolicy(Policy):
    datatype = Datatype.orders
    children = Datatype.order_lines

    def refuses_create(self, config: Config, system: str, data: Mapping[str, Any]) -> str | None:
        selective = system == WEBCRM and config.selective.only_won_opportunities
        if selective and not is_won(config, data):
            return "selective sync: only won opportunities become orders"
        return None

    def before_shop_create(self, config: Config, item: Item) -> None:
        """An opportunity without a number gets one (written back to webCRM)."""
        assert item.c_raw is not None
        if not item.c_raw.get("OpportunityNumber"):
            number = assign_order_number(config, int(item.c_raw["OpportunityId"]))
            item.c_raw["OpportunityNumber"] = number
            item.crm_body = {"OpportunityNumber": number}
            item.crm_sent = {}

    def stamp(self, body: dict[str, Any]) -> None:
        body.update(erp_stamp(datetime.now(UTC)))

    def on_webshop_delete(self) -> dict[str, Any] | None:
        return mark_lost()


class OrderLinePolicy(Policy):
    datatype = Datatype.order_lines
    keeps_merge_keys = False  # lines pair inside their order (:mod:`engine.lines`)

    def fast_path(self, system: str) -> bool:
        """A webCRM line whose values are the agreed ones needs no reconciliation of
        its order (our own line writes read back); the webshop's lines arrive inside
        their order, which has no fast path."""
        return system == WEBCRM

    def parent_of(self, data: Mapping[str, Any] | None) -> str | None:
        value = data.get("QuotationLineOpportunityId") if data is not None else None
        return str(value) if value is not None else None


POLICIES: dict[Datatype, Policy] = {
    p.datatype: p for p in (CustomerPolicy(), ProductPolicy(), OrderPolicy(), OrderLinePolicy())
}
