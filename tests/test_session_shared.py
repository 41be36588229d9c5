"""Two console sessions on one shared incident (real PostgreSQL): live follow, the team, the
two-person rule, one prober, and working on while the database is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import pytest
from pg import PgServer

from warroom import events as ev
from warroom.config import WarroomConfig
from warroom.controls.service import ControlService
from warroom.log.verify import verify_log
from warroom.session import ConsoleSession
from warroom.session.shared import shared_line
from warroom.session.supervisor import ProbeSupervisor
from warroom.sim.server import RunningFleet
from warroom.store.shared import SharedIncident, is_merged_offline
from warroom.store.transfer import export

ANA, BOB = "ana@alpha", "bob@bravo"


async def until(condition: Callable[[], object], timeout: float = 5.0) -> float:
    """Seconds until `condition` held (fails the test after `timeout`)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "condition did not hold in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@asynccontextmanager
async def console(url: str, mirror: Path, actor: str) -> AsyncIterator[ConsoleSession]:
    store = SharedIncident.open(url, mirror=mirror)
    session = ConsoleSession(store, actor=actor)
    await session.start()
    try:
        yield session
    finally:
        await session.aclose()
        store.close()


def kinds(session: ConsoleSession) -> list[str]:
    return [e.kind for e in session.state.tail]


@pytest.mark.slow
async def test_a_note_and_a_severity_change_in_one_console_appear_in_the_other_within_1s(
    pg_url: str, tmp_path: Path
) -> None:
    async with (
        console(pg_url, tmp_path / "a.jsonl", ANA) as a,
        console(pg_url, tmp_path / "b.jsonl", BOB) as b,
    ):
        await a.record(ev.IncidentOpened(incident_id="i", title="checkout down"))
        await until(lambda: b.state.declared)
        note = await b.record(ev.NoteAdded(text="looking at the db"))
        assert note is not None
        assert await until(lambda: any(e.seq == note.seq for e in a.state.tail)) < 1.0
        await a.record(ev.SeveritySet(severity=ev.Severity.SEV1))
        assert await until(lambda: b.state.severity == "SEV1") < 1.0
        # Each event once, in the one shared order, in both consoles.
        assert [e.seq for e in a.state.tail] == [e.seq for e in b.state.tail] == [1, 2, 3]
        assert b.state.tail[1].actor == BOB and a.state.tail[1].actor == BOB
        # Presence: each console's heartbeat makes it part of the other's team line.
        a.tick()
        b.tick()
        await until(lambda: len(a.shared_view().team) == 2)  # type: ignore[union-attr]
        await until(lambda: len(b.shared_view().team) == 2)  # type: ignore[union-attr]
        view = b.shared_view()
        assert view is not None and view.online and view.team == (ANA, BOB)
        assert "team (2): ana@alpha, bob@bravo" in "".join(t for t, _ in shared_line(view))


async def test_a_dangerous_lever_waits_for_a_second_responder_from_another_console(
    pg_url: str, tmp_path: Path, sim_fleet: RunningFleet
) -> None:
    async with (
        console(pg_url, tmp_path / "a.jsonl", ANA) as a,
        console(pg_url, tmp_path / "b.jsonl", BOB) as b,
    ):
        a.two_person = True
        controls = await ControlService.for_sim(
            sim_fleet.admin_url, sim_fleet.token_path, a.recorder, **a.control_options()
        )
        a.use_controls(controls)
        try:
            spec = next(s for s in controls.specs() if s.dangerous and s.kind == "toggle")
            safe = next(s for s in controls.specs() if not s.dangerous and s.kind == "toggle")
            # An ordinary lever is applied at once and seen by the other console.
            pulled = await controls.request_change(safe.service, safe.control, True, "shed")
            assert pulled.ok
            await until(lambda: "control_applied" in kinds(b), 1.0)
            change = asyncio.create_task(
                controls.request_change(
                    spec.service, spec.control, True, "roll back", confirm=spec.service
                )
            )
            await until(lambda: b.pending_confirmations())
            held = b.pending_confirmations()[0]
            assert (held.requested_by, held.control) == (ANA, spec.control)
            assert a.pending_confirmations() == []  # not offered to the one who asked
            view = b.shared_view()
            assert view is not None
            line = "".join(t for t, _ in shared_line(view))
            assert f"{spec.service}.{spec.control} by {ANA} waits for a second responder" in line
            await asyncio.sleep(0.3)
            assert not change.done()  # held: nothing applied yet
            assert kinds(b).count("control_applied") == 1
            assert await a.confirm(held.request_id, "me again") is None  # same actor: refused
            assert await b.confirm(held.request_id, "  ") is None  # needs its own reason
            assert await b.confirm(held.request_id, "agreed, the deploy is bad") is not None
            outcome = await asyncio.wait_for(change, 5)
            assert outcome.ok
            await until(lambda: kinds(b).count("control_applied") == 2, 1.0)
            assert held.request_id in b.team.confirmed and not b.team.held
        finally:
            await controls.aclose()


