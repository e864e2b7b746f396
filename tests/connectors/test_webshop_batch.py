"""``WebshopClient.write_many`` against the real reference webshop, with and without its
batch endpoint (switched by ``/_webshop/batch``), and through lost answers and 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shopsync.connectors.webshop.client import (
    CreateOp,
    UpdateOp,
    WebshopAuthError,
    WebshopClient,
    WebshopConflict,
    WebshopError,
    WebshopGone,
    WebshopNotFound,
    WebshopPreconditionFailed,
    WebshopUnavailable,
    WebshopValidationError,
    WriteOp,
    endpoint_key,
)
from shopsync.emulators.launch import RunningServer
from tests.conftest import WEBSHOP_TOKEN
from tests.connectors.conftest import control, faults

MODES = ["batch", "single"]


@pytest.fixture
def shop(reset_webshop: RunningServer) -> Iterator[RunningServer]:
    yield reset_webshop
    faults(reset_webshop)
    control(reset_webshop, "PUT", "/batch")


def offer(server: RunningServer, mode: str, **settings: Any) -> None:
    control(server, "PUT", "/batch", enabled=mode == "batch", **settings)


def client(server: RunningServer, **kw: Any) -> WebshopClient:
    kw.setdefault("backoff_max", 0.2)
    return WebshopClient(server.url, str(kw.pop("token", WEBSHOP_TOKEN)), **kw)


def key() -> str:
    return str(uuid.uuid4())


def customers(n: int, prefix: str = "C") -> list[WriteOp]:
    return [
        CreateOp({"name": f"{prefix}{i}", "customer_number": f"{prefix}-{i}"}, key())
        for i in range(n)
    ]


def server_counts(server: RunningServer) -> dict[str, int]:
    return dict(control(server, "GET", "/counters")["endpoints"])


@pytest.mark.parametrize("mode", MODES)
def test_many_creates_in_few_requests(shop: RunningServer, mode: str) -> None:
    offer(shop, mode)
    with client(shop, max_batch_items=400) as c:
        ops = customers(1000)
        out = c.write_many("customers", ops)
        assert all(isinstance(o, dict) for o in out)
        assert [o["name"] for o in out if isinstance(o, dict)] == [f"C{i}" for i in range(1000)]
        again = c.write_many("customers", ops[:3])  # the same keys: the same records
        assert [o["id"] for o in again if isinstance(o, dict)] == [
            o["id"] for o in out[:3] if isinstance(o, dict)
        ]
        assert c.count("customers") == 1000
        expected = (
            {"GET /capabilities": 1, "POST /customers/batch": 4}
            if mode == "batch"
            else {"GET /capabilities": 1, "POST /customers": 1003}
        )
        assert {
            k: v for k, v in c.requests_by_endpoint.items() if k != "GET /customers"
        } == expected
    assert {k: v for k, v in server_counts(shop).items() if k != "GET /customers"} == expected


@pytest.mark.parametrize("mode", MODES)
def test_each_op_gets_the_outcome_of_its_single_request(shop: RunningServer, mode: str) -> None:
    offer(shop, mode)
    with client(shop) as c:
        a = c.create("customers", {"name": "A", "customer_number": "A-1"}, key())
        gone = c.create("customers", {"name": "G"}, key())
        c.delete("customers", gone["id"])
        taken = key()
        ops: list[WriteOp] = [
            CreateOp({"name": "", "billing_address": {"country": "XX"}}, key()),
            CreateOp({"name": "Dup", "customer_number": "A-1"}, key()),
            UpdateOp(a["id"], {"phone": "1"}, if_match=1),
            UpdateOp(a["id"], {"phone": "2"}, if_match=1),
            UpdateOp("cus_" + "0" * 32, {"phone": "3"}),
            UpdateOp(gone["id"], {"phone": "4"}),
            CreateOp({"name": "New"}, taken),
            CreateOp({"name": "Other body"}, taken),
            UpdateOp(a["id"], {"name": None}),
        ]
        out = c.write_many("customers", ops)
    kinds = [type(o).__name__ for o in out]
    assert kinds == [
        "WebshopValidationError", "WebshopConflict", "dict", "WebshopPreconditionFailed",
        "WebshopNotFound", "WebshopGone", "dict", "WebshopValidationError",
        "WebshopValidationError",
    ]  # fmt: skip
    invalid, conflict = out[0], out[1]
    assert isinstance(invalid, WebshopValidationError)
    assert {e.field for e in invalid.errors} == {"name", "billing_address.country"}
    assert str(invalid).startswith("POST /customers: HTTP 422: ")
    assert isinstance(conflict, WebshopConflict) and conflict.field == "customer_number"
    assert isinstance(out[2], dict) and out[2]["version"] == 2
    assert isinstance(out[3], WebshopPreconditionFailed)
    assert str(out[3]).startswith(f"PATCH /customers/{a['id']}: HTTP 412")
    assert isinstance(out[4], WebshopNotFound) and isinstance(out[5], WebshopGone)
    assert {e.field for e in out[7].errors} == {"Idempotency-Key"}  # type: ignore[union-attr]
    assert {e.field for e in out[8].errors} == {"name"}  # type: ignore[union-attr]
    assert all(o.status == o.problem["status"] for o in out if isinstance(o, WebshopError))


def test_the_fallback_keeps_order_where_it_matters(shop: RunningServer) -> None:
    """Without batches, independent ops go in parallel; two writes to one record do not."""
    offer(shop, "single")
    with client(shop) as c:
        a = c.create("customers", {"name": "A"}, key())
        ops: list[WriteOp] = [
            UpdateOp(a["id"], {"phone": str(n)}, if_match=n + 1) for n in range(8)
        ]
        out = c.write_many("customers", ops)
    assert [o["version"] for o in out if isinstance(o, dict)] == list(range(2, 10))


def test_orders_with_lines_and_mixed_ops(shop: RunningServer) -> None:
    with client(shop) as c:
        cust = c.create("customers", {"name": "K"}, key())
        line = {"sku": "S", "quantity": "2", "unit_price": "1249.50", "discount_percent": "10"}
        order = {"order_number": "W-1", "customer_id": cust["id"], "currency": "DKK",
                 "discount_percent": "5", "lines": [line, {"quantity": "1", "unit_price": "349"}]}  # fmt: skip
        first = c.write_many("orders", [CreateOp(order, "o-1")])[0]
        assert isinstance(first, dict) and first["total_excl_vat"] == "2468.20"
        kept = first["lines"][1]["id"]
        out = c.write_many(
            "orders",
            [
                UpdateOp(first["id"], {"lines": [{"id": kept, "quantity": "4", "unit_price": "349"}]}, 1),
                CreateOp({**order, "order_number": "W-2"}, "o-2"),
                CreateOp(order, "o-1"),
            ],
        )  # fmt: skip
        assert c.requests_by_endpoint["POST /orders/batch"] == 2
    changed, second, replay = out
    assert isinstance(changed, dict) and [x["id"] for x in changed["lines"]] == [kept]
    assert changed["total_excl_vat"] == "1326.20"
    assert isinstance(second, dict) and second["order_number"] == "W-2"
    assert isinstance(replay, dict) and replay["id"] == first["id"]


@pytest.mark.parametrize("mode", MODES)
def test_lost_answers_and_5xx_are_retried_without_duplicates(
    shop: RunningServer, mode: str
) -> None:
    """The shop does a write and its answer is lost (or answers 500/503 before doing it);
    the whole batch is sent again: creates replay by key, and updates whose If-Match
    then fails are found already applied."""
    offer(shop, mode)
    with client(shop) as c:
        made = c.write_many("customers", customers(30, "U"))
    faults(shop, lost_answer_rate=0.4, error_rate=0.2, seed=3)
    with client(shop, max_retries=20, max_batch_items=10) as c:
        ops: list[WriteOp] = customers(30, "L")
        ops += [
            UpdateOp(r["id"], {"notes": "once"}, if_match=1) for r in made if isinstance(r, dict)
        ]
        out = c.write_many("customers", ops)
        assert c.retries > 0
        checked = c.requests_by_endpoint["GET /customers/{id}"]  # 412 after a lost answer
    faults(shop)
    assert checked > 0 or mode == "single"
    assert [type(o).__name__ for o in out] == ["dict"] * 60
    with client(shop) as c:
        listed = [i for p in c.iter_changes("customers", None) for i in p.items]
    assert len(listed) == 60
    assert sorted(r["version"] for r in listed) == [1] * 30 + [2] * 30


def test_unreachable_or_refused_marks_every_op(shop: RunningServer) -> None:
    with client(shop, token="not-the-token") as c:
        out = c.write_many("customers", customers(3))
    assert [type(o) for o in out] == [WebshopAuthError] * 3
    assert len({id(o) for o in out}) == 3  # one exception object each
    with client(shop, max_batch_items=2) as c:
        assert c.batch_size() == 2
        faults(shop, error_rate=1.0)
        with pytest.raises(WebshopUnavailable):
            c.count("customers")
        out = c.write_many("customers", customers(5))
    faults(shop)
    assert [type(o) for o in out] == [WebshopUnavailable] * 5
    with client(shop) as c:
        assert c.count("customers") == 0


def test_capabilities_are_read_once_and_absent_means_single_requests(shop: RunningServer) -> None:
    offer(shop, "batch", capabilities=False)
    with client(shop) as c:
        assert c.capabilities() == {} and c.batch_size() is None
        for _ in range(3):
            c.write_many("products", [CreateOp({"sku": key(), "name": "P", "unit_price": "1",
                                                "currency": "DKK"}, key())])  # fmt: skip
        assert c.requests_by_endpoint["GET /capabilities"] == 1
        assert c.requests_by_endpoint["POST /products"] == 3
        assert c.write_many("products", []) == []
    offer(shop, "batch", max_items=7)
    with client(shop, max_batch_items=100) as c:
        assert c.capabilities() == {"batch": {"max_items": 7}} and c.batch_size() == 7
        c.write_many("customers", customers(15))
        assert c.requests_by_endpoint["POST /customers/batch"] == 3


def test_a_shop_that_withdraws_batches_is_written_singly(shop: RunningServer) -> None:
    with client(shop, max_batch_items=5) as c:
        assert c.batch_size() == 5
        offer(shop, "single")  # e.g. the shop was rolled back to an older version
        out = c.write_many("customers", customers(12))
        assert all(isinstance(o, dict) for o in out)
        assert c.batch_size() is None
        assert c.requests_by_endpoint["POST /customers/batch"] == 1  # answered 404 once
        assert c.requests_by_endpoint["POST /customers"] == 12


def test_bad_arguments_are_refused_before_sending(shop: RunningServer) -> None:
    with client(shop) as c:
        with pytest.raises(ValueError, match="collection"):
            c.write_many("invoices", [])
        with pytest.raises(ValueError, match="idempotency_key"):
            c.write_many("customers", [CreateOp({"name": "x"}, "with space")])
        with pytest.raises(ValueError, match="record id"):
            c.write_many("customers", [UpdateOp("a/b", {})])
        assert c.requests_made == 0


def test_batches_are_cut_by_size_and_413_halves_them() -> None:
    """A shop behind a proxy with a body limit answers 413: the batch is split (a mock
    transport: the reference server has no such limit)."""
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/capabilities":
            return httpx.Response(200, json={"batch": {"max_items": 100}})
        items = json.loads(request.content)["items"]
        sizes.append(len(items))
        if len(request.content) > 1500:
            return httpx.Response(413, json={"status": 413, "title": "Payload too large"})
        results = [{"status": 201, "record": {"id": f"cus_{i['idempotency_key']}"}} for i in items]
        return httpx.Response(200, json={"results": results})

    transport = httpx.MockTransport(handler)
    with WebshopClient("http://shop.test", "t", transport=transport, max_batch_bytes=4000) as c:
        ops = [CreateOp({"name": f"Kunde {n:03d}"}, f"k{n:03d}") for n in range(60)]
        out = c.write_many("customers", ops)
    assert [o["id"] for o in out if isinstance(o, dict)] == [f"cus_k{n:03d}" for n in range(60)]
    assert sizes[0] < 60  # cut by bytes before sending: not all 60 in one request
    assert sizes[1] == sizes[0] // 2  # refused with 413: sent again in halves


def test_a_malformed_batch_answer_fails_each_op() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/capabilities":
            return httpx.Response(200, json={"batch": {"max_items": 10}})
        return httpx.Response(200, json={"results": [{"status": 201, "record": {"id": "x"}}]})

    with WebshopClient("http://shop.test", "t", transport=httpx.MockTransport(handler)) as c:
        out = c.write_many(
            "customers", [CreateOp({"name": "a"}, "a"), CreateOp({"name": "b"}, "b")]
        )
    assert all(isinstance(o, WebshopError) and "1 results for 2 items" in str(o) for o in out)


@pytest.mark.parametrize("mode", MODES)
def test_a_record_no_request_can_carry_fails_alone(shop: RunningServer, mode: str) -> None:
    offer(shop, mode)
    with client(shop) as c:
        a = c.create("customers", {"name": "A"}, key())
        ops: list[WriteOp] = [
            CreateOp({"name": "fine"}, key()),
            CreateOp({"name": "bad \ud83d"}, key()),
            UpdateOp(a["id"], {"billing_address": {"city": "x\udc00"}, "phone": "1"}),
            UpdateOp(a["id"], {"phone": "2"}),
        ]
        out = c.write_many("customers", ops)
    assert [type(o).__name__ for o in out] == [
        "dict", "WebshopValidationError", "WebshopValidationError", "dict"
    ]  # fmt: skip
    assert [e.field for e in out[1].errors] == ["name"]  # type: ignore[union-attr]
    assert [e.field for e in out[2].errors] == ["billing_address.city"]  # type: ignore[union-attr]
    assert "not sent" in str(out[1]) and isinstance(out[3], dict) and out[3]["version"] == 2


def test_a_batch_refused_whole_is_written_op_by_op() -> None:
    """E.g. the shop lowered max_items after the client read it: a 422 for the batch says
    nothing about the records, so each is sent alone (mock transport)."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/capabilities":
            return httpx.Response(200, json={"batch": {"max_items": 100}})
        if request.url.path == "/customers/batch":
            problem = {"status": 422, "errors": [{"field": "items", "message": "at most 2"}]}
            return httpx.Response(422, json=problem)
        name = json.loads(request.content)["name"]
        return httpx.Response(201, json={"id": f"cus_{name}"})

    with WebshopClient("http://shop.test", "t", transport=httpx.MockTransport(handler)) as c:
        out = c.write_many("customers", [CreateOp({"name": n}, n) for n in "abc"])
    assert [o["id"] for o in out if isinstance(o, dict)] == ["cus_a", "cus_b", "cus_c"]
    assert sorted(paths) == ["/capabilities", "/customers", "/customers", "/customers",
                             "/customers/batch"]  # fmt: skip


def test_endpoint_keys_keep_batches_apart() -> None:
    assert endpoint_key("POST", "/customers/batch") == "POST /customers/batch"
    assert endpoint_key("PATCH", "/customers/cus_1") == "PATCH /customers/{id}"
    assert endpoint_key("GET", "/customers/batch") == "GET /customers/{id}"
