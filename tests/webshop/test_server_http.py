"""The reference webshop over real HTTP: what the conformance suite does not already show."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from shopsync.conformance.receiver import Receiver
from shopsync.contract import load_contract
from shopsync.contract.signature import verify
from shopsync.emulators.launch import RunningServer, start_webshop_server
from tests.conftest import WEBSHOP_TOKEN

AUTH = {"Authorization": f"Bearer {WEBSHOP_TOKEN}"}


@pytest.fixture
def shop(reset_webshop: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reset_webshop.url, headers=AUTH, timeout=30) as client:
        yield client


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def customer(shop: httpx.Client, **fields: Any) -> dict[str, Any]:
    return created(shop.post("/customers", json={"name": "Kunde ApS", **fields}))


def product(shop: httpx.Client, sku: str, **fields: Any) -> dict[str, Any]:
    body = {"sku": sku, "name": "Vare", "unit_price": "10.00", "currency": "DKK", **fields}
    return created(shop.post("/products", json=body))


def order(shop: httpx.Client, customer_id: str, number: str, **fields: Any) -> httpx.Response:
    body = {"order_number": number, "customer_id": customer_id, "currency": "DKK", **fields}
    return shop.post("/orders", json=body)


def field_errors(response: httpx.Response, status: int = 422) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["updated_at"])


def test_contract_is_served_without_a_token(reset_webshop: RunningServer) -> None:
    response = httpx.get(reset_webshop.url + "/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.json() == load_contract()
    assert httpx.get(reset_webshop.url + "/customers", timeout=30).status_code == 401
    assert httpx.get(reset_webshop.url + "/_webshop/health", timeout=30).status_code == 200


def test_updated_at_increases_strictly_across_the_whole_server(shop: httpx.Client) -> None:
    c = customer(shop)
    p = product(shop, "SKU-A")
    o = created(order(shop, c["id"], "WS-1", lines=[{"quantity": "1", "unit_price": "2"}]))
    patched = shop.patch(f"/customers/{c['id']}", json={"phone": "1"}).json()
    stamps = [at(c), at(p), at(o), at(patched)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert c["updated_at"].endswith("+00:00") and len(c["updated_at"].split(".")[1]) == 12


def test_customer_with_orders_can_be_deleted_and_orders_keep_it(shop: httpx.Client) -> None:
    c = customer(shop)
    o = created(order(shop, c["id"], "WS-2"))
    assert shop.delete(f"/customers/{c['id']}").status_code == 204
    kept = shop.get(f"/orders/{o['id']}").json()
    assert kept["customer_id"] == c["id"]
    # The order may still be changed, as long as customer_id is not changed to a deleted one.
    assert shop.patch(f"/orders/{o['id']}", json={"status": "cancelled"}).status_code == 200
    assert "deleted" in field_errors(order(shop, c["id"], "WS-3"))["customer_id"]
    again = shop.patch(f"/orders/{o['id']}", json={"customer_id": "cus_" + "0" * 32})
    assert set(field_errors(again)) == {"customer_id"}


def test_line_product_ids_must_be_this_shops(shop: httpx.Client) -> None:
    c = customer(shop)
    p = product(shop, "SKU-B")
    unknown = order(
        shop,
        c["id"],
        "WS-4",
        lines=[{"product_id": "prd_nope", "quantity": "1", "unit_price": "1"}],
    )
    assert set(field_errors(unknown)) == {"lines[0].product_id"}
    assert shop.delete(f"/products/{p['id']}").status_code == 204
    line = {"product_id": p["id"], "sku": "SKU-B", "quantity": "1", "unit_price": "1"}
    assert order(shop, c["id"], "WS-5", lines=[line]).status_code == 201


def test_replay_returns_the_first_answer_even_after_changes(shop: httpx.Client) -> None:
    key = {"Idempotency-Key": "retry-me"}
    first = created(shop.post("/customers", json={"name": "Først"}, headers=key))
    shop.patch(f"/customers/{first['id']}", json={"name": "Ændret"})
    replay = shop.post("/customers", json={"name": "Først"}, headers=key)
    assert replay.status_code == 201
    assert replay.json() == first
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["etag"] == '"1"'
    # Keys are per collection.
    assert shop.post("/products", json={"sku": "K", "name": "n", "unit_price": "1", "currency": "DKK"}, headers=key).status_code == 201  # fmt: skip
    # Body compared as JSON: key order and spacing do not matter.
    spaced = shop.post(
        "/customers",
        content=b'{ "name" :  "F\\u00f8rst" }',
        headers={**key, "Content-Type": "application/json"},
    )
    assert spaced.json()["id"] == first["id"]


def test_bad_headers_are_named(shop: httpx.Client) -> None:
    c = customer(shop)
    bad_match = shop.patch(f"/customers/{c['id']}", json={}, headers={"If-Match": "W/1"})
    assert set(field_errors(bad_match)) == {"If-Match"}
    bad_key = shop.post("/customers", json={"name": "x"}, headers={"Idempotency-Key": "has space"})
    assert set(field_errors(bad_key)) == {"Idempotency-Key"}
    star = shop.patch(f"/customers/{c['id']}", json={"phone": "2"}, headers={"If-Match": "*"})
    assert star.status_code == 200
    stale = shop.patch(f"/customers/{c['id']}", json={"phone": "3"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["etag"] == '"2"'


def test_validation_comes_before_the_precondition(shop: httpx.Client) -> None:
    c = customer(shop)
    response = shop.patch(f"/customers/{c['id']}", json={"name": ""}, headers={"If-Match": '"9"'})
    assert set(field_errors(response)) == {"name"}


def test_deleting_twice_changes_nothing(shop: httpx.Client) -> None:
    c = customer(shop)
    assert shop.delete(f"/customers/{c['id']}").status_code == 204
    since = c["updated_at"]
    first = shop.get(
        "/customers", params={"updated_since": since, "include_deleted": "true"}
    ).json()
    assert shop.delete(f"/customers/{c['id']}").status_code == 204
    second = shop.get(
        "/customers", params={"updated_since": since, "include_deleted": "true"}
    ).json()
    assert first == second
    assert shop.patch(f"/customers/{c['id']}", json={"name": "x"}).status_code == 410


def test_concurrent_patches_lose_nothing(shop: httpx.Client) -> None:
    c = customer(shop)
    url = shop.base_url

    def worker(n: int) -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            for k in range(5):
                assert (
                    client.patch(f"/customers/{c['id']}", json={"phone": f"{n}-{k}"}).status_code
                    == 200
                )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shop.get(f"/customers/{c['id']}").json()["version"] == 1 + 4 * 5


def test_no_record_is_lost_by_a_poller_while_records_are_written(shop: httpx.Client) -> None:
    """A writer creates and updates records while a poller pages with a small limit."""
    start = customer(shop)
    written: list[str] = [start["id"]]
    done = threading.Event()
    url = shop.base_url

    def writer() -> None:
        try:
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
                for n in range(40):
                    record = client.post("/customers", json={"name": f"W{n}"}).json()
                    written.append(record["id"])
                    if n % 3 == 0:
                        client.patch(f"/customers/{written[n // 2]}", json={"notes": f"touch {n}"})
        finally:
            done.set()

    seen: list[tuple[str, str]] = []
    thread = threading.Thread(target=writer)
    thread.start()
    since = start["updated_at"]
    cursor: str | None = None
    quiet_polls = 0
    while quiet_polls < 2:
        params = {"limit": "7", **({"cursor": cursor} if cursor else {"updated_since": since})}
        page = shop.get("/customers", params=params).json()
        fresh = [
            (r["updated_at"], r["id"])
            for r in page["items"]
            if (r["updated_at"], r["id"]) not in seen
        ]
        seen.extend(fresh)
        if page["next_cursor"]:
            cursor = page["next_cursor"]
        else:
            # Caught up: poll again from the last change seen (inclusive), as a poller would.
            cursor = None
            since = seen[-1][0] if seen else since
            quiet_polls += done.is_set() and not fresh
            time.sleep(0.01)
    thread.join()
    assert set(written) <= {record_id for _, record_id in seen}
    assert seen == sorted(seen)


def test_controls_count_fault_and_seed(reset_webshop: RunningServer, shop: httpx.Client) -> None:
    base = reset_webshop.url + "/_webshop"
    c = customer(shop)
    shop.get(f"/customers/{c['id']}")
    shop.get(f"/customers/{c['id']}")
    counters = httpx.get(base + "/counters", timeout=30).json()
    assert counters["endpoints"]["GET /customers/{id}"] == 2
    assert counters["endpoints"]["POST /customers"] == 1
    httpx.put(
        base + "/faults", json={"force_429": 1, "retry_after": 7}, timeout=30
    ).raise_for_status()
    throttled = shop.get("/customers")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "7"
    assert throttled.headers["content-type"] == "application/problem+json"
    assert shop.get("/customers").status_code == 200
    seeded = httpx.post(base + "/seed", json={"n": 15, "seed": 4}, timeout=60).json()
    assert seeded["customers"] == 15 and seeded["products"] == 20 and seeded["orders"] > 0
    listed = shop.get("/customers", params={"limit": "1000"}).json()["items"]
    assert len(listed) == 15  # reset first: the customer made above is gone
    again = httpx.post(base + "/seed", json={"n": 15, "seed": 4, "reset": False}, timeout=60).json()
    assert again["customers"] == again["products"] == again["orders"] == 0
    orders = shop.get("/orders", params={"limit": "1000"}).json()["items"]
    assert orders[0]["order_number"] == "WS-10001"
    assert all(o["lines"] and o["total_excl_vat"] for o in orders)


def test_webhooks_are_signed_retried_and_secret(
    reset_webshop: RunningServer, shop: httpx.Client
) -> None:
    base = reset_webshop.url + "/_webshop"
    httpx.put(
        base + "/webhook-settings", json={"base_seconds": 0.05, "max_attempts": 3}, timeout=30
    ).raise_for_status()
    secret = "webhook-secret-for-the-test-0123"
    far = shop.post(
        "/webhooks",
        json={"url": "http://192.0.2.1/x", "events": ["order.created"], "secret": secret},
    )
    assert set(field_errors(far)) == {"url"}
    with Receiver(fail_first=2) as receiver:
        hook = created(
            shop.post(
                "/webhooks",
                json={
                    "url": receiver.url,
                    "events": ["customer.created", "product.updated"],
                    "secret": secret,
                },
            )
        )
        assert secret not in json.dumps(hook) and secret not in shop.get("/webhooks").text
        c = customer(shop)
        shop.patch(f"/customers/{c['id']}", json={"phone": "no event for this"})
        assert receiver.wait_for(lambda ds: any(d.status == 204 for d in ds), timeout=10)
        deliveries = receiver.deliveries
        assert [d.status for d in deliveries] == [500, 500, 204]
        assert len({d.body for d in deliveries}) == 1
        body = json.loads(deliveries[0].body)
        assert body == {"event": "customer.created", "id": c["id"], "occurred_at": c["updated_at"]}
        assert all(verify(secret, d.body, d.headers["x-webshop-signature"]) for d in deliveries)
        assert len({d.headers["x-webshop-delivery"] for d in deliveries}) == 1
        outbox = httpx.get(base + "/deliveries", timeout=30).json()["items"]
        assert [(o["status"], o["attempts"]) for o in outbox] == [("delivered", 3)]
        # A receiver that keeps failing is given up on after max_attempts.
        receiver.fail_first = 99
        p = product(shop, "SKU-H")
        shop.patch(f"/products/{p['id']}", json={"name": "Ny"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            outbox = httpx.get(base + "/deliveries", timeout=30).json()["items"]
            if outbox[-1]["status"] == "failed":
                break
            time.sleep(0.05)
        assert (outbox[-1]["event"], outbox[-1]["status"], outbox[-1]["attempts"]) == (
            "product.updated",
            "failed",
            3,
        )
        assert shop.delete(f"/webhooks/{hook['id']}").status_code == 204
        assert shop.get(f"/webhooks/{hook['id']}").status_code == 404
    log = reset_webshop.log_tail(10_000)
    assert secret not in log and WEBSHOP_TOKEN not in log


def test_restart_keeps_idempotency_keys_and_the_clock(tmp_path: Any) -> None:
    db = str(tmp_path / "shop.sqlite")
    with start_webshop_server(db, token="tok-restart", log_path=tmp_path / "a.log") as server:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": "Bearer tok-restart"}, timeout=30
        )
        key = {"Idempotency-Key": "k-1"}
        first = created(client.post("/customers", json={"name": "Keyed"}, headers=key))
    with start_webshop_server(db, token="tok-restart", log_path=tmp_path / "b.log") as server:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": "Bearer tok-restart"}, timeout=30
        )
        replay = client.post("/customers", json={"name": "Keyed"}, headers=key)
        assert replay.status_code == 201 and replay.json()["id"] == first["id"]
        after = created(client.post("/customers", json={"name": "After restart"}))
        assert at(after) > at(first)
        assert len(client.get("/customers").json()["items"]) == 2


@pytest.mark.postgres
def test_postgresql_database_and_cli_seed(pg_url: str, tmp_path: Any) -> None:
    plain_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with start_webshop_server(
        plain_url, token="tok-pg", seed=9, log_path=tmp_path / "pg.log"
    ) as server:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": "Bearer tok-pg"}, timeout=30
        )
        assert len(client.get("/customers", params={"limit": "1000"}).json()["items"]) == 9
        p = created(
            client.post(
                "/products",
                json={
                    "sku": "PG-1",
                    "name": "Ø",
                    "unit_price": "9999999999999.99",
                    "currency": "EUR",
                },
            )
        )
        assert p["unit_price"] == "9999999999999.99"
        assert client.post("/products", json={"sku": "PG-1", "name": "x", "unit_price": "1", "currency": "EUR"}).status_code == 409  # fmt: skip
        nul = client.post("/customers", json={"name": "a\u0000b"})
        assert set(field_errors(nul)) == {"name"}
