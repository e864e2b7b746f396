"""The state database's tables.

Everything shopsync knows between runs lives here, so a killed process loses nothing:

* ``links``: which webCRM record is which webshop record (rule 1), per datatype; a link
  also remembers when one side deleted its record, so the pair is not re-created.
* ``snapshots``: per link, each property's last agreed value on *each* side (rule 3/4).
* ``inbox``: records read from either side and not yet processed; a page of records and
  the cursor advance past it commit together, and a record leaves the inbox in the same
  transaction that stores its link and snapshot. Records waiting for a reference stay
  here with ``waiting_reason`` set (rule 6).
* ``merge_keys``: merge-criterion keys of records that are not linked yet (rule 2).
* ``put_aside``: records the other side refused, with the reason (rule 7).
* ``intents``: creates that may have happened (crash safety): the webshop
  ``Idempotency-Key``, and for webCRM (which has none) the time and body of a create
  in flight, all committed before the request is sent.
* ``cursors``, ``update_counts``, ``runs``, ``meta``, ``locks``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


UPDATE_ROOM: dict[str, Any] = {"postgresql_with": {"fillfactor": 60}}
"""Tables whose every row is rewritten when its record changes (links, snapshots) fill
PostgreSQL's pages to 60 %, leaving room for each row's next version on its own page,
so that most updates add no index entry (migration 0007 says what it saved)."""


class Link(Base):
    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("datatype", "webcrm_id", name="uq_links_webcrm"),
        UniqueConstraint("datatype", "webshop_id", name="uq_links_webshop"),
        Index("ix_links_parent", "parent_id"),
        UPDATE_ROOM,
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    datatype: Mapped[str] = mapped_column(String(32))
    webcrm_id: Mapped[str] = mapped_column(String(64))
    webshop_id: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), default=None
    )
    """For an order line: the link of its order."""
    parent: Mapped[Link | None] = relationship(remote_side="Link.id")
    """Lets an order's link and its lines' links be added in one flush."""
    created_by: Mapped[str] = mapped_column(String(16))
    """Which side's record came first: ``webcrm``, ``webshop`` or ``merge``."""
    state: Mapped[str] = mapped_column(String(24), default="active")
    """``active``, ``webcrm_deleted`` or ``webshop_deleted`` (the pair no longer syncs)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Snapshot(Base):
    __tablename__ = "snapshots"
    __table_args__ = (UPDATE_ROOM,)

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    props: Mapped[dict[str, Any]] = mapped_column(JSON)
    """``{property: {"c": webCRM value, "s": webshop value}}``, normalized."""
    webcrm_updated_at: Mapped[datetime | None]
    webshop_updated_at: Mapped[datetime | None]
    webshop_version: Mapped[int | None] = mapped_column(Integer, default=None)
    webcrm_fp: Mapped[str | None] = mapped_column(String(32), default=None)
    """:func:`shopsync.store.repo.values_fingerprint` of the webCRM values in ``props``:
    a record read back with the same fingerprint is unchanged, decided without decoding
    ``props`` (None for snapshots written before it existed)."""
    webshop_fp: Mapped[str | None] = mapped_column(String(32), default=None)
    updated_at: Mapped[datetime]
    link: Mapped[Link] = relationship()
    """Lets a snapshot be added with its new link in one flush."""


class InboxRecord(Base):
    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("datatype", "system", "record_id", name="uq_inbox_record"),
        Index("ix_inbox_parent", "datatype", "system", "parent_id"),
        Index("ix_inbox_batch", "datatype", "id"),
        # read a batch at a time in id order (``repo.inbox_batch``), whatever the
        # planner's statistics say of the inbox's size
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    datatype: Mapped[str] = mapped_column(String(32))
    system: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """For a webCRM quotation line: its opportunity id."""
    updated_at: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    waiting_reason: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime]


class MergeKey(Base):
    __tablename__ = "merge_keys"
    __table_args__ = (
        Index("ix_merge_keys_lookup", "datatype", "system", "key"),
        Index("ix_merge_keys_record", "datatype", "system", "record_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    datatype: Mapped[str] = mapped_column(String(32))
    system: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(512))


class PutAside(Base):
    __tablename__ = "put_aside"
    __table_args__ = (UniqueConstraint("datatype", "system", "record_id", name="uq_put_aside"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    datatype: Mapped[str] = mapped_column(String(32))
    system: Mapped[str] = mapped_column(String(16))
    """The side the record comes from (the other side refused it)."""
    record_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """Hash of the record's mapped values: it is retried when this changes."""
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime]
    last_attempt: Mapped[datetime]


