"""Pilot tests of the console: key -> event in the real log file -> on screen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.events import Key
from tui_harness import SIZE, logged, make_app, paste, screen_text, settle, write_log

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.tui.screens.dialogs import ChoiceDialog, ConfirmDialog, FormDialog
from warroom.tui.screens.help import HelpScreen
from warroom.tui.widgets.probe_table import ProbeTable

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


def last(path: Path, kind: type[ev.BaseEvent]) -> ev.BaseEvent:
    found = [e for e in logged(path) if isinstance(e, kind)]
    assert found, f"no {kind.__name__} in the log"
    return found[-1]


async def test_main_screen_renders_the_incident_from_the_log(tmp_path: Path) -> None:
    log = write_log(tmp_path / "i.jsonl")
    app = make_app(log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "us-east-1: DynamoDB endpoint unreachable" in text
        assert "SEV1" in text and "IDENTIFIED" in text
        assert "elapsed 1h21m" in text  # frozen clock: 06:54 -> 08:15
        assert "IC  alice" in text
        assert "✖ down" in text and "▲ degraded" in text and "● up" in text
        assert "bob@warroom: follow-up: Add a guard against empty DNS plans" in text
        table = app.main_screen.view.probe_table
        order = [row.key.value for row in table.ordered_rows]
        # Worst state first, then service, then name.
        assert order[:3] == ["checkout", "dynamodb", "dynamodb-dns"]
        assert order[3:5] == ["ec2-launch", "lambda"]


async def test_note_is_logged_then_shown(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, FormDialog)
        await paste(pilot, "risky")
        await pilot.press("enter")
        await settle(pilot)
        note = last(path, ev.NoteAdded)
        assert note.text == "risky" and note.actor == "alice@warroom"
        assert "alice@warroom: note: risky" in screen_text(app)
        assert app.state.notes[-1].seq == note.seq


async def test_bookmark_task_and_role(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        await paste(pilot, "dns ok")
        await pilot.press("enter")
        await settle(pilot)
        assert last(path, ev.BookmarkAdded).label == "dns ok"
        assert "bookmark: dns ok" in screen_text(app)

        await pilot.press("f")
        await paste(pilot, "cap")
        await pilot.press("enter")
        await paste(pilot, "ops")
        await pilot.press("enter")
        await paste(pilot, "P1")
        await pilot.press("enter")
        await paste(pilot, "prevent")
        await pilot.press("enter")
        await paste(pilot, "OPS-42")
        await pilot.press("enter")
        await settle(pilot)
        task = last(path, ev.TaskAdded)
        assert (task.text, task.owner) == ("cap", "ops")
        assert (task.priority, task.type, task.link) == ("P1", "prevent", "OPS-42")
        assert "follow-up: cap (owner ops)" in screen_text(app)

        await pilot.press("r", "ctrl+u")
        await paste(pilot, "comms")
        await pilot.press("enter", "ctrl+u")
        await paste(pilot, "carol")
        await pilot.press("enter")
        await settle(pilot)
        role = last(path, ev.RoleAssigned)
        assert (role.role, role.person) == ("comms", "carol")
        assert "comms: carol" in screen_text(app)


async def test_severity_and_status_from_choice_dialogs(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v")
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("down", "enter")  # SEV1 (current) -> SEV2
        await settle(pilot)
        assert last(path, ev.SeveritySet).severity == "SEV2"
        assert " SEV2 " in screen_text(app)

        await pilot.press("u", "down", "enter")  # identified -> monitoring
        await settle(pilot)
        assert last(path, ev.StatusSet).status == "monitoring"
        assert "MONITORING" in screen_text(app)


async def test_status_update_clears_the_reminder(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # The last update was at 07:13 and SEV1 wants one every 30 min: overdue at 08:15.
        assert "STATUS UPDATE DUE" in screen_text(app)
        await settle(
            pilot,
            until=lambda: any("Status update due" in n.message for n in app._notifications),
            timeout=2.5,
        )
        await pilot.press("c")
        for text in ("DNS ok", "throttle", "none"):
            await paste(pilot, text)
            await pilot.press("enter")
        await settle(pilot)
        update = last(path, ev.StatusUpdatePosted)
        assert update.conditions == "DNS ok"
        assert (update.actions, update.needs) == ("throttle", "none")
        text = screen_text(app)
        assert "STATUS UPDATE DUE" not in text
        assert "next status update in 30m00s" in text


async def test_reminder_interval_follows_severity(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path), status_update_intervals={"SEV1": 600.0, "SEV2": 7200.0})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v", "down", "enter")  # SEV2: two hours, last update 62 min ago
        await settle(pilot)
        assert "next status update in 58m00s" in screen_text(app)


async def test_declare_then_rename_on_a_new_log(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    app = make_app(IncidentLog.open(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "no incident declared" in screen_text(app)
        await pilot.press("t")
        await paste(pilot, "5xx")
        await pilot.press("enter")
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("enter")  # SEV2 is preselected
        await settle(pilot)
        opened = last(path, ev.IncidentOpened)
        assert (opened.title, opened.severity, opened.incident_id) == ("5xx", "SEV2", "new")
        assert "5xx" in screen_text(app)

        await pilot.press("t", "ctrl+u")
        await paste(pilot, "5xx east")
        await pilot.press("enter")
        await settle(pilot)
        assert last(path, ev.TitleSet).title == "5xx east"
        assert "5xx east" in screen_text(app)


async def test_cancelled_dialog_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        before = len(logged(path))
        await pilot.press("n")
        await paste(pilot, "no")
        await pilot.press("escape")
        await settle(pilot)
        assert len(logged(path)) == before
        await pilot.press("n", "enter")  # empty note: required, the dialog stays
        await settle(pilot)
        assert isinstance(app.screen, FormDialog)
        assert "Note is required" in screen_text(app)
        await pilot.click("#cancel")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
        assert len(logged(path)) == before


async def test_mouse_clicks_rows_and_buttons(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main_screen.view.probe_table
        await pilot.click(ProbeTable, offset=(5, 4))  # header row + 3 rows down: ec2-launch
        await settle(pilot)
        assert table.selected_target == "ec2-launch"
        assert "Mitigation · ec2-launch" in screen_text(app)
        await pilot.press("n")
        await paste(pilot, "clicked")
        await pilot.click("#submit")
        await settle(pilot)
        assert last(path, ev.NoteAdded).text == "clicked"


async def test_filter_and_sort(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main_screen.view.probe_table
        await pilot.press("slash")
        await paste(pilot, "down")
        await settle(pilot)
        assert sorted(r.key.value for r in table.ordered_rows) == [
            "checkout",
            "dynamodb",
            "dynamodb-dns",
        ]
        assert "3 of 9 targets" in screen_text(app)
        await pilot.press("enter")  # keep the filter, back to the table
        await settle(pilot)
        assert table.has_focus and table.row_count == 3
        await pilot.press("slash", "ctrl+u")
        await paste(pilot, "dynamo")
        await pilot.press("escape")  # escape clears
        await settle(pilot)
        assert table.row_count == 9 and table.filter_text == ""

        await pilot.press("s")  # state -> name
        await settle(pilot)
        assert table.sort_mode == "name"
        order = [r.key.value for r in table.ordered_rows]
        assert order == sorted(order)


@pytest.mark.slow
async def test_a_click_after_a_re_sort_selects_the_row_under_the_pointer(tmp_path: Path) -> None:
    """Rows drawn before a re-sort must not keep their old row numbers (the mouse reads them)."""
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main_screen.view.probe_table
        for mode in ("name", "service", "latency", "state", "name"):
            while table.sort_mode != mode:
                await pilot.press("s")
            await settle(pilot)
            order = [r.key.value for r in table.ordered_rows]
            for row in (1, 4, 7):
                await pilot.click(ProbeTable, offset=(5, 1 + row))  # below the header
                await settle(pilot)
                assert table.selected_target == order[row], (mode, row)


async def test_help_lists_every_key_from_the_registry(tmp_path: Path) -> None:
    from warroom.tui.actions import ACTIONS

    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=(140, 60)) as pilot:
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for spec in ACTIONS:
            assert spec.description in text, spec.name
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_runs_an_action(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon")
        await settle(pilot)
        await paste(pilot, "bookmark")
        await settle(pilot, until=lambda: "Bookmark this moment" in screen_text(app))
        await pilot.press("enter")
        await settle(pilot, until=lambda: isinstance(app.screen, FormDialog))
        await paste(pilot, "pal")
        await pilot.press("enter")
        await settle(pilot)
        assert last(path, ev.BookmarkAdded).label == "pal"


async def test_quit_asks_first(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert app.is_running and not isinstance(app.screen, ConfirmDialog)
        await pilot.press("q", "enter")
        await settle(pilot)
    assert app.return_value == 0


async def test_keys_held_down_never_keep_other_writers_events_off_screen(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        other = IncidentLog.open(path)
        other.append(ev.NoteAdded(text="from the other terminal"))
        other.close()
        written = time.monotonic()
        # Keys go first, but an arrow key held down (auto-repeat, a key every 20 ms: as the
        # terminal sends them) must not hold the catch-up for ever.
        key = 0
        while "from the other terminal" not in screen_text(app):
            assert time.monotonic() - written < 1.0, "the note never appeared while typing"
            key += 1
            app.post_message(Key("down" if key % 20 < 10 else "up", None))
            await asyncio.sleep(0.02)


async def test_events_from_another_writer_appear_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        other = IncidentLog.open(path)  # a second writer, like `warroom note` elsewhere
        other.actor = "bob@laptop"
        other.append(ev.NoteAdded(text="from the other terminal"))
        other.append(
            ev.ProbeStateChanged(
                target="checkout",
                service="checkout",
                from_state="down",
                to_state="up",
                reason="200 OK",
            )
        )
        other.close()
        await settle(
            pilot, until=lambda: "from the other terminal" in screen_text(app), timeout=1.0
        )
        assert app.state.probes["checkout"].state == "up"
        # The console's own next write continues the chain after the other writer's events.
        await pilot.press("n")
        await paste(pilot, "seen")
        await pilot.press("enter")
        await settle(pilot)
        seqs = [e.seq for e in logged(path)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert app.state.last_seq == seqs[-1]


async def test_resume_folds_the_log_back(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await paste(pilot, "before")
        await pilot.press("enter")
        await settle(pilot)
        state = app.state
    app.incident_log.close()  # type: ignore[attr-defined]
    again = make_app(IncidentLog.open(path))
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.state.last_seq == state.last_seq
        assert again.state.notes == state.notes
        assert again.state.runbooks == state.runbooks
        assert "note: before" in screen_text(again)


async def test_read_only_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    write_log(path).close()
    app = make_app(IncidentLog.open(path, readonly=True), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        before = len(logged(path))
        for key in ("n", "b", "v", "u", "c", "t", "r", "f"):
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(app.screen, FormDialog | ChoiceDialog), key
        assert len(logged(path)) == before
        await pilot.press("question_mark")
        await settle(pilot)
        assert "Add a note" not in screen_text(app)  # mutating actions do not exist read-only


async def test_a_key_before_the_first_probe_result_never_sticks_the_panel(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path, []))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "up", "enter")
        await settle(pilot)
        assert "No controls for ." not in screen_text(app)
        assert "Select a service" in screen_text(app)
        other = IncidentLog.open(path)
        other.append(
            ev.ProbeStateChanged(
                target="checkout", service="checkout", from_state="unknown", to_state="down"
            )
        )
        other.close()
        await settle(pilot, until=lambda: "Mitigation · checkout" in screen_text(app))
        await settle(pilot, until=lambda: "No controls for checkout" in screen_text(app))
        assert "No controls for ." not in screen_text(app)


async def test_the_probe_count_speaks_english(tmp_path: Path) -> None:
    """One target is "1 target", not "1 targets"; filtered, "1 of 2 targets"."""
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path, []))
    async with app.run_test(size=SIZE) as pilot:
        other = IncidentLog.open(path)
        up = {"from_state": "unknown", "to_state": "up"}
        other.append(ev.ProbeStateChanged(target="checkout", service="checkout", **up))
        await settle(pilot, until=lambda: "1 target · sort:" in screen_text(app))
        other.append(ev.ProbeStateChanged(target="payments", service="payments", **up))
        other.close()
        await settle(pilot, until=lambda: "2 targets · sort:" in screen_text(app))
        await pilot.press("slash")
        await paste(pilot, "pay")
        await settle(pilot, until=lambda: "1 of 2 targets · sort:" in screen_text(app))
