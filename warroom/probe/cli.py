"""`warroom probe`: run the probe engine headless, print state changes, end with a summary.

Targets come from `--config FILE`, `--sim URL` (the simulated fleet's `GET /targets`) or
`./warroom.toml`. With `--log`, state changes and samples are group-committed to the incident
log. Ctrl-C (or `--duration`) stops probing and prints the summary; it is never a traceback.
The engine's own health (probes/s, start lag, missed rounds, slots) is printed too: with
`--json` every report as `{"engine": "health", ...}` and the run's totals as
`{"engine": "summary", ...}`; as text, a warning when probing falls behind and a footer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from warroom import events as ev
from warroom.config import WarroomConfig, config_from_sim, find_default_config, load_config
from warroom.errors import WarroomError
from warroom.probe.engine import EngineStats, ProbeEngine, TargetStatus, percentile
from warroom.signals import stop_on_signals
from warroom.state import engine_problem
from warroom.timefmt import clock as local_clock
from warroom.words import plural

STATE_STYLE = {"up": "green", "degraded": "yellow", "down": "bold red", "unknown": "dim"}


def load_targets_config(config: str | None, sim: str | None) -> WarroomConfig:
    """The config the user pointed at, or `./warroom.toml`; a one-line error if there is none."""
    if sim:
        return config_from_sim(sim)
    if config:
        return load_config(config)
    default = find_default_config()
    if default is None:
        raise WarroomError("no targets: pass --config FILE or --sim URL, or create ./warroom.toml")
    return load_config(default)


def _json_line(out: TextIO, data: dict[str, Any]) -> None:
    out.write(orjson.dumps(data).decode() + "\n")
    out.flush()


def change_record(event: ev.ProbeStateChanged) -> dict[str, Any]:
    return {
        "ts": event.ts,
        "target": event.target,
        "service": event.service,
        "from": event.from_state,
        "state": event.to_state,
        "reason": event.reason,
        "latency_ms": event.latency_ms,
    }


def summary_record(status: TargetStatus) -> dict[str, Any]:
    return {
        "summary": True,
        "target": status.target,
        "service": status.service,
        "kind": status.kind,
        "state": status.state,
        "reason": status.reason,
        "ok": status.ok,
        "total": status.total,
        "p50_ms": None if status.p50 is None else round(status.p50, 3),
        "p95_ms": None if status.p95 is None else round(status.p95, 3),
    }


def health_record(event: ev.ProbeEngineHealth) -> dict[str, Any]:
    return {"engine": "health", "ts": event.ts, **event.payload(), "problem": engine_problem(event)}


def engine_summary_record(stats: EngineStats, lags: list[float], elapsed: float) -> dict[str, Any]:
    """The whole run's scheduling figures (lags in seconds)."""
    p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
    return {
        "engine": "summary",
        "probes": stats.completed,
        "probes_per_s": round(stats.completed / max(elapsed, 1e-9), 1),
        "lag_p50_ms": None if p50 is None else round(p50 * 1000, 2),
        "lag_p99_ms": None if p99 is None else round(p99 * 1000, 2),
        "missed_rounds": stats.missed_rounds,
        "late": stats.late,
        "slots": stats.slots,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


class Printer:
    """Prints each state change as it happens, as text or one JSON object per line."""

    def __init__(self, as_json: bool, out: TextIO) -> None:
        self.as_json = as_json
        self.out = out
        self._console: Any = None
        self._problem = ""
        if not as_json:
            from rich.console import Console

            self._console = Console(file=out, highlight=False, soft_wrap=True)

    def changes(self, batch: list[ev.BaseEvent]) -> None:
        for event in batch:
            if isinstance(event, ev.ProbeStateChanged):
                self.change(event)
            elif isinstance(event, ev.ProbeEngineHealth):
                self.health(event)

    def health(self, event: ev.ProbeEngineHealth) -> None:
        """Every report as JSON; as text, only when probing starts or stops falling behind."""
        if self.as_json:
            _json_line(self.out, health_record(event))
            return
        problem = engine_problem(event)
        clock = local_clock(event.ts)
        if problem and not self._problem:
            self._console.print(f"[dim]{clock}[/] [bold yellow]probing degraded:[/] {problem}")
        elif self._problem and not problem:
            self._console.print(f"[dim]{clock}[/] probing keeps up again")
        self._problem = problem

    def engine_summary(self, record: dict[str, Any]) -> None:
        if self.as_json:
            _json_line(self.out, record)
            return
        style = "bold yellow" if record["missed_rounds"] else "dim"
        self._console.print(
            f"[{style}]engine: {plural(record['probes'], 'probe')} "
            f"({record['probes_per_s']:g}/s), "
            f"start lag p50 {_ms(record['lag_p50_ms'])} ms p99 {_ms(record['lag_p99_ms'])} ms, "
            f"{plural(record['missed_rounds'], 'missed round')}, {record['late']} late, "
            f"{plural(record['slots'], 'slot')}[/]"
        )

    def change(self, event: ev.ProbeStateChanged) -> None:
        if self.as_json:
            _json_line(self.out, change_record(event))
            return
        from warroom.untrusted import markup as escape

        clock = local_clock(event.ts)
        style = STATE_STYLE.get(event.to_state, "")
        latency = "" if event.latency_ms is None else f" [dim]{event.latency_ms:.0f} ms[/]"
        self._console.print(
            f"[dim]{clock}[/] {escape(event.target)}  {event.from_state} -> "
            f"[{style}]{event.to_state}[/]  {escape(event.reason)}{latency}"
        )

    def summary(self, snapshot: dict[str, TargetStatus], elapsed: float) -> None:
        if self.as_json:
            for status in snapshot.values():
                _json_line(self.out, summary_record(status))
            return
        from rich.table import Table

        from warroom.untrusted import markup as escape

        table = Table(title=f"probe summary ({elapsed:.1f}s)", title_justify="left")
        for column, justify in (
            ("target", "left"),
            ("service", "left"),
            ("kind", "left"),
            ("state", "left"),
            ("ok/total", "right"),
            ("p50 ms", "right"),
            ("p95 ms", "right"),
            ("last reason", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for status in snapshot.values():
            style = STATE_STYLE.get(status.state, "")
            table.add_row(
                escape(status.target),
                escape(status.service),
                status.kind,
                f"[{style}]{status.state}[/]",
                f"{status.ok}/{status.total}",
                _ms(status.p50),
                _ms(status.p95),
                escape(status.reason),
            )
        self._console.print(table)


async def probe_until_stopped(
    engine: ProbeEngine, duration: float | None, stop: asyncio.Event
) -> None:
    """Run the started engine until `duration` passes or `stop` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration):
            await stop.wait()


async def _run_async(config: WarroomConfig, args: argparse.Namespace, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    printer = Printer(args.json, out)
    sinks: list[Callable[[list[ev.BaseEvent]], None]] = [printer.changes]
    async with contextlib.AsyncExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        if args.log:
            from warroom.store import group_committer, open_store

            incident_log = open_store(args.log, create=True)
            stack.callback(incident_log.close)
            if incident_log.recovered is not None:
                print(f"warroom: {incident_log.recovered.describe()}", file=sys.stderr)
            committer = await stack.enter_async_context(group_committer(incident_log, interval=0.2))
            sinks.append(committer.submit_many)

        def on_events(batch: list[ev.BaseEvent]) -> None:
            for sink in sinks:
                sink(batch)

        engine = ProbeEngine(config.resolved_targets(), on_events)
        start = loop.time()
        async with engine:
            await probe_until_stopped(engine, args.duration, stop)
        # Before the log's last flush (and a write error, raised on leaving the stack).
        elapsed = loop.time() - start
        printer.engine_summary(engine_summary_record(engine.stats(), list(engine.lags), elapsed))
        printer.summary(engine.snapshot(), elapsed)
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of `warroom probe`."""
    config = load_targets_config(getattr(args, "config", None), getattr(args, "sim", None))
    if not config.targets:
        raise WarroomError("no targets to probe: the config has no [[targets]]")
    if args.duration is not None and args.duration <= 0:
        raise WarroomError("--duration must be more than zero")
    return asyncio.run(_run_async(config, args, sys.stdout))
