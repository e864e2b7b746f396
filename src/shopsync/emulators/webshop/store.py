"""Database access with the one rule that makes cursors stable: writes are serialized.

A write takes the store's lock, reads the clock and commits before the next write
starts, so a change with a later ``updated_at`` is never committed before one with an
earlier ``updated_at``. A reader that has listed up to some change can therefore never
later find an older change it did not see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from .clock import Clock
from .db import (
    RECORD_TABLES,
    CustomerRow,
    DeliveryRow,
    IdempotencyRow,
    OrderLineRow,
    OrderRow,
    ProductRow,
    WebhookRow,
    create_schema,
    make_engine,
)


class Store:
    def __init__(self, db: str) -> None:
        self.engine: Engine = make_engine(db)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.clock = Clock()
        self._lock = threading.RLock()
        self.after_write: list[Callable[[], None]] = []

    def start(self) -> None:
        create_schema(self.engine)
        with self.read() as session:
            for table in RECORD_TABLES:
                newest: datetime | None = session.scalar(select(func.max(table.updated_at)))
                if newest is not None:
                    self.clock.not_before(newest)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One serialized transaction; listeners run after it committed."""
        with self._lock:
            with self.sessions.begin() as session:
                yield session
            for listener in self.after_write:
                listener()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def reset(self) -> None:
        with self.write() as session:
            for table in (
                DeliveryRow, WebhookRow, IdempotencyRow, OrderLineRow, OrderRow,
                CustomerRow, ProductRow,
            ):  # fmt: skip
                session.execute(delete(table))

    def is_empty(self) -> bool:
        with self.read() as session:
            return all(
                session.scalar(select(func.count()).select_from(t)) == 0 for t in RECORD_TABLES
            )
