"""The console CLI side: problems never stop it, and the demo fleet never outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tui_harness import SIZE, fixed_clock, logged, paste, screen_text, settle, write_log

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.tui.cli import build_app, gather_inputs, new_log_path, scenario_feed_task, start_sim

BAD_RUNBOOK = """\
---
title: Broken on purpose
services: [checkout]
---
# Broken

- [ ] Look at it
  - verify: `checkout is sideways`
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


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
            [scenario_feed_task(sim.admin_url, "tutorial", interval=0.2)],
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
    assert not _alive(sim.process.pid)


def app_targets(admin_url: str):  # type: ignore[no-untyped-def]
    return gather_inputs(sim_url=admin_url).config.resolved_targets()


def test_fleet_dies_when_the_console_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no finally: the watchdog must end the fleet."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from warroom.tui.cli import start_sim\n"
        f"sim = start_sim('tutorial', None, 1, Path({str(tmp_path / 'sim.log')!r}))\n"
        "print(sim.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    console = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert console.stdout is not None
        sim_pid = int(console.stdout.readline())
        assert _alive(sim_pid)
    finally:
        console.send_signal(signal.SIGKILL)
        console.wait()
    deadline = time.monotonic() + 10
    while _alive(sim_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(sim_pid)


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
