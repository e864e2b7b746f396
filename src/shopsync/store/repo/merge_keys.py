"""Merge keys: the normalised values (VAT number, website, name and postcode, sku,
order number) by which a record without a link is matched to one on the other side
(rule 2).

Kept per record and system, replaced a page at a time with as few statements as the
changes need, and looked up by key, one or many.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shopsync.store import bulk
from shopsync.store.chunks import among, in_chunks
from shopsync.store.models import MergeKey
from shopsync.store.repo._common import _of


def replace_merge_keys(
    s: Session, datatype: str, system: str, keys: Mapping[str, Sequence[str]]
) -> int:
    """Set the merge keys of many records at once (Core statements, no ORM objects):
    one SELECT of the keys they hold, then one DELETE and one multi-row INSERT for the
    records whose keys changed (an edit of a phone number leaves a VAT number's key as
    it was, and writes nothing here). Returns how many key rows were written."""
    wanted = {
        rid: list(dict.fromkeys(k[:512] for k in record_keys)) for rid, record_keys in keys.items()
    }
    held: dict[str, set[str]] = {}
    for chunk in in_chunks(wanted):
        for rid, key in s.execute(
            select(MergeKey.record_id, MergeKey.key).where(*_of(MergeKey, datatype, system, chunk))
        ):
            held.setdefault(rid, set()).add(key)
    changed = {rid: ks for rid, ks in wanted.items() if set(ks) != held.get(rid, set())}
    clear_merge_keys_many(s, datatype, system, [rid for rid in changed if rid in held])
    rows = [
        {"datatype": datatype, "system": system, "record_id": rid, "key": key}
        for rid, record_keys in changed.items()
        for key in record_keys
    ]
    if rows:
        bulk.insert_many(s.connection(), MergeKey, rows)
    return len(rows)


def clear_merge_keys(s: Session, datatype: str, system: str, record_id: str) -> None:
    s.execute(
        delete(MergeKey).where(
            *_of(MergeKey, datatype, system, record_id),
        )
    )


def clear_merge_keys_many(s: Session, datatype: str, system: str, ids: Sequence[str]) -> None:
    if ids:
        s.execute(
            delete(MergeKey).where(
                *_of(MergeKey, datatype, system, ids),
            )
        )


def holders_of_keys(
    s: Session, datatype: str, system: str, keys: Sequence[str]
) -> dict[str, list[str]]:
    """:func:`find_by_merge_key` for many keys in one query: key → holders, in the
    order find_by_merge_key gives them."""
    found: dict[str, list[str]] = {}
    for chunk in in_chunks(keys):
        rows = s.execute(
            select(MergeKey.key, MergeKey.record_id)
            .where(
                MergeKey.datatype == datatype,
                MergeKey.system == system,
                among(MergeKey.key, chunk),
            )
            .order_by(MergeKey.id)
        )
        for key, record_id in rows:
            found.setdefault(key, []).append(record_id)
    return found


def find_by_merge_key(s: Session, datatype: str, system: str, key: str) -> list[str]:
    return list(
        s.scalars(
            select(MergeKey.record_id)
            .where(MergeKey.datatype == datatype, MergeKey.system == system, MergeKey.key == key)
            .order_by(MergeKey.id)
        )
    )
