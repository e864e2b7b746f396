"""What the engine needs from the two connectors (implemented in ``connectors/``).

Declared as protocols so the engine's dependencies on the outside world are visible in
one place and the engine can be read without the HTTP details.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol


class UpsertOutcome(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def id(self) -> int | None: ...

    @property
    def error(self) -> str | None: ...


class WebcrmPort(Protocol):
    requests_made: int

    def iter_all(self, entity: str) -> Iterator[list[dict[str, Any]]]: ...

    def iter_updated_since(
        self, entity: str, since: datetime | None, *, settled: datetime | None = None
    ) -> Iterator[list[dict[str, Any]]]: ...

    def iter_created_since(
        self, entity: str, since: datetime
    ) -> Iterator[list[dict[str, Any]]]: ...

    def iter_query(self, script: str) -> Iterator[list[dict[str, Any]]]: ...

    def get(self, entity: str, id: int) -> dict[str, Any] | None: ...

    def quotation_lines_of(self, opportunity_id: int) -> list[dict[str, Any]]: ...

    def upsert(
        self,
        entity: str,
        records: Sequence[Mapping[str, Any]],
        *,
        on_send: Callable[[range], None] | None = None,
    ) -> Sequence[UpsertOutcome]: ...

    def delete(self, entity: str, id: int) -> None: ...


class ChangePagePort(Protocol):
    items: list[dict[str, Any]]
    next_cursor: str | None


class WebshopPort(Protocol):
    requests_made: int

    def iter_changes(
        self, collection: str, updated_since: datetime | None, include_deleted: bool = True
    ) -> Iterator[Any]: ...

    def get(self, collection: str, id: str) -> dict[str, Any] | None: ...

    def create(
        self, collection: str, body: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]: ...

    def update(
        self,
        collection: str,
        id: str,
        patch: Mapping[str, Any],
        if_match: int | None = None,
    ) -> dict[str, Any]: ...

    def delete(self, collection: str, id: str) -> None: ...

    def write_many(self, collection: str, ops: Sequence[Any]) -> list[Any]:
        """Creates and updates in as few requests as the shop allows; per op, the
        record written or the exception its single request would have raised."""
        ...
