"""The mitigation panel and change dialog in the real console, against real loopback servers.

Every test checks both what the log holds and what the panel shows: after a change, a
cancel, a refusal or a failed call, the two must agree with the service's true value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from controls_servers import FlagServer, flag_server, refused_port
from textual.widgets import Button, Input, RadioSet
from tui_harness import SIZE, logged, make_app, screen_text, settle, write_log

from warroom import events as ev
from warroom.controls.model import ControlConfig
from warroom.session.levers import config_levers
from warroom.tui.messages import ChangeRequested
from warroom.tui.screens.control_dialog import ControlDialog
from warroom.tui.widgets.control_panel import ControlPanel

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

TOKEN = "tui-s3cr3t-token-9876543210"


def only_in_history(value: str, text: str) -> bool:
    """True when `value` is on screen only in the log pane's lines (`08:15:00 #45 ...`)."""
    return all(re.search(r" #\d+ ", line) for line in text.splitlines() if value in line)


def level(
    server: FlagServer, name: str = "load_shed", url: str | None = None, timeout: str = "5s"
) -> ControlConfig:
    """A level lever; `timeout` is short only where a test waits for it to pass."""
    return ControlConfig.model_validate(
        {
            "service": "checkout",
            "control": name,
            "label": name.replace("_", " ").capitalize(),
            "kind": "level",
            "timeout": timeout,
            "apply": {
                "url": url or server.url(name),
                "headers": {"Authorization": "Bearer ${FLAG_TOKEN}"},
            },
            "read": {"url": server.url(name), "field": "flag.value"},
        }
    )


def failover(server: FlagServer) -> ControlConfig:
    return ControlConfig.model_validate(
        {
            "service": "checkout",
            "control": "failover",
            "label": "Fail over",
            "kind": "choice",
            "choices": ["us-east-1", "us-west-2"],
            "dangerous": True,
            "apply": {
                "url": server.url("failover"),
                "headers": {"Authorization": "Bearer ${FLAG_TOKEN}"},
            },
            "read": {"url": server.url("failover"), "field": "flag.value"},
        }
    )


def console(tmp_path: Path, configs: list[ControlConfig], token: str = TOKEN) -> Any:
    log = write_log(tmp_path / "incident.jsonl")
    task = config_levers(configs, env={"FLAG_TOKEN": token}, effect_after=0.05)
    return make_app(log, background=[task])


async def open_panel(pilot: Any, control: str) -> ControlPanel:
    """Select the checkout service, wait for its levers, and highlight `control`."""
    app = pilot.app
    table = app.main_screen.view.probe_table
    table.move_cursor(row=table.get_row_index("checkout"))
    panel = app.main_screen.query_one(ControlPanel)
    await settle(pilot, until=lambda: app.session.controls is not None and panel.shown_keys)
    panel.option_list.focus()
    panel.option_list.highlighted = panel.shown_keys.index(f"checkout/{control}")
    await settle(pilot)
    return panel


def control_events(path: Path) -> list[ev.BaseEvent]:
    return [e for e in logged(path) if e.kind.startswith("control_") and e.kind != "control_effect"]


async def apply(pilot: Any) -> None:
    dialog(pilot).query_one("#apply", Button).press()
    await settle(pilot)


def dialog(pilot: Any) -> ControlDialog:
    screen = pilot.app.screen
    assert isinstance(screen, ControlDialog), screen
    return screen


