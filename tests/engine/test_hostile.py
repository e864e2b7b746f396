"""One bad record fails only itself (issue 9): hostile values through both real APIs.

Hypothesis builds a small world on both servers (the webCRM emulator and the reference
webshop, real processes over HTTP) around a few *witnesses*: ordinary organisations and
customers, products, opportunities and orders with lines, on each side. Next to them it
puts *hostile* records: 200+-character, 1 MB and over-long texts, emoji, RTL and
combining text, quotes, ``--`` and ``'; DROP TABLE``, NUL bytes, empty and
whitespace-only values, junk VAT numbers (``N/A``, ``-``, ``0``), huge and tiny numbers
(``1e308``, ``-0.0``, ``1e-30``, ``2**63``), dates at the ends of the calendar
(``0001-01-01``, ``9999-12-31T23:59:59-05:00``), in organisations/customers, products
(webCRM: ``ProductCustom1`` is the SKU, ``ProductCustom2`` the name),
opportunities/orders and their lines, created before or after the first sync, or
written over an ordinary record that was synced already. Values the live webCRM API can
send but the emulator refuses on write (a name cut inside an emoji, an ``…UpdatedAt`` of
``"yesterday"``) are served through the emulator's ``corrupt`` control.

A create or edit that a server refuses is not part of the world (refusing it is that
server's job); the refusal must be a 4xx, never a 5xx. Then the world is synced, by the
engine in-process or by ``python -m shopsync sync`` as a subprocess, and:

* no run raises, and the CLI exits 0 when nothing was put aside, 5 when something was,
  never with a traceback;
* every witness is linked and agrees with its partner under the mapping;
* every hostile record is linked and agrees with its partner, or is put aside, or waits,
  each with a reason (a line may be accounted for by its order) — never silently lost;
* no reason, and nothing the CLI prints, holds a secret;
* the next sync writes nothing and puts nothing new aside.

The engine bugs it found are reproduced one by one by the ``test_bug_…`` functions at
the end (each failed before its fix). ``SHOPSYNC_HYPOTHESIS=explore`` runs 10× the examples
with a new seed each run (docs/testing.md).
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from shopsync.config.model import Datatype
from shopsync.connectors.webcrm.client import WebcrmError
from shopsync.engine.binder import Binder
from shopsync.engine.mapping import MappingError, Unresolved, mappings
from shopsync.engine.report import RunReport
from shopsync.store import repo
from tests.conftest import AUTH_CODE, EXPLORE_FACTOR, HYPOTHESIS_PROFILE, WEBSHOP_TOKEN, examples
from tests.engine.conftest import Env, crm_product, customer, org, shop_product
from tests.engine.test_lines import qline, sline
from tests.engine.test_orders import opportunity, order

C, P, ORD, L = Datatype.customers, Datatype.products, Datatype.orders, Datatype.order_lines
WEBCRM, WEBSHOP = "webcrm", "webshop"
SECRETS = {"SHOPSYNC_WEBCRM_AUTH_CODE": AUTH_CODE, "SHOPSYNC_WEBSHOP_TOKEN": WEBSHOP_TOKEN}
ENTITY = {C: "Organisation", P: "Product", ORD: "Opportunity", L: "QuotationLine"}
COLLECTION = {C: "customers", P: "products", ORD: "orders"}
HTTP_TIMEOUT = 60

# ------------------------------------------------------------------ hostile values
MEGABYTE = "x" * (1 << 20)
TEXTS = [
    "Æ" * 201,
    "Nørre Æble ApS " * 14,  # 210 characters
    "🏢 Café ☕ 👩‍💻 🇩🇰",
    "شركة الأمل للتجارة",
    "חברה בע״מ",
    "\u202eSpA olleT\u202c",  # right-to-left override
    "Cafe\u0301 Zo\u0308e",  # combining marks (NFD)
    "Z\u0334\u0321\u031ba\u0337l\u0338g\u0336o\u0335",
    'O\'Brien "Ltd" -- `x`',
    "'; DROP TABLE Organisations; --",
    "Robert'); DROP TABLE customers;--",
    "A\x00B",
    "\x00",
    "\x1b[31mred\x1b[0m\r\n\t",
    "\u2028\u2029\ufeff\u200b",
    "\uffff\U0010ffff",
    "",
    " ",
    " \t\n\u00a0\u3000",
    "N/A",
    "-",
    "0",
    "null",
    "None",
    "{}",
]
VATS = ["N/A", "-", "0", "", "   ", "'; DROP TABLE Organisations; --", "DK--1234", "00000000"]
ALPHABET = st.sampled_from(
    [*"Ææ'\"-;%_\\/<>& \t\n\x00", "🏢", "\u0301", "\u202e", "ש", "ß", "\ufeff"]
)
TEXT = st.one_of(
    st.sampled_from(TEXTS),
    st.builds(
        operator.mul,
        st.sampled_from(["x", "Æ", "🏢", "e\u0301", "ש"]),
        st.sampled_from([201, 251, 1001, 10_001]),
    ),
    st.just(MEGABYTE),
    st.text(ALPHABET, max_size=12),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
)
VAT = st.one_of(st.sampled_from(VATS), TEXT)
CRM_NUMBER = st.one_of(
    st.sampled_from([1e308, -0.0, 1e-30, 2**63, -1e308, -1.0, 5e-324, 0.005, 1.0e15, 2**31]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
    st.sampled_from(["12,5", "", True]),  # the wrong type: webCRM refuses it
)
CRM_INT = st.one_of(
    st.sampled_from([2**63, 2**31, -(2**31) - 1, -1, 0, 1.5, 1e308, "3"]), st.integers()
)
CRM_DATE = st.sampled_from(
    [
        "0001-01-01T00:00:00",
        "0001-01-01",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59",
        "1970-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "",
        "yesterday",
    ]
)
SHOP_DECIMAL = st.sampled_from(
    [
        "1e308",
        "-0.0",
        "-0",
        "0.000000000000000000000000000001",
        str(2**63),
        "9999999999999.99",
        "99999999999999",
        "NaN",
        "Infinity",
        "1,5",
        "",
        " ",
        "0",
        "00000.00",
        "+1",
        1e308,  # a JSON number where a decimal string belongs: refused (422)
        -0.0,
        1e-30,
        2**63,
    ]
)
SHOP_INT = st.sampled_from([2**63, -1, 0, 1_000_000, 1_000_001, 1.5, "1"])
SHOP_DATE = st.sampled_from(
    ["0001-01-01", "9999-12-31", "9999-12-31T23:59:59-05:00", "2026-02-30", "", "yesterday"]
)
CRM_CURRENCY = st.sampled_from(["", " ", "XXX", "dkk", "Kroner", "€", "'; DROP TABLE x; --"])
SHOP_CURRENCY = st.sampled_from(["XXX", "ZZZ", "dkk", "", "DKKK"])
CRM_COUNTRY = st.one_of(st.sampled_from(["Atlantis", "Danmark\x00", "🇩🇰", "N/A"]), TEXT)
SHOP_COUNTRY = st.sampled_from(["XX", "ZZ", "dk", "", "DNK"])

# (side, datatype) -> {field: strategy}; a webshop path with a dot is an address member
FIELDS: dict[tuple[str, Datatype], dict[str, st.SearchStrategy[Any]]] = {
    (WEBCRM, C): {
        "OrganisationName": TEXT,
        "OrganisationVatNumber": VAT,
        "OrganisationAddress": TEXT,
        "OrganisationPostCode": TEXT,
        "OrganisationCity": TEXT,
        "OrganisationCountry": CRM_COUNTRY,
        "OrganisationTelephone": TEXT,
        "OrganisationWww": TEXT,
    },
    (WEBSHOP, C): {
        "name": TEXT,
        "vat_number": VAT,
        "phone": TEXT,
        "website": TEXT,
        "billing_address.line1": TEXT,
        "billing_address.postal_code": TEXT,
        "billing_address.city": TEXT,
        "billing_address.country": SHOP_COUNTRY,
    },
    (WEBCRM, P): {
        "ProductCustom1": TEXT,
        "ProductCustom2": TEXT,
        "ProductMemo": TEXT,
        "ProductPrice": CRM_NUMBER,
        "ProductListPrice": CRM_NUMBER,
        "ProductCostPrice": CRM_NUMBER,
        "ProductVatCode": TEXT,
        "ProductStockStatus": TEXT,
    },
    (WEBSHOP, P): {
        "sku": TEXT,
        "name": TEXT,
        "description": TEXT,
        "unit_price": SHOP_DECIMAL,
        "list_price": SHOP_DECIMAL,
        "cost_price": SHOP_DECIMAL,
        "vat_rate": SHOP_DECIMAL,
    },
    (WEBCRM, ORD): {
        "OpportunityNumber": TEXT,
        "OpportunityDescription": TEXT,
        "OpportunityDiscount": CRM_NUMBER,
        "OpportunityOrderDate": CRM_DATE,
        "OpportunityCurrencyName": CRM_CURRENCY,
        "OpportunityPercent": CRM_INT,
    },
    (WEBSHOP, ORD): {
        "order_number": TEXT,
        "notes": TEXT,
        "discount_percent": SHOP_DECIMAL,
        "order_date": SHOP_DATE,
        "currency": SHOP_CURRENCY,
    },
    (WEBCRM, L): {
        "QuotationLineData1": TEXT,
        "QuotationLineData2": TEXT,
        "QuotationLineQuantity": CRM_NUMBER,
        "QuotationLinePrice": CRM_NUMBER,
        "QuotationLineListPrice": CRM_NUMBER,
        "QuotationLineDiscount": CRM_NUMBER,
        "QuotationLineVatPercentage": CRM_NUMBER,
        "QuotationLineSortOrder": CRM_INT,
    },
    (WEBSHOP, L): {
        "sku": TEXT,
        "description": TEXT,
        "quantity": SHOP_DECIMAL,
        "unit_price": SHOP_DECIMAL,
        "discount_percent": SHOP_DECIMAL,
        "vat_rate": SHOP_DECIMAL,
        "position": SHOP_INT,
    },
}
CORRUPT_TEXT = {
    C: "OrganisationName",
    P: "ProductCustom2",
    ORD: "OpportunityDescription",
    L: "QuotationLineData2",
}
CORRUPT_VALUES = st.sampled_from(["Caf\ud83d", "\udc00x", "\ud83d"])  # cut inside an emoji


MERGE_KEY = {  # datatype: (webCRM field, webshop field) of its strongest merge key
    C: ("OrganisationVatNumber", "vat_number"),
    P: ("ProductCustom1", "sku"),
    ORD: ("OpportunityNumber", "order_number"),
}


@dataclass(frozen=True)
class Op:
    """One hostile act.

    ``create`` a record with ``field`` set to ``value``; ``pair``: create one on each
    side with ``value`` as their merge key (``field`` is the webCRM one); ``edit`` an
    ordinary record synced already; ``corrupt`` a new webCRM record's served JSON.
    """

    kind: str
    side: str
    datatype: Datatype
    field: str
    value: Any
    late: bool
    """After the first sync (the record's first or a later read) rather than before."""
    under: bool = False
    """An order (line) belongs to the latest non-witness customer (order) of its side."""

    def __repr__(self) -> str:  # as code, for an @example (long texts shortened)
        dt = {C: "C", P: "P", ORD: "ORD", L: "L"}[self.datatype]
        side = "WEBCRM" if self.side == WEBCRM else "WEBSHOP"
        args = f"{self.kind!r}, {side}, {dt}, {self.field!r}, {code(self.value)}"
        return f"Op({args}, late={self.late}{', under=True' if self.under else ''})"


def code(value: Any) -> str:
    """``repr``, with a long repeated text as ``'x' * 1001``."""
    if not isinstance(value, str) or len(value) <= 60:
        return repr(value)
    for size in range(1, 5):
        unit = value[:size]
        if unit * (len(value) // size) == value:
            return f"{unit!r} * {len(value) // size}"
    return f"{value[:40]!r}…({len(value)} characters)"


@st.composite
def ops(draw: st.DrawFn) -> Op:
    kind = draw(st.sampled_from(["create", "create", "edit", "corrupt", "pair"]))
    datatype = draw(st.sampled_from([C, P, ORD, L]))
    late = draw(st.booleans())
    under = datatype in (ORD, L) and draw(st.booleans())
    if kind == "pair" and datatype is not L:
        value = draw(st.one_of(st.sampled_from(VATS), TEXT))
        return Op(kind, WEBCRM, datatype, MERGE_KEY[datatype][0], value, late, under)
    if kind == "corrupt":
        name, value = CORRUPT_TEXT[datatype], draw(CORRUPT_VALUES)
        if draw(st.booleans()):
            name, value = f"{ENTITY[datatype]}UpdatedAt", draw(st.sampled_from(["yesterday", ""]))
        return Op(kind, WEBCRM, datatype, name, value, late, under)
    kind = "create" if kind == "pair" else kind  # lines have no merge key of their own
    side = draw(st.sampled_from([WEBCRM, WEBSHOP]))
    fields = FIELDS[(side, datatype)]
    name = draw(st.sampled_from(sorted(fields)))
    return Op(kind, side, datatype, name, draw(fields[name]), late or kind == "edit", under)


# ------------------------------------------------------------------ the world
@dataclass
class Rec:
    side: str
    datatype: Datatype
    id: str
    witness: bool
    what: str
    parent: str | None = None
    """A line's order (webshop) or opportunity (webCRM) id."""


@dataclass
class World:
    env: Env
    http: httpx.Client
    recs: list[Rec] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    n: int = 0
    crm_org: int = 0
    shop_customer: str = ""
    crm_carrier: int = 0
    shop_carrier: str = ""
    latest: dict[tuple[str, Datatype], str] = field(default_factory=dict)
    """The latest non-witness customer and order of each side: a parent for ``under``."""

    def next(self) -> int:
        self.n += 1
        return self.n

    # --- webCRM
    def crm_create(self, dt: Datatype, record: dict[str, Any], what: str, *, witness: bool) -> int:
        """POST the record; a refusal must be a 4xx (then it is not part of the world)."""
        try:
            rid = int(self.env.crm.create(ENTITY[dt], record))
        except WebcrmError as exc:
            assert exc.status is not None and 400 <= exc.status < 500, f"{what}: {exc}"
            assert not witness, f"witness {what} refused: {exc}"
            self.refused.append(f"{what}: {exc}"[:200])
            return 0
        parent = str(record.get("QuotationLineOpportunityId")) if dt is L else None
        self.recs.append(Rec(WEBCRM, dt, str(rid), witness, what, parent))
        if not witness:
            self.latest[(WEBCRM, dt)] = str(rid)
        return rid

    def crm_edit(self, dt: Datatype, rid: int, values: dict[str, Any], what: str) -> None:
        try:
            [result] = self.env.crm.upsert(ENTITY[dt], [{f"{ENTITY[dt]}Id": rid, **values}])
        except WebcrmError as exc:
            raise AssertionError(f"{what}: webCRM failed on an edit: {exc}") from None
        if result.error is not None:
            self.refused.append(f"{what}: {result.error}"[:200])

    # --- webshop
    def shop(self, method: str, path: str, body: dict[str, Any], what: str) -> httpx.Response:
        response = self.http.request(
            method,
            f"{self.env.shop_server.url}{path}",
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {WEBSHOP_TOKEN}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"hostile-{uuid.uuid4().hex}",
            },
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.text}"
        if response.status_code >= 400:
            self.refused.append(f"{what}: HTTP {response.status_code} {response.text}"[:200])
        return response

    def shop_create(
        self, dt: Datatype, body: dict[str, Any], what: str, *, witness: bool
    ) -> dict[str, Any] | None:
        response = self.shop("POST", f"/{COLLECTION[dt]}", body, what)
        if response.status_code >= 400:
            assert not witness, f"witness {what} refused: {response.text}"
            return None
        created: dict[str, Any] = response.json()
        self.recs.append(Rec(WEBSHOP, dt, created["id"], witness, what))
        if not witness:
            self.latest[(WEBSHOP, dt)] = created["id"]
        for line in created.get("lines") or []:
            self.recs.append(Rec(WEBSHOP, L, line["id"], witness, f"line of {what}", created["id"]))
        return created

    def shop_add_line(self, order_id: str, line: dict[str, Any], what: str) -> str | None:
        """Append a line to an order (``lines`` is written as a whole); its new id."""
        before = self.env.shop_get("orders", order_id)["lines"]
        response = self.shop("PATCH", f"/orders/{order_id}", {"lines": [*before, line]}, what)
        if response.status_code >= 400:
            return None
        old = {x["id"] for x in before}
        [new] = [x["id"] for x in response.json()["lines"] if x["id"] not in old]
        self.recs.append(Rec(WEBSHOP, L, new, False, what, order_id))
        return str(new)


def set_path(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    if "." in path:
        head, tail = path.split(".", 1)
        record[head] = {**(record.get(head) or {}), tail: value}
    else:
        record[path] = value
    return record


def ordinary(world: World, side: str, dt: Datatype, under: bool = False) -> dict[str, Any]:
    """An ordinary record whose merge keys no other record has; an order or a line
    belongs to a witness, or with ``under`` to the latest non-witness parent."""
    n = world.next()
    crm_org = world.latest.get((WEBCRM, C), world.crm_org) if under else world.crm_org
    shop_customer = world.latest.get((WEBSHOP, C), world.shop_customer) if under else None
    crm_opp = world.latest.get((WEBCRM, ORD), world.crm_carrier) if under else None
    if (side, dt) == (WEBCRM, C):
        return org(f"Fjende {n}", OrganisationVatNumber=f"DK5{n:07d}",
                   OrganisationWww=f"fjende{n}.dk", OrganisationPostCode=f"{5000 + n}")  # fmt: skip
    if (side, dt) == (WEBSHOP, C):
        return customer(
            f"Feind {n}", vat_number=f"DE6{n:08d}", website=f"https://feind{n}.de",
            email=f"f{n}@feind.de",
            billing_address={"line1": f"Weg {n}", "postal_code": f"{60000 + n}",
                             "city": "Köln", "country": "DE"},
        )  # fmt: skip
    if (side, dt) == (WEBCRM, P):
        return crm_product(f"H-C-{n}", f"Fjendtlig vare {n}")
    if (side, dt) == (WEBSHOP, P):
        return shop_product(f"H-S-{n}", f"Feindliches Produkt {n}")
    if (side, dt) == (WEBCRM, ORD):
        return opportunity(int(crm_org), OpportunityNumber=f"HC-{n}")
    if (side, dt) == (WEBSHOP, ORD):
        return order(shop_customer or world.shop_customer, order_number=f"HS-{n}")
    if (side, dt) == (WEBCRM, L):
        return qline(int(crm_opp or world.crm_carrier), "W-SKU-C",
                     QuotationLineData2=f"Fjendtlig linje {n}")  # fmt: skip
    return sline("W-SKU-S", description=f"Feindliche Zeile {n}")


def add(
    world: World, side: str, dt: Datatype, body: dict[str, Any], what: str, under: bool = False
) -> str | None:
    """Create a record; its id, or None when refused. A webshop line goes into the
    carrier order, or with ``under`` into the latest non-witness order."""
    if side == WEBCRM:
        return str(world.crm_create(dt, body, what, witness=False) or "") or None
    if dt is L:
        order_id = world.latest.get((WEBSHOP, ORD), world.shop_carrier) if under else None
        return world.shop_add_line(order_id or world.shop_carrier, body, what)
    created = world.shop_create(dt, body, what, witness=False)
    return None if created is None else str(created["id"])


def witnesses(world: World) -> None:
    """Ordinary records on each side, each with its own merge keys."""
    crm_org = org("Vidne A/S", OrganisationVatNumber="DK11223344", OrganisationWww="vidne.dk")
    world.crm_org = world.crm_create(C, crm_org, "witness organisation", witness=True)
    shop_customer = customer("Zeuge GmbH", vat_number="DE987654321", website="https://zeuge.de")
    created = world.shop_create(C, shop_customer, "witness customer", witness=True)
    assert created is not None
    world.shop_customer = created["id"]
    world.crm_create(P, crm_product("W-SKU-C", "Vidne bord"), "witness product", witness=True)
    world.shop_create(P, shop_product("W-SKU-S", "Zeugenstuhl"), "witness product", witness=True)
    for number in ("WC-1", "WC-2"):
        opp = world.crm_create(
            ORD, opportunity(world.crm_org, OpportunityNumber=number), number, witness=True
        )
        world.crm_create(L, qline(opp, "W-SKU-C"), f"line of {number}", witness=True)
        world.crm_carrier = opp  # WC-2 also carries hostile lines
    for number in ("WS-1", "WS-2"):
        body = order(world.shop_customer, order_number=number, lines=[sline("W-SKU-S")])
        created = world.shop_create(ORD, body, number, witness=True)
        assert created is not None
        world.shop_carrier = created["id"]


def corrupt(world: World, dt: Datatype, rid: str, name: str, value: str) -> None:
    body = json.dumps({name: value})  # ensure_ascii: a lone surrogate goes as \\udxxx
    url = f"{world.env.crm_server.url}/_emulator/corrupt/{ENTITY[dt]}/{rid}"
    response = world.http.put(
        url, content=body, headers={"content-type": "application/json"}, timeout=HTTP_TIMEOUT
    )
    response.raise_for_status()


def apply(world: World, op: Op, target: str | None) -> None:
    """Do ``op``: ``target`` is the ordinary record an ``edit`` writes over."""
    what, dt = repr(op), op.datatype
    if op.kind == "corrupt":
        rid = add(world, WEBCRM, dt, ordinary(world, WEBCRM, dt, op.under), what, op.under)
        assert rid is not None, what
        corrupt(world, dt, rid, op.field, op.value)
    elif op.kind == "create":
        body = set_path(ordinary(world, op.side, dt, op.under), op.field, op.value)
        add(world, op.side, dt, body, what, op.under)
    elif op.kind == "pair":
        for side, name in zip((WEBCRM, WEBSHOP), MERGE_KEY[dt], strict=True):
            body = set_path(ordinary(world, side, dt, op.under), name, op.value)
            add(world, side, dt, body, what, op.under)
    elif op.side == WEBCRM:
        assert target is not None
        world.crm_edit(op.datatype, int(target), {op.field: op.value}, what)
    elif op.datatype is L:
        assert target is not None
        lines = world.env.shop_get("orders", world.shop_carrier)["lines"]
        edited = [set_path(dict(x), op.field, op.value) if x["id"] == target else x for x in lines]
        world.shop("PATCH", f"/orders/{world.shop_carrier}", {"lines": edited}, what)
    else:
        assert target is not None
        current = world.env.shop_get(COLLECTION[op.datatype], target)
        patch = set_path({}, op.field, op.value)
        if "." in op.field:  # an address is written as a whole
            head = op.field.split(".")[0]
            patch = {head: {**(current.get(head) or {}), **patch[head]}}
        world.shop("PATCH", f"/{COLLECTION[op.datatype]}/{target}", patch, what)


# ------------------------------------------------------------------ syncing
def reset(env: Env, http: httpx.Client) -> None:
    """Each example starts from empty servers and an empty state database."""
    for url in (f"{env.crm_server.url}/_emulator/reset", f"{env.shop_server.url}/_webshop/reset"):
        http.post(url, timeout=HTTP_TIMEOUT).raise_for_status()
    env.fresh_state()


def sync(env: Env) -> RunReport:
    return env.sync()


def put_aside_total(report: RunReport) -> int:
    return sum(s.put_aside for s in report.stats.values())


def cli_sync(env: Env, config: Path) -> int:
    """``python -m shopsync sync`` as a user runs it; returns how many it put aside."""
    cfg = env.inst.config
    config.write_text(
        f'[webcrm]\nbase_url = "{env.crm_server.url}"\nrate_limit = 10000\n\n'
        f'[webshop]\nbase_url = "{env.shop_server.url}"\n\n'
        f'[state]\nurl = "{cfg.state.url}"\n',
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "shopsync", "sync", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **SECRETS},
    )
    output = run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-5000:]
    for secret in SECRETS.values():
        assert secret not in output
    assert run.returncode in (0, 5), f"exit {run.returncode}: {run.stderr[-3000:]}"
    report = json.loads(run.stdout[run.stdout.index("{") :])
    aside = sum(int(s["put_aside"]) for s in report["stats"].values())
    assert run.returncode == (5 if aside else 0), (run.returncode, report)
    event(f"CLI exit {run.returncode}")
    return aside


