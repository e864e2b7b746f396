"""Batch writes of the reference webshop: each item is exactly its single request.

The main test runs one scenario twice against the real server process, once as batches
and once as single requests, and compares every answer, the records left behind and the
webhook events queued (ids and times normalized). The conformance rows
(``check-webshop``) check the same rules from outside; these add what they cannot see.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopsync.emulators.launch import RunningServer
from shopsync.emulators.webshop import service
from shopsync.emulators.webshop.listing import Listing
from shopsync.emulators.webshop.records import RESOURCES
from shopsync.emulators.webshop.service import BatchCreate, BatchUpdate, Records
from shopsync.emulators.webshop.store import Store
from shopsync.emulators.webshop.webhooks import Webhooks
from tests.conftest import WEBSHOP_TOKEN

AUTH = {"Authorization": f"Bearer {WEBSHOP_TOKEN}"}
ID = re.compile(r"\b(cus|prd|ord|lin|whk|dlv)_[0-9a-f]{32}\b")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


@pytest.fixture
def shop(reset_webshop: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reset_webshop.url, headers=AUTH, timeout=60) as client:
        yield client
    httpx.put(reset_webshop.url + "/_webshop/batch", json={}, timeout=30).raise_for_status()


def control(server: RunningServer, method: str, path: str, **body: Any) -> Any:
    response = httpx.request(method, server.url + "/_webshop" + path, json=body, timeout=60)
    response.raise_for_status()
    return response.json()


class Normalizer:
    """Ids become ``<cus 1>``, ``<lin 3>`` … in the order first seen; times ``<time>``."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        if isinstance(value, str):
            value = ID.sub(self._name, value)
            return TIME.sub("<time>", value)
        return value

    def _name(self, match: re.Match[str]) -> str:
        kind = match.group(1)
        if match.group(0) not in self.names:
            count = sum(n.startswith(f"<{kind} ") for n in self.names.values())
            self.names[match.group(0)] = f"<{kind} {count + 1}>"
        return self.names[match.group(0)]


Op = tuple[str, dict[str, Any]]
"""``("create", {"key", "body"})`` or ``("update", {"id", "if_match"?, "patch"})``."""


def as_batch(shop: httpx.Client, collection: str, ops: list[Op]) -> list[Any]:
    items = []
    for op, args in ops:
        if op == "create":
            items.append({"op": "create", "idempotency_key": args["key"], "body": args["body"]})
        else:
            item = {"op": "update", "id": args["id"], "patch": args["patch"]}
            if "if_match" in args:
                item["if_match"] = args["if_match"]
            items.append(item)
    response = shop.post(f"/{collection}/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    return [
        (r["status"], r.get("record") or r.get("problem"), r.get("replayed", False))
        for r in results
    ]


def as_singles(shop: httpx.Client, collection: str, ops: list[Op]) -> list[Any]:
    out = []
    for op, args in ops:
        if op == "create":
            response = shop.post(
                f"/{collection}", json=args["body"], headers={"Idempotency-Key": args["key"]}
            )
        else:
            headers = {"If-Match": args["if_match"]} if "if_match" in args else {}
            response = shop.patch(
                f"/{collection}/{args['id']}", json=args["patch"], headers=headers
            )
        replayed = response.headers.get("idempotent-replayed") == "true"
        out.append((response.status_code, response.json(), replayed))
    return out