@pytest.mark.slow
async def test_change_confirm_then_revert(tmp_path: Path) -> None:
    async with flag_server(TOKEN, load_shed=0, failover="us-east-1") as server:
        app = console(tmp_path, [level(server), failover(server)])
        async with app.run_test(size=SIZE) as pilot:
            await open_panel(pilot, "load_shed")
            await pilot.press("enter")
            dialog(pilot).query_one("#control-value", Input).value = "40"
            await pilot.press("enter", *"shed bots", "enter", *"15m", "enter")
            # Enter in the last field only moves to Apply: nothing is changed from a field.
            await settle(pilot)
            assert control_events(app.log_path) == [] and server.posts == []
            assert dialog(pilot).focused is dialog(pilot).query_one("#apply")
            await pilot.press("enter")
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 2)
            assert server.values["load_shed"] == 40
            text = screen_text(app)
            # Frozen clock 08:15:00: the change reverts itself at 08:30:00 unless extended.
            assert "40 %" in text and "08:15:00 alice@warroom · ↺ 08:30:00" in text

            await pilot.press("e")
            await settle(pilot)
            assert pilot.app.screen.query_one("#extend-by", Input).value == "15m00s"
            await pilot.press("enter", "enter", "enter")  # by -> reason -> Extend, pressed
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 3)
            assert "↺ 08:45:00" in screen_text(app)

            await pilot.press("z")
            assert "Undo chg-" in str(dialog(pilot).query_one("#control-revert").render())
            await pilot.press(*"bots gone", "enter", "enter")  # reason -> Revert, pressed
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 5)
            assert server.values["load_shed"] == 0
            assert (
                app.session.controls is not None
                and app.session.controls.values["checkout/load_shed"] == 0
            )
            # Only the log's history still says 40 % (in the panel's words); the panel does not.
            assert only_in_history("40 %", screen_text(app))
    events = control_events(app.log_path)
    assert [e.kind for e in events] == [
        "control_requested",
        "control_applied",
        "control_auto_revert_extended",
        "control_requested",
        "control_applied",
    ]
    first, _, extended, revert, applied = events
    assert (first.to_value, first.reason, first.actor) == (40, "shed bots", "alice@warroom")
    assert first.auto_revert_s == 900 and extended.extend_s == 900
    assert (extended.request_id, extended.until) == (
        first.request_id,
        "2025-10-20T08:45:00.000000Z",
    )
    assert (revert.revert_of, revert.to_value, revert.reason) == (first.request_id, 0, "bots gone")
    assert applied.value == 0


async def test_cancel_and_bad_input_write_nothing(tmp_path: Path) -> None:
    async with flag_server(TOKEN, load_shed=0) as server:
        app = console(tmp_path, [level(server)])
        async with app.run_test(size=SIZE) as pilot:
            await open_panel(pilot, "load_shed")
            await pilot.press("enter")
            box = dialog(pilot)
            box.query_one("#control-value", Input).value = "140"
            box.query_one("#control-reason", Input).value = "too much"
            await apply(pilot)
            assert "between 0 and 100" in str(box.query_one("#control-error").render())
            box.query_one("#control-value", Input).value = "20"
            box.query_one("#control-reason", Input).value = "   "
            await apply(pilot)
            assert "give a reason" in str(box.query_one("#control-error").render())
            await pilot.press("escape")
            await settle(pilot)
            assert not isinstance(app.screen, ControlDialog)
    assert control_events(app.log_path) == []
    assert server.posts == []


async def test_dangerous_lever_needs_the_service_name(tmp_path: Path) -> None:
    async with flag_server(TOKEN, failover="us-east-1") as server:
        app = console(tmp_path, [failover(server)])
        async with app.run_test(size=SIZE) as pilot:
            await open_panel(pilot, "failover")
            await pilot.press("enter")
            box = dialog(pilot)
            radios = box.query_one("#control-value", RadioSet)
            radios.focus()
            await pilot.press("down", "enter")
            box.query_one("#control-reason", Input).value = "east is down"
            box.query_one("#control-confirm", Input).value = "checkuot"
            await apply(pilot)
            assert "type checkout exactly" in str(box.query_one("#control-error").render())
            assert control_events(app.log_path) == [] and server.posts == []
            box.query_one("#control-confirm", Input).value = "checkout"
            await apply(pilot)
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 2)
    requested, applied = control_events(app.log_path)
    assert requested.to_value == "us-west-2" and applied.value == "us-west-2"
    assert server.values["failover"] == "us-west-2"


@pytest.mark.slow
async def test_failed_calls_leave_the_log_and_the_panel_true(tmp_path: Path) -> None:
    expected = {
        "refused": "connection refused (127.0.0.1:",
        "error": "HTTP 500: flag store is read-only",
        "locked": "HTTP 401 (check the token)",
        "hang": "timed out after 0.5s",
    }
    shown: dict[str, str] = {}
    async with (
        flag_server(TOKEN, refused=10, error=10) as server,
        flag_server("another-token-entirely", locked=10) as locked,
        flag_server(TOKEN, hang=10) as slow,
    ):
        server.mode, slow.mode = "error", "hang"
        broken = f"http://127.0.0.1:{refused_port()}/flags/refused"
        configs = [
            level(server, "refused", url=broken),
            level(server, "error"),
            level(locked, "locked"),
            level(slow, "hang", timeout="0.5s"),
        ]
        app = console(tmp_path, configs)
        async with app.run_test(size=SIZE) as pilot:
            for name in expected:
                await open_panel(pilot, name)
                await pilot.press("enter")
                box = dialog(pilot)
                box.query_one("#control-value", Input).value = "50"
                box.query_one("#control-reason", Input).value = "try"
                before = len(control_events(app.log_path))
                await apply(pilot)
                await settle(
                    pilot,
                    until=lambda b=before: len(control_events(app.log_path)) == b + 2,
                    timeout=4,
                )
                await settle(pilot)
                shown[name] = screen_text(app)
    events = control_events(app.log_path)
    failures = {e.control: e for e in events if isinstance(e, ev.ControlFailed)}
    assert set(failures) == set(expected)
    for name, prefix in expected.items():
        failure = failures[name]
        assert failure.error.startswith(prefix), failure.error
        # The true value was read back and logged; the panel shows it and says why.
        assert failure.value == 10
        assert f"✗ {prefix[:20]}" in shown[name], shown[name]
        assert only_in_history("50 %", shown[name])
        # The flag server echoes the token; it never reaches the log or the screen.
        assert TOKEN not in shown[name]
    assert TOKEN not in app.log_path.read_text()


