"""Logs made mostly of notes: replay checkpoints hold each note once, and report and replay
agree on the facts (one reducer, one clock)."""

from __future__ import annotations

from pathlib import Path

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.replay.cursor import ReplayCursor
from warroom.replay.source import ReplaySource
from warroom.report.builder import report_from_log
from warroom.state import Chain, fold


def _notes_log(path: Path, count: int) -> None:
    with IncidentLog.open(path, create=True) as log:
        log.append(ev.IncidentOpened(incident_id="n", title="notes"))
        log.append(ev.ProbeStateChanged(target="a", from_state="unknown", to_state="up"))
        events: list[ev.BaseEvent] = []
        for i in range(count):
            events.append(ev.NoteAdded(text=f"note {i}"))
            if i % 100 == 50:
                to = "down" if (i // 100) % 2 == 0 else "up"
                events.append(
                    ev.ProbeStateChanged(
                        target="a", from_state="up" if to == "down" else "down", to_state=to
                    )
                )
        log.append_many(events, sync=False)


def test_replay_checkpoints_share_their_notes(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    _notes_log(path, 2000)
    with ReplaySource(path) as source:
        cursor = ReplayCursor(source, every=100)
        cursor.build_checkpoints()
        states = cursor._checkpoints[1:]
        assert len(states) >= 19
        lists = {id(s.notes._items) for s in states if isinstance(s.notes, Chain)}
        assert len(lists) == 1, "each checkpoint copied the notes"
        # Going back and folding forward again reuses the same items too.
        cursor.seek(150)
        again = cursor.seek(1050)
        assert isinstance(again.notes, Chain) and id(again.notes._items) in lists
        assert again.notes[len(states[9].notes) - 1] is states[9].notes[-1]
        final = cursor.seek(len(cursor))
        report = report_from_log(path, verify=False)
        assert len(final.notes) == len(report.notes) == 2000
        # Impact minutes: the report's are the reducer's, as replay shows them.
        view = final.services["a"]
        still = view.state == "down"
        tail = (ev.parse_ts(final.last_ts) - ev.parse_ts(view.since)).total_seconds()
        assert report.impact[0].down_s == view.down_s + (tail if still else 0.0)
        assert report.impact[0].final_state == view.state


def test_checkpoints_keep_their_tail_as_line_numbers_and_seeks_restore_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    _notes_log(path, 1200)
    with ReplaySource(path) as source:
        events = list(source.events(0, len(source)))
        cursor = ReplayCursor(source, every=100)
        cursor.build_checkpoints()
        assert all(cp.tail == () for cp in cursor._checkpoints)
        for k in (1234, 250, 999, 1000, 7, len(source)):
            assert cursor.seek(k) == fold(events[:k]), k
            assert len(cursor.state.tail) == min(200, k)
