"""The probe engine against the real simulated fleet: its targets, and how fast faults show."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from warroom import events as ev
from warroom.config import Target, aconfig_from_sim
from warroom.probe.engine import ProbeEngine
from warroom.sim.server import RunningFleet, running_fleet

INTERVAL = 0.2
TIMEOUT = 0.5
FAILURE_THRESHOLD = 2


@pytest.fixture
async def fleet() -> AsyncIterator[RunningFleet]:
    async with running_fleet("tutorial", speed=1.0) as running:
        yield running


async def fast_targets(fleet: RunningFleet) -> list[Target]:
    config = await aconfig_from_sim(fleet.admin_url)
    return [
        dataclasses.replace(
            t, interval=INTERVAL, timeout=TIMEOUT, failure_threshold=FAILURE_THRESHOLD
        )
        for t in config.resolved_targets()
    ]


class Changes:
    def __init__(self) -> None:
        self.seen: list[tuple[float, ev.ProbeStateChanged]] = []

    def __call__(self, batch: list[ev.BaseEvent]) -> None:
        now = time.monotonic()
        self.seen.extend((now, e) for e in batch if isinstance(e, ev.ProbeStateChanged))

    def first(self, target: str, state: str, after: float = 0.0) -> tuple[float, str] | None:
        for at, change in self.seen:
            if change.target == target and change.to_state == state and at >= after:
                return at, change.reason
        return None

    async def wait(self, target: str, state: str, after: float = 0.0, timeout: float = 5.0):
        async with asyncio.timeout(timeout):
            while (found := self.first(target, state, after)) is None:
                await asyncio.sleep(0.01)
        return found


async def inject(fleet: RunningFleet, service: str, fault: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            f"{fleet.admin_url}/faults",
            json={"service": service, "fault": fault},
            headers={"Authorization": f"Bearer {fleet.token}"},
        )
    assert response.status_code == 200, response.text


async def test_fleet_targets_come_up(fleet: RunningFleet) -> None:
    targets = await fast_targets(fleet)
    assert {t.name for t in targets} == {"web", "cache", "db", "db-dns"}
    changes = Changes()
    async with ProbeEngine(targets, changes, sample_interval=0) as engine:
        for target in targets:
            await changes.wait(target.name, "up")
        snapshot = engine.snapshot()
    assert snapshot["db-dns"].reason.startswith("resolved to 10.0.0.5")
    assert snapshot["web"].reason.startswith("HTTP 200 in ")


@pytest.mark.parametrize(
    ("service", "target", "fault", "reasons"),
    [
        ("web", "web", "error", ("HTTP 5",)),
        ("db", "db", "down", ("connection refused", "HTTP 5")),
        ("cache", "cache", "refuse", ("connection refused",)),
        ("web", "web", "hang", ("timeout after 500ms",)),
        ("db", "db-dns", "dns_empty", ("no A records", "NXDOMAIN")),
    ],
)
async def test_fault_is_detected_within_interval_times_threshold_plus_timeout(
    fleet: RunningFleet, service: str, target: str, fault: str, reasons: tuple[str, ...]
) -> None:
    changes = Changes()
    async with ProbeEngine(await fast_targets(fleet), changes, sample_interval=0):
        await changes.wait(target, "up")
        injected = time.monotonic()
        await inject(fleet, service, fault)
        at, reason = await changes.wait(target, "down", after=injected)
    budget = INTERVAL * FAILURE_THRESHOLD + TIMEOUT + 0.2
    assert at - injected <= budget, f"down after {at - injected:.2f}s, budget {budget:.2f}s"
    assert reason.startswith(reasons), reason


@pytest.mark.slow
async def test_recovery_is_seen_too(fleet: RunningFleet) -> None:
    changes = Changes()
    async with ProbeEngine(await fast_targets(fleet), changes, sample_interval=0):
        await changes.wait("cache", "up")
        await inject(fleet, "cache", "refuse")
        down_at, _ = await changes.wait("cache", "down")
        await inject(fleet, "cache", "recover")
        await changes.wait("cache", "up", after=down_at)


@pytest.mark.slow
async def test_warroom_probe_sim_cli(fleet: RunningFleet) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "warroom",
        "probe",
        "--sim",
        fleet.admin_url,
        "--duration",
        "2.5",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    records = [json.loads(line) for line in out.decode().splitlines()]
    summary = {r["target"]: r for r in records if r.get("summary")}
    assert set(summary) == {"web", "cache", "db", "db-dns"}
    assert all(r["total"] >= 2 for r in summary.values())
    assert {r["target"] for r in records if r.get("state") == "up" and not r.get("summary")} == {
        "web",
        "cache",
        "db",
        "db-dns",
    }
