"""The emulator's state: one SQLite table per webCRM datatype, one column per DTO field.

Tables and columns come from ``connectors/webcrm/schema.py`` (the swagger definitions),
so what the emulator stores, checks and returns is exactly what the definition lists.
Every SQL statement here is built from those whitelisted names and ``?`` parameters;
no client text is ever pasted into SQL.

Writes move ``…UpdatedAt`` through one :class:`MonotonicClock`, so every write of every
record gets a distinct, increasing timestamp. ``PATCH`` runs in one transaction.

Each row also keeps its DTO as JSON text (column ``_json``), written together with the
columns from the same dict. Pages of 1000 rows of 100+ fields are then served by
joining stored text instead of building and encoding 100,000 Python values per page;
the columns stay the truth for ``WHERE``/``ORDER BY`` (tests check both agree).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from shopsync.connectors.webcrm.fieldspec import EntitySpec
from shopsync.connectors.webcrm.schema import ENTITIES, OPPORTUNITY, ORGANISATION, QUOTATIONLINE
from shopsync.emulators.webcrm.timeutil import MonotonicClock
from shopsync.emulators.webcrm.validation import FieldError, clean_record, record_id

EventType = Literal["Create", "Update", "Delete"]
API_USER = "API"
"""What ``…CreatedBy``/``…UpdatedBy`` say for writes through the API."""
SEED_USER = "Seed"
PATCH_LIMIT = 1000
"""Records accepted by one ``PATCH`` call (webCRM does not publish its limit)."""

JSON_COLUMN = "_json"
"""The row's DTO as JSON text (not a DTO field, so ``/Queries`` cannot name it)."""
_SQL_TYPE = {"string": "TEXT", "integer": "INTEGER", "number": "REAL", "boolean": "INTEGER"}


