"""The shared-incident parts of the session that need no database: ordering and the header."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from warroom import events as ev
from warroom.session.shared import SharedFeed, SharedView, shared_line
from warroom.store.team import Team


class NoStore:
    generation = 0

    def status(self) -> Any: ...

    def follow(self, from_seq: int = 1, interval: float = 0.2) -> AsyncIterator[ev.BaseEvent]:
        raise NotImplementedError

    def read(self, from_seq: int = 1) -> Iterator[ev.BaseEvent]:
        return iter(())

    def try_lease(self, name: str, holder: str, ttl: float) -> tuple[bool, str]:
        return False, ""


def note(seq: int) -> ev.BaseEvent:
    return ev.NoteAdded(seq=seq, text=f"n{seq}")


def test_an_event_this_console_wrote_waits_for_the_one_another_console_stored_before_it() -> None:
    last = [3]
    feed = SharedFeed(NoStore(), lambda: last[0])
    feed.hold([note(5)])  # ours, acknowledged before #4 arrived
    assert feed.poll() == []
    feed.hold([note(4), note(5)])  # the follower brings #4 (and ours again)
    assert [e.seq for e in feed.poll()] == [4, 5]
    last[0] = 5
    assert feed.poll() == []


def view(**kw: Any) -> SharedView:
    base: dict[str, Any] = dict(
        online=True,
        offline_since=None,
        pending=0,
        error="",
        tampered_seq=None,
        team=(),
        prober="",
        probing_here=False,
    )
    return SharedView(**{**base, **kw})


def text(v: SharedView) -> str:
    return "".join(t for t, _ in shared_line(v))


def test_the_header_says_offline_since_when_and_how_many_events_wait() -> None:
    since = datetime(2026, 12, 1, 3, 12, 9, tzinfo=UTC).timestamp()
    line = text(view(online=False, offline_since=since, pending=3, error="gone"))
    assert "OFFLINE since 03:12:09 — 3 events waiting" in line
    assert "1 event waiting" in text(view(online=False, offline_since=since, pending=1))


def test_tampering_comes_first_and_hostile_names_stay_one_line() -> None:
    line = text(view(tampered_seq=42, team=("ana@a", "evil\x1b[2J\nname"), prober="x\ny"))
    assert line.startswith(" TAMPERED at #42 ")
    assert "\x1b" not in line and "\n" not in line
    assert text(view(probing_here=True)).strip() == "probes here"
    assert Team().connected(datetime.now(UTC)) == []


def test_the_log_pane_says_a_change_needs_a_second_and_names_the_machine() -> None:
    from warroom.tui.widgets.log_tail import event_line

    asked = ev.ControlRequested(
        seq=7,
        actor="ana@alpha",
        request_id="r1",
        service="db",
        control="failover",
        to_value=True,
        reason="east is gone",
        needs_second=True,
    )
    assert "ana@alpha: db.failover" in event_line(asked).plain
    assert event_line(asked).plain.endswith("needs a second responder")
    applied = ev.ControlApplied(
        seq=9, actor="ana@alpha", request_id="r1", service="db", control="failover", value=True
    )
    assert "[alpha] db.failover" in event_line(applied).plain