def scenario(
    server: RunningServer, send: Callable[[httpx.Client, str, list[Op]], list[Any]]
) -> Any:
    """Setup by single requests, then the writes under test through ``send``; returns every
    answer, the records left and the webhook events, normalized."""
    control(server, "POST", "/reset")
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as shop:
        hook = {
            "url": "http://127.0.0.1:9/hooks",
            "events": [
                "customer.created",
                "customer.updated",
                "order.created",
                "order.updated",
                "product.created",
                "product.updated",
            ],
            "secret": "s" * 16,
        }
        assert shop.post("/webhooks", json=hook).status_code == 201
        e = shop.post("/customers", json={"name": "E", "customer_number": "E-1"}).json()
        d = shop.post("/customers", json={"name": "D"}).json()
        assert shop.delete(f"/customers/{d['id']}").status_code == 204
        p = shop.post(
            "/products", json={"sku": "P-1", "name": "P", "unit_price": "10.00", "currency": "DKK"}
        ).json()
        line = {"sku": "P-1", "product_id": p["id"], "quantity": "2", "unit_price": "10.00"}
        o = shop.post(
            "/orders",
            json={
                "order_number": "O-1",
                "customer_id": e["id"],
                "currency": "DKK",
                "lines": [line, {"quantity": "1", "unit_price": "5"}],
            },
        ).json()
        other = shop.post(
            "/orders",
            json={
                "order_number": "O-2",
                "customer_id": e["id"],
                "currency": "DKK",
                "lines": [line],
            },
        ).json()
        new = {"name": "N", "customer_number": "N-1"}
        customers: list[Op] = [
            ("create", {"key": "k1", "body": new}),
            ("create", {"key": "k1", "body": new}),  # replay within the batch
            ("create", {"key": "k1", "body": {"name": "other"}}),  # 422 Idempotency-Key
            ("create", {"key": "k2", "body": {"name": "dup", "customer_number": "E-1"}}),  # 409
            (
                "create",
                {
                    "key": "k3",
                    "body": {
                        "name": "",
                        "email": "x",
                        "version": 3,
                        "billing_address": {"country": "XX"},
                        "extra": 1,
                    },
                },
            ),
            ("create", {"key": "k3", "body": {"name": "k3 again, fresh"}}),  # k3 was not kept
            ("update", {"id": e["id"], "if_match": '"1"', "patch": {"phone": "1"}}),
            ("update", {"id": e["id"], "if_match": "1", "patch": {"phone": "2"}}),  # 412
            ("update", {"id": e["id"], "patch": {"phone": "1"}}),  # no-op: version stays
            ("update", {"id": e["id"], "if_match": "*", "patch": {"name": None}}),  # 422
            ("update", {"id": e["id"], "if_match": '"1"', "patch": {"email": "x"}}),  # 422 first
            ("update", {"id": e["id"], "patch": {"customer_number": "N-1"}}),  # 409
            ("update", {"id": d["id"], "patch": {"phone": "1"}}),  # 410
            ("update", {"id": "cus_" + "0" * 32, "patch": {}}),  # 404
            ("update", {"id": "not-an-id", "patch": {}}),  # 404
            ("update", {"id": e["id"], "patch": {"billing_address": {"city": "Aarhus"}}}),
            (
                "create",
                {"key": "k4", "body": {"name": "D's number is free", "customer_number": None}},
            ),
        ]
        products: list[Op] = [
            (
                "create",
                {
                    "key": "p1",
                    "body": {"sku": "P-2", "name": "Q", "unit_price": "1.5", "currency": "EUR"},
                },
            ),
            (
                "create",
                {
                    "key": "p2",
                    "body": {"sku": "P-1", "name": "dup", "unit_price": "1", "currency": "EUR"},
                },
            ),
            ("update", {"id": p["id"], "patch": {"unit_price": 12.5}}),
            (
                "update",
                {"id": p["id"], "patch": {"unit_price": "12.50", "stock_status": "backorder"}},
            ),
        ]
        kept = o["lines"][1]["id"]
        orders: list[Op] = [
            (
                "create",
                {
                    "key": "o1",
                    "body": {
                        "order_number": "O-3",
                        "customer_id": e["id"],
                        "currency": "DKK",
                        "discount_percent": "5",
                        "lines": [line],
                    },
                },
            ),
            (
                "create",
                {
                    "key": "o2",
                    "body": {
                        "order_number": "O-4",
                        "customer_id": d["id"],
                        "currency": "DKK",
                        "lines": [
                            {"quantity": 1, "unit_price": "1", "product_id": "prd_" + "1" * 32}
                        ],
                    },
                },
            ),
            (
                "update",
                {
                    "id": o["id"],
                    "if_match": '"1"',
                    "patch": {
                        "lines": [
                            {"id": kept, "quantity": "3", "unit_price": "5"},
                            {"quantity": "1", "unit_price": "0.35"},
                        ]
                    },
                },
            ),
            (
                "update",
                {
                    "id": o["id"],
                    "patch": {
                        "lines": [
                            {"id": other["lines"][0]["id"], "quantity": "1", "unit_price": "1"}
                        ]
                    },
                },
            ),
            ("update", {"id": o["id"], "patch": {"status": "confirmed", "order_number": "O-2"}}),
        ]
        answers = {
            "customers": send(shop, "customers", customers),
            "products": send(shop, "products", products),
            "orders": send(shop, "orders", orders),
        }
        left = {
            c: shop.get(f"/{c}", params={"limit": "1000", "include_deleted": "true"}).json()
            for c in ("customers", "products", "orders")
        }
        events = [
            (x["event"], x["record_id"]) for x in control(server, "GET", "/deliveries")["items"]
        ]
    normalize = Normalizer()
    return normalize({"answers": answers, "left": left, "events": events})


