"""The probe engine: damping, transitions and samples as events, status, scheduling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from probe_servers import free_port, hang, hanging_listener, read_request, responder, serve

from warroom import events as ev
from warroom.config import Target, TargetConfig, parse_config
from warroom.probe.checks import ProbeResult
from warroom.probe.engine import Damper, ProbeEngine, percentile


def target(**fields: Any) -> Target:
    fields.setdefault("name", "t")
    return TargetConfig.model_validate(fields).resolve(parse_config({}).defaults)


OK = ProbeResult(True, 10.0, "HTTP 200 in 10 ms")
SLOW = ProbeResult(True, 400.0, "HTTP 200 in 400 ms")
FAIL = ProbeResult(False, 2.0, "connection refused")


def feed(damper: Damper, results: list[ProbeResult]) -> list[str | None]:
    out = []
    for result in results:
        change = damper.observe(result)
        out.append(change[0] if change else None)
    return out


def test_damper_needs_consecutive_failures_and_successes() -> None:
    damper = Damper(failure_threshold=2, success_threshold=2, degraded_latency=None)
    assert feed(damper, [OK, OK]) == [None, "up"]
    # One failure between successes never flaps the state.
    assert feed(damper, [FAIL, OK, FAIL, OK]) == [None, None, None, None]
    assert feed(damper, [FAIL, FAIL, FAIL]) == [None, "down", None]
    assert damper.observe(FAIL) is None
    assert feed(damper, [OK, FAIL, OK, OK]) == [None, None, None, "up"]


def test_damper_thresholds_of_one_follow_every_result() -> None:
    damper = Damper(failure_threshold=1, success_threshold=1, degraded_latency=None)
    assert feed(damper, [OK, FAIL, OK]) == ["up", "down", "up"]


def test_damper_degraded_when_successes_are_over_the_latency_budget() -> None:
    damper = Damper(failure_threshold=2, success_threshold=2, degraded_latency=0.25)
    assert feed(damper, [OK, OK, SLOW, OK, SLOW]) == [None, "up", None, None, None]
    # The trailing slow result above plus one more make a run of two.
    assert feed(damper, [SLOW, SLOW]) == ["degraded", None]
    damper2 = Damper(failure_threshold=2, success_threshold=2, degraded_latency=0.25)
    damper2.observe(SLOW)
    assert damper2.observe(SLOW) == ("degraded", "latency 400 ms over 250 ms budget")
    assert feed(damper2, [OK, OK, FAIL, FAIL, SLOW, SLOW]) == [
        None,
        "up",
        None,
        "down",
        None,
        "degraded",
    ]


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50.0, 95.0)
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0


class Recorder:
    """An `on_events` sink that keeps everything and can wait for a condition."""

    def __init__(self) -> None:
        self.events: list[ev.BaseEvent] = []
        self.times: list[float] = []

    def __call__(self, batch: list[ev.BaseEvent]) -> None:
        for event in batch:
            self.events.append(event)
            self.times.append(time.monotonic())

    def changes(self, name: str | None = None) -> list[ev.ProbeStateChanged]:
        return [
            e
            for e in self.events
            if isinstance(e, ev.ProbeStateChanged) and (name is None or e.target == name)
        ]

    def samples(self) -> list[ev.ProbeSamples]:
        return [e for e in self.events if isinstance(e, ev.ProbeSamples)]

    async def wait_for(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)


def switchable() -> tuple[dict[str, Any], Any]:
    """A server whose answer is changed by the test (`mode["status"]`, `mode["fail_once"]`)."""
    mode: dict[str, Any] = {"status": 200, "fail_requests": set(), "count": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader) is None:
            return
        mode["count"] += 1
        status = 500 if mode["count"] in mode["fail_requests"] else mode["status"]
        body = b"ok"
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    return mode, handle


async def test_transitions_become_events_with_reason_and_latency() -> None:
    mode, handle = switchable()
    recorder = Recorder()
    async with serve(handle) as server:
        web = target(name="web", service="shop", http=server.url, interval=0.05, timeout=0.5)
        async with ProbeEngine([web], recorder, sample_interval=0) as engine:
            assert engine.status("web").state == "unknown"
            await recorder.wait_for(lambda: len(recorder.changes()) == 1)
            mode["status"] = 503
            await recorder.wait_for(lambda: len(recorder.changes()) == 2)
            status = engine.status("web")
    up, down = recorder.changes()
    assert (up.target, up.service, up.from_state, up.to_state) == ("web", "shop", "unknown", "up")
    assert up.reason.startswith("HTTP 200 in ") and up.latency_ms is not None
    assert (down.from_state, down.to_state) == ("up", "down")
    assert down.reason == "HTTP 503 (expected 2xx)"
    assert (status.state, status.reason) == ("down", "HTTP 503 (expected 2xx)")
    assert status.ok >= 2 and status.total >= status.ok + 2
    assert None in status.history and status.p50 is not None and status.p95 is not None


async def test_a_single_failed_probe_does_not_flap() -> None:
    mode, handle = switchable()
    mode["fail_requests"] = {4}
    recorder = Recorder()
    async with serve(handle) as server:
        web = target(name="web", http=server.url, interval=0.03, timeout=0.5)
        async with ProbeEngine([web], recorder, sample_interval=0) as engine:
            await recorder.wait_for(lambda: mode["count"] >= 8)
            status = engine.status("web")
    assert [(c.from_state, c.to_state) for c in recorder.changes()] == [("unknown", "up")]
    assert status.state == "up"
    assert status.total - status.ok == 1


async def test_samples_summarise_every_target_periodically() -> None:
    recorder = Recorder()
    async with serve(responder(200, b"ok")) as server:
        targets = [
            target(name="web", http=server.url, interval=0.05),
            target(name="port", tcp=server.address, interval=0.05),
            target(name="gone", tcp=f"127.0.0.1:{free_port()}", interval=0.05),
        ]
        async with ProbeEngine(targets, recorder, sample_interval=0.3) as engine:
            await recorder.wait_for(lambda: len(recorder.samples()) >= 2)
            snapshot = engine.snapshot()
        final = recorder.samples()[-1]
    first = recorder.samples()[0]
    assert [s.target for s in first.samples] == ["web", "port", "gone"]
    by_name = {s.target: s for s in first.samples}
    assert by_name["web"].count >= 3 and by_name["web"].ok == by_name["web"].count
    assert by_name["web"].latency_ms is not None
    assert by_name["gone"].ok == 0 and by_name["gone"].latency_ms is None
    assert by_name["gone"].count >= 3
    assert list(snapshot) == ["web", "port", "gone"]
    assert snapshot["gone"].state == "down" and snapshot["gone"].reason == "connection refused"
    assert snapshot["port"].state == "up" and snapshot["port"].kind == "tcp"
    # Closing flushes what was counted since the last periodic sample.
    assert final is not first
    # Samples and state changes are machine events: group-committed, not fsynced one by one.
    assert not type(first).durable


async def test_hung_target_does_not_delay_others_and_close_is_prompt() -> None:
    recorder = Recorder()
    async with serve(hang) as stuck, serve(responder(200, b"ok")) as fine:
        targets = [
            target(name="stuck", http=stuck.url, interval=0.05, timeout=0.3),
            target(name="fine", http=fine.url, interval=0.05, timeout=0.3),
        ]
        engine = ProbeEngine(targets, recorder, sample_interval=0, max_concurrency=20)
        await engine.start()
        await recorder.wait_for(lambda: len(recorder.changes("stuck")) == 1, timeout=3)
        assert engine.status("fine").state == "up"
        assert engine.status("stuck").reason == "timeout after 300ms"
        start = time.monotonic()
        await engine.aclose()
        assert time.monotonic() - start < 0.5
        stats = engine.stats()
    assert stats.in_flight == 0 and stats.missed_rounds == 0


async def test_probes_are_spread_over_the_interval_without_missed_rounds() -> None:
    async with serve(responder(200, b"ok")) as server:
        targets = [
            target(name=f"t{i}", http=server.url, interval=0.2, timeout=1) for i in range(40)
        ]
        engine = ProbeEngine(targets, None, sample_interval=0)
        async with engine:
            await asyncio.sleep(1.0)
        stats = engine.stats()
        # One connection per probe (probes cancelled at close may not have connected yet).
        assert stats.started - 40 <= server.connections <= stats.started
    # 40 targets x 5 rounds, give or take the phase of the first and last round.
    assert 120 <= stats.started <= 240
    assert stats.missed_rounds == 0
    lags = sorted(engine.lags)
    assert lags[len(lags) // 2] < 0.05


async def test_on_events_failure_does_not_stop_probing(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def broken(batch: list[ev.BaseEvent]) -> None:
        calls.append(batch)
        raise RuntimeError("sink is broken")

    async with serve(responder(200, b"ok")) as server:
        t = target(name="web", http=server.url, interval=0.03, success_threshold=1)
        async with ProbeEngine([t], broken, sample_interval=0.1) as engine:
            async with asyncio.timeout(3):
                while len(calls) < 3:
                    await asyncio.sleep(0.02)
            assert engine.status("web").state == "up"
    assert "on_events callback failed" in caplog.text


def test_duplicate_names_are_rejected() -> None:
    t = target(name="a", tcp="127.0.0.1:1")
    with pytest.raises(ValueError, match="unique"):
        ProbeEngine([t, t])


async def test_past_the_slot_budget_rounds_are_skipped_and_counted_never_queued() -> None:
    with hanging_listener() as url:
        hung = [target(name=f"h{i}", http=url, interval=0.05, timeout=0.3) for i in range(5)]
        engine = ProbeEngine(hung, None, sample_interval=0, max_concurrency=3)
        async with engine:
            await asyncio.sleep(0.6)
            stats = engine.stats()
            health = engine.health()
    assert (stats.slots, health.slots) == (3, 3)
    assert stats.in_flight <= 3 and health.slots_peak == 3
    assert stats.missed_rounds > 0 and health.missed_rounds == stats.missed_rounds
    # A probe either starts on its timer or not at all: none waited for a slot.
    assert max(engine.lags) < 0.2
