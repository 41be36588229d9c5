"""Snapshots of each console screen at 140x42 on the fixture incident with a frozen clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input
from tui_harness import SIZE, make_app, open_runbook_then, paste, write_log

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


def _still_cursor(pilot: Any) -> None:
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False


def test_main_screen_mid_incident(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    assert snap_compare(app, terminal_size=SIZE)


def test_runbook_in_progress(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    assert snap_compare(app, run_before=open_runbook_then("down", "down"), terminal_size=SIZE)


def test_help_screen(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    assert snap_compare(app, press=["question_mark"], terminal_size=SIZE)


def test_status_update_dialog(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))

    async def fill(pilot: Any) -> None:
        await pilot.press("c")
        await paste(pilot, "DNS record restored; EC2 launches throttled")
        await pilot.press("enter")
        _still_cursor(pilot)
        await pilot.pause()

    assert snap_compare(app, run_before=fill, terminal_size=SIZE)


def test_filtered_probe_table(snap_compare: Any, tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))

    async def filter_down(pilot: Any) -> None:
        await pilot.press("slash")
        await paste(pilot, "dynamo")
        await pilot.press("enter", "s")
        await pilot.pause()

    assert snap_compare(app, run_before=filter_down, terminal_size=SIZE)
