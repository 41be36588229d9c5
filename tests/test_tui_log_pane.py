"""The log pane never hides the newest event: it follows the end, wraps long lines, and
says how many events arrived while the responder scrolled back."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from tui_harness import incident_events, make_app, screen_text, settle, write_log

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.tui.widgets.log_tail import BURST_LINES

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

LONG = "the DNS team says " + "the record is being restored by hand, " * 6 + "END-OF-NOTE"


def long_notes(count: int) -> list[ev.BaseEvent]:
    return [
        ev.NoteAdded(text=f"{i}: {LONG}").model_copy(
            update={"ts": f"2025-10-20T08:0{i % 10}:00.000000Z", "actor": "bob@warroom"}
        )
        for i in range(count)
    ]


async def test_a_note_from_another_process_appears_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path, incident_events() + long_notes(12)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        subprocess.run(
            [sys.executable, "-m", "warroom", "note", str(path), "paged the DNS team"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        written = time.monotonic()
        await settle(pilot, until=lambda: "paged the DNS team" in screen_text(app), timeout=1.0)
        assert time.monotonic() - written < 1.0


async def test_long_lines_wrap_and_the_newest_stays_in_view(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path, incident_events() + long_notes(12)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "END-OF-NOTE" in text  # the newest note's last words, wrapped, not cut off


@pytest.mark.slow
async def test_scrolled_back_counts_new_events_and_end_follows_again(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path, incident_events() + long_notes(12)))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        pane = app.main_screen.view.log_tail
        pane.focus()
        await pilot.press("home")
        await settle(pilot)
        assert not pane.following
        other = IncidentLog.open(path)
        other.append(ev.NoteAdded(text="while you were away"))
        other.append(ev.NoteAdded(text="and again"))
        other.close()
        await settle(pilot, until=lambda: "2 new below" in screen_text(app))
        assert "and again" not in screen_text(app)
        await pilot.press("end")
        await settle(pilot, until=lambda: "and again" in screen_text(app))
        assert "new below" not in screen_text(app)
        other = IncidentLog.open(path)
        other.append(ev.NoteAdded(text="following again"))
        other.close()
        await settle(pilot, until=lambda: "following again" in screen_text(app))


async def test_a_flood_of_probe_changes_is_counted_and_never_hides_a_note(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    app = make_app(write_log(path))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        flips = [
            ev.ProbeStateChanged(
                target=f"web-{i}",
                service="web",
                from_state="up" if i % 2 else "down",
                to_state="down" if i % 2 else "up",
            )
            for i in range(300)
        ]
        pane = app.main_screen.view.log_tail
        before = len(pane.texts)
        other = IncidentLog.open(path)
        other.append_many([*flips[:150], ev.NoteAdded(text="paged the DNS team"), *flips[150:]])
        other.close()
        await settle(pilot, until=lambda: any("web-299" in t.plain for t in pane.texts))
        lines = [t.plain for t in pane.texts][before:]
        # The count of what was left out, the note (an operator's, always drawn), the newest;
        # the reader may have met the flood in two parts, each drawn so.
        assert any(line.startswith("… ") and "more events" in line for line in lines), lines
        assert any("paged the DNS team" in line for line in lines)
        assert "web-299" in lines[-1]
        burst = max(BURST_LINES, pane.size.height)
        assert len(lines) <= 2 * (2 + burst), "a flood costs a bounded number of lines per repaint"
