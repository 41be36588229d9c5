"""The probe engine: schedules every target's checks and turns results into damped states.

It runs inside whatever asyncio loop owns it (the console's, `warroom probe`'s or a probe
worker shard's), never blocks it, and does not own the incident log: it hands
`ProbeStateChanged` events (on each transition) and, every `sample_interval`, one
`ProbeSamples` and one `ProbeEngineHealth` event to `on_events`, stamped with the time they
were observed, and the caller appends them. Scheduling uses the loop's own timer heap
(`call_at`): each target has a fixed phase spread over its interval, so 1,000 targets at 1 s
become a steady trickle rather than a burst once a second. Plain-HTTP probes of an address
on a fresh connection (most of them) run as loop callbacks (`rawhttp`), the rest as tasks.

No head-of-line blocking: there is no shared pool that a hung probe could hold a place in.
Each target may have `ceil(timeout / interval) + 1` rounds in flight, which is all the work
can ever need, and the engine's only global bound is the file descriptors it may open (each
probe holds one socket). So a hung target delays nobody but itself: when its own rounds are
all still in flight, its next round is skipped and counted as missed. Past the descriptor
budget rounds are skipped and counted too, never queued, so lag cannot grow without bound.

Latency is the service's: each check starts its clock at the connection attempt, and a probe
that started late (more than 10 % of its interval after it was due) or was in flight while
the event loop stalled is marked late. A late result counts as a success or a failure, but
its latency is never evidence for "degraded": it may include the prober's own delay.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import statistics
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
from warroom.probe.rawhttp import Prepared, RawHttpProbe, prepare

log = logging.getLogger(__name__)

EventSink = Callable[[list[BaseEvent]], None]

#: A probe that starts more than this share of its interval after it was due is late.
LATE_SHARE = 0.1
#: A loop delay above this makes the latency of probes in flight untrustworthy (each probe
#: waits for the loop a few times: connect, send, each read).
STALL_S = 0.02
#: How often the engine checks its own loop's delay (one cheap timer): a stall longer than
#: `STALL_S` plus this is always seen, whatever the probe timers do.
HEARTBEAT_S = 0.01
#: Samples built between two yields to the loop (a few ms of work).
SAMPLE_CHUNK = 250
#: File descriptors kept out of the probe budget: the log, pipes, the loop's own.
FD_RESERVE = 64

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


def rounds_in_flight(target: Target) -> int:
    """How many rounds of one target can be in flight at once: all its timeout can span."""
    return math.ceil(target.timeout / target.interval) + 1


def fd_budget(reserve: int = FD_RESERVE) -> int:
    """Sockets the engine may hold at once: the soft descriptor limit, raised to the hard one
    (as Go's runtime does), less a reserve for everything else the process opens."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(1, soft - reserve)


class Damper:
    """Threshold damping: a single failure (or a single success) never changes the state.

    `failure_threshold` consecutive failures make a target down; `success_threshold`
    consecutive successes make it up, or degraded when those successes were slower than the
    latency budget. A late success counts as a success but neither as slow nor as fast: its
    latency may be the prober's, so it never moves a target into (or out of) degraded.
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

    def observe(self, result: ProbeResult, late: bool = False) -> tuple[str, str] | None:
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
        slow = not late and self.degraded_ms is not None and result.latency_ms > self.degraded_ms
        if slow:
            self.slow, self.fast = self.slow + 1, 0
        elif not late:
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
    #: Probes whose latency was not judged: started late or in flight during a loop stall.
    late: int = 0


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Scheduling figures, for the benchmark and for a status line."""

    started: int
    completed: int
    missed_rounds: int
    superseded: int
    in_flight: int
    late: int = 0
    slots: int = 0


class _Runner:
    """Mutable per-target bookkeeping (only touched from the loop thread)."""

    __slots__ = (
        "damper",
        "handle",
        "history",
        "in_flight",
        "last_applied_round",
        "last_checked",
        "last_latency",
        "last_reason",
        "late",
        "max_in_flight",
        "ok",
        "period_count",
        "period_latencies",
        "period_ok",
        "raw",
        "request",
        "since",
        "target",
        "total",
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
        self.raw: Prepared | None = None
        self.in_flight = 0
        self.max_in_flight = rounds_in_flight(target)
        self.late = 0


class ProbeEngine:
    """Probe every target on its own interval; report transitions, samples and its own health.

    Use as `async with ProbeEngine(targets, on_events) as engine:` or call `start()` and
    `aclose()` yourself. `status(name)` and `snapshot()` read the current picture at any time;
    `health()` the engine's own figures since the last health event. `shard` and `shards`
    only label the health events of one of several engines sharing the work.
    """

    def __init__(
        self,
        targets: Iterable[Target],
        on_events: EventSink | None = None,
        *,
        sample_interval: float = 5.0,
        max_concurrency: int | None = None,
        history_len: int = 120,
        max_body: int = MAX_BODY,
        client: httpx.AsyncClient | None = None,
        lag_history: int = 100_000,
        shard: int = 0,
        shards: int = 1,
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Raw probes in flight and whose they are.
        self._raw: dict[RawHttpProbe, _Runner] = {}
        self._sampler: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._running = False
        self.shard = shard
        self.shards = shards
        #: Probes in flight may hold at most this many sockets (see the module docstring).
        self.slots = 0
        self._in_flight = 0
        self._started = 0
        self._completed = 0
        self._missed = 0
        self._superseded = 0
        self._late = 0
        #: Loop time of the last stall over `STALL_S` seen by a timer (-inf: none yet).
        self._stall_at = -math.inf
        self._period = _Period()
        #: Seconds between when each probe was due and when it actually started.
        self.lags: deque[float] = deque(maxlen=lag_history)
        #: Seconds between when each probe was due and when its timer fired (loop delay alone).
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
        needed = sum(runner.max_in_flight for runner in self._runners.values())
        self.slots = min(needed, fd_budget()) if needed else 0
        if self._max_concurrency is not None:
            self.slots = min(self.slots, self._max_concurrency)
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
                runner.raw = prepare(self._client, runner.target)
        self._running = True
        now = self._loop.time()
        self._period = _Period(started=now)
        for runner in self._runners.values():
            interval = runner.target.interval
            # A stable phase per name spreads targets evenly and keeps runs reproducible.
            phase = (zlib.crc32(runner.target.name.encode()) / 2**32) * interval
            self._schedule(runner, now + phase, 0)
        self._heartbeat = self._loop.call_at(now + HEARTBEAT_S, self._beat, now + HEARTBEAT_S)
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
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
            self._sampler = None
        for probe, runner in list(self._raw.items()):
            probe.cancel()
            runner.in_flight -= 1
            self._in_flight -= 1
        self._raw.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if any(r.period_count for r in self._runners.values()):
            self._emit([self._samples_event(), self._health_event()])
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- scheduling -------------------------------------------------------------------------

    def _schedule(self, runner: _Runner, due: float, round_no: int) -> None:
        assert self._loop is not None
        runner.handle = self._loop.call_at(due, self._fire, runner, due, round_no)

    def _beat(self, due: float) -> None:
        """Notice loop stalls even when no probe timer is due (few targets, long intervals)."""
        if not self._running:
            return
        assert self._loop is not None
        now = self._loop.time()
        if now - due > STALL_S:
            self._stall_at = now
        self._heartbeat = self._loop.call_at(now + HEARTBEAT_S, self._beat, now + HEARTBEAT_S)

    def _fire(self, runner: _Runner, due: float, round_no: int) -> None:
        if not self._running:
            return
        assert self._loop is not None
        now = self._loop.time()
        timer_lag = now - due
        self.timer_lags.append(timer_lag)
        if timer_lag > STALL_S:
            self._stall_at = now
        if runner.in_flight >= runner.max_in_flight or self._in_flight >= self.slots:
            # Every round this target's timeout can span is still in flight (it hangs), or
            # the descriptor budget is spent: skip the round rather than queue it, so the
            # cost stays with the target itself and the lag cannot grow.
            self._missed += 1
            self._period.missed += 1
        else:
            runner.in_flight += 1
            self._in_flight += 1
            if self._in_flight > self._period.peak:
                self._period.peak = self._in_flight
            if runner.raw is not None:
                self._begin_raw(runner, runner.raw, due, round_no, now)
            else:
                task = self._loop.create_task(self._probe(runner, due, round_no))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        interval = runner.target.interval
        next_due = due + interval
        if next_due <= now:
            # The loop was stalled for more than an interval: skip, and count, the lost rounds.
            skipped = int((now - next_due) // interval) + 1
            self._missed += skipped
            self._period.missed += skipped
            next_due += skipped * interval
            round_no += skipped
        self._schedule(runner, next_due, round_no + 1)

    def _begin_raw(
        self, runner: _Runner, prepared: Prepared, due: float, round_no: int, now: float
    ) -> None:
        """A plain-HTTP probe straight from its timer, as loop callbacks (see `rawhttp`)."""
        assert self._loop is not None
        lag = now - due
        self._started += 1
        self.lags.append(lag)
        self._period.lags.append(lag)
        late = lag > LATE_SHARE * runner.target.interval

        def done(probe: RawHttpProbe, result: ProbeResult) -> None:
            del self._raw[probe]
            runner.in_flight -= 1
            self._in_flight -= 1
            self._completed += 1
            self._period.completed += 1
            self._judge(runner, result, round_no, now, late)

        probe = RawHttpProbe(self._loop, runner.target, prepared, self._max_body, done)
        self._raw[probe] = runner
        probe.begin()

    async def _probe(self, runner: _Runner, due: float, round_no: int) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            started = loop.time()
            lag = started - due
            self._started += 1
            self.lags.append(lag)
            self._period.lags.append(lag)
            target = runner.target
            if target.kind == "http":
                # Called directly, not through `_check`: every resumption of a probe passes
                # through each coroutine frame above the socket wait, so one fewer counts.
                assert self._client is not None
                result = await check_http(self._client, target, self._max_body, runner.request)
            else:
                result = await self._check(runner)
        finally:
            runner.in_flight -= 1
            self._in_flight -= 1
        self._completed += 1
        self._period.completed += 1
        self._judge(runner, result, round_no, started, lag > LATE_SHARE * target.interval)

    def _judge(
        self, runner: _Runner, result: ProbeResult, round_no: int, started: float, late: bool
    ) -> None:
        if not late:
            assert self._loop is not None
            beat = self._heartbeat
            # A stall seen since the probe started, or one the heartbeat has yet to see: the
            # loop may have stalled in this very pass, after learning the answer was there
            # and before reading it, with the heartbeat's timer still waiting behind us.
            late = self._stall_at >= started or (
                beat is not None and self._loop.time() - beat.when() > STALL_S
            )
        self._apply(runner, result, round_no, late)

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

    def _apply(self, runner: _Runner, result: ProbeResult, round_no: int, late: bool) -> None:
        runner.total += 1
        runner.period_count += 1
        if late:
            runner.late += 1
            self._late += 1
            self._period.late += 1
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
        change = runner.damper.observe(result, late)
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
            ts = ev.format_ts(ev.utc_now())
            health = self._health_event()
            period = self._take_period()
            samples: list[ev.ProbeSample] = []
            for start in range(0, len(period), SAMPLE_CHUNK):
                samples += [_sample(*row) for row in period[start : start + SAMPLE_CHUNK]]
                # Building thousands of samples takes tens of ms: let probes run meanwhile.
                await asyncio.sleep(0)
            self._emit([ev.ProbeSamples(ts=ts, samples=samples), health])

    def _take_period(self) -> list[tuple[str, str, int, int, list[float]]]:
        """Every target's counts since the last sample, and a fresh period for each."""
        rows = []
        for runner in self._runners.values():
            rows.append(
                (
                    runner.target.name,
                    runner.damper.state,
                    runner.period_ok,
                    runner.period_count,
                    runner.period_latencies,
                )
            )
            runner.period_ok = runner.period_count = 0
            runner.period_latencies = []
        return rows

    def _samples_event(self) -> ev.ProbeSamples:
        samples = [_sample(*row) for row in self._take_period()]
        return ev.ProbeSamples(ts=ev.format_ts(ev.utc_now()), samples=samples)

    def health(self) -> ev.ProbeEngineHealth:
        """The engine's own figures since the last health event (or the start)."""
        assert self._loop is not None
        period = self._period
        elapsed = max(self._loop.time() - period.started, 1e-9)
        lag_p50 = percentile(period.lags, 0.50)
        lag_p99 = percentile(period.lags, 0.99)
        return ev.ProbeEngineHealth(
            ts=ev.format_ts(ev.utc_now()),
            shard=self.shard,
            shards=self.shards,
            targets=len(self._targets),
            interval_s=min((t.interval for t in self._targets), default=0.0),
            period_s=round(elapsed, 3),
            probes=period.completed,
            probes_per_s=round(period.completed / elapsed, 1),
            lag_p50_ms=None if lag_p50 is None else round(lag_p50 * 1000, 2),
            lag_p99_ms=None if lag_p99 is None else round(lag_p99 * 1000, 2),
            missed_rounds=period.missed,
            late=period.late,
            slots_in_use=self._in_flight,
            slots_peak=max(period.peak, self._in_flight),
            slots=self.slots,
        )

    def _health_event(self) -> ev.ProbeEngineHealth:
        event = self.health()
        assert self._loop is not None
        self._period = _Period(started=self._loop.time(), peak=self._in_flight)
        return event

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
            late=runner.late,
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
            in_flight=self._in_flight,
            late=self._late,
            slots=self.slots,
        )


def _sample(name: str, state: str, ok: int, count: int, latencies: list[float]) -> ev.ProbeSample:
    latency = round(statistics.median(latencies), 3) if latencies else None
    return ev.ProbeSample(
        target=name, state=ProbeState(state), ok=ok, count=count, latency_ms=latency
    )


@dataclass(slots=True)
class _Period:
    """What the engine counts between two health events."""

    started: float = 0.0
    completed: int = 0
    missed: int = 0
    late: int = 0
    peak: int = 0
    lags: list[float] = field(default_factory=list)
