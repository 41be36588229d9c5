"""Probe engine at scale: 1,000 HTTP targets at a 1 s interval against the simulated fleet.

Starts `warroom sim serve --scenario scale-N` as a separate process (so the fleet's CPU is not
counted), takes its `GET /targets`, spreads `--targets` HTTP targets over the fleet's services
(several targets per service port when there are fewer services than targets), runs the
probe engine for `--duration` seconds after one warm-up interval, and prints one JSON line:
probes/s, CPU % of one core for this process, CPU ms per probe, schedule lag p50/p99 (time
from when a probe was due to when it started) and missed rounds.

    .venv/bin/python tests/bench/bench_probe.py [--duration 60] [--targets 1000]
        [--interval 1] [--services 50] [--keepalive] [--url ADMIN_URL]

Targets: lag p99 < 100 ms, no missed rounds, < 50 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson

from warroom.config import Target, aconfig_from_sim
from warroom.events import BaseEvent, ProbeStateChanged
from warroom.probe.engine import ProbeEngine, percentile

ADMIN_LINE = re.compile(r"admin: (http://\S+)(?: token: (\S+))?")


@dataclasses.dataclass(frozen=True)
class Fleet:
    url: str  # the admin API
    token_path: str  # the file holding its bearer token


@contextlib.contextmanager
def running_sim(services: int) -> Iterator[Fleet]:
    """`warroom sim serve --scenario scale-N` in its own process; yields its admin URL and token."""
    process = subprocess.Popen(
        [sys.executable, "-m", "warroom", "sim", "serve", "--scenario", f"scale-{services}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        fleet = None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = ADMIN_LINE.search(line)
            if match:
                fleet = Fleet(match.group(1), match.group(2) or "")
                break
        if fleet is None:
            process.kill()
            _, err = process.communicate(timeout=5)
            raise SystemExit(f"bench_probe: warroom sim did not start: {err.strip()[-500:]}")
        yield fleet
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def spread_targets(
    base: list[Target], count: int, interval: float, keepalive: bool
) -> list[Target]:
    """`count` targets cycling over the fleet's HTTP targets, all at `interval`."""
    http = [t for t in base if t.kind == "http"]
    if not http:
        raise SystemExit("bench_probe: the fleet offers no http targets")
    return [
        dataclasses.replace(
            http[i % len(http)],
            name=f"{http[i % len(http)].name}#{i}",
            interval=interval,
            timeout=min(http[i % len(http)].timeout, interval),
            keepalive=keepalive,
        )
        for i in range(count)
    ]


async def measure(
    url: str,
    count: int,
    interval: float,
    duration: float,
    keepalive: bool,
    concurrency: int | None,
) -> dict[str, object]:
    config = await aconfig_from_sim(url)
    targets = spread_targets(config.resolved_targets(), count, interval, keepalive)
    changes = 0

    def on_events(batch: list[BaseEvent]) -> None:
        nonlocal changes
        changes += sum(1 for e in batch if isinstance(e, ProbeStateChanged))

    engine = ProbeEngine(
        targets,
        on_events,
        sample_interval=5.0,
        max_concurrency=concurrency,
        lag_history=10_000_000,
    )
    async with engine:
        # One interval of warm-up: every target gets its first probe, imports settle.
        await asyncio.sleep(interval * 1.5)
        engine.lags.clear()
        engine.timer_lags.clear()
        before = engine.stats()
        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await asyncio.sleep(duration)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - wall0
        user = usage.ru_utime - usage0.ru_utime
        system = usage.ru_stime - usage0.ru_stime
        cpu = user + system
        after = engine.stats()
        lags = list(engine.lags)
        timer_lags = list(engine.timer_lags)
        snapshot = engine.snapshot()
    started = after.started - before.started
    completed = after.completed - before.completed
    expected = count * wall / interval
    ok = sum(s.ok for s in snapshot.values())
    total = sum(s.total for s in snapshot.values())
    latencies = [v for status in snapshot.values() for v in status.history if v is not None]
    lag_p50 = percentile(lags, 0.50)
    lag_p99 = percentile(lags, 0.99)
    return {
        "bench": "probe",
        "targets": count,
        "services": len({t.service for t in targets}),
        "interval_s": interval,
        "duration_s": round(wall, 2),
        "keepalive": keepalive,
        "slots": after.slots,
        "late": after.late - before.late,
        "probes": completed,
        "probes_per_s": round(completed / wall, 1),
        "expected_per_s": round(expected / wall, 1),
        "cpu_percent": round(100 * cpu / wall, 1),
        "cpu_ms_per_probe": round(1000 * cpu / max(completed, 1), 3),
        # On loopback the kernel runs both ends of each TCP handshake in the caller's
        # connect(), so a fresh connection per probe shows up here as system time.
        "cpu_user_percent": round(100 * user / wall, 1),
        "cpu_system_percent": round(100 * system / wall, 1),
        "lag_p50_ms": None if lag_p50 is None else round(lag_p50 * 1000, 2),
        "lag_p99_ms": None if lag_p99 is None else round(lag_p99 * 1000, 2),
        "lag_max_ms": round(max(lags) * 1000, 2) if lags else None,
        # Loop delay alone (timer lateness), without waiting for a free concurrency slot.
        "timer_lag_p50_ms": round((percentile(timer_lags, 0.5) or 0.0) * 1000, 2),
        "timer_lag_p99_ms": round((percentile(timer_lags, 0.99) or 0.0) * 1000, 2),
        "missed_rounds": after.missed_rounds - before.missed_rounds,
        "probe_latency_p50_ms": round(percentile(latencies, 0.5) or 0.0, 2),
        "probe_latency_p99_ms": round(percentile(latencies, 0.99) or 0.0, 2),
        "started_vs_expected": round(started / expected, 3),
        "ok_ratio": round(ok / max(total, 1), 3),
        "state_changes": changes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--services", type=int, default=50, help="services in the fleet")
    parser.add_argument("--keepalive", action="store_true", help="reuse connections")
    parser.add_argument("--url", help="admin URL of an already running fleet")
    parser.add_argument(
        "--concurrency", type=int, help="probes in flight at most (default: what the work needs)"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(running_sim(args.services)).url
        result = asyncio.run(
            measure(
                url, args.targets, args.interval, args.duration, args.keepalive, args.concurrency
            )
        )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
