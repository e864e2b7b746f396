"""Reading change times (:func:`shopsync.engine.streams.parse_time`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shopsync.engine.streams import format_time, parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T12:00:00Z", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        ("2026-11-30T12:00:00z", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        (" 2026-11-30T13:00:00+01:00 ", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        ("2026-11-30T12:00:00.123456", datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_a_change_time_is_read_as_utc(text: str, expected: datetime) -> None:
    got = parse_time(text)
    assert got == expected and got is not None and got.utcoffset() == timedelta(0)
    assert parse_time(text) == got  # read again (from the cache): the same moment


def test_datetimes_empty_values_and_errors() -> None:
    plus_two = datetime(2026, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time(plus_two) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_time(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("") is None
    for _ in range(2):  # an error is not remembered as an answer
        with pytest.raises(ValueError):
            parse_time("yesterday")
    assert parse_time(format_time(plus_two)) == plus_two
