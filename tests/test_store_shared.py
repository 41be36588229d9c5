"""A console's shared incident while the database goes away and comes back (real server)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pg import PgServer
from processes import wait_until

from warroom import events as ev
from warroom.log import codec
from warroom.log.verify import verify_log
from warroom.store import read_events
from warroom.store.pg import EID, PgStore
from warroom.store.shared import OFFLINE_HASH, OFFLINE_SEQ, SharedIncident, is_merged_offline
from warroom.store.transfer import export, verify_url


def _consume(
    shared: SharedIncident,
    into: list[ev.BaseEvent],
    stop: threading.Event,
    merges: list[tuple[int, list[ev.BaseEvent]]] | None = None,
) -> None:
    def merged() -> None:
        if merges is not None:
            merges.append((shared.generation, list(shared.read())))

    async def main() -> None:
        async def pump() -> None:
            async for event in shared.follow(on_merged=merged):
                into.append(event)

        task = asyncio.create_task(pump())
        while not stop.is_set():
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(main())


@pytest.mark.slow
def test_offline_events_and_levers_survive_an_outage_and_merge_into_one_verified_chain(
    pg: PgServer, pg_url: str, tmp_path: Path
) -> None:
    mirror = tmp_path / "a.shared.jsonl"
    seen: list[ev.BaseEvent] = []
    merges: list[tuple[int, list[ev.BaseEvent]]] = []
    stop = threading.Event()
    shared = SharedIncident.open(pg_url, mirror=mirror)
    consumer = threading.Thread(target=_consume, args=(shared, seen, stop, merges))
    consumer.start()
    try:
        for i in range(3):
            shared.append(ev.NoteAdded(text=f"online {i}"))
        assert wait_until(lambda: shared._follower.last_seq == 3, timeout=5)
        pg.stop()
        assert wait_until(lambda: not shared.status().online, timeout=5)
        lever = ev.ControlRequested(
            request_id="r1", service="db", control="read_only", to_value=True, reason="disk"
        )
        offline = [shared.append(ev.NoteAdded(text=f"offline {i}")) for i in range(3)]
        time.sleep(2)  # down for a while, not just a blip
        offline.append(shared.append(lever))
        assert [e.seq for e in offline] == [4, 5, 6, 7]
        assert offline[0].prev == shared._follower.head  # chained from the last shared head
        status = shared.status()
        assert (status.online, status.pending) == (False, 4) and status.error
        assert "database unavailable" in status.error
        pg.start()
        # Another responder gets in first: the merged events land after theirs.
        with PgStore.open(pg_url) as other:
            other.append(ev.NoteAdded(text="from bravo"))
        assert wait_until(lambda: shared.status().online and not shared.status().pending, 10)
        shared.append(ev.NoteAdded(text="back online"))
        assert wait_until(lambda: shared._follower.last_seq == 9, timeout=5)
        assert wait_until(lambda: len(seen) == 9, timeout=5)
        # The merge was told to the consumer once, by which time `read()` held the shared
        # order: what a console re-folds (the merged copies themselves are not yielded).
        assert wait_until(lambda: merges, timeout=5)
        ((generation, order),) = merges
        assert generation == shared.generation == 1
        assert [e.seq for e in order][:8] == list(range(1, 9))
        assert [e.seq for e in order if is_merged_offline(e)] == [5, 6, 7, 8]
    finally:
        stop.set()
        consumer.join()
        shared.close()
    out = tmp_path / "export.jsonl"
    export(pg_url, out)
    assert verify_log(out).ok and verify_url(pg_url).ok
    assert out.read_bytes() == mirror.read_bytes()
    stored = list(read_events(pg_url))
    merged = [e for e in stored if is_merged_offline(e)]
    assert [e.model_extra[OFFLINE_SEQ] for e in merged] == [4, 5, 6, 7]  # type: ignore[index]
    assert [e.model_extra[OFFLINE_HASH] for e in merged] == [e.hash for e in offline]  # type: ignore[index]
    assert isinstance(merged[-1], ev.ControlRequested) and merged[-1].request_id == "r1"
    # Same ids as written offline: stored once each, whatever retried the merge.
    assert {e.model_extra[EID] for e in merged} == {e.model_extra[EID] for e in offline}  # type: ignore[index]
    # The offline segment is kept and its chain starts from the shared head it was written on.
    (segment,) = tmp_path.glob("a.shared.offline-merged-*.jsonl")
    lines = [codec.decode(line) for line in segment.read_bytes().splitlines()]
    assert [line["seq"] for line in lines] == [4, 5, 6, 7]
    prev = stored[2].hash
    for line, raw in zip(lines, segment.read_bytes().splitlines(), strict=True):
        assert line["prev"] == prev and codec.computed_hash(raw, line) == line["hash"]
        prev = line["hash"]
    # The console saw each event once: the merged copies were not yielded again.
    texts = [getattr(e, "text", getattr(e, "request_id", "")) for e in seen]
    assert sorted(texts) == sorted(
        [
            *(f"online {i}" for i in range(3)),
            *(f"offline {i}" for i in range(3)),
            "r1",
            "from bravo",
            "back online",
        ]
    )


@pytest.mark.slow
def test_a_console_opened_while_the_database_is_down_works_from_its_mirror(
    pg: PgServer, pg_url: str, tmp_path: Path
) -> None:
    mirror = tmp_path / "b.shared.jsonl"
    with SharedIncident.open(pg_url, mirror=mirror) as shared:
        shared.append(ev.NoteAdded(text="before"))
        assert wait_until(lambda: shared._follower.last_seq == 1, timeout=5)
    pg.stop()
    try:
        with SharedIncident.open(pg_url, mirror=mirror) as shared:
            assert not shared.status().online
            assert [e.seq for e in shared.read()] == [1]
            assert shared.append(ev.NoteAdded(text="during")).seq == 2
    finally:
        pg.start()
    # Next time it opens with the database up, the segment is merged first.
    with SharedIncident.open(pg_url, mirror=mirror) as shared:
        assert shared.status().pending == 0
    assert [getattr(e, "text", "") for e in read_events(pg_url)] == ["before", "during"]


def test_machine_events_batched_through_an_outage_are_stored_once_each(
    pg: PgServer, pg_url: str
) -> None:
    from warroom.store import group_committer

    store = PgStore.open(pg_url)
    committer = group_committer(store, interval=60)  # flushed by hand below
    state = ev.ProbeState
    for i in range(5):
        committer.submit(
            ev.ProbeStateChanged(target=f"t{i}", from_state=state.UP, to_state=state.DOWN)
        )
    assert len(committer.flush()) == 5
    pg.stop()
    try:
        committer.submit_many(
            [ev.ProbeStateChanged(target="late", from_state=state.DOWN, to_state=state.UP)] * 3
        )
        with pytest.raises(Exception, match="database unavailable"):
            committer.flush()
        assert committer.pending == 3  # kept, not dropped
    finally:
        pg.start()
    assert len(committer.flush()) == 3
    store.close()
    targets = [e.target for e in read_events(pg_url) if isinstance(e, ev.ProbeStateChanged)]
    assert targets == ["t0", "t1", "t2", "t3", "t4", "late", "late", "late"]


def test_a_followed_copy_of_a_url_keeps_up_for_log_show_and_replay(pg_url: str) -> None:
    from warroom.store import local_log

    with PgStore.open(pg_url) as store:
        store.append(ev.NoteAdded(text="one"))
        path = local_log(pg_url, follow=True)
        assert len(path.read_bytes().splitlines()) == 1
        store.append(ev.NoteAdded(text="two"))
        assert wait_until(lambda: len(path.read_bytes().splitlines()) == 2, timeout=5)
    assert verify_log(path).ok


@pytest.mark.slow
async def test_two_consoles_see_each_others_changes_within_a_second_and_a_second_confirms(
    pg_url: str, tmp_path: Path
) -> None:
    from warroom.store.team import confirmation_problem, fold_team

    alice = SharedIncident.open(pg_url, mirror=tmp_path / "alice.shared.jsonl")
    bob = SharedIncident.open(pg_url, mirror=tmp_path / "bob.shared.jsonl")
    try:
        seen_by_bob = bob.follow()
        seen_by_alice = alice.follow()

        async def next_in(follow: AsyncIterator[ev.BaseEvent]) -> ev.BaseEvent:
            return await asyncio.wait_for(anext(follow), 1.0)  # "within a second"

        for event in (
            ev.NoteAdded(text="db primary unreachable", actor="alice@db1"),
            ev.SeveritySet(severity=ev.Severity.SEV1, actor="alice@db1"),
        ):
            alice.append(event)
            assert (await next_in(seen_by_bob)).kind == event.kind
            assert (await next_in(seen_by_alice)).kind == event.kind
        failover = ev.ControlRequested(
            actor="alice@db1", request_id="fo-1", service="db", control="failover",
            to_value=True, reason="primary gone", needs_second=True,
        )  # fmt: skip
        alice.append(failover)
        requested = await next_in(seen_by_bob)
        assert isinstance(requested, ev.ControlRequested) and requested.needs_second
        await next_in(seen_by_alice)
        team = fold_team(bob.read())
        assert not team.may_apply("fo-1")
        assert confirmation_problem(team, "fo-1", "bob@net2", "replica caught up") is None
        bob.append(ev.ControlConfirmed(actor="bob@net2", request_id="fo-1", reason="replica ok"))
        confirmed = await next_in(seen_by_alice)
        assert isinstance(confirmed, ev.ControlConfirmed) and confirmed.actor == "bob@net2"
        assert fold_team(alice.read()).may_apply("fo-1")
        await seen_by_bob.aclose()  # type: ignore[attr-defined]
        await seen_by_alice.aclose()  # type: ignore[attr-defined]
    finally:
        alice.close()
        bob.close()
