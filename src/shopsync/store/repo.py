"""Small, explicit operations on the state tables, used by the engine and the CLI.

Every function takes the caller's :class:`~sqlalchemy.orm.Session`, so the caller
decides what commits together (a processed record's link, snapshot and inbox removal,
or a staged page and its cursor advance).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    update,
)  # fmt: skip
from sqlalchemy.orm import Session, aliased

from shopsync.store import deferred
from shopsync.store.chunks import among, in_chunks
from shopsync.store.models import (
    Base,
    Cursor,
    InboxRecord,
    Intent,
    Link,
    Lock,
    MergeKey,
    Meta,
    PutAside,
    Run,
    Snapshot,
    UpdateCount,
)


def _table(model: type[Base]) -> Table:
    """A model's table, for Core statements: an ``insert`` of many rows into it is one
    ``executemany``, where the ORM's would fetch every new id back."""
    return cast(Table, model.__table__)


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fingerprint(data: Any) -> str:
    raw = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    # surrogatepass: a value read with a lone surrogate still has a fingerprint
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


_Keyed = type[InboxRecord] | type[MergeKey] | type[PutAside] | type[Intent]


def _of(
    model: _Keyed, datatype: str, system: str, record_id: str | Sequence[str]
) -> tuple[ColumnElement[bool], ...]:
    """The WHERE terms picking one record (or several) of a datatype and system."""
    rid = (
        model.record_id == record_id
        if isinstance(record_id, str)
        else among(model.record_id, record_id)
    )
    return (model.datatype == datatype, model.system == system, rid)


# ----------------------------------------------------------------------------- links
def link_by_webcrm(s: Session, datatype: str, webcrm_id: str) -> Link | None:
    return s.scalar(select(Link).where(Link.datatype == datatype, Link.webcrm_id == webcrm_id))


def link_by_webshop(s: Session, datatype: str, webshop_id: str) -> Link | None:
    return s.scalar(select(Link).where(Link.datatype == datatype, Link.webshop_id == webshop_id))


def link_by_id(s: Session, datatype: str, system: str, record_id: str) -> Link | None:
    if system == "webcrm":
        return link_by_webcrm(s, datatype, record_id)
    return link_by_webshop(s, datatype, record_id)


def add_link(
    s: Session,
    datatype: str,
    webcrm_id: str,
    webshop_id: str,
    created_by: str,
    parent_id: int | None = None,
    *,
    parent: Link | None = None,
    flush: bool = True,
) -> Link:
    """Add a link; ``flush=False`` leaves the INSERT for the transaction's next flush
    (many links at once), so the link is not yet found by queries. ``parent`` (an
    order's link, flushed or not) sets ``parent_id`` when they are flushed."""
    t = now()
    link = Link(
        datatype=datatype,
        webcrm_id=webcrm_id,
        webshop_id=webshop_id,
        created_by=created_by,
        parent_id=parent_id,
        state="active",
        created_at=t,
        updated_at=t,
    )
    if parent is not None:
        link.parent = parent
    s.add(link)
    if flush:
        s.flush()
    return link


def line_links_of_orders(s: Session, webcrm_order_ids: Sequence[str]) -> dict[str, list[Link]]:
    """Per webCRM opportunity id (of an active order link): its active line links."""
    found: dict[str, list[Link]] = {}
    for chunk in in_chunks(webcrm_order_ids):
        rows = s.execute(
            select(Link.id, Link.webcrm_id).where(
                Link.datatype == "orders", Link.state == "active", among(Link.webcrm_id, chunk)
            )
        )
        orders = {link_id: webcrm_id for link_id, webcrm_id in rows}
        if not orders:
            continue
        lines = s.scalars(select(Link).where(among(Link.parent_id, orders), Link.state == "active"))
        for line in lines:
            assert line.parent_id is not None
            found.setdefault(orders[line.parent_id], []).append(line)
    return found


def children(s: Session, parent: Link) -> list[Link]:
    return list(s.scalars(select(Link).where(Link.parent_id == parent.id)))


def active_links(s: Session, datatype: str) -> Iterable[Link]:
    return s.scalars(
        select(Link)
        .where(Link.datatype == datatype, Link.state == "active")
        .execution_options(yield_per=1000)
    )


