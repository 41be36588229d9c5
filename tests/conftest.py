"""Shared pytest fixtures."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pg import APP_ROLE, PgServer, find_bindir

from warroom.processes import usable_cores
from warroom.sim.server import RunningFleet, running_fleet


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than this process may use cores.

    About a fifth of the suite's time is spent waiting on real things (processes starting,
    PostgreSQL, sockets, terminals, a fleet's clock); one more worker fills those waits.
    Measured on 2 cores: 2 workers 291 s, 3 workers 231 s, 4 workers 235 s (and timing
    tests start to feel the load)."""
    return usable_cores() + 1


@pytest.fixture
async def sim_fleet(tmp_path: Path) -> AsyncIterator[RunningFleet]:
    """A real `tutorial` fleet on loopback, run on the test's event loop (speed 1, seed 1)."""
    async with running_fleet(
        "tutorial", speed=1.0, seed=1, token_path=tmp_path / "sim-token"
    ) as fleet:
        yield fleet


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A real PostgreSQL (Debian's binaries) for the whole run; never skipped in CI."""
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = PgServer(bindir)
    try:
        server.init()
        from warroom.store.schema import init_schema

        init_schema(server.admin_url(), grant_to=APP_ROLE)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg: PgServer, request: pytest.FixtureRequest) -> str:
    """The application role's URL for a fresh incident named after the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:60]
    return pg.url(f"{name}-{next(_INCIDENTS)}")


_INCIDENTS = itertools.count(1)
