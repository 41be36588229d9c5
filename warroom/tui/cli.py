"""`warroom demo` and `warroom console`: assemble the console's inputs and run it.

Everything slow or fallible (targets, runbooks, the simulated fleet) is gathered here; a
broken config or runbook becomes a problem line in the console, never a refusal to start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from warroom import events as ev
from warroom.config import (
    WarroomConfig,
    config_from_sim,
    find_default_config,
    load_config,
)
from warroom.errors import WarroomError
from warroom.events import utc_now
from warroom.log.store import IncidentLog
from warroom.runbooks.library import default_dirs, load_library
from warroom.runbooks.model import Runbook
from warroom.session.policies import status_intervals
from warroom.tui.app import BackgroundTask, WarroomApp
from warroom.tui.widgets import control_panel

INCIDENTS_DIR = Path("incidents")
#: How long `warroom demo` waits for the simulated fleet to print its admin line.
SIM_START_TIMEOUT = 20.0
#: How often the scenario's event feed is polled.
FEED_INTERVAL = 1.0
ADMIN_LINE = re.compile(r"admin:\s+(?P<url>http://\S+)\s+token:\s+(?P<token>\S+)")

# Runs beside the simulated fleet: when the console's end of its stdin pipe closes (the
# console exited, crashed or was SIGKILLed) it ends the fleet's whole process group.
WATCHDOG = """\
import os, signal, sys, time
sys.stdin.buffer.read()
pgid = int(sys.argv[1])
for sig, pause in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0)):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        break
    time.sleep(pause)
