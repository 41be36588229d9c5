"""The probe engine when the fleet hangs or the prober itself falls behind: no head-of-line
blocking, lateness never mistaken for the service's latency, overload reported."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from probe_servers import free_port, hanging_listener, http_process, serve
from test_probe_cli import lines, warroom
from test_probe_engine import Recorder, switchable, target

from warroom import events as ev
from warroom.probe.engine import ProbeEngine


@pytest.mark.slow
async def test_a_fault_is_detected_in_time_while_1000_targets_hang() -> None:
    interval, timeout, threshold = 1.0, 1.0, 2
    mode, handle = switchable()
    recorder = Recorder()
    with hanging_listener() as hung_url:
        async with serve(handle) as server:
            hung = [
                target(name=f"hung{i}", http=hung_url, interval=interval, timeout=timeout)
                for i in range(1000)
            ]
            web = target(
                name="web",
                http=server.url,
                interval=interval,
                timeout=timeout,
                failure_threshold=threshold,
            )
            async with ProbeEngine([*hung, web], recorder, sample_interval=1.0) as engine:
                await recorder.wait_for(lambda: bool(recorder.changes("web")), timeout=5)
                # Every hung target's first probe is in flight, holding its socket.
                await recorder.wait_for(lambda: engine.stats().in_flight >= 1000, timeout=3)
                fault = time.monotonic()
                mode["status"] = 503
                await recorder.wait_for(lambda: len(recorder.changes("web")) == 2, timeout=10)
                hung_in_flight = engine.stats().in_flight
            up, down = recorder.changes("web")
            detected = recorder.times[recorder.events.index(down)] - fault
    assert (up.to_state, down.to_state, down.reason) == ("up", "down", "HTTP 503 (expected 2xx)")
    assert hung_in_flight >= 1000
    assert detected <= interval * threshold + timeout + 0.2
    healths = [e for e in recorder.events if isinstance(e, ev.ProbeEngineHealth)]
    assert healths and max(h.slots_peak for h in healths) >= 1000
    assert all(h.slots >= 2002 for h in healths)  # two rounds of each target may be in flight


async def stall_the_loop(stop: asyncio.Event) -> None:
    """Block the prober's own loop for 150 ms out of every 160 ms, as an overloaded one is."""
    while not stop.is_set():
        time.sleep(0.15)
        await asyncio.sleep(0.01)


def degraded_targets(url: str) -> list[Any]:
    return [
        target(
            name=f"t{i}",
            http=url,
            interval=0.2,
            timeout=1.0,
            degraded_latency=0.1,
            success_threshold=1,
        )
        for i in range(20)
    ]


@pytest.mark.slow
async def test_the_probers_own_delays_never_make_a_target_degraded() -> None:
    recorder = Recorder()
    stop = asyncio.Event()
    with http_process() as url:
        async with ProbeEngine(degraded_targets(url), recorder, sample_interval=0) as engine:
            staller = asyncio.create_task(stall_the_loop(stop))
            await asyncio.sleep(2.5)
            stop.set()
            await staller
            snapshot = engine.snapshot()
    assert {c.to_state for c in recorder.changes()} == {"up"}, [
        (c.to_state, c.reason) for c in recorder.changes() if c.to_state != "up"
    ]
    late = sum(s.late for s in snapshot.values())
    total = sum(s.total for s in snapshot.values())
    assert total >= 40 and late >= total // 2
    # The stalls did inflate what was measured: only lateness kept it from counting.
    assert max(v for s in snapshot.values() for v in s.history if v is not None) > 100


async def test_a_slow_service_is_still_degraded() -> None:
    recorder = Recorder()
    with http_process(delay=0.15) as url:
        async with ProbeEngine(degraded_targets(url), recorder, sample_interval=0) as engine:
            await recorder.wait_for(lambda: len(recorder.changes()) >= 20, timeout=5)
            snapshot = engine.snapshot()
    assert {c.to_state for c in recorder.changes()} == {"degraded"}
    assert sum(s.late for s in snapshot.values()) == 0


OVERLOAD = """
[defaults]
interval = "1ms"
timeout = "500ms"
{targets}
"""


@pytest.mark.slow
async def test_missed_rounds_appear_in_warroom_probe_json(tmp_path: Path) -> None:
    closed = free_port()
    targets = "\n".join(
        f'[[targets]]\nname = "t{i}"\ntcp = "127.0.0.1:{closed}"' for i in range(300)
    )
    (tmp_path / "w.toml").write_text(OVERLOAD.format(targets=targets))
    code, out, err = await warroom(
        "probe", "--config", "w.toml", "--duration", "1.5", "--json", cwd=tmp_path
    )
    assert (code, err) == (0, "")
    records = lines(out)
    healths = [r for r in records if r.get("engine") == "health"]
    [total] = [r for r in records if r.get("engine") == "summary"]
    assert healths and sum(h["missed_rounds"] for h in healths) == total["missed_rounds"] > 0
    assert healths[-1]["problem"].startswith(f"{healths[-1]['missed_rounds']} missed rounds")
    assert total["probes"] > 0 and total["lag_p99_ms"] is not None
    json.dumps(total)  # plain JSON values only
