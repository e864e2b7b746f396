"""In-process fakes of webCRM and the webshop, for benchmarks of the engine alone.

Each fake plays a server *and* its client: what the engine sees through
:class:`~shopsync.engine.ports.WebcrmPort` / :class:`~shopsync.engine.ports.WebshopPort`
is what :class:`~shopsync.connectors.webcrm.client.WebcrmClient` and
:class:`~shopsync.connectors.webshop.client.WebshopClient` give it over HTTP from the
emulator and the reference webshop, without the HTTP, the JSON over the wire and the
servers' databases. So a benchmark through them measures the engine and its state
database, not the network or another process.

Semantics copied from the emulators (``emulators/webcrm/store.py``,
``emulators/webshop/service.py``), with the same helpers where they are importable:

* **webCRM**: full DTOs (every field of the definition, unset ones null) with
  ``<Entity>Id``, ``<Entity>CreatedAt``/``UpdatedAt`` (ISO 8601 UTC with microseconds and
  ``Z``, from one clock that never goes back), ``…CreatedBy``/``…UpdatedBy``. ``upsert``
  is ``PATCH``: a record without id (or id 0) is inserted, one with an id updates only
  the fields it carries, and every write moves ``UpdatedAt`` forward even when nothing
  changed (as webCRM does); each record fails on its own with ``"Error: …"``. Values
  are checked by the emulator's own ``clean_record``. Reads page like the client:
  ``iter_all`` by id, ``iter_updated_since`` by ``(UpdatedAt, Id)`` from ``since``
  minus the configured overlap, pages of ``page_size``, one request per page (and one
  empty page to prove the end of an exactly full one).
* **Webshop**: records in the reference server's form (``id`` ``prefix_hex32``,
  ``version``, ``created_at``/``updated_at`` in RFC 3339, money as two-decimal strings),
  validated by the reference server's own models; ``create`` is idempotent by key (the
  same key with another body is a 422), unique fields (``customer_number``, ``sku``,
  ``order_number``) give 409, ``update`` is a JSON merge patch with ``If-Match`` (412)
  that bumps ``version`` and ``updated_at`` only when a value changes, deletes leave
  tombstones (410 on read). ``write_many`` answers per op with the record or the
  exception, counting requests as batches of at most 500 (a shop with batch writes).

Every fake counts its requests (``requests_made``, ``requests_by_endpoint``) and the
seconds spent inside itself (``busy``), so a benchmark can tell the fakes' share of a
run from the engine's. Callbacks into the engine (``on_send``) are not counted as the
fake's time.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from shopsync.connectors.webcrm.client import UpsertResult, overlap_start
from shopsync.connectors.webcrm.fieldspec import EntitySpec
from shopsync.connectors.webcrm.queries import entity_spec
from shopsync.connectors.webshop.client import (
    ChangePage,
    CreateOp,
    FieldError,
    UpdateOp,
    WebshopConflict,
    WebshopError,
    WebshopGone,
    WebshopNotFound,
    WebshopPreconditionFailed,
    WebshopValidationError,
)
from shopsync.contract.money import LineAmounts, format_money, order_total
from shopsync.emulators.webcrm.timeutil import MonotonicClock, format_ts
from shopsync.emulators.webcrm.validation import FieldError as CrmFieldError
from shopsync.emulators.webcrm.validation import clean_record, record_id
from shopsync.emulators.webshop.clock import Clock, rfc3339
from shopsync.emulators.webshop.db import new_id
from shopsync.emulators.webshop.records import RESOURCES, render
from shopsync.emulators.webshop.service import fingerprint
from shopsync.emulators.webshop.validation import READ_ONLY, check, merge_patch

DELETABLE = ("Product", "QuotationLine")
"""webCRM entities whose records the API can delete."""
BATCH_ITEMS = 500
"""Items per ``POST /{collection}/batch`` the fake shop is taken to allow."""


class Stopwatch:
    """Seconds spent inside a fake, summed over its calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None


def _dumps(record: Mapping[str, Any]) -> bytes:
    # A copy of the right size: the bytes orjson returns keep its 32 KiB output buffer
    # allocated (tracemalloc: ~32 KiB per 3 KiB organisation), which made the fakes,
    # not the engine, the largest part of the process's memory.
    return memoryview(orjson.dumps(record)).tobytes()


