from __future__ import annotations

import pytest

from warroom.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("2s", 2.0), ("1m30s", 90.0), ("1h", 3600.0), ("1.5", 1.5), (3, 3.0)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2x", "s", "-1", "1s2", True])
def test_parse_duration_rejects_nonsense(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (2.5, "2.5s"), (42, "42s"), (95, "1m35s"), (7260, "2h01m"), (90000, "1d01h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
