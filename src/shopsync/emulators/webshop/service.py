"""The record operations of the contract: list, create, read, merge-patch, delete, batch.

Each write runs inside one serialized transaction (``Store.write``) that also records
the idempotency key and queues webhook deliveries, so they commit or fail together. A
batch runs its items through the same ``_create`` and ``_patch`` as the single
requests, each in a savepoint of the batch's one transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from .clock import naive, rfc3339
from .db import IdempotencyRow, OrderRow
from .listing import Listing
from .problems import FieldError, Problem, invalid
from .records import Resource, tombstone
from .store import Store
from .validation import check, merge_patch
from .webhooks import Webhooks

IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")
IF_MATCH = re.compile(r'\*|[0-9]{1,18}|"[0-9]{1,18}"')


@dataclass(frozen=True)
class Created:
    record: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class BatchCreate:
    """A batch item that creates: the body of ``POST /{collection}`` and its key."""

    body: dict[str, Any]
    key: str


@dataclass(frozen=True)
class BatchUpdate:
    """A batch item that updates: ``PATCH /{collection}/{record_id}`` with its If-Match."""

    record_id: str
    patch: dict[str, Any]
    if_match: int | None


BatchItem = BatchCreate | BatchUpdate


@dataclass(frozen=True)
class Outcome:
    """One batch item's answer: the status and record, or the status and problem."""

    status: int
    record: dict[str, Any] | None = None
    problem: Problem | None = None
    replayed: bool = False


Outcomes = list[Outcome]
"""(``Records.list`` shadows the builtin inside the class.)"""


def parse_if_match(header: str | None) -> int | None:
    """The version an ``If-Match`` names; None when absent or ``*``."""
    if header is None:
        return None
    value = header.strip()
    if not IF_MATCH.fullmatch(value):
        raise invalid(
            [FieldError("If-Match", 'must be a version number, "<version>" or *, e.g. "3"')]
        )
    return None if value == "*" else int(value.strip('"'))


def parse_idempotency_key(header: str | None) -> str | None:
    if header is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(header):
        raise invalid(
            [
                FieldError(
                    "Idempotency-Key", "must be 1 to 255 visible ASCII characters, e.g. a UUID"
                )
            ]
        )
    return header


def fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a body with a lone surrogate is refused (422) by validation later.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class Records:
    def __init__(self, store: Store, webhooks: Webhooks) -> None:
        self.store = store
        self.webhooks = webhooks

    # ------------------------------------------------------------------ reads
    def _id_or_404(self, resource: Resource, record_id: str) -> None:
        if not re.fullmatch(resource.prefix + r"_[0-9a-f]{32}", record_id):
            raise Problem(404, "not-found", f"no {resource.name} with id {record_id}")

    def _live(self, resource: Resource, row: Any, record_id: str) -> Any:
        if row is None:
            raise Problem(404, "not-found", f"no {resource.name} with id {record_id}")
        if row.deleted:
            raise Problem(
                410, "gone", f"{resource.name} {record_id} was deleted at {rfc3339(row.updated_at)}"
            )
        return row

    def get(self, resource: Resource, record_id: str) -> dict[str, Any]:
        self._id_or_404(resource, record_id)
        with self.store.read() as session:
            row = self._live(resource, session.get(resource.row_type, record_id), record_id)
            return resource.to_api(row)

    def list(self, resource: Resource, listing: Listing) -> dict[str, Any]:
        table = resource.row_type
        query = select(table).order_by(table.updated_at, table.id)
        if not listing.include_deleted:
            query = query.where(table.deleted == false())
        if listing.updated_since is not None:
            query = query.where(table.updated_at >= naive(listing.updated_since))
        if listing.after is not None:
            at, after_id = naive(listing.after[0]), listing.after[1]
            query = query.where(
                or_(table.updated_at > at, and_(table.updated_at == at, table.id > after_id))
            )
        with self.store.read() as session:
            rows = list(session.scalars(query.limit(listing.limit + 1)))
            more = len(rows) > listing.limit
            rows = rows[: listing.limit]
            items = [tombstone(r) if r.deleted else resource.to_api(r) for r in rows]
        next_cursor = Listing.cursor_after(rows[-1].updated_at, rows[-1].id) if more else None
        return {"items": items, "next_cursor": next_cursor}

    # ------------------------------------------------------------------ writes
    def create(self, resource: Resource, body: dict[str, Any], key: str | None) -> Created:
        with self.store.write() as session:
            return self._create(session, resource, body, key)

    def patch(
        self, resource: Resource, record_id: str, body: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        self._id_or_404(resource, record_id)
        with self.store.write() as session:
            return self._patch(session, resource, record_id, body, if_match)

    def batch(self, resource: Resource, items: Sequence[BatchItem]) -> Outcomes:
        """Apply ``items`` in order, each exactly as its single request would be.

        One serialized transaction for the whole batch (one commit, one lock: the
        ``updated_at`` order stays the commit order), a savepoint per item: an item that
        fails is rolled back to its savepoint and answered with its problem, and the
        items around it are not affected. An unexpected error fails the whole batch
        (nothing is committed), which a client may retry: every create carries its key.
        """
        outcomes: Outcomes = []
        with self.store.write() as session:
            for item in items:
                try:
                    with session.begin_nested():
                        outcomes.append(self._apply(session, resource, item))
                except Problem as problem:
                    outcomes.append(Outcome(problem.status, problem=problem))
        return outcomes

    def _apply(self, session: Session, resource: Resource, item: BatchItem) -> Outcome:
        """One batch item inside the batch's transaction; a refusal raises its Problem."""
        if isinstance(item, BatchCreate):
            created = self._create(session, resource, item.body, item.key)
            return Outcome(201, created.record, replayed=created.replayed)
        self._id_or_404(resource, item.record_id)
        return Outcome(
            200, self._patch(session, resource, item.record_id, item.patch, item.if_match)
        )

    def _create(
        self, session: Session, resource: Resource, body: dict[str, Any], key: str | None
    ) -> Created:
        print_ = fingerprint(body)
        if key is not None:
            seen = session.get(IdempotencyRow, (resource.collection, key))
            if seen is not None:
                if seen.fingerprint != print_:
                    raise invalid(
                        [
                            FieldError(
                                "Idempotency-Key",
                                f"already used for a different {resource.name}: "
                                "a retry must send the same body",
                            )
                        ]
                    )
                return Created(json.loads(seen.body), replayed=True)
        values = self._validated(session, resource, body, None)
        resource.check_unique(session, values, None)
        now = self.store.clock.now()
        row = resource.new_row()
        row.version = 1
        row.created_at = row.updated_at = naive(now)
        row.deleted = False
        resource.assign(row, values)
        session.add(row)
        session.flush()
        record = resource.to_api(row)
        if key is not None:
            session.add(
                IdempotencyRow(
                    collection=resource.collection, key=key, fingerprint=print_, status=201,
                    body=json.dumps(record, ensure_ascii=False), record_id=row.id,
                    created_at=naive(now),
                )
            )  # fmt: skip
        self.webhooks.enqueue(session, f"{resource.name}.created", row.id, now)
        return Created(record)

    def _patch(
        self,
        session: Session,
        resource: Resource,
        record_id: str,
        body: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        row = self._live(resource, session.get(resource.row_type, record_id), record_id)
        document = merge_patch(resource.writable(row), body)
        values = self._validated(session, resource, document, row)
        self._precondition(resource, row, if_match)
        if values == resource.values(row):
            return resource.to_api(row)
        resource.check_unique(session, values, row.id)
        now = self.store.clock.now()
        resource.assign(row, values)
        row.version += 1
        row.updated_at = naive(now)
        session.flush()
        self.webhooks.enqueue(session, f"{resource.name}.updated", row.id, now)
        return resource.to_api(row)

    def delete(self, resource: Resource, record_id: str, if_match: int | None) -> None:
        self._id_or_404(resource, record_id)
        with self.store.write() as session:
            row = session.get(resource.row_type, record_id)
            if row is None:
                raise Problem(404, "not-found", f"no {resource.name} with id {record_id}")
            if row.deleted:
                return
            self._precondition(resource, row, if_match)
            now = self.store.clock.now()
            row.deleted = True
            row.version += 1
            row.updated_at = naive(now)
            self.webhooks.enqueue(session, f"{resource.name}.deleted", row.id, now)

    def purge(self, resource: Resource, record_id: str) -> None:
        """Remove a record with no tombstone (a control: a shop that hard-deletes).

        Its id then answers 404, as a shop answers for a record purged by a database
        clean-up; a customer that orders still refer to cannot be purged (409).
        """
        self._id_or_404(resource, record_id)
        with self.store.write() as session:
            row = session.get(resource.row_type, record_id)
            if row is None:
                raise Problem(404, "not-found", f"no {resource.name} with id {record_id}")
            if resource.name == "customer":
                used = session.scalar(select(OrderRow.id).where(OrderRow.customer_id == record_id))
                if used is not None:
                    raise Problem(409, "conflict", f"orders refer to customer {record_id}")
            session.delete(row)

    @staticmethod
    def _validated(
        session: Session, resource: Resource, document: dict[str, Any], current: Any | None
    ) -> dict[str, Any]:
        """The document's values, or one 422 naming every bad field (references too)."""
        model, errors = check(resource.model, document)
        errors += resource.references(session, document, current)
        if model is None or errors:
            raise invalid(errors)
        return resource.model_values(model)

    @staticmethod
    def _precondition(resource: Resource, row: Any, if_match: int | None) -> None:
        if if_match is not None and if_match != row.version:
            raise Problem(
                412,
                "precondition-failed",
                f"If-Match names version {if_match} but the {resource.name} is at version {row.version}",
                headers={"ETag": f'"{row.version}"'},
            )
