"""The probe engine: schedules every target's checks and turns results into damped states.

It runs inside whatever asyncio loop owns it (the console's, or `warroom probe`'s), never
blocks it, and does not own the incident log: it hands `ProbeStateChanged` events (on each
transition) and one `ProbeSamples` event (every `sample_interval`) to `on_events`, stamped with
the time they were observed, and the caller appends them. Scheduling uses the loop's own timer
heap (`call_at`): each target has a fixed phase spread over its interval, so 1,000 targets at
1 s become a steady trickle rather than a burst once a second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

import httpx

from warroom import events as ev
from warroom.config import Target
from warroom.events import BaseEvent, ProbeState
from warroom.probe.checks import (
    MAX_BODY,
    ProbeResult,
    Resolvers,
    build_request,
    check_dns,
    check_http,
    check_tcp,
    make_client,
)
from warroom.probe.promql import check_promql

log = logging.getLogger(__name__)

EventSink = Callable[[list[BaseEvent]], None]

UNKNOWN = ProbeState.UNKNOWN.value
UP = ProbeState.UP.value
DEGRADED = ProbeState.DEGRADED.value
DOWN = ProbeState.DOWN.value


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (no interpolation), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


class Damper:
    """Threshold damping: a single failure (or a single success) never changes the state.

    `failure_threshold` consecutive failures make a target down; `success_threshold`
    consecutive successes make it up, or degraded when those successes were slower than the
    latency budget.
    """

    def __init__(
        self, failure_threshold: int, success_threshold: int, degraded_latency: float | None
    ) -> None:
        self.failure_threshold = failure_threshold
        self.success_threshold = success_threshold
        self.degraded_ms = degraded_latency * 1000 if degraded_latency is not None else None
        self.state = UNKNOWN
        self.failures = 0
        self.successes = 0
        self.fast = 0
        self.slow = 0

    def observe(self, result: ProbeResult) -> tuple[str, str] | None:
        """Feed one result; return (new state, reason) on a transition, else None."""
        if not result.ok:
            self.failures += 1
            self.successes = self.fast = self.slow = 0
            if self.failures >= self.failure_threshold and self.state != DOWN:
                self.state = DOWN
                return DOWN, result.reason
            return None
        self.failures = 0
        self.successes += 1
        slow = self.degraded_ms is not None and result.latency_ms > self.degraded_ms
        if slow:
            self.slow, self.fast = self.slow + 1, 0
        else:
            self.fast, self.slow = self.fast + 1, 0
        if self.successes < self.success_threshold:
            return None
        if self.state in (UP, DEGRADED):
            # Moving between up and degraded needs a run of the same kind, so a single slow
            # response does not flap the state either.
            if self.fast >= self.success_threshold:
                wanted = UP
            elif self.slow >= self.success_threshold:
                wanted = DEGRADED
            else:
                return None
        else:
            wanted = DEGRADED if slow else UP
        if wanted == self.state:
            return None
        self.state = wanted
        if wanted == DEGRADED:
            assert self.degraded_ms is not None
            return wanted, (
                f"latency {result.latency_ms:.0f} ms over {self.degraded_ms:.0f} ms budget"
            )
        return wanted, result.reason


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """What the engine knows about one target right now."""

    target: str
    service: str
    kind: str
    address: str
    state: str
    since: float
    reason: str
    latency_ms: float | None
    history: tuple[float | None, ...]
    p50: float | None
    p95: float | None
    ok: int
    total: int
    last_checked: float | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Scheduling figures, for the benchmark and for a status line."""

    started: int
    completed: int
    missed_rounds: int
    superseded: int
    in_flight: int


class _Runner:
    """Mutable per-target bookkeeping (only touched from the loop thread)."""

    __slots__ = (
        "damper",
        "handle",
        "history",
        "last_applied_round",
        "last_checked",
        "last_latency",
        "last_reason",
        "ok",
        "period_count",
        "period_latencies",
        "period_ok",
        "request",
        "since",
        "target",
        "total",
        "waiting",
    )

    def __init__(self, target: Target, history_len: int) -> None:
        self.target = target
        self.damper = Damper(
            target.failure_threshold, target.success_threshold, target.degraded_latency
        )
        self.history: deque[float | None] = deque(maxlen=history_len)
        self.since = time.time()
        self.last_reason = "not probed yet"
        self.last_latency: float | None = None
        self.last_checked: float | None = None
        self.last_applied_round = -1
        self.ok = 0
        self.total = 0
        self.period_ok = 0
        self.period_count = 0
        self.period_latencies: list[float] = []
        self.handle: asyncio.TimerHandle | None = None
        self.request: httpx.Request | None = None
        self.waiting = False


