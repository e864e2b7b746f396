"""Seed data: a shop whose customers and products partly match the webCRM emulator's.

``seed_plan(seed, n)`` is a pure, deterministic function of ``(seed, n)``:

* **Customers** ``i = 0..n-1``. When ``i % 3 == 0`` the customer is company ``i`` of the
  shared universe (``seeddata.company(seed, i)``), which the emulator also seeds when its
  own N is larger than ``i``: same name, same VAT number — written as one of four
  spellings (canonical ``DK12345678``, spaced ``DK 1234 5678``, without the country
  prefix, lower case with dots) chosen by ``(i // 3) % 4`` — and the same website host
  (as given, with ``https://``, or with ``http://`` and a trailing slash). The others are
  company ``10_000_000 + i``: new to webCRM.
* **Products** ``j = 0..max(20, n // 5) - 1``. Even ``j`` is item ``j`` of the universe
  (same SKU as the emulator's product ``j``); odd ``j`` is item ``10_000_000 + j`` (new).
* **Orders**: customer ``i`` gets 0–3 orders (``rng_for(seed, "ws-orders", i)``), each with
  1–5 lines; nine lines in ten reference a seeded product (``sku`` and ``product_id``),
  the tenth a SKU the shop does not carry (``product_id`` null). Order numbers run
  ``WS-10001``, ``WS-10002``, … in customer order (continuing after the highest ``WS-``
  number already in the store when seeding into a non-empty one).

Record ids (not line ids) are derived from ``(seed, kind, index)`` too, so the same seed
gives the same ids; records already present (same id, or same unique value) are skipped,
which makes seeding twice harmless. Seeding sends no webhook events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from shopsync.emulators.common.seeddata import Company, company, item, rng_for

from .db import CustomerRow, OrderRow, ProductRow
from .records import RESOURCES
from .store import Store

FAR = 10_000_000
CURRENCY = {"DK": "DKK", "NO": "NOK", "SE": "SEK", "DE": "EUR", "GB": "GBP"}
QUANTITIES = ("1", "1", "2", "3", "5", "10", "1.5", "0.25")
LINE_DISCOUNTS = ("0", "0", "0", "5", "10", "12.5")
ORDER_DISCOUNTS = ("0", "0", "0", "5", "10")
STATUSES = ("pending", "confirmed", "confirmed", "completed", "cancelled")
FIRST_ORDER_NUMBER = 10001


def seeded_id(prefix: str, seed: int, kind: str, index: int) -> str:
    return f"{prefix}_{uuid.UUID(int=rng_for(seed, 'id-' + kind, index).getrandbits(128)).hex}"


def product_count(n: int) -> int:
    return max(20, n // 5)


def shares_company(i: int) -> bool:
    """Whether customer ``i`` is a company the webCRM emulator also has."""
    return i % 3 == 0


def vat_spelling(vat: str, country: str, variant: int) -> str:
    """One of four spellings of the same VAT number (merge must see through them)."""
    if variant == 1:
        body = vat[2:]
        return f"{vat[:2]} " + " ".join(body[k : k + 4] for k in range(0, len(body), 4))
    if variant == 2 and vat.startswith(country):
        return vat[len(country) :]
    if variant == 3:
        body = vat[2:]
        return f"{vat[:2].lower()}.{body[:4]}.{body[4:]}".lower()
    return vat


def website_spelling(website: str, variant: int) -> str:
    return (website, f"https://{website}", f"http://{website}/")[variant % 3]


@dataclass
class Plan:
    customers: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)


def _customer(seed: int, i: int) -> dict[str, Any]:
    shared = shares_company(i)
    c: Company = company(seed, i if shared else FAR + i)
    variant = (i // 3) % 4
    billing = {
        "line1": c.address, "line2": None, "postal_code": c.postal_code, "city": c.city,
        "region": c.region, "country": c.country,
    }  # fmt: skip
    shipping = None
    if c.delivery_address:
        shipping = {
            "line1": c.delivery_address, "line2": None, "postal_code": c.delivery_postal_code,
            "city": c.delivery_city, "region": None, "country": c.country,
        }  # fmt: skip
    return {
        "id": seeded_id("cus", seed, "customer", i),
        "customer_number": f"K-{seed % 1000:03d}-{i + 1:05d}",
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "vat_number": vat_spelling(c.vat_number, c.country, variant) if shared else c.vat_number,
        "website": website_spelling(c.website, variant) if shared else c.website,
        "billing_address": billing,
        "shipping_address": shipping,
        "notes": None,
        "_country": c.country,
    }


def _product(seed: int, j: int) -> dict[str, Any]:
    it = item(seed, j if j % 2 == 0 else FAR + j)
    rng = rng_for(seed, "ws-product", j)
    return {
        "id": seeded_id("prd", seed, "product", j),
        "sku": it.sku,
        "name": it.name,
        "description": it.description,
        "unit_price": it.unit_price,
        "list_price": it.list_price,
        "cost_price": it.cost_price,
        "currency": "DKK",
        "vat_rate": it.vat_rate,
        "stock_status": it.stock_status,
        "active": rng.random() >= 0.05,
    }


def seed_plan(seed: int, n: int, first_order_number: int = FIRST_ORDER_NUMBER) -> Plan:
    plan = Plan()
    plan.products = [_product(seed, j) for j in range(product_count(n))]
    number = first_order_number
    for i in range(n):
        customer = _customer(seed, i)
        plan.customers.append(customer)
        rng = rng_for(seed, "ws-orders", i)
        for k in range(rng.choice((0, 1, 1, 2, 3))):
            lines: list[dict[str, Any]] = []
            for _ in range(rng.randint(1, 5)):
                if rng.random() < 0.9:
                    p = plan.products[rng.randrange(len(plan.products))]
                    sku, product_id, name = p["sku"], p["id"], p["name"]
                    price, vat = p["unit_price"], p["vat_rate"]
                else:
                    other = item(seed, 2 * FAR + number * 10 + len(lines))
                    sku, product_id, name = other.sku, None, other.name
                    price, vat = other.unit_price, other.vat_rate
                lines.append(
                    {
                        "id": None, "sku": sku, "product_id": product_id, "description": name,
                        "quantity": Decimal(rng.choice(QUANTITIES)), "unit_price": price,
                        "list_price": None, "cost_price": None,
                        "discount_percent": Decimal(rng.choice(LINE_DISCOUNTS)),
                        "vat_rate": vat, "position": len(lines) + 1,
                    }
                )  # fmt: skip
            plan.orders.append(
                {
                    "id": seeded_id("ord", seed, f"order-{i}", k),
                    "order_number": f"WS-{number}",
                    "customer_id": customer["id"],
                    "status": rng.choice(STATUSES),
                    "currency": CURRENCY.get(customer["_country"], "DKK"),
                    "order_date": date(2024, 1, 1) + timedelta(days=rng.randrange(700)),
                    "discount_percent": Decimal(rng.choice(ORDER_DISCOUNTS)),
                    "notes": None,
                    "lines": lines,
                }
            )
            number += 1
    return plan


def seed_store(store: Store, seed: int, n: int) -> dict[str, int]:
    """Write ``seed_plan(seed, n)`` into the store (skipping ids already there)."""
    customers, products, orders = (RESOURCES[c] for c in ("customers", "products", "orders"))
    with store.read() as session:
        numbers = session.scalars(
            select(OrderRow.order_number).where(OrderRow.order_number.like("WS-%"))
        )
        taken = [int(x[3:]) for x in numbers if x[3:].isdigit()]
    plan = seed_plan(seed, n, max([FIRST_ORDER_NUMBER - 1, *taken]) + 1)
    counts = {"customers": 0, "products": 0, "orders": 0}
    with store.write() as session:
        present: set[str] = set()
        for kind, resource, row_type, rows in (
            ("products", products, ProductRow, plan.products),
            ("customers", customers, CustomerRow, plan.customers),
            ("orders", orders, OrderRow, plan.orders),
        ):
            ids = _existing(session, row_type.id, [r["id"] for r in rows])
            unique_column = getattr(row_type, resource.unique)
            taken_values = _existing(
                session, unique_column, [r[resource.unique] for r in rows], live=row_type
            )
            for values in rows:
                if values["id"] in ids:
                    present.add(values["id"])
                    continue
                if values[resource.unique] in taken_values:
                    continue
                clean = {k: v for k, v in values.items() if not k.startswith("_") and k != "id"}
                if kind == "orders":
                    if clean["customer_id"] not in present:
                        continue
                    clean["lines"] = [
                        {
                            **line,
                            "product_id": line["product_id"]
                            if line["product_id"] in present
                            else None,
                        }
                        for line in clean["lines"]
                    ]
                now = store.clock.now()
                row = resource.new_row(values["id"])
                row.version = 1
                row.deleted = False
                row.created_at = row.updated_at = now.replace(tzinfo=None)
                resource.assign(row, clean)
                session.add(row)
                present.add(values["id"])
                counts[kind] += 1
            session.flush()
    return counts


def _existing(session: Session, column: Any, values: list[Any], live: Any = None) -> set[Any]:
    """Which of ``values`` are already in ``column`` (in chunks, for big seeds)."""
    found: set[Any] = set()
    for start in range(0, len(values), 5000):
        query = select(column).where(column.in_(values[start : start + 5000]))
        if live is not None:
            query = query.where(live.deleted == false())
        found.update(session.scalars(query))
    return found
