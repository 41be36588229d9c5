"""The console session without a terminal: store, fold, policies, freshness, write order."""

from __future__ import annotations

import asyncio
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
