"""Malformed requests get a 4xx problem naming the problem, never a 500 (issue 9, item 13).

Each case here once made the reference webshop answer 500; they run over real HTTP
against the session server, like the rest of the suite.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shopsync.emulators.launch import RunningServer
from tests.conftest import WEBSHOP_TOKEN

AUTH = {"Authorization": f"Bearer {WEBSHOP_TOKEN}", "Content-Type": "application/json"}
SECRET = "a-secret-of-sixteen-or-more"
VALID = {
    "customers": b'{"name": %s}',
    "products": b'{"sku": "S-1", "name": %s, "unit_price": "1.00", "currency": "DKK"}',
    "orders": b'{"order_number": %s, "customer_id": "cus_x", "currency": "DKK"}',
}


@pytest.fixture
def shop(reset_webshop: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reset_webshop.url, headers=AUTH, timeout=30) as client:
        yield client


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def fields(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in problem(r, 422)["errors"]}


@pytest.mark.parametrize("collection", sorted(VALID))
@pytest.mark.parametrize("key", [None, "key-1"])
def test_post_with_a_lone_surrogate_gets_422_naming_the_field(
    shop: httpx.Client, collection: str, key: str | None
) -> None:
    headers = {"Idempotency-Key": key} if key else {}
    body = VALID[collection] % b'"half an emoji \\ud83d"'
    errors = fields(shop.post(f"/{collection}", content=body, headers=headers))
    named = "order_number" if collection == "orders" else "name"
    assert errors[named] == "is not valid Unicode (lone surrogate)"
    # Nothing was created, and the key is still free for a good body.
    assert shop.get(f"/{collection}").json()["items"] == []


def test_member_name_with_a_lone_surrogate_gets_422(shop: httpx.Client) -> None:
    body = b'{"name": "Kunde", "\\udc00x": 1}'
    for r in (
        shop.post("/customers", content=body),
        shop.patch(
            "/customers/" + shop.post("/customers", json={"name": "K"}).json()["id"], content=body
        ),
    ):
        errors = problem(r, 422)["errors"]
        assert {e["field"] for e in errors} == {"\\udc00x"}
        assert "is not valid Unicode (lone surrogate)" in {e["message"] for e in errors}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name": "x", "notes": ' + b"[" * 990 + b"]" * 990 + b"}",
        b'{"name": "x", "billing_address": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}",
    ],
    ids=["100000-arrays", "990-arrays-in-a-member", "40-objects"],
)
def test_deeply_nested_json_gets_400(shop: httpx.Client, body: bytes) -> None:
    c = shop.post("/customers", json={"name": "K"}).json()
    for r in (
        shop.post("/customers", content=body),
        shop.patch(f"/customers/{c['id']}", content=body),
        shop.post("/webhooks", content=body),
    ):
        assert "nested" in problem(r, 400)["detail"]
    # Nesting the contract uses is fine.
    order = {
        "order_number": "N-1",
        "customer_id": c["id"],
        "currency": "DKK",
        "lines": [{"quantity": "1", "unit_price": "2.00"}],
    }
    assert shop.post("/orders", json=order).status_code == 201


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[not-an-address]/hook",
        "http://127.0.0.1:99999/hook",
        "http://127.0.0.1:port/hook",
    ],
)
def test_webhook_url_that_does_not_parse_gets_422(shop: httpx.Client, url: str) -> None:
    assert set(fields(shop.post("/webhooks", json={"url": url}))) >= {"url"}
    full = {"url": url, "events": ["customer.created"], "secret": SECRET}
    assert fields(shop.post("/webhooks", json=full)).keys() == {"url"}
    assert shop.get("/webhooks").json()["items"] == []
    ok = {**full, "url": "http://[::1]:8080/hook"}
    assert shop.post("/webhooks", json=ok).status_code == 201


@pytest.mark.parametrize(
    "payload",
    [
        b'{"t": "2026-01-01T00:00:00Z", "i": "\\ud800"}',  # an id SQL cannot bind
        b"[" * 5000 + b"]" * 5000,  # nested past the JSON decoder's recursion limit
    ],
    ids=["lone-surrogate-id", "deeply-nested"],
)
def test_forged_cursor_gets_422_naming_it(shop: httpx.Client, payload: bytes) -> None:
    """Found by hand next to the issue's cases: both were a 500."""
    cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    for collection in VALID:
        r = shop.get(f"/{collection}", params={"cursor": cursor})
        assert fields(r) == {"cursor": "not a cursor this server gave out"}