def _loads(blob: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(blob)
    return value


# ------------------------------------------------------------------------- webCRM
class _CrmTable:
    """One webCRM datatype: each record as JSON (every read is a fresh copy, as a parsed
    answer is) and the two timestamps the queries order by."""

    def __init__(self, spec: EntitySpec) -> None:
        self.spec = spec
        self.columns = tuple(f.name for f in spec.fields)
        self.rows: dict[int, bytes] = {}
        self.updated: dict[int, str] = {}
        self.created: dict[int, str] = {}
        self.next_id = 1

    def blank(self) -> dict[str, Any]:
        return dict.fromkeys(self.columns)

    def put(self, rid: int, record: dict[str, Any]) -> None:
        spec = self.spec
        self.rows[rid] = _dumps(record)
        self.updated[rid] = record[spec.updated_at_field]
        self.created[rid] = record[spec.created_at_field]


class FakeWebcrm:
    """webCRM and :class:`WebcrmClient` in one object (see the module docstring)."""

    def __init__(
        self, *, page_size: int = 1000, batch_size: int = 500, overlap_seconds: float = 5.0
    ) -> None:
        self.page_size = page_size
        self.batch_size = batch_size
        self.overlap = timedelta(seconds=overlap_seconds)
        self.clock = MonotonicClock()
        self.tables: dict[str, _CrmTable] = {}
        self.requests_made = 0
        self.requests_by_endpoint: Counter[str] = Counter()
        self.busy = Stopwatch()

    def _table(self, entity: str) -> _CrmTable:
        spec = entity_spec(entity)
        table = self.tables.get(spec.name)
        if table is None:
            table = self.tables[spec.name] = _CrmTable(spec)
        return table

    def _request(self, endpoint: str) -> None:
        self.requests_made += 1
        self.requests_by_endpoint[endpoint] += 1

    # ------------------------------------------------------------- outside the engine
    def seed(self, entity: str, rows: Iterable[Mapping[str, Any]], since: datetime) -> list[int]:
        """Insert records as if made long ago (``since`` plus a minute each), so that
        the read overlap after the first sync does not read them again; returns ids."""
        table = self._table(entity)
        spec = table.spec
        ids = []
        for k, raw in enumerate(rows):
            values = clean_record(spec, dict(raw))
            rid = table.next_id
            table.next_id += 1
            stamp = format_ts(since + timedelta(minutes=k))
            record = table.blank()
            record.update(values)
            record[spec.id_field] = rid
            record[spec.created_at_field] = record[spec.updated_at_field] = stamp
            record[spec.created_by_field] = record[spec.updated_by_field] = "Seed"
            table.put(rid, record)
            ids.append(rid)
        return ids

    def ids(self, entity: str) -> list[int]:
        return sorted(self._table(entity).rows)

    def count(self, entity: str) -> int:
        return len(self._table(entity).rows)

    def peek(self, entity: str, rid: int) -> dict[str, Any]:
        """A record without counting a request (for the benchmark's own checks)."""
        return _loads(self._table(entity).rows[rid])

    # ----------------------------------------------------------------------- reading
    def _pages(
        self, endpoint: str, table: _CrmTable, ids: Sequence[int]
    ) -> Iterator[list[dict[str, Any]]]:
        """``ids`` a page at a time, one request each, as ``WebcrmClient`` pages: it asks
        until a page comes back shorter than ``page_size`` (an exactly full last page
        costs one more, empty request); empty pages are not yielded."""
        size = self.page_size
        start = 0
        while True:
            self.busy.start()
            self._request(endpoint)
            rows = [_loads(table.rows[rid]) for rid in ids[start : start + size]]
            self.busy.stop()
            if rows:
                yield rows
            if len(rows) < size:
                return
            start += size

    def iter_all(self, entity: str) -> Iterator[list[dict[str, Any]]]:
        table = self._table(entity)
        yield from self._pages(f"GET /{table.spec.collection}", table, sorted(table.rows))

    def _since(self, table: _CrmTable, stamps: dict[int, str], lower: datetime | None) -> list[int]:
        floor = format_ts(lower) if lower is not None else ""
        return [rid for stamp, rid in sorted((s, r) for r, s in stamps.items() if s >= floor)]

    def iter_updated_since(
        self, entity: str, since: datetime | None, *, settled: datetime | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        table = self._table(entity)
        self.busy.start()
        ids = self._since(table, table.updated, overlap_start(since, self.overlap, settled))
        self.busy.stop()
        yield from self._pages("GET /Queries", table, ids)

    def iter_created_since(self, entity: str, since: datetime) -> Iterator[list[dict[str, Any]]]:
        table = self._table(entity)
        self.busy.start()
        ids = self._since(table, table.created, since)
        self.busy.stop()
        yield from self._pages("GET /Queries", table, ids)

    _IN = re.compile(r"SELECT \* FROM (\w+) WHERE (\w+) IN \(([-0-9, ]*)\)(?: ORDER BY (\w+))?\s*$")

    def iter_query(self, script: str) -> Iterator[list[dict[str, Any]]]:
        """Only the form the engine sends between sweeps: ``SELECT * FROM E WHERE F IN
        (…) ORDER BY G`` (the lines of changed opportunities)."""
        m = self._IN.match(script)
        if m is None:
            raise NotImplementedError(f"the fake webCRM cannot run this query: {script[:200]}")
        entity, field, values, order = m.groups()
        table = self._table(entity)
        wanted = {int(v) for v in values.split(",") if v.strip()}
        self.busy.start()
        rows = [(rid, _loads(blob)) for rid, blob in table.rows.items()]
        hits = [rid for rid, rec in rows if rec.get(field) in wanted]
        if order:
            by = {rid: rec.get(order) for rid, rec in rows}
            hits.sort(key=lambda r: (by[r] is None, by[r]))
        self.busy.stop()
        yield from self._pages("GET /Queries", table, hits)

    def get(self, entity: str, id: int) -> dict[str, Any] | None:
        table = self._table(entity)
        self._request(f"GET /{table.spec.collection}/{{id}}")
        blob = table.rows.get(int(id))
        return _loads(blob) if blob is not None else None

    def quotation_lines_of(self, opportunity_id: int) -> list[dict[str, Any]]:
        table = self._table("QuotationLine")
        self.busy.start()
        ids = sorted(
            rid
            for rid, blob in table.rows.items()
            if _loads(blob).get("QuotationLineOpportunityId") == int(opportunity_id)
        )
        self.busy.stop()
        endpoint = "GET /Opportunities/{id}/QuotationLines"
        return [rec for page in self._pages(endpoint, table, ids) for rec in page]

    # ----------------------------------------------------------------------- writing
    def _references(self, entity: str, values: dict[str, Any], *, insert: bool) -> None:
        """The links webCRM insists on (``emulators/webcrm/store.py``): a line belongs to
        an existing opportunity (and gets its organisation), an opportunity's
        organisation exists."""
        if entity == "QuotationLine" and (insert or "QuotationLineOpportunityId" in values):
            opp = values.get("QuotationLineOpportunityId")
            if opp is None:
                raise CrmFieldError(
                    "QuotationLineOpportunityId",
                    "required: a quotation line belongs to an opportunity",
                )
            blob = self._table("Opportunity").rows.get(int(opp))
            if blob is None:
                raise CrmFieldError(
                    "QuotationLineOpportunityId", f"opportunity {opp} does not exist"
                )
            if insert and values.get("QuotationLineOrganisationId") is None:
                values["QuotationLineOrganisationId"] = _loads(blob).get(
                    "OpportunityOrganisationId"
                )
        elif entity == "Opportunity":
            org = values.get("OpportunityOrganisationId")
            if org and int(org) not in self._table("Organisation").rows:
                raise CrmFieldError(
                    "OpportunityOrganisationId", f"organisation {org} does not exist"
                )

    def _write_one(self, table: _CrmTable, raw: Mapping[str, Any]) -> int:
        spec = table.spec
        values = clean_record(spec, dict(raw))
        rid = record_id(spec, dict(raw))
        now = self.clock.now()
        if rid is None:
            self._references(spec.name, values, insert=True)
            rid = table.next_id
            table.next_id += 1
            record = table.blank()
            record.update(values)
            record[spec.id_field] = rid
            record[spec.created_at_field] = record[spec.updated_at_field] = now
            record[spec.created_by_field] = record[spec.updated_by_field] = "API"
        else:
            blob = table.rows.get(rid)
            if blob is None:
                raise CrmFieldError(spec.id_field, f"{spec.name} {rid} does not exist")
            self._references(spec.name, values, insert=False)
            record = _loads(blob)
            record.update(values)
            record[spec.updated_at_field] = now
            record[spec.updated_by_field] = "API"
        table.put(rid, record)
        return rid

    def upsert(
        self,
        entity: str,
        records: Sequence[Mapping[str, Any]],
        *,
        on_send: Callable[[range], None] | None = None,
    ) -> list[UpsertResult]:
        """``PATCH`` in batches of ``batch_size``, each record failing on its own."""
        table = self._table(entity)
        results: list[UpsertResult] = []
        for start in range(0, len(records), self.batch_size):
            batch = records[start : start + self.batch_size]
            if on_send is not None:
                on_send(range(start, start + len(batch)))
            self.busy.start()
            self._request(f"PATCH /{table.spec.collection}")
            for k, raw in enumerate(batch):
                try:
                    results.append(UpsertResult(start + k, self._write_one(table, raw), None))
                except CrmFieldError as exc:
                    results.append(UpsertResult(start + k, None, f"Error: {exc}"))
            self.busy.stop()
        return results

    def delete(self, entity: str, id: int) -> None:
        table = self._table(entity)
        if table.spec.name not in DELETABLE:
            raise ValueError(f"webCRM's API cannot delete {table.spec.collection}")
        self._request(f"DELETE /{table.spec.collection}/{{id}}")
        table.rows.pop(int(id), None)
        table.updated.pop(int(id), None)
        table.created.pop(int(id), None)


# ------------------------------------------------------------------------ webshop
class _ShopCollection:
    def __init__(self, collection: str) -> None:
        self.resource = RESOURCES[collection]
        self.records: dict[str, bytes] = {}
        self.updated: dict[str, datetime] = {}
        self.deleted: set[str] = set()
        self.unique: dict[Any, str] = {}
        """Value of the unique field → the live record holding it."""
        self.keys: dict[str, tuple[str, bytes]] = {}
        """Idempotency key → (fingerprint of the body, the record answered)."""


class FakeWebshop:
    """The reference webshop and :class:`WebshopClient` in one object."""

    def __init__(self, *, page_size: int = 1000) -> None:
        self.page_size = page_size
        self.clock = Clock()
        self.collections = {c: _ShopCollection(c) for c in RESOURCES}
        self.requests_made = 0
        self.requests_by_endpoint: Counter[str] = Counter()
        self.busy = Stopwatch()

    def _request(self, endpoint: str, n: int = 1) -> None:
        self.requests_made += n
        self.requests_by_endpoint[endpoint] += n

    # ------------------------------------------------------------- outside the engine
    def seed(
        self, collection: str, bodies: Iterable[Mapping[str, Any]], since: datetime
    ) -> list[str]:
        """Create records as if made long ago (``since`` plus a minute each)."""
        ids = []
        for k, body in enumerate(bodies):
            record = self._create(collection, dict(body), None, at=since + timedelta(minutes=k))
            ids.append(str(record["id"]))
        return ids

    def ids(self, collection: str) -> list[str]:
        c = self.collections[collection]
        return sorted(rid for rid in c.records if rid not in c.deleted)

    def count(self, collection: str) -> int:
        c = self.collections[collection]
        return len(c.records) - len(c.deleted)

    def peek(self, collection: str, rid: str) -> dict[str, Any]:
        return _loads(self.collections[collection].records[rid])

    # --------------------------------------------------------------- the server's part
    def _refused(self, what: str, errors: list[FieldError]) -> WebshopValidationError:
        listed = "; ".join(str(e) for e in errors)
        return WebshopValidationError(f"{what}: HTTP 422: {listed}", errors=errors, status=422)

    def _values(
        self, collection: str, document: dict[str, Any], current: dict[str, Any] | None, what: str
    ) -> dict[str, Any]:
        """The document as the reference server stores it (its own models validate it),
        rendered as it answers; line ids kept or given; the order's total computed."""
        c = self.collections[collection]
        model, problems = check(c.resource.model, document)
        errors = [FieldError(p.field, p.message) for p in problems]
        if collection == "orders":
            errors += self._order_references(document, current)
        if model is None or errors:
            raise self._refused(what, errors)
        values = c.resource.model_values(model)
        if collection == "orders":
            for line in values["lines"]:
                if not line["id"]:
                    line["id"] = new_id("lin")
            total = order_total(
                (
                    LineAmounts(x["quantity"], x["unit_price"], x["discount_percent"])
                    for x in values["lines"]
                ),
                values["discount_percent"],
            )
            values["total_excl_vat"] = total
        rendered: dict[str, Any] = render(values)
        return rendered

    def _order_references(
        self, document: dict[str, Any], current: dict[str, Any] | None
    ) -> list[FieldError]:
        errors = []
        customers = self.collections["customers"]
        customer = document.get("customer_id")
        if isinstance(customer, str) and (
            current is None or customer != current.get("customer_id")
        ):
            if customer not in customers.records:
                errors.append(FieldError("customer_id", f"no customer with id {customer}"))
            elif customer in customers.deleted:
                errors.append(FieldError("customer_id", f"customer {customer} is deleted"))
        products = self.collections["products"].records
        own = {str(x["id"]) for x in (current or {}).get("lines") or []}
        for index, line in enumerate(document.get("lines") or []):
            if not isinstance(line, dict):
                continue
            product = line.get("product_id")
            if isinstance(product, str) and product not in products:
                errors.append(
                    FieldError(f"lines[{index}].product_id", f"no product with id {product}")
                )
            line_id = line.get("id")
            if isinstance(line_id, str) and line_id not in own:
                errors.append(
                    FieldError(
                        f"lines[{index}].id",
                        "not a line of this order (leave id out for a new line)",
                    )
                )
        return errors

    def _check_unique(
        self, collection: str, values: dict[str, Any], rid: str | None, what: str
    ) -> None:
        c = self.collections[collection]
        field = c.resource.unique
        value = values.get(field)
        holder = c.unique.get(value) if value is not None else None
        if holder is not None and holder != rid:
            error = FieldError(field, f"already used by {c.resource.name} {holder}")
            conflict = WebshopConflict(f"{what}: HTTP 409: {error}", field=field, status=409)
            conflict.errors = [error]
            raise conflict

    def _store(
        self, collection: str, record: dict[str, Any], previous: dict[str, Any] | None
    ) -> None:
        c = self.collections[collection]
        field = c.resource.unique
        if previous is not None and previous.get(field) is not None:
            c.unique.pop(previous[field], None)
        if record.get(field) is not None:
            c.unique[record[field]] = record["id"]
        c.records[record["id"]] = _dumps(record)
        c.updated[record["id"]] = datetime.fromisoformat(record["updated_at"])

    def _create(
        self, collection: str, body: dict[str, Any], key: str | None, *, at: datetime | None = None
    ) -> dict[str, Any]:
        c = self.collections[collection]
        what = f"POST /{collection}"
        print_ = fingerprint(body)
        if key is not None and key in c.keys:
            seen, answer = c.keys[key]
            if seen != print_:
                error = FieldError(
                    "Idempotency-Key",
                    f"already used for a different {c.resource.name}: a retry must send the same body",
                )
                raise self._refused(what, [error])
            return _loads(answer)  # a replay: the record made the first time
        values = self._values(collection, body, None, what)
        self._check_unique(collection, values, None, what)
        now = at or self.clock.now()
        total = values.pop("total_excl_vat", None)
        record = {
            "id": new_id(c.resource.prefix),
            **values,
            **({"total_excl_vat": total} if total is not None else {}),
            "version": 1,
            "created_at": rfc3339(now),
            "updated_at": rfc3339(now),
        }
        self._store(collection, record, None)
        if key is not None:
            c.keys[key] = (print_, _dumps(record))
        return record

    def _live(self, collection: str, rid: str, what: str) -> dict[str, Any]:
        c = self.collections[collection]
        blob = c.records.get(rid)
        if blob is None:
            raise WebshopNotFound(
                f"{what}: HTTP 404: no {c.resource.name} with id {rid}", status=404
            )
        if rid in c.deleted:
            raise WebshopGone(f"{what}: HTTP 410: {c.resource.name} {rid} was deleted", status=410)
        return _loads(blob)

    @staticmethod
    def _writable(record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in READ_ONLY}

    def _patch(
        self, collection: str, rid: str, patch: Mapping[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        what = f"PATCH /{collection}/{rid}"
        current = self._live(collection, rid, what)
        document = merge_patch(self._writable(current), dict(patch))
        values = self._values(collection, document, current, what)
        if if_match is not None and if_match != current["version"]:
            raise WebshopPreconditionFailed(
                f"{what}: HTTP 412: If-Match names version {if_match} but the record is at "
                f"version {current['version']}",
                status=412,
            )
        total = values.pop("total_excl_vat", None)
        if values == self._writable(current):
            return current  # nothing changed: version and updated_at stay
        self._check_unique(collection, values, rid, what)
        now = self.clock.now()
        record = {
            "id": rid,
            **values,
            **({"total_excl_vat": total} if total is not None else {}),
            "version": int(current["version"]) + 1,
            "created_at": current["created_at"],
            "updated_at": rfc3339(now),
        }
        self._store(collection, record, current)
        return record

    # ---------------------------------------------------------------- the client's part
    def iter_changes(
        self, collection: str, updated_since: datetime | None, include_deleted: bool = True
    ) -> Iterator[ChangePage]:
        """Pages ordered by ``(updated_at, id)``, ``updated_since`` inclusive; a page is
        yielded even when empty, as the client does."""
        c = self.collections[collection]
        self.busy.start()
        floor = updated_since.astimezone(UTC) if updated_since is not None else None
        order = sorted(
            (at, rid)
            for rid, at in c.updated.items()
            if (floor is None or at >= floor) and (include_deleted or rid not in c.deleted)
        )
        self.busy.stop()
        size = self.page_size
        start = 0
        while True:
            self.busy.start()
            self._request(f"GET /{collection}")
            chunk = order[start : start + size]
            items = [
                {"id": rid, "deleted": True, "updated_at": rfc3339(at)}
                if rid in c.deleted
                else _loads(c.records[rid])
                for at, rid in chunk
            ]
            more = len(order) > start + size
            self.busy.stop()
            yield ChangePage(items=items, next_cursor=f"after-{start + size}" if more else None)
            if not more:
                return
            start += size

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        self._request(f"GET /{collection}/{{id}}")
        try:
            return self._live(collection, id, f"GET /{collection}/{id}")
        except WebshopNotFound:
            return None

    def create(
        self, collection: str, body: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        self.busy.start()
        try:
            self._request(f"POST /{collection}")
            return self._create(collection, dict(body), idempotency_key)
        finally:
            self.busy.stop()

    def update(
        self, collection: str, id: str, patch: Mapping[str, Any], if_match: int | None = None
    ) -> dict[str, Any]:
        self.busy.start()
        try:
            self._request(f"PATCH /{collection}/{{id}}")
            return self._patch(collection, id, patch, if_match)
        finally:
            self.busy.stop()

    def delete(self, collection: str, id: str) -> None:
        c = self.collections[collection]
        self._request(f"DELETE /{collection}/{{id}}")
        if id not in c.records or id in c.deleted:
            return
        record = _loads(c.records[id])
        c.deleted.add(id)
        field = c.resource.unique
        if record.get(field) is not None:
            c.unique.pop(record[field], None)
        now = self.clock.now()
        record["version"] = int(record["version"]) + 1
        record["updated_at"] = rfc3339(now)
        c.records[id] = _dumps(record)
        c.updated[id] = now

    def write_many(self, collection: str, ops: Sequence[Any]) -> list[Any]:
        """Per op, the record written or the exception its single request would raise;
        ⌈ops/500⌉ requests (``POST /{collection}/batch``)."""
        self.busy.start()
        try:
            self._request(f"POST /{collection}/batch", -(-len(ops) // BATCH_ITEMS))
            out: list[dict[str, Any] | WebshopError] = []
            for op in ops:
                try:
                    if isinstance(op, CreateOp):
                        out.append(self._create(collection, dict(op.body), op.idempotency_key))
                    elif isinstance(op, UpdateOp):
                        out.append(self._patch(collection, op.id, op.patch, op.if_match))
                    else:
                        raise TypeError(f"not a write op: {op!r}")
                except WebshopError as exc:
                    out.append(exc)
            return out
        finally:
            self.busy.stop()


def money(value: Decimal | float | str) -> str:
    """A money value as the shop writes it (``"1249.50"``)."""
    return format_money(Decimal(str(value)))
