"""Benchmark: console responsiveness with 1,000 (and 5,000) live targets churning.

Run `.venv/bin/python tests/bench/bench_tui.py [--targets 1000 5000] [--presses 60]`;
prints one JSON line. Targets (issue 5): a key press reaches the screen in under 50 ms at
p95 while 1,000 targets change state, and the first frame appears in under 1.5 s.

Churn: through the real path (GroupCommitter -> log file -> `app.ingest`), every 100 ms 2 %
of the targets change state, and every second a `ProbeSamples` for all of them lands (no
network). Key latency: the key event is handed to the app the way the terminal driver does,
and the clock stops at the first screen refresh (compositor update, the frame handed to the
terminal) that shows its effect, checked inside that refresh: `cursor_*` moves the probe
table cursor, `dialog_*` opens the note dialog (then escape), `typing_*` is a letter typed
into that dialog's field; `--presses` cursor moves and dialogs, 3 letters in every third.
`first_frame_s` is measured in a fresh process, from its start (imports included) to the
first painted frame of the main screen (Textual's Ready), on a log that already holds the
targets (a resumed incident); `first_frame_from_app_s` counts from App construction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROCESS_START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import Input  # noqa: E402

from warroom import events as ev  # noqa: E402
from warroom.log.store import GroupCommitter, IncidentLog  # noqa: E402
from warroom.tui.app import WarroomApp  # noqa: E402
from warroom.tui.screens.dialogs import FormDialog  # noqa: E402

SIZE = (140, 42)
STATES = ["up", "degraded", "down"]


def fixture(path: Path, targets: int) -> IncidentLog:
    log = IncidentLog.open(path)
    log.append(ev.IncidentOpened(incident_id="bench", title="bench", severity=ev.Severity.SEV1))
    log.append_many(
        [
            ev.ProbeStateChanged(
                target=f"t{i:05d}",
                service=f"svc{i % 97:02d}",
                from_state="unknown",
                to_state="up",
                latency_ms=20.0,
            )
            for i in range(targets)
        ]
    )
    return log


class Churn:
    """Feeds synthetic probe events through a GroupCommitter into the running app."""

    def __init__(self, app: WarroomApp, targets: int, seed: int = 7) -> None:
        self.app = app
        self.targets = targets
        self.rng = random.Random(seed)
        self.states = {f"t{i:05d}": "up" for i in range(targets)}
        self.events = 0

    async def run(self) -> None:
        committer = GroupCommitter(
            self.app.incident_log, interval=0.1, on_committed=self.app.ingest, sync=False
        )
        flusher = asyncio.create_task(committer.run())
        tick = 0
        try:
            while True:
                await asyncio.sleep(0.1)
                tick += 1
                for _ in range(max(1, self.targets // 50)):
                    target = f"t{self.rng.randrange(self.targets):05d}"
                    old = self.states[target]
                    new = self.rng.choice([s for s in STATES if s != old])
                    self.states[target] = new
                    committer.submit(
                        ev.ProbeStateChanged(
                            target=target,
                            service=f"svc{int(target[1:]) % 97:02d}",
                            from_state=old,
                            to_state=new,
                            reason="bench",
                            latency_ms=self.rng.uniform(5, 900),
                        )
                    )
                    self.events += 1
                if tick % 10 == 0:
                    committer.submit(
                        ev.ProbeSamples(
                            samples=[
                                ev.ProbeSample(
                                    target=t,
                                    state=s,
                                    ok=4,
                                    count=5,
                                    latency_ms=round(self.rng.uniform(5, 900), 1),
                                )
                                for t, s in self.states.items()
                            ]
                        )
                    )
                    self.events += 1
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def presses_timed(
    app: WarroomApp, pilot: Any, press: Any, presses: int
) -> tuple[list[float], list[float], list[float]]:
    """Cursor moves up and down the probe table, the note dialog opened (some letters typed
    into it) and closed."""
    table = app.main_screen.view.probe_table
    cursor: list[float] = []
    for i in range(presses):
        key = "down" if (i // 10) % 2 == 0 else "up"
        if table.cursor_row == 0:
            key = "down"
        elif table.cursor_row >= table.row_count - 1:
            key = "up"
        # Churn re-sorts rows under the cursor (which keeps its target), so "moved"
        # means the cursor is on another target.
        before = table.selected_target
        cursor.append(await press(key, lambda b=before: table.selected_target != b))
    dialog: list[float] = []
    typing: list[float] = []
    for i in range(presses):
        latency = await press(
            "n", lambda: isinstance(app.screen, FormDialog) and app.screen.is_mounted
        )
        dialog.append(latency)
        if i % 3 == 0:  # a few letters of a note, typed while the probes keep changing
            field = app.screen.query_one(Input)
            for letter in "dns":
                typed = field.value + letter
                typing.append(await press(letter, lambda t=typed, f=field: f.value == t))
        await pilot.press("escape")
        await pilot.pause()
    return cursor, dialog, typing


async def measure_keys(targets: int, presses: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        app = WarroomApp(fixture(Path(tmp) / "bench.jsonl", targets))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            churn = Churn(app, targets)
            feeder = asyncio.create_task(churn.run())
            await asyncio.sleep(1.5)  # let the churn reach steady state

            # The clock stops inside the first screen refresh (the frame handed to the
            # terminal) of the screen on top at which the key's effect holds.
            pending: dict[str, Any] = {}
            original_refresh = Screen._compositor_refresh

            def refreshed(screen: Screen) -> None:
                original_refresh(screen)
                if pending and "at" not in pending and screen is app.screen and pending["done"]():
                    pending["at"] = time.perf_counter()

            async def press(key: str, done: Any) -> float:
                await asyncio.sleep(0.02 + random.random() * 0.05)
                pending.clear()
                pending["done"] = done
                start = time.perf_counter()
                app._driver.send_message(events.Key(key, None))  # type: ignore[union-attr]
                while "at" not in pending:
                    await asyncio.sleep(0.0005)
                    if time.perf_counter() - start > 5:
                        raise SystemExit(f"key {key!r} had no visible effect within 5 s")
                latency = (pending["at"] - start) * 1000
                pending.clear()
                return latency

            Screen._compositor_refresh = refreshed  # type: ignore[method-assign]
            try:
                cursor, dialog, typing = await presses_timed(app, pilot, press, presses)
            finally:
                Screen._compositor_refresh = original_refresh  # type: ignore[method-assign]
                feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)
        table = app.main_screen.view.probe_table
        return {
            "targets": targets,
            "cursor_p50_ms": round(statistics.median(cursor), 1),
            "cursor_p95_ms": round(p95(cursor), 1),
            "dialog_p50_ms": round(statistics.median(dialog), 1),
            "dialog_p95_ms": round(p95(dialog), 1),
            "typing_p50_ms": round(statistics.median(typing), 1),
            "typing_p95_ms": round(p95(typing), 1),
            "churn_events": churn.events,
            "rows": table.row_count,
        }


FIRST_FRAME_CHILD = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
from warroom.log.store import IncidentLog
from warroom.tui.app import WarroomApp

class Timed(WarroomApp):
    def on_ready(self):
        self.exit((time.perf_counter() - start, time.perf_counter() - built,
                   self.main_screen.view.probe_table.row_count))

built = time.perf_counter()
app = Timed(IncidentLog.open({log!r}))
built = time.perf_counter()
app.run(headless=True, size=(140, 42))
print(*app.return_value)
"""


def measure_first_frame(targets: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        fixture(path, targets).close()
        script = FIRST_FRAME_CHILD.format(root=str(ROOT), log=str(path))
        spawned = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"first-frame child failed: {out.stderr.strip()[-2000:]}")
        total = time.perf_counter() - spawned
        from_start, from_app, rows = out.stdout.split()
        assert int(rows) == targets, out.stdout
        return {
            "first_frame_s": round(total, 3),
            "first_frame_in_process_s": round(float(from_start), 3),
            "first_frame_from_app_s": round(float(from_app), 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--presses", type=int, default=60)
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "tui"}
    result.update(measure_first_frame(args.targets[0]))
    for targets in args.targets:
        figures = asyncio.run(measure_keys(targets, args.presses))
        result[f"keys_{targets}"] = figures
    first = result[f"keys_{args.targets[0]}"]
    result["key_p95_ms"] = max(first[f"{k}_p95_ms"] for k in ("cursor", "dialog", "typing"))
    result["ok"] = result["key_p95_ms"] < 50 and result["first_frame_s"] < 1.5
    print(json.dumps(result))


if __name__ == "__main__":
    main()
