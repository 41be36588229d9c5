"""The tutorial's console half: history narration labelled as the real outage's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tui_harness import NOW, SIZE, incident_events, make_app, screen_text, settle, write_log

from warroom import events as ev
from warroom.sim.feed import parse_feed


def test_history_feed_lines_are_labelled_as_the_real_outage() -> None:
    items = [
        {"seq": 1, "sim_time": 30, "service": "db", "title": "db slows down"},
        {
            "seq": 2,
            "sim_time": 60,
            "service": "db",
            "title": "history: the team paged the DB owner",
            "history": True,
            "label": "what happened in the real outage",
        },
    ]
    fault, history = parse_feed(items, "tutorial", 0)
    assert fault.summary() == "[sim t=30s] db slows down"
    assert history.summary() == (
        "[sim t=60s] what happened in the real outage: the team paged the DB owner"
    )


@pytest.mark.slow
async def test_the_log_pane_shows_the_history_label(tmp_path: Path) -> None:
    item = {"seq": 1, "sim_time": 60, "title": "history: the team paged", "history": True}
    (narration,) = parse_feed([item], "tutorial", 0)  # no label given: the default one
    app = make_app(write_log(tmp_path / "i.jsonl", [*incident_events(), narration]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "what happened in the real outage: the team paged" in screen_text(app)


@pytest.mark.slow
async def test_demo_header_shows_the_speed_and_a_hint_until_the_first_action(
    tmp_path: Path,
) -> None:
    from tui_harness import paste

    from warroom.tui.cli import DEMO_HINT

    opened = ev.IncidentOpened(
        incident_id="demo", title="tutorial", severity=ev.Severity.SEV2, ts=ev.format_ts(NOW)
    )
    app = make_app(write_log(tmp_path / "i.jsonl", [opened]))
    app.sim_speed, app.start_hint = 125.0, DEMO_HINT
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "sim ×125" in text and "start here: o opens the suggested runbook" in text
        await pilot.press("question_mark", "escape")  # looking around is not an action
        await settle(pilot)
        assert "start here" in screen_text(app)
        await pilot.press("n")
        await paste(pilot, "first")
        await pilot.press("enter")
        await settle(pilot, until=lambda: "start here" not in screen_text(app))
        assert "sim ×125" in screen_text(app)


@pytest.mark.slow
async def test_the_fleet_says_its_speed(tmp_path: Path) -> None:
    from warroom.sim.feed import sim_speed
    from warroom.sim.server import running_fleet

    async with running_fleet("tutorial", speed=125.0, seed=1) as fleet:
        assert await asyncio.to_thread(sim_speed, fleet.admin_url) == 125.0
    assert sim_speed("http://127.0.0.1:9") is None  # nothing there: no speed, no error


@pytest.mark.slow
async def test_the_speed_survives_a_long_title_at_80_columns(tmp_path: Path) -> None:
    opened = ev.IncidentOpened(
        incident_id="demo",
        title="AWS us-east-1, 20 Oct 2025: DynamoDB DNS record emptied",
        severity=ev.Severity.SEV2,
        ts=ev.format_ts(NOW),
    )
    app = make_app(write_log(tmp_path / "i.jsonl", [opened]))
    app.sim_speed = 120.0
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "sim ×120" in screen_text(app).splitlines()[0]
