"""Behavioural checks: the contract rules a schema cannot express.

Each check is a function of the ``Shop`` that returns a one-line summary when the rule
holds and raises ``CheckFailed`` with the reason (what was sent, what came back) when it
does not. They create their own test data, tagged with the run id, and never rely on
what else is in the shop.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import timedelta, timezone
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlsplit

from shopsync.contract.signature import DELIVERY_HEADER, SIGNATURE_HEADER, verify

from .receiver import Receiver
from .shop import (
    COLLECTIONS,
    PROBLEM_JSON,
    SINGULAR,
    CheckFailed,
    CheckSkipped,
    Shop,
    decimal,
    expect,
    iso,
    later,
    timestamp,
)

Check = Callable[[Shop], str]
MONEY_FIELDS = ("unit_price", "list_price", "cost_price")


# ---------------------------------------------------------------------- helpers
def _problem(shop: Shop, response: Any, status: int) -> dict[str, Any]:
    """The problem+json body of a response that must have ``status``."""
    body = shop.status(response, status)
    media = response.headers.get("content-type", "").split(";")[0].strip()
    expect(
        media == PROBLEM_JSON,
        f"a {status} must be {PROBLEM_JSON}, not {media or 'untyped'}: {shop.describe(response)}",
    )
    expect(
        isinstance(body, dict)
        and isinstance(body.get("type"), str)
        and isinstance(body.get("title"), str)
        and body.get("status") == status,
        f"a problem needs type, title and status {status}: {shop.describe(response)}",
    )
    return dict(body)


def _fields(shop: Shop, response: Any, status: int = 422) -> set[str]:
    body = _problem(shop, response, status)
    errors = body.get("errors")
    expect(
        isinstance(errors, list)
        and all(isinstance(e, dict) and {"field", "message"} <= e.keys() for e in errors),
        f"a {status} needs errors: [{{field, message}}]: {shop.describe(response)}",
    )
    return {str(e["field"]) for e in cast(list[dict[str, Any]], errors)}


def _names(shop: Shop, response: Any, wanted: set[str], status: int = 422) -> None:
    named = _fields(shop, response, status)
    missing = wanted - named
    expect(
        not missing,
        f"the {status} does not name {', '.join(sorted(missing))} (it names "
        f"{', '.join(sorted(named)) or 'nothing'}): {shop.describe(response)}",
    )


def _same(sent: Any, got: Any) -> bool:
    """Equal as the contract means it: decimals by value, objects member by member."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(_same(v, got.get(k)) for k, v in sent.items())
    if isinstance(sent, str) and isinstance(got, str) and sent != got:
        try:
            return Decimal(sent) == Decimal(got)
        except ArithmeticError:
            return False
    return bool(sent == got)


def _echoes(shop: Shop, what: str, sent: dict[str, Any], record: dict[str, Any]) -> None:
    for key, value in sent.items():
        if key == "lines":
            continue
        expect(
            _same(value, record.get(key)),
            f"{what}: {key} was sent as {value!r} but came back as {record.get(key)!r}",
        )


def _meta(what: str, record: dict[str, Any], version: int) -> None:
    expect(
        record.get("version") == version,
        f"{what}: version should be {version}, is {record.get('version')!r}",
    )
    created = timestamp(record.get("created_at"), f"{what}: created_at")
    updated = timestamp(record.get("updated_at"), f"{what}: updated_at")
    expect(updated >= created, f"{what}: updated_at is before created_at")


def _etag(shop: Shop, response: Any, version: int, what: str) -> None:
    tag = response.headers.get("etag")
    expect(
        tag in (f'"{version}"', f'W/"{version}"'),
        f'{what}: ETag should be "{version}" (the version), is {tag!r}',
    )


def _customer_order(shop: Shop) -> tuple[dict[str, Any], dict[str, Any]]:
    customer = shop.create("customers", shop.customer_body())
    return customer, shop.create("orders", shop.order_body(customer["id"]))


# ---------------------------------------------------------------------- checks
def check_reachable(shop: Shop) -> str:
    response = shop.request("GET", "/customers", params={"limit": "1"})
    if response.status_code == 401:
        raise CheckFailed(f"the token is refused: {shop.describe(response)}")
    page = shop.status(response, 200)
    expect(
        isinstance(page, dict) and isinstance(page.get("items"), list) and "next_cursor" in page,
        f"GET /customers must answer {{items, next_cursor}}: {shop.describe(response)}",
    )
    return f"{shop.url} answers GET /customers with a page"


def check_auth(shop: Shop) -> str:
    count = 0
    for collection in COLLECTIONS:
        for headers, auth, what in (
            ({}, False, "without a token"),
            ({"Authorization": f"Bearer wrong-{shop.run}"}, True, "with a wrong token"),
        ):
            for method in ("GET", "POST"):
                body: dict[str, Any] | None = {} if method == "POST" else None
                response = shop.request(
                    method, f"/{collection}", headers=headers, auth=auth, body=body
                )
                expect(
                    response.status_code == 401,
                    f"{method} /{collection} {what} must be 401: {shop.describe(response)}",
                )
                _problem(shop, response, 401)
                count += 1
    return f"{count} requests without or with a wrong token got a 401 problem"