def missing_webcrm_ids(
    s: Session, datatype: str, seen: Container[str]
) -> list[tuple[str, str | None]]:
    """``(webCRM id, its parent's webCRM id)`` of the active links of ``datatype`` whose
    webCRM id is not in ``seen``: what a delete sweep did not read. The links are
    streamed as plain rows (a sweep over a million links must not build an ORM object,
    or even a tuple, for each); only the missing ones are kept."""
    parent = aliased(Link)
    rows = s.execute(
        select(Link.webcrm_id, parent.webcrm_id)
        .outerjoin(parent, parent.id == Link.parent_id)
        .where(Link.datatype == datatype, Link.state == "active")
        .execution_options(yield_per=5000)
    )
    return [
        (str(rid), str(pid) if pid is not None else None) for rid, pid in rows if rid not in seen
    ]


def select_links(datatype: str) -> Select[Link]:
    """All links of a datatype, whatever their state."""
    return select(Link).where(Link.datatype == datatype).order_by(Link.id)


def count_links(s: Session, datatype: str) -> dict[str, int]:
    rows = s.execute(
        select(Link.state, func.count()).where(Link.datatype == datatype).group_by(Link.state)
    )
    return {state: n for state, n in rows}


# ------------------------------------------------------------------------- snapshots
def _pending_snapshots(s: Session) -> dict[int, Snapshot]:
    """Snapshots added since the session's last flush, by ``id()`` of their link: not in
    the identity map yet, so ``Session.get`` would miss them (and a second one would be
    added). Emptied after each flush, when they are."""
    key = "shopsync.pending_snapshots"
    pending: dict[int, Snapshot] | None = s.info.get(key)
    if pending is None:
        pending = s.info[key] = {}
        event.listen(s, "after_flush", lambda session, _ctx: pending.clear())
    return pending


def get_snapshot(s: Session, link: Link) -> Snapshot | None:
    snap = _pending_snapshots(s).get(id(link))
    if snap is not None or link.id is None:
        return snap
    return s.get(Snapshot, link.id)


FINGERPRINT_FORM = "v2:"
"""How the current form of :func:`values_fingerprint` begins. Fingerprints stored by
older releases (hex digits only) never do, so a stored fingerprint that has this mark
and differs from a record's is a change, decided without reading the snapshot's values;
one without it is compared value by value and rewritten."""


def values_fingerprint(values: Mapping[str, Any]) -> str:
    """A short digest of one side's mapped values (``{property: value}``), the same for
    equal values whatever their order: stored per side with each snapshot, compared with
    the fingerprint of a record read back (:func:`agreed_fingerprints`).

    The text hashed is orjson's (a record written costs three of these); what orjson
    refuses (a lone surrogate, an integer past 64 bits) is written by ``json``. It is
    :data:`FINGERPRINT_FORM` and 28 hex digits (112 bits), 31 characters in all.
    """
    return FINGERPRINT_FORM + _digest(_orjson_text(values), 14)


def is_current_fingerprint(fp: str | None) -> bool:
    """Whether ``fp`` is in the form :func:`values_fingerprint` computes now."""
    return fp is not None and fp.startswith(FINGERPRINT_FORM)


