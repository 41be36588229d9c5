"""Pilot tests of the report's pieces in the console: the handoff brief from the live log,
and a flapping target collapsed to one line in the log pane."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_harness import SIZE, make_app, paste, screen_text, settle, ts, write_log

from warroom import events as ev
from warroom.tui.screens.brief import BriefScreen

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


async def test_the_handoff_brief_shows_the_live_incident(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await paste(pilot, "[bold]suspect the DNS automation")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("H")
        await settle(pilot, until=lambda: isinstance(app.screen, BriefScreen))
        text = screen_text(app)
        assert "HANDOFF" in text and "us-east-1: DynamoDB endpoint unreachable" in text
        assert "alice: [bold]suspect the DNS automation" in text  # just recorded, as data
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, BriefScreen)


def flap(target: str, minute: float, seq_state: str, before: str) -> ev.BaseEvent:
    return ev.ProbeStateChanged(
        target=target, service=target, from_state=before, to_state=seq_state, reason="x"
    ).model_copy(update={"ts": ts(minute), "actor": "warroom-probe"})


async def test_a_flapping_target_is_one_line_in_the_log_pane(tmp_path: Path) -> None:
    log = write_log(tmp_path / "i.jsonl")
    app = make_app(log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        states = ["down", "up", "down", "up", "down", "up"]
        changes = [
            flap("nlb", 86 + i * 0.1, to, states[i - 1] if i else "up")
            for i, to in enumerate(states)
        ]
        app.ingest(log.append_many(changes[:3]))
        app.render_state()
        await settle(pilot)
        assert (
            screen_text(app).count("nlb up -> down") + screen_text(app).count("nlb down -> up") == 3
        )  # three changes: not yet flapping
        app.ingest(log.append_many(changes[3:]))
        app.render_state()
        await settle(pilot)
        text = screen_text(app)
        assert "nlb flapping up/down: 6 changes over 30s, ended up" in text
        assert "nlb up -> down" not in text  # each change is in the one line
