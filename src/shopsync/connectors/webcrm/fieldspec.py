"""The shape of a webCRM field definition (see ``schema.py``, generated from swagger)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

JsonType = Literal["string", "integer", "number", "boolean"]


@dataclass(frozen=True)
class FieldSpec:
    """One DTO property: its JSON type, format, maximum length and allowed values."""

    name: str
    type: JsonType
    format: str | None = None
    max_length: int | None = None
    enum: tuple[str, ...] | None = None
    extension: bool = False
    """True for fields the live API has but the published definition does not list."""


@dataclass(frozen=True)
class EntitySpec:
    """A webCRM datatype: its names and fields.

    ``name`` is the singular used in ``/Queries`` and in field prefixes
    (``Organisation``); ``collection`` is the REST path segment (``Organisations``).
    """

    name: str
    collection: str
    dto: str
    fields: tuple[FieldSpec, ...]
    hook_filters: tuple[str, ...] = ()
    by_name: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def id_field(self) -> str:
        return f"{self.name}Id"

    @property
    def created_at_field(self) -> str:
        return f"{self.name}CreatedAt"

    @property
    def updated_at_field(self) -> str:
        return f"{self.name}UpdatedAt"

    @property
    def created_by_field(self) -> str:
        return f"{self.name}CreatedBy"

    @property
    def updated_by_field(self) -> str:
        return f"{self.name}UpdatedBy"

    @property
    def server_fields(self) -> tuple[str, ...]:
        """Fields the server sets; a client's values for them are ignored."""
        return (
            self.id_field,
            self.created_at_field,
            self.updated_at_field,
            self.created_by_field,
            self.updated_by_field,
        )
