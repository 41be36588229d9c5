"""The console under hostile text and a hostile disk: nothing untrusted steers the terminal,
confirmations show all they confirm, and nothing is acknowledged that is not on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hostile import PAYLOADS, assert_terminal_safe
from textual.geometry import Region
from textual.widgets import Button, Input
from tui_harness import (
    ALICE,
    RUNBOOK_TEXT,
    incident_events,
    logged,
    make_app,
    settle,
    ts,
    write_log,
)

from warroom import events as ev
from warroom.log.anchor import head_before
from warroom.log.store import IncidentLog
from warroom.runbooks.parser import parse_runbook
from warroom.tui.screens.confirm_command import CommandConfirmDialog, line_count_text

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

#: Every payload a log line can hold (no lone surrogates: the log refuses them) but the 1 MB
#: line (the sanitiser's own tests cover that size).
SKIPPED = {"huge_line", "lone_surrogate", "invalid_utf8_escaped"}
EVIL = " | ".join(value for name, value in PAYLOADS.items() if name not in SKIPPED)


def rendered(app: Any) -> str:
    """What every visible widget of the current screen renders now, strip by strip (toasts
    included): the text segments the terminal would be sent."""
    lines: list[str] = []
    for widget in app.screen.walk_children(with_self=True):
        if not widget.display or not widget.outer_size.area:
            continue
        width, height = widget.outer_size  # content plus padding and border
        for strip in widget.render_lines(Region(0, 0, width, height)):
            lines.append("".join(segment.text for segment in strip))
    return "\n".join(lines)


def hostile_events() -> list[ev.BaseEvent]:
    """The fixture incident, then hostile text in every field a renderer shows."""
    events = incident_events()
    more: list[ev.BaseEvent] = [
        ev.TitleSet(title="title " + EVIL),
        ev.RoleAssigned(role="comms" + PAYLOADS["csi_clear"], person="eve" + EVIL),
        ev.NoteAdded(text="note " + EVIL, actor="mallory" + PAYLOADS["newline_forge"]),
        ev.StatusUpdatePosted(conditions="cond " + EVIL),
        ev.ProbeStateChanged(
            target="evil" + PAYLOADS["osc52_clipboard"],
            service="checkout",
            from_state=ev.ProbeState("up"),
            to_state=ev.ProbeState("down"),
            reason="why " + EVIL,
        ),
        ev.ControlFailed(
            request_id="chg-1", service="checkout", control="load_shed", error="err " + EVIL
        ),
    ]
    for minute, event in enumerate(more, 80):
        events.append(event.model_copy(update={"ts": ts(minute), "actor": event.actor or ALICE}))
    return events


def hostile_runbook() -> Any:
    # A step is one Markdown line: the payloads that break lines go into the body instead
    # (after the last step, so they cannot reshape the checklist).
    inline = " | ".join(
        value
        for name, value in PAYLOADS.items()
        if name not in SKIPPED and not any(c in value for c in "\r\n\x85\u2028\u2029")
    )
    text = RUNBOOK_TEXT.replace("Confirm the record is empty", "Confirm " + inline)
    text += "\nbody " + EVIL + "\n"
    text = text.replace(
        'echo "dynamodb.us-east-1.sim: NXDOMAIN"', "echo hi\n  printf 'x\x1b[8mhidden'"
    )
    parsed, problems = parse_runbook(text, "dynamodb-dns.md")
    assert parsed is not None, problems
    return parsed.model_copy(update={"title": "rb " + PAYLOADS["osc2_title"]})


@pytest.mark.slow
async def test_every_console_renderer_shows_hostile_text_disarmed(tmp_path: Path) -> None:
    evil_runbook = hostile_runbook()
    app = make_app(
        write_log(tmp_path / "i.jsonl", hostile_events()),
        runbooks={evil_runbook.id: evil_runbook},
    )
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot)
        app.notify("toast " + EVIL, title="t" + PAYLOADS["osc0_title"])
        app.main_screen.view.set_problems(["problem " + EVIL])
        await settle(pilot)
        main = rendered(app)
        assert_terminal_safe(main)
        # Disarmed but visible: the responder sees that something tried.
        assert "␛]52;c;UFdORUQ=␇" in main and "\\u202e" in main
        assert "[red]alarm[/red]" in main  # markup shown as written, never applied
        assert "problem " in main and "toast " in main

        await pilot.press("o")  # the runbook: title, steps, body, command
        await settle(pilot)
        screen = rendered(app)
        assert_terminal_safe(screen)
        assert "␛[8mhidden" in screen

        await pilot.press("exclamation_mark")  # the confirmation shows the conceal, disarmed
        await settle(pilot)
        assert isinstance(app.screen, CommandConfirmDialog)
        dialog = rendered(app)
        assert_terminal_safe(dialog)
        assert "printf 'x␛[8mhidden'" in dialog


@pytest.mark.slow
async def test_a_62_line_command_is_shown_whole_and_runs_only_from_its_button(
    tmp_path: Path,
) -> None:
    code = "\n".join(f"echo line-{n:02d}" for n in range(1, 62)) + "\necho LAST-LINE"
    text = RUNBOOK_TEXT.replace(
        'echo "dynamodb.us-east-1.sim: NXDOMAIN"', code.replace("\n", "\n  ")
    )
    long_runbook, _ = parse_runbook(text, "dynamodb-dns.md")
    assert long_runbook is not None and long_runbook.steps[0].commands[0].code.count("\n") >= 61
    path = tmp_path / "i.jsonl"
    ran: list[str] = []

    async def runner(command: str, timeout: float, limit: int) -> dict[str, Any]:
        ran.append(command)
        return {"exit_code": 0, "output": "ok", "truncated": False}

    app = make_app(write_log(path), runbooks={long_runbook.id: long_runbook}, command_runner=runner)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await settle(pilot)
        await pilot.press("exclamation_mark")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, CommandConfirmDialog)
        assert "62 lines" in rendered(app)
        # Both buttons inside the terminal, whatever the command's length.
        for button in dialog.query(Button):
            region = button.region
            assert region.height and region.bottom <= 24 and region.right <= 80, region
        view = dialog.query_one("#command-view")
        assert dialog.focused is view
        # Nothing covers the command's view: it ends above the buttons.
        assert view.region.bottom <= dialog.query_one("#confirm").region.y
        # All 62 lines are laid out (none cut), in a view shorter than them that scrolls.
        assert dialog.query_one("#command-text").outer_size.height == 62
        assert "echo LAST-LINE" in rendered(app)
        assert 0 == view.scroll_y < view.max_scroll_y
        await pilot.press("end")
        await settle(pilot)
        assert view.scroll_y == view.max_scroll_y  # the last line is in view
        await pilot.press("enter", "enter")  # Enter in the view runs nothing
        await settle(pilot)
        assert ran == [] and not [e for e in logged(path) if isinstance(e, ev.CommandRun)]
        assert app.screen is dialog
        await pilot.click("#confirm")
        await settle(pilot, until=lambda: any(isinstance(e, ev.CommandRun) for e in logged(path)))
    assert ran and ran[0].endswith("echo LAST-LINE")
    assert line_count_text("a") == "1 line" and line_count_text(code) == "62 lines"


async def _note(pilot: Any, text: str) -> None:
    await pilot.press("n")
    await settle(pilot)
    note = pilot.app.screen.query_one(Input)
    note.value = text
    await pilot.press("enter")
    await settle(pilot)


def _shown(app: Any, words: str) -> bool:
    """On screen now, or kept by the log pane (scrolled out or not yet painted)."""
    kept = app.main_screen.view.log_tail.texts
    return words in rendered(app) or any(words in line.plain for line in kept)


async def test_a_replaced_log_is_said_loudly_and_nothing_more_is_acknowledged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=(140, 42)) as pilot:
        await settle(pilot)
        await _note(pilot, "before the swap")
        await settle(pilot, until=lambda: "before the swap" in rendered(app))
        # Another process replaces the file (a rotation, a careless `mv`).
        replacement = tmp_path / "other.jsonl"
        with IncidentLog.open(replacement) as other:
            other.append(ev.NoteAdded(text="a new file", actor="bob"))
        os.replace(replacement, path)
        await _note(pilot, "lost note one")
        text = rendered(app)
        assert "LOG FILE GONE" in text and str(path) in text
        assert not _shown(app, "lost note one")
        assert any("not recorded" in n.message for n in app._notifications)
        # Every later action is refused too, with the same visible reason.
        await _note(pilot, "lost note two")
        assert not _shown(app, "lost note two")
        assert app.session.log_gone and app.main_screen.view.header.alarm
    on_disk = path.read_text()
    assert "lost note" not in on_disk and "a new file" in on_disk


async def test_a_deleted_log_refuses_the_next_note(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=(140, 42)) as pilot:
        await settle(pilot)
        path.unlink()
        await _note(pilot, "into the void")
        text = rendered(app)
        assert "LOG FILE GONE" in text and not _shown(app, "into the void")
    assert not path.exists()


def _next_line(path: Path, scratch: Path, event: ev.BaseEvent) -> str:
    """The line another writer would append to `path` next (chained to its last good event)."""
    good = []
    for line in path.read_text().splitlines():
        try:
            json.loads(line)
        except ValueError:
            continue
        good.append(line + "\n")
    scratch.write_text("".join(good))
    with IncidentLog.open(scratch) as other:
        other.append(event)
    return scratch.read_text().splitlines()[-1] + "\n"


async def test_a_junk_line_is_reported_once_and_later_events_still_appear(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=(140, 42)) as pilot:
        await settle(pilot)
        junk_at = len(path.read_text().splitlines()) + 1
        after = _next_line(path, tmp_path / "s.jsonl", ev.NoteAdded(text="after junk", actor="bob"))
        with path.open("a") as raw:  # one write: the junk is in the middle, never a torn tail
            raw.write("{this is not json\n" + after)
        await settle(pilot, until=lambda: "after junk" in rendered(app))
        problems = [p for p in app.problems if "bad log line" in p]
        assert len(problems) == 1 and f"{path.name}:{junk_at}" in problems[0], problems
        assert f"{path.name}:{junk_at}" in rendered(app)  # on the problems line
        later = _next_line(
            path, tmp_path / "s.jsonl", ev.NoteAdded(text="later still", actor="bob")
        )
        with path.open("a") as raw:
            raw.write(later)
        await settle(pilot, until=lambda: "later still" in rendered(app))
        assert len([p for p in app.problems if "bad log line" in p]) == 1


async def test_a_status_update_carries_the_log_head(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=(140, 42)) as pilot:
        await settle(pilot)
        before = logged(path)[-1]
        await pilot.press("c")
        await settle(pilot)
        app.screen.query_one("#field-conditions", Input).value = "checkout down"
        await pilot.click("#submit")
        await settle(pilot, until=lambda: bool(app.last_status_text))
        posted = logged(path)[-1]
        assert isinstance(posted, ev.StatusUpdatePosted)
        head = head_before(posted)
        digest = json.loads(path.read_text().splitlines()[-2])["hash"]
        assert head == f"log head #{before.seq} sha256:{digest}" and len(digest) == 64
        assert app.last_status_text.splitlines() == ["Conditions: checkout down", head]
        assert any(head in n.message for n in app._notifications)


@pytest.mark.slow
async def test_the_lever_dialog_shows_its_whole_text_and_applies_only_from_its_button(
    tmp_path: Path,
) -> None:
    from warroom.controls.model import ControlKind, ControlSpec
    from warroom.tui.screens.control_dialog import ControlDialog

    description = "\n".join(f"effect {n}" for n in range(1, 30)) + "\nLAST " + PAYLOADS["conceal"]
    spec = ControlSpec(
        service="checkout",
        control="failover",
        kind=ControlKind.CHOICE,
        choices=["us-east-1", "us-west-2"],
        dangerous=True,
        description=description,
    )
    app = make_app(write_log(tmp_path / "i.jsonl"))
    results: list[Any] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(ControlDialog(spec, "us-east-1", preset="us-west-2"), results.append)
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ControlDialog)
        text = rendered(app)
        assert_terminal_safe(text)
        assert "LAST visible ␛[8mhidden rm -rf /␛[28m" in text
        apply = dialog.query_one("#apply")
        for button in dialog.query(Button):
            assert button.region.height and button.region.bottom <= 24, button.region
        scroller = dialog.query_one(".dialog")
        scroller.scroll_end(animate=False)
        await settle(pilot)
        last = dialog.query_one("#control-confirm")  # the last field, scrolled into view
        assert last.region.height and last.region.bottom <= apply.region.y
        reason = dialog.query_one("#control-reason", Input)
        reason.focus()
        await pilot.press(*"east is down", "enter", "enter")  # reason -> auto-revert -> confirm
        confirm = dialog.query_one("#control-confirm", Input)
        confirm.value = "checkout"
        await pilot.press("enter")  # Enter in the last field: focus moves to Apply, nothing else
        await settle(pilot)
        assert results == [] and app.screen is dialog and dialog.focused is apply
        await pilot.press("enter")
        await settle(pilot)
    assert len(results) == 1 and results[0].value == "us-west-2"


@pytest.mark.slow
async def test_replay_shows_hostile_text_and_tampering_warnings_disarmed(tmp_path: Path) -> None:
    from warroom.tui.screens.replay import ReplayApp

    path = tmp_path / "i.jsonl"
    write_log(path, hostile_events()).close()
    lines = path.read_text().splitlines(keepends=True)
    # Tampered: a hostile actor where the chain says otherwise, so replay warns about it too.
    lines[5] = lines[5].replace('"actor":"', '"actor":"x' + json.dumps(EVIL)[1:-1], 1)
    path.write_text("".join(lines))
    app = ReplayApp(path)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        for _ in range(200):
            if app.replay_screen.indexed:
                break
            await pilot.pause(0.01)
        await app.workers.wait_for_complete()
        await pilot.press("G")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        text = rendered(app)
        assert_terminal_safe(text)
        assert "␛]52;c;UFdORUQ=␇" in text and "REPLAY" in text
