"""Pilot tests of the one dialog contract (see warroom/tui/screens/dialogs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button
from tui_harness import SIZE, logged, make_app, screen_text, settle, write_log

from warroom import events as ev
from warroom.tui.screens.dialogs import ConfirmDialog, FormDialog

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


def burst(pilot: Any, keys: str | list[str]) -> None:
    """Send keys back to back, as a fast typist does, without waiting for any screen."""
    from textual import events

    driver = pilot.app._driver
    for key in keys:
        char = key if len(key) == 1 else None
        name = {" ": "space"}.get(key, key)
        event = events.Key(name, char)
        event.set_sender(pilot.app)
        driver.send_message(event)


def notes(path: Path) -> list[ev.NoteAdded]:
    return [e for e in logged(path) if isinstance(e, ev.NoteAdded)]


async def test_text_typed_right_after_n_keeps_its_first_characters(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = len(notes(path))
        burst(pilot, ["n", *"quick note", "enter"])
        await settle(pilot, until=lambda: len(notes(path)) > before)
        assert notes(path)[-1].text == "quick note"
        assert app.screen is app.main_screen
        await settle(pilot, until=lambda: "quick note" in screen_text(app))  # the log pane


def cancelled_said(app: Any) -> bool:
    return any("cancelled" in str(n.message) for n in app._notifications)


async def test_enter_moves_on_and_submits_on_the_last_field(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        tasks_before = len([e for e in logged(path) if isinstance(e, ev.TaskAdded)])
        await pilot.press("f", *"guard DNS plans", "enter")
        assert isinstance(app.screen, FormDialog)
        assert app.screen.focused is app.screen.query_one("#field-owner")
        await pilot.press(*"bob", "enter")
        assert app.screen.focused is app.screen.query_one("#field-priority")
        await pilot.press(*"P1", "enter", "enter")  # priority, then past the empty type
        assert app.screen.focused is app.screen.query_one("#field-link")
        assert len([e for e in logged(path) if isinstance(e, ev.TaskAdded)]) == tasks_before
        await pilot.press("enter")  # the last field: submits
        await settle(pilot)
        task = [e for e in logged(path) if isinstance(e, ev.TaskAdded)][-1]
        assert (task.text, task.owner, task.priority) == ("guard DNS plans", "bob", "P1")
        assert app.screen is app.main_screen


async def test_escape_and_tab_to_cancel_both_say_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        before = len(logged(path))
        await pilot.press("n", *"nope", "escape")
        await settle(pilot)
        assert app.screen is app.main_screen and cancelled_said(app)
        app.clear_notifications()
        await pilot.press("n", *"nope", "tab", "tab")  # past Add, onto Cancel
        assert app.screen.focused is app.screen.query_one("#cancel")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is app.main_screen and cancelled_said(app)
        await pilot.press("v", "escape")  # a choice dialog keeps the contract too
        await settle(pilot)
        assert app.screen is app.main_screen
        assert len(logged(path)) == before


async def test_keys_typed_behind_a_dialog_never_run_as_hotkeys(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = len(logged(path))
        # "t", "v", "u", "b" are hotkeys of the main screen: typed into the dialog they are text.
        burst(pilot, ["b", *"tvub at 08:15", "enter"])
        await settle(pilot, until=lambda: len(logged(path)) > before)
        await settle(pilot)
        added = logged(path)[before:]
        assert [type(e) for e in added] == [ev.BookmarkAdded]
        assert isinstance(added[0], ev.BookmarkAdded) and added[0].label == "tvub at 08:15"
        assert app.screen is app.main_screen


@pytest.mark.slow
async def test_reason_typed_right_after_e_goes_into_the_dialog(tmp_path: Path) -> None:
    from controls_servers import flag_server
    from test_controls_tui import TOKEN, console, control_events, level, open_panel

    async with flag_server(TOKEN, load_shed=0) as server:
        app = console(tmp_path, [level(server)])
        async with app.run_test(size=SIZE) as pilot:
            await open_panel(pilot, "load_shed")
            # The last field moves on to Apply, which alone applies (#12): one more Enter.
            await pilot.press("enter", *"40", "enter", *"shed", "enter", *"15m", "enter", "enter")
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 2)
            # Fast fingers: the extend key, Enter past the duration, the reason, Enter on to
            # the Extend button; then Enter on that button, the only thing that extends.
            burst(pilot, ["e", "enter", *"keep shedding", "enter"])
            await settle(pilot, until=lambda: isinstance(app.screen.focused, Button))
            await pilot.press("enter")
            await settle(pilot, until=lambda: len(control_events(app.log_path)) >= 3)
            await settle(pilot)
            assert app.screen is app.main_screen
            await settle(pilot, until=lambda: "pushed back" in screen_text(app))
            assert "(keep shedding)" in screen_text(app)
    events = control_events(app.log_path)
    # One extension with the whole reason: none of its letters ran as hotkeys ("e" again).
    assert [e.kind for e in events][2:] == ["control_auto_revert_extended"]
    assert isinstance(events[2], ev.ControlAutoRevertExtended)
    assert events[2].reason == "keep shedding"


async def test_typed_ahead_text_fills_each_field_of_a_form(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # Text, owner, then past the empty priority and type to the last field (link).
        burst(pilot, ["f", *"guard plans", "enter", *"bob", "enter", "enter", "enter", "enter"])
        await settle(pilot, until=lambda: isinstance(logged(path)[-1], ev.TaskAdded))
        task = logged(path)[-1]
        assert isinstance(task, ev.TaskAdded) and (task.text, task.owner) == ("guard plans", "bob")


async def test_ctrl_c_and_ctrl_q_ask_like_q(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        for key in ("ctrl+c", "ctrl+q"):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, ConfirmDialog) and app.screen.id == "confirm-quit"
            text = screen_text(app)
            assert "Quit warroom?" in text and "[b]" not in text
            await pilot.press(key)  # asking twice does not stack a second question
            assert sum(isinstance(s, ConfirmDialog) for s in app.screen_stack) == 1
            await pilot.press("escape")
            await settle(pilot)
            assert app.is_running and app.screen is app.main_screen
        assert not any("[b]" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+q", "enter")
        await settle(pilot)
    assert app.return_value == 0


#: Editing keys: text, cursor moves, a deletion, and letters that are hotkeys below ("o").
EDITING = ["o", "b", "c", "left", "left", "backspace", "home", "x", "end", "space", "z"]


async def _typed_into_note(tmp_path: Path, name: str, hand_over: bool) -> tuple[str, int, int]:
    """Open the note dialog, type EDITING (pressed, or each handed over as a held key is),
    and return the field's value and cursor and how many events the log gained."""
    from textual import events
    from textual.widgets import Input

    path = tmp_path / f"{name}.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = len(logged(path))
        await pilot.press("n")
        await settle(pilot, until=lambda: isinstance(app.screen, FormDialog))
        for key in EDITING:
            if hand_over:
                char = {"space": " "}.get(key, key if len(key) == 1 else None)
                # From the dialog's own message loop, as `release_held_keys` runs.
                app.screen.call_later(app._press_again, events.Key(key, char))
                await pilot.pause()
                await settle(pilot, until=lambda: not app._replayed)
            else:
                await pilot.press(key)
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)  # nothing ran on the screen below
        field = app.screen.query_one(Input)
        return field.value, field.cursor_position, len(logged(path)) - before


