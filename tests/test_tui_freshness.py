"""Stale probe data is never shown as live: resume without targets, a killed worker, a full disk.

The worker is the real `warroom.probe.worker` process probing a real TCP listener on
loopback; the failures are real (SIGKILL, RLIMIT_FSIZE on the worker's process).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from processes import alive
from tui_harness import SIZE, screen_text, settle, write_log

from warroom.config import WarroomConfig
from warroom.tui.cli import ConsoleInputs, build_app

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

#: Probe interval and sample interval of the live tests: stale after 3 x 0.5 s.
INTERVAL = 0.5


async def test_a_resumed_incident_without_targets_shows_stale_not_up(tmp_path: Path) -> None:
    app = build_app(write_log(tmp_path / "i.jsonl"), ConsoleInputs(), probes=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        fresh = app.session.freshness
        assert fresh.stale == set(app.state.probes) and fresh.stale
        text = screen_text(app)
        assert "STALE: all probe data not live since 08:03:30" in text
        assert "no targets to probe" in text


async def _accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    server = await asyncio.start_server(_accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def live_app(tmp_path: Path, port: int):  # type: ignore[no-untyped-def]
    config = WarroomConfig.model_validate(
        {"targets": [{"name": "local", "tcp": f"127.0.0.1:{port}", "interval": INTERVAL}]}
    )
    inputs = ConsoleInputs(config=config)
    return build_app(
        write_log(tmp_path / "i.jsonl", []), inputs, probes=True, sample_interval=INTERVAL
    )


@pytest.mark.slow
async def test_a_killed_worker_shows_stale_and_its_restart_brings_live_data(
    tmp_path: Path, listener: int
) -> None:
    app = live_app(tmp_path, listener)
    probes = app.session.probes
    async with app.run_test(size=SIZE) as pilot:
        await settle(
            pilot, until=lambda: app.session.freshness.live and app.state.probes, timeout=15
        )
        first = probes.pid
        assert first is not None and "STALE" not in screen_text(app)
        os.kill(first, signal.SIGKILL)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await settle(pilot, until=lambda: "STALE" in screen_text(app), timeout=3 * INTERVAL)
        assert loop.time() - killed_at <= 3 * INTERVAL
        assert "exit -9" in " ".join(app.problems)
        await settle(
            pilot,
            until=lambda: app.session.freshness.live and "STALE" not in screen_text(app),
            timeout=15,
        )
        assert probes.pid not in (None, first) and probes.starts == 2
    assert not alive(first)


@pytest.mark.slow
async def test_a_full_disk_under_the_worker_is_shown(tmp_path: Path, listener: int) -> None:
    app = live_app(tmp_path, listener)
    probes = app.session.probes
    went_stale: list[bool] = []
    app.session.subscribe(lambda change: went_stale.append(not app.session.freshness.live))
    async with app.run_test(size=SIZE) as pilot:
        await settle(
            pilot, until=lambda: app.session.freshness.live and app.state.probes, timeout=15
        )
        pid = probes.pid
        assert pid is not None
        size = (tmp_path / "i.jsonl").stat().st_size
        # The worker's next write past this size fails with EFBIG, as on a full disk.
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, size))
        await settle(pilot, until=lambda: "cannot" in " ".join(app.problems), timeout=10)
        problem = app.problems[-1]
        assert (
            "probe engine restarted 1× — last at " in problem
            and ": exit 2: " in problem
            and "i.jsonl" in problem
        )
        assert "File too large" in problem
        assert any(went_stale)
        # On the screen's next frame (the session has it first).
        await settle(pilot, until=lambda: "File too large" in screen_text(app), timeout=2)
    assert not alive(pid)


@pytest.mark.slow
async def test_worker_restarts_are_one_problem_line_that_clears_once_healthy(
    tmp_path: Path, listener: int
) -> None:
    app = live_app(tmp_path, listener)
    probes = app.session.probes
    probes.backoff = (0.1,)
    probes.healthy_after = 2.0
    async with app.run_test(size=SIZE) as pilot:
        for deaths in (1, 2, 3):
            await settle(pilot, until=lambda: probes.pid is not None, timeout=15)
            os.kill(probes.pid, signal.SIGKILL)
            await settle(
                pilot, until=lambda d=deaths: f"restarted {d}×" in screen_text(app), timeout=10
            )
        said = [p for p in app.problems if "probe engine" in p]
        assert len(said) == 1 and said[0].startswith("probe engine restarted 3× — last at ")
        assert "exit -9" in said[0]
        assert screen_text(app).count("probe engine restarted") == 1
        # The restarted worker keeps running: the problem is resolved and the line goes.
        await settle(pilot, until=lambda: not app.problems, timeout=15)
        # The line is repainted on the screen's next frame, not at the session's word.
        await settle(
            pilot, until=lambda: "probe engine restarted" not in screen_text(app), timeout=2
        )
        assert app.session.freshness.live