def check_customers(shop: Shop) -> str:
    sent = shop.customer_body()
    response = shop.request("POST", "/customers", body=sent)
    created = shop.status(response, 201)
    expect(isinstance(created, dict) and isinstance(created.get("id"), str), "no id on create")
    shop.remember("customers", created["id"])
    _meta("created customer", created, 1)
    _echoes(shop, "created customer", sent, created)
    cid = created["id"]
    got = shop.status(shop.get("customers", cid), 200)
    expect(got == created, f"GET differs from the create answer: {got!r} vs {created!r}")
    patch = {"phone": "+45 11 22 33 44", "notes": None, "billing_address": {"city": "Odense C"}}
    response = shop.patch("customers", cid, patch)
    changed = shop.status(response, 200)
    _meta("patched customer", changed, 2)
    expect(
        timestamp(changed["updated_at"], "updated_at")
        > timestamp(created["updated_at"], "updated_at"),
        "a PATCH did not advance updated_at",
    )
    expect(changed["phone"] == patch["phone"], "PATCH did not set phone")
    expect(changed["notes"] is None, "PATCH with notes: null did not clear notes")
    address = changed.get("billing_address") or {}
    expect(
        address.get("city") == "Odense C" and address.get("line1") == "Søndergade 12",
        f"a nested merge patch must change city and keep line1, got {address!r}",
    )
    same = shop.status(shop.patch("customers", cid, {"phone": patch["phone"]}), 200)
    expect(
        same.get("version") == 2 and same.get("updated_at") == changed["updated_at"],
        "a PATCH that changes nothing must keep version and updated_at "
        f"(version {same.get('version')}, updated_at {same.get('updated_at')})",
    )
    null_name = shop.patch("customers", cid, {"name": None})
    _names(shop, null_name, {"name"})
    shop.status(shop.delete("customers", cid), 204)
    _problem(shop, shop.get("customers", cid), 410)
    again = shop.delete("customers", cid)
    expect(again.status_code == 204, f"deleting twice must be 204: {shop.describe(again)}")
    _problem(shop, shop.get("customers", f"no-such-customer-{shop.run}"), 404)
    return "create 201 · GET · merge PATCH (null, nested, no-op) · DELETE 204 · 410 · 404"


def check_products(shop: Shop) -> str:
    sent = shop.product_body(unit_price="1249.5")
    created = shop.create("products", sent)
    _meta("created product", created, 1)
    _echoes(shop, "created product", sent, created)
    for key in (*MONEY_FIELDS, "vat_rate"):
        decimal(created.get(key), f"product {key}")
    pid = created["id"]
    expect(shop.status(shop.get("products", pid), 200) == created, "GET differs from create")
    changed = shop.status(
        shop.patch("products", pid, {"unit_price": "1199.00", "stock_status": "backorder"}), 200
    )
    _meta("patched product", changed, 2)
    expect(decimal(changed["unit_price"], "unit_price") == Decimal("1199"), "price not changed")
    expect(changed["stock_status"] == "backorder", "stock_status not changed")
    expect(changed["sku"] == created["sku"], "a PATCH without sku changed the sku")
    shop.status(shop.delete("products", pid), 204)
    _problem(shop, shop.get("products", pid), 410)
    _problem(shop, shop.get("products", f"no-such-product-{shop.run}"), 404)
    return "create 201 · GET · PATCH · DELETE 204 · 410 · 404, decimals as strings"


def check_orders(shop: Shop) -> str:
    customer = shop.create("customers", shop.customer_body())
    product = shop.create("products", shop.product_body())
    sent = shop.order_body(customer["id"])
    sent["lines"][0]["product_id"] = product["id"]
    order = shop.create("orders", sent)
    _meta("created order", order, 1)
    _echoes(shop, "created order", sent, order)
    lines = order.get("lines")
    expect(isinstance(lines, list) and len(lines) == 2, f"the order has lines {lines!r}")
    lines = cast(list[dict[str, Any]], lines)
    for index, (line_sent, line) in enumerate(zip(sent["lines"], lines, strict=True)):
        expect(isinstance(line.get("id"), str), f"lines[{index}] has no id")
        _echoes(shop, f"lines[{index}]", line_sent, line)
    expect(lines[0].get("position") == 1 and lines[1].get("position") == 2, "positions not 1, 2")
    oid = order["id"]
    expect(shop.status(shop.get("orders", oid), 200) == order, "GET differs from create")
    changed = shop.status(shop.patch("orders", oid, {"status": "confirmed"}), 200)
    _meta("patched order", changed, 2)
    expect(changed["lines"] == order["lines"], "a PATCH without lines changed the lines")
    shop.status(shop.delete("orders", oid), 204)
    _problem(shop, shop.get("orders", oid), 410)
    _problem(shop, shop.get("orders", f"no-such-order-{shop.run}"), 404)
    return "create 201 with lines · GET · PATCH · DELETE 204 · 410 · 404"


def check_totals(shop: Shop) -> str:
    customer = shop.create("customers", shop.customer_body())
    order = shop.create("orders", shop.order_body(customer["id"]))
    total = decimal(order.get("total_excl_vat"), "total_excl_vat")
    expect(
        total == Decimal("2468.20"),
        f"(2 × 1249.50 × 0.90 + 349.00) × 0.95 = 2468.195 must round half up to 2468.20, "
        f"got {order.get('total_excl_vat')!r}",
    )
    half = shop.create(
        "orders",
        shop.order_body(
            customer["id"],
            discount_percent="50",
            lines=[{"quantity": "3", "unit_price": "0.35"}],
        ),
    )
    expect(
        decimal(half["total_excl_vat"], "total_excl_vat") == Decimal("0.53"),
        f"3 × 0.35 × 0.50 = 0.525 must round half up to 0.53, got {half['total_excl_vat']!r}",
    )
    patched = shop.status(
        shop.patch(
            "orders",
            order["id"],
            {"lines": [{"quantity": "0.125", "unit_price": "8.00", "discount_percent": "12.5"}]},
        ),
        200,
    )
    expect(
        decimal(patched["total_excl_vat"], "total_excl_vat") == Decimal("0.83"),
        "after PATCH lines: 0.125 × 8.00 × 0.875 × 0.95 = 0.83125 must give 0.83, "
        f"got {patched['total_excl_vat']!r}",
    )
    return "2468.20, 0.53 (half up), recomputed after PATCH lines"


