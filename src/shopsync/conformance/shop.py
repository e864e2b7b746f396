"""The server under test as the checks see it: an HTTP client, cleanup, and plain words.

Every check talks to the shop through ``Shop``: it remembers what the checks created
(so the run can delete it afterwards), tags test data with a run id (so unique values
never clash with the shop's own data or a previous run), and turns responses into short
descriptions with the token blanked out — a failure reason is printed, a token never.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

COLLECTIONS = ("customers", "products", "orders")
SINGULAR = {"customers": "customer", "products": "product", "orders": "order"}
PROBLEM_JSON = "application/problem+json"


class CheckFailed(AssertionError):
    """A contract rule the server broke; the message is the reason shown to the user."""


class CheckSkipped(Exception):
    """The check does not apply (e.g. the optional webhooks are not implemented)."""


def expect(condition: bool, reason: str) -> None:
    if not condition:
        raise CheckFailed(reason)


def timestamp(value: Any, what: str) -> datetime:
    """An RFC 3339 timestamp with offset from the server, or a failed check saying why."""
    if not isinstance(value, str):
        raise CheckFailed(f"{what} is {value!r}, not an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CheckFailed(f"{what} {value!r} is not an RFC 3339 date-time") from None
    expect(parsed.tzinfo is not None, f"{what} {value!r} has no UTC offset")
    return parsed


def decimal(value: Any, what: str) -> Decimal:
    expect(isinstance(value, str), f"{what} is {value!r}: decimals must be JSON strings")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CheckFailed(f"{what} {value!r} is not a decimal string") from None


def iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def later(value: datetime) -> datetime:
    return value + timedelta(microseconds=1)


class Shop:
    def __init__(self, url: str, token: str, *, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.run = uuid.uuid4().hex[:10]
        self.client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )
        self.created: list[tuple[str, str]] = []
        self.webhooks: list[str] = []
        self._serial = 0
        self._capabilities: httpx.Response | None = None

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ words
    def redact(self, text: str) -> str:
        """Blank the token wherever it stands on its own (a server might echo it)."""
        if not self.token:
            return text
        return re.sub(rf"(?<![A-Za-z0-9]){re.escape(self.token)}(?![A-Za-z0-9])", "***", text)

    def describe(self, response: httpx.Response) -> str:
        """``POST /customers → 422 {"type": …}`` (body cut short)."""
        body = response.text.strip().replace("\n", " ")
        if len(body) > 300:
            body = body[:300] + " …"
        path = response.request.url.raw_path.decode("ascii", "replace")
        return self.redact(f"{response.request.method} {path} → {response.status_code} {body}")

    def unique(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self.run}-{self._serial}"

    # ------------------------------------------------------------------ HTTP
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
        content: bytes | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if body is not None:
            content = json.dumps(body).encode("utf-8")
            all_headers.setdefault("Content-Type", "application/json")
        request = self.client.build_request(
            method, path, content=content, headers=all_headers, params=params
        )
        if not auth:
            del request.headers["Authorization"]
        try:
            return self.client.send(request)
        except httpx.HTTPError as exc:
            raise CheckFailed(
                self.redact(f"{method} {path}: no answer ({exc.__class__.__name__}: {exc})")
            ) from None

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise CheckFailed(f"the answer is not JSON: {self.describe(response)}") from None

    def status(self, response: httpx.Response, *expected: int) -> Any:
        """The JSON body of a response whose status is one of ``expected``."""
        if response.status_code not in expected:
            wanted = " or ".join(map(str, expected))
            raise CheckFailed(f"expected {wanted}: {self.describe(response)}")
        return self.json(response) if response.content else None

    def create(self, collection: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.request("POST", f"/{collection}", body=body, headers=headers)
        record = self.status(response, 201)
        expect(
            isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"],
            f"a created {SINGULAR[collection]} has no string id: {self.describe(response)}",
        )
        self.remember(collection, record["id"])
        return dict(record)

    def remember(self, collection: str, record_id: str) -> None:
        if (collection, record_id) not in self.created:
            self.created.append((collection, record_id))

    def get(self, collection: str, record_id: str) -> httpx.Response:
        return self.request("GET", f"/{collection}/{record_id}")

    def patch(
        self, collection: str, record_id: str, body: dict[str, Any], **headers: str
    ) -> httpx.Response:
        return self.request(
            "PATCH",
            f"/{collection}/{record_id}",
            body=body,
            headers={"Content-Type": "application/merge-patch+json", **headers},
        )

    def delete(self, collection: str, record_id: str, **headers: str) -> httpx.Response:
        return self.request("DELETE", f"/{collection}/{record_id}", headers=headers)

    def capabilities(self) -> httpx.Response:
        """``GET /capabilities``, asked once per run (the optional features)."""
        if self._capabilities is None:
            self._capabilities = self.request("GET", "/capabilities")
        return self._capabilities

    def batch(self, collection: str, items: list[dict[str, Any]]) -> httpx.Response:
        """``POST /{collection}/batch``; the ids of records it created are remembered."""
        response = self.request("POST", f"/{collection}/batch", body={"items": items})
        try:
            results = response.json().get("results") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            results = None
        for result in results if isinstance(results, list) else []:
            record = result.get("record") if isinstance(result, dict) else None
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                self.remember(collection, record["id"])
        return response

    def pages(
        self, collection: str, params: dict[str, str], max_pages: int = 200
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of a listing, following ``next_cursor``."""
        query = dict(params)
        for _ in range(max_pages):
            response = self.request("GET", f"/{collection}", params=query)
            page = self.status(response, 200)
            expect(
                isinstance(page, dict)
                and isinstance(page.get("items"), list)
                and "next_cursor" in page,
                f"a page must be {{items: [...], next_cursor}}: {self.describe(response)}",
            )
            yield page["items"]
            if page["next_cursor"] is None:
                return
            expect(
                isinstance(page["next_cursor"], str),
                f"next_cursor must be a string or null: {self.describe(response)}",
            )
            query = {**params, "cursor": page["next_cursor"]}
        raise CheckFailed(f"/{collection} still had a next_cursor after {max_pages} pages")

    def changes_since(
        self, collection: str, since: datetime, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        params = {"updated_since": iso(since), "limit": "1000"}
        if include_deleted:
            params["include_deleted"] = "true"
        return [item for page in self.pages(collection, params) for item in page]

    # ------------------------------------------------------------------ test data
    def customer_body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "customer_number": self.unique("CHK"),
            "name": f"Conformance Ærø ApS {self.run}",
            "email": f"check-{self.run}@example.com",
            "phone": "+45 70 20 30 40",
            "vat_number": "DK12345678",
            "website": "https://www.example.com",
            "billing_address": {
                "line1": "Søndergade 12", "line2": "2. sal", "postal_code": "8000",
                "city": "Aarhus C", "region": None, "country": "DK",
            },
            "shipping_address": {
                "line1": "Lagervej 3", "line2": None, "postal_code": "8200",
                "city": "Aarhus N", "region": None, "country": "DK",
            },
            "notes": "created by shopsync check-webshop; safe to delete",
        }  # fmt: skip
        body.update(changes)
        return body

    def product_body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sku": self.unique("CHK-SKU"),
            "name": "Skrivebord eg (conformance check)",
            "description": "Größe 3; created by shopsync check-webshop",
            "unit_price": "1249.50",
            "list_price": "1499.00",
            "cost_price": "780.25",
            "currency": "DKK",
            "vat_rate": "25",
            "stock_status": "in_stock",
            "active": True,
        }
        body.update(changes)
        return body

    def order_body(self, customer_id: str, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "order_number": self.unique("CHK-ORD"),
            "customer_id": customer_id,
            "status": "pending",
            "currency": "DKK",
            "order_date": "2025-03-14",
            "discount_percent": "5",
            "notes": "created by shopsync check-webshop",
            "lines": [
                {
                    "sku": "DESK-OAK-160", "description": "Skrivebord", "quantity": "2",
                    "unit_price": "1249.50", "discount_percent": "10", "vat_rate": "25",
                },
                {"sku": "LAMP", "description": "Lampe", "quantity": "1", "unit_price": "349.00"},
            ],
        }  # fmt: skip
        body.update(changes)
        return body

    def cleanup(self) -> list[str]:
        """Delete what the run created (orders first); returns what could not be deleted."""
        left: list[str] = []
        for hook_id in self.webhooks:
            try:
                self.client.delete(f"/webhooks/{hook_id}")
            except httpx.HTTPError:
                left.append(f"webhook {hook_id}")
        rank = {"orders": 0, "products": 1, "customers": 2}
        for collection, record_id in sorted(self.created, key=lambda c: rank[c[0]]):
            try:
                response = self.client.delete(f"/{collection}/{record_id}")
                if response.status_code not in (204, 404, 410):
                    left.append(f"{SINGULAR[collection]} {record_id} ({response.status_code})")
            except httpx.HTTPError:
                left.append(f"{SINGULAR[collection]} {record_id}")
        return left
