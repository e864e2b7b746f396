"""Every value written into a ``/Queries`` script reads back as exactly that value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from shopsync.connectors.webcrm.queries import (
    build_select,
    eq,
    in_,
    is_null,
    literal,
    updated_since_script,
)


def parse_where(script: str) -> exp.Expression:
    tree = sqlglot.parse_one(script, read="tsql")
    assert isinstance(tree, exp.Select)
    where = tree.args.get("where")
    assert where is not None
    return where.this


def string_of(node: exp.Expression) -> str:
    if isinstance(node, exp.National):
        return str(node.this)
    assert isinstance(node, exp.Literal) and node.is_string
    return str(node.this)


@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])))
def test_any_text_is_one_literal_with_the_same_value(value: str) -> None:
    """Quotes, ``--``, ``;``, backslashes, newlines: the WHERE is still one comparison
    whose right side is exactly ``value``."""
    script = build_select("Organisation", where=eq("Organisation", "OrganisationName", value))
    cond = parse_where(script)
    assert isinstance(cond, exp.EQ)
    assert isinstance(cond.this, exp.Column) and cond.this.name == "OrganisationName"
    assert string_of(cond.expression) == value


@pytest.mark.parametrize(
    "value",
    ["O'Brien", "x' OR 1=1 --", "a'; DROP TABLE Organisation; --", "back\\", "\\'", "''", "æøå ß"],
)
def test_injection_attempts_stay_values(value: str) -> None:
    cond = parse_where(build_select("Product", where=eq("Product", "ProductCustom1", value)))
    assert isinstance(cond, exp.EQ)
    assert string_of(cond.expression) == value


def test_literal_forms() -> None:
    assert literal(None) == "NULL"
    assert literal(True) == "1"
    assert literal(42) == "42"
    assert literal(Decimal("12.50")) == "12.50"
    assert literal(1.5) == "1.5"
    assert literal(date(2026, 5, 1)) == "'2026-05-01'"
    cet = timezone(timedelta(hours=2))
    assert literal(datetime(2026, 5, 1, 12, 0, tzinfo=cet)) == "'2026-05-01T10:00:00.000000Z'"
    with pytest.raises(ValueError):
        literal(datetime(2026, 5, 1))  # naive: ambiguous
    with pytest.raises(ValueError):
        literal(float("nan"))
    with pytest.raises(ValueError):
        literal("a\x00b")


def test_names_are_checked_against_the_schema() -> None:
    with pytest.raises(ValueError, match="not a field"):
        eq("Organisation", "OrganisationName; DROP", "x")
    with pytest.raises(ValueError, match="unknown webCRM entity"):
        build_select("Organisation; --")
    with pytest.raises(ValueError, match="ORDER BY"):
        build_select("Product", order_by=["ProductId; DROP"])
    script = build_select(
        "Product",
        where=in_("Product", "ProductId", [1, 2]) | is_null("Product", "ProductCustom1"),
        order_by=["ProductId DESC"],
    )
    assert script == (
        "SELECT * FROM Product WHERE (ProductId IN (1, 2) OR ProductCustom1 IS NULL) "
        "ORDER BY ProductId DESC"
    )


def test_updated_since_keyset_script() -> None:
    since = datetime(2026, 5, 1, tzinfo=UTC)
    assert updated_since_script("Organisation", None) == (
        "SELECT * FROM Organisation ORDER BY OrganisationUpdatedAt, OrganisationId"
    )
    script = updated_since_script("Organisation", since, ("2026-05-02T00:00:00.000001Z", 7))
    assert script == (
        "SELECT * FROM Organisation WHERE (OrganisationUpdatedAt >= '2026-05-01T00:00:00.000000Z'"
        " AND (OrganisationUpdatedAt > N'2026-05-02T00:00:00.000001Z' OR "
        "(OrganisationUpdatedAt = N'2026-05-02T00:00:00.000001Z' AND OrganisationId > 7))) "
        "ORDER BY OrganisationUpdatedAt, OrganisationId"
    )
    sqlglot.parse_one(script, read="tsql")
