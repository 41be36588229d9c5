"""Pilot tests of the probe list's keys in the console: j/k/g/G, S, Esc clearing a filter."""

from __future__ import annotations

from pathlib import Path

from tui_harness import SERVICES, SIZE, make_app, paste, screen_text, settle, write_log

from warroom.tui.screens.probe_detail import ProbeDetailScreen


async def test_probe_list_keys_in_the_console(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main_screen.view.probe_table
        order = table.ordered_targets
        assert table.has_focus and table.selected_target == order[0]
        await pilot.press("j", "j", "k")
        assert table.selected_target == order[1]
        await pilot.press("G")
        assert table.selected_target == order[-1]
        await pilot.press("g")
        assert table.selected_target == order[0]
        await pilot.press("S")  # the sort reversed: the best first
        await settle(pilot)
        assert table.ordered_targets == tuple(reversed(order))
        await pilot.press("S")
        await settle(pilot)
        assert table.ordered_targets == order

        await pilot.press("slash")
        await paste(pilot, "dynamo")
        await pilot.press("enter")
        await settle(pilot)
        assert set(table.ordered_targets) == {"dynamodb", "dynamodb-dns"}
        assert "network-manager" not in screen_text(app) and table.has_focus
        await pilot.press("escape")  # Esc in the table clears the filter, and only that
        await settle(pilot, until=lambda: "network-manager" in screen_text(app))
        assert len(table.ordered_targets) == len(SERVICES) and not table.filter_text
        assert app.screen is app.main_screen
        await pilot.press("G", "enter")  # and Enter on the row under the cursor: its detail
        await settle(pilot, until=lambda: isinstance(app.screen, ProbeDetailScreen))
        assert f"Probe {order[-1]}" in screen_text(app)
