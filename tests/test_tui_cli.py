"""The console CLI side: problems never stop it, and the demo fleet never outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from processes import alive, wait_until
from tui_harness import SIZE, fixed_clock, logged, paste, screen_text, settle, write_log

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.sim.process import start_sim
from warroom.tui.cli import build_app, gather_inputs, new_log_path

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

BAD_RUNBOOK = """\
---
title: Broken on purpose
services: [checkout]
---
# Broken

- [ ] Look at it
  - verify: `checkout is sideways`
"""


async def test_malformed_runbook_and_config_are_shown_and_the_console_works(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "broken.md").write_text(BAD_RUNBOOK)
    config = tmp_path / "warroom.toml"
    config.write_text('runbook_dirs = ["books"]\n[[targets]]\nname = "a"\nhtp = "x"\n')
    inputs = gather_inputs(str(config))
    assert any(p.startswith(f"{config}: targets[0]") for p in inputs.problems), inputs.problems

    config.write_text('runbook_dirs = ["books"]\n')
    inputs = gather_inputs(str(config))
    bad = [p for p in inputs.problems if "broken.md:8:" in p]
    assert bad and "sideways" in bad[0], inputs.problems
    assert "broken" in inputs.runbooks  # loaded without the bad annotation

    config.write_text("[incident\nstatus_update_interval = 1\n")  # TOML syntax error
    inputs = gather_inputs(str(config))
    assert any(p.startswith(f"{config}:1:") for p in inputs.problems), inputs.problems

    path = tmp_path / "i.jsonl"
    inputs.problems.append(bad[0])
    app = build_app(write_log(path), inputs, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert f"⚠ problem: {config}:1:" in text
        assert "broken.md:8:" in text
        await pilot.press("n")
        await paste(pilot, "still works")
        await pilot.press("enter")
        await settle(pilot)
        assert [e.text for e in logged(path) if isinstance(e, ev.NoteAdded)][-1] == "still works"


def test_new_log_paths_are_named_by_time_and_scenario(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = new_log_path("aws-us-east-1-2025", fixed_clock())
    assert str(first) == "incidents/2025-10-20T0815Z-aws-us-east-1-2025.jsonl"
    first.parent.mkdir()
    first.write_text("")
    assert new_log_path("aws-us-east-1-2025", fixed_clock()).name.endswith("-2025-2.jsonl")


@pytest.mark.slow
async def test_demo_fleet_feeds_the_log_and_stops(tmp_path: Path) -> None:
    sim = start_sim("tutorial", 60.0, 1, tmp_path / "sim.log")
    try:
        assert httpx.get(f"{sim.admin_url}/", timeout=5, trust_env=False).json()["scenario"] == (
            "tutorial"
        )
        path = tmp_path / "i.jsonl"
        app = build_app(
            IncidentLog.open(path),
            gather_inputs(sim_url=sim.admin_url),
            feed=(sim.admin_url, "tutorial"),
            feed_interval=0.2,
            clock=fixed_clock,
        )
        assert {"web", "cache", "db"} <= {t.name for t in app_targets(sim.admin_url)}
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, until=lambda: app.state.scenario_events, timeout=10)
        feed = [e for e in logged(path) if isinstance(e, ev.ScenarioEvent)]
        assert feed and feed[0].scenario == "tutorial" and feed[0].sim_seq >= 1
        assert [e.sim_seq for e in feed] == sorted({e.sim_seq for e in feed})
    finally:
        sim.stop()
    assert not alive(sim.process.pid)


def app_targets(admin_url: str):  # type: ignore[no-untyped-def]
    return gather_inputs(sim_url=admin_url).config.resolved_targets()


@pytest.mark.slow
def test_fleet_dies_when_the_console_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no finally: the watchdog must end the fleet."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from warroom.sim.process import start_sim\n"
        f"sim = start_sim('tutorial', None, 1, Path({str(tmp_path / 'sim.log')!r}))\n"
        "print(sim.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    console = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert console.stdout is not None
        sim_pid = int(console.stdout.readline())
        assert alive(sim_pid)
    finally:
        console.send_signal(signal.SIGKILL)
        console.wait()
    assert wait_until(lambda: not alive(sim_pid))


def test_console_token_errors_are_one_line(tmp_path: Path) -> None:
    """`--token` needs `--sim`, and a token file that exists; nothing is opened otherwise."""
    log = tmp_path / "i.jsonl"
    cases = [
        (["--token", str(tmp_path / "t")], "--token goes with --sim URL"),
        (["--sim", "http://127.0.0.1:9", "--token", str(tmp_path / "t")], "no such token file"),
    ]
    for extra, message in cases:
        result = subprocess.run(
            [sys.executable, "-m", "warroom", "console", "--log", str(log), *extra],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not log.exists()


def _probe_workers() -> list[int]:
    """Live `warroom.probe.worker` children of this process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.split(") ")[1].split()[1])
        if ppid == os.getpid() and b"warroom.probe.worker" in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.slow
