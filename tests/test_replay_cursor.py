"""Replay's core: every position shows exactly the reducer's state after that many events."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import orjson
import pytest

from warroom import events as ev
from warroom.replay.cursor import ReplayCursor
from warroom.replay.source import ReplaySource
from warroom.state import IncidentState, fold, reduce

LOG = Path(__file__).parent / "fixtures" / "incident-aws-drill.jsonl"


def _events(path: Path = LOG) -> list[ev.BaseEvent]:
    return [ev.parse_event(orjson.loads(line)) for line in path.read_bytes().splitlines()]


def _prefix_states(events: list[ev.BaseEvent]) -> list[IncidentState]:
    states = [IncidentState()]
    for event in events:
        states.append(reduce(states[-1], event))
    return states


@pytest.fixture
def events() -> list[ev.BaseEvent]:
    return _events()


@pytest.mark.parametrize("every", [1, 7, 500])
def test_every_position_equals_reducing_the_first_k_events(
    events: list[ev.BaseEvent], every: int
) -> None:
    expected = _prefix_states(events)
    with ReplaySource(LOG) as source:
        cursor = ReplayCursor(source, every=every)
        assert len(cursor) == len(events) == 93
        order = list(range(len(events) + 1))
        random.Random(every).shuffle(order)
        for k in order:
            assert cursor.seek(k) == expected[k], f"position {k}"
            assert cursor.position == k
        # Sequential stepping and stepping back give the same states.
        cursor.seek(0)
        for k in range(1, len(events) + 1):
            assert cursor.step() == expected[k]
        for k in range(len(events) - 1, -1, -1):
            assert cursor.step(-1) == expected[k]
        assert cursor.state_at(10**9) == fold(events)


def test_background_checkpoints_then_seeks_are_exact(events: list[ev.BaseEvent]) -> None:
    expected = _prefix_states(events)
    with ReplaySource(LOG) as source:
        cursor = ReplayCursor(source, every=10)
        assert cursor.build_checkpoints() == 93
        assert cursor.checkpoint_count == 10  # positions 0, 10, ..., 90
        for k in (93, 0, 55, 90, 91, 9, 40):
            assert cursor.seek(k) == expected[k]


def test_stepping_by_action_lands_on_operator_actions_only(events: list[ev.BaseEvent]) -> None:
    action_positions = [i + 1 for i, e in enumerate(events) if ev.is_operator_action(e)]
    with ReplaySource(LOG) as source:
        cursor = ReplayCursor(source, every=16)
        visited = []
        while cursor.next_action() is not None:
            assert ev.is_operator_action(cursor.current_event)
            visited.append(cursor.position)
        assert visited == action_positions
        assert cursor.next_action() is None
        back = []
        while cursor.prev_action() is not None:
            assert ev.is_operator_action(cursor.current_event)
            back.append(cursor.position)
        assert back == action_positions[-2::-1]


def test_bookmarks_time_and_fraction(events: list[ev.BaseEvent]) -> None:
    with ReplaySource(LOG) as source:
        cursor = ReplayCursor(source)
        marks = cursor.bookmarks()
        assert [m.label for m in marks] == ["DNS record restored", "all probes green"]
        first = marks[0]
        assert isinstance(events[first.position - 1], ev.BookmarkAdded)
        assert cursor.next_bookmark() == first
        cursor.seek(first.position)
        assert cursor.next_bookmark() == marks[1]
        assert cursor.prev_bookmark() is None
        # Seek by time: the state as it was at 14:04:33, when the bookmark was written.
        state = cursor.seek_time("2025-11-18T14:04:33Z")
        assert cursor.position == first.position
        assert state.bookmarks[-1].text == "DNS record restored"
        cursor.seek_time("2025-11-18T14:04:32.999Z")
        assert cursor.position == first.position - 1
        cursor.seek_time("2025-11-18T13:00:00Z")
        assert cursor.position == 0
        cursor.seek_time("2025-11-19T00:00:00Z")
        assert cursor.at_end
        cursor.seek_fraction(0.5)
        assert cursor.position == 46
        cursor.seek_fraction(1.0)
        assert cursor.position == 93


def test_torn_log_replays_its_valid_prefix(tmp_path: Path, events: list[ev.BaseEvent]) -> None:
    data = LOG.read_bytes()
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(data[:-30])
    with ReplaySource(torn) as source:
        cursor = ReplayCursor(source, every=8)
        assert len(cursor) == 92
        assert cursor.seek(10**6) == fold(events[:92])


def test_corrupt_line_ends_the_replayable_part(tmp_path: Path, events: list[ev.BaseEvent]) -> None:
    lines = LOG.read_bytes().splitlines(keepends=True)
    lines[60] = b'{"not": "an event"\n'
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines))
    with ReplaySource(bad) as source:
        cursor = ReplayCursor(source, every=8)
        assert len(cursor) == 93  # not known until the line is read
        state = cursor.seek(93)
        assert len(cursor) == 60 and cursor.position == 60
        assert source.bad_line == 61 and "JSON" in source.bad_reason
        assert state == fold(events[:60])


def test_refresh_picks_up_appended_lines(tmp_path: Path, events: list[ev.BaseEvent]) -> None:
    lines = LOG.read_bytes().splitlines(keepends=True)
    live = tmp_path / "live.jsonl"
    live.write_bytes(b"".join(lines[:50]) + lines[50][:20])  # a write in progress
    with ReplaySource(live) as source:
        cursor = ReplayCursor(source, every=8)
        assert len(cursor) == 50
        assert cursor.seek(50) == fold(events[:50])
        with live.open("ab") as handle:
            handle.write(lines[50][20:] + b"".join(lines[51:]))
        assert source.refresh() == 43
        assert cursor.seek(93) == fold(events)
        assert cursor.next_action_position() is None


def test_rewritten_tail_is_reindexed(tmp_path: Path, events: list[ev.BaseEvent]) -> None:
    lines = LOG.read_bytes().splitlines(keepends=True)
    live = tmp_path / "live.jsonl"
    # A garbage last line (a crash's zero-filled page) that a writer later sets aside.
    live.write_bytes(b"".join(lines[:50]) + b"\0" * 40 + b"\n")
    with ReplaySource(live) as source:
        cursor = ReplayCursor(source, every=8)
        cursor.seek(51)
        assert len(cursor) == 50 and source.bad_line == 51
        live.write_bytes(b"".join(lines))  # the writer truncated it and appended
        source.refresh()
        assert source.generation == 1 and source.bad_line is None
        assert cursor.seek(93) == fold(events)


def test_a_long_log_gets_at_most_max_checkpoints_and_seeks_stay_exact(
    events: list[ev.BaseEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    from warroom.replay import cursor as cursor_module

    # The fixture stands in for a long log: 93 events, room for 9 checkpoints of 5.
    monkeypatch.setattr(cursor_module, "CHECKPOINT_EVERY", 5)
    monkeypatch.setattr(cursor_module, "MAX_CHECKPOINTS", 9)
    monkeypatch.setattr(cursor_module, "FREEZE_AFTER", 3)
    expected = _prefix_states(events)
    with ReplaySource(LOG) as source:
        cursor = ReplayCursor(source)
        assert cursor.every == 11  # ceil(93 / 9), not 5
        assert cursor.build_checkpoints() == 93
        assert cursor.checkpoint_count <= 9 + 1  # with the empty state at 0
        for k in (92, 0, 45, 11, 12, 93, 33):
            assert cursor.seek(k) == expected[k], k
    gc.unfreeze()  # the built checkpoints were frozen; the test process goes on