def test_each_item_answers_exactly_as_its_single_request(reset_webshop: RunningServer) -> None:
    batched = scenario(reset_webshop, as_batch)
    single = scenario(reset_webshop, as_singles)
    for collection in ("customers", "products", "orders"):
        for n, (b, s) in enumerate(
            zip(batched["answers"][collection], single["answers"][collection], strict=True)
        ):
            assert b == s, f"{collection} item {n}"
    assert batched == single
    statuses = [a[0] for a in batched["answers"]["customers"]]
    assert statuses == [
        201,
        201,
        422,
        409,
        422,
        201,
        200,
        412,
        200,
        422,
        422,
        409,
        410,
        404,
        404,
        200,
        201,
    ]
    assert [a[2] for a in batched["answers"]["customers"]][:2] == [False, True]
    assert [a[0] for a in batched["answers"]["products"]] == [201, 409, 422, 200]
    assert [a[0] for a in batched["answers"]["orders"]] == [201, 422, 200, 422, 409]
    bad_order = batched["answers"]["orders"][1][1]
    assert {e["field"] for e in bad_order["errors"]} == {
        "customer_id",
        "lines[0].quantity",
        "lines[0].product_id",
    }
    created = batched["answers"]["customers"][0][1]["id"]
    events = batched["events"]
    assert events.count(["customer.created", created]) == 1  # the replay fired nothing
    assert len(events) == 5 + 5 + 4  # setup: 5 writes; batches: 5 creates, 4 changes