def check_line_ids(shop: Shop) -> str:
    customer, order = _customer_order(shop)
    first, second = order["lines"]
    body = {
        "lines": [
            {"id": second["id"], "sku": "LAMP", "quantity": "4", "unit_price": "349.00"},
            {"sku": "NEW", "quantity": "1", "unit_price": "10.00"},
        ]
    }
    changed = shop.status(shop.patch("orders", order["id"], body), 200)
    lines = changed["lines"]
    expect(len(lines) == 2, f"PATCH lines must replace the list: got {len(lines)} lines")
    expect(lines[0]["id"] == second["id"], "a line sent back with its id must keep that id")
    expect(decimal(lines[0]["quantity"], "quantity") == 4, "the kept line's quantity not changed")
    expect(
        isinstance(lines[1].get("id"), str) and lines[1]["id"] not in (first["id"], second["id"]),
        "a line sent without id must get a new id",
    )
    other = shop.create("orders", shop.order_body(customer["id"]))
    foreign = {"lines": [{"id": other["lines"][0]["id"], "quantity": "1", "unit_price": "1"}]}
    _names(shop, shop.patch("orders", order["id"], foreign), {"lines[0].id"})
    return "kept id, new id, removed line gone; another order's line id refused (422)"


def check_decimals(shop: Shop) -> str:
    as_number = shop.request("POST", "/products", body=shop.product_body(unit_price=12.5))
    _names(shop, as_number, {"unit_price"})
    too_precise = shop.request("POST", "/products", body=shop.product_body(unit_price="1.234"))
    _names(shop, too_precise, {"unit_price"})
    customer = shop.create("customers", shop.customer_body())
    line_number = shop.request(
        "POST",
        "/orders",
        body=shop.order_body(customer["id"], lines=[{"quantity": 2, "unit_price": "1.00"}]),
    )
    _names(shop, line_number, {"lines[0].quantity"})
    order = shop.create("orders", shop.order_body(customer["id"]))
    for key in ("discount_percent", "total_excl_vat"):
        decimal(order.get(key), f"order {key}")
    for line in order["lines"]:
        for key in ("quantity", "unit_price", "discount_percent"):
            decimal(line.get(key), f"line {key}")
    return "JSON numbers and excess decimals refused (422); all decimals answered as strings"


