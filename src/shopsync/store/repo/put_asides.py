"""Put-aside records: those the engine could not process (a mapping error, an
ambiguous match), with the reason and the fingerprint of the data that failed, so the
same data is not tried again until it changes.

Named in the plural so that the module does not shadow :func:`put_aside` on the
package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shopsync.store.models import PutAside
from shopsync.store.repo._common import _of, now


def put_aside(
    s: Session,
    datatype: str,
    system: str,
    record_id: str,
    reason: str,
    fp: str,
    data: dict[str, Any] | None,
) -> None:
    row = get_put_aside(s, datatype, system, record_id)
    t = now()
    if row is None:
        s.add(
            PutAside(
                datatype=datatype,
                system=system,
                record_id=record_id,
                reason=reason,
                fingerprint=fp,
                data=data,
                attempts=1,
                first_seen=t,
                last_attempt=t,
            )
        )
        s.flush()
    else:
        row.reason = reason
        row.fingerprint = fp
        row.data = data
        row.attempts += 1
        row.last_attempt = t


def get_put_aside(s: Session, datatype: str, system: str, record_id: str) -> PutAside | None:
    return s.scalar(
        select(PutAside).where(
            *_of(PutAside, datatype, system, record_id),
        )
    )


def clear_put_aside(s: Session, datatype: str, system: str, record_id: str) -> None:
    s.execute(
        delete(PutAside).where(
            *_of(PutAside, datatype, system, record_id),
        )
    )


def all_put_aside(s: Session, datatype: str | None = None) -> Sequence[PutAside]:
    q = select(PutAside)
    if datatype:
        q = q.where(PutAside.datatype == datatype)
    return s.scalars(q.order_by(PutAside.id)).all()


def put_aside_ids(s: Session, datatype: str, system: str, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    return set(
        s.scalars(
            select(PutAside.record_id).where(
                *_of(PutAside, datatype, system, ids),
            )
        )
    )
