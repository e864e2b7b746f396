"""A deliberately broken webshop: the reference server with contract rules cut off.

Which rules are broken is switched at run time with ``PUT /_broken {"breaks": [...]}``
(default: ``idempotency`` and ``if-match``):

* ``idempotency``, ``if-match`` — the ``Idempotency-Key`` / ``If-Match`` request headers
  are dropped before the reference app sees them: retried creates make duplicates,
  stale updates overwrite newer ones;
* ``cursor`` — listings page by *creation* time, the classic mistake: a record updated
  after it was listed is never listed again;
* ``tombstones`` — ``include_deleted`` is ignored, so pollers never see deletes;
* ``floats`` — money is answered as JSON numbers;
* ``batch-atomic`` — a batch is all or nothing: when one item fails, nothing is written
  and every item is answered with that failure (the contract wants each item alone);
* ``batch-keys`` — idempotency keys inside a batch are ignored: a repeated create makes
  a second record.

``shopsync check-webshop`` must catch each. Run as a script (the conformance tests start
it as a real process): ``python broken_shop.py --port P --db PATH --token T``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import uvicorn
from sqlalchemy import and_, false, or_, select
from starlette.types import ASGIApp, Receive, Scope, Send

from shopsync.emulators.webshop import records, service
from shopsync.emulators.webshop.app import create_app
from shopsync.emulators.webshop.clock import naive
from shopsync.emulators.webshop.listing import Listing
from shopsync.emulators.webshop.problems import Problem

BREAKS: set[str] = {"idempotency", "if-match"}
HEADERS = {"idempotency": b"idempotency-key", "if-match": b"if-match"}

_list = service.Records.list
_render = records.render
_batch = service.Records.batch


def broken_list(self: service.Records, resource: records.Resource, listing: Listing) -> Any:
    if "tombstones" in BREAKS:
        listing = dataclasses.replace(listing, include_deleted=False)
    if "cursor" not in BREAKS:
        return _list(self, resource, listing)
    table = resource.row_type
    query = select(table).order_by(table.created_at, table.id)
    if not listing.include_deleted:
        query = query.where(table.deleted == false())
    if listing.updated_since is not None:
        query = query.where(table.updated_at >= naive(listing.updated_since))
    if listing.after is not None:
        at, after_id = naive(listing.after[0]), listing.after[1]
        query = query.where(
            or_(table.created_at > at, and_(table.created_at == at, table.id > after_id))
        )
    with self.store.read() as session:
        rows = list(session.scalars(query.limit(listing.limit + 1)))
        more = len(rows) > listing.limit
        rows = rows[: listing.limit]
        items = [records.tombstone(r) if r.deleted else resource.to_api(r) for r in rows]
    cursor = Listing.cursor_after(rows[-1].created_at, rows[-1].id) if more else None
    return {"items": items, "next_cursor": cursor}


def broken_render(values: dict[str, Any]) -> dict[str, Any]:
    out = _render(values)
    if "floats" in BREAKS:
        for key, value in values.items():
            if key in records.MONEY_FIELDS and isinstance(value, Decimal):
                out[key] = float(value)
    return out


def broken_batch(
    self: service.Records, resource: records.Resource, items: Sequence[service.BatchItem]
) -> service.Outcomes:
    if "batch-keys" in BREAKS:
        items = [
            dataclasses.replace(i, key=uuid.uuid4().hex)
            if isinstance(i, service.BatchCreate)
            else i
            for i in items
        ]
    if "batch-atomic" not in BREAKS:
        return _batch(self, resource, items)
    try:
        with self.store.write() as session:  # one transaction, no savepoints
            return [self._apply(session, resource, item) for item in items]
    except Problem as problem:
        return [service.Outcome(problem.status, problem=problem) for _ in items]


service.Records.list = broken_list  # type: ignore[method-assign]
service.Records.batch = broken_batch  # type: ignore[method-assign]
records.render = broken_render


class Breaker:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_broken":
            message = await receive()
            BREAKS.clear()
            BREAKS.update(json.loads(message.get("body") or b"{}").get("breaks", []))
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "http":
            dropped = {HEADERS[b] for b in BREAKS if b in HEADERS}
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in dropped]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    app = Breaker(create_app(args.db, args.token))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