def older_values_fingerprints(values: Mapping[str, Any]) -> tuple[str, str]:
    """The two forms older releases stored, until rewritten: ``json``'s text with
    non-ASCII escaped, and (one release) orjson's text without the form's mark."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return _digest(text.encode(), 16), _digest(_orjson_text(values), 16)


def _orjson_text(values: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        return json.dumps(
            values, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False
        ).encode("utf-8", "surrogatepass")


def _digest(text: bytes, size: int) -> str:
    return hashlib.blake2b(text, digest_size=size).hexdigest()


def refresh_fingerprints(
    s: Session, datatype: str, system: str, fingerprints: Mapping[str, str]
) -> None:
    """Store ``fingerprints`` (record id of ``system`` → fingerprint of its values) in
    the snapshots of their active links: records found unchanged value by value whose
    stored fingerprint was missing or differed (written by an older release, or a value
    read back in another form). Their next read is decided by fingerprint alone."""
    if not fingerprints:
        return
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    target = Snapshot.webcrm_fp if system == "webcrm" else Snapshot.webshop_fp
    link_of = (
        select(Link.id)
        .where(Link.datatype == datatype, Link.state == "active", column == bindparam("b_rid"))
        .scalar_subquery()
    )
    table = cast(Table, Snapshot.__table__)
    stmt = update(table).where(table.c.link_id == link_of).values({target.key: bindparam("b_fp")})
    s.execute(stmt, [{"b_rid": rid, "b_fp": fp} for rid, fp in fingerprints.items()])


def side_values(props: Mapping[str, Any], side: str) -> dict[str, Any]:
    """One side's values (``side``: ``"c"`` or ``"s"``) of a snapshot's ``props``."""
    return {name: pair[side] for name, pair in props.items() if side in pair}


def put_snapshot(
    s: Session,
    link: Link,
    props: dict[str, Any],
    webcrm_updated_at: datetime | None,
    webshop_updated_at: datetime | None,
    webshop_version: int | None,
    *,
    known: Snapshot | None = None,
) -> None:
    """Store the values both sides now agree on; ``known`` is the link's snapshot as
    loaded earlier in the run (saves looking it up again)."""
    snap = known if known is not None and known.link_id == link.id else get_snapshot(s, link)
    t = now()
    c_fp = values_fingerprint(side_values(props, "c"))
    s_fp = values_fingerprint(side_values(props, "s"))
    if snap is None:
        snap = Snapshot(
            link=link,
            props=props,
            webcrm_updated_at=webcrm_updated_at,
            webshop_updated_at=webshop_updated_at,
            webshop_version=webshop_version,
            webcrm_fp=c_fp,
            webshop_fp=s_fp,
            updated_at=t,
        )
        s.add(snap)
        _pending_snapshots(s)[id(link)] = snap  # a later get() must find it before a flush
    else:
        values = {
            "props": props,
            "webcrm_updated_at": webcrm_updated_at or snap.webcrm_updated_at,
            "webshop_updated_at": webshop_updated_at or snap.webshop_updated_at,
            "webshop_version": webshop_version or snap.webshop_version,
            "webcrm_fp": c_fp,
            "webshop_fp": s_fp,
            "updated_at": t,
        }
        if deferred.is_loaded(s, snap):
            deferred.update_snapshot(s, snap, values)
        else:
            for name, value in values.items():
                setattr(snap, name, value)
    deferred.touch_link(s, link, t)


# ----------------------------------------------------------------------------- inbox
def stage(
    s: Session,
    datatype: str,
    system: str,
    record_id: str,
    *,
    updated_at: datetime | None,
    data: dict[str, Any] | None,
    deleted: bool = False,
    parent_id: str | None = None,
) -> bool:
    """Put a record read from ``system`` into the inbox; a newer read replaces an older.

    Returns False when the inbox already holds this version or a newer one.
    """
    row = s.scalar(
        select(InboxRecord).where(
            *_of(InboxRecord, datatype, system, record_id),
        )
    )
    if row is not None:
        old = as_utc(row.updated_at)
        if old is not None and updated_at is not None and updated_at < old:
            return False
        if old == updated_at and row.deleted == deleted and row.data == data:
            return False
        row.updated_at = updated_at
        row.data = data
        row.deleted = deleted
        row.parent_id = parent_id
        row.waiting_reason = None
        row.received_at = now()
        return True
    s.add(
        InboxRecord(
            datatype=datatype,
            system=system,
            record_id=record_id,
            parent_id=parent_id,
            updated_at=updated_at,
            deleted=deleted,
            data=data,
            waiting_reason=None,
            attempts=0,
            received_at=now(),
        )
    )
    return True


def stage_page(
    s: Session,
    datatype: str,
    system: str,
    records: Sequence[tuple[str, datetime | None, dict[str, Any] | None, str | None]],
) -> None:
    """Stage a page of ``(record_id, updated_at, data or None when deleted, parent_id)``.

    Like :func:`stage` for each, with one query for the rows already in the inbox; the
    new rows go in one Core ``executemany`` (no ORM objects, no ids fetched back), so
    they are visible to the next query at once.
    """
    if not records:
        return
    ids = [r[0] for r in records]
    existing = {
        row.record_id: row
        for row in s.scalars(
            select(InboxRecord).where(
                *_of(InboxRecord, datatype, system, ids),
            )
        )
    }
    t = now()
    new: dict[str, dict[str, Any]] = {}
    for record_id, updated_at, data, parent_id in records:
        row = existing.get(record_id)
        if row is None:
            before = new.get(record_id)
            if before is not None and _older(updated_at, before["updated_at"]):
                continue
            new[record_id] = {
                "datatype": datatype, "system": system, "record_id": record_id,
                "parent_id": parent_id, "updated_at": updated_at, "deleted": data is None,
                "data": data, "waiting_reason": None, "attempts": 0, "received_at": t,
            }  # fmt: skip
            continue
        if _older(updated_at, as_utc(row.updated_at)):
            continue
        row.updated_at, row.data, row.deleted = updated_at, data, data is None
        row.parent_id, row.waiting_reason, row.received_at = parent_id, None, t
    if new:
        s.execute(insert(_table(InboxRecord)), list(new.values()))


def _older(updated_at: datetime | None, than: datetime | None) -> bool:
    return updated_at is not None and than is not None and updated_at < than


def _snapshot_column(
    s: Session, datatype: str, system: str, ids: Sequence[str], value: Any
) -> Iterable[tuple[Any, Any]]:
    """``(record id, value)`` of a snapshot column per record of ``system`` among ``ids``
    on an active link, in one Core query, without building ORM objects."""
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    return s.execute(
        select(column, value)
        .join(Snapshot, Snapshot.link_id == Link.id)
        .where(Link.datatype == datatype, Link.state == "active", among(column, ids))
    )


def agreed_values(
    s: Session, datatype: str, system: str, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per record id of ``system`` on an active link: the snapshot's props (the values
    both sides last agreed on)."""
    if not ids:
        return {}
    rows = _snapshot_column(s, datatype, system, ids, Snapshot.props)
    return {str(rid): dict(props or {}) for rid, props in rows}


