"""The reference webshop's own schema (SQLAlchemy 2 ORM), for SQLite and PostgreSQL alike.

This is the *shop's* database, not shopsync's state store. Records keep their row when
deleted (``deleted`` = tombstone), so unique values are enforced by partial indexes over
live rows only. Timestamps are stored as naive UTC with microseconds; the API adds the
offset. Decimals are ``Numeric`` on PostgreSQL and exact decimal text on SQLite, whose
NUMERIC affinity would otherwise round through binary floats.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    event,
    false,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator, TypeEngine


def database_url(db: str) -> str:
    """Turn the ``--db`` argument into a SQLAlchemy URL.

    ``postgresql://…`` and ``postgres://…`` get the psycopg 3 driver; anything with a
    ``scheme://`` is taken as a SQLAlchemy URL; anything else is a SQLite file path.
    """
    for plain in ("postgresql://", "postgres://"):
        if db.startswith(plain):
            return "postgresql+psycopg://" + db[len(plain) :]
    if "://" in db:
        return db
    if db == ":memory:":
        return "sqlite://"
    return "sqlite:///" + str(Path(db).expanduser().resolve())


def make_engine(db: str) -> Engine:
    url = make_url(database_url(db))
    if url.get_backend_name() == "sqlite":
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if not url.database:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if url.database:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # pysqlite opens a transaction only before INSERT/UPDATE/DELETE, so a SAVEPOINT
            # sent first would open the transaction itself and its RELEASE would commit it
            # (a batch write's first item would then survive the batch's rollback). Take
            # transactions over from the driver (SQLAlchemy's documented recipe): BEGIN
            # is sent by the listener below, at the start of every transaction.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class ExactDecimal(TypeDecorator[Decimal]):
    """``Numeric(p, s)`` where the database has it; decimal text on SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 3))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return f"{value:f}" if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class Base(DeclarativeBase):
    pass


class RecordMixin:
    """Columns every synced record has."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomerRow(RecordMixin, Base):
    __tablename__ = "customers"

    customer_number: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    vat_number: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    billing_line1: Mapped[str | None] = mapped_column(Text)
    billing_line2: Mapped[str | None] = mapped_column(Text)
    billing_postal_code: Mapped[str | None] = mapped_column(Text)
    billing_city: Mapped[str | None] = mapped_column(Text)
    billing_region: Mapped[str | None] = mapped_column(Text)
    billing_country: Mapped[str | None] = mapped_column(String(2))
    shipping_line1: Mapped[str | None] = mapped_column(Text)
    shipping_line2: Mapped[str | None] = mapped_column(Text)
    shipping_postal_code: Mapped[str | None] = mapped_column(Text)
    shipping_city: Mapped[str | None] = mapped_column(Text)
    shipping_region: Mapped[str | None] = mapped_column(Text)
    shipping_country: Mapped[str | None] = mapped_column(String(2))


class ProductRow(RecordMixin, Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal(15, 2))
    list_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(15, 2))
    cost_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(15, 2))
    currency: Mapped[str] = mapped_column(String(3))
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal(5, 2))
    stock_status: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean)


class OrderLineRow(Base):
    __tablename__ = "order_lines"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    """Place in the list as the client sent it (lines come back in that order)."""
    sku: Mapped[str | None] = mapped_column(Text)
    product_id: Mapped[str | None] = mapped_column(ForeignKey("products.id"))
    description: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(14, 4))
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal(15, 2))
    list_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(15, 2))
    cost_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(15, 2))
    discount_percent: Mapped[Decimal] = mapped_column(ExactDecimal(5, 2))
    vat_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal(5, 2))
    position: Mapped[int] = mapped_column(Integer)


class OrderRow(RecordMixin, Base):
    __tablename__ = "orders"

    order_number: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    order_date: Mapped[date | None] = mapped_column(Date)
    discount_percent: Mapped[Decimal] = mapped_column(ExactDecimal(5, 2))
    notes: Mapped[str | None] = mapped_column(Text)
    total_excl_vat: Mapped[Decimal] = mapped_column(ExactDecimal(40, 2))
    lines: Mapped[list[OrderLineRow]] = relationship(
        order_by=OrderLineRow.seq, cascade="all, delete-orphan", lazy="selectin"
    )


class IdempotencyRow(Base):
    """A create made with an ``Idempotency-Key``: what was asked and what was answered."""

    __tablename__ = "idempotency_keys"

    collection: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    record_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime())


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[str] = mapped_column(Text)
    """Space-separated event names."""
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime())


class DeliveryRow(Base):
    """The webhook outbox: written in the same transaction as the change it reports."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    """The exact JSON sent (and signed) on every attempt."""
    status: Mapped[str] = mapped_column(String(12), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime())


RECORD_TABLES: tuple[type[RecordMixin], ...] = (CustomerRow, ProductRow, OrderRow)

for _row, _unique in (
    (CustomerRow, "customer_number"),
    (ProductRow, "sku"),
    (OrderRow, "order_number"),
):
    _table = cast(Table, _row.__table__)  # type: ignore[attr-defined]
    Index(f"ix_{_table.name}_changes", _table.c.updated_at, _table.c.id)
    _live = _table.c.deleted == false()
    Index(
        f"uq_{_table.name}_{_unique}_live",
        _table.c[_unique],
        unique=True,
        sqlite_where=_live,
        postgresql_where=_live,
    )


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)
