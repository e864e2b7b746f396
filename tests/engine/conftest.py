"""End-to-end fixtures for the engine: both servers as real processes, a real state DB.

``env`` gives a fresh world per test: both servers reset (empty), a new SQLite state
database, an :class:`Installation` wired to them, and small helpers to act on each
side through the public APIs the way a person's tools would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shopsync.config.model import Config, Datatype, StateConfig, WebcrmConfig, WebshopConfig
from shopsync.emulators.launch import RunningServer
from shopsync.engine.report import RunReport
from shopsync.runtime import Installation
from shopsync.store import repo
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN


@dataclass
class Env:
    crm_server: RunningServer
    shop_server: RunningServer
    state_url: str
    inst: Installation

    @property
    def crm(self) -> Any:
        return self.inst.webcrm

    @property
    def shop(self) -> Any:
        return self.inst.webshop

    def sync(self, **kw: Any) -> RunReport:
        time.sleep(0.002)  # distinct timestamps between an edit and the next read
        return self.inst.sync(**kw)

    def fresh_state(self) -> None:
        """A new, empty state database (same servers, same config otherwise)."""
        import uuid

        self.inst.close()
        if not self.state_url.startswith("sqlite"):
            from sqlalchemy import text

            from shopsync.store import db
            from shopsync.store.models import Base

            engine = db.make_engine(self.state_url)
            with engine.begin() as conn:
                Base.metadata.drop_all(conn)
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            engine.dispose()
            self.inst = Installation(self.inst.config)
            return
        url = self.state_url.rsplit("/", 1)[0] + f"/state-{uuid.uuid4().hex[:8]}.sqlite"
        self.inst = Installation(
            self.inst.config.model_copy(update={"state": StateConfig(url=url)})
        )

    def reconfigure(self, **changes: Any) -> None:
        """Swap in a changed config (same servers and state)."""
        self.inst.close()
        self.inst = Installation(self.inst.config.model_copy(update=changes))

    # --- webCRM side
    def crm_create(self, entity: str, record: dict[str, Any]) -> int:
        result = self.crm.upsert(entity, [record])[0]
        assert result.error is None, result.error
        return int(result.id)

    def crm_update(self, entity: str, record_id: int | str, **fields: Any) -> None:
        result = self.crm.upsert(entity, [{f"{entity}Id": int(record_id), **fields}])[0]
        assert result.error is None, result.error

    def crm_get(self, entity: str, record_id: int | str) -> dict[str, Any]:
        rec = self.crm.get(entity, int(record_id))
        assert rec is not None, f"{entity} {record_id} not found"
        return dict(rec)

    def crm_all(self, entity: str) -> list[dict[str, Any]]:
        return [r for page in self.crm.iter_all(entity) for r in page]

    # --- webshop side
    def shop_create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.shop.create(collection, body, idempotency_key=f"t-{time.monotonic_ns()}"))

    def shop_update(self, collection: str, record_id: str, **patch: Any) -> dict[str, Any]:
        return dict(self.shop.update(collection, record_id, patch))

    def shop_get(self, collection: str, record_id: str) -> dict[str, Any]:
        rec = self.shop.get(collection, record_id)
        assert rec is not None, f"{collection} {record_id} not found"
        return dict(rec)

    def shop_all(self, collection: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        return [
            item
            for page in self.shop.iter_changes(collection, None, include_deleted=include_deleted)
            for item in page.items
        ]

    # --- state
    def link(self, datatype: Datatype, *, webcrm: Any = None, webshop: Any = None) -> Any:
        with self.inst.session() as s:
            if webcrm is not None:
                return repo.link_by_webcrm(s, datatype.value, str(webcrm))
            return repo.link_by_webshop(s, datatype.value, str(webshop))

    def links(self, datatype: Datatype) -> list[Any]:
        with self.inst.session() as s:
            return list(repo.active_links(s, datatype.value))


def make_config(crm: RunningServer, shop: RunningServer, state_url: str, **changes: Any) -> Config:
    cfg = Config(
        webcrm=WebcrmConfig(
            base_url=crm.url, auth_code=SecretStr(AUTH_CODE), rate_limit=10_000, max_retries=3
        ),
        webshop=WebshopConfig(base_url=shop.url, token=SecretStr(WEBSHOP_TOKEN), max_retries=3),
        state=StateConfig(url=state_url),
    )
    return cfg.model_copy(update=changes)


@pytest.fixture
def env(
    reset_emulator: RunningServer, reset_webshop: RunningServer, tmp_path: Path
) -> Iterator[Env]:
    state_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    inst = Installation(make_config(reset_emulator, reset_webshop, state_url))
    e = Env(reset_emulator, reset_webshop, state_url, inst)
    try:
        yield e
    finally:
        e.inst.close()


# ---------------------------------------------------------------- record factories
def org(name: str = "Nørre Æble ApS", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "OrganisationName": name,
        "OrganisationAddress": "Åboulevarden 12",
        "OrganisationPostCode": "8000",
        "OrganisationCity": "Aarhus C",
        "OrganisationCountry": "Danmark",
        "OrganisationTelephone": "+45 86 12 34 56",
        "OrganisationVatNumber": "DK12345678",
        "OrganisationWww": "www.aeble.dk",
    }
    rec.update(kw)
    return rec


def customer(name: str = "Straße GmbH", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "name": name,
        "email": "info@strasse.de",
        "phone": "+49 30 1234567",
        "vat_number": "DE123456789",
        "website": "https://strasse.de",
        "billing_address": {
            "line1": "Hauptstraße 5", "line2": None, "postal_code": "10115",
            "city": "Berlin", "region": None, "country": "DE",
        },
        "shipping_address": None,
    }  # fmt: skip
    rec.update(kw)
    return rec


def crm_product(sku: str = "SKU-1", name: str = "Skrivebord eg", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "ProductCustom1": sku,
        "ProductCustom2": name,
        "ProductMemo": "Massivt egetræ",
        "ProductPrice": 1249.5,
        "ProductListPrice": 1499.0,
        "ProductCostPrice": 800.0,
        "ProductVatCode": "25",
        "ProductStockStatus": "In stock",
    }
    rec.update(kw)
    return rec


def shop_product(sku: str = "SKU-9", name: str = "Bürostuhl", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "sku": sku,
        "name": name,
        "description": "Ergonomisch",
        "unit_price": "399.00",
        "list_price": "449.00",
        "cost_price": "200.00",
        "currency": "DKK",
        "vat_rate": "25.00",
        "stock_status": "in_stock",
        "active": True,
    }
    rec.update(kw)
    return rec
