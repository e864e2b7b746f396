"""Unit tests of :mod:`shopsync.engine.hygiene`: what makes a record unreadable as read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shopsync.config.model import Datatype
from shopsync.engine import hygiene
from shopsync.engine.streams import STREAMS

ORG = STREAMS[Datatype.customers]


def test_a_lone_surrogate_is_named_with_its_field_and_position() -> None:
    why = hygiene.problem(ORG, "webcrm", {"OrganisationName": "Caf\ud83d"})
    assert why is not None
    assert why.startswith("OrganisationName:") and "U+D83D" in why and "position 3" in why


def test_a_nested_webshop_value_is_named_by_its_path() -> None:
    record = {"id": "ord_1", "lines": [{"description": "ok"}, {"description": "\udc00x"}]}
    why = hygiene.problem(ORG, "webshop", record)
    assert why is not None and why.startswith("lines[1].description:")


def test_dates_that_are_no_dates_or_out_of_range() -> None:
    for value in ("yesterday", "9999-12-31T23:59:59-05:00", "2026-13-01T00:00:00Z", 12):
        why = hygiene.problem(ORG, "webcrm", {"OrganisationUpdatedAt": value})
        assert why is not None and why.startswith("OrganisationUpdatedAt:"), value
    assert hygiene.problem(ORG, "webshop", {"created_at": "soon"}) is not None


def test_ordinary_records_are_readable() -> None:
    record = {
        "OrganisationName": "Nørre Æble ApS 🍎 שלום e\u0301",
        "OrganisationUpdatedAt": "2026-11-30T04:00:00Z",
        "OrganisationCreatedAt": None,
        "OrganisationMemo": "a\x00b",
    }
    assert hygiene.problem(ORG, "webcrm", record) is None


@given(st.text())
def test_any_valid_text_is_readable_and_cleaning_changes_only_surrogates(text: str) -> None:
    broken = any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)
    assert (hygiene.problem(ORG, "webcrm", {"OrganisationName": text}) is not None) == broken
    cleaned = hygiene.cleaned({"a": [text]})["a"][0]
    cleaned.encode("utf-8")  # always encodable
    assert len(cleaned) == len(text)
    if not broken:
        assert cleaned == text


def test_a_number_that_is_nan_or_infinity_is_named_by_its_path() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        record = {"id": "ord_1", "lines": [{"unit_price": 1.5}, {"unit_price": value}]}
        why = hygiene.not_finite(record)
        assert why is not None and why.startswith("lines[1].unit_price:"), why
        assert "not a number" in why
    assert hygiene.not_finite({"ProductPrice": 1e308, "X": [0.0, -2.5], "Y": {"z": 1}}) is None


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
))  # fmt: skip
def test_the_fast_finiteness_walk_agrees_with_the_path_finding_one(value: object) -> None:
    record = {"v": value}
    assert hygiene._finite(record) == (next(hygiene._non_finite(record), None) is None)
