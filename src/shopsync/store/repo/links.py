"""Links: which webCRM record is which webshop record, per datatype.

Looked up one at a time (the binder), a page at a time (``links_for``, or
``link_rows_for`` as plain rows; ``linked_ids``), or streamed (``active_links``,
``missing_webcrm_ids``) for the delete sweep; an order's line links hang off it by
``parent_id``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from typing import cast

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from shopsync.store.chunks import among, in_chunks
from shopsync.store.models import Link
from shopsync.store.repo._common import now
from shopsync.store.rows import LinkEntry, LinkRow, columns, orm_copy


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


def children(s: Session, parent: LinkEntry) -> list[Link]:
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


def linked_ids(s: Session, datatype: str, system: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` (of ``system``) are in a link, whatever its state."""
    if not ids:  # a batch of updates to linked records asks about none
        return set()
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    return set(s.scalars(select(column).where(Link.datatype == datatype, among(column, ids))))


def link_ids_for(s: Session, datatype: str, system: str, ids: Sequence[str]) -> dict[str, int]:
    """Record id (of ``system``) → link id, for those of ``ids`` in a link, whatever its
    state, in one query a chunk."""
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    found: dict[str, int] = {}
    for chunk in in_chunks(ids):
        found.update(
            s.execute(
                select(column, Link.id).where(Link.datatype == datatype, among(column, chunk))
            )
            .tuples()
            .all()
        )
    return found


def links_for(s: Session, datatype: str, system: str, ids: Sequence[str]) -> Sequence[Link]:
    """The links of ``ids`` (of ``system``), whatever their state, in one query."""
    if not ids:
        return []
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    return s.scalars(select(Link).where(Link.datatype == datatype, among(column, ids))).all()


_ROW = columns(Link, LinkRow)
"""The columns of a :class:`LinkRow`, in the order its fields take them."""


def link_rows_for(s: Session, datatype: str, system: str, ids: Sequence[str]) -> list[LinkRow]:
    """:func:`links_for` as plain rows (half the cost of ORM objects to load)."""
    if not ids:
        return []
    column = Link.webcrm_id if system == "webcrm" else Link.webshop_id
    rows = s.execute(select(*_ROW).where(Link.datatype == datatype, among(column, ids)))
    return [LinkRow(*values) for values in rows]


def set_link_state(s: Session, link: LinkEntry, state: str) -> None:
    """Set a link's ``state`` (a delete unlinks or deactivates): an ORM object the
    usual way, a plain row by id at once, with its ORM copy in the session, if any."""
    link.state = state
    if isinstance(link, Link):
        return
    table = cast(Table, Link.__table__)
    s.execute(update(table).where(table.c.id == link.id).values(state=state))
    twin = orm_copy(s, Link, link.id)
    if twin is not None:
        set_committed_value(twin, "state", state)


def orm_link(s: Session, link: LinkEntry) -> Link:
    """The ORM object of a link (from the session's identity map when it holds it),
    for what relates other rows to it (an order's lines)."""
    if isinstance(link, Link):
        return link
    found = s.get(Link, link.id)
    assert found is not None, f"link {link.id} vanished within its transaction"
    return found
