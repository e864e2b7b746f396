"""Micro-benchmark of the sync engine alone: no HTTP, both systems faked in-process.

The engine runs exactly as ``shopsync sync`` runs it (``Installation.sync``: the sync
lock, the guarded connectors, a real state database created by the migrations), but
its two connectors are the in-process fakes of ``bench/fakes.py``. What is timed is
therefore the engine and its state database; the fakes' own share of each run is
measured and printed beside it.

Per database (SQLite in a temporary file; PostgreSQL at 127.0.0.1:5432 in a database
created for the run and dropped after, skipped with the reason when unreachable):

1. **initial**: N records per datatype, half made in webCRM and half in the webshop
   (no two the same company or SKU), are all created on the other side;
2. **echo (unchanged)**: the next run reads back what the first one wrote (every
   record: webCRM's ``UpdatedAt`` moved with each write, the shop's ``updated_at``
   with each create) and writes nothing;
3. **changed in webCRM**: every record of each datatype is edited in webCRM (a phone
   number, a price, a description), then synced: each is written to the shop;
4. **changed in webshop**: every record edited in the shop, then synced to webCRM;
5. **echo after changes**: the writes of 4 come back from webCRM; nothing is written.

Each run's figures are checked (every record created or written once, every record
read back by the echo passes, nothing put aside or waiting, echo passes write
nothing); a failed check is printed and makes the exit status 1.

Columns: ``read`` is the records a run read as changed since its cursors, on either side
(``read_webcrm`` + ``read_webshop``: staged, or dropped before staging as unchanged
when their values are the agreed ones), ``written`` the updates counted
(rule 9: a create or one record's properties written together is one), ``seconds``
the engine's run (``RunReport.seconds``), ``fakes s`` the part of it spent inside the
fakes, ``read/s`` and ``written/s`` the two divided by ``seconds``; ``engine s`` is
``seconds`` less ``fakes s`` (the engine alone, as the issue measures it: the fakes
stand in for the two systems, and their validation of every write is theirs, not the
engine's), and ``read/es`` and ``written/es`` the two divided by it. The *unchanged*
figure is ``read/es`` of the echo passes, the *changed* figure ``written/es`` of
phases 3 and 4; both are printed beside the figures with the fakes included.
``read`` includes webCRM's read overlap: the records written within ``overlap_seconds``
(5 s) before the newest one a run saw are read once more by the next run, compared and
dropped (after a burst of edits: the whole burst).

PostgreSQL plans its queries from table statistics, which autovacuum gathers, and
autovacuum also removes the dead rows every run leaves (inbox rows, replaced merge keys
and snapshots). On a server where autovacuum is off (as on the development machine)
neither happens. ``--analyze`` runs ``VACUUM ANALYZE`` on the state database before
each run, untimed, as autovacuum would between runs; the title says which was measured.

``--profile`` runs each run under cProfile (slower: the figures are not the ones to
quote) and prints its top functions by cumulative time, overall and shopsync's own;
``--profile-dir DIR`` also writes them as ``pstats`` files.

``--statements`` counts the SQL statements each run sends to the state database (an
``executemany`` counts once, with its rows beside it) and prints the most frequent
ones per run: a statement sent once per record shows up with a count near ``read``.
(PostgreSQL's ``COPY`` of inserted rows, ``store/bulk.py``, is sent past SQLAlchemy and
is not counted.)

Run::

    .venv/bin/python bench/engine_micro.py                       # 20,000 customers + 20,000 products, both databases
    .venv/bin/python bench/engine_micro.py --db postgres --analyze
    .venv/bin/python bench/engine_micro.py --n 2000 --db sqlite --profile
    .venv/bin/python bench/engine_micro.py --datatype customers,products,orders --n 4000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import event

from fakes import FakeWebcrm, FakeWebshop, money
from shopsync import logs
from shopsync.config.model import Config, Datatype, StateConfig, WebcrmConfig, WebshopConfig
from shopsync.emulators.common.seeddata import company, item, rng_for
from shopsync.emulators.webcrm.seed import organisation_row, product_row
from shopsync.engine.report import RunReport
from shopsync.runtime import Installation
from shopsync.store import repo

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
FAR = 10_000_000
"""The webshop's own records are universe entries this far from webCRM's (never the same)."""
SEEDED_AT = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
ENTITY = {Datatype.customers: "Organisation", Datatype.products: "Product",
          Datatype.orders: "Opportunity"}  # fmt: skip
ID_FIELD = {Datatype.customers: "OrganisationId", Datatype.products: "ProductId",
            Datatype.orders: "OpportunityId"}  # fmt: skip
COLLECTION = {Datatype.customers: "customers", Datatype.products: "products",
              Datatype.orders: "orders"}  # fmt: skip
CHOICES = (Datatype.customers, Datatype.products, Datatype.orders)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------- the data
@dataclass
class Dataset:
    """What each side holds before the first sync (built once per process)."""

    crm: dict[Datatype, list[dict[str, Any]]] = field(default_factory=dict)
    shop: dict[Datatype, list[dict[str, Any]]] = field(default_factory=dict)
    lines_per_order: int = 3


def build_dataset(n: int, datatypes: Sequence[Datatype], seed: int, lines: int) -> Dataset:
    """``n`` records per datatype: the first half webCRM's, the second half the shop's.

    Organisations and products are the emulator's own seed rows
    (``emulators/webcrm/seed.py``) for universe entries ``0..n/2``; the shop's customers
    and products are entries ``FAR + i`` in the reference webshop's form. Orders (when
    asked for) belong to those customers and carry ``lines`` lines of those products.
    """
    data = Dataset(lines_per_order=lines)
    n_crm = n // 2
    n_shop = n - n_crm
    if Datatype.customers in datatypes:
        data.crm[Datatype.customers] = [
            organisation_row(company(seed, i), seed) for i in range(n_crm)
        ]
        data.shop[Datatype.customers] = [shop_customer(seed, i) for i in range(n_shop)]
    if Datatype.products in datatypes:
        data.crm[Datatype.products] = [
            product_row(item(seed, j), "ProductCustom1", "ProductCustom2") for j in range(n_crm)
        ]
        data.shop[Datatype.products] = [shop_product(seed, j) for j in range(n_shop)]
    if Datatype.orders in datatypes:
        # references are filled in when seeding (they need the other records' ids)
        data.crm[Datatype.orders] = [{"k": k} for k in range(n_crm)]
        data.shop[Datatype.orders] = [{"k": k} for k in range(n_shop)]
    return data


def shop_customer(seed: int, i: int) -> dict[str, Any]:
    c = company(seed, FAR + i)
    shipping = None
    if c.delivery_address:
        shipping = {"line1": c.delivery_address, "postal_code": c.delivery_postal_code,
                    "city": c.delivery_city, "country": c.country}  # fmt: skip
    return {
        "customer_number": f"K-{i + 1:06d}",
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "vat_number": c.vat_number,
        "website": c.website,
        "billing_address": {"line1": c.address, "postal_code": c.postal_code, "city": c.city,
                            "region": c.region, "country": c.country},
        "shipping_address": shipping,
    }  # fmt: skip


def shop_product(seed: int, j: int) -> dict[str, Any]:
    it = item(seed, FAR + j)
    return {
        "sku": it.sku,
        "name": it.name,
        "description": it.description,
        "unit_price": money(it.unit_price),
        "list_price": money(it.list_price),
        "cost_price": money(it.cost_price),
        "currency": "DKK",
        "vat_rate": str(it.vat_rate),
        "stock_status": it.stock_status,
        "active": True,
    }


def seed_fakes(data: Dataset, seed: int) -> tuple[FakeWebcrm, FakeWebshop]:
    crm, shop = FakeWebcrm(), FakeWebshop()
    for dt in (Datatype.customers, Datatype.products):
        if dt in data.crm:
            crm.seed(ENTITY[dt], data.crm[dt], SEEDED_AT)
            shop.seed(COLLECTION[dt], data.shop[dt], SEEDED_AT)
    if Datatype.orders in data.crm:
        seed_orders(crm, shop, data, seed)
    return crm, shop


def seed_orders(crm: FakeWebcrm, shop: FakeWebshop, data: Dataset, seed: int) -> None:
    """Won opportunities of webCRM's organisations with lines of webCRM's products, and
    confirmed shop orders of the shop's customers with lines of the shop's products."""
    orgs = crm.ids("Organisation")
    products = [crm.peek("Product", pid) for pid in crm.ids("Product")]
    opps: list[dict[str, Any]] = []
    for row in data.crm[Datatype.orders]:
        k = row["k"]
        rng = rng_for(seed, "micro-opportunity", k)
        opps.append({
            "OpportunityOrganisationId": orgs[rng.randrange(len(orgs))],
            "OpportunityNumber": f"WC-{k + 1:06d}",
            "OpportunityCurrencyName": "DKK",
            "OpportunityDescription": f"Tilbud {k + 1}",
            "OpportunityDiscount": 0.0,
            "OpportunityPercent": 100,
            "OpportunityOrderDate": "2025-03-14T00:00:00.000000Z",
        })  # fmt: skip
    opp_ids = crm.seed("Opportunity", opps, SEEDED_AT)
    lines: list[dict[str, Any]] = []
    for oid, opp in zip(opp_ids, opps, strict=True):
        rng = rng_for(seed, "micro-lines", oid)
        for pos in range(data.lines_per_order):
            p = products[rng.randrange(len(products))]
            lines.append({
                "QuotationLineOpportunityId": oid,
                "QuotationLineOrganisationId": opp["OpportunityOrganisationId"],
                "QuotationLineData1": p["ProductCustom1"],
                "QuotationLineData2": p["ProductCustom2"],
                "QuotationLineQuantity": float(rng.randint(1, 10)),
                "QuotationLinePrice": p["ProductPrice"],
                "QuotationLineListPrice": p["ProductListPrice"],
                "QuotationLineCostPrice": p["ProductCostPrice"],
                "QuotationLineDiscount": 0.0,
                "QuotationLineVatPercentage": float(p["ProductVatCode"]),
                "QuotationLineSortOrder": pos + 1,
                "QuotationLineStockStatus": p["ProductStockStatus"],
            })  # fmt: skip
    crm.seed("QuotationLine", lines, SEEDED_AT)
    customers = shop.ids("customers")
    shop_products = [shop.peek("products", pid) for pid in shop.ids("products")]
    orders: list[dict[str, Any]] = []
    for row in data.shop[Datatype.orders]:
        k = row["k"]
        rng = rng_for(seed, "micro-order", k)
        order_lines = []
        for pos in range(data.lines_per_order):
            p = shop_products[rng.randrange(len(shop_products))]
            order_lines.append({
                "sku": p["sku"], "product_id": p["id"], "description": p["name"],
                "quantity": str(rng.randint(1, 10)), "unit_price": p["unit_price"],
                "discount_percent": "0", "vat_rate": p["vat_rate"], "position": pos + 1,
            })  # fmt: skip
        orders.append({
            "order_number": f"WS-{10_001 + k}",
            "customer_id": customers[rng.randrange(len(customers))],
            "status": "confirmed",
            "currency": "DKK",
            "order_date": "2025-03-14",
            "notes": f"Ordre {k + 1}",
            "lines": order_lines,
        })  # fmt: skip
    shop.seed("orders", orders, SEEDED_AT)


# ----------------------------------------------------------------------- edits
def edit_webcrm(crm: FakeWebcrm, datatypes: Sequence[Datatype], tag: str) -> None:
    """Every record of each datatype edited in webCRM (one PATCH per 500, as a user's
    import would), outside the timed runs."""
    for dt in datatypes:
        entity, id_field = ENTITY[dt], ID_FIELD[dt]
        records: list[dict[str, Any]] = []
        for i, rid in enumerate(crm.ids(entity)):
            if dt is Datatype.customers:
                change: dict[str, Any] = {"OrganisationTelephone": f"+45 {tag}{i:07d}"}
            elif dt is Datatype.products:
                change = {"ProductPrice": float(crm.peek(entity, rid)["ProductPrice"]) + 1.0}
            else:
                change = {"OpportunityDescription": f"Tilbud {tag}-{i}"}
            records.append({id_field: rid, **change})
        for result in crm.upsert(entity, records):
            assert result.error is None, result.error


def edit_webshop(shop: FakeWebshop, datatypes: Sequence[Datatype], tag: str) -> None:
    """Every record of each datatype edited in the shop, outside the timed runs."""
    for dt in datatypes:
        collection = COLLECTION[dt]
        for i, rid in enumerate(shop.ids(collection)):
            if dt is Datatype.customers:
                patch: dict[str, Any] = {"phone": f"+46 {tag}{i:07d}"}
            elif dt is Datatype.products:
                price = Decimal(shop.peek(collection, rid)["unit_price"]) + 1
                patch = {"unit_price": money(price)}
            else:
                patch = {"notes": f"Ordre {tag}-{i}"}
            shop.update(collection, rid, patch)


# ----------------------------------------------------------------------- running
@dataclass
class Phase:
    name: str
    report: RunReport
    fakes_seconds: float
    rss_mb: float
    profile: str = ""

    @property
    def read(self) -> int:
        return sum(s.read_webcrm + s.read_webshop for s in self.report.stats.values())

    def per_second(self, n: int) -> float:
        return n / max(self.report.seconds, 1e-9)

    @property
    def engine_seconds(self) -> float:
        """The run less the time spent inside the fakes: the engine alone."""
        return max(self.report.seconds - self.fakes_seconds, 1e-9)

    def engine_per_second(self, n: int) -> float:
        return n / self.engine_seconds


@dataclass
class Bench:
    inst: Installation
    crm: FakeWebcrm
    shop: FakeWebshop
    only: list[Datatype]
    profile: bool
    top: int
    profile_dir: Path | None = None
    """Where to write each run's profile (``pstats`` files) as well."""
    analyze: bool = False
    """PostgreSQL: ``VACUUM ANALYZE`` the state database before each run (what autovacuum does
    on a server where it is on), not timed."""
    statements: Counter[str] | None = None
    """``--statements``: per statement (its first 90 characters) ``[sent, rows]``."""
    phases: list[Phase] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def run(self, name: str) -> Phase:
        if self.analyze:  # VACUUM cannot run inside a transaction
            with self.inst.db.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE"
                )
        busy0 = self.crm.busy.seconds + self.shop.busy.seconds
        sent: Counter[str] = Counter()
        rows: Counter[str] = Counter()
        if self.statements is not None:

            def count(_c: Any, _cur: Any, stmt: str, params: Any, _ctx: Any, many: bool) -> None:
                key = " ".join(stmt.split())[:90]
                sent[key] += 1
                rows[key] += len(params) if many else 1

            event.listen(self.inst.db, "before_cursor_execute", count)
        profiler = cProfile.Profile() if self.profile else None
        if profiler is not None:
            profiler.enable()
        report = self.inst.sync(self.only)
        if profiler is not None:
            profiler.disable()
        if self.statements is not None:
            event.remove(self.inst.db, "before_cursor_execute", count)
        phase = Phase(
            name, report, self.crm.busy.seconds + self.shop.busy.seconds - busy0, peak_rss_mb()
        )
        if profiler is not None:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
            stats.print_stats(self.top)
            print(f"of which shopsync's own functions (top {self.top}):", file=out)
            stats.print_stats("shopsync/", self.top)
            phase.profile = out.getvalue()
            if self.profile_dir is not None:
                slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
                stats.dump_stats(str(self.profile_dir / f"{len(self.phases) + 1}-{slug}.prof"))
        if self.statements is not None:
            top = "\n".join(f"{n:7,} {rows[k]:9,}  {k}" for k, n in sent.most_common(self.top))
            phase.profile = (phase.profile or "") + (
                f"\nSQL statements: {sum(sent.values()):,} sent ({sum(rows.values()):,} rows)"
                f"\n   sent      rows  statement\n{top}\n"
            )
        self.phases.append(phase)
        print(f"  {name}: {phase.read:,} read, {report.writes:,} written in "
              f"{report.seconds:.1f} s", flush=True)  # fmt: skip
        return phase

    def expect(
        self, phase: Phase, what: str, got: int, want: int, *, at_least: bool = False
    ) -> None:
        if got < want if at_least else got != want:
            least = "at least " if at_least else ""
            self.failures.append(f"{phase.name}: {what} is {got:,}, expected {least}{want:,}")

    def check_clean(self, phase: Phase) -> None:
        for dt, s in phase.report.stats.items():
            self.expect(phase, f"{dt.value} put aside", s.put_aside, 0)
            self.expect(phase, f"{dt.value} waiting", s.waiting, 0)


