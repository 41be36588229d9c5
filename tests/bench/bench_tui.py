"""Benchmark: console responsiveness with 1,000 (and 5,000) live targets churning.

Run `.venv/bin/python tests/bench/bench_tui.py [--targets 1000 5000] [--presses 60]
[--live-targets 1000]`; prints one JSON line. Targets (issue 5): a key press reaches the
screen in under 50 ms at p95 while 1,000 targets change state, and the first frame appears
in under 1.5 s.

`keys_N`, synthetic churn through the probe worker's path (another process writes to the log
through a GroupCommitter; the console follows the file, no network): every 100 ms 2 % of the
targets change state, and every second a `ProbeSamples` for all of them lands. `live_N`, the
console as `warroom console --sim` runs it: its probe engine (a worker process writing to
the log the console follows) probes N real HTTP targets (20 per service) of a `scale-50`
fleet in another process every second, while every 100 ms a service's health flips (2 % of
the targets).

Key latency: the key event is handed to the app the way the terminal driver does, and the
clock stops at the first screen refresh (compositor update, the frame handed to the
terminal) that shows its effect, checked inside that refresh: `cursor_*` moves the probe
table cursor, `dialog_*` opens the note dialog (then escape), `typing_*` is a letter typed
into that dialog's field; `--presses` cursor moves and dialogs, 3 letters in every third.
`key_p95_ms` is the worst p95 of every `keys_N` and `live_N` (5,000 targets must hold too).
`*_cpu_p95_ms`: the p95 of the console's main-thread CPU time over the same spans (waits for
the next frame excluded), which a loaded machine does not inflate as it does the wall clock;
`console_cpu_share`: the console process's CPU seconds per second while the keys were timed.

`first_frame_s` is measured in a fresh process, from spawning it (wall clock, so the
interpreter's start-up counts) to the first painted frame of the main screen (Textual's
Ready), on a log that already holds the targets (a resumed incident);
`first_frame_in_process_s` counts from the script's first line to that frame,
`first_frame_from_app_s` from App construction.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    """Synthetic probe churn written to the log by a `GroupCommitter`, as the probe worker
    writes its results: every 100 ms 2 % of the targets change state, every second a
    `ProbeSamples` for all of them."""

    def __init__(self, log: IncidentLog, targets: int, seed: int = 7) -> None:
        self.log = log
        self.targets = targets
        self.rng = random.Random(seed)
        self.states = {f"t{i:05d}": "up" for i in range(targets)}

    async def run(self) -> None:
        committer = GroupCommitter(self.log, interval=0.1, sync=False)
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
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)


def churn_child(path: str, targets: int) -> None:
    """`--churn LOG N`: write `Churn` to LOG until stdin closes (the parent went)."""
    loop = asyncio.new_event_loop()
    churn = loop.create_task(Churn(IncidentLog.open(path), targets).run())
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1() or churn.cancel())
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(churn)


def start_churn(path: Path, targets: int) -> subprocess.Popen[bytes]:
    """The churn in another process, as the probe worker is: the console pays for reading
    and folding what it writes, not for building and encoding the events."""
    return subprocess.Popen(
        [sys.executable, __file__, "--churn", str(path), str(targets)], stdin=subprocess.PIPE
    )


def stop_churn(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


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
        cursor.append(await press(key, lambda b=before: table.selected_target != b, "cursor"))
    dialog: list[float] = []
    typing: list[float] = []
    for i in range(presses):
        latency = await press(
            "n", lambda: isinstance(app.screen, FormDialog) and app.screen.is_mounted, "dialog"
        )
        dialog.append(latency)
        if i % 3 == 0:  # a few letters of a note, typed while the probes keep changing
            field = app.screen.query_one(Input)
            for letter in "dns":
                typed = field.value + letter
                typing.append(await press(letter, lambda t=typed, f=field: f.value == t, "typing"))
        await pilot.press("escape")
        await pilot.pause()
    return cursor, dialog, typing


async def time_keys(app: WarroomApp, pilot: Any, presses: int) -> dict[str, Any]:
    """Key-to-screen latencies (ms) of `presses_timed` on the running `app`, wall clock and
    the main thread's CPU time over the same span (what a loaded machine does not inflate)."""
    # The clock stops inside the first screen refresh (the frame handed to the terminal) of
    # the screen on top at which the key's effect holds.
    pending: dict[str, Any] = {}
    original_refresh = Screen._compositor_refresh
    cpu: dict[str, list[float]] = {}

    def refreshed(screen: Screen) -> None:
        original_refresh(screen)
        if "shown" in pending and screen is app.screen and pending["done"]():
            pending.pop("shown").set_result((time.perf_counter(), time.thread_time()))

    async def press(key: str, done: Any, kind: str) -> float:
        await asyncio.sleep(0.02 + random.random() * 0.05)
        shown = asyncio.get_running_loop().create_future()
        pending.update(done=done, shown=shown)
        start, start_cpu = time.perf_counter(), time.thread_time()
        app._driver.send_message(events.Key(key, None))  # type: ignore[union-attr]
        try:
            at, at_cpu = await asyncio.wait_for(shown, 5)
        except TimeoutError:
            raise SystemExit(f"key {key!r} had no visible effect within 5 s") from None
        finally:
            pending.clear()
        cpu.setdefault(kind, []).append((at_cpu - start_cpu) * 1000)
        return (at - start) * 1000

    Screen._compositor_refresh = refreshed  # type: ignore[method-assign]
    try:
        cursor, dialog, typing = await presses_timed(app, pilot, press, presses)
    finally:
        Screen._compositor_refresh = original_refresh  # type: ignore[method-assign]
    figures: dict[str, Any] = {}
    for kind, wall in (("cursor", cursor), ("dialog", dialog), ("typing", typing)):
        figures[f"{kind}_p50_ms"] = round(statistics.median(wall), 1)
        figures[f"{kind}_p95_ms"] = round(p95(wall), 1)
        figures[f"{kind}_cpu_p95_ms"] = round(p95(cpu[kind]), 1)
    return figures


