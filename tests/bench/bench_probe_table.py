"""Benchmark: CPU cost of the probe table alone (process time, so a loaded machine matters less).

Run `.venv/bin/python tests/bench/bench_probe_table.py [--targets 1000 5000]`; prints one JSON
line with, per target count, the median CPU milliseconds (update + paint, in a 140x42 app)
of: a samples event changing every target; a tick of 2 % of the targets changing state (with
the re-sort it causes); a cursor move; the once-a-second clock refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from textual.app import App, ComposeResult  # noqa: E402

from warroom import events as ev  # noqa: E402
from warroom.state import IncidentState, fold, reduce  # noqa: E402
from warroom.tui.widgets.probe_table import ProbeTable  # noqa: E402

START = datetime(2025, 10, 20, 6, 0, tzinfo=UTC)
STATES = [ev.ProbeState.UP, ev.ProbeState.DEGRADED, ev.ProbeState.DOWN]


def stamp(event: ev.BaseEvent, seconds: float) -> ev.BaseEvent:
    return event.model_copy(update={"ts": ev.format_ts(START + timedelta(seconds=seconds))})


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ProbeTable(id="probes")


async def measure(targets: int, rounds: int) -> dict[str, float]:
    rng = random.Random(3)
    names = [f"t{i:05d}" for i in range(targets)]
    current = {name: ev.ProbeState.UP for name in names}
    state: IncidentState = fold(
        stamp(
            ev.ProbeStateChanged(
                target=name,
                service=f"svc{i % 97:02d}",
                from_state=ev.ProbeState.UNKNOWN,
                to_state=ev.ProbeState.UP,
                latency_ms=20.0,
            ),
            i / 1000,
        )
        for i, name in enumerate(names)
    )
    clock = 60.0
    app = TableApp()
    costs: dict[str, list[float]] = {"samples": [], "tick": [], "cursor": [], "clock": []}
    async with app.run_test(size=(140, 42)) as pilot:
        table = app.query_one(ProbeTable)
        table.update_from(state, START + timedelta(seconds=clock))
        table.focus()
        await pilot.pause()

        async def timed(name: str, action: Any) -> None:
            await pilot.pause()
            start = time.process_time()
            action()
            await pilot.pause()
            costs[name].append((time.process_time() - start) * 1000)

        for _ in range(rounds):
            clock += 1
            samples = ev.ProbeSamples(
                samples=[
                    ev.ProbeSample(
                        target=name,
                        state=current[name],
                        ok=4,
                        count=5,
                        latency_ms=round(rng.uniform(5, 900), 1),
                    )
                    for name in names
                ]
            )
            state = reduce(state, stamp(samples, clock))
            await timed(
                "samples",
                lambda s=state, c=clock: table.update_from(s, START + timedelta(seconds=c)),
            )
            for name in rng.sample(names, max(1, targets // 50)):
                new = rng.choice([s for s in STATES if s != current[name]])
                change = ev.ProbeStateChanged(
                    target=name, from_state=current[name], to_state=new, latency_ms=99.0
                )
                current[name] = new
                state = reduce(state, stamp(change, clock))
            await timed(
                "tick", lambda s=state, c=clock: table.update_from(s, START + timedelta(seconds=c))
            )
            row = table.cursor_row
            await timed("cursor", lambda r=row: table.move_cursor(row=r + 1 if r < 20 else 0))
            await timed(
                "clock", lambda c=clock: table.refresh_times(START + timedelta(seconds=c + 0.5))
            )
        idle: list[float] = []
        for _ in range(rounds):
            await pilot.pause()
            start = time.process_time()
            await pilot.pause()
            idle.append((time.process_time() - start) * 1000)
    floor = statistics.median(idle)
    figures = {
        f"{k}_ms": round(max(0.0, statistics.median(v) - floor), 2) for k, v in costs.items()
    }
    return {**figures, "pause_floor_ms": round(floor, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "probe_table"}
    for targets in args.targets:
        result[f"table_{targets}"] = asyncio.run(measure(targets, args.rounds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
