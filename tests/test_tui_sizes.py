"""The main screen, the runbook screen and the dangerous-lever dialog at 80x24, 120x36 and
200x60 (snapshots), and what a responder must see at the smallest size (pilot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from controls_harness import show_checkout_levers
from textual.widgets import Button, Input
from tui_harness import make_app, open_runbook_then, screen_text, settle, write_log

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

#: 80x24 stays in the quick loop (`-m "not slow"`); the larger sizes run in the full suite.
SIZES = [
    pytest.param((80, 24), id="80x24"),
    pytest.param((120, 36), id="120x36", marks=pytest.mark.slow),
    pytest.param((200, 60), id="200x60", marks=pytest.mark.slow),
]


async def _dangerous_dialog(pilot: Any) -> None:
    await show_checkout_levers(pilot, "failover")
    await pilot.press("enter")
    await pilot.pause()
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(write_log(tmp_path / "i.jsonl")), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_runbook_screen(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    assert snap_compare(app, run_before=open_runbook_then("down"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_dangerous_lever_dialog(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    assert snap_compare(app, run_before=_dangerous_dialog, terminal_size=size)


async def test_at_80x24_what_matters_is_on_screen(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"), live_probes=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "STATUS UPDATE DUE" in text and "STALE" in text
        table = app.main_screen.view.probe_table
        assert table.scrollable_content_region.height >= 8 + 1  # header + 8 rows
        for key in ("?Help", "qQuit", "nNote", "oRunbook"):  # the compact key bar
            assert key in text
        await _dangerous_dialog(pilot)
        dialog = app.screen
        # Every field and both buttons are inside the terminal without scrolling.
        for widget in [*dialog.query(Input), *dialog.query(Button)]:
            region = widget.region
            assert region.height >= 1 and region.y >= 0 and region.bottom <= 24, widget
