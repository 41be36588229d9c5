"""The console's screen on a shared incident (real PostgreSQL): another console's events
within a second, the team line, and the OFFLINE header while the database is down."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pg import PgServer
from tui_harness import paste, screen_text

from warroom import events as ev
from warroom.session import ConsoleSession
from warroom.store.shared import SharedIncident
from warroom.tui.app import WarroomApp

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

ANA, BOB = "ana@alpha", "bob@bravo"


async def until(pilot: object, condition: Callable[[], object], timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "condition did not hold in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.slow
async def test_another_consoles_note_and_severity_reach_this_screen_within_1s(
    pg_url: str, tmp_path: Path
) -> None:
    ana_store = SharedIncident.open(pg_url, mirror=tmp_path / "a.jsonl")
    ana = ConsoleSession(ana_store, actor=ANA)
    bob_store = SharedIncident.open(pg_url, mirror=tmp_path / "b.jsonl")
    app = WarroomApp(bob_store, actor=BOB)
    await ana.start()
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await ana.record(ev.IncidentOpened(incident_id="i", title="checkout down"))
            await ana.record(ev.NoteAdded(text="from ana: db is slow"))
            assert await until(pilot, lambda: "from ana: db is slow" in screen_text(app)) < 1.0
            await ana.record(ev.SeveritySet(severity=ev.Severity.SEV1))
            assert await until(pilot, lambda: " SEV1 " in screen_text(app)) < 1.0
            await pilot.press("n")
            await paste(pilot, "bob here")
            await pilot.press("enter")
            assert (
                await until(
                    pilot, lambda: any(getattr(e, "text", "") == "bob here" for e in ana.state.tail)
                )
                < 1.0
            )
            text = screen_text(app)
            assert f"{ANA}: note: from ana" in text and f"{BOB}: note: bob here" in text
            assert "presence" not in text  # heartbeats make the team line, not log lines
            ana.tick()  # ana's heartbeat; bob's console sends its own every few seconds
            await until(pilot, lambda: "team (2): ana@alpha, bob@bravo" in screen_text(app), 3)
    finally:
        await ana.aclose()
        ana_store.close()
        bob_store.close()


@pytest.mark.slow
async def test_database_down_the_header_says_offline_and_merged_events_are_flagged(
    pg: PgServer, pg_url: str, tmp_path: Path
) -> None:
    store = SharedIncident.open(pg_url, mirror=tmp_path / "b.jsonl")
    app = WarroomApp(store, actor=BOB)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await app.session.record(ev.IncidentOpened(incident_id="i", title="db outage"))
            pg.stop()
            try:
                await until(pilot, lambda: "OFFLINE since" in screen_text(app), 8)
                await pilot.press("n")
                await paste(pilot, "noted offline")
                await pilot.press("enter")
                await until(pilot, lambda: "noted offline" in screen_text(app), 2)
                await until(
                    pilot,
                    lambda: re.search(
                        r"OFFLINE since \d\d:\d\d:\d\d — [1-9]\d* events? waiting", screen_text(app)
                    ),
                    3,
                )
            finally:
                pg.start()
            await until(pilot, lambda: "OFFLINE" not in screen_text(app), 15)
            await until(pilot, lambda: "⇄ offline" in screen_text(app), 3)
            line = next(x for x in screen_text(app).splitlines() if "noted offline" in x)
            assert "⇄ offline" in line
    finally:
        store.close()