class Intent(Base):
    __tablename__ = "intents"
    __table_args__ = (UniqueConstraint("datatype", "system", "record_id", name="uq_intent"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    datatype: Mapped[str] = mapped_column(String(32))
    system: Mapped[str] = mapped_column(String(16))
    """The side the source record is on; the create goes to the other side."""
    record_id: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    """When a webCRM create of this record was last sent (None: not in flight). Until
    the engine has asked webCRM whether it landed, the record is never sent again."""
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """The body that was sent, to recognise the landed record (its fingerprint)."""


class Cursor(Base):
    __tablename__ = "cursors"

    datatype: Mapped[str] = mapped_column(String(32), primary_key=True)
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class UpdateCount(Base):
    __tablename__ = "update_counts"

    datatype: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    """``to_webshop`` or ``to_webcrm``."""
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    """``running``, ``ok``, ``failed`` or ``dry-run``."""
    mode: Mapped[str] = mapped_column(String(64))
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Lock(Base):
    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


# ------------------------------------------------------------------ the console's own
# (``shopsync serve``'s console, docs/console.md). The engine never reads these.


class ConsoleActivity(Base):
    """One action of a run (a line of its ``RunReport.plan``), kept for
    ``[serve] activity_retention_days``: what changed in which direction and why."""

    __tablename__ = "console_activity"
    __table_args__ = (
        Index("ix_console_activity_at", "at"),
        Index("ix_console_activity_dt", "datatype", "id"),
        Index("ix_console_activity_link", "link_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    datatype: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(16))
    """The system written to, or ``-`` (a link, a wait)."""
    record: Mapped[str] = mapped_column(String(256))
    detail: Mapped[str] = mapped_column(Text, default="")
    label: Mapped[str] = mapped_column(String(512), default="")
    link_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The link the action concerns, when it could be told (the link page lists them)."""


class ConsoleSwitch(Base):
    """A sharing switch changed in the console; it wins over the config file's value
    until it is reset there (docs/console.md)."""

    __tablename__ = "console_switches"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """``customers.to_webshop.enabled``, ``selective.only_won_opportunities`` …"""
    value: Mapped[bool]
    updated_at: Mapped[datetime]


class ConsoleDailyUpdates(Base):
    """Rule 9's update counts per UTC day, summed from the ``runs`` table's stats."""

    __tablename__ = "console_daily_updates"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    """``YYYY-MM-DD`` (UTC) of the run's end."""
    datatype: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class ConsoleIgnored(Base):
    """A problem (put aside or waiting) someone chose not to see on the Problems page."""

    __tablename__ = "console_ignored"

    datatype: Mapped[str] = mapped_column(String(32), primary_key=True)
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime]


class ConsoleTerm(Base):
    """Search terms of a link (words of its label: name, SKU, number), lower-cased, so
    that ``/links?q=`` is an index range scan even with millions of links."""

    __tablename__ = "console_terms"
    __table_args__ = (Index("ix_console_terms_link", "link_id"),)

    term: Mapped[str] = mapped_column(
        String(128).with_variant(String(128, collation="C"), "postgresql"), primary_key=True
    )
    """Compared byte-wise (SQLite's default; ``C`` on PostgreSQL), so a prefix is one
    range of the primary key whatever the database's locale."""
    link_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