def q(name: str) -> str:
    """Quote a column or table name that comes from the whitelist (``schema.py``)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Change:
    """One record written: what hooks are told about."""

    entity: str
    event: EventType
    record_id: int


class NotFound(LookupError):
    """No record with that id."""


@dataclass(frozen=True)
class _Table:
    """Precomputed SQL snippets and column facts for one entity."""

    spec: EntitySpec
    columns: tuple[str, ...]
    bool_positions: tuple[int, ...]
    select: str
    _inserts: dict[tuple[str, ...], str] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, spec: EntitySpec) -> _Table:
        columns = tuple(f.name for f in spec.fields)
        bools = tuple(i for i, f in enumerate(spec.fields) if f.type == "boolean")
        select = f"SELECT {', '.join(q(c) for c in columns)} FROM {q(spec.name)}"
        return cls(spec, columns, bools, select)

    def insert_sql(self, cols: tuple[str, ...]) -> str:
        """INSERT of ``cols`` plus the JSON text.

        Only the non-null columns are bound: binding all 118 (mostly null) parameters
        costs SQLite several times more than the row itself.
        """
        sql = self._inserts.get(cols)
        if sql is None:
            names = [*cols, JSON_COLUMN]
            sql = (
                f"INSERT INTO {q(self.spec.name)} ({', '.join(q(c) for c in names)}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            )
            self._inserts[cols] = sql
        return sql

    def blank(self) -> dict[str, Any]:
        """Every DTO field, null: the start of a new or replaced record."""
        return dict.fromkeys(self.columns)

    @staticmethod
    def dump(record: dict[str, Any]) -> str:
        """Compact JSON, UTF-8, floats in shortest round-trip form (orjson: ~15× json).

        A record corrupted through :meth:`Store.corrupt` may hold a lone surrogate,
        which orjson refuses; the standard library writes it as a ``\\ud83d`` escape,
        as .NET does.
        """
        try:
            return orjson.dumps(record).decode()
        except TypeError:
            return json.dumps(record, separators=(",", ":"))

    def ddl(self) -> list[str]:
        cols = []
        for f in self.spec.fields:
            if f.name == self.spec.id_field:
                cols.append(f"{q(f.name)} INTEGER PRIMARY KEY AUTOINCREMENT")
            else:
                cols.append(f"{q(f.name)} {_SQL_TYPE[f.type]}")
        cols.append(f"{q(JSON_COLUMN)} TEXT NOT NULL")
        name = self.spec.name
        stmts = [
            f"CREATE TABLE IF NOT EXISTS {q(name)} ({', '.join(cols)})",
            f"CREATE INDEX IF NOT EXISTS {q('ix_' + name + '_updated')} "
            f"ON {q(name)} ({q(self.spec.updated_at_field)})",
        ]
        if name == QUOTATIONLINE.name:
            stmts.append(
                f"CREATE INDEX IF NOT EXISTS {q('ix_QuotationLine_opportunity')} "
                f"ON {q(name)} ({q('QuotationLineOpportunityId')}, {q('QuotationLineId')})"
            )
        return stmts

    def to_dto(self, row: Sequence[Any]) -> dict[str, Any]:
        values = list(row)
        for i in self.bool_positions:
            if values[i] is not None:
                values[i] = bool(values[i])
        return dict(zip(self.columns, values, strict=True))


HOOK_DDL = (
    f"CREATE TABLE IF NOT EXISTS {q('Hook')} ("
    '"Id" INTEGER PRIMARY KEY AUTOINCREMENT, "Entity" TEXT NOT NULL, "TargetUrl" TEXT NOT NULL, '
    '"EventType" TEXT, "IsEnabled" INTEGER NOT NULL, "Filter" TEXT NOT NULL, '
    '"CreatedAt" TEXT, "CreatedBy" TEXT, "UpdatedAt" TEXT, "UpdatedBy" TEXT)'
)
HOOK_COLUMNS = (
    "Id",
    "Entity",
    "TargetUrl",
    "EventType",
    "IsEnabled",
    "Filter",
    "CreatedAt",
    "CreatedBy",
    "UpdatedAt",
    "UpdatedBy",
)


class Store:
    """SQLite-backed state of one emulator process (thread-safe, one connection)."""

    def __init__(self, path: Path | str, clock: MonotonicClock | None = None) -> None:
        self.path = str(path)
        self.clock = clock or MonotonicClock()
        self.tables = {name: _Table.of(spec) for name, spec in ENTITIES.items()}
        self._lock = threading.RLock()
        self._next_ids: dict[str, int] = {}
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, cached_statements=512
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA temp_store=MEMORY")
        self._db.execute("PRAGMA cache_size=-65536")
        self._create()
        for table in self.tables.values():
            row = self._db.execute(
                f"SELECT MAX({q(table.spec.updated_at_field)}) FROM {q(table.spec.name)}"
            ).fetchone()
            self.clock.advance_to(row[0])

    # ------------------------------------------------------------------ housekeeping
    def _create(self) -> None:
        for table in self.tables.values():
            for stmt in table.ddl():
                self._db.execute(stmt)
        self._db.execute(HOOK_DDL)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._next_ids.clear()
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def reset(self) -> None:
        """Drop every record and hook; ids start again at 1."""
        with self.transaction() as db:
            for table in self.tables.values():
                db.execute(f"DROP TABLE IF EXISTS {q(table.spec.name)}")
            db.execute(f"DROP TABLE IF EXISTS {q('Hook')}")
            db.execute("DELETE FROM sqlite_sequence")
            for table in self.tables.values():
                for stmt in table.ddl():
                    db.execute(stmt)
            db.execute(HOOK_DDL)

    def count(self, entity: str) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM {q(entity)}").fetchone()
        return int(row[0])

    def max_id(self, entity: str) -> int:
        spec = self.tables[entity].spec
        with self._lock:
            row = self._db.execute(f"SELECT MAX({q(spec.id_field)}) FROM {q(entity)}").fetchone()
            seq = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (entity,)
            ).fetchone()
        return max(int(row[0] or 0), int(seq[0]) if seq else 0)

    # ------------------------------------------------------------------ reading
    def page(
        self,
        entity: str,
        page: int,
        size: int,
        *,
        where: str = "",
        params: Sequence[Any] = (),
        order: str = "",
    ) -> list[dict[str, Any]]:
        """One page (1-based) of records, ``where``/``order`` being whitelisted SQL."""
        table = self.tables[entity]
        sql = table.select
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order + ', ' if order else ''}{q(table.spec.id_field)}"
        sql += " LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, (*params, size, (page - 1) * size)).fetchall()
        return [table.to_dto(r) for r in rows]

    def page_json(
        self,
        entity: str,
        page: int,
        size: int,
        *,
        where: str = "",
        params: Sequence[Any] = (),
        order: str = "",
    ) -> str:
        """Like :meth:`page`, as the JSON array text the API answers with."""
        spec = self.tables[entity].spec
        sql = f"SELECT {q(JSON_COLUMN)} FROM {q(entity)}"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order + ', ' if order else ''}{q(spec.id_field)}"
        sql += " LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, (*params, size, (page - 1) * size)).fetchall()
        return "[" + ",".join(r[0] for r in rows) + "]"

    def get_json(self, entity: str, rid: int) -> str | None:
        spec = self.tables[entity].spec
        with self._lock:
            row = self._db.execute(
                f"SELECT {q(JSON_COLUMN)} FROM {q(entity)} WHERE {q(spec.id_field)} = ?", (rid,)
            ).fetchone()
        return str(row[0]) if row else None

    def get(self, entity: str, rid: int) -> dict[str, Any] | None:
        table = self.tables[entity]
        with self._lock:
            row = self._db.execute(
                f"{table.select} WHERE {q(table.spec.id_field)} = ?", (rid,)
            ).fetchone()
        return table.to_dto(row) if row else None

    def exists(self, entity: str, rid: int) -> bool:
        spec = self.tables[entity].spec
        with self._lock:
            row = self._db.execute(
                f"SELECT 1 FROM {q(entity)} WHERE {q(spec.id_field)} = ?", (rid,)
            ).fetchone()
        return row is not None

    # ------------------------------------------------------------------ writing
    def _references(
        self, db: sqlite3.Connection, entity: str, values: dict[str, Any], *, full: bool
    ) -> None:
        """Check the links webCRM insists on, and fill a line's organisation.

        A quotation line belongs to an existing opportunity; an opportunity's
        organisation, when given, exists. A line without an organisation gets its
        opportunity's.
        """
        if entity == QUOTATIONLINE.name:
            field = "QuotationLineOpportunityId"
            if full or field in values:
                opp = values.get(field)
                if opp is None:
                    raise FieldError(field, "required: a quotation line belongs to an opportunity")
                row = db.execute(
                    f"SELECT {q('OpportunityOrganisationId')} FROM {q(OPPORTUNITY.name)} "
                    f"WHERE {q(OPPORTUNITY.id_field)} = ?",
                    (opp,),
                ).fetchone()
                if row is None:
                    raise FieldError(field, f"opportunity {opp} does not exist")
                if full and values.get("QuotationLineOrganisationId") is None:
                    values["QuotationLineOrganisationId"] = row[0]
        elif entity == OPPORTUNITY.name:
            field = "OpportunityOrganisationId"
            org = values.get(field)
            if org:
                found = db.execute(
                    f"SELECT 1 FROM {q(ORGANISATION.name)} WHERE {q(ORGANISATION.id_field)} = ?",
                    (org,),
                ).fetchone()
                if found is None:
                    raise FieldError(field, f"organisation {org} does not exist")

    def _next_id(self, db: sqlite3.Connection, entity: str, id_field: str) -> int:
        """The id AUTOINCREMENT would give next (ids are never reused, as in webCRM).

        Looked up once per transaction and then counted on (the transaction holds the
        write lock, so nobody else inserts meanwhile).
        """
        rid = self._next_ids.get(entity)
        if rid is None:
            row = db.execute(f"SELECT MAX({q(id_field)}) FROM {q(entity)}").fetchone()
            seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (entity,)).fetchone()
            rid = max(int(row[0] or 0), int(seq[0]) if seq else 0) + 1
        self._next_ids[entity] = rid + 1
        return rid

    def _write_row(self, db: sqlite3.Connection, entity: str, record: dict[str, Any]) -> None:
        """INSERT a complete record: its columns and its JSON, from the same dict."""
        table = self.tables[entity]
        cols = tuple(c for c, v in record.items() if v is not None)
        db.execute(table.insert_sql(cols), (*(record[c] for c in cols), table.dump(record)))

    def _insert(
        self, db: sqlite3.Connection, entity: str, values: dict[str, Any], user: str
    ) -> int:
        table = self.tables[entity]
        spec = table.spec
        self._references(db, entity, values, full=True)
        rid = self._next_id(db, entity, spec.id_field)
        now = self.clock.now()
        record = table.blank()
        record.update(values)
        record[spec.id_field] = rid
        record[spec.created_at_field] = record[spec.updated_at_field] = now
        record[spec.created_by_field] = record[spec.updated_by_field] = user
        self._write_row(db, entity, record)
        return rid

    def _update(
        self,
        db: sqlite3.Connection,
        entity: str,
        rid: int,
        values: dict[str, Any],
        user: str,
        *,
        replace: bool,
    ) -> None:
        table = self.tables[entity]
        spec = table.spec
        row = db.execute(
            f"SELECT {q(JSON_COLUMN)} FROM {q(entity)} WHERE {q(spec.id_field)} = ?", (rid,)
        ).fetchone()
        if row is None:
            raise NotFound(f"{entity} {rid} does not exist")
        current: dict[str, Any] = _loads(row[0])
        if replace:
            # PUT: every writable field not given becomes null.
            server = set(spec.server_fields)
            values = {c: values.get(c) for c in table.columns if c not in server}
        self._references(db, entity, values, full=replace)
        changed = {**values, spec.updated_at_field: self.clock.now(), spec.updated_by_field: user}
        current.update(changed)
        sets = ", ".join(f"{q(c)} = ?" for c in changed)
        db.execute(
            f"UPDATE {q(entity)} SET {sets}, {q(JSON_COLUMN)} = ? WHERE {q(spec.id_field)} = ?",
            (*changed.values(), table.dump(current), rid),
        )

    def create(self, entity: str, raw: Any, user: str = API_USER) -> tuple[int, Change]:
        """``POST``: insert one record (fields not given are null)."""
        values = clean_record(self.tables[entity].spec, raw)
        with self.transaction() as db:
            rid = self._insert(db, entity, values, user)
        return rid, Change(entity, "Create", rid)

    def replace(self, entity: str, rid: int, raw: Any, user: str = API_USER) -> Change:
        """``PUT``: replace one record; fields not given become null."""
        values = clean_record(self.tables[entity].spec, raw)
        with self.transaction() as db:
            self._update(db, entity, rid, values, user, replace=True)
        return Change(entity, "Update", rid)

    def delete(self, entity: str, rid: int) -> Change:
        spec = self.tables[entity].spec
        with self.transaction() as db:
            cur = db.execute(f"DELETE FROM {q(entity)} WHERE {q(spec.id_field)} = ?", (rid,))
            if cur.rowcount == 0:
                raise NotFound(f"{entity} {rid} does not exist")
        return Change(entity, "Delete", rid)

    def patch(
        self, entity: str, records: Sequence[Any], user: str = API_USER
    ) -> tuple[list[str], list[Change]]:
        """``PATCH``: upsert many records in one transaction, each failing on its own.

        A record without an id (or id 0) is inserted; one with an id updates only the
        fields it carries (merge). The answer has one string per record, in order: the
        record's id, or ``"Error: <field>: <problem>"``.
        """
        spec = self.tables[entity].spec
        results: list[str] = []
        changes: list[Change] = []
        with self.transaction() as db:
            for raw in records:
                try:
                    values = clean_record(spec, raw)
                    rid = record_id(spec, raw)
                    if rid is None:
                        rid = self._insert(db, entity, values, user)
                        changes.append(Change(entity, "Create", rid))
                    else:
                        self._update(db, entity, rid, values, user, replace=False)
                        changes.append(Change(entity, "Update", rid))
                    results.append(str(rid))
                except (FieldError, NotFound) as exc:
                    results.append(f"Error: {exc}")
        return results, changes

    def insert_many(
        self, entity: str, rows: Iterable[dict[str, Any]], user: str = SEED_USER
    ) -> int:
        """Bulk insert for the seeder: rows carry their ids; no checks, no hooks.

        Rows are grouped by which columns they fill, one ``executemany`` per group.
        """
        table = self.tables[entity]
        spec = table.spec
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        n = 0
        for row in rows:
            now = self.clock.now()
            record = table.blank()
            record.update(row)
            if len(record) != len(table.columns):
                unknown = sorted(set(record) - set(table.columns))
                raise ValueError(f"{entity}: not fields of the datatype: {unknown}")
            record[spec.created_at_field] = record[spec.updated_at_field] = now
            record[spec.created_by_field] = record[spec.updated_by_field] = user
            cols = tuple(c for c, v in record.items() if v is not None)
            groups.setdefault(cols, []).append((*(record[c] for c in cols), table.dump(record)))
            n += 1
        with self.transaction() as db:
            for cols, params in groups.items():
                db.executemany(table.insert_sql(cols), params)
        return n

    def corrupt(self, entity: str, rid: int, fields: dict[str, Any]) -> None:
        """Serve ``fields`` as they are in this record's JSON, bypassing every check.

        Tests use it to play a live API that answers malformed data (an
        ``…UpdatedAt`` of ``"yesterday"``, a name cut inside an emoji). Only the JSON
        that is served changes; the columns that ``WHERE``/``ORDER BY`` use stay as
        they were, and the next write of the record rewrites the JSON from them.
        """
        table = self.tables[entity]
        spec = table.spec
        unknown = sorted(set(fields) - set(table.columns))
        if unknown:
            raise FieldError(", ".join(unknown), f"not a field of {entity}")
        with self.transaction() as db:
            row = db.execute(
                f"SELECT {q(JSON_COLUMN)} FROM {q(entity)} WHERE {q(spec.id_field)} = ?", (rid,)
            ).fetchone()
            if row is None:
                raise NotFound(f"{entity} {rid} does not exist")
            record = {**_loads(row[0]), **fields}
            db.execute(
                f"UPDATE {q(entity)} SET {q(JSON_COLUMN)} = ? WHERE {q(spec.id_field)} = ?",
                (table.dump(record), rid),
            )

    # ------------------------------------------------------------------ hooks
    def hooks(self, entity: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(q(c) for c in HOOK_COLUMNS)} FROM {q('Hook')}"
        params: tuple[Any, ...] = ()
        if entity is not None:
            sql += ' WHERE "Entity" = ?'
            params = (entity,)
        with self._lock:
            rows = self._db.execute(sql + ' ORDER BY "Id"', params).fetchall()
        return [_hook_row(r) for r in rows]

    def hook(self, entity: str, hid: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(q(c) for c in HOOK_COLUMNS)} FROM {q('Hook')} "
                'WHERE "Entity" = ? AND "Id" = ?',
                (entity, hid),
            ).fetchone()
        return _hook_row(row) if row else None

    def save_hook(
        self,
        entity: str,
        hid: int | None,
        target_url: str,
        event_type: str | None,
        is_enabled: bool,
        filters: list[str],
        user: str = API_USER,
    ) -> int:
        """Create (``hid`` None) or replace a hook; returns its id."""
        now = self.clock.now()
        with self.transaction() as db:
            if hid is None:
                cur = db.execute(
                    f"INSERT INTO {q('Hook')} "
                    '("Entity", "TargetUrl", "EventType", "IsEnabled", "Filter", '
                    '"CreatedAt", "CreatedBy", "UpdatedAt", "UpdatedBy") '
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (entity, target_url, event_type, int(is_enabled), json.dumps(filters),
                     now, user, now, user),
                )  # fmt: skip
                assert cur.lastrowid is not None
                return int(cur.lastrowid)
            cur = db.execute(
                f"UPDATE {q('Hook')} SET "
                '"TargetUrl" = ?, "EventType" = ?, "IsEnabled" = ?, "Filter" = ?, '
                '"UpdatedAt" = ?, "UpdatedBy" = ? WHERE "Entity" = ? AND "Id" = ?',
                (target_url, event_type, int(is_enabled), json.dumps(filters), now, user,
                 entity, hid),
            )  # fmt: skip
            if cur.rowcount == 0:
                raise NotFound(f"{entity} hook {hid} does not exist")
            return hid

    def delete_hook(self, entity: str, hid: int) -> None:
        with self.transaction() as db:
            cur = db.execute(
                f'DELETE FROM {q("Hook")} WHERE "Entity" = ? AND "Id" = ?', (entity, hid)
            )
            if cur.rowcount == 0:
                raise NotFound(f"{entity} hook {hid} does not exist")


def _loads(text: str) -> dict[str, Any]:
    """A stored record's JSON; the standard library reads what orjson refuses (surrogates)."""
    try:
        return dict(orjson.loads(text))
    except orjson.JSONDecodeError:
        return dict(json.loads(text))


def _hook_row(row: Sequence[Any]) -> dict[str, Any]:
    d = dict(zip(HOOK_COLUMNS, row, strict=True))
    d["IsEnabled"] = bool(d["IsEnabled"])
    d["Filter"] = json.loads(d["Filter"])
    return d
