"""Pilot tests of runbooks in the console: open, check off, verify, run, pull a lever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tui_harness import (
    SIZE,
    incident_events,
    logged,
    make_app,
    paste,
    runbook,
    screen_text,
    settle,
    write_log,
)

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.tui.screens.confirm_command import CommandConfirmDialog
from warroom.tui.screens.dialogs import ChoiceDialog, ConfirmDialog, FormDialog
from warroom.tui.screens.runbook import RunbookScreen

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


def of_kind(path: Path, kind: type[ev.BaseEvent]) -> list[Any]:
    return [e for e in logged(path) if isinstance(e, kind)]


@pytest.mark.slow
async def test_suggested_runbook_opens_and_steps_are_logged(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path, incident_events(with_runbook=False)))
    rb = runbook()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # dynamodb is down: its runbook is suggested.
        assert "suggested DynamoDB endpoint" in screen_text(app)
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, RunbookScreen)
        opened = of_kind(path, ev.RunbookOpened)
        assert [o.runbook for o in opened] == [rb.id]
        assert opened[0].steps == [s.id for s in rb.steps]
        # The first step's verification (dynamodb-dns is down) holds: logged by itself.
        await settle(pilot, until=lambda: of_kind(path, ev.StepVerified))
        verified = of_kind(path, ev.StepVerified)[0]
        assert (verified.step, verified.holds) == (rb.steps[0].id, True)
        await settle(pilot, until=lambda: "✔ dynamodb-dns is down" in screen_text(app))

        await pilot.press("d")  # step 1 done
        await pilot.press("down", "x")  # step 2 skipped
        await pilot.press("down", "d", "p")  # step 3 done, then back to pending
        await settle(pilot)
        sets = [(s.step, s.status) for s in of_kind(path, ev.StepSet)]
        assert sets == [
            (rb.steps[0].id, "done"),
            (rb.steps[1].id, "skipped"),
            (rb.steps[2].id, "done"),
            (rb.steps[2].id, "pending"),
        ]
        text = screen_text(app)
        assert "2/5 steps done" in text
        assert "[x] 1. Confirm the record is empty" in text
        assert "[-] 2. Pause the DNS automation" in text

        await pilot.press("m")  # status with a note
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("enter")  # "done" is preselected: what "with a note" nearly always means
        assert isinstance(app.screen, FormDialog)
        await paste(pilot, "restored by hand")
        await pilot.press("enter")
        await settle(pilot)
        last = of_kind(path, ev.StepSet)[-1]
        assert (last.step, last.status, last.note) == (rb.steps[2].id, "done", "restored by hand")
        assert "note: restored by hand" in screen_text(app)

        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, RunbookScreen)
        assert "3/5 DynamoDB endpoint does not resolve" in screen_text(app)


@pytest.mark.slow
async def test_verification_turns_green_when_the_probe_recovers(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    rb = runbook()
    restore = rb.steps[2]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await settle(pilot)
        assert f"○ {restore.verify}" in screen_text(app)
        # The probe engine (another writer here) sees the DNS record come back.
        other = IncidentLog.open(path)
        other.append(
            ev.ProbeStateChanged(
                target="dynamodb-dns",
                service="dynamodb",
                from_state="down",
                to_state="up",
                reason="resolves",
            )
        )
        other.close()
        await settle(pilot, until=lambda: f"✔ {restore.verify}" in screen_text(app))
        changes = [(v.step, v.holds) for v in of_kind(path, ev.StepVerified)]
        # Step 3 now holds; step 1 ("dynamodb-dns is down") stops holding.
        assert (restore.id, True) in changes and (rb.steps[0].id, False) in changes
        # Only changes of truth are logged: nothing more on the next probe sample.
        count = len(of_kind(path, ev.StepVerified))
        other = IncidentLog.open(path)
        other.append(
            ev.ProbeSamples(
                samples=[
                    ev.ProbeSample(target="dynamodb-dns", state="up", ok=5, count=5, latency_ms=3.0)
                ]
            )
        )
        other.close()
        await settle(pilot, until=lambda: app.state.probes["dynamodb-dns"].history[-1] == 3.0)
        assert len(of_kind(path, ev.StepVerified)) == count


@pytest.mark.slow
async def test_shell_block_runs_after_confirmation(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await settle(pilot)
        await pilot.press("exclamation_mark")
        assert isinstance(app.screen, CommandConfirmDialog)
        await pilot.press("escape")  # declined: nothing runs
        await settle(pilot)
        assert not of_kind(path, ev.CommandRun)
        await pilot.press("exclamation_mark", "enter")  # Enter in the command view: nothing
        await settle(pilot)
        assert not of_kind(path, ev.CommandRun)
        await pilot.press("tab", "enter")  # the Run button
        await settle(pilot, until=lambda: of_kind(path, ev.CommandRun), timeout=5)
        run = of_kind(path, ev.CommandRun)[0]
        assert run.exit_code == 0
        assert run.output.strip() == "dynamodb.us-east-1.sim: NXDOMAIN"
        assert run.step == runbook().steps[0].id
        await pilot.press("escape")
        await settle(pilot, until=lambda: "ran `echo" in screen_text(app))


async def test_step_action_posts_the_panels_change_request(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o", "down")
        await settle(pilot)
        request = app.step_lever_request("dynamodb-dns", runbook().steps[1].id)
        assert request is not None
        step = runbook().steps[1]
        assert (request.service, request.lever, request.value) == (
            "dynamodb",
            "dns_automation",
            False,
        )
        assert (request.reason, request.runbook, request.step) == (
            f"runbook dynamodb-dns: {step.text}",
            "dynamodb-dns",
            step.id,
        )
        # No levers attached here: the app says so and names the lever to set by hand.
        await pilot.press("a")
        await settle(pilot)
        assert any(
            "no control path" in n.message and "dynamodb/dns_automation" in n.message
            for n in app._notifications
        )


@pytest.mark.slow
async def test_runbook_progress_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o", "down", "down", "x")
        await settle(pilot)
    app.incident_log.close()  # type: ignore[attr-defined]
    again = make_app(IncidentLog.open(path))
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await settle(pilot)
        text = screen_text(again)
        assert "3/5 steps done" in text
        assert "[-] 3. Restore the endpoint's DNS record" in text


async def test_shell_text_and_messages_are_never_read_as_markup(tmp_path: Path) -> None:
    """`m[k]` in a shell block is shown as written; a stray `[/]` in output can't crash."""
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path, incident_events()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(ConfirmDialog("Run this command?", "print(m[k]) [/] [bold]x", "Run"))
        await settle(pilot)
        assert "print(m[k]) [/] [bold]x" in screen_text(app)
        app.notify("exit 1: closing tag [/] without an opening one", severity="warning")
        await settle(pilot)
        assert app.is_running


async def test_o_opens_the_best_suggestion_after_the_ranking_changes(tmp_path: Path) -> None:
    """Suggestions re-rank as services fail; unless the responder moved the highlight, `o`
    follows the new first suggestion instead of the one that happened to be first earlier."""
    from warroom.state import IncidentState
    from warroom.tui.widgets.runbook_checklist import RunbookChecklist

    app = make_app(write_log(tmp_path / "i.jsonl", incident_events(with_runbook=False)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        checklist = app.screen.query_one(RunbookChecklist)
        state = IncidentState()
        checklist.update_from(state, [("regional-failover", "Failover"), ("dns", "DNS")])
        checklist.update_from(state, [("dns", "DNS"), ("regional-failover", "Failover")])
        assert checklist.highlighted_option is not None
        assert checklist.highlighted_option.id == "dns"
