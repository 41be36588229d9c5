"""The probe list's order, filter, columns and words, without a terminal."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from warroom.state import ProbeView
from warroom.tui import probe_list as pl

NOW = datetime(2025, 10, 20, 7, 0, tzinfo=UTC)


def view(target: str, state: str = "up", service: str = "", **fields: object) -> ProbeView:
    return ProbeView(target=target, state=state, service=service or target, **fields)  # type: ignore[arg-type]


VIEWS = [
    view(
        "web",
        "up",
        "frontend",
        latency_ms=40.0,
        since="2025-10-20T06:00:00Z",
        last_result_at="2025-10-20T06:59:58Z",
    ),
    view(
        "db-primary",
        "down",
        "db",
        latency_ms=None,
        since="2025-10-20T06:50:00Z",
        last_result_at="2025-10-20T06:59:59Z",
    ),
    view(
        "db-replica",
        "degraded",
        "db",
        latency_ms=900.0,
        since="2025-10-20T06:55:00Z",
        last_result_at="2025-10-20T06:59:00Z",
    ),
    view("cache", "unknown", "cache", latency_ms=5.0),
    view(
        "api",
        "up",
        "frontend",
        latency_ms=120.0,
        since="2025-10-20T06:58:00Z",
        last_result_at="2025-10-20T06:40:00Z",
    ),
]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # Worst first, then service, then name.
        ("state", ["db-primary", "db-replica", "cache", "api", "web"]),
        ("name", ["api", "cache", "db-primary", "db-replica", "web"]),
        ("service", ["cache", "db-primary", "db-replica", "api", "web"]),
        # Slowest first; no latency last.
        ("latency", ["db-replica", "api", "web", "cache", "db-primary"]),
        # The most recent change first; never changed last.
        ("in-state", ["api", "db-replica", "db-primary", "web", "cache"]),
        # The oldest data first; never heard from before all.
        ("age", ["cache", "api", "db-replica", "web", "db-primary"]),
    ],
)
def test_each_sort_mode_and_its_reverse(mode: str, expected: list[str]) -> None:
    assert pl.order(VIEWS, mode) == expected
    assert pl.order(VIEWS, mode, reverse=True) == expected[::-1]


def test_every_sort_mode_is_tested_and_clickable() -> None:
    assert set(pl.SORT_MODES) == set(pl.SORT_KEYS) == set(pl.SORT_FIELDS)
    assert {c.sort for c in pl.COLUMNS if c.sort} == set(pl.SORT_MODES)


def test_a_stale_target_sorts_as_stale_not_as_its_last_state() -> None:
    stale = {"web", "db-primary"}
    # stale ranks after degraded and before unknown, whatever the target last reported.
    assert pl.order(VIEWS, "state", stale=stale) == [
        "db-replica",
        "db-primary",
        "web",
        "cache",
        "api",
    ]
    assert pl.shown_state(VIEWS[0], stale=True) == "stale"
    assert pl.cell_text("state", VIEWS[0], NOW, stale=True) == "◌ stale"
    assert pl.cell_text("state", VIEWS[0], NOW, stale=False) == "● up"
    assert pl.cell_text("reason", view("x", "up", reason="ok"), NOW, stale=True) == "last up: ok"
    assert {mode for mode in pl.SORT_MODES if "state" in pl.SORT_FIELDS[mode]} == pl.STALE_SORTS


def test_filter_by_substring_of_target_service_or_state_and_fuzzy_spelling() -> None:
    def shown(needle: str, stale: frozenset[str] = frozenset()) -> list[str]:
        return pl.order(VIEWS, "name", needle=pl.normalise_filter(needle), stale=stale)

    assert shown("") == pl.order(VIEWS, "name")
    assert shown("DB") == ["db-primary", "db-replica"]
    assert shown("frontend") == ["api", "web"]
    assert shown("down") == ["db-primary"]
    assert shown("dbrep") == ["db-replica"]  # letters in order
    assert shown("frnt") == ["api", "web"]  # fuzzy on the service
    assert shown("db up") == []  # every word must match
    assert shown("db  degraded ") == ["db-replica"]
    assert shown("zz") == [] and shown("pw") == []  # two letters: substring only
    assert shown("stale", frozenset({"web"})) == ["web"]


def test_which_rows_can_move_when_a_field_changes() -> None:
    old = VIEWS[0]
    faster = ProbeView(**{**old.__dict__, "latency_ms": 1.0})
    assert pl.moves("latency", old, faster) and not pl.moves("state", old, faster)
    assert not pl.moves("name", old, faster)
    down = ProbeView(**{**old.__dict__, "state": "down"})
    assert pl.moves("state", old, down) and pl.moves("service", old, down)
    assert not pl.moves("age", old, down)


def keys(width: int) -> list[str]:
    return [placed.column.key for placed in pl.layout(width)]


def test_narrow_lists_keep_state_target_latency_and_age() -> None:
    for width in (40, 60, 80):
        assert {"state", "target", "latency", "age"} <= set(keys(width)), width
    assert keys(40) == ["state", "target", "latency", "age"]
    # Narrower, the state keeps its symbol (and colour) and the target its room.
    for width in (20, 30, 39):
        assert keys(width) == ["symbol", "target", "latency", "age"], width
    assert [p.width for p in pl.layout(30) if p.column.key == "target"] == [11]
    assert pl.cell_text("symbol", VIEWS[1], NOW, stale=False) == "✖"
    assert pl.cell_text("symbol", VIEWS[1], NOW, stale=True) == "◌"


def test_wide_lists_add_service_in_state_trend_and_reason() -> None:
    assert "service" in keys(60)
    assert {"service", "in-state"} <= set(keys(80))
    assert keys(200) == [
        "state",
        "target",
        "service",
        "latency",
        "trend",
        "in-state",
        "age",
        "reason",
    ]


def test_columns_fill_the_width_without_overlapping() -> None:
    for width in (40, 57, 80, 101, 200):
        placed = pl.layout(width)
        ends = [p.x + p.width for p in placed]
        assert all(a.x + a.width < b.x for a, b in itertools.pairwise(placed))
        assert ends[-1] <= width, width
        if width >= 101:
            assert ends[-1] == width  # the reason column takes what is left
    tiny = pl.layout(12)
    assert [p.width for p in tiny if p.column.key == "target"] == [4]


def test_column_at_maps_header_clicks_to_columns() -> None:
    placed = pl.layout(80)
    for p in placed:
        assert pl.column_at(placed, p.x) is p.column
        assert pl.column_at(placed, p.x + p.width - 1) is p.column
    assert pl.column_at(placed, 79 + 1000) is None


def test_words_in_cells() -> None:
    web = VIEWS[0]
    assert pl.cell_text("age", web, NOW, False) == "2s"
    assert pl.cell_text("in-state", web, NOW, False) == "1h00m"
    assert pl.cell_text("age", VIEWS[3], NOW, False) == "-"
    assert pl.cell_text("latency", web, NOW, False) == "40 ms"
    assert pl.cell_text("latency", VIEWS[1], NOW, False) == "-"
    assert pl.cell_text("trend", view("x", history=(1.0, None, 4.0)), NOW, False) == "▃·█"
    assert pl.header_text(pl.LATENCY, "latency", False) == "Latency ↓"
    assert pl.header_text(pl.LATENCY, "latency", True) == "Latency ↑"
    assert pl.header_text(pl.LATENCY, "name", True) == "Latency"


def test_hostile_text_cannot_reach_the_terminal() -> None:
    evil = view("t\x1b[2Jx", reason="boom\x1b]0;owned\x07\nnext\u202eevil")
    # Shown the way the one sanitiser shows them: the responder sees that something tried.
    assert pl.cell_text("target", evil, NOW, False) == "t␛[2Jx"
    reason = pl.cell_text("reason", evil, NOW, False)
    assert reason == "boom␛]0;owned␇ ⏎ next\\u202eevil"
    assert all(char.isprintable() for char in reason)