async def test_a_held_key_handed_over_reaches_a_field_as_a_real_press(tmp_path: Path) -> None:
    """`WarroomApp._press_again` must stay equivalent to a key press from the terminal: if a
    Textual upgrade changes how a posted key travels, this says so."""
    pressed = await _typed_into_note(tmp_path, "pressed", hand_over=False)
    handed = await _typed_into_note(tmp_path, "handed", hand_over=True)
    assert pressed == ("xbc z", 5, 0)
    assert handed == pressed


async def test_fast_typing_in_an_open_form_lands_each_word_in_its_own_field(
    tmp_path: Path,
) -> None:
    """Enter moves on at once for keys already on their way: what is typed after it is the
    next field's, even when the whole burst arrives before the screen has caught up."""
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        await settle(pilot, until=lambda: isinstance(app.screen, FormDialog) and app.screen.ready)
        burst(pilot, [*"guard plans", "enter", *"bob", "enter", *"P1", "tab", *"prevent"])
        await settle(pilot, until=lambda: app.screen.focused is app.screen.query_one("#field-type"))
        await settle(pilot)
        values = {box.id: box.value for box in app.screen.query("Input")}
        assert values["field-text"] == "guard plans"
        assert values["field-owner"] == "bob"
        assert values["field-priority"] == "P1"
        assert values["field-type"] == "prevent"


async def test_a_lever_typed_in_one_burst_applies_what_was_typed(tmp_path: Path) -> None:
    """Value, reason, past the empty auto-revert onto Apply, and Apply: typed faster than
    the screen repaints, each lands where it was meant (the last field's Enter included)."""
    from controls_servers import flag_server
    from test_controls_tui import TOKEN, console, control_events, level, open_panel

    async with flag_server(TOKEN, load_shed=0) as server:
        app = console(tmp_path, [level(server)])
        async with app.run_test(size=SIZE) as pilot:
            await open_panel(pilot, "load_shed")
            await pilot.press("enter")
            await settle(pilot, until=lambda: getattr(app.screen, "ready", False))
            burst(pilot, [*"10", "enter", *"shed load", "enter", "enter", "enter"])
            await settle(pilot, until=lambda: len(control_events(app.log_path)) == 2, timeout=5)
    requested, applied = control_events(app.log_path)
    assert isinstance(requested, ev.ControlRequested) and isinstance(applied, ev.ControlApplied)
    assert (requested.to_value, requested.reason, applied.value) == (10, "shed load", 10)


async def test_the_last_fields_enter_waits_for_the_text_typed_before_it(tmp_path: Path) -> None:
    """A note typed and entered in one burst into an open dialog is stored whole: the Enter
    that submits reads the field only after the keys sent before it have reached it."""
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        for n in range(3):
            await pilot.press("n")
            await settle(pilot, until=lambda: getattr(app.screen, "ready", False))
            before = len(notes(path))
            text = f"note {n}: the db primary is down"
            burst(pilot, [*text, "enter", *"jj"])  # and on: hotkeys for the main screen
            await settle(pilot, until=lambda b=before: len(notes(path)) > b)
            assert notes(path)[-1].text == text
            await settle(pilot, until=lambda: app.screen is app.main_screen)
