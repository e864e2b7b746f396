"""The webshop client over real HTTP against the reference webshop process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from shopsync.connectors.webshop.client import (
    WebshopAuthError,
    WebshopClient,
    WebshopConflict,
    WebshopGone,
    WebshopPreconditionFailed,
    WebshopUnavailable,
    WebshopValidationError,
)
from shopsync.emulators.launch import RunningServer, free_port
from tests.conftest import WEBSHOP_TOKEN
from tests.connectors.conftest import control, faults


@pytest.fixture
def shop(reset_webshop: RunningServer) -> Iterator[RunningServer]:
    yield reset_webshop
    faults(reset_webshop)


def client(server: RunningServer, **kw: object) -> WebshopClient:
    kw.setdefault("backoff_max", 0.2)
    return WebshopClient(server.url, str(kw.pop("token", WEBSHOP_TOKEN)), **kw)  # type: ignore[arg-type]


def key() -> str:
    return str(uuid.uuid4())


def test_cursor_paging_reads_every_record_once(shop: RunningServer) -> None:
    control(shop, "POST", "/seed", n=45, seed=2, reset=True)
    with client(shop, page_size=10) as c:
        pages = list(c.iter_changes("customers", None))
        items = [i for p in pages for i in p.items]
        assert len(items) == 45 == len({i["id"] for i in items})
        assert [p.next_cursor is None for p in pages] == [False] * 4 + [True]
        assert c.requests_by_endpoint["GET /customers"] == 5
        order = [(i["updated_at"], i["id"]) for i in items]
        assert order == sorted(order)
        assert c.count("customers") == 45


def test_updated_since_and_tombstones(shop: RunningServer) -> None:
    with client(shop) as c:
        a = c.create("customers", {"name": "A"}, key())
        b = c.create("customers", {"name": "B"}, key())
        since = datetime.fromisoformat(b["updated_at"])
        c.delete("customers", a["id"])
        c.delete("customers", a["id"])  # again: harmless
        changes = [i for p in c.iter_changes("customers", since) for i in p.items]
        assert [(i["id"], i.get("deleted", False)) for i in changes] == [
            (b["id"], False),  # updated_since is inclusive
            (a["id"], True),
        ]
        live = [
            i for p in c.iter_changes("customers", since, include_deleted=False) for i in p.items
        ]
        assert [i["id"] for i in live] == [b["id"]]
        with pytest.raises(WebshopGone):
            c.get("customers", a["id"])
        assert c.get("customers", "cus_" + "0" * 32) is None
        with pytest.raises(ValueError, match="timezone"):
            next(c.iter_changes("customers", datetime(2026, 1, 1)))


def test_idempotent_create_survives_retries(shop: RunningServer) -> None:
    """Dropped connections and 5xx on creates are retried and every create lands once.

    The servers' fault switches act before the request is handled, so these retries
    never reach the shop twice; the replay of a repeated key is checked explicitly."""
    faults(shop, error_rate=0.25, drop_rate=0.25, seed=5)
    with client(shop, max_retries=12) as c:
        created = [
            c.create("products", {"sku": f"S-{n}", "name": f"P {n}", "unit_price": "10.00",
                                  "currency": "DKK", "vat_rate": "25", "stock_status": "in_stock",
                                  "active": True}, key())
            for n in range(25)
        ]  # fmt: skip
        assert c.retries > 0
    faults(shop)
    with client(shop) as c:
        assert c.count("products") == 25
        assert {p["sku"] for p in created} == {f"S-{n}" for n in range(25)}
        again = c.create(
            "products",
            {"sku": "S-X", "name": "X", "unit_price": "1.00", "currency": "DKK",
             "vat_rate": "25", "stock_status": "in_stock", "active": True},
            "same-key",
        )  # fmt: skip
        replay = c.create(
            "products",
            {"sku": "S-X", "name": "X", "unit_price": "1.00", "currency": "DKK",
             "vat_rate": "25", "stock_status": "in_stock", "active": True},
            "same-key",
        )  # fmt: skip
        assert replay["id"] == again["id"]
        assert c.count("products") == 26


def test_if_match_and_typed_errors_name_the_field(shop: RunningServer) -> None:
    with client(shop) as c:
        cust = c.create("customers", {"name": "Kunde", "customer_number": "K1"}, key())
        updated = c.update("customers", cust["id"], {"phone": "+45 1234"}, if_match=cust["version"])
        assert updated["version"] == cust["version"] + 1
        with pytest.raises(WebshopPreconditionFailed):
            c.update("customers", cust["id"], {"phone": "+45 9999"}, if_match=cust["version"])
        assert c.get("customers", cust["id"])["phone"] == "+45 1234"  # type: ignore[index]

        with pytest.raises(WebshopValidationError) as bad:
            c.create("customers", {"name": "", "billing_address": {"country": "XX"}}, key())
        fields = {e.field for e in bad.value.errors}
        assert {"name", "billing_address.country"} <= fields
        assert "billing_address.country" in str(bad.value)

        with pytest.raises(WebshopConflict) as dup:
            c.create("customers", {"name": "Other", "customer_number": "K1"}, key())
        assert dup.value.field == "customer_number"


def test_wrong_token_and_persistent_failure(shop: RunningServer) -> None:
    with client(shop, token="not-the-token-123") as c, pytest.raises(WebshopAuthError) as info:
        c.count("orders")
    assert "not-the-token-123" not in str(info.value)
    faults(shop, error_rate=1.0)
    with client(shop, max_retries=2) as c, pytest.raises(WebshopUnavailable, match="3 attempts"):
        c.count("orders")


def test_429_waits_retry_after(shop: RunningServer) -> None:
    faults(shop, force_429=2, retry_after=1)
    with client(shop) as c:
        assert c.count("customers") == 0
        assert c.responses_429 == 2


def test_write_probe_changes_nothing(shop: RunningServer) -> None:
    with client(shop) as c:
        assert "422" in c.probe_write("customers")  # empty collection: empty create refused
        assert c.count("customers") == 0
        cust = c.create("customers", {"name": "Probe"}, key())
        assert "412" in c.probe_write("customers")
        assert c.get("customers", cust["id"]) == cust


def test_unreachable_shop_names_its_url_without_the_password() -> None:
    url = f"http://shopuser:SHOPPASSWORD@127.0.0.1:{free_port()}"
    with WebshopClient(url, WEBSHOP_TOKEN, max_retries=1, backoff_max=0.1) as client:
        try:
            client.get("customers", "cus_" + "0" * 32)
        except WebshopUnavailable as exc:
            assert "cannot reach the webshop" in str(exc)
            assert "SHOPPASSWORD" not in str(exc) and "shopuser:***@" in str(exc)
        else:
            raise AssertionError("an unreachable shop must raise WebshopUnavailable")