async def measure_keys(targets: int, presses: int) -> dict[str, Any]:
    """Synthetic churn written by another process (no network): the console's own cost."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        app = WarroomApp(fixture(path, targets), idle_gc=IDLE_GC)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            child = start_churn(path, targets)
            try:
                await asyncio.sleep(1.5)  # let the churn reach steady state
                seq_before, started = app.state.last_seq, time.perf_counter()
                cpu_before = time.process_time()
                figures = await time_keys(app, pilot, presses)
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_before
                churned = app.state.last_seq - seq_before
            finally:
                stop_churn(child)
        rows = app.main_screen.view.probe_table.row_count
    return {
        "targets": targets,
        **figures,
        "events_per_s": round(churned / elapsed),
        "console_cpu_share": round(cpu / elapsed, 2),
        "rows": rows,
    }


def spread_config(config: Any, count: int) -> Any:
    """`config` (a fleet's targets) with `count` HTTP targets cycling over its HTTP targets,
    all probed every second."""
    http = [t for t in config.targets if t.http]
    return config.model_copy(
        update={
            "targets": [
                http[i % len(http)].model_copy(
                    update={
                        "name": f"{http[i % len(http)].name}#{i}",
                        "interval": 1.0,
                        "timeout": 1.0,
                    }
                )
                for i in range(count)
            ]
        }
    )


async def flip_faults(fleet: Any, services: list[str], period: float, flips: list[int]) -> None:
    """Every `period`, break a healthy service (5xx) or mend a broken one, at random."""
    import httpx

    token = Path(fleet.token_path).read_text().strip()
    broken: set[str] = set()
    rng = random.Random(11)
    async with httpx.AsyncClient(
        base_url=fleet.url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
    ) as client:
        while True:
            await asyncio.sleep(period)
            service = rng.choice(services)
            fault = "recover" if service in broken else "error"
            response = await client.post("/faults", json={"service": service, "fault": fault})
            response.raise_for_status()
            broken.symmetric_difference_update({service})
            flips[0] += 1


async def measure_live(fleet: Any, targets: int, presses: int) -> dict[str, Any]:
    """The console as `warroom console --sim` runs it, its probe worker probing `targets`
    real HTTP targets of a fleet in another process every second, while a service's health
    flips every 100 ms (about 2 % of the targets a tick)."""
    from warroom.config import aconfig_from_sim
    from warroom.session.supervisor import ProbeSupervisor

    config = await aconfig_from_sim(fleet.url)
    spread = spread_config(config, targets)
    services = sorted({t.service for t in spread.resolved_targets()})
    with tempfile.TemporaryDirectory() as tmp:
        log = IncidentLog.open(Path(tmp) / "live.jsonl")
        log.append(ev.IncidentOpened(incident_id="live", title="live", severity=ev.Severity.SEV1))
        app = WarroomApp(log, idle_gc=IDLE_GC)
        app.session.attach_probes(ProbeSupervisor(spread, log.path))
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + 60
            while len(app.state.probes) < targets:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"only {len(app.state.probes)} of {targets} targets probed: {app.problems}"
                    )
                await asyncio.sleep(0.1)
            flips = [0]
            flipper = asyncio.create_task(flip_faults(fleet, services, 0.1, flips))
            await asyncio.sleep(3)  # faults landing, damping thresholds crossed
            seq_before = app.state.last_seq
            started = time.perf_counter()
            try:
                figures = await time_keys(app, pilot, presses)
            finally:
                flipper.cancel()
                await asyncio.gather(flipper, return_exceptions=True)
            elapsed = time.perf_counter() - started
        changes = sum(1 for e in log.read(seq_before + 1) if isinstance(e, ev.ProbeStateChanged))
    return {
        "targets": targets,
        **figures,
        "fault_flips": flips[0],
        "state_changes_per_s": round(changes / elapsed, 1),
        "seconds": round(elapsed, 1),
    }


FIRST_FRAME_CHILD = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
from warroom.log.store import IncidentLog
from warroom.tui.app import WarroomApp

class Timed(WarroomApp):
    def on_ready(self):
        self.exit((time.time(), time.perf_counter() - start, time.perf_counter() - built,
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
        spawned = time.time()
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"first-frame child failed: {out.stderr.strip()[-2000:]}")
        painted, from_start, from_app, rows = out.stdout.split()
        total = float(painted) - spawned
        assert int(rows) == targets, out.stdout
        return {
            "first_frame_s": round(total, 3),
            "first_frame_in_process_s": round(float(from_start), 3),
            "first_frame_from_app_s": round(float(from_app), 3),
        }


#: Whether the consoles measured run the idle-time cycle collector (`--no-idle-gc`: not).
IDLE_GC = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument(
        "--live-targets",
        type=int,
        default=1000,
        help="targets probed for real in the live run (0: skip it)",
    )
    parser.add_argument(
        "--no-idle-gc", action="store_true", help="leave Python's cycle collector as it is"
    )
    parser.add_argument("--churn", nargs=2, metavar=("LOG", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.churn:
        churn_child(args.churn[0], int(args.churn[1]))
        return
    global IDLE_GC
    IDLE_GC = not args.no_idle_gc
    result: dict[str, Any] = {"bench": "tui", "idle_gc": IDLE_GC}
    result.update(measure_first_frame(args.targets[0]))
    for targets in args.targets:
        figures = asyncio.run(measure_keys(targets, args.presses))
        result[f"keys_{targets}"] = figures
    worst = [result[f"keys_{targets}"] for targets in args.targets]
    if args.live_targets:
        from bench_probe import running_sim

        with running_sim(50) as fleet:
            live = asyncio.run(measure_live(fleet, args.live_targets, args.presses))
        result[f"live_{args.live_targets}"] = live
        worst.append(live)
    result["key_p95_ms"] = max(
        figures[f"{k}_p95_ms"] for figures in worst for k in ("cursor", "dialog", "typing")
    )
    result["ok"] = result["key_p95_ms"] < 50 and result["first_frame_s"] < 1.5
    print(json.dumps(result))


if __name__ == "__main__":
    main()
