from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from index.dates import epoch_seconds, normalize_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-09-01", "2015-09-01"),
        ("20240302", "2024-03-02"),
        ("2015-09-01T10:00:00Z", "2015-09-01T10:00:00+00:00"),
        ("2024-03-02T10:00:00.250+05:30", "2024-03-02T10:00:00.250000+05:30"),
        ("2024-03-02 10:00", "2024-03-02T10:00:00"),
        ("Tuesday, September 1, 2015", "2015-09-01"),
        ("2 March 2024", "2024-03-02"),
        ("  2 March 2024  ", "2024-03-02"),
        ("Sat, 02 Mar 2024 10:00:00 +0000", "2024-03-02T10:00:00+00:00"),
        ("Sat, 02 Mar 2024 10:00:00 EST", "2024-03-02T10:00:00-05:00"),
        ("Sat, 02 Mar 2024 10:00:00 -0000", "2024-03-02T10:00:00"),  # RFC: zone unknown
        ("4 March 2024 15:00 +0200", "2024-03-04T15:00:00+02:00"),
        ("2 March 2024 10:00 UTC", "2024-03-02T10:00:00+00:00"),
        ("March 4, 2024 3pm", "2024-03-04T15:00:00"),
        ("March 4, 2024 00:00", "2024-03-04T00:00:00"),  # an explicit midnight is a time
        ("13/04/2024", "2024-04-13"),  # only one reading is a valid date
        ("2024/03/04", "2024-03-04"),  # a leading four-digit year is always Y-M-D
        ("Feb 29 2024", "2024-02-29"),
    ],
)
def test_strings(value: str, expected: str) -> None:
    assert normalize_date(value) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty_is_none(value: object) -> None:
    assert normalize_date(value) is None


def test_epoch_numbers_are_utc() -> None:
    assert normalize_date(1709373600) == "2024-03-02T10:00:00+00:00"
    assert normalize_date(1709373600.5) == "2024-03-02T10:00:00.500000+00:00"
    assert normalize_date("1709373600") == "2024-03-02T10:00:00+00:00"  # CSV cell


def test_large_epoch_is_milliseconds() -> None:
    assert normalize_date(1709373600000) == "2024-03-02T10:00:00+00:00"


def test_date_objects() -> None:
    assert normalize_date(date(2024, 3, 2)) == "2024-03-02"
    assert normalize_date(datetime(2024, 3, 2, 1, 2, 3)) == "2024-03-02T01:02:03"
    aware = datetime(2024, 3, 2, 1, 2, 3, tzinfo=timezone(timedelta(hours=-4)))
    assert normalize_date(aware) == "2024-03-02T01:02:03-04:00"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024", "incomplete"),
        ("March 2024", "incomplete"),
        ("10:30", "incomplete"),
        ("03/04/2024", "ambiguous"),
        ("1 2 3", "ambiguous"),
        ("2 March 24", "ambiguous"),
        ("hello", "unrecognised"),
        ("Posted on 2 March 2024", "unrecognised"),
        ("2 March 2024 10:00 EST", "unknown time zone"),
        ("2024-02-30", "unrecognised"),
    ],
)
def test_refusals_quote_the_value(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        normalize_date(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [True, [2024, 3, 2], float("nan"), 10**20])
def test_non_dates_raise(value: object) -> None:
    with pytest.raises(ValueError):
        normalize_date(value)


def test_epoch_seconds() -> None:
    assert epoch_seconds("2024-03-02T10:00:00+00:00") == 1709373600
    assert epoch_seconds("2024-03-02T12:00:00+02:00") == 1709373600
    assert epoch_seconds("2024-03-02T10:00:00") == 1709373600  # naive is UTC
    assert epoch_seconds("2024-03-02") == 1709337600  # a date is its midnight
    assert epoch_seconds("1969-12-31T23:59:59.5") == -1  # floored, not truncated


def test_epoch_seconds_round_trips_normalize() -> None:
    moment = datetime(2021, 6, 1, 8, 30, tzinfo=UTC)
    iso = normalize_date(int(moment.timestamp()))
    assert iso is not None
    assert epoch_seconds(iso) == int(moment.timestamp())


def test_epoch_seconds_rejects_non_iso() -> None:
    with pytest.raises(ValueError, match="'2 March 2024'"):
        epoch_seconds("2 March 2024")
