"""The tutorial drill played through the console as a responder would, on the demo's fleet."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_tui_palette import palette
from textual.widgets import Input, OptionList
from tui_harness import SIZE, logged, screen_text, settle

from warroom import events as ev
from warroom.controls.client import read_token
from warroom.log.store import IncidentLog
from warroom.sim.process import SimProcess, start_sim
from warroom.sim.scenario import load_scenario
from warroom.state import StepView
from warroom.tui.cli import build_app, controls_tasks, gather_inputs
from warroom.tui.screens.control_dialog import ControlDialog
from warroom.tui.screens.runbook import RunbookScreen

#: The fleet's speed-up for a short test; the probes run that much more often (see below).
SPEED = 10.0
RUNBOOK = "cache-failover"


def _clock(sim: SimProcess, **body: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {read_token(sim.token_path)}"}
    with httpx.Client(base_url=sim.admin_url, timeout=5, trust_env=False) as client:
        if body:
            client.post("/clock", json=body, headers=headers).raise_for_status()
        info: dict[str, Any] = client.get("/").json()
    return info


@contextlib.asynccontextmanager
async def keyboard(sim: SimProcess) -> AsyncIterator[None]:
    """The responder at the keys: the fleet's clock stands still meanwhile, so the outcome
    depends on the runbook and the model, not on how loaded the test machine is (the lever
    script `levers/tutorial.toml` charges 15 s a step and goes green before the repair too)."""
    await asyncio.to_thread(_clock, sim, paused=True)
    try:
        yield
    finally:
        await asyncio.to_thread(_clock, sim, paused=False)


async def _wait(pilot: Any, until: Callable[[], bool], what: str, timeout: float) -> None:
    try:
        await settle(pilot, until=until, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"{what}: not within {timeout} s") from None


async def _pull_lever(pilot: Any, dangerous: bool, service: str) -> None:
    """`a`, then Enter past the preset reason and the empty auto-revert, the typed
    confirmation of a dangerous lever, Enter on Apply; Enter on "Mark the step done?"."""
    app = pilot.app
    await pilot.press("a")
    await _wait(pilot, lambda: isinstance(app.screen, ControlDialog), "the lever dialog", 5)
    dialog = app.screen
    reason = dialog.query_one("#control-reason", Input)
    assert reason.has_focus and reason.value.startswith(f"runbook {RUNBOOK}: ")
    await pilot.press("enter", "enter")
    if dangerous:
        await pilot.press(*service, "enter")
    assert dialog.focused is not None and dialog.focused.id == "apply"
    await pilot.press("enter")
    await _wait(pilot, lambda: app.screen.id == "confirm-step-done", "mark done? offered", 10)
    await pilot.press("enter")


async def _set_lever(pilot: Any, query: str, title: str, value: str) -> None:
    """A lever by name from the palette: its value, a reason typed, Enter on to Apply."""
    app = pilot.app
    await palette(pilot, query, title)
    await _wait(pilot, lambda: isinstance(app.screen, ControlDialog), "the lever dialog", 5)
    dialog = app.screen
    await pilot.press(*value, "enter", *"plan pinned", "enter", "enter")
    assert dialog.focused is not None and dialog.focused.id == "apply"
    await pilot.press("enter")
    await _wait(pilot, lambda: app.screen is not dialog, "applied", 10)


@pytest.mark.slow
async def test_the_tutorial_drill_goes_green_before_the_scenarios_repair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's path (its fleet, probes, levers, feed and runbooks); the responder opens the
    suggested runbook from the palette and plays its steps in order with the keys, waiting
    only where a step's text says to (the cache red before failing it over, warm before the
    shedding is undone), and lifting the database's limit once its plan is pinned, as that
    step says; every probe is up and every step verified before the repair."""
    repair_at = load_scenario("tutorial").history.repair_at
    assert repair_at is not None
    sim = start_sim("tutorial", SPEED, 1, tmp_path / "drill.sim.log")
    try:
        monkeypatch.setenv("WARROOM_SIM", sim.admin_url)  # as `warroom demo` sets it
        path = tmp_path / "drill.jsonl"
        log = IncidentLog.open(path)
        log.append(ev.IncidentOpened(incident_id="drill", title="tutorial", severity="SEV2"))
        inputs = gather_inputs(sim_url=sim.admin_url)
        # The fleet's probe cadence (1 s) is meant for the tutorial's own speed; sped up, the
        # probes look as often in simulated time as they do in the demo, or a console that
        # notices a change seconds of simulated time late would be what this test measures.
        config = inputs.config
        defaults = config.defaults.model_copy(update={"interval": config.defaults.interval / SPEED})
        inputs.config = config.model_copy(update={"defaults": defaults})
        background = controls_tasks(inputs.config, sim.admin_url, sim.token_path)
        app = build_app(log, inputs, background, probes=True, feed=(sim.admin_url, "tutorial"))
        runbook = inputs.runbooks[RUNBOOK]
        targets = {t.name for t in inputs.config.resolved_targets()}
        # What each step's text asks to see before it is done (the runbook's own words).
        before = {"Fail the cache over": "down", "Undo the shedding once": "up"}
        # What a step's prose asks for after its lever: "Then raise or lift its limit in the
        # control panel (to about 250, or none)" after pinning the database's previous plan.
        then = {"rollback": ("lever db rate", "Pull lever: db · Rate limit", "250")}

        def probe(name: str) -> str:
            view = app.state.probes.get(name)
            return view.state if view else "unknown"

        def step_view(step_id: str) -> StepView:
            progress = app.state.runbooks.get(RUNBOOK)
            return (progress.steps.get(step_id) if progress else None) or StepView()

        async with app.run_test(size=SIZE) as pilot:
            await _wait(pilot, lambda: RUNBOOK in dict(app.suggested), "suggested", 20)
            async with keyboard(sim):
                await palette(pilot, "cache", "Open runbook: Cache node failure")
                await _wait(pilot, lambda: isinstance(app.screen, RunbookScreen), "opened", 5)
            steps = app.screen.query_one("#steps", OptionList)
            # The control service starts in the background; on a busy machine it can come
            # after the runbook screen.
            await _wait(pilot, lambda: app.session.controls is not None, "levers loaded", 20)
            controls = app.session.controls
            assert controls is not None
            for n, step in enumerate(runbook.steps, 1):
                wanted = next((s for t, s in before.items() if step.text.startswith(t)), None)
                if wanted is not None:
                    await _wait(pilot, lambda s=wanted: probe("cache") == s, f"cache {wanted}", 20)
                async with keyboard(sim):
                    assert steps.highlighted == n - 1
                    if step.commands:
                        await pilot.press("exclamation_mark")
                        await _wait(pilot, lambda: app.screen.id == "confirm-run", "run?", 5)
                        await pilot.press("tab", "enter")  # reading first; Run is a move away
                        await _wait(
                            pilot,
                            lambda s=step.id: any(
                                isinstance(e, ev.CommandRun) and e.step == s for e in logged(path)
                            ),
                            f"step {n}'s command ran",
                            10,
                        )
                    if step.action is not None:
                        spec = controls.spec(step.action.service, step.action.control)
                        await _pull_lever(pilot, spec.dangerous, step.action.service)
                    if step.action is not None and step.action.control in then:
                        query, title, value = then[step.action.control]
                        assert f"to about {value}" in step.body_markdown
                        await _wait(pilot, lambda: isinstance(app.screen, RunbookScreen), "a", 5)
                        await _set_lever(pilot, query, title, value)
                    await _wait(pilot, lambda: isinstance(app.screen, RunbookScreen), "back", 5)
                if step.action is None and step.verify is not None:
                    await _wait(pilot, lambda s=step.id: step_view(s).verified, f"{n} holds", 20)
                async with keyboard(sim):
                    if step_view(step.id).status != "done":
                        await pilot.press("d")
                        await _wait(
                            pilot, lambda s=step.id: step_view(s).status == "done", f"{n} done", 5
                        )
                    await pilot.press("j")
            await _wait(
                pilot,
                lambda: (
                    all(probe(t) == "up" for t in targets)
                    and all(step_view(s.id).verified for s in runbook.steps if s.verify)
                ),
                "every probe up, every verification holding",
                20,
            )
            green_at = float((await asyncio.to_thread(_clock, sim))["sim_time"])
            assert all(step_view(s.id).status == "done" for s in runbook.steps)
            total, checked = len(runbook.steps), sum(1 for s in runbook.steps if s.verify)
            await _wait(
                pilot,
                lambda: f"{total}/{total} steps done  {checked} verified" in screen_text(app),
                "the runbook's header says so",
                5,
            )
        assert green_at < repair_at, (green_at, repair_at)
        assert all(e.sim_time < repair_at for e in app.state.scenario_events)
        # Every lever went through the log as its step's, applied and read back.
        applied = [e for e in logged(path) if isinstance(e, ev.ControlApplied)]
        pulled = [(s.action.service, s.action.control) for s in runbook.steps if s.action]
        pulled.insert(pulled.index(("db", "rollback")) + 1, ("db", "rate_limit"))
        assert [(e.service, e.control) for e in applied] == pulled
        assert applied[-1].value == 250
    finally:
        sim.stop()