def test_envelope_is_checked_whole_and_writes_nothing(shop: httpx.Client) -> None:
    good = {"op": "create", "idempotency_key": "g", "body": {"name": "good"}}
    cases: list[tuple[Any, set[str]]] = [
        ({}, {"items"}),
        ({"items": "x"}, {"items"}),
        ({"items": []}, {"items"}),
        ({"items": [good], "extra": 1}, {"extra"}),
        ({"items": [good, 7]}, {"items[1]"}),
        ({"items": [good, {"op": ["create"]}]}, {"items[1].op"}),
        ({"items": [good, {"op": "delete", "id": "x"}]}, {"items[1].op"}),
        (
            {"items": [good, {"op": "create", "body": {}, "idempotency_key": "é"}]},
            {"items[1].idempotency_key"},
        ),
        (
            {"items": [good, {"op": "create", "idempotency_key": "k", "body": []}]},
            {"items[1].body"},
        ),
        ({"items": [good, {"op": "update", "id": "", "patch": {}}]}, {"items[1].id"}),
        ({"items": [good, {"op": "update", "id": "x" * 101, "patch": {}}]}, {"items[1].id"}),
        ({"items": [good, {"op": "update", "id": "x", "patch": None}]}, {"items[1].patch"}),
        (
            {"items": [good, {"op": "update", "id": "x", "if_match": 3, "patch": {}}]},
            {"items[1].if_match"},
        ),
        (
            {"items": [good, {"op": "update", "id": "x", "if_match": "v3", "patch": {}}]},
            {"items[1].if_match"},
        ),
        (
            {"items": [good, {"op": "update", "id": "x", "patch": {}, "body": {}}]},
            {"items[1].body"},
        ),
    ]
    for body, fields in cases:
        response = shop.post("/customers/batch", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert {e["field"] for e in response.json()["errors"]} == fields, body
    for raw in (b"[]", b'{"items": ', b"\xff"):
        assert shop.post("/customers/batch", content=raw).status_code == 400
    assert shop.post("/customers/batch?dry_run=1", json={"items": [good]}).status_code == 422
    assert shop.get("/customers").json()["items"] == []


def test_max_items_and_nesting(reset_webshop: RunningServer, shop: httpx.Client) -> None:
    control(reset_webshop, "PUT", "/batch", max_items=3)
    assert shop.get("/capabilities").json() == {"batch": {"max_items": 3}}

    def item(n: int) -> dict[str, Any]:
        return {"op": "create", "idempotency_key": f"m{n}", "body": {"name": f"M{n}"}}

    too_many = shop.post("/customers/batch", json={"items": [item(n) for n in range(4)]})
    assert too_many.status_code == 422
    assert [e["field"] for e in too_many.json()["errors"]] == ["items"]
    assert shop.get("/customers").json()["items"] == []
    done = shop.post("/customers/batch", json={"items": [item(n) for n in range(3)]})
    assert [r["status"] for r in done.json()["results"]] == [201, 201, 201]
    # The nesting limit is the single request's: a body 32 levels deep is that item's
    # 422 (it is an unknown field), 33 levels is a 400 for the whole batch.
    deep: Any = "x"
    for _ in range(31):
        deep = [deep]
    ok = {"op": "create", "idempotency_key": "deep", "body": {"name": "D", "notes": deep}}
    answer = shop.post("/customers/batch", json={"items": [ok]})
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == 422
    ok["body"] = {"name": "D", "notes": [deep]}
    assert shop.post("/customers/batch", json={"items": [ok]}).status_code == 400


def test_capabilities_and_the_batch_control(
    reset_webshop: RunningServer, shop: httpx.Client
) -> None:
    assert shop.get("/capabilities").json() == {"batch": {"max_items": 500}}
    assert httpx.get(reset_webshop.url + "/capabilities", timeout=30).status_code == 401
    no_token = httpx.post(reset_webshop.url + "/orders/batch", json={"items": []}, timeout=30)
    assert no_token.status_code == 401
    assert shop.get("/capabilities", params={"x": "1"}).status_code == 422
    control(reset_webshop, "PUT", "/batch", enabled=False)
    assert shop.get("/capabilities").json() == {}
    off = shop.post("/products/batch", json={"items": []})
    assert off.status_code == 404 and off.headers["content-type"] == "application/problem+json"
    assert control(reset_webshop, "GET", "/batch")["enabled"] is False
    control(reset_webshop, "PUT", "/batch", capabilities=False)
    assert shop.get("/capabilities").status_code == 404
    assert shop.post("/products/batch", json={"items": []}).status_code == 422  # offered again
    control(reset_webshop, "POST", "/reset")
    assert control(reset_webshop, "GET", "/batch") == {
        "enabled": True,
        "max_items": 500,
        "capabilities": True,
    }
    counters = control(reset_webshop, "GET", "/counters")["endpoints"]
    assert counters == {}  # reset clears them; before it, batches counted as their own path


def test_updated_at_follows_the_items_and_listings_see_the_whole_batch(shop: httpx.Client) -> None:
    first = shop.post("/customers", json={"name": "before"}).json()
    items = [
        {"op": "create", "idempotency_key": f"u{n}", "body": {"name": f"U{n}"}} for n in range(20)
    ]
    results = shop.post("/customers/batch", json={"items": items}).json()["results"]
    stamps = [r["record"]["updated_at"] for r in results]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20 and stamps[0] > first["updated_at"]
    listed = shop.get("/customers", params={"updated_since": first["updated_at"]}).json()["items"]
    assert [r["name"] for r in listed] == ["before"] + [f"U{n}" for n in range(20)]


def _records(db: str) -> Records:
    store = Store(db)
    store.start()
    return Records(store, Webhooks(store))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_unexpected_error_rolls_back_the_whole_batch(
    database: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal is one item's; anything else fails the batch, and nothing of it is
    committed, not even the items before (on SQLite, whose driver would commit the first
    savepoint's release unless ``db.make_engine`` takes transactions over)."""
    if database == "postgresql":
        db = str(request.getfixturevalue("pg_url"))
    else:
        db = str(tmp_path / "shop.sqlite")
    records = _records(db)
    customers = RESOURCES["customers"]
    items = [BatchCreate({"name": f"R{n}"}, f"r{n}") for n in range(3)]
    items.insert(1, BatchUpdate("cus_" + "0" * 32, {}, None))
    outcomes = records.batch(customers, items)
    assert [o.status for o in outcomes] == [201, 404, 201, 201]
    apply = Records._apply
    calls: list[int] = []

    def failing(self: Records, session: Any, resource: Any, item: Any) -> service.Outcome:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        return apply(self, session, resource, item)

    monkeypatch.setattr(Records, "_apply", failing)
    fresh = [BatchCreate({"name": f"S{n}"}, f"s{n}") for n in range(3)]
    with pytest.raises(RuntimeError):
        records.batch(customers, fresh)
    monkeypatch.setattr(Records, "_apply", apply)
    names = {r["name"] for r in records.list(customers, Listing.from_query({}))["items"]}
    assert names == {"R0", "R1", "R2"}
    # and the keys of the failed batch were not kept: the same creates work again
    assert [o.status for o in records.batch(customers, fresh)] == [201, 201, 201]
    records.store.close()