def run_database(args: argparse.Namespace, state_url: str, data: Dataset) -> Bench:
    datatypes: list[Datatype] = args.datatype
    crm, shop = seed_fakes(data, args.seed)
    config = Config(
        webcrm=WebcrmConfig(base_url="http://webcrm.fake.invalid", auth_code=SecretStr("fake")),
        webshop=WebshopConfig(base_url="http://webshop.fake.invalid", token=SecretStr("fake")),
        state=StateConfig(url=state_url),
    )
    inst = Installation(config)
    # The fakes stand in for the HTTP clients: set where ``Installation`` caches its
    # clients (``cached_property``), so ``sync`` wires them exactly as it wires those.
    vars(inst)["webcrm"] = crm
    vars(inst)["webshop"] = shop
    analyze = args.analyze and state_url.startswith("postgresql")
    profile_dir = args.profile_dir / args.db if args.profile_dir is not None else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        inst, crm, shop, datatypes, args.profile or profile_dir is not None,
        args.profile_top, profile_dir, analyze, Counter() if args.statements else None,
    )  # fmt: skip
    print(f"  peak RSS with both fakes seeded: {peak_rss_mb():.0f} MB", flush=True)
    n_crm, n_shop = args.n // 2, args.n - args.n // 2
    try:
        first = bench.run("initial")
        bench.check_clean(first)
        for dt in datatypes:
            s = first.report.stats[dt]
            bench.expect(first, f"{dt.value} created in webshop", s.created_in_webshop, n_crm)
            bench.expect(first, f"{dt.value} created in webCRM", s.created_in_webcrm, n_shop)
        for name in ("echo (unchanged)", "changed in webCRM", "changed in webshop",
                     "echo after changes"):  # fmt: skip
            if name == "changed in webCRM":
                edit_webcrm(crm, datatypes, "1")
            elif name == "changed in webshop":
                edit_webshop(shop, datatypes, "2")
            phase = bench.run(name)
            bench.check_clean(phase)
            if name.startswith("echo"):
                bench.expect(phase, "records written", phase.report.writes, 0)
            for dt in datatypes:
                s = phase.report.stats[dt]
                if name.startswith("echo"):
                    read = s.read_webcrm + s.read_webshop
                    bench.expect(phase, f"{dt.value} read", read, args.n, at_least=True)
                elif name == "changed in webCRM":
                    bench.expect(
                        phase, f"{dt.value} updated in webshop", s.updated_in_webshop, args.n
                    )
                else:
                    bench.expect(
                        phase, f"{dt.value} updated in webCRM", s.updated_in_webcrm, args.n
                    )
        with inst.session() as session:
            for dt in datatypes:
                links = repo.count_links(session, dt.value).get("active", 0)
                bench.expect(first, f"{dt.value} links at the end", links, args.n)
        for dt in datatypes:
            bench.expect(first, f"webCRM {ENTITY[dt]} at the end", crm.count(ENTITY[dt]), args.n)
            bench.expect(
                first, f"webshop {COLLECTION[dt]} at the end", shop.count(COLLECTION[dt]), args.n
            )
    finally:
        inst.close()
    return bench


