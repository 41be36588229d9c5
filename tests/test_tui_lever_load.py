"""Pilot test: the lever dialog of a throttle on a simulated service shows its load (goodput,
offered load, queue, effective capacity) read from the real fleet over loopback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Static
from tui_harness import SIZE, logged, make_app, screen_text, settle, ts

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.session.levers import ServiceLoad, sim_levers
from warroom.sim.server import running_fleet
from warroom.tui.screens.control_dialog import ControlDialog
from warroom.tui.widgets.control_panel import ControlPanel


def test_the_load_line_says_when_the_offered_load_is_past_the_edge() -> None:
    calm = ServiceLoad(80, 80, 0, 100, 100)
    assert calm.line() == "goodput 80 of 80 rps offered · queue 0 · capacity 100 rps"
    swamped = ServiceLoad(150, 20, 900, 60, 100)
    assert swamped.line() == (
        "goodput 20 of 150 rps offered · queue 900 · capacity 60 rps (nominal 100) · "
        "over the edge: the queue grows"
    )


@pytest.mark.slow
async def test_a_throttles_dialog_shows_the_services_load(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    log = IncidentLog.open(path)
    up = ev.ProbeStateChanged(
        target="db", service="db", from_state="unknown", to_state="up", reason="ok"
    )
    log.append_many([up.model_copy(update={"ts": ts(86), "actor": "warroom-probe"})])
    async with running_fleet("tutorial", speed=1e-6, seed=3) as fleet:
        app = make_app(log, background=[sim_levers(fleet.admin_url, fleet.token_path)])
        async with app.run_test(size=SIZE) as pilot:
            panel = app.main_screen.query_one(ControlPanel)
            await settle(pilot, until=lambda: bool(panel.shown_keys), timeout=5)
            panel.option_list.focus()
            panel.option_list.highlighted = panel.shown_keys.index("db/rate_limit")
            await pilot.press("enter")
            await settle(pilot, until=lambda: isinstance(app.screen, ControlDialog))
            box = app.screen
            load = box.query_one("#control-load", Static)
            await settle(pilot, until=lambda: load.display, timeout=5)
            metrics = fleet.model.metrics("db")
            text = screen_text(app)
            shown = re.search(
                r"goodput (\d+) of (\d+) rps offered · queue (\d+) · capacity (\d+)", text
            )
            assert shown, text
            keys = ("goodput_rps", "offered_rps", "queue", "effective_capacity_rps")
            # The fleet's load has noise from one read to the next: close, not equal.
            for key, figure in zip(keys, shown.groups(), strict=True):
                assert abs(int(figure) - metrics[key]) <= max(2.0, 0.05 * metrics[key]), key
            # The dialog still pulls the lever, logged and read back.
            box.query_one("#control-value", Input).value = "40"
            box.query_one("#control-reason", Input).value = "hold the load under the edge"
            box.query_one("#apply", Button).press()
            await settle(
                pilot, until=lambda: any(e.kind == "control_applied" for e in logged(path))
            )
            assert fleet.model.control("db", "rate_limit")["value"] == 40
    log.close()
