"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from warroom.sim.server import RunningFleet, running_fleet


@pytest.fixture
async def sim_fleet(tmp_path: Path) -> AsyncIterator[RunningFleet]:
    """A real `tutorial` fleet on loopback, run on the test's event loop (speed 1, seed 1)."""
    async with running_fleet(
        "tutorial", speed=1.0, seed=1, token_path=tmp_path / "sim-token"
    ) as fleet:
        yield fleet
