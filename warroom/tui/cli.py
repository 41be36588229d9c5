"""`warroom demo` and `warroom console`: assemble the console's inputs and run it.

Everything slow or fallible (targets, runbooks, the simulated fleet) is gathered here; a
broken config or runbook becomes a problem line in the console, never a refusal to start.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom import events as ev
from warroom.config import (
    WarroomConfig,
    config_from_sim,
    find_default_config,
    load_config,
)
from warroom.errors import WarroomError
from warroom.events import utc_now
from warroom.log.store import EventStore, IncidentLog
from warroom.runbooks.library import default_dirs, load_library
from warroom.runbooks.model import Runbook
from warroom.session.alerts import alert_intake
from warroom.session.levers import config_levers, sim_levers
from warroom.session.policies import status_intervals
from warroom.session.supervisor import ProbeSupervisor
from warroom.sim.feed import FEED_INTERVAL, follow_feed, sim_speed, sim_title
from warroom.sim.process import start_sim
from warroom.store import open_for_console

if TYPE_CHECKING:
    # The app (and Textual) load when a console is built: an argument error says so first.
    from warroom.tui.app import BackgroundTask, WarroomApp

INCIDENTS_DIR = Path("incidents")


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


# -- entry points -------------------------------------------------------------------------------


def controls_tasks(config: WarroomConfig, admin_url: str | None, token: str | None) -> list[Any]:
    """The mitigation panel's control service: the fleet's levers, or those in the config."""
    if admin_url and token:
        return [sim_levers(admin_url, token)]
    if config.controls:
        return [config_levers(config.controls)]
    return []


#: The demo's first-screen hint (gone after the first action).
DEMO_HINT = "start here: o opens the suggested runbook; do its steps in order (? lists keys)"


def run_demo(args: argparse.Namespace) -> int:
    """`warroom demo`: the simulated fleet, a new incident on it, and the console."""
    scenario = args.scenario
    log_path = Path(args.log) if args.log else new_log_path(scenario)
    if log_path.exists() and log_path.stat().st_size > 0:
        # A fresh fleet starts at t=0: inside an old incident everything would go red again
        # and the panel would credit the reset to the last change made.
        raise WarroomError(
            f"{log_path} already holds an incident, and a demo fleet cannot resume where it "
            f"left off: resume the incident with `warroom console --log {log_path}`, replay "
            "it with `warroom replay`, or start a new demo without --log"
        )
    sim_log = log_path.with_suffix(".sim.log")
    try:
        sim = start_sim(scenario, args.speed, args.seed, sim_log)
    except BaseException:
        sim_log.unlink(missing_ok=True)  # a failed start leaves nothing behind
        raise
    try:
        log = IncidentLog.open(log_path)
        if log.last_seq == 0:
            log.append(
                ev.IncidentOpened(
                    incident_id=log_path.stem,
                    title=sim_title(sim.admin_url, scenario),
                    severity=ev.Severity.SEV2,
                )
            )
        # Runbook shell blocks find the fleet's ports through it (see runbooks/README.md).
        os.environ["WARROOM_SIM"] = sim.admin_url
        inputs = gather_inputs(sim_url=sim.admin_url)
        background = controls_tasks(inputs.config, sim.admin_url, sim.token_path)
        app = build_app(log, inputs, background, probes=True, feed=(sim.admin_url, scenario))
        app.sim_speed = sim_speed(sim.admin_url)
        app.start_hint = DEMO_HINT
        app.run()
        log.close()
        print(f"incident log: {log_path}", file=sys.stderr)
        return int(app.return_value or 0)
    finally:
        sim.stop()


def build_app(
    log: EventStore,
    inputs: ConsoleInputs,
    background: Sequence[BackgroundTask] = (),
    *,
    probes: bool = False,
    sample_interval: float = 5.0,
    feed: tuple[str, str] | None = None,
    feed_interval: float = FEED_INTERVAL,
    **kwargs: Any,
) -> WarroomApp:
    """The console on `log` with the gathered config, runbooks and problems; `probes` runs
    the config's targets in a supervised worker, `feed` = (admin URL, scenario) follows a
    simulated fleet's scenario events."""
    from warroom.tui.app import WarroomApp

    intervals = status_intervals(inputs.config.incident.status_update_interval)
    app = WarroomApp(
        log,
        runbooks=inputs.runbooks,
        problems=inputs.problems,
        status_update_intervals=intervals,
        background=background,
        **kwargs,
    )
    session = app.session
    session.two_person = inputs.config.incident.two_person
    if probes:
        # A shared incident: the worker appends to the database, not to the local mirror.
        target = getattr(log, "address", None) or getattr(log, "path", None)
        if target is None:
            raise WarroomError("probes need an incident log file or a shared incident to write to")
        config = with_verification_targets(inputs.config, inputs.runbooks, inputs.problems)
        session.attach_probes(ProbeSupervisor(config, target, sample_interval=sample_interval))
    if inputs.config.alerts is not None:
        known = {t.service or t.name for t in inputs.config.targets}
        known.update(c.service for c in inputs.config.controls)
        job = alert_intake(inputs.config.alerts, sorted(known))
        session.add_job("alert intake", partial(job, session))
    if feed is not None:
        admin_url, scenario = feed

        async def scenario_feed() -> None:
            after = max((e.sim_seq for e in session.state.scenario_events), default=0)
            await follow_feed(
                admin_url,
                scenario,
                after,
                session.record_machine,
                session.report_problem,
                feed_interval,
            )

        session.add_job("scenario feed", scenario_feed)
    return app


def with_verification_targets(
    config: WarroomConfig, runbooks: dict[str, Runbook], problems: list[str]
) -> WarroomConfig:
    """`config` plus a promql target for each `verify: promql …` of the runbooks' steps, so
    such a verification turns green by itself (a problem, not a target, without Prometheus)."""
    conditions = [s.verify for rb in runbooks.values() for s in rb.steps if s.verify is not None]
    # imported here: the probe package (aiohttp) is the worker's, not the console's, to load
    from warroom.probe.promql import verification_targets

    extra = verification_targets(conditions, existing=[t.name for t in config.targets])
    if not extra:
        return config
    if config.prometheus is None:
        problems.append(
            f"{len(extra)} promql verification(s) cannot be checked: set [prometheus] url"
        )
        return config
    return config.model_copy(update={"targets": [*config.targets, *extra]})


def run_console(args: argparse.Namespace) -> int:
    """`warroom console`: the console on real targets; an existing `--log` is resumed."""
    sim_url = getattr(args, "sim", None)
    token = getattr(args, "token", None)
    if token and not sim_url:
        raise WarroomError("--token goes with --sim URL (the admin token of that fleet)")
    if token and not Path(token).is_file():
        raise WarroomError(
            f"{token}: no such token file (use the path `warroom sim serve` printed)"
        )
    inputs = gather_inputs(getattr(args, "config", None), sim_url)
    if sim_url:
        os.environ["WARROOM_SIM"] = sim_url.rstrip("/")
    log, log_path = open_for_console(args.log, new_log_path("incident"), inputs.config)
    background = controls_tasks(inputs.config, sim_url.rstrip("/") if sim_url else None, token)
    app = build_app(log, inputs, background, probes=True)
    try:
        app.run()
    finally:
        log.close()
    print(f"incident log: {log_path}", file=sys.stderr)
    return int(app.return_value or 0)