"""


@dataclass
class ConsoleInputs:
    """What the console needs besides the log, with every problem found gathering it."""

    config: WarroomConfig = field(default_factory=WarroomConfig)
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def load_runbooks(extra_dirs: Sequence[str | Path] = ()) -> tuple[dict[str, Runbook], list[str]]:
    """The runbook library (config folders, ./runbooks, shipped); problems as `file:line: …`."""
    found, problems = load_library(default_dirs(extra_dirs))
    return {rb.id: rb for rb in found}, [str(p) for p in problems]


def gather_inputs(config_path: str | None = None, sim_url: str | None = None) -> ConsoleInputs:
    """Config (or the sim's targets) and runbooks; each failure is a problem, not an error."""
    inputs = ConsoleInputs()
    try:
        if sim_url:
            inputs.config = config_from_sim(sim_url)
        elif config_path:
            inputs.config = load_config(config_path)
        else:
            default = find_default_config()
            if default is not None:
                inputs.config = load_config(default)
            else:
                inputs.problems.append(
                    "no targets: pass --config FILE or --sim URL, or create ./warroom.toml"
                )
    except WarroomError as exc:
        inputs.problems.append(str(exc))
    runbooks, problems = load_runbooks(inputs.config.runbook_dirs)
    inputs.runbooks = runbooks
    inputs.problems.extend(problems)
    return inputs


def new_log_path(name: str, now: datetime | None = None) -> Path:
    """`incidents/2026-11-27T0312Z-<name>.jsonl` (a suffix added if it exists already)."""
    now = now or utc_now()
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "incident"
    path = INCIDENTS_DIR / f"{now:%Y-%m-%dT%H%MZ}-{slug}.jsonl"
    n = 1
    while path.exists():
        n += 1
        path = INCIDENTS_DIR / f"{now:%Y-%m-%dT%H%MZ}-{slug}-{n}.jsonl"
    return path


# -- background tasks the console owns -----------------------------------------------------------


def probe_task(config: WarroomConfig, sample_interval: float = 5.0) -> BackgroundTask:
    """Run the probe engine in a child process (`warroom.probe.worker`) writing to the log.

    The console folds its events as it follows the log (within `FOLLOW_INTERVAL` plus the
    worker's commit interval), so probing never shares an event loop (or a core) with key
    presses and paints. The worker ends when the console's end of its stdin closes, even if
    the console is killed; if it dies while the console runs, the problem line says so.
    """

    async def probes(app: WarroomApp) -> None:
        if not config.resolved_targets():
            return
        log_path = getattr(app.incident_log, "path", None)
        if log_path is None:
            raise WarroomError("probes need an incident log file to write to")
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "warroom.probe.worker",
            "--log",
            str(Path(log_path).resolve()),
            "--sample-interval",
            str(sample_interval),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert worker.stdin is not None and worker.stderr is not None
        try:
            worker.stdin.write(config.model_dump_json().encode() + b"\n")
            await worker.stdin.drain()
            errors = b""
            while chunk := await worker.stderr.read(4096):
                errors = (errors + chunk)[-4096:]  # only its last words are shown
            code = await worker.wait()
        except asyncio.CancelledError:
            await _stop_worker(worker)
            raise
        lines = errors.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else "no message"
        raise WarroomError(f"the probe engine stopped (exit {code}): {detail}")

    return probes


async def _stop_worker(worker: asyncio.subprocess.Process, grace: float = 3.0) -> None:
    """Close the worker's stdin (it flushes and exits), then TERM, then KILL."""
    if worker.stdin is not None:
        worker.stdin.close()
    for stop in (None, worker.terminate, worker.kill):
        if stop is not None:
            with contextlib.suppress(ProcessLookupError):
                stop()
        try:
            await asyncio.wait_for(worker.wait(), grace)
            return
        except TimeoutError:
            continue


def scenario_feed_task(
    admin_url: str, scenario: str, interval: float = FEED_INTERVAL
) -> BackgroundTask:
    """Poll the simulated fleet's `GET /events?after=SEQ` and log each as a `ScenarioEvent`."""

    async def scenario_feed(app: WarroomApp) -> None:
        import httpx

        after = max((e.sim_seq for e in app.state.scenario_events), default=0)
        failing = False
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            while True:
                try:
                    response = await client.get(f"{admin_url}/events", params={"after": after})
                    response.raise_for_status()
                    items = response.json().get("events", [])
                    batch = [
                        ev.ScenarioEvent(
                            sim_seq=int(item["seq"]),
                            sim_time=float(item.get("sim_time", 0.0)),
                            scenario=scenario,
                            service=str(item.get("service", "")),
                            title=str(item.get("title", "")),
                        )
                        for item in items
                        if int(item["seq"]) > after
                    ]
                    failing = False
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    if not failing:
                        app.report_problem(f"{admin_url}/events: {exc or type(exc).__name__}")
                    failing = True
                    batch = []
                if batch:
                    app.session.record_machine(batch)
                    after = batch[-1].sim_seq
                await asyncio.sleep(interval)

    return scenario_feed


def controls_tasks(config: WarroomConfig, admin_url: str | None, token: str | None) -> list[Any]:
    """The mitigation panel's control service: the fleet's levers, or those in the config."""
    if admin_url and token:
        return [control_panel.sim_controls(admin_url, token)]
    if config.controls:
        return [control_panel.config_controls(config.controls)]
    return []


# -- the simulated fleet as a child process -------------------------------------------------------


@dataclass
class SimProcess:
    process: subprocess.Popen[bytes]
    watchdog: subprocess.Popen[bytes] | None
    admin_url: str
    token_path: str

    def stop(self) -> None:
        """End the fleet's process group (TERM, then KILL), and the watchdog."""
        _stop_group(self.process)
        if self.watchdog is not None:
            with contextlib.suppress(OSError):
                if self.watchdog.stdin is not None:
                    self.watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watchdog.wait(timeout=3)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)