def check_validation(shop: Shop) -> str:
    bad_customer = {
        "name": "",
        "email": "not-an-email",
        "billing_address": {"country": "XX"},
        "surprise": 1,
    }
    _names(
        shop,
        shop.request("POST", "/customers", body=bad_customer),
        {"name", "email", "billing_address.country", "surprise"},
    )
    bad_product = shop.product_body(
        sku="", unit_price="-1", vat_rate="101", stock_status="sold", currency="EURO"
    )
    _names(
        shop,
        shop.request("POST", "/products", body=bad_product),
        {"sku", "unit_price", "vat_rate", "stock_status", "currency"},
    )
    bad_order = shop.order_body(
        f"no-such-customer-{shop.run}",
        lines=[{"quantity": "1", "unit_price": "1"}, {"quantity": "-1", "unit_price": "x"}],
    )
    _names(
        shop,
        shop.request("POST", "/orders", body=bad_order),
        {"customer_id", "lines[1].quantity", "lines[1].unit_price"},
    )
    _names(
        shop,
        shop.request("POST", "/customers", body=shop.customer_body(version=7)),
        {"version"},
    )
    bad_json = shop.request(
        "POST", "/customers", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    _problem(shop, bad_json, 400)
    return (
        "422 names every bad field (incl. nested, list items, unknown, read-only); 400 for bad JSON"
    )


def check_unique(shop: Shop) -> str:
    customer = shop.create("customers", shop.customer_body())
    cases = (
        ("products", "sku", shop.product_body()),
        ("customers", "customer_number", shop.customer_body()),
        ("orders", "order_number", shop.order_body(customer["id"])),
    )
    for collection, field, body in cases:
        first = shop.create(collection, body)
        duplicate = shop.request("POST", f"/{collection}", body=body)
        if duplicate.status_code == 201:
            shop.remember(collection, shop.json(duplicate)["id"])
        _names(shop, duplicate, {field}, status=409)
        shop.status(shop.delete(collection, first["id"]), 204)
        shop.create(collection, body)
    return "409 naming sku, customer_number, order_number; freed again by a delete"


def check_idempotency(shop: Shop) -> str:
    customer = shop.create("customers", shop.customer_body())
    for collection, field, body in (
        ("customers", "customer_number", shop.customer_body()),
        ("products", "sku", shop.product_body()),
        ("orders", "order_number", shop.order_body(customer["id"])),
    ):
        name = SINGULAR[collection]
        key = f"shopsync-check-{shop.unique('key')}"
        first = shop.create(collection, body, **{"Idempotency-Key": key})
        retry = shop.request("POST", f"/{collection}", body=body, headers={"Idempotency-Key": key})
        again = shop.json(retry) if retry.content else None
        if (
            retry.status_code == 201
            and isinstance(again, dict)
            and isinstance(again.get("id"), str)
        ):
            shop.remember(collection, again["id"])
        expect(
            retry.status_code == 201 and isinstance(again, dict) and again.get("id") == first["id"],
            f"a repeated POST /{collection} with the same Idempotency-Key must return the first "
            f"answer (201, {name} {first['id']}) instead of creating again; got "
            + shop.describe(retry),
        )
        since = timestamp(first["updated_at"], "updated_at")
        copies = [r for r in shop.changes_since(collection, since) if r.get(field) == body[field]]
        expect(
            len(copies) == 1,
            f"after a retried POST /{collection}, {len(copies)} {name}s have {field} "
            f"{body[field]} (expected 1)",
        )
        changed = dict(body, **{field: shop.unique("other")})
        reused = shop.request(
            "POST", f"/{collection}", body=changed, headers={"Idempotency-Key": key}
        )
        if reused.status_code == 201:
            shop.remember(collection, shop.json(reused)["id"])
        _names(shop, reused, {"Idempotency-Key"})
    return "same key + same body → same record, once; same key + other body → 422"


def check_if_match(shop: Shop) -> str:
    customer = shop.create("customers", shop.customer_body())
    cid = customer["id"]
    v2 = shop.status(
        shop.patch("customers", cid, {"name": "Version 2"}, **{"If-Match": '"1"'}), 200
    )
    expect(v2.get("version") == 2, "a PATCH with the current version must apply")
    stale = shop.patch("customers", cid, {"name": "Stale"}, **{"If-Match": '"1"'})
    _problem(shop, stale, 412)
    now = shop.status(shop.get("customers", cid), 200)
    expect(
        now.get("name") == "Version 2" and now.get("version") == 2,
        f"a 412 PATCH must change nothing, but the customer is now {now.get('name')!r} "
        f"version {now.get('version')}",
    )
    bare = shop.status(
        shop.patch("customers", cid, {"name": "Version 3"}, **{"If-Match": "2"}), 200
    )
    expect(bare.get("version") == 3, "If-Match: 2 (without quotes) must be accepted")
    _problem(shop, shop.delete("customers", cid, **{"If-Match": '"2"'}), 412)
    shop.status(shop.get("customers", cid), 200)
    shop.status(shop.delete("customers", cid, **{"If-Match": '"3"'}), 204)
    return "current version applies; stale version → 412 and nothing changes (PATCH, DELETE)"


def check_etag(shop: Shop) -> str:
    response = shop.request("POST", "/customers", body=shop.customer_body())
    created = shop.status(response, 201)
    shop.remember("customers", created["id"])
    _etag(shop, response, 1, "POST")
    _etag(shop, shop.get("customers", created["id"]), 1, "GET")
    _etag(shop, shop.patch("customers", created["id"], {"phone": "1"}), 2, "PATCH")
    return 'ETag "<version>" on POST, GET and PATCH'


def check_tombstones(shop: Shop) -> str:
    customer, order = _customer_order(shop)
    product = shop.create("products", shop.product_body())
    for collection, record in (("orders", order), ("products", product), ("customers", customer)):
        shop.status(shop.delete(collection, record["id"]), 204)
        since = timestamp(record["updated_at"], "updated_at")
        listed = [
            r for r in shop.changes_since(collection, since, include_deleted=True)
            if r.get("id") == record["id"]
        ]  # fmt: skip
        expect(
            len(listed) == 1,
            f"a deleted {SINGULAR[collection]} must list once with include_deleted=true, "
            f"found {len(listed)}",
        )
        stone = listed[0]
        expect(
            stone.get("deleted") is True,
            f"the tombstone must have deleted: true, got {json.dumps(stone)[:200]}",
        )
        expect(
            timestamp(stone.get("updated_at"), "tombstone updated_at") > since,
            "a tombstone's updated_at must be the time of the delete",
        )
        hidden = [r for r in shop.changes_since(collection, since) if r.get("id") == record["id"]]
        expect(not hidden, f"a deleted {SINGULAR[collection]} is listed without include_deleted")
    return "deleted records list as {id, deleted: true, updated_at} only with include_deleted"


def check_updated_since(shop: Shop) -> str:
    customer = shop.create("customers", shop.customer_body())
    at = timestamp(customer["updated_at"], "updated_at")
    first_page = next(shop.pages("customers", {"updated_since": iso(at), "limit": "1000"}))
    expect(
        customer["id"] in [r.get("id") for r in first_page],
        "updated_since equal to a record's updated_at must include it (inclusive)",
    )
    shifted = at.astimezone(timezone(timedelta(hours=2)))
    page = next(shop.pages("customers", {"updated_since": iso(shifted), "limit": "1000"}))
    expect(
        customer["id"] in [r.get("id") for r in page],
        f"updated_since {iso(shifted)} (same instant, +02:00) must include the record",
    )
    after = [r.get("id") for r in shop.changes_since("customers", later(at))]
    expect(customer["id"] not in after, "updated_since after a record's updated_at must skip it")
    return "inclusive, offsets honoured, later instants exclude"


def check_listing_rules(shop: Shop) -> str:
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"include_deleted": "maybe"}, "include_deleted"),
        ({"cursor": "not-a-cursor-!"}, "cursor"),
        ({"updatedSince": "2025-01-01T00:00:00Z"}, "updatedSince"),
    ):
        _names(shop, shop.request("GET", "/customers", params=params), {field})
    made = [shop.create("customers", shop.customer_body()) for _ in range(3)]
    since = timestamp(made[0]["updated_at"], "updated_at")
    page = next(shop.pages("customers", {"updated_since": iso(since), "limit": "2"}))
    expect(len(page) <= 2, f"limit=2 gave a page of {len(page)}")
    items = shop.changes_since("customers", since)
    keys = [(timestamp(r.get("updated_at"), "updated_at"), str(r.get("id"))) for r in items]
    expect(keys == sorted(keys), "a listing must be ordered by (updated_at, id)")
    return "bad limit/updated_since/include_deleted/cursor/unknown parameter → 422; limit, order"


