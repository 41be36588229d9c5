"""Pilot tests of the probe detail (Enter on a row) and the command-output view."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_harness import SIZE, make_app, runbook, screen_text, settle, write_log

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.tui.screens.probe_detail import CommandOutputScreen, ProbeDetailScreen

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


async def test_enter_on_a_probe_row_shows_its_detail(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.main_screen.view.probe_table
        await settle(pilot)
        table.move_cursor(row=table.get_row_index("dynamodb-dns"))
        table.focus()
        await pilot.press("enter")
        await settle(pilot, until=lambda: isinstance(app.screen, ProbeDetailScreen))
        text = screen_text(app)
        assert "Probe dynamodb-dns" in text and "DOWN" in text
        assert "last reason:" in text and "latency:" in text
        # The fixture log's own state changes for this target, read from the file.
        assert "up → down" in text
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.main_screen


async def test_command_output_shows_every_run_in_full(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    step = runbook().steps[0].id
    long_output = "\n".join(f"line {n}" for n in range(200)) + "\n[red]not markup[/red]"
    # Another writer (a second console) ran the step twice; the first run's output is long.
    other = IncidentLog.open(path)
    for output in (long_output, "second run"):
        other.append(
            ev.CommandRun(
                runbook="dynamodb-dns",
                step=step,
                command="echo hi",
                exit_code=0,
                output=output,
                actor="bob@warroom",
            )
        )
    other.close()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # The log pane names the step of each run, not just the block's first line.
        await settle(pilot, until=lambda: f"step {step} of dynamodb-dns: ran" in screen_text(app))
        await pilot.press("L")
        await settle(pilot, until=lambda: isinstance(app.screen, CommandOutputScreen))
        text = screen_text(app)
        assert "line 0" in text and f"step {step}" in text
        await pilot.press("end")
        await settle(pilot)
        text = screen_text(app)
        assert "line 199" in text and "[red]not markup[/red]" in text and "second run" in text
