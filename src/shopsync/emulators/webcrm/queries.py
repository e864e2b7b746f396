"""``GET /Queries?script=…``: a webCRM SELECT, parsed by sqlglot, rebuilt as safe SQL.

The script is parsed (T-SQL dialect: webCRM runs on SQL Server) into a syntax tree; the
tree is then walked and *re-built* from a whitelist: table names map to the four
emulated tables, column names to that table's DTO fields, operators to a fixed table,
and every literal becomes a ``?`` parameter. The script text itself never reaches
SQLite, so a quote, a ``--`` comment or a ``;`` inside a literal is just part of that
literal's value. What the whitelist does not cover is refused with a message.

Supported::

    SELECT * FROM <Organisation|Opportunity|QuotationLine|Product>
      [WHERE <condition>] [ORDER BY <column> [ASC|DESC], …]

where a condition is built from comparisons (``= <> != < <= > >=``), ``LIKE`` /
``NOT LIKE``, ``IN (…)``, ``BETWEEN … AND …``, ``IS [NOT] NULL``, ``NOT``, ``AND``,
``OR`` and parentheses, over columns and literals (strings, numbers, ``NULL``,
``TRUE``/``FALSE``). A string compared with a date-time column is read as a date-time
and normalised to the stored form, so ``'2026-05-01'`` and ``'2026-05-01T00:00:00Z'``
select the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from shopsync.connectors.webcrm.fieldspec import EntitySpec, FieldSpec
from shopsync.connectors.webcrm.schema import ENTITIES
from shopsync.emulators.webcrm.store import q
from shopsync.emulators.webcrm.timeutil import OutOfRange, normalize_ts

MAX_SCRIPT = 10_000
MAX_NESTING = 24
"""Deepest parenthesis nesting of the compiled condition. SQLite's parser has a fixed
stack (a ``(a = 1 OR (NOT (…)))`` chain overflows it at about 38 parentheses), so deeper
conditions are refused here, with a message, rather than failing in SQLite."""

_TABLES = {name.lower(): spec for name, spec in ENTITIES.items()}
_COMPARE: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
# Select arguments that change what or how many rows come back: none are supported.
_REFUSED_CLAUSES = {
    "joins": "JOIN",
    "group": "GROUP BY",
    "having": "HAVING",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "distinct": "DISTINCT",
    "with": "WITH",
    "with_": "WITH",
    "laterals": "LATERAL",
    "windows": "WINDOW",
    "qualify": "QUALIFY",
    "into": "INTO",
    "locks": "locking clauses",
    "top": "TOP",
    "kind": "SELECT modifiers",
    "hint": "hints",
    "connect": "CONNECT BY",
    "match": "MATCH_RECOGNIZE",
    "pivots": "PIVOT",
    "sample": "TABLESAMPLE",
    "settings": "SETTINGS",
    "format": "FORMAT",
    "options": "OPTION",
    "cluster": "CLUSTER BY",
    "distribute": "DISTRIBUTE BY",
    "sort": "SORT BY",
    "prewhere": "PREWHERE",
}


class QueryError(ValueError):
    """A script the emulator cannot or will not run; the message says why."""


@dataclass
class CompiledQuery:
    """Whitelisted SQL fragments plus parameters for :meth:`Store.page`."""

    entity: EntitySpec
    where: str = ""
    params: list[Any] = field(default_factory=list)
    order: str = ""


def compile_script(script: str) -> CompiledQuery:
    """Parse ``script`` and rebuild it as parameterised SQL, or raise :class:`QueryError`."""
    try:
        return _compile_script(script)
    except RecursionError:
        # sqlglot's parser recurses about twenty frames per parenthesis or NOT; SQL Server
        # too refuses a statement "nested too deeply" (error 191).
        raise QueryError("script is nested too deeply") from None


def _compile_script(script: str) -> CompiledQuery:
    if not script or not script.strip():
        raise QueryError("script is empty")
    if len(script) > MAX_SCRIPT:
        raise QueryError(f"script is longer than {MAX_SCRIPT} characters")
    try:
        statements = [s for s in sqlglot.parse(script, read="tsql") if s is not None]
    except SqlglotError as exc:
        raise QueryError(f"script is not valid SQL: {_first_line(str(exc))}") from None
    if len(statements) != 1:
        raise QueryError(f"script must hold exactly one statement, found {len(statements)}")
    stmt = statements[0]
    if not isinstance(stmt, exp.Select):
        raise QueryError(f"only SELECT is supported, not {stmt.key.upper()}")
    for key, label in _REFUSED_CLAUSES.items():
        if stmt.args.get(key):
            raise QueryError(f"{label} is not supported")
    if len(stmt.expressions) != 1 or not isinstance(stmt.expressions[0], exp.Star):
        raise QueryError("only SELECT * is supported")
    entity = _table(stmt)
    query = CompiledQuery(entity)
    where = stmt.args.get("where")
    if where is not None:
        query.where = _Compiler(entity, query.params).condition(where.this)
        if _nesting(query.where) > MAX_NESTING:
            raise QueryError(
                f"script is nested too deeply (more than {MAX_NESTING} levels of "
                "parentheses, NOT, AND/OR)"
            )
    order = stmt.args.get("order")
    if order is not None:
        query.order = _order(entity, order)
    return query


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "parse error"


def _table(stmt: exp.Select) -> EntitySpec:
    source = stmt.args.get("from_") or stmt.args.get("from")
    if source is None:
        raise QueryError("FROM <table> is required")
    if source.args.get("expressions"):
        raise QueryError("only one table can be read")
    table = source.this
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise QueryError("FROM must name one table")
    if table.args.get("db") or table.args.get("catalog"):
        raise QueryError("table names cannot be qualified")
    for key in ("joins", "laterals", "pivots", "hints", "sample"):
        if table.args.get(key):
            raise QueryError("FROM must name one plain table")
    spec = _TABLES.get(table.name.lower())
    if spec is None:
        names = ", ".join(ENTITIES)
        raise QueryError(f"unknown table {table.name!r}; the emulator has {names}")
    return spec


def _column(entity: EntitySpec, node: exp.Column) -> FieldSpec:
    if node.args.get("table") is not None and node.table.lower() not in (
        entity.name.lower(),
        _alias_of(node),
    ):
        raise QueryError(f"column {node.sql()} does not belong to {entity.name}")
    name = node.name
    for spec in entity.fields:
        if spec.name.lower() == name.lower():
            return spec
    raise QueryError(f"unknown column {name!r} in {entity.name}")


def _alias_of(node: exp.Column) -> str:
    select = node.find_ancestor(exp.Select)
    if select is None:
        return ""
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    return table.alias.lower() if isinstance(table, exp.Table) and table.alias else ""


def _order(entity: EntitySpec, order: exp.Order) -> str:
    parts = []
    for item in order.expressions:
        if not isinstance(item, exp.Ordered) or not isinstance(item.this, exp.Column):
            raise QueryError("ORDER BY takes column names, each optionally ASC or DESC")
        spec = _column(entity, item.this)
        parts.append(f"{q(spec.name)} {'DESC' if item.args.get('desc') else 'ASC'}")
    return ", ".join(parts)


class _Compiler:
    """Walks a WHERE tree and emits whitelisted SQL with ``?`` placeholders."""

    def __init__(self, entity: EntitySpec, params: list[Any]) -> None:
        self.entity = entity
        self.params = params

    def condition(self, node: exp.Expression) -> str:
        sql = self._condition(node)
        # Newer sqlglot marks NOT LIKE / NOT IN / IS NOT with a ``negate`` flag.
        return f"(NOT {sql})" if node.args.get("negate") else sql

    def _condition(self, node: exp.Expression) -> str:
        _only_known_args(node)
        if isinstance(node, exp.And | exp.Or):
            # A chain ``a OR b OR c …`` is not emitted as the left-nested tree sqlglot
            # builds: SQLite's parser overflows on about a hundred nested parentheses. The
            # operands are regrouped as a balanced tree (AND and OR are associative).
            op = "AND" if isinstance(node, exp.And) else "OR"
            operands = [self.condition(cast(exp.Expression, p)) for p in node.flatten()]
            return _balanced(operands, op)
        if isinstance(node, exp.Paren):
            return self.condition(node.this)  # every condition is emitted in parentheses
        if isinstance(node, exp.Not):
            return f"(NOT {self.condition(node.this)})"
        if type(node) in _COMPARE:
            op = _COMPARE[type(node)]
            left, right = node.this, node.expression
            hint = self._datetime_hint(left, right)
            return f"({self.operand(left, hint)} {op} {self.operand(right, hint)})"
        if isinstance(node, exp.Like):
            return f"({self.operand(node.this)} LIKE {self.operand(node.expression)})"
        if isinstance(node, exp.Is):
            target = node.expression
            if not isinstance(target, exp.Null):
                raise QueryError("IS takes NULL or NOT NULL")
            return f"({self.operand(node.this)} IS NULL)"
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise QueryError("IN takes a list of literals, not a subquery")
            if not node.expressions:
                raise QueryError("IN needs at least one value")
            hint = self._datetime_hint(node.this, *node.expressions)
            items = ", ".join(self.operand(e, hint) for e in node.expressions)
            return f"({self.operand(node.this, hint)} IN ({items}))"
        if isinstance(node, exp.Between):
            low, high = node.args["low"], node.args["high"]
            hint = self._datetime_hint(node.this, low, high)
            return (
                f"({self.operand(node.this, hint)} BETWEEN "
                f"{self.operand(low, hint)} AND {self.operand(high, hint)})"
            )
        if isinstance(node, exp.Boolean | exp.Column):
            raise QueryError(f"{node.sql(dialect='tsql')} is not a condition; compare it")
        raise QueryError(f"unsupported expression in WHERE: {_describe(node)}")

    def _datetime_hint(self, *nodes: exp.Expression) -> bool:
        """True when one operand is a date-time column: string literals are then times."""
        for node in nodes:
            inner = node.this if isinstance(node, exp.Paren) else node
            if isinstance(inner, exp.Column) and _column(self.entity, inner).format == "date-time":
                return True
        return False

    def operand(self, node: exp.Expression, datetime_column: bool = False) -> str:
        _only_known_args(node)
        if isinstance(node, exp.Paren):
            return self.operand(node.this, datetime_column)
        if isinstance(node, exp.Column):
            return q(_column(self.entity, node).name)
        if isinstance(node, exp.National):
            node = exp.Literal.string(node.this)
        if isinstance(node, exp.Literal):
            if node.is_string:
                value: Any = node.this
                if datetime_column:
                    try:
                        value = normalize_ts(value)
                    except OutOfRange as exc:
                        raise QueryError(str(exc)) from None
                    except ValueError:
                        raise QueryError(f"{node.this!r} is not a date-time") from None
                self.params.append(value)
            else:
                self.params.append(_bindable(_number(node.this)))
            return "?"
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            if node.this.is_string:
                raise QueryError("a string cannot be negated")
            self.params.append(_bindable(-_number(node.this.this)))
            return "?"
        if isinstance(node, exp.Null):
            return "NULL"
        if isinstance(node, exp.Boolean):
            self.params.append(1 if node.this else 0)
            return "?"
        raise QueryError(f"unsupported value: {_describe(node)}")


# The arguments each supported node may carry; anything else set (an ESCAPE clause, a
# collation, a subquery, a flag a newer sqlglot adds) is refused rather than dropped.
_KNOWN_ARGS: dict[type[exp.Expression], frozenset[str]] = {
    exp.And: frozenset({"this", "expression"}),
    exp.Or: frozenset({"this", "expression"}),
    exp.Not: frozenset({"this"}),
    exp.Paren: frozenset({"this"}),
    exp.Like: frozenset({"this", "expression", "negate"}),
    exp.Is: frozenset({"this", "expression", "negate"}),
    exp.In: frozenset({"this", "expressions", "negate", "is_global"}),
    exp.Between: frozenset({"this", "low", "high", "negate"}),
    exp.Column: frozenset({"this", "table"}),
    exp.Literal: frozenset({"this", "is_string"}),
    exp.National: frozenset({"this"}),
    exp.Neg: frozenset({"this"}),
    exp.Null: frozenset(),
    exp.Boolean: frozenset({"this"}),
    **{op: frozenset({"this", "expression"}) for op in _COMPARE},
}


def _only_known_args(node: exp.Expression) -> None:
    known = _KNOWN_ARGS.get(type(node))
    if known is None:
        return  # unsupported node types are refused by the caller, with their own message
    extra = [_ARG_NAMES.get(k, k) for k, v in node.args.items() if v and k not in known]
    if extra:
        raise QueryError(f"unsupported construct in {_describe(node)} ({', '.join(extra)})")


_ARG_NAMES = {"query": "subquery", "unnest": "UNNEST", "escape": "ESCAPE", "collate": "COLLATE"}


def _nesting(sql: str) -> int:
    """How deeply parentheses nest in compiled SQL (whitelisted names and ``?`` only)."""
    depth = deepest = 0
    for char in sql:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def _balanced(operands: list[str], op: str) -> str:
    """``(a op b op c …)`` as a tree of depth log2(n), in the operands' order."""
    if len(operands) == 1:
        return operands[0]
    middle = len(operands) // 2
    return f"({_balanced(operands[:middle], op)} {op} {_balanced(operands[middle:], op)})"


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise QueryError(f"{text!r} is not a number") from None


def _bindable(value: int | float) -> int | float:
    """An integer beyond SQLite's int64 is compared as a REAL (SQL Server reads such a
    literal as a decimal): ``Id < 99999999999999999999`` is true, ``Id =`` it is false.
    One beyond even a double (309 digits and more) is an infinity, as ``1e999`` is."""
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def _describe(node: exp.Expression) -> str:
    text = node.sql(dialect="tsql")
    return text if len(text) <= 80 else text[:77] + "..."
