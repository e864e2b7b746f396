"""The store keeps each row twice (columns for queries, JSON text for answers); the two
must never disagree, whatever sequence of writes happens."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopsync.emulators.webcrm.store import NotFound, Store

ORG_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "OrganisationName": st.none() | st.text(max_size=200),
        "OrganisationCity": st.none() | st.text(max_size=50),
        "OrganisationNoAds": st.none() | st.booleans(),
        "OrganisationXInt1": st.none() | st.integers(-(2**31), 2**31 - 1),
        "OrganisationXDate1": st.none()
        | st.datetimes(min_value=datetime(1900, 1, 1)).map(lambda d: d.isoformat()),
        "OrganisationId": st.integers(0, 8),
    },
)
OPP_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "OpportunityDiscount": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "OpportunityWinYesNo": st.none() | st.booleans(),
        "OpportunityErpStatus": st.none()
        | st.sampled_from(["NotReadyForSynchronization", "Synchronized"]),
        "OpportunityId": st.integers(0, 8),
    },
)
OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "replace", "patch"]),
        st.sampled_from(["Organisation", "Opportunity"]),
        st.integers(1, 8),
        st.lists(st.one_of(ORG_VALUES, OPP_VALUES), min_size=1, max_size=4),
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("store") / "s.sqlite")


def _same(store: Store, entity: str) -> None:
    import json

    assert json.loads(store.page_json(entity, 1, 1000)) == store.page(entity, 1, 1000)


@given(OPS)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_columns_and_json_agree_after_any_writes(
    store: Store, ops: list[tuple[str, str, int, list[dict[str, Any]]]]
) -> None:
    store.reset()
    for op, entity, rid, records in ops:
        first = records[0]
        try:
            if op == "create":
                store.create(entity, first)
            elif op == "replace":
                store.replace(entity, rid, first)
            else:
                store.patch(entity, records)
        except NotFound:
            pass
        _same(store, entity)
        got = store.get(entity, rid)
        text = store.get_json(entity, rid)
        assert (got is None) == (text is None)


def test_ids_are_not_reused_after_delete(tmp_path: Path) -> None:
    store = Store(tmp_path / "ids.sqlite")
    a, _ = store.create("Product", {"ProductCustom1": "a"})
    b, _ = store.create("Product", {"ProductCustom1": "b"})
    store.delete("Product", b)
    c, _ = store.create("Product", {"ProductCustom1": "c"})
    assert (a, b, c) == (1, 2, 3)
    store.close()
    reopened = Store(tmp_path / "ids.sqlite")  # state and the clock survive a restart
    d, _ = reopened.create("Product", {"ProductCustom1": "d"})
    assert d == 4
    rows = reopened.page("Product", 1, 10)
    assert rows[-1]["ProductUpdatedAt"] > rows[-2]["ProductUpdatedAt"]
