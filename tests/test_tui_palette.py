"""Pilot tests of going anywhere from the command palette: runbooks, targets, levers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tui_harness import SIZE, logged, make_app, paste, runbooks, screen_text, settle, write_log

from warroom import events as ev
from warroom.runbooks.parser import parse_runbook

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

BAD_DEPLOY = """\
---
title: Roll back a bad deploy
services: [sts]
states: [down]
---
# Roll back a bad deploy

- [ ] Find the last deploy
"""


def with_bad_deploy() -> dict[str, Any]:
    parsed, problems = parse_runbook(BAD_DEPLOY, Path("runbooks/bad-deploy.md"))
    assert parsed is not None and not problems
    return {**runbooks(), parsed.id: parsed}


async def palette(pilot: Any, query: str, shown: str) -> None:
    """Open the palette, type `query`, wait for `shown` among the hits, and pick the first."""
    await pilot.press("colon")
    await settle(pilot)
    await paste(pilot, query)
    await settle(pilot, until=lambda: shown in screen_text(pilot.app))
    await pilot.press("enter")
    await settle(pilot)


async def test_palette_opens_a_runbook_that_is_not_suggested(tmp_path: Path) -> None:
    from warroom.tui.screens.runbook import RunbookScreen

    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path), runbooks=with_bad_deploy())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "Roll back a bad deploy" not in screen_text(app)  # sts is up: not suggested
        await palette(pilot, "bad deploy", "Open runbook: Roll back a bad deploy")
        await settle(pilot, until=lambda: isinstance(app.screen, RunbookScreen))
        opened = [e.runbook for e in logged(path) if isinstance(e, ev.RunbookOpened)]
        assert opened[-1] == "bad-deploy"
        assert "Find the last deploy" in screen_text(app)


async def test_palette_finds_a_runbook_by_service(tmp_path: Path) -> None:
    from warroom.tui.screens.runbook import RunbookScreen

    app = make_app(write_log(tmp_path / "i.jsonl"), runbooks=with_bad_deploy())
    async with app.run_test(size=SIZE) as pilot:
        await palette(pilot, "runbook sts", "Roll back a bad deploy")
        await settle(pilot, until=lambda: isinstance(app.screen, RunbookScreen))
        assert getattr(app.screen, "runbook_id", None) == "bad-deploy"


async def test_palette_jumps_to_a_target_and_to_a_service(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.main_screen.view.probe_table
        await settle(pilot)
        assert table.selected_target != "network-manager"
        await palette(pilot, "target network-manager", "Go to target: network-manager")
        assert table.selected_target == "network-manager" and table.has_focus
        await palette(pilot, "service dynamodb", "Go to service: dynamodb")
        assert app.state.probes[table.selected_target or ""].service == "dynamodb"


async def test_palette_jump_clears_a_filter_hiding_the_target(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.main_screen.view.probe_table
        await pilot.press("slash")
        await paste(pilot, "dynamodb")
        await pilot.press("enter")
        await settle(pilot)
        assert "sts" not in table.ordered_targets
        await palette(pilot, "target sts", "Go to target: sts")
        assert table.selected_target == "sts" and not table.filter_text


@pytest.mark.slow
async def test_palette_pulls_any_lever(tmp_path: Path) -> None:
    from controls_servers import flag_server
    from test_controls_tui import TOKEN, console, level

    from warroom.tui.screens.control_dialog import ControlDialog

    async with flag_server(TOKEN, load_shed=0) as server:
        app = console(tmp_path, [level(server)])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, until=lambda: app.session.controls is not None)
            await palette(pilot, "lever shed", "Pull lever: checkout · Load shed")
            await settle(pilot, until=lambda: isinstance(app.screen, ControlDialog))
            assert "Change checkout · Load shed" in screen_text(app)
