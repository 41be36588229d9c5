"""Snapshots of the mitigation panel and the dangerous-change dialog (frozen clock, no I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from controls_harness import show_checkout_levers
from textual.widgets import Input
from tui_harness import SIZE, make_app, write_log

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


def test_mitigation_panel_with_levers(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    assert snap_compare(app, run_before=show_checkout_levers, terminal_size=SIZE)


def test_dangerous_change_dialog(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))

    async def open_dialog(pilot: Any) -> None:
        await show_checkout_levers(pilot, "failover")
        await pilot.press("enter")
        await pilot.pause()
        for box in pilot.app.screen.query(Input):
            box.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, run_before=open_dialog, terminal_size=SIZE)