async def test_probes_run_in_a_worker_process_and_land_in_the_console(tmp_path: Path) -> None:
    sim = start_sim("tutorial", 60.0, 1, tmp_path / "sim.log")
    try:
        path = tmp_path / "i.jsonl"
        inputs = gather_inputs(sim_url=sim.admin_url)
        names = {t.name for t in inputs.config.resolved_targets()}
        app = build_app(IncidentLog.open(path), inputs, probes=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, until=lambda: set(app.state.probes) == names, timeout=15)
            assert len(_probe_workers()) == 1
            text = screen_text(app)
            assert all(name in text for name in ("web", "cache", "db"))
        assert wait_until(lambda: _probe_workers() == [])  # the console's exit ends the worker
        seen = {e.target for e in logged(path) if isinstance(e, ev.ProbeStateChanged)}
        for samples in (e for e in logged(path) if isinstance(e, ev.ProbeSamples)):
            seen |= {s.target for s in samples.samples}
        assert seen == names  # every target's results went through the log
    finally:
        sim.stop()


@pytest.mark.slow
def test_probe_worker_ends_when_the_console_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no finally: the worker sees its stdin close and exits."""
    log = tmp_path / "i.jsonl"
    write_log(log).close()
    config = '{"targets": [{"name": "local", "tcp": "127.0.0.1:9", "interval": 0.5}]}'
    script = (
        "import subprocess, sys, time\n"
        "w = subprocess.Popen([sys.executable, '-m', 'warroom.probe.worker', '--log', "
        f"{str(log)!r}], stdin=subprocess.PIPE)\n"
        f"w.stdin.write({config!r}.encode() + b'\\n'); w.stdin.flush()\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    console = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert console.stdout is not None
        worker = int(console.stdout.readline())
        assert wait_until(lambda: any(isinstance(e, ev.ProbeStateChanged) for e in logged(log))), (
            "the worker logged no probe result"
        )
        assert alive(worker)
    finally:
        console.send_signal(signal.SIGKILL)
        console.wait()
    assert wait_until(lambda: not alive(worker))


@pytest.mark.slow
async def test_a_probe_worker_that_dies_is_shown_and_the_console_carries_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.jsonl"
    log = write_log(path)
    inputs = gather_inputs(sim_url=None)
    config = inputs.config.model_validate(
        {"targets": [{"name": "local", "tcp": "127.0.0.1:9", "interval": 1}]}
    )
    path.rename(tmp_path / "moved.jsonl")  # the worker opens the log by name: it is gone
    inputs.config = config
    app = build_app(log, inputs, probes=True, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, until=lambda: "probe engine" in app.problems[-1], timeout=15)
        problem = app.problems[-1]
        assert (
            "probe engine restarted 1× — last at " in problem
            and ": exit 2: " in problem
            and "i.jsonl" in problem
        )
        # On the screen's next frame (the session has it first).
        await settle(
            pilot, until=lambda: "probe engine restarted 1×" in screen_text(app), timeout=2
        )
        (tmp_path / "moved.jsonl").rename(path)  # appends need the log back at its path
        await pilot.press("n")
        await paste(pilot, "still here")
        await pilot.press("enter")
        await settle(pilot)
        assert app.state.notes[-1].text == "still here"


def test_probe_worker_rejects_a_bad_configuration_in_one_line(tmp_path: Path) -> None:
    log = tmp_path / "i.jsonl"
    write_log(log).close()
    result = subprocess.run(
        [sys.executable, "-m", "warroom.probe.worker", "--log", str(log)],
        input=b'{"targets": [{"name": "x", "interval": -1}]}\n',
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("warroom: probe worker: stdin: targets[0].interval: not a duration")


WARROOM = [sys.executable, "-m", "warroom"]


def test_demo_refuses_an_existing_incident_log(tmp_path: Path) -> None:
    """A fresh fleet inside an old incident would turn everything red again at t=0."""
    path = tmp_path / "old.jsonl"
    write_log(path).close()
    before = path.read_bytes()
    done = subprocess.run(
        [*WARROOM, "demo", "--scenario", "tutorial", "--log", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "already holds an incident" in lines[0]
    assert f"warroom console --log {path}" in lines[0]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jsonl"]


def test_a_failed_demo_start_leaves_no_files(tmp_path: Path) -> None:
    path = tmp_path / "incidents" / "new.jsonl"
    done = subprocess.run(
        [*WARROOM, "demo", "--scenario", "tutorial", "--speed", "-5", "--log", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1 and done.stderr.startswith("warroom: the simulated fleet")
    assert not list(tmp_path.rglob("*.sim.log")) and not path.exists()