def check_cursor_stability(shop: Shop) -> str:
    made = [shop.create("customers", shop.customer_body()) for _ in range(7)]
    ours = {r["id"] for r in made}
    since = timestamp(made[0]["updated_at"], "updated_at")
    params = {"updated_since": iso(since), "limit": "3", "include_deleted": "true"}
    seen: list[dict[str, Any]] = []
    touched_seen: str | None = None
    touched_unseen: str | None = None
    deleted: str | None = None
    added: str | None = None
    for number, page in enumerate(shop.pages("customers", params), start=1):
        seen.extend(page)
        if number == 1:
            ids_seen = {r.get("id") for r in seen}
            touched_seen = next(i for i in (r["id"] for r in made) if i in ids_seen)
            unseen = [r["id"] for r in made if r["id"] not in ids_seen]
            expect(len(unseen) >= 2, "limit=3 returned more than 3 items on the first page")
            touched_unseen, deleted = unseen[0], unseen[-1]
            shop.status(shop.patch("customers", touched_seen, {"phone": "moved 1"}), 200)
            shop.status(shop.patch("customers", touched_unseen, {"phone": "moved 2"}), 200)
            shop.status(shop.delete("customers", deleted), 204)
            added = shop.create("customers", shop.customer_body())["id"]
            ours.add(added)
    ids = [r.get("id") for r in seen]
    lost = ours - set(ids)
    expect(not lost, f"records changed or added while paging were lost: {', '.join(sorted(lost))}")
    expect(
        ids.count(touched_seen) == 2,
        f"a record updated after it was listed must be listed again later "
        f"(seen {ids.count(touched_seen)}×)",
    )
    expect(ids.count(touched_unseen) == 1, "a record updated before it was reached must list once")
    last = {r.get("id"): r for r in seen}
    expect(
        last[deleted].get("deleted") is True,
        "a record deleted while paging must list as a tombstone",
    )
    expect(last[touched_seen].get("phone") == "moved 1", "the later listing must show the update")
    keys = [(timestamp(r.get("updated_at"), "updated_at"), str(r.get("id"))) for r in seen]
    backwards = [(a, b) for a, b in itertools.pairwise(keys) if not a < b]
    expect(
        not backwards,
        "pages must continue strictly after the cursor in (updated_at, id) order; "
        + (f"{backwards[0][1][1]} ({iso(backwards[0][1][0])}) came after "
           f"{backwards[0][0][1]} ({iso(backwards[0][0][0])})" if backwards else ""),
    )  # fmt: skip
    return (
        "7 records, limit 3, updates/delete/create between pages: none lost, moved ones seen again"
    )


def check_problem_json(shop: Shop) -> str:
    customer = shop.create("customers", shop.customer_body())
    shop.status(shop.delete("customers", customer["id"]), 204)
    fresh = shop.create("customers", shop.customer_body())
    probes = (
        (shop.request("GET", "/customers", auth=False), 401),
        (shop.request("POST", "/customers", content=b"[]"), 400),
        (shop.get("customers", f"no-such-customer-{shop.run}"), 404),
        (shop.get("customers", customer["id"]), 410),
        (shop.patch("customers", fresh["id"], {"name": "x"}, **{"If-Match": '"99"'}), 412),
        (shop.request("POST", "/customers", body={}), 422),
        (shop.request("POST", "/customers", body=shop.customer_body(customer_number=fresh["customer_number"])), 409),
    )  # fmt: skip
    for response, status in probes:
        _problem(shop, response, status)
    return (
        "401, 400, 404, 410, 412, 422 and 409 are application/problem+json with type, title, status"
    )


