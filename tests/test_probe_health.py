"""The probe engine's health as events, and the pure verdict: is probing degraded, since when."""

from __future__ import annotations

from typing import Any

from warroom import events as ev
from warroom.probe.checks import ProbeResult
from warroom.probe.engine import Damper
from warroom.state import IncidentState, engine_problem, fold, probing_degraded, reduce


def health(ts: str, **fields: Any) -> ev.ProbeEngineHealth:
    base: dict[str, Any] = {
        "targets": 100,
        "interval_s": 1.0,
        "period_s": 5.0,
        "probes": 500,
        "probes_per_s": 100.0,
        "lag_p50_ms": 1.0,
        "lag_p99_ms": 8.0,
        "slots": 200,
    }
    return ev.ProbeEngineHealth(ts=f"2026-12-01T10:00:{ts}.000000Z", **{**base, **fields})


def test_problem_is_missed_rounds_or_lag_over_a_tenth_of_the_interval() -> None:
    assert engine_problem(health("05")) == ""
    assert engine_problem(health("05", lag_p99_ms=100.0)) == ""
    assert engine_problem(health("05", lag_p99_ms=101.0)) == (
        "probes start 101 ms late (p99), over 10 % of the 1s interval"
    )
    assert engine_problem(health("05", missed_rounds=1)) == "1 missed round in 5s"
    assert engine_problem(health("05", missed_rounds=7, lag_p99_ms=900.0)) == (
        "7 missed rounds in 5s"
    )
    assert engine_problem(health("05", lag_p99_ms=None, probes=0)) == ""


def test_degraded_since_the_first_bad_report_until_every_shard_keeps_up() -> None:
    state = fold(
        [
            health("05", shards=2),
            health("05", shard=1, shards=2),
            health("10", shards=2, missed_rounds=3),
            health("10", shard=1, shards=2, lag_p99_ms=400.0),
            health("15", shards=2),
        ]
    )
    degraded = probing_degraded(state)
    # Shard 2 still lags: the period opened at 10 s goes on, and says why now.
    assert degraded is not None and degraded.since.endswith("10:00:10.000000Z")
    assert degraded.reason.startswith("probes start 400 ms late")
    state = reduce(state, health("15", shard=1, shards=2))
    assert probing_degraded(state) is None
    [period] = state.probing.periods
    assert (period.start[14:19], period.end[14:19], period.reason) == (
        "00:10",
        "00:15",
        "3 missed rounds in 5s",
    )
    assert sorted(state.probing.engines) == [0, 1]
    assert state.probing.engines[1].lag_p99_ms == 8.0


def test_a_restart_with_fewer_shards_forgets_the_others() -> None:
    state = fold([health("05", shard=1, shards=2, missed_rounds=2), health("10", shards=1)])
    assert list(state.probing.engines) == [0]
    assert probing_degraded(state) is None
    assert state.probing.periods[-1].end.endswith("10:00:10.000000Z")


def test_a_silent_engine_is_degraded_when_now_is_given() -> None:
    state = fold([health("05")])
    assert probing_degraded(state, now="2026-12-01T10:00:19.000000Z") is None
    silent = probing_degraded(state, now="2026-12-01T10:00:21.000000Z")
    assert silent is not None
    assert (silent.since[14:19], silent.reason) == (
        "00:05",
        "no report from probe engine 1 for 16s",
    )
    assert probing_degraded(IncidentState(), now="2026-12-01T10:00:21.000000Z") is None


def test_health_reports_stay_out_of_the_log_tail_and_parse_from_the_log() -> None:
    event = health("05", missed_rounds=1)
    state = reduce(IncidentState(), event)
    assert state.tail == () and state.event_count == 1
    parsed = ev.parse_event(event.model_dump(mode="json"))
    assert parsed == event and not type(parsed).durable and not type(parsed).operator
    assert event.summary() == (
        "probe engine 1/1: 100 probes/s, lag p99 8 ms, 1 missed rounds, 0/200 slots"
    )


SLOW_LATE = ProbeResult(True, 900.0, "HTTP 200 in 900 ms")
FAST = ProbeResult(True, 5.0, "HTTP 200 in 5 ms")
SLOW = ProbeResult(True, 400.0, "HTTP 200 in 400 ms")


def test_late_successes_never_make_or_unmake_degraded() -> None:
    damper = Damper(failure_threshold=2, success_threshold=2, degraded_latency=0.25)
    assert [damper.observe(SLOW_LATE, late=True) for _ in range(2)][-1] is not None
    assert damper.state == "up"
    for _ in range(5):
        assert damper.observe(SLOW_LATE, late=True) is None
    assert damper.observe(SLOW) is None and damper.observe(SLOW) == (
        "degraded",
        "latency 400 ms over 250 ms budget",
    )
    # Late answers neither confirm nor end it; fast on-time ones do.
    assert damper.observe(FAST, late=True) is None and damper.observe(FAST) is None
    assert damper.observe(FAST) is not None and damper.state == "up"