def agreed_fingerprints(
    s: Session, datatype: str, system: str, ids: Sequence[str]
) -> dict[str, str | None]:
    """Per record id of ``system`` on an active link: its side's fingerprint in the
    snapshot (None when the snapshot has none yet), decoding no JSON."""
    if not ids:
        return {}
    fp = Snapshot.webcrm_fp if system == "webcrm" else Snapshot.webshop_fp
    return {str(rid): value for rid, value in _snapshot_column(s, datatype, system, ids, fp)}


def line_fingerprints_of_orders(
    s: Session, webshop_order_ids: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    """Per webshop order id on an active link: its active line links' webshop ids →
    each line snapshot's webshop fingerprint (None when it has none), in one Core query
    per :data:`~shopsync.store.chunks.IN_LIST` orders."""
    parent = aliased(Link)
    found: dict[str, dict[str, str | None]] = {}
    for chunk in in_chunks(webshop_order_ids):
        rows = s.execute(
            select(parent.webshop_id, Link.webshop_id, Snapshot.webshop_fp)
            .join(parent, Link.parent_id == parent.id)
            .outerjoin(Snapshot, Snapshot.link_id == Link.id)
            .where(
                parent.datatype == "orders",
                parent.state == "active",
                among(parent.webshop_id, chunk),
                Link.datatype == "order_lines",
                Link.state == "active",
            )
        )
        for order_id, line_id, fp in rows:
            found.setdefault(str(order_id), {})[str(line_id)] = fp
    return found


def inbox_ids_among(s: Session, datatype: str, system: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` have a row in the inbox (one query)."""
    if not ids:
        return set()
    return set(
        s.scalars(select(InboxRecord.record_id).where(*_of(InboxRecord, datatype, system, ids)))
    )


def linked_ids(s: Session, datatype: str, system: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` (of ``system``) are in a link, whatever its state."""
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    return set(s.scalars(select(column).where(Link.datatype == datatype, among(column, ids))))


def links_for(s: Session, datatype: str, system: str, ids: Sequence[str]) -> Sequence[Link]:
    """The links of ``ids`` (of ``system``), whatever their state, in one query."""
    if not ids:
        return []
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    return s.scalars(select(Link).where(Link.datatype == datatype, among(column, ids))).all()


def snapshots_for(s: Session, link_ids: Sequence[int]) -> dict[int, Snapshot]:
    if not link_ids:
        return {}
    rows = s.scalars(select(Snapshot).where(among(Snapshot.link_id, link_ids)))
    return {snap.link_id: snap for snap in rows}


def inbox_rows(s: Session, datatype: str, system: str, ids: Sequence[str]) -> Sequence[InboxRecord]:
    if not ids:
        return []
    return s.scalars(
        select(InboxRecord).where(
            *_of(InboxRecord, datatype, system, ids),
        )
    ).all()


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


def replace_merge_keys(
    s: Session, datatype: str, system: str, keys: Mapping[str, Sequence[str]]
) -> None:
    """Set the merge keys of many records at once (Core statements, no ORM objects):
    one SELECT of the keys they hold, then one DELETE and one multi-row INSERT for the
    records whose keys changed (an edit of a phone number leaves a VAT number's key as
    it was, and writes nothing here)."""
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
        s.execute(insert(_table(MergeKey)), rows)  # the table's: a plain executemany


def clear_merge_keys_many(s: Session, datatype: str, system: str, ids: Sequence[str]) -> None:
    if ids:
        s.execute(
            delete(MergeKey).where(
                *_of(MergeKey, datatype, system, ids),
            )
        )


def clear_intents_many(s: Session, datatype: str, system: str, ids: Sequence[str]) -> None:
    if ids:
        s.execute(delete(Intent).where(*_of(Intent, datatype, system, ids)))


def inbox_get(s: Session, datatype: str, system: str, record_id: str) -> InboxRecord | None:
    return s.scalar(
        select(InboxRecord).where(
            *_of(InboxRecord, datatype, system, record_id),
        )
    )


def inbox_batch(
    s: Session, datatype: str, after_id: int, limit: int, *, system: str | None = None
) -> Sequence[InboxRecord]:
    """The next ``limit`` inbox rows of a datatype with id > ``after_id`` (all systems)."""
    q = select(InboxRecord).where(InboxRecord.datatype == datatype, InboxRecord.id > after_id)
    if system is not None:
        q = q.where(InboxRecord.system == system)
    return s.scalars(q.order_by(InboxRecord.id).limit(limit)).all()


def inbox_children(s: Session, datatype: str, system: str, parent_id: str) -> Sequence[InboxRecord]:
    return s.scalars(
        select(InboxRecord)
        .where(
            InboxRecord.datatype == datatype,
            InboxRecord.system == system,
            InboxRecord.parent_id == parent_id,
        )
        .order_by(InboxRecord.id)
    ).all()


def inbox_record_ids(s: Session, datatype: str, system: str) -> list[str]:
    """The ids of every inbox row of a datatype and system."""
    return list(
        s.scalars(
            select(InboxRecord.record_id)
            .where(InboxRecord.datatype == datatype, InboxRecord.system == system)
            .order_by(InboxRecord.id)
        )
    )


def inbox_parents(s: Session, datatype: str, system: str) -> list[str]:
    rows = s.scalars(
        select(InboxRecord.parent_id)
        .where(
            InboxRecord.datatype == datatype,
            InboxRecord.system == system,
            InboxRecord.parent_id.is_not(None),
        )
        .distinct()
    )
    return [r for r in rows if r is not None]


def inbox_counts(s: Session) -> dict[tuple[str, str, bool], int]:
    rows = s.execute(
        select(
            InboxRecord.datatype,
            InboxRecord.system,
            InboxRecord.waiting_reason.is_not(None),
            func.count(),
        ).group_by(
            InboxRecord.datatype, InboxRecord.system, InboxRecord.waiting_reason.is_not(None)
        )
    )
    return {(d, sy, bool(w)): n for d, sy, w, n in rows}


def waiting(s: Session, datatype: str | None = None) -> Sequence[InboxRecord]:
    q = select(InboxRecord).where(InboxRecord.waiting_reason.is_not(None))
    if datatype:
        q = q.where(InboxRecord.datatype == datatype)
    return s.scalars(q.order_by(InboxRecord.id)).all()


# ------------------------------------------------------------------------ merge keys


def clear_merge_keys(s: Session, datatype: str, system: str, record_id: str) -> None:
    s.execute(
        delete(MergeKey).where(
            *_of(MergeKey, datatype, system, record_id),
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


# ------------------------------------------------------------------------- put aside
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


# --------------------------------------------------------------------------- intents
def intent_key(s: Session, datatype: str, system: str, record_id: str) -> str:
    """The idempotency key for creating this record on the other side (made once)."""
    row = s.scalar(select(Intent).where(*_of(Intent, datatype, system, record_id)))
    if row is None:
        row = Intent(
            datatype=datatype,
            system=system,
            record_id=record_id,
            key=str(uuid.uuid4()),
            created_at=now(),
        )
        s.add(row)
        s.flush()
    return row.key


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


# ------------------------------------------------------------------ cursors and meta
def get_cursor(s: Session, datatype: str, system: str) -> str | None:
    row = s.get(Cursor, (datatype, system))
    return row.value if row else None


def set_cursor(s: Session, datatype: str, system: str, value: str | None) -> None:
    row = s.get(Cursor, (datatype, system))
    if row is None:
        s.add(Cursor(datatype=datatype, system=system, value=value, updated_at=now()))
        s.flush()  # a later get() in the same transaction must find it (no autoflush)
    else:
        row.value = value
        row.updated_at = now()


def get_meta(s: Session, key: str) -> str | None:
    row = s.get(Meta, key)
    return row.value if row else None


def set_meta(s: Session, key: str, value: str) -> None:
    row = s.get(Meta, key)
    if row is None:
        s.add(Meta(key=key, value=value))
        s.flush()
    else:
        row.value = value


def add_updates(s: Session, datatype: str, direction: str, n: int) -> None:
    """Add ``n`` to rule 9's count of updates of ``datatype`` in ``direction``.

    Called once per record written: the session keeps the row it found (a ``get`` by
    key costs more than the count), and looks it up again when it has left the session
    (after a rollback).
    """
    if n <= 0:
        return
    known: dict[tuple[str, str], UpdateCount] = s.info.setdefault("shopsync.update_counts", {})
    key = (datatype, direction)
    row = known.get(key)
    if row is None or row not in s:
        row = s.get(UpdateCount, key)
        if row is None:
            row = UpdateCount(datatype=datatype, direction=direction, count=0)
            s.add(row)
            s.flush()
        known[key] = row
    row.count += n


def update_counts(s: Session) -> dict[tuple[str, str], int]:
    return {(r.datatype, r.direction): r.count for r in s.scalars(select(UpdateCount))}


# ------------------------------------------------------------------------------ runs
def start_run(s: Session, mode: str) -> Run:
    run = Run(started_at=now(), finished_at=None, status="running", mode=mode)
    s.add(run)
    s.flush()
    return run


def recent_runs(s: Session, limit: int = 10) -> Sequence[Run]:
    return s.scalars(select(Run).order_by(Run.id.desc()).limit(limit)).all()


# ----------------------------------------------------------------------------- locks
def lock_owner(s: Session, name: str) -> str | None:
    row = s.get(Lock, name)
    return row.owner if row is not None else None


def try_lock(
    s: Session,
    name: str,
    owner: str,
    ttl: timedelta,
    alive: Callable[[str], bool | None] | None = None,
) -> bool:
    """Take (or renew) a named lock across processes; False when another owner holds it.

    Works the same on SQLite and PostgreSQL: a row per lock with an expiry. Another
    owner's lock is taken over only when it is provably gone: ``alive(owner)`` says
    False (its process ended), or cannot tell (None: another host) and the lease
    lapsed. The take-over is a compare-and-set on the owner seen, so of two processes
    racing for a dead holder's lock only one wins.
    """
    t = now()
    row = s.execute(select(Lock.owner, Lock.expires_at).where(Lock.name == name)).first()
    if row is None:
        s.add(Lock(name=name, owner=owner, expires_at=t + ttl))
        try:
            s.commit()
        except Exception:
            s.rollback()
            return False
        return True
    holder, expires = row
    if holder != owner:
        verdict = alive(holder) if alive is not None else None
        lapsed = (as_utc(expires) or t) < t
        if verdict is True or (verdict is None and not lapsed):
            s.rollback()
            return False
    res = s.execute(
        update(Lock)
        .where(Lock.name == name, Lock.owner == holder)
        .values(owner=owner, expires_at=t + ttl)
    )
    s.commit()
    return bool(getattr(res, "rowcount", 0))


def renew_lock(s: Session, name: str, owner: str, ttl: timedelta) -> bool:
    """Extend ``owner``'s lease; False when it no longer holds the lock."""
    res = s.execute(
        update(Lock).where(Lock.name == name, Lock.owner == owner).values(expires_at=now() + ttl)
    )
    s.commit()
    return bool(getattr(res, "rowcount", 0))


def release_lock(s: Session, name: str, owner: str) -> None:
    s.execute(delete(Lock).where(Lock.name == name, Lock.owner == owner))
    s.commit()
