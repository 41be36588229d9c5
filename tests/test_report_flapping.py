"""Flapping collapse: a pure function the report's timelines and the console's log pane share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warroom import events as ev
from warroom.report.flapping import Flapping, StateChange, collapse, collapse_events

T0 = datetime(2025, 10, 20, 6, 0, tzinfo=UTC)


def _change(target: str, t: float, frm: str, to: str) -> ev.ProbeStateChanged:
    ts = ev.format_ts(T0 + timedelta(seconds=t))
    return ev.ProbeStateChanged(target=target, from_state=frm, to_state=to, ts=ts, seq=int(t))


def _of(event: ev.BaseEvent) -> StateChange | None:
    if isinstance(event, ev.ProbeStateChanged):
        return StateChange(event.target, event.ts, event.from_state, event.to_state)
    return None


def test_a_run_of_quick_changes_is_one_line_with_count_and_span() -> None:
    events: list[ev.BaseEvent] = []
    state = "up"
    for i in range(10):
        new = "degraded" if state == "up" else "up"
        events.append(_change("web", 100 + 5 * i, state, new))
        state = new
        if i == 3:
            events.append(ev.NoteAdded(text="in between", ts=ev.format_ts(T0), seq=999))
    out = collapse(events, _of, seq_of=lambda e: e.seq)
    assert len(out) == 2
    flap, note = out
    assert isinstance(flap, Flapping) and isinstance(note, ev.NoteAdded)
    assert (flap.count, flap.span_s, flap.final_state) == (10, 45.0, "up")
    assert (flap.first_seq, flap.last_seq) == (100, 145)
    assert flap.summary() == "web flapping up/degraded: 10 changes over 45s, ended up"


def test_slow_or_few_changes_and_other_targets_stay_as_they_are() -> None:
    events = [
        _change("a", 0, "up", "down"),
        _change("b", 1, "up", "down"),
        _change("a", 100, "down", "up"),  # more than 30 s later: not a run
        _change("b", 2, "down", "up"),
        _change("b", 3, "up", "down"),  # b: 3 changes only
        _change("a", 200, "up", "down"),
    ]
    assert collapse(events, _of) == events


def test_two_runs_of_one_target_are_two_lines() -> None:
    events = [_change("a", t, "up", "down") for t in (0, 1, 2, 3)]
    events += [_change("a", t, "down", "up") for t in (100, 101, 102, 103, 104)]
    out = collapse(events, _of)
    assert [x.count for x in out if isinstance(x, Flapping)] == [4, 5]


def test_collapse_events_for_the_console_log_pane() -> None:
    events: list[ev.BaseEvent] = [_change("a", t, "up", "down") for t in (0, 1, 2, 3, 4)]
    out = collapse_events(events)
    assert len(out) == 1 and isinstance(out[0], Flapping) and out[0].last_seq == 4