def print_table(title: str, bench: Bench) -> None:
    print()
    print(title)
    head = (f"{'phase':<22} {'read':>8} {'written':>8} {'seconds':>8} {'fakes s':>8} "
            f"{'read/s':>8} {'written/s':>9} {'engine s':>8} {'read/es':>8} "
            f"{'written/es':>10} {'webCRM req':>10} {'shop req':>8} {'peak RSS MB':>11}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for p in bench.phases:
        r = p.report
        print(f"{p.name:<22} {p.read:>8,} {r.writes:>8,} {r.seconds:>8.1f} "
              f"{p.fakes_seconds:>8.1f} {p.per_second(p.read):>8,.0f} "
              f"{p.per_second(r.writes):>9,.0f} {p.engine_seconds:>8.1f} "
              f"{p.engine_per_second(p.read):>8,.0f} {p.engine_per_second(r.writes):>10,.0f} "
              f"{r.webcrm_requests:>10,} "
              f"{r.webshop_requests:>8,} {p.rss_mb:>11.0f}")  # fmt: skip
    for p in bench.phases:
        if p.profile:
            print()
            print(f"--- profile: {p.name} (cProfile, top {bench.top} by cumulative time) ---")
            print(p.profile.strip())
    if bench.failures:
        print()
        for failure in bench.failures:
            print(f"CHECK FAILED: {failure}")


# ----------------------------------------------------------------------- databases
class Unavailable(Exception):
    """The database cannot be used here (the reason is the message)."""


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="shopsync-micro-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'state.sqlite'}"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of its own (``shopsync_bench_<hex>``), dropped after; where the role
    may not create databases, a schema of its own in the admin database instead."""
    import psycopg

    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except Exception as exc:
        raise Unavailable(
            f"PostgreSQL not reachable at {admin_url}: {type(exc).__name__}: {exc}".strip()
        ) from None
    name = f"shopsync_bench_{uuid.uuid4().hex[:8]}"
    base, _, _ = admin_url.rpartition("/")
    with admin:
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
        except psycopg.errors.InsufficientPrivilege:
            admin.execute(f'CREATE SCHEMA "{name}"')
            try:
                yield f"{admin_url}?options=-csearch_path%3D{name}"
            finally:
                admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            return
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def autovacuum(admin_url: str) -> str:
    """The server's ``autovacuum`` setting: when off, no table statistics are gathered
    (the planner works from its defaults) and no dead rows are removed unless someone
    runs ``VACUUM ANALYZE``."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute("SHOW autovacuum").fetchone()
    return str(row[0]) if row else "unknown"


def engine_source() -> str:
    """Which shopsync is measured: its directory and, in a git checkout, the commit
    (and whether its ``src`` has uncommitted changes, as while others work on it)."""
    import shopsync

    where = Path(shopsync.__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return str(where)
    return f"{where} (git {rev}{', with uncommitted changes' if dirty else ''})"


def one_database(args: argparse.Namespace) -> int:
    names = ", ".join(dt.value for dt in args.datatype)
    print(f"engine micro-benchmark: {args.n:,} records per datatype ({names}), half made "
          f"on each side; state database: {args.db}", flush=True)  # fmt: skip
    print(f"  shopsync: {engine_source()}", flush=True)
    t = time.perf_counter()
    data = build_dataset(args.n, args.datatype, args.seed, args.lines)
    print(f"  records built in {time.perf_counter() - t:.1f} s", flush=True)
    opener: Callable[[], Any] = (
        sqlite_database if args.db == "sqlite" else lambda: postgres_database(args.pg_admin_url)
    )
    try:
        with opener() as url:
            bench = run_database(args, url, data)
    except Unavailable as exc:
        print(f"  skipped: {exc}")
        return 0
    if args.db == "sqlite":
        title = "SQLite (temporary file)"
    else:
        title = (
            f"PostgreSQL (database of its own; server autovacuum {autovacuum(args.pg_admin_url)}; "
            + ("VACUUM ANALYZE before each run)" if args.analyze else "no VACUUM or ANALYZE)")
        )
    print_table(title, bench)
    return 1 if bench.failures else 0


def without_db(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--db":
            skip = True
        elif not arg.startswith("--db="):
            out.append(arg)
    return out


def datatypes(text: str) -> list[Datatype]:
    wanted = {Datatype(x.strip()) for x in text.split(",") if x.strip()}
    if Datatype.orders in wanted:  # orders need their customers and products (rule 6)
        wanted |= {Datatype.customers, Datatype.products}
    return [dt for dt in CHOICES if dt in wanted]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=20_000, help="records per datatype (default 20,000)")
    ap.add_argument("--datatype", type=datatypes, default=datatypes("customers,products"),
                    help="comma-separated: customers, products, orders (orders bring the other two)")  # fmt: skip
    ap.add_argument("--lines", type=int, default=3, help="lines per order (default 3)")
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--pg-admin-url", default=PG_ADMIN_URL,
                    help=f"where to create the database (default {PG_ADMIN_URL})")  # fmt: skip
    ap.add_argument("--analyze", action="store_true",
                    help="PostgreSQL: VACUUM ANALYZE the state database before each run (untimed), as "
                         "autovacuum would on a server where it is on")  # fmt: skip
    ap.add_argument("--profile", action="store_true", help="cProfile each run (slower)")
    ap.add_argument("--profile-top", type=int, default=25, help="functions shown per profile")
    ap.add_argument("--statements", action="store_true", help="count SQL statements per run")
    ap.add_argument("--profile-dir", type=Path,
                    help="also write each run's profile there (pstats files; implies --profile)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logs.configure("warning")
    if args.db == "both":
        # one process per database, so each peak RSS is its own
        status = 0
        for db in ("sqlite", "postgres"):
            cmd = [sys.executable, str(Path(__file__).resolve()), *without_db(sys.argv[1:])]
            status |= subprocess.run([*cmd, "--db", db], check=False).returncode
            print(flush=True)
        raise SystemExit(status)
    raise SystemExit(one_database(args))


if __name__ == "__main__":
    main()
