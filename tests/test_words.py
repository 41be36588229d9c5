"""The one vocabulary for lever values, counts and event times (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from warroom.controls.model import ControlKind, ControlSpec, format_value
from warroom.controls.words import NO_LIMIT, value_words
from warroom.timefmt import clock, clock_for, local_day
from warroom.words import plural


@pytest.mark.parametrize(
    ("value", "unit", "words"),
    [
        (True, "", "on"),
        (False, "", "off"),
        (40, "%", "40 %"),
        (40.0, "%", "40 %"),
        (12.5, "%", "12.5 %"),
        (250, "req/s", "250 req/s"),
        (NO_LIMIT, "req/s", "no limit"),
        ("none", "", "none"),  # a choice named none keeps its name
        ("replica", "", "replica"),
        (None, "req/s", "?"),
        (0, "", "0"),
    ],
)
def test_value_words(value: bool | int | float | str | None, unit: str, words: str) -> None:
    assert value_words(value, unit) == words


def test_the_panel_formatter_is_the_same_words() -> None:
    rate = ControlSpec(service="db", control="rate_limit", kind=ControlKind.RATE)
    toggle = ControlSpec(service="db", control="automation", kind=ControlKind.TOGGLE)
    level = ControlSpec(service="web", control="shed", kind=ControlKind.LEVEL)
    choice = ControlSpec(
        service="db", control="mode", kind=ControlKind.CHOICE, choices=["none", "x"]
    )
    assert format_value(rate, 250) == value_words(250, "req/s") == "250 req/s"
    assert format_value(rate, NO_LIMIT) == "no limit"
    assert format_value(toggle, False) == "off"
    assert format_value(level, 40) == "40 %"
    assert format_value(choice, "none") == "none"


def test_plural() -> None:
    assert [plural(n, "target") for n in (0, 1, 2)] == ["0 targets", "1 target", "2 targets"]
    assert plural(2, "entry", "entries") == "2 entries"


TZ = timezone(timedelta(hours=-4))  # US East in October, fixed for the test


def test_clock_is_local_time_with_the_date_only_on_another_day() -> None:
    ts = "2025-10-20T11:52:14.123456Z"
    assert clock(ts, date(2025, 10, 20), TZ) == "07:52:14"
    assert clock(ts, date(2025, 10, 19), TZ) == "Oct 20 07:52:14"
    assert clock("2025-10-05T11:52:14Z", date(2025, 10, 20), TZ) == "Oct  5 07:52:14"
    assert clock(ts, date(2026, 10, 20), TZ) == "Oct 20 2025 07:52:14"
    # Just after midnight UTC is still the evening before in New York.
    assert local_day("2025-10-21T02:00:00Z", TZ) == date(2025, 10, 20)
    assert clock(datetime(2025, 10, 20, 11, 52, 14, tzinfo=UTC), date(2025, 10, 20), TZ) == (
        "07:52:14"
    )


def test_a_bad_stamp_is_shown_not_hidden() -> None:
    assert clock("yesterday", date(2025, 10, 20), TZ) == "yesterday"
    assert clock("", date(2025, 10, 20), TZ) == "-"


def test_clock_for_gives_the_same_text_as_clock() -> None:
    day = date(2025, 10, 20)
    fmt = clock_for(day, TZ)
    stamps = ["2025-10-20T11:52:14.000001Z", "2025-10-20T11:52:14.999999Z", "2025-10-21T04:00:00Z"]
    stamps.append("2025-10-20T13:52:14+02:00")
    assert [fmt(ts) for ts in stamps] == [clock(ts, day, TZ) for ts in stamps]
    assert [fmt(ts) for ts in stamps] == ["07:52:14", "07:52:14", "Oct 21 00:00:00", "07:52:14"]