def check_webhooks(shop: Shop) -> str:
    probe = shop.request("GET", "/webhooks")
    if probe.status_code == 404:
        raise CheckSkipped("GET /webhooks answers 404: no webhooks (optional; shopsync polls)")
    shop.status(probe, 200)
    host = urlsplit(shop.url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise CheckSkipped(f"the check's receiver listens on loopback only, {host} cannot reach it")
    secret = f"shopsync-check-secret-{shop.run}"
    with Receiver(fail_first=1) as receiver:
        events = ["customer.created", "customer.updated", "customer.deleted"]
        response = shop.request(
            "POST", "/webhooks", body={"url": receiver.url, "events": events, "secret": secret}
        )
        hook = shop.status(response, 201)
        expect(isinstance(hook, dict) and isinstance(hook.get("id"), str), "no webhook id")
        shop.webhooks.append(hook["id"])
        expect(secret not in response.text, "the webhook secret must not be returned")
        listed = shop.request("GET", f"/webhooks/{hook['id']}")
        shop.status(listed, 200)
        expect(secret not in listed.text, "GET /webhooks/{id} must not return the secret")
        customer = shop.create("customers", shop.customer_body())
        shop.status(shop.patch("customers", customer["id"], {"phone": "hook"}), 200)
        shop.status(shop.delete("customers", customer["id"]), 204)

        def mine(deliveries: list[Any]) -> list[Any]:
            out = []
            for d in deliveries:
                try:
                    body = json.loads(d.body)
                except ValueError:
                    continue
                if isinstance(body, dict) and body.get("id") == customer["id"]:
                    out.append((d, body))
            return out

        def complete(deliveries: list[Any]) -> bool:
            done = {body["event"] for d, body in mine(deliveries) if d.status == 204}
            return set(events) <= done

        arrived = receiver.wait_for(complete, timeout=15)
        got = mine(receiver.deliveries)
        expect(
            arrived,
            "within 15 s the receiver got "
            + (", ".join(f"{b.get('event')}→{d.status}" for d, b in got) or "nothing")
            + f"; expected {', '.join(events)} (the first attempt answered 500, so one retried)",
        )
        for delivery, body in got:
            expect(
                verify(secret, delivery.body, delivery.headers.get(SIGNATURE_HEADER.lower())),
                f"bad {SIGNATURE_HEADER} on {body.get('event')}: "
                f"{delivery.headers.get(SIGNATURE_HEADER.lower())!r}",
            )
            expect(
                {"event", "id", "occurred_at"} <= body.keys(),
                f"a delivery body needs event, id, occurred_at: {body!r}",
            )
            timestamp(body["occurred_at"], "occurred_at")
        first = got[0][0]
        retried = [d for d, _ in got if d.body == first.body]
        expect(
            first.status == 500 and len(retried) >= 2,
            "the delivery refused with 500 was not retried with the same body",
        )
        ids = {d.headers.get(DELIVERY_HEADER.lower()) for d in retried}
        expect(len(ids) == 1, f"a retry must keep {DELIVERY_HEADER}: {ids!r}")
        shop.status(shop.request("DELETE", f"/webhooks/{hook['id']}"), 204)
        shop.webhooks.remove(hook["id"])
        _problem(shop, shop.request("GET", f"/webhooks/{hook['id']}"), 404)
    return "created/updated/deleted delivered, signatures verify, a refused delivery is retried"


# ---------------------------------------------------------------------- batch (optional)
NOT_OFFERED = "not offered (optional: shopsync then writes one record per request)"
MAX_PROBED_ITEMS = 5000
"""A batch one item over a larger ``max_items`` is not sent (too heavy for a check)."""


def _batch_limit(shop: Shop) -> int | None:
    """The shop's ``max_items``, or None when it offers no batch (no capabilities: 404)."""
    response = shop.capabilities()
    if response.status_code == 404:
        return None
    document = shop.status(response, 200)
    expect(
        isinstance(document, dict),
        f"GET /capabilities must answer a JSON object: {shop.describe(response)}",
    )
    batch = document.get("batch")
    if batch is None:
        return None
    limit = batch.get("max_items") if isinstance(batch, dict) else None
    expect(
        isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1,
        f"capabilities batch must be {{max_items: <integer ≥ 1>}}: {shop.describe(response)}",
    )
    assert isinstance(limit, int)
    return limit


def _results(shop: Shop, response: Any, count: int) -> list[dict[str, Any]]:
    """The ``results`` of a batch answer: a 200 with one well-formed result per item."""
    body = shop.status(response, 200)
    results = body.get("results") if isinstance(body, dict) else None
    expect(
        isinstance(results, list) and len(results) == count,
        f"a batch of {count} items must answer {{results: [...]}} with {count} results: "
        + shop.describe(response),
    )
    assert isinstance(results, list)
    for index, result in enumerate(results):
        status = result.get("status") if isinstance(result, dict) else None
        if not isinstance(status, int):
            raise CheckFailed(
                f"results[{index}] must be {{status, record | problem}}: {shop.describe(response)}"
            )
        if 200 <= status < 300:
            expect(
                isinstance(result.get("record"), dict),
                f"results[{index}] ({status}) has no record: {shop.describe(response)}",
            )
        else:
            problem = result.get("problem")
            expect(
                isinstance(problem, dict)
                and isinstance(problem.get("type"), str)
                and isinstance(problem.get("title"), str)
                and problem.get("status") == status,
                f"results[{index}] ({status}) needs a problem with type, title and status "
                f"{status}: {shop.describe(response)}",
            )
    return cast(list[dict[str, Any]], results)


def _batch(
    shop: Shop, collection: str, items: list[tuple[str, dict[str, Any], int]], limit: int
) -> list[dict[str, Any]]:
    """Send ``(what, item, expected status)`` in batches of at most ``limit`` items; every
    result must have its expected status, in order. The results."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(items), limit):
        chunk = items[start : start + limit]
        response = shop.batch(collection, [item for _, item, _ in chunk])
        results = _results(shop, response, len(chunk))
        for offset, ((what, _, wanted), result) in enumerate(zip(chunk, results, strict=True)):
            detail = (result.get("problem") or {}).get("detail") or ""
            expect(
                result["status"] == wanted,
                f"items[{offset}] of POST /{collection}/batch ({what}) answered "
                f"{result['status']}, expected {wanted}"
                + (f": {shop.redact(str(detail))[:200]}" if detail else ""),
            )
        out += results
    return out


def _names_in(result: dict[str, Any], wanted: set[str], what: str) -> None:
    errors = result.get("problem", {}).get("errors")
    named = {str(e.get("field")) for e in errors if isinstance(e, dict)} if errors else set()
    missing = wanted - named
    expect(
        not missing,
        f"{what}: the item's {result['status']} does not name {', '.join(sorted(missing))} "
        f"(it names {', '.join(sorted(named)) or 'nothing'})",
    )


def _create(key: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"op": "create", "idempotency_key": key, "body": body}


def _update(record_id: str, patch: dict[str, Any], if_match: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"op": "update", "id": record_id, "patch": patch}
    if if_match is not None:
        item["if_match"] = if_match
    return item


def check_batch_items(shop: Shop) -> str:
    limit = _batch_limit(shop)
    if limit is None:
        return NOT_OFFERED
    single_key = f"shopsync-check-{shop.unique('key')}"
    existing_body = shop.customer_body()
    existing = shop.create("customers", existing_body, **{"Idempotency-Key": single_key})
    eid = existing["id"]
    key = f"shopsync-check-{shop.unique('key')}"
    body = shop.customer_body(name=f"Batch Ærø {shop.run}")
    dup_number = shop.customer_body(customer_number=body["customer_number"])
    bad = {"name": "", "email": "not-an-email", "billing_address": {"country": "XX"}}
    unknown = f"no-such-customer-{shop.run}"
    items = [
        ("create", _create(key, body), 201),
        ("the same key and body again", _create(key, body), 201),
        ("the same key, another body", _create(key, shop.customer_body()), 422),
        ("a customer_number taken by item 0", _create(shop.unique("k"), dup_number), 409),
        ("invalid fields", _create(shop.unique("k"), bad), 422),
        ("update with If-Match 1", _update(eid, {"phone": "+45 99 88 77 66"}, '"1"'), 200),
        ("update with the now stale If-Match 1", _update(eid, {"name": "Stale"}, '"1"'), 412),
        ("update of an unknown id", _update(unknown, {"phone": "1"}), 404),
        ("name: null", _update(eid, {"name": None}), 422),
        ("the key of a single POST, same body", _create(single_key, existing_body), 201),
        ("nested merge patch, If-Match 2", _update(eid, {"billing_address": {"city": "Odense C"}}, "2"), 200),
    ]  # fmt: skip
    results = _batch(shop, "customers", items, limit)
    created = results[0]["record"]
    _meta("a customer created in a batch", created, 1)
    _echoes(shop, "a customer created in a batch", body, created)
    expect(
        results[1]["record"].get("id") == created.get("id"),
        "a repeated idempotency key in a batch must answer the first record "
        f"({created.get('id')}), got {results[1]['record'].get('id')}",
    )
    _names_in(results[2], {"Idempotency-Key"}, "the same key with another body")
    _names_in(results[3], {"customer_number"}, "the taken customer_number")
    _names_in(results[4], {"name", "email", "billing_address.country"}, "the invalid create")
    _names_in(results[8], {"name"}, "name: null")
    expect(
        results[9]["record"].get("id") == eid,
        f"a batch create with the key of an earlier POST must answer that record ({eid}), "
        f"got {results[9]['record'].get('id')}: idempotency keys are shared",
    )
    _meta("the customer updated in a batch", results[5]["record"], 2)
    last = results[10]["record"]
    _meta("the customer updated twice in a batch", last, 3)
    now = shop.status(shop.get("customers", eid), 200)
    address = now.get("billing_address") or {}
    expect(
        now.get("version") == 3
        and now.get("phone") == "+45 99 88 77 66"
        and now.get("name") == existing_body["name"]
        and address.get("city") == "Odense C"
        and address.get("line1") == existing_body["billing_address"]["line1"],
        "after the batch the customer must be at version 3 with the phone and city set and "
        f"the name unchanged (the 412 and 422 items change nothing), got {json.dumps(now)[:300]}",
    )
    writes = (created, results[5]["record"], last)
    times = [timestamp(r.get("updated_at"), "updated_at") for r in writes]
    expect(
        times == sorted(times) and len(set(times)) == 3,
        "the writes of a batch must take increasing updated_at in the order of the items",
    )
    since = timestamp(existing["updated_at"], "updated_at")
    listed = shop.changes_since("customers", since)
    copies = [r for r in listed if r.get("customer_number") == body["customer_number"]]
    expect(len(copies) == 1, f"{len(copies)} customers have item 0's number (expected 1)")
    refused = [r for r in listed if r.get("name") in ("", "Stale")]
    expect(not refused, "a refused item was written anyway")
    return (
        f"max_items {limit}; {len(items)} items in order: 201, replay, 422 key, 409, 422 fields, "
        "200, 412, 404, 422 null, key shared with POST, 200; failures change nothing"
    )


def check_batch_orders(shop: Shop) -> str:
    limit = _batch_limit(shop)
    if limit is None:
        return NOT_OFFERED
    customer = shop.create("customers", shop.customer_body())
    key = f"shopsync-check-{shop.unique('key')}"
    body = shop.order_body(customer["id"])
    number_in_line = shop.order_body(
        customer["id"],
        lines=[{"quantity": "1", "unit_price": "1.00"}, {"quantity": 2, "unit_price": "1.00"}],
    )
    orphan = shop.order_body(f"no-such-customer-{shop.run}")
    first = _batch(
        shop,
        "orders",
        [
            ("an order with two lines", _create(key, body), 201),
            ("lines[1].quantity as a JSON number", _create(shop.unique("k"), number_in_line), 422),
            ("an unknown customer_id", _create(shop.unique("k"), orphan), 422),
        ],
        limit,
    )
    order = first[0]["record"]
    _names_in(first[1], {"lines[1].quantity"}, "a JSON number in a line")
    _names_in(first[2], {"customer_id"}, "an unknown customer")
    lines = order.get("lines")
    expect(
        isinstance(lines, list) and len(lines) == 2 and all(isinstance(x, dict) for x in lines),
        f"an order created in a batch has lines {lines!r}",
    )
    assert isinstance(lines, list)
    expect(
        decimal(order.get("total_excl_vat"), "total_excl_vat") == Decimal("2468.20"),
        f"an order created in a batch must total 2468.20, got {order.get('total_excl_vat')!r}",
    )
    kept = lines[1]["id"]
    patch = {
        "lines": [
            {"id": kept, "sku": "LAMP", "quantity": "4", "unit_price": "349.00"},
            {"sku": "NEW", "quantity": "1", "unit_price": "10.00"},
        ]
    }
    second = _batch(
        shop,
        "orders",
        [
            ("PATCH lines with If-Match 1", _update(order["id"], patch, '"1"'), 200),
            ("the first create again (same key, same body)", _create(key, body), 201),
        ],
        limit,
    )
    changed = second[0]["record"]
    new_lines = changed.get("lines") or []
    expect(
        len(new_lines) == 2 and new_lines[0].get("id") == kept and new_lines[1].get("id") != kept,
        "PATCH lines in a batch must keep the line sent with its id and give the new one a new id",
    )
    expect(
        decimal(changed.get("total_excl_vat"), "total_excl_vat") == Decimal("1335.70"),
        "(4 × 349.00 + 10.00) × 0.95 = 1335.70 after PATCH lines in a batch, got "
        f"{changed.get('total_excl_vat')!r}",
    )
    expect(
        second[1]["record"].get("id") == order["id"],
        "a create repeated in a later batch with the same key must answer the first order",
    )
    product = shop.product_body()
    third = _batch(
        shop,
        "products",
        [
            ("a product", _create(shop.unique("k"), product), 201),
            ("unit_price as a JSON number", _create(shop.unique("k"), shop.product_body(unit_price=12.5)), 422),
        ],
        limit,
    )  # fmt: skip
    _names_in(third[1], {"unit_price"}, "a JSON number for unit_price")
    return (
        "orders with lines (ids kept, total), 422 per line field, replay across batches; products"
    )


def check_batch_refusals(shop: Shop) -> str:
    limit = _batch_limit(shop)
    if limit is None:
        return NOT_OFFERED
    for response, what in (
        (shop.request("GET", "/capabilities", auth=False), "GET /capabilities"),
        (shop.request("POST", "/customers/batch", body={"items": []}, auth=False), "a batch"),
    ):
        expect(
            response.status_code == 401,
            f"{what} without a token must be 401: {shop.describe(response)}",
        )
        _problem(shop, response, 401)
    marker = shop.create("customers", shop.customer_body())
    since = timestamp(marker["updated_at"], "updated_at")
    _names(shop, shop.batch("customers", []), {"items"})
    fine = shop.customer_body()
    upsert = {"op": "upsert", "id": marker["id"], "patch": {"name": "x"}}
    if limit >= 2:  # a good item beside a malformed one is not written either
        _names(
            shop,
            shop.batch("customers", [_create(shop.unique("k"), fine), upsert]),
            {"items[1].op"},
        )
    else:
        _names(shop, shop.batch("customers", [upsert]), {"items[0].op"})
    keyless = {"op": "create", "body": shop.customer_body()}
    _names(shop, shop.batch("customers", [keyless]), {"items[0].idempotency_key"})
    numbers = {fine["customer_number"]}
    detail = "max_items not probed (over 5000)"
    if limit <= MAX_PROBED_ITEMS:
        bodies = [shop.customer_body() for _ in range(limit + 1)]
        numbers |= {b["customer_number"] for b in bodies}
        too_many = shop.batch("customers", [_create(shop.unique("k"), b) for b in bodies])
        expect(
            400 <= too_many.status_code < 500,
            f"a batch of max_items + 1 = {limit + 1} items must be refused whole with a 4xx: "
            + shop.describe(too_many),
        )
        _names(shop, too_many, {"items"}, status=too_many.status_code)
        detail = f"{limit + 1} items (max_items + 1) → {too_many.status_code} naming items"
    written = [
        r for r in shop.changes_since("customers", since) if r.get("customer_number") in numbers
    ]
    expect(
        not written,
        f"{len(written)} customers of a refused batch were written: a refused batch writes nothing",
    )
    return f"401 without a token; empty and malformed batches → 422 naming each item; {detail}; nothing written"


CHECKS: list[tuple[str, Check]] = [
    ("auth: 401 without or with a wrong token", check_auth),
    ("customers: create, read, merge-patch, delete", check_customers),
    ("products: create, read, patch, delete", check_products),
    ("orders: create with lines, read, patch, delete", check_orders),
    ("orders: total_excl_vat computed, half up", check_totals),
    ("orders: PATCH lines keeps ids", check_line_ids),
    ("decimals: strings in, strings out", check_decimals),
    ("validation: 422 names each field", check_validation),
    ("unique values: 409 naming the field", check_unique),
    ("idempotent create (Idempotency-Key)", check_idempotency),
    ("conditional update (If-Match → 412)", check_if_match),
    ("ETag carries the version", check_etag),
    ("tombstones with include_deleted", check_tombstones),
    ("updated_since is inclusive", check_updated_since),
    ("listing parameters and order", check_listing_rules),
    ("cursor paging stable while records change", check_cursor_stability),
    ("errors are problem+json", check_problem_json),
    ("batch: per-item results in order, partial failure (optional)", check_batch_items),
    ("batch: orders with lines, products (optional)", check_batch_orders),
    ("batch: max_items, malformed batches refused whole (optional)", check_batch_refusals),
    ("webhooks: signed, retried (optional)", check_webhooks),
]
