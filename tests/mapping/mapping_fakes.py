"""A dict-backed MapContext for pure unit tests of the mapping tables.

The real binder reads links from the state store; the conversions only need the three
look-ups below, so a dictionary stands in for the links here (no I/O is involved).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shopsync.config.model import Config, Datatype


@dataclass
class FakeContext:
    config: Config = field(default_factory=Config)
    links: dict[Datatype, dict[str, str]] = field(default_factory=dict)
    """Per datatype: webCRM id → webshop id."""
    skus: dict[str, str] = field(default_factory=dict)
    """sku → webshop product id."""

    def link(self, datatype: Datatype, webcrm_id: str, webshop_id: str) -> FakeContext:
        self.links.setdefault(datatype, {})[webcrm_id] = webshop_id
        return self

    def webshop_id(self, datatype: Datatype, webcrm_id: str) -> str | None:
        return self.links.get(datatype, {}).get(webcrm_id)

    def webcrm_id(self, datatype: Datatype, webshop_id: str) -> str | None:
        for crm, shop in self.links.get(datatype, {}).items():
            if shop == webshop_id:
                return crm
        return None

    def unlinked(self, datatype: Datatype, side: str, ref_id: str) -> str | None:
        return None

    def product_id_for_sku(self, sku: str) -> str | None:
        return self.skus.get(sku)