@pytest.mark.slow
async def test_sim_lever_and_runbook_action_through_the_panel(tmp_path: Path) -> None:
    from warroom.session.levers import sim_levers
    from warroom.sim.server import running_fleet

    async with running_fleet("aws-us-east-1-2025", speed=1.0, seed=1) as fleet:
        log = write_log(tmp_path / "incident.jsonl")
        task = sim_levers(fleet.admin_url, fleet.token_path, effect_after=0.05)
        app = make_app(log, background=[task])
        async with app.run_test(size=SIZE) as pilot:
            await open_panel(pilot, "load_shed")
            await pilot.press("enter")
            dialog(pilot).query_one("#control-value", Input).value = "25"
            # value -> reason -> auto-revert -> Apply (focused), pressed
            await pilot.press("enter", *"shed", "enter", "enter", "enter")
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 2)
            assert fleet.model.control("checkout", "load_shed")["value"] == 25
            assert "25 %" in screen_text(app)

            # A runbook step's action goes through the same dialog, preset with its value.
            rb = next(iter(app.runbooks.values()))
            step = next(s for s in rb.steps if s.action and s.action.control == "rate_limit")
            app.main_screen.post_message(app.step_lever_request(rb.id, step.id))
            await settle(pilot)
            box = dialog(pilot)
            assert box.query_one("#control-value", Input).value == "50"
            assert box.query_one("#control-reason", Input).value.startswith("runbook ")
            await apply(pilot)
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 4)
            assert fleet.model.control("ec2-launch", "rate_limit")["value"] == 50
            # Applied and read back: the console offers to mark the step done (one Enter).
            await settle(pilot, until=lambda: app.screen.id == "confirm-step-done")
            await pilot.press("enter")
            await settle(pilot)
            marked = [e for e in logged(app.log_path) if isinstance(e, ev.StepSet)][-1]
            assert (marked.runbook, marked.step, marked.status) == (rb.id, step.id, "done")

            # The app's entry point: the same dialog, a dangerous lever, the value preset.
            app.main_screen.post_message(ChangeRequested("dynamodb", "dns_record", value="empty"))
            await settle(pilot)
            box = dialog(pilot)
            assert box.query_one("#control-value", RadioSet).pressed_button.name == "empty"
            box.query_one("#control-reason", Input).value = "drill: empty it again"
            box.query_one("#control-confirm", Input).value = "dynamodb"
            await apply(pilot)
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 6)
            assert fleet.model.control("dynamodb", "dns_record")["value"] == "empty"
            text = screen_text(app)
        token = fleet.token
    requested = [e for e in control_events(app.log_path) if isinstance(e, ev.ControlRequested)]
    assert (requested[1].runbook, requested[1].step, requested[1].to_value) == (rb.id, step.id, 50)
    assert token not in app.log_path.read_text() and token not in text


async def test_without_a_control_path_the_panel_shows_the_log(tmp_path: Path) -> None:
    from controls_harness import control_events as fixture_changes

    log = write_log(tmp_path / "incident.jsonl")
    log.append_many(fixture_changes())
    app = make_app(log)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main_screen.view.probe_table
        table.move_cursor(row=table.get_row_index("checkout"))
        panel = app.main_screen.query_one(ControlPanel)
        await settle(pilot, until=lambda: len(panel.shown_keys) == 2)
        text = screen_text(app)
        panel.option_list.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, ControlDialog)
        assert any("no control path" in n.message for n in app._notifications)
    assert "load_shed" in text.lower() or "Load shed" in text
    assert "08:08:01 alice@warroom · ↺ 08:23:01" in text
    assert "✗ timed out after 5s" in text