# ------------------------------------------------------------------ the verdict
def disagreement(env: Env, binder: Binder, dt: Datatype, crm: Any, shop: Any) -> list[str]:
    """The two-way properties on which a linked pair does not agree under the mapping.

    Both sides normalize to one canonical value (``docs/mapping.md``), so the values are
    compared as they are; a reference is an id of each system, compared through its link.
    """
    out = []
    for f in mappings(env.inst.config)[dt].fields:
        if not (f.webcrm and f.direction.value == "⇄"):
            continue
        have, want = f.webshop_value(shop), f.webcrm_value(crm)
        if f.conversion.name.startswith("reference"):
            try:
                want = f.conversion.norm_webshop(f.conversion.to_webshop(f.raw_webcrm(crm), binder))
            except (MappingError, Unresolved) as exc:
                want = f"({exc})"
        if want != have:
            out.append(f"{f.name}: webCRM {short(want)} ≠ webshop {short(have)}")
    return out


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}…({len(text)} chars)"


def check(world: World, aside: dict[tuple[str, str, str], str]) -> None:
    env = world.env
    crm = {
        dt: {str(r[f"{ENTITY[dt]}Id"]): r for r in env.crm_all(ENTITY[dt])} for dt in (C, P, ORD, L)
    }
    shop: dict[Datatype, dict[str, Any]] = {
        dt: {r["id"]: r for r in env.shop_all(COLLECTION[dt])} for dt in (C, P, ORD)
    }
    shop[L] = {line["id"]: line for o in shop[ORD].values() for line in o["lines"]}
    with env.inst.session() as s:
        binder = Binder(s, env.inst.config)
        waiting = {
            (w.datatype, w.system, w.record_id): w.waiting_reason or "" for w in repo.waiting(s)
        }
        for reason in [*aside.values(), *waiting.values()]:
            assert reason.strip(), (aside, waiting)
            assert AUTH_CODE not in reason and WEBSHOP_TOKEN not in reason, reason
        problems = []
        for rec in world.recs:
            dt = rec.datatype
            if rec.side == WEBCRM:
                link = repo.link_by_webcrm(s, dt.value, rec.id)
            else:
                link = repo.link_by_webshop(s, dt.value, rec.id)
            own = [(dt.value, rec.side, rec.id)]
            if rec.parent is not None:  # a line may be held back with its order
                own += [(ORD.value, rec.side, rec.parent), (L.value, rec.side, rec.parent)]
            pair: list[tuple[str, str, str]] = []
            if link is not None:
                pair = [(dt.value, WEBCRM, link.webcrm_id), (dt.value, WEBSHOP, link.webshop_id)]
            accounted = [k for k in own + pair if k in aside or k in waiting]
            if link is None or link.state != "active":
                if rec.witness or not accounted:
                    problems.append(f"{rec.what} {rec.side}:{rec.id} not linked ({link})")
                continue
            c, w = crm[dt].get(link.webcrm_id), shop[dt].get(link.webshop_id)
            if c is None or w is None:
                problems.append(f"{rec.what}: a side of {link.webcrm_id} ⇄ {link.webshop_id} gone")
                continue
            differ = disagreement(env, binder, dt, c, w)
            if differ and (rec.witness or not accounted):
                problems.append(f"{rec.what} ({link.webcrm_id} ⇄ {link.webshop_id}): {differ}")
            if rec.witness and accounted:
                problems.append(f"witness {rec.what} put aside or waiting: {accounted}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the property
@dataclass
class Scenario:
    ops: list[Op]
    cli: bool

    def __repr__(self) -> str:
        return f"Scenario({self.ops}, cli={self.cli})"


SCENARIOS = st.builds(
    Scenario, st.lists(ops(), min_size=1, max_size=5), st.sampled_from([False, False, True])
)


def run_scenario(env: Env, scenario: Scenario, config: Path) -> None:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        reset(env, http)
        world = World(env, http)
        play(world, scenario, config)


def play(world: World, scenario: Scenario, config: Path) -> None:
    env = world.env
    witnesses(world)
    targets: dict[int, str | None] = {}
    for i, op in enumerate(scenario.ops):
        if op.kind == "edit":  # the ordinary record it writes over, synced first
            targets[i] = add(world, op.side, op.datatype, ordinary(world, op.side, op.datatype),
                             f"target of {op!r}")  # fmt: skip
    for op in scenario.ops:
        if op.kind != "edit" and not op.late:
            apply(world, op, None)
    if scenario.cli:
        cli_sync(env, config)
    else:
        sync(env)
    later = [(i, op) for i, op in enumerate(scenario.ops) if op.late or op.kind == "edit"]
    for i, op in later:
        apply(world, op, targets.get(i))
    if later:
        sync(env)
    before = aside_now(env)
    again = sync(env)
    assert again.writes == 0, [line for line in again.plan if line.action != "wait"]
    after = aside_now(env)
    new, gone = after.keys() - before.keys(), before.keys() - after.keys()
    assert put_aside_total(again) == len(new), again.plan
    assert not new and not gone, ("put aside anew", new, "cleared", gone)
    event(f"records put aside: {min(len(after), 3)}{'+' if len(after) >= 3 else ''}")
    event("a server refused a hostile write" if world.refused else "no write refused")
    check(world, after)


def aside_now(env: Env) -> dict[tuple[str, str, str], str]:
    with env.inst.session() as s:
        return {(p.datatype, p.system, p.record_id): p.reason for p in repo.all_put_aside(s)}


def hostile_settings(n: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=examples(n),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        deadline=None,
    )


EXPLORING = HYPOTHESIS_PROFILE == "explore"


# 42 examples, each a fresh pair of seeded servers and a state database: on PostgreSQL
# and a loaded 2-core machine that can pass 300 s (the timeout is a safety net, not a
# verdict on speed).
@pytest.mark.timeout(900 * (EXPLORE_FACTOR if EXPLORING else 1))
@hostile_settings(40)
# the CLI once with a record put aside (exit 5: webCRM takes a 201-character name, the
# webshop does not), once without (exit 0)
@example(Scenario([Op("create", WEBCRM, P, "ProductCustom2", "Æ" * 201, False)], cli=True))
@example(Scenario([Op("create", WEBSHOP, C, "name", "🏢 Café ☕", False)], cli=True))
@given(scenario=SCENARIOS)
def test_one_bad_record_fails_only_itself(env: Env, tmp_path: Path, scenario: Scenario) -> None:
    run_scenario(env, scenario, tmp_path / "shopsync.toml")


# ------------------------------------------------------------------ engine bugs it found
def test_bug_two_line_edits_in_one_webshop_order_do_not_crash_the_run(env: Env) -> None:
    """Found by the property above: outcomes of two line writes of one order were indexed
    0, 2 (IndexError in ``_flush_lines``), and could have been paired with another line."""
    shop_customer = env.shop_create("customers", customer())
    lines = [sline(description="Zeile 1"), sline(description="Zeile 2")]
    created = env.shop_create("orders", order(shop_customer["id"], lines=lines))
    env.sync()
    edited = [{**line, "description": f"neu {i}"} for i, line in enumerate(created["lines"])]
    env.shop_update("orders", created["id"], lines=edited)
    env.sync()  # IndexError in Engine._flush_lines.<locals>.finish
    for i, line in enumerate(created["lines"]):
        link = env.link(L, webshop=line["id"])
        assert env.crm_get("QuotationLine", link.webcrm_id)["QuotationLineData2"] == f"neu {i}"
    assert env.sync().writes == 0


def test_bug_an_update_refused_for_a_linked_pair_stays_put_aside(env: Env) -> None:
    """Found by the property above: the next run cleared the webCRM entry while only the
    webshop side passed through unchanged, and the run after sent the update again."""
    product = env.crm_create("Product", crm_product("SKU-1", "Reol"))
    env.sync()
    env.crm_update("Product", product, ProductCostPrice=1e308)  # the webshop refuses it
    assert env.sync().stats[P].put_aside == 1
    for _ in range(3):  # every later run: still put aside, not sent again, nothing new
        report = env.sync()
        assert aside_now(env).keys() == {(P.value, WEBCRM, str(product))}
        assert report.stats[P].put_aside == 0, report.plan
