"""Pilot tests of keys and marks: the runbook screen's j/k/g/G, remembered cursor and marks in
both panes, its incident header, and the key bar following the focused pane."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Markdown, OptionList
from tui_harness import SIZE, logged, make_app, runbook, screen_text, settle, write_log

from warroom import events as ev
from warroom.tui.screens.runbook import RunbookScreen, marked_body

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow


async def test_checklist_keys_marks_and_remembered_cursor(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    rb = runbook()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await settle(pilot, until=lambda: isinstance(app.screen, RunbookScreen))
        steps = app.screen.query_one("#steps", OptionList)
        assert steps.highlighted == 0
        await pilot.press("j", "j")
        assert steps.highlighted == 2
        await pilot.press("k")
        assert steps.highlighted == 1
        await pilot.press("G")
        assert steps.highlighted == len(rb.steps) - 1
        await pilot.press("g")
        assert steps.highlighted == 0
        await pilot.press("j", "d")  # step 2 done: logged, then [x] in both panes
        await settle(pilot)
        done = [e for e in logged(path) if isinstance(e, ev.StepSet)][-1]
        assert (done.step, done.status) == (rb.steps[1].id, "done")
        markdown = app.screen.query_one("#runbook-doc Markdown", Markdown)
        await settle(pilot, until=lambda: "[x] Pause the DNS automation" in markdown.source)
        await settle(pilot, until=lambda: "[x] Pause the DNS" in screen_text(app))
        await pilot.press("j", "escape")
        await settle(pilot)
        await pilot.press("o")  # reopened: the cursor is where it was left
        await settle(pilot, until=lambda: isinstance(app.screen, RunbookScreen))
        assert app.screen.query_one("#steps", OptionList).highlighted == 2


def test_marked_body_agrees_with_the_log() -> None:
    rb = runbook()
    ids = [s.id for s in rb.steps]
    views = {
        ids[0]: ev_view("done", verified=True),
        ids[1]: ev_view("skipped"),
    }
    body = marked_body(rb.body, ids, views)
    assert "- [x] Confirm the record is empty ✔ *verified*" in body
    assert "- [-] ~~Pause the DNS automation so it cannot empty the record again~~" in body
    assert "- [ ] Restore the endpoint's DNS record" in body
    # Boxes that do not match the steps one to one: the text is left as written.
    assert marked_body("- [ ] only one", ids, views) == "- [ ] only one"


def ev_view(status: str, verified: bool = False):  # type: ignore[no-untyped-def]
    from warroom.state import StepView

    return StepView(status=status, verified=verified)


async def test_the_runbook_screen_keeps_the_incident_in_view(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await settle(pilot, until=lambda: isinstance(app.screen, RunbookScreen))
        text = screen_text(app)
        assert "us-east-1: DynamoDB endpoint unreachable" in text and "SEV1" in text
        assert "IDENTIFIED" in text and "elapsed 1h21m" in text
        assert "failing: ✖ checkout" in text and "✖ dynamodb-dns" in text


async def test_the_key_bar_shows_the_focused_panes_keys(tmp_path: Path) -> None:
    from textual.widgets import Input

    from warroom.tui.widgets.control_panel import ControlPanel
    from warroom.tui.widgets.key_bar import KeyBar
    from warroom.tui.widgets.log_tail import LogTail
    from warroom.tui.widgets.runbook_checklist import RunbookChecklist

    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bar = app.main_screen.query_one(KeyBar)

        def shown() -> str:
            return " ".join(str(bar.render()).split())

        # The probe list has focus: its own keys first, then the screen's, then the app's.
        assert shown().startswith("⏎ Details j/k Move S Reverse sort / Filter"), shown()
        assert "? Help" in shown() and "Revert" not in shown()
        await pilot.press("tab")  # to the runbooks pane
        await settle(pilot, until=lambda: isinstance(app.screen.focused, RunbookChecklist))
        assert shown().startswith("⏎ Open / Filter") and "Details" not in shown()
        app.main_screen.query_one(ControlPanel).option_list.focus()
        await settle(pilot, until=lambda: "Revert" in shown())
        assert shown().startswith("⏎ Change z Revert e Extend"), shown()
        assert "Details" not in shown()
        app.main_screen.query_one(LogTail).focus()
        scroll_keys = "end Follow pgup Page up pgdn Page down"
        await settle(pilot, until=lambda: shown().startswith(scroll_keys))
        app.main_screen.view.probe_table.focus()
        await settle(pilot, until=lambda: shown().startswith("⏎ Details"))
        await pilot.press("n")  # a dialog: its keys, none of the screen below
        await settle(pilot, until=lambda: isinstance(app.screen.focused, Input))
        dialog_bar = app.screen.query_one(KeyBar)
        text = " ".join(str(dialog_bar.render()).split())
        assert text.startswith("⏎ Next field / OK tab Move esc Cancel"), text
        assert "Filter" not in text
        await pilot.press("escape")
        await settle(pilot)
        assert shown().startswith("⏎ Details")


async def test_the_key_bar_keeps_the_keys_that_matter_at_80x24(tmp_path: Path) -> None:
    from warroom.tui.widgets.key_bar import KeyBar

    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        line = screen_text(app).splitlines()[-1]
        for key in ("⏎Details", "j/kMove", "/Filter", "oRunbook", "?Help", ":Commands", "qQuit"):
            assert key in line, line
        await pilot.press("o")
        await settle(pilot, until=lambda: isinstance(app.screen, RunbookScreen))
        line = str(app.screen.query_one(KeyBar).render())
        for key in ("dDone", "xSkip", "!Run", "aPull", "escBack"):
            assert key in screen_text(app).splitlines()[-1], line


async def test_the_document_follows_the_selected_step(tmp_path: Path) -> None:
    from textual.containers import VerticalScroll

    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await settle(pilot, until=lambda: isinstance(app.screen, RunbookScreen))
        doc = app.screen.query_one("#runbook-doc", VerticalScroll)
        top = doc.scroll_y
        await pilot.press("G")  # the last step is far down the document
        await settle(pilot, until=lambda: doc.scroll_y > top)
        await settle(pilot, until=lambda: "Check every DynamoDB target" in screen_text(app))
        far = doc.scroll_y
        await pilot.press("g")
        await settle(pilot, until=lambda: doc.scroll_y < far)
        assert "Confirm the record is empty" in screen_text(app)
