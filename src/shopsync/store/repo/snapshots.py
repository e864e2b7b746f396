"""Snapshots: per link, the values both sides last agreed on, and each side's
fingerprint of them.

The fast path reads only the fingerprints (``agreed_fingerprints``,
``line_fingerprints_of_orders``) or the props (``agreed_values``) of a page in one
Core query; ``put_snapshot`` writes one after a record is processed, through
:mod:`shopsync.store.deferred` when the snapshot was loaded in this batch. Snapshots
added since the last flush are remembered in ``Session.info`` (``_pending_snapshots``)
so a second write in the same flush finds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, select, update
from sqlalchemy.orm import Session, aliased

from shopsync.store import deferred
from shopsync.store.chunks import among, in_chunks
from shopsync.store.models import Link, Snapshot
from shopsync.store.repo._common import now
from shopsync.store.repo.fingerprints import values_fingerprint
from shopsync.store.rows import LinkEntry, SnapshotEntry, SnapshotRow, columns


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


def get_snapshot(s: Session, link: LinkEntry) -> Snapshot | None:
    snap = _pending_snapshots(s).get(id(link))
    if snap is not None or link.id is None:
        return snap
    return s.get(Snapshot, link.id)


_ROW = columns(Snapshot, SnapshotRow)
"""The columns of a :class:`SnapshotRow`, in the order its fields take them."""


def snapshots_for(s: Session, link_ids: Sequence[int]) -> dict[int, SnapshotRow]:
    """The snapshots of ``link_ids`` as plain rows (one query)."""
    if not link_ids:
        return {}
    rows = s.execute(select(*_ROW).where(among(Snapshot.link_id, link_ids)))
    return {values[0]: SnapshotRow(*values) for values in rows}


def side_values(props: Mapping[str, Any], side: str) -> dict[str, Any]:
    """One side's values (``side``: ``"c"`` or ``"s"``) of a snapshot's ``props``."""
    return {name: pair[side] for name, pair in props.items() if side in pair}


def put_snapshot(
    s: Session,
    link: LinkEntry,
    props: dict[str, Any],
    webcrm_updated_at: datetime | None,
    webshop_updated_at: datetime | None,
    webshop_version: int | None,
    *,
    known: SnapshotEntry | None = None,
) -> None:
    """Store the values both sides now agree on; ``known`` is the link's snapshot as
    read earlier in the run (saves looking it up again)."""
    snap: SnapshotEntry | None = (
        known if known is not None and known.link_id == link.id else get_snapshot(s, link)
    )
    t = now()
    c_fp = values_fingerprint(side_values(props, "c"))
    s_fp = values_fingerprint(side_values(props, "s"))
    if snap is None:
        # a new link is related by object (its id comes with the flush), a read one by id
        related: dict[str, Any] = {"link": link} if isinstance(link, Link) else {"link_id": link.id}
        snap = Snapshot(
            **related,
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
        if isinstance(snap, SnapshotRow) or deferred.is_loaded(s, snap):
            deferred.update_snapshot(s, snap, values)
        else:
            for name, value in values.items():
                setattr(snap, name, value)
    deferred.touch_link(s, link, t)


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
