"""Build ``/Queries`` scripts where no value can change the query.

webCRM's ``GET /Queries?script=…`` runs a SQL-like SELECT (SQL Server dialect). Values
that end up in a script — timestamps, ids, names typed by people — are put there only
through :func:`literal`, and column and table names only after checking them against
the generated field list, so a quote, a ``--`` or a ``;`` inside a value stays part of
that value. Conditions are small typed objects (:class:`Cond`), never raw strings, so
the only way to get text into a script is through these functions.

SQL Server string literals: ``'…'`` with ``'`` doubled; a backslash is an ordinary
character (unlike MySQL), so it is not escaped. Text is written as an ``N'…'`` literal
so non-Latin-1 characters survive on a real SQL Server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from shopsync.connectors.webcrm.fieldspec import EntitySpec
from shopsync.connectors.webcrm.schema import ENTITIES

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

Value = str | int | float | Decimal | bool | datetime | date | None


def format_timestamp(value: datetime) -> str:
    """A date-time as webCRM compares it: UTC, microseconds, ``Z`` (fixed width)."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous here; give it a time zone")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """A webCRM date-time as an aware UTC datetime (for ``iter_updated_since``'s ``since``).

    Accepts ``Z`` or an offset, up to 7 fractional digits (.NET writes 7); a value
    without a zone is read as UTC.
    """
    s = text.strip()
    if s[-1:] in ("z", "Z"):
        s = s[:-1] + "+00:00"
    m = re.fullmatch(r"(.*T\d\d:\d\d(?::\d\d)?)\.(\d+)(.*)", s)
    if m:
        s = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    value = datetime.fromisoformat(s)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def literal(value: Value) -> str:
    """``value`` as a script literal that reads back as exactly that value.

    Strings: quotes doubled, wrapped in ``N'…'``; characters that no real value
    holds (NUL) are refused. Date-times: UTC text (aware values only). Numbers: plain
    digits (no NaN or infinity). Booleans: ``1``/``0``. ``None``: ``NULL``.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be written into a query")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"{value!r} cannot be written into a query")
        text = format(value, "f") if isinstance(value, Decimal) else repr(value)
        return text
    if isinstance(value, datetime):
        return "'" + format_timestamp(value) + "'"
    if isinstance(value, date):
        return "'" + value.isoformat() + "'"
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a NUL character cannot be written into a query")
        return "N'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot write a {type(value).__name__} into a query")


def entity_spec(entity: str) -> EntitySpec:
    spec = ENTITIES.get(entity)
    if spec is None:
        raise ValueError(f"unknown webCRM entity {entity!r}; known: {', '.join(ENTITIES)}")
    return spec


def column(entity: str, name: str) -> str:
    """A column name, checked against the entity's generated field list."""
    spec = entity_spec(entity)
    if name not in spec.by_name or not _IDENT.fullmatch(name):
        raise ValueError(f"{name!r} is not a field of webCRM {entity}")
    return name


@dataclass(frozen=True)
class Cond:
    """A WHERE condition; ``sql`` is only ever built by the functions below."""

    sql: str

    def __and__(self, other: Cond) -> Cond:
        return Cond(f"({self.sql} AND {other.sql})")

    def __or__(self, other: Cond) -> Cond:
        return Cond(f"({self.sql} OR {other.sql})")


_OPS = {"=", "<>", "<", "<=", ">", ">="}


def compare(entity: str, field: str, op: str, value: Value) -> Cond:
    """``<field> <op> <literal>``; ``op`` one of ``= <> < <= > >=``."""
    if op not in _OPS:
        raise ValueError(f"unsupported operator {op!r}")
    if value is None:
        raise ValueError("compare with None is never true; use is_null()")
    return Cond(f"{column(entity, field)} {op} {literal(value)}")


def eq(entity: str, field: str, value: Value) -> Cond:
    return compare(entity, field, "=", value)


def is_null(entity: str, field: str) -> Cond:
    return Cond(f"{column(entity, field)} IS NULL")


def in_(entity: str, field: str, values: Sequence[Value]) -> Cond:
    if not values:
        raise ValueError("IN needs at least one value")
    return Cond(f"{column(entity, field)} IN ({', '.join(literal(v) for v in values)})")


def build_select(entity: str, where: Cond | None = None, order_by: Sequence[str] = ()) -> str:
    """``SELECT * FROM <Entity> [WHERE …] [ORDER BY …]``.

    ``order_by`` items are field names, optionally followed by `` DESC``.
    """
    spec = entity_spec(entity)
    script = f"SELECT * FROM {spec.name}"
    if where is not None:
        script += f" WHERE {where.sql}"
    if order_by:
        parts = []
        for item in order_by:
            name, _, direction = item.partition(" ")
            direction = direction.strip().upper()
            if direction not in ("", "ASC", "DESC"):
                raise ValueError(f"bad ORDER BY item {item!r}")
            parts.append(column(entity, name) + (f" {direction}" if direction else ""))
        script += " ORDER BY " + ", ".join(parts)
    return script


def updated_since_script(
    entity: str,
    lower: datetime | None,
    after: tuple[str, int] | None = None,
    *,
    ts_field: str | None = None,
) -> str:
    """The keyset query behind ``iter_updated_since``.

    Rows with ``UpdatedAt >= lower`` (all rows when None), ordered by
    ``(UpdatedAt, Id)``, and — from the second page on — only rows after the last row
    read, ``(UpdatedAt, Id) > after``. Keyset paging, unlike ``Page=n``, neither skips
    nor repeats a row when rows change while the read is under way: a row updated
    meanwhile moves *behind* the cursor and is read again with its new timestamp.
    ``after``'s timestamp is the server's own text, so equality is exact.
    ``ts_field`` pages by another timestamp instead (``<Entity>CreatedAt``: the rows
    created since a moment, to find out which creates landed).
    """
    spec = entity_spec(entity)
    ts, idf = column(entity, ts_field or spec.updated_at_field), spec.id_field
    where: Cond | None = None
    if lower is not None:
        where = compare(entity, ts, ">=", lower)
    if after is not None:
        last_ts, last_id = after
        keyset = compare(entity, ts, ">", last_ts) | (
            eq(entity, ts, last_ts) & compare(entity, idf, ">", last_id)
        )
        where = keyset if where is None else where & keyset
    return build_select(entity, where, order_by=(ts, idf))