class ProbeEngine:
    """Probe every target on its own interval; report transitions and periodic samples.

    Use as `async with ProbeEngine(targets, on_events) as engine:` or call `start()` and
    `aclose()` yourself. `status(name)` and `snapshot()` read the current picture at any time.
    """

    def __init__(
        self,
        targets: Iterable[Target],
        on_events: EventSink | None = None,
        *,
        sample_interval: float = 5.0,
        max_concurrency: int = 500,
        history_len: int = 120,
        max_body: int = MAX_BODY,
        client: httpx.AsyncClient | None = None,
        lag_history: int = 100_000,
    ) -> None:
        self._targets = list(targets)
        names = [t.name for t in self._targets]
        if len(set(names)) != len(names):
            raise ValueError("target names must be unique")
        self._on_events = on_events
        self.sample_interval = sample_interval
        self._max_concurrency = max_concurrency
        self._max_body = max_body
        self._history_len = history_len
        self._runners = {t.name: _Runner(t, history_len) for t in self._targets}
        self._own_client = client is None
        self._client = client
        self._resolvers = Resolvers()
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sampler: asyncio.Task[None] | None = None
        self._running = False
        self._started = 0
        self._completed = 0
        self._missed = 0
        self._superseded = 0
        #: Seconds between when each probe was due and when it actually started.
        self.lags: deque[float] = deque(maxlen=lag_history)
        #: Seconds between when each probe was due and when its timer fired (loop delay alone,
        #: without the wait for a free concurrency slot).
        self.timer_lags: deque[float] = deque(maxlen=lag_history)

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> ProbeEngine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def targets(self) -> list[Target]:
        return list(self._targets)

    async def start(self) -> None:
        """Schedule every target, each at its own phase within its interval."""
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        self._semaphore = asyncio.Semaphore(self._max_concurrency)
        if self._client is None:
            context = None
            if any(t.address.lower().startswith("https:") for t in self._targets):
                # Loading the CA bundle takes tens of ms: keep it off the event loop.
                context = await asyncio.to_thread(httpx.create_ssl_context)
            self._client = make_client(context if context is not None else True)
        for runner in self._runners.values():
            if runner.target.kind == "http":
                try:
                    runner.request = build_request(self._client, runner.target)
                except httpx.InvalidURL:
                    runner.request = None  # each probe then fails with the URL's problem
        self._running = True
        now = self._loop.time()
        for runner in self._runners.values():
            interval = runner.target.interval
            # A stable phase per name spreads targets evenly and keeps runs reproducible.
            phase = (zlib.crc32(runner.target.name.encode()) / 2**32) * interval
            self._schedule(runner, now + phase, 0)
        if self.sample_interval > 0:
            self._sampler = asyncio.create_task(self._sample_loop(), name="probe-samples")

    async def aclose(self) -> None:
        """Stop scheduling, cancel probes in flight, emit the last samples, close the client."""
        if not self._running:
            return
        self._running = False
        for runner in self._runners.values():
            if runner.handle is not None:
                runner.handle.cancel()
                runner.handle = None
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
            self._sampler = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if any(r.period_count for r in self._runners.values()):
            self._emit([self._samples_event()])
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- scheduling -------------------------------------------------------------------------

    def _schedule(self, runner: _Runner, due: float, round_no: int) -> None:
        assert self._loop is not None
        runner.handle = self._loop.call_at(due, self._fire, runner, due, round_no)

    def _fire(self, runner: _Runner, due: float, round_no: int) -> None:
        if not self._running:
            return
        assert self._loop is not None
        self.timer_lags.append(self._loop.time() - due)
        if runner.waiting:
            # The last round is still waiting for a free slot: queueing another would only
            # grow a backlog (and the lag) without bound when probes are slower than the rate.
            self._missed += 1
        else:
            runner.waiting = True
            task = self._loop.create_task(self._probe(runner, due, round_no))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        interval = runner.target.interval
        next_due = due + interval
        now = self._loop.time()
        if next_due <= now:
            # The loop was stalled for more than an interval: skip, and count, the lost rounds.
            skipped = int((now - next_due) // interval) + 1
            self._missed += skipped
            next_due += skipped * interval
            round_no += skipped
        self._schedule(runner, next_due, round_no + 1)

    async def _probe(self, runner: _Runner, due: float, round_no: int) -> None:
        assert self._semaphore is not None and self._loop is not None
        async with self._semaphore:
            runner.waiting = False
            self._started += 1
            self.lags.append(self._loop.time() - due)
            target = runner.target
            if target.kind == "http":
                # Called directly, not through `_check`: every resumption of a probe passes
                # through each coroutine frame above the socket wait, so one fewer counts.
                assert self._client is not None
                result = await check_http(self._client, target, self._max_body, runner.request)
            else:
                result = await self._check(runner)
        self._completed += 1
        self._apply(runner, result, round_no)

    async def _check(self, runner: _Runner) -> ProbeResult:
        """A TCP or DNS check (HTTP ones are called straight from `_probe`)."""
        target = runner.target
        if target.kind == "tcp":
            return await check_tcp(target)
        if target.kind == "promql":
            assert self._client is not None
            return await check_promql(self._client, target, self._max_body)
        return await check_dns(target, self._resolvers)

    # -- results ----------------------------------------------------------------------------

    def _apply(self, runner: _Runner, result: ProbeResult, round_no: int) -> None:
        runner.total += 1
        runner.period_count += 1
        if result.ok:
            runner.ok += 1
            runner.period_ok += 1
            runner.period_latencies.append(result.latency_ms)
        if round_no < runner.last_applied_round:
            # A slow probe finished after a newer one: its result is counted but must not
            # overrule the newer observation.
            self._superseded += 1
            return
        runner.last_applied_round = round_no
        runner.history.append(result.latency_ms if result.ok else None)
        runner.last_latency = result.latency_ms
        runner.last_checked = time.time()
        runner.last_reason = result.reason
        before = runner.damper.state
        change = runner.damper.observe(result)
        if change is None:
            return
        state, reason = change
        runner.since = runner.last_checked
        runner.last_reason = reason
        self._emit(
            [
                ev.ProbeStateChanged(
                    ts=ev.format_ts(ev.utc_now()),
                    target=runner.target.name,
                    service=runner.target.service,
                    from_state=ProbeState(before),
                    to_state=ProbeState(state),
                    reason=reason,
                    latency_ms=round(result.latency_ms, 3),
                )
            ]
        )

    def _emit(self, batch: list[BaseEvent]) -> None:
        if self._on_events is None:
            return
        try:
            self._on_events(batch)
        except Exception:
            # The caller's sink failing must not stop probing; it is reported, not swallowed.
            log.exception("probe engine: on_events callback failed")

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sample_interval)
            self._emit([self._samples_event()])

    def _samples_event(self) -> ev.ProbeSamples:
        samples = []
        for runner in self._runners.values():
            latency = (
                round(statistics.median(runner.period_latencies), 3)
                if runner.period_latencies
                else None
            )
            samples.append(
                ev.ProbeSample(
                    target=runner.target.name,
                    state=ProbeState(runner.damper.state),
                    ok=runner.period_ok,
                    count=runner.period_count,
                    latency_ms=latency,
                )
            )
            runner.period_ok = runner.period_count = 0
            runner.period_latencies = []
        return ev.ProbeSamples(ts=ev.format_ts(ev.utc_now()), samples=samples)

    # -- reading ----------------------------------------------------------------------------

    def status(self, target: str) -> TargetStatus:
        """The current picture of one target (KeyError for an unknown name)."""
        runner = self._runners[target]
        history = tuple(runner.history)
        latencies = [v for v in history if v is not None]
        return TargetStatus(
            target=runner.target.name,
            service=runner.target.service,
            kind=runner.target.kind,
            address=runner.target.address,
            state=runner.damper.state,
            since=runner.since,
            reason=runner.last_reason,
            latency_ms=runner.last_latency,
            history=history,
            p50=percentile(latencies, 0.50),
            p95=percentile(latencies, 0.95),
            ok=runner.ok,
            total=runner.total,
            last_checked=runner.last_checked,
            tags=runner.target.tags,
        )

    def snapshot(self) -> dict[str, TargetStatus]:
        """Every target's status, in config order."""
        return {name: self.status(name) for name in self._runners}

    def stats(self) -> EngineStats:
        return EngineStats(
            started=self._started,
            completed=self._completed,
            missed_rounds=self._missed,
            superseded=self._superseded,
            in_flight=len(self._tasks),
        )
