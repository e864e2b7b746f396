"""Intents: the idempotency key of each create on the other side, made once per
record, and for webCRM creates when they were sent.

This is what makes a create exactly-once across a crash: a create sent and not
settled is asked about before it may go again (see ``engine/intents.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from shopsync.store import bulk
from shopsync.store.chunks import in_chunks
from shopsync.store.models import Intent
from shopsync.store.repo._common import _of, as_utc, now


def intent_key(s: Session, datatype: str, system: str, record_id: str) -> str:
    """The idempotency key for creating this record on the other side (made once)."""
    return intent_keys(s, datatype, system, [record_id])[record_id]


def intent_keys(
    s: Session, datatype: str, system: str, record_ids: Sequence[str]
) -> dict[str, str]:
    """The idempotency keys for creating these records on the other side (made once):
    one query for the keys they have, one bulk insert for those made now. Record id →
    key."""
    keys: dict[str, str] = {}
    s.flush()  # any intent added to the session is in the table before it is asked
    for chunk in in_chunks(dict.fromkeys(record_ids)):
        found = s.execute(
            select(Intent.record_id, Intent.key).where(*_of(Intent, datatype, system, chunk))
        )
        keys.update({rid: key for rid, key in found})
        t = now()
        new = [_new_intent(datatype, system, rid, t) for rid in chunk if rid not in keys]
        bulk.insert_many(s.connection(), Intent, new)
        keys.update({str(row["record_id"]): str(row["key"]) for row in new})
    return keys


def _new_intent(datatype: str, system: str, record_id: str, at: datetime) -> dict[str, object]:
    return {
        "datatype": datatype, "system": system, "record_id": record_id,
        "key": str(uuid.uuid4()), "created_at": at,
    }  # fmt: skip


def mark_sent(
    s: Session, datatype: str, sent: Sequence[tuple[str, dict[str, Any]]], at: datetime
) -> None:
    """Record that webCRM creates of these webshop records (``(id, body)``) go out now.

    The caller commits before sending: from then on the engine never sends them again
    until it has asked webCRM whether they landed (see ``engine/intents.py``).
    """
    if not sent:
        return
    ids = [rid for rid, _ in sent]
    rows = {
        r.record_id: r
        for r in s.scalars(select(Intent).where(*_of(Intent, datatype, "webshop", ids)))
    }
    for rid, body in sent:
        row = rows.get(rid)
        if row is None:
            row = Intent(
                datatype=datatype, system="webshop", record_id=rid,
                key=str(uuid.uuid4()), created_at=at,
            )  # fmt: skip
            s.add(row)
            rows[rid] = row
        row.sent_at = at
        row.payload = body
    s.flush()


def open_intents(s: Session, datatype: str, system: str) -> list[tuple[str, datetime]]:
    """``(record id, when first planned)`` of the intents of records of ``system``."""
    rows = s.execute(
        select(Intent.record_id, Intent.created_at).where(
            Intent.datatype == datatype, Intent.system == system
        )
    ).all()
    return [(rid, as_utc(when) or now()) for rid, when in rows]


def sent_intents(s: Session, datatype: str) -> Sequence[Intent]:
    """webCRM creates sent and not yet settled (their answer was never recorded)."""
    return s.scalars(
        select(Intent)
        .where(Intent.datatype == datatype, Intent.system == "webshop", Intent.sent_at.is_not(None))
        .order_by(Intent.sent_at, Intent.id)
    ).all()


def unsend_intents(s: Session, datatype: str, record_ids: Sequence[str]) -> None:
    """These creates did not land (webCRM said so, or has no such record): they may go again."""
    if record_ids:
        s.execute(
            update(Intent)
            .where(*_of(Intent, datatype, "webshop", record_ids))
            .values(sent_at=None, payload=None)
        )


def has_intent(s: Session, datatype: str, system: str, record_id: str) -> bool:
    return (
        s.scalar(
            select(func.count())
            .select_from(Intent)
            .where(
                *_of(Intent, datatype, system, record_id),
            )
        )
        or 0
    ) > 0


def clear_intents_many(s: Session, datatype: str, system: str, ids: Sequence[str]) -> None:
    if ids:
        s.execute(delete(Intent).where(*_of(Intent, datatype, system, ids)))
