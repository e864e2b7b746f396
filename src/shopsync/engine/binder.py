"""The binder: webCRM id ⇄ webshop id, per datatype (OCA connector's *binder*).

It is also the :class:`~shopsync.engine.mapping.base.MapContext` the conversions see,
so an id translation (``OpportunityOrganisationId`` ⇄ ``customer_id``) or a product
lookup by SKU goes through the links and nowhere else.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopsync.config.model import Config, Datatype
from shopsync.engine.matching import Matcher
from shopsync.store import repo
from shopsync.store.models import Link, Snapshot


class Binder:
    def __init__(self, session: Session, config: Config) -> None:
        self.session = session
        self._config = config
        self._skus: dict[str, str] | None = None
        self._retired: dict[str, int] | None = None
        self._links: dict[tuple[str, str, str], Link] = {}
        """Links found this run, by (datatype, side, id): an order's customer or a line's
        product is looked up once, not once per record that refers to it. Only links
        are kept (a link found is the same row for the rest of the run; its state is read
        from the object), never a miss (a link may be made later in the run)."""

    @property
    def config(self) -> Config:
        return self._config

    def link(self, datatype: Datatype, side: str, record_id: str) -> Link | None:
        """The link of ``record_id`` (of ``side``), whatever its state."""
        key = (datatype.value, side, record_id)
        link = self._links.get(key)
        if link is not None and (link.webcrm_id if side == "webcrm" else link.webshop_id) == (
            record_id
        ):
            return link
        link = repo.link_by_id(self.session, datatype.value, side, record_id)
        if link is not None:
            self._links[key] = link
        return link

    def webshop_id(self, datatype: Datatype, webcrm_id: str) -> str | None:
        link = self.link(datatype, "webcrm", str(webcrm_id))
        return link.webshop_id if link is not None and link.state == "active" else None

    def webcrm_id(self, datatype: Datatype, webshop_id: str) -> str | None:
        link = self.link(datatype, "webshop", str(webshop_id))
        return link.webcrm_id if link is not None and link.state == "active" else None

    def unlinked(self, datatype: Datatype, side: str, ref_id: str) -> str | None:
        link = self.link(datatype, side, str(ref_id))
        if link is None or link.state == "active":
            return None
        deleted = (
            f"webshop {link.webshop_id} was deleted in the webshop"
            if link.state == "webshop_deleted"
            else f"webCRM {link.webcrm_id} was deleted in webCRM"
        )
        return (
            f"refers to {datatype.value} {side} id {ref_id}, which is linked no more "
            f"({deleted}; webCRM {link.webcrm_id} ⇄ webshop {link.webshop_id} was unlinked): "
            "point this record at another one"
        )

    def product_id_for_sku(self, sku: str) -> str | None:
        """The webshop product with this SKU: a linked one (from the agreed snapshots),
        else one not linked (not shared into webCRM, say), found by its stored merge key."""
        linked = self._linked_product(sku)
        if linked is not None:
            return linked
        for key in Matcher(self._config).keys(Datatype.products, "webshop", {"sku": sku}):
            for record_id in repo.find_by_merge_key(
                self.session, Datatype.products.value, "webshop", key
            ):
                return record_id
        return None

    def _linked_product(self, sku: str) -> str | None:
        if self._skus is None:
            self._skus = {}
            rows = self.session.execute(
                select(Link.webshop_id, Snapshot.props)
                .join(Snapshot, Snapshot.link_id == Link.id)
                .where(Link.datatype == Datatype.products.value, Link.state == "active")
            )
            for webshop_id, props in rows:
                value = (props or {}).get("sku", {}).get("s")
                if value:
                    self._skus[str(value)] = webshop_id
        return self._skus.get(sku)

    def retired_product(self, sku: str) -> Link | None:
        """The link of a webshop product deactivated because its webCRM product was
        deleted (rule 5), whose SKU is ``sku``: it still holds the SKU in the shop, so a
        webCRM product created again with it takes that product back instead of a
        create the shop must refuse (409). Read once per run (usually none)."""
        if self._retired is None:
            self._retired = {}
            rows = self.session.execute(
                select(Link.id, Snapshot.props)
                .join(Snapshot, Snapshot.link_id == Link.id)
                .where(Link.datatype == Datatype.products.value, Link.state == "webcrm_deleted")
                .order_by(Link.updated_at)
            )
            for link_id, props in rows:
                pair = (props or {}).get("sku") or {}
                for value in (pair.get("c"), pair.get("s")):
                    if value:
                        self._retired[str(value)] = link_id  # the latest wins
        link_id = self._retired.pop(sku, None)
        link = self.session.get(Link, link_id) if link_id is not None else None
        return link if link is not None and link.state == "webcrm_deleted" else None

    def remember_sku(self, sku: str | None, webshop_id: str) -> None:
        """Keep the SKU index current when a product link is made during a run."""
        if sku and self._skus is not None:
            self._skus[sku] = webshop_id