def start_sim(scenario: str, speed: float | None, seed: int, stderr_path: Path) -> SimProcess:
    """Start `warroom sim` in its own process group and wait for its admin line."""
    argv = [sys.executable, "-m", "warroom", "sim", "--scenario", scenario, "--seed", str(seed)]
    if speed is not None:
        argv += ["--speed", str(speed)]
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    watchdog = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(process.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sim = SimProcess(process, watchdog, "", "")
    try:
        url, token = _read_admin_line(process, stderr_path)
    except BaseException:
        sim.stop()
        raise
    sim.admin_url, sim.token_path = url, token
    return sim


def _read_admin_line(process: subprocess.Popen[bytes], stderr_path: Path) -> tuple[str, str]:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + SIM_START_TIMEOUT
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
            match = ADMIN_LINE.search(buffer.decode("utf-8", "replace"))
            if match:
                return match["url"].rstrip("/"), match["token"]
        elif process.poll() is not None:
            break
    tail = _tail(stderr_path)
    if process.poll() is not None:
        raise WarroomError(f"the simulated fleet exited ({process.returncode}): {tail}")
    raise WarroomError(f"the simulated fleet printed no admin line in {SIM_START_TIMEOUT:.0f}s")


def _tail(path: Path, limit: int = 300) -> str:
    try:
        text = path.read_text("utf-8", "replace").strip()
    except OSError:
        return "(no output)"
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "(no output)")[-limit:]


def _sim_title(admin_url: str, scenario: str) -> str:
    import httpx

    try:
        info = httpx.get(f"{admin_url}/", timeout=5.0, trust_env=False).json()
        return str(info.get("title") or scenario)
    except (httpx.HTTPError, ValueError, AttributeError):
        return scenario


# -- entry points -------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace) -> int:
    """`warroom demo`: the simulated fleet, a new incident on it, and the console."""
    scenario = args.scenario
    log_path = Path(args.log) if args.log else new_log_path(scenario)
    sim = start_sim(scenario, args.speed, args.seed, log_path.with_suffix(".sim.log"))
    try:
        log = IncidentLog.open(log_path)
        if log.last_seq == 0:
            log.append(
                ev.IncidentOpened(
                    incident_id=log_path.stem,
                    title=_sim_title(sim.admin_url, scenario),
                    severity=ev.Severity.SEV2,
                )
            )
        # Runbook shell blocks find the fleet's ports through it (see runbooks/README.md).
        os.environ["WARROOM_SIM"] = sim.admin_url
        inputs = gather_inputs(sim_url=sim.admin_url)
        background = [
            probe_task(inputs.config),
            scenario_feed_task(sim.admin_url, scenario),
            *controls_tasks(inputs.config, sim.admin_url, sim.token_path),
        ]
        app = build_app(log, inputs, background)
        app.run()
        log.close()
        print(f"incident log: {log_path}", file=sys.stderr)
        return int(app.return_value or 0)
    finally:
        sim.stop()


def build_app(
    log: IncidentLog,
    inputs: ConsoleInputs,
    background: Sequence[BackgroundTask] = (),
    **kwargs: Any,
) -> WarroomApp:
    """The console on `log` with the gathered config, runbooks and problems."""
    intervals = status_intervals(inputs.config.incident.status_update_interval)
    return WarroomApp(
        log,
        runbooks=inputs.runbooks,
        problems=inputs.problems,
        status_update_intervals=intervals,
        background=background,
        **kwargs,
    )


def run_console(args: argparse.Namespace) -> int:
    """`warroom console`: the console on real targets; an existing `--log` is resumed."""
    sim_url = getattr(args, "sim", None)
    token = getattr(args, "token", None)
    if token and not sim_url:
        raise WarroomError("--token goes with --sim URL (the admin token of that fleet)")
    if token and not Path(token).is_file():
        raise WarroomError(f"{token}: no such token file (use the path `warroom sim` printed)")
    inputs = gather_inputs(getattr(args, "config", None), sim_url)
    if sim_url:
        os.environ["WARROOM_SIM"] = sim_url.rstrip("/")
    log_path = Path(args.log) if args.log else new_log_path("incident")
    log = IncidentLog.open(log_path)
    background = [
        probe_task(inputs.config),
        *controls_tasks(inputs.config, sim_url.rstrip("/") if sim_url else None, token),
    ]
    app = build_app(log, inputs, background)
    try:
        app.run()
    finally:
        log.close()
    print(f"incident log: {log_path}", file=sys.stderr)
    return int(app.return_value or 0)
