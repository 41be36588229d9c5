"""The console session without a terminal: store, fold, policies, freshness, write order."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tui_harness import NOW, incident_events, runbooks, write_log

from warroom import events as ev
from warroom.log.store import EventStore, IncidentLog, read_events
from warroom.session import ConsoleSession, assess
from warroom.session.policies import reminder_marker, status_intervals
from warroom.state import fold

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_the_jsonl_log_is_an_event_store(tmp_path: Path) -> None:
    with IncidentLog.open(tmp_path / "i.jsonl") as log:
        assert isinstance(log, EventStore)


def test_no_engine_makes_every_target_stale_since_its_last_result() -> None:
    seen = {"a": T0, "b": T0 + timedelta(seconds=5)}
    fresh = assess(["a", "b"], seen, T0 + timedelta(seconds=6), {}, "")
    assert fresh.stale == {"a", "b"} and fresh.since == T0
    assert "no probe engine running" in fresh.reason


def test_data_older_than_three_intervals_is_stale() -> None:
    intervals = {"a": 5.0, "b": 5.0}
    seen = {"a": T0, "b": T0 + timedelta(seconds=10)}
    now = T0 + timedelta(seconds=16)
    fresh = assess(["a", "b"], seen, now, intervals)
    assert fresh.stale == {"a"} and fresh.since == T0
    assert assess(["a", "b"], seen, T0 + timedelta(seconds=14), intervals).live


def test_a_target_the_engine_does_not_probe_is_stale() -> None:
    fresh = assess(["old", "a"], {"a": T0, "old": T0}, T0, {"a": 5.0})
    assert fresh.stale == {"old"} and fresh.reason == "not probed"


def test_reminder_marker_is_set_only_when_overdue() -> None:
    folded = fold(incident_events())
    intervals = status_intervals(1800)
    assert reminder_marker(folded, NOW, intervals)
    assert not reminder_marker(folded, NOW - timedelta(minutes=60), intervals)


async def test_writes_keep_their_order_and_leave_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    session = ConsoleSession(write_log(path, []), actor="ana@host")
    tasks = [session.record(ev.NoteAdded(text=f"n{i}")) for i in range(20)]
    # Nothing is folded before the writes come back: the loop did not wait for the disk.
    assert session.state.last_seq == 0
    stamped = await asyncio.gather(*tasks)
    assert [e.text for e in stamped] == [f"n{i}" for i in range(20)]  # type: ignore[attr-defined]
    assert [e.text for e in read_events(path)] == [f"n{i}" for i in range(20)]  # type: ignore[attr-defined]
    assert [n.text for n in session.state.notes] == [f"n{i}" for i in range(20)]
    await session.aclose()


async def test_other_writers_are_folded_and_verifications_logged_once(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    log = write_log(path)
    changes: list[str] = []
    session = ConsoleSession(log, runbooks=runbooks(), clock=lambda: NOW)
    session.subscribe(lambda change: changes.append(change.kind))
    assert session.poll() and "state" in changes
    await session.idle()
    before = len([e for e in read_events(path) if isinstance(e, ev.StepVerified)])
    assert session.suggested and session.suggested[0][0] == "dynamodb-dns"
    other = IncidentLog.open(path)
    other.append(
        ev.ProbeStateChanged(
            target="dynamodb-dns", service="dynamodb", from_state="down", to_state="up"
        )
    )
    other.close()
    session.poll()
    session.poll()  # a second poll before the write lands must not log it twice
    await session.idle()
    verified = [e for e in read_events(path) if isinstance(e, ev.StepVerified)][before:]
    assert sorted((v.step, v.holds) for v in verified) == sorted(
        [
            ("confirm-the-record-is-empty", False),
            ("restore-the-endpoints-dns-record", True),
        ]
    )
    session.poll()
    await session.idle()
    assert len([e for e in read_events(path) if isinstance(e, ev.StepVerified)]) == before + 2
    await session.aclose()


async def test_a_failed_write_is_told_not_folded(tmp_path: Path) -> None:
    log = write_log(tmp_path / "i.jsonl", [])
    told: list[tuple[str, str]] = []
    session = ConsoleSession(log)
    session.subscribe(lambda change: told.append((change.kind, change.text)))
    log.close()
    assert await session.record(ev.NoteAdded(text="lost?")) is None
    assert told and told[0][0] == "error" and "not recorded" in told[0][1]
    assert session.state.notes == ()
    await session.aclose()


async def test_poll_soon_reads_and_folds_off_the_loop_and_commits_on_it(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    session = ConsoleSession(write_log(path, []), actor="ana@host")
    told: list[str] = []
    session.subscribe(lambda change: told.append(change.kind))
    other = IncidentLog.open(path)
    other.append_many([ev.NoteAdded(text=f"other {i}") for i in range(50)])
    session.poll_soon()
    assert session.state.last_seq == 0  # the loop did not read or fold
    while session.state.last_seq < 50:
        await asyncio.sleep(0.01)
    assert [n.text for n in session.state.notes] == [f"other {i}" for i in range(50)]
    assert "state" in told
    await session.aclose()


async def test_own_writes_during_a_background_read_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    session = ConsoleSession(write_log(path, []), actor="ana@host")
    other = IncidentLog.open(path)
    for round_ in range(20):
        other.append_many([ev.NoteAdded(text=f"other {round_}.{i}") for i in range(5)])
        session.poll_soon()
        await session.record(ev.NoteAdded(text=f"mine {round_}"))
    session.poll()  # waits for a read still in flight, then reads the rest
    stored = [e.text for e in read_events(path)]  # type: ignore[attr-defined]
    assert [n.text for n in session.state.notes] == stored
    assert len(stored) == 120 and session.state.last_seq == 120
    await session.aclose()


async def test_a_read_that_ends_after_an_own_write_does_not_undo_it(tmp_path: Path) -> None:
    """A slow disk: the reader read nothing new, this console then wrote and folded a note,
    and only then did the read come back (from the state before the note)."""
    path = tmp_path / "i.jsonl"
    session = ConsoleSession(write_log(path, [ev.NoteAdded(text="first")]), actor="ana@host")
    session.poll()
    follower = session.follower
    assert follower is not None
    read, gate = follower.poll, threading.Event()

    def slow_poll(limit: int | None = None) -> list[ev.BaseEvent]:
        events = read(limit)
        gate.wait(5)
        return events

    follower.poll = slow_poll  # type: ignore[method-assign]
    session.poll_soon()
    await session.record(ev.NoteAdded(text="mine"))
    assert [n.text for n in session.state.notes] == ["first", "mine"]
    gate.set()
    await session.idle()
    assert [n.text for n in session.state.notes] == ["first", "mine"]
    await session.aclose()


async def test_a_bad_line_met_by_the_reader_is_said_once_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    session = ConsoleSession(write_log(path, [ev.NoteAdded(text="first")]), actor="ana@host")
    session.poll()
    told: list[tuple[str, str, bool]] = []
    loop_thread = threading.current_thread()
    session.subscribe(
        lambda c: told.append((c.kind, c.text, threading.current_thread() is loop_thread))
    )
    scratch = tmp_path / "s.jsonl"
    scratch.write_bytes(path.read_bytes())
    with IncidentLog.open(scratch) as other:
        other.append(ev.NoteAdded(text="after the junk", actor="bob"))
    after = scratch.read_text().splitlines()[-1] + "\n"
    with path.open("a") as raw:  # one write: the junk is in the middle, never a torn tail
        raw.write("{not json\n" + after)
    session.poll_soon()
    while len(session.state.notes) < 2:
        await asyncio.sleep(0.01)
    problems = [(text, on_loop) for kind, text, on_loop in told if kind == "problem"]
    assert len(problems) == 1 and f"{path}:2" in problems[0][0], problems
    assert problems[0][1], "listeners are told on the loop's thread"
    assert session.state.notes[-1].text == "after the junk"
    await session.aclose()
