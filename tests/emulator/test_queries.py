"""``GET /Queries``: what is accepted, what is refused, and that literals stay literals."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopsync.emulators.webcrm.queries import QueryError, compile_script
from shopsync.emulators.webcrm.store import Store

from .conftest import seed

# What compiled SQL may contain: quoted whitelisted names, placeholders, operators, keywords.
SAFE_SQL = re.compile(
    r'^(?:\s|\(|\)|,|\?|"[A-Za-z0-9]+"|=|<>|<=|>=|<|>|AND|OR|NOT|LIKE|IN|IS|NULL|BETWEEN|ASC|DESC)*$'
)
NASTY = [
    "O'Brien",
    "' OR '1'='1",
    "x' OR 1=1 --",
    "'; DROP TABLE Organisation; --",
    "a -- comment",
    "b /* comment */ c",
    "semi;colon",
    '"double" quotes',
    "back\\slash'",
    "Ærø' UNION SELECT * FROM Product --",
]


def sql_literal(value: str) -> str:
    """How a careful client escapes a value for a script: double every quote."""
    return "'" + value.replace("'", "''") + "'"


@pytest.mark.parametrize(
    "script",
    [
        "SELECT * FROM Organisation",
        "select * from organisation where OrganisationName = 'x'",
        "SELECT * FROM QUOTATIONLINE WHERE QuotationLineOpportunityId IN (1, 2, 3)",
        "SELECT * FROM Product WHERE (ProductPrice > 10 AND ProductPrice <= 20.5) OR ProductId = -1",
        "SELECT * FROM Opportunity WHERE OpportunityNumber LIKE 'WC-%' ORDER BY OpportunityId DESC",
        "SELECT * FROM Opportunity WHERE OpportunityLostDate IS NOT NULL AND NOT OpportunityPercent <> 100",
        "SELECT * FROM Organisation WHERE OrganisationUpdatedAt BETWEEN '2026-01-01' AND '2026-02-01'",
        "SELECT * FROM Organisation ORDER BY organisationname ASC, OrganisationCity DESC;",
        "SELECT * FROM Product WHERE ProductCustom2 = N'Bürostuhl'",
    ],
)
def test_accepted_scripts_compile_to_whitelisted_sql(script: str) -> None:
    query = compile_script(script)
    assert SAFE_SQL.match(query.where), query.where
    assert SAFE_SQL.match(query.order), query.order


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("", "empty"),
        ("SELECT OrganisationName FROM Organisation", "only SELECT *"),
        ("SELECT COUNT(*) FROM Organisation", "only SELECT *"),
        ("SELECT * FROM Person", "unknown table"),
        ("SELECT * FROM Organisation; DELETE FROM Organisation", "one statement"),
        ("DELETE FROM Organisation", "only SELECT"),
        ("UPDATE Organisation SET OrganisationName = 'x'", "only SELECT"),
        ("SELECT * FROM Organisation WHERE Nope = 1", "unknown column"),
        ("SELECT * FROM Organisation WHERE OrganisationId IN (SELECT 1)", "subquery"),
        ("SELECT * FROM Organisation o JOIN Product p ON 1 = 1", "JOIN"),
        ("SELECT * FROM Organisation GROUP BY OrganisationCity", "GROUP BY"),
        ("SELECT TOP 5 * FROM Organisation", "not supported"),
        ("SELECT * FROM Organisation WHERE LOWER(OrganisationName) = 'x'", "unsupported"),
        ("SELECT * FROM Organisation WHERE OrganisationUpdatedAt > 'yesterday'", "date-time"),
        ("SELECT * FROM Organisation WHERE", "not valid SQL"),
        ("SELECT * FROM Organisation WHERE OrganisationName = 'unterminated", "not valid SQL"),
        ("SELECT * FROM Organisation WHERE OrganisationId", "not a condition"),
        ("SELECT * FROM Organisation ORDER BY 1", "ORDER BY"),
        ("SELECT * FROM dbo.Organisation", "qualified"),
        ("SELECT * FROM Organisation, Product", "not supported"),
    ],
)
def test_refused_scripts_say_why(script: str, fragment: str) -> None:
    with pytest.raises(QueryError, match=re.escape(fragment)):
        compile_script(script)


def test_datetime_literals_are_normalised() -> None:
    a = compile_script("SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= '2026-05-01'")
    b = compile_script(
        "SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= '2026-05-01T02:00:00+02:00'"
    )
    assert a.params == b.params == ["2026-05-01T00:00:00.000000Z"]


_TOKENS = [
    *" '\"-;/*()=<>,.%_N0123456789xÆ",
    "AND ", "OR ", "NOT ", "IN ", "IS ", "NULL ", "LIKE ", "SELECT ", "FROM ", "--", "/*",
    "OrganisationName ", "OrganisationId ", "Product ", "ORDER BY ", "DESC", "UNION ",
]  # fmt: skip
_SQLISH = st.lists(st.sampled_from(_TOKENS), max_size=25).map("".join)  # fmt: skip


@given(
    st.one_of(
        st.text(max_size=200),
        _SQLISH.map(lambda t: "SELECT * FROM Organisation WHERE " + t),
        _SQLISH.map(lambda t: "SELECT * FROM Organisation WHERE OrganisationName = " + t),
    )
)
@settings(max_examples=200, deadline=None)
def test_any_script_either_compiles_safely_or_is_refused(script: str) -> None:
    try:
        query = compile_script(script)
    except QueryError:
        return
    assert SAFE_SQL.match(query.where) and SAFE_SQL.match(query.order)


_LEAVES = st.sampled_from(
    [
        "OrganisationId = 1",
        "OrganisationId IN (1, 2)",
        "OrganisationId BETWEEN 1 AND 2",
        "OrganisationName LIKE 'a%'",
        "OrganisationName IS NOT NULL",
        "OrganisationId NOT IN (3)",
    ]
)
_WRAPPERS = [
    "NOT ({c})",
    "({c})",
    "({c}) AND {leaf}",
    "{leaf} OR ({c})",
    "{leaf} AND NOT ({c})",
    "{leaf} OR {leaf} AND ({c})",
    "{c} OR {leaf} OR {leaf}",
]


@st.composite
def _conditions(draw: st.DrawFn) -> str:
    """A leaf wrapped up to 45 times, so nesting from shallow to far too deep is drawn."""
    condition = draw(_LEAVES)
    for _ in range(draw(st.integers(0, 45))):
        wrapper = draw(st.sampled_from(_WRAPPERS))
        condition = wrapper.format(c=condition, leaf=draw(_LEAVES))
    return condition


@given(condition=_conditions())
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_compiled_condition_runs_in_sqlite_however_it_nests(store: Store, condition: str) -> None:
    """Either refused as nested too deeply, or SQLite's fixed parser stack takes it (a
    ``(a OR (NOT (…)))`` chain once overflowed it at about 20 levels: a 500)."""
    try:
        query = compile_script("SELECT * FROM Organisation WHERE " + condition)
    except QueryError as exc:
        assert "nested too deeply" in str(exc)
        return
    store.page("Organisation", 1, 10, where=query.where, params=query.params)


def test_nesting_is_refused_before_sqlite_overflows(store: Store) -> None:
    condition = "OrganisationId = 1"
    for _ in range(40):
        condition = f"OrganisationId = 2 OR (NOT ({condition}))"
    with pytest.raises(QueryError, match="nested too deeply"):
        compile_script("SELECT * FROM Organisation WHERE " + condition)
    query = compile_script("SELECT * FROM Organisation WHERE " + "NOT " * 22 + "OrganisationId = 1")
    rows = store.page("Organisation", 1, 10, where=query.where, params=query.params)
    assert [r["OrganisationId"] for r in rows] == [1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("queries") / "q.sqlite")
    s.patch("Organisation", [{"OrganisationName": v} for v in NASTY] + [{"OrganisationName": "x"}])
    return s


@given(value=st.text(max_size=40))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_an_escaped_literal_selects_exactly_its_value(store: Store, value: str) -> None:
    """Whatever the text, a properly escaped literal selects the rows equal to it."""
    value = value.replace("\x00", "")
    script = f"SELECT * FROM Organisation WHERE OrganisationName = {sql_literal(value)}"
    query = compile_script(script)
    assert query.params == [value]
    rows = store.page("Organisation", 1, 1000, where=query.where, params=query.params)
    expected = sum(1 for v in [*NASTY, "x"] if v == value)
    assert len(rows) == expected
    assert all(r["OrganisationName"] == value for r in rows)


def test_injection_attempts_over_http(
    crm: httpx.Client, reset_emulator: object, tmp_path: Path
) -> None:
    url = crm.base_url
    seed(str(url).rstrip("/"), 10, products=3, opportunities=0)
    assert (
        crm.patch("/Organisations", json=[{"OrganisationName": v} for v in NASTY]).status_code
        == 200
    )
    total = len(crm.get("/Organisations", params={"Size": 1000}).json())
    assert total == 10 + len(NASTY)
    for value in NASTY:
        script = f"SELECT * FROM Organisation WHERE OrganisationName = {sql_literal(value)}"
        r = crm.get("/Queries", params={"script": script, "Size": 1000})
        assert r.status_code == 200, r.text
        assert [o["OrganisationName"] for o in r.json()] == [value]
        like = f"SELECT * FROM Organisation WHERE OrganisationName LIKE {sql_literal(value)}"
        assert len(crm.get("/Queries", params={"script": like}).json()) <= 1
    # Nothing was dropped or changed by any of them.
    assert len(crm.get("/Organisations", params={"Size": 1000}).json()) == total
    assert len(crm.get("/Products").json()) == 3

    # A client that forgets to escape gets either a refusal or the query it wrote.
    raw = "SELECT * FROM Organisation WHERE OrganisationName = 'x'; DROP TABLE Product; --'"
    r = crm.get("/Queries", params={"script": raw})
    assert r.status_code == 400 and "one statement" in r.json()["Message"]
    assert len(crm.get("/Products").json()) == 3


def test_queries_over_http_filter_order_and_page(crm: httpx.Client, reset_emulator: object) -> None:
    seed(str(crm.base_url).rstrip("/"), 40)
    q = "SELECT * FROM Opportunity WHERE OpportunityPercent = 100 ORDER BY OpportunityOrderDate DESC"
    rows = crm.get("/Queries", params={"script": q, "Size": 1000}).json()
    assert rows and all(r["OpportunityPercent"] == 100 for r in rows)
    dates = [r["OpportunityOrderDate"] for r in rows]
    assert dates == sorted(dates, reverse=True)
    page2 = crm.get("/Queries", params={"script": q, "Page": 2, "Size": 2}).json()
    assert page2 == rows[2:4]

    stamps = sorted(
        o["OrganisationUpdatedAt"] for o in crm.get("/Organisations", params={"Size": 1000}).json()
    )
    cut = stamps[20]
    for literal in (cut, cut.replace("Z", "+00:00"), cut[:-1]):
        q = f"SELECT * FROM organisation WHERE OrganisationUpdatedAt >= '{literal}'"
        got = crm.get("/Queries", params={"script": q, "Size": 1000}).json()
        assert sorted(o["OrganisationUpdatedAt"] for o in got) == stamps[20:]

    r = crm.get("/Queries", params={"script": "SELECT Name FROM Organisation"})
    assert r.status_code == 400 and r.json()["Message"] == "script: only SELECT * is supported"
    assert crm.get("/Queries").status_code == 400
