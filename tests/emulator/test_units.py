"""Unit and property tests of the emulator's small parts: timestamps and field checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopsync.connectors.webcrm.schema import OPPORTUNITY, ORGANISATION
from shopsync.emulators.webcrm.timeutil import MonotonicClock, format_ts, normalize_ts, parse_ts
from shopsync.emulators.webcrm.validation import FieldError, check_value, clean_record

naive = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))


@given(naive, naive)
def test_stored_text_orders_like_time(a: datetime, b: datetime) -> None:
    ta, tb = format_ts(a), format_ts(b)
    assert len(ta) == len(tb) == 27
    assert (ta < tb) == (a < b) and (ta == tb) == (a == b)
    assert parse_ts(ta) == a


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01T10:00:00Z",
        "2026-05-01T10:00:00",
        "2026-05-01T10:00:00.000Z",
        "2026-05-01T10:00:00.0000000",
        "2026-05-01T12:00:00+02:00",
        "2026-05-01T10:00",
    ],
)
def test_accepted_datetime_forms_normalise_to_one_value(text: str) -> None:
    assert normalize_ts(text) == "2026-05-01T10:00:00.000000Z"


def test_dotnet_seven_digit_fractions_and_rejects() -> None:
    assert normalize_ts("2026-05-01T10:00:00.1234567Z") == "2026-05-01T10:00:00.123456Z"
    assert normalize_ts("2026-05-01") == "2026-05-01T00:00:00.000000Z"
    for bad in ("", "yesterday", "2026-13-01", "2026-05-01T10:00:00.Z"):
        with pytest.raises(ValueError):
            parse_ts(bad)


def test_clock_never_repeats_or_goes_back() -> None:
    clock = MonotonicClock()
    future = format_ts(datetime.now(UTC) + timedelta(hours=1))
    clock.advance_to(future)  # e.g. a stored value from a clock that was ahead
    stamps = [clock.now() for _ in range(2000)]
    assert stamps == sorted(set(stamps)) and stamps[0] > future


def test_field_checks() -> None:
    name = ORGANISATION.by_name["OrganisationName"]
    assert check_value(name, "ø" * 200) == "ø" * 200
    with pytest.raises(FieldError, match="longer than 200"):
        check_value(name, "ø" * 201)
    owner = ORGANISATION.by_name["OrganisationOwner"]
    assert check_value(owner, 5.0) == 5 and check_value(owner, None) is None
    for bad in (True, "5", 5.5, 2**31):
        with pytest.raises(FieldError):
            check_value(owner, bad)
    discount = OPPORTUNITY.by_name["OpportunityDiscount"]
    assert check_value(discount, 5) == 5.0
    with pytest.raises(FieldError):
        check_value(discount, float("inf"))
    order_date = OPPORTUNITY.by_name["OpportunityOrderDate"]
    tz = timezone(timedelta(hours=1))
    assert check_value(order_date, datetime(2026, 1, 1, 1, tzinfo=tz).isoformat()) == (
        "2026-01-01T00:00:00.000000Z"
    )


def test_clean_record_ignores_unknown_and_server_fields() -> None:
    out = clean_record(
        ORGANISATION,
        {"OrganisationId": 5, "OrganisationUpdatedAt": "x", "Whatever": 1, "OrganisationCity": "Å"},
    )
    assert out == {"OrganisationCity": "Å"}
    with pytest.raises(FieldError, match="JSON object"):
        clean_record(ORGANISATION, [1])