@pytest.mark.slow
async def test_one_console_probes_and_the_lease_moves_when_it_goes_away(
    pg_url: str, tmp_path: Path
) -> None:
    config = WarroomConfig.model_validate(
        {"targets": [{"name": "closed", "tcp": "127.0.0.1:9", "interval": 1}]}
    )
    async with console(pg_url, tmp_path / "b.jsonl", BOB) as b:
        async with console(pg_url, tmp_path / "a.jsonl", ANA) as a:
            a.attach_probes(
                ProbeSupervisor(config, cast(SharedIncident, a.store).address, sample_interval=1.0),
                lease_ttl=10,
            )
            await until(lambda: a.leased is not None and a.leased.holding)
            b.attach_probes(
                ProbeSupervisor(config, cast(SharedIncident, b.store).address, sample_interval=1.0),
                lease_ttl=10,
            )
            assert b.leased is not None and a.leased is not None
            await until(lambda: b.leased is not None and b.leased.holder.startswith(ANA))
            assert not b.leased.holding
            view = b.shared_view()
            assert view is not None and f"probes by {ANA}" in "".join(
                t for t, _ in shared_line(view)
            )
            await until(lambda: "probe_state_changed" in kinds(b), 8)
            await asyncio.sleep(1.5)
            # One prober: the target went down once, not once per console.
            assert kinds(b).count("probe_state_changed") == 1
            assert b.freshness.live or not b.freshness.stale  # followed data counts as live
        # ana quit: her console gave the lease up, so bob's takes it at once (not after 10 s).
        await until(lambda: b.leased is not None and b.leased.holding, 3)


@pytest.mark.slow
async def test_database_down_the_console_works_offline_and_merges_when_it_is_back(
    pg: PgServer, pg_url: str, tmp_path: Path
) -> None:
    mirror = tmp_path / "a.jsonl"
    async with console(pg_url, mirror, ANA) as a:
        await a.record(ev.IncidentOpened(incident_id="i", title="db outage"))
        # The mirror already holds everything before the outage: after it, the only rows to
        # follow are the merged ones, which are not yielded again; the merge itself must
        # wake the session to re-fold.
        await until(lambda: len(mirror.read_bytes().splitlines()) == 1)
        pg.stop()
        try:
            await until(lambda: not a.shared_status().online, 8)
            a.tick()
            note = await a.record(ev.NoteAdded(text="written while the db is down"))
            assert note is not None and note.seq > 1
            assert note in a.state.tail  # on screen at once
            view = a.shared_view()
            assert view is not None and view.pending >= 1
            line = "".join(t for t, _ in shared_line(view))
            assert "OFFLINE since " in line and "— 1 event waiting" in line  # no heartbeat offline
        finally:
            pg.start()
        await until(lambda: a.shared_status().online and not a.shared_status().pending, 15)
        await until(lambda: a.generation >= 1)
        merged = [e for e in a.state.tail if is_merged_offline(e)]
        assert [e.text for e in merged if isinstance(e, ev.NoteAdded)] == [
            "written while the db is down"
        ]
        # Folded once each, in the shared order: the offline copy was replaced, not added to.
        assert [(e.seq, e.kind) for e in a.state.tail] == [
            (1, "incident_opened"),
            (2, "note_added"),
        ]
    out = tmp_path / "export.jsonl"
    export(pg_url, out)
    assert verify_log(out).ok


async def test_a_row_edited_in_the_table_is_shown_loudly_and_nothing_after_it_is_folded(
    pg: PgServer, pg_url: str, tmp_path: Path
) -> None:
    import psycopg

    from warroom.store.pg import PgStore

    with PgStore.open(pg_url, create=True) as writer:
        for i in range(3):
            writer.append(ev.NoteAdded(text=f"note {i}"))
    incident = pg_url.rsplit("incident=", 1)[1]
    with psycopg.connect(pg.admin_url(), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE warroom.events SET (body, hash) = (SELECT b, encode(sha256(b), 'hex') FROM "
            "(SELECT convert_to(replace(convert_from(body, 'UTF8'), 'note 1', 'note X'), "
            "'UTF8') AS b) AS t) WHERE incident = %s AND seq = 2",
            [incident],
        )
    async with console(pg_url, tmp_path / "a.jsonl", ANA) as a:
        await until(lambda: a.shared_status().tampered_seq == 2)
        a.tick()
        view = a.shared_view()
        assert view is not None
        assert "".join(t for t, _ in shared_line(view)).startswith(" TAMPERED at #2 ")
        assert any("TAMPERED at seq 2" in p for p in a.problems)
        assert all(e.seq < 2 for e in a.state.tail)  # the edited row and after: never folded
