"""Deterministic data and app factory for the console's pilot and snapshot tests.

A fixture incident (the DynamoDB DNS part of the us-east-1 2025 outage) is written to a real
`IncidentLog` with fixed timestamps and actors; the app runs on a frozen clock with a runbook
parsed from text here, so every render is the same run to run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warroom import events as ev
from warroom.events import ProbeSample
from warroom.log.store import IncidentLog
from warroom.runbooks.model import Runbook
from warroom.runbooks.parser import parse_runbook
from warroom.tui.app import WarroomApp

START = datetime(2025, 10, 20, 6, 48, tzinfo=UTC)
#: The frozen "now" of every harness app: 1h27m into the incident.
NOW = START + timedelta(minutes=87)
SIZE = (140, 42)
ALICE = "alice@warroom"
BOB = "bob@warroom"

RUNBOOK_TEXT = """\
---
title: DynamoDB endpoint does not resolve
services: [dynamodb, dynamodb-dns]
states: [down, degraded]
severity: SEV1
---
# DynamoDB endpoint does not resolve

The regional endpoint's DNS record is empty: every client that resolves it fails, and the
retries pile up on everything downstream.

## Diagnose

- [ ] Confirm the record is empty
  - verify: `dynamodb-dns is down`
  ```sh
  echo "dynamodb.us-east-1.sim: NXDOMAIN"
  ```

## Mitigate

- [ ] Pause the DNS automation so it cannot empty the record again
  - action: `dynamodb/dns_automation = false`
- [ ] Restore the endpoint's DNS record
  - action: `dynamodb/dns_record = restored`
  - verify: `dynamodb-dns is up`
- [ ] Throttle EC2 launches while the backlog drains
  - action: `ec2-launch/rate_limit = 50`

## Recover

- [ ] Check every DynamoDB target is up
  - verify: `all dynamodb targets are up`
"""

SERVICES = [
    ("dynamodb", "dynamodb"),
    ("dynamodb-dns", "dynamodb"),
    ("dwfm", "dwfm"),
    ("ec2-launch", "ec2-launch"),
    ("network-manager", "network-manager"),
    ("nlb", "nlb"),
    ("lambda", "lambda"),
    ("sts", "sts"),
    ("checkout", "checkout"),
]


def ts(minutes: float) -> str:
    return ev.format_ts(START + timedelta(minutes=minutes))


def fixed_clock() -> datetime:
    return NOW


def runbook() -> Runbook:
    parsed, problems = parse_runbook(RUNBOOK_TEXT, Path("runbooks/dynamodb-dns.md"))
    assert parsed is not None and not problems, problems
    return parsed


def runbooks() -> dict[str, Runbook]:
    rb = runbook()
    return {rb.id: rb}


def _latency(target: str, minute: int) -> float | None:
    base = 20 + (sum(map(ord, target)) % 40)
    if target in ("dynamodb", "dynamodb-dns") and minute >= 8:
        return None
    if target in ("ec2-launch", "lambda") and minute >= 10:
        return base * 8 + (minute % 5) * 40
    return base + (minute * 7 % 11)


def incident_events(with_runbook: bool = True) -> list[ev.BaseEvent]:
    """The fixture incident, oldest first, with fixed ts and actors."""
    out: list[ev.BaseEvent] = []

    def add(minute: float, event: ev.BaseEvent, actor: str = "warroom-probe") -> None:
        out.append(event.model_copy(update={"ts": ts(minute), "actor": actor}))

    for target, service in SERVICES:
        add(
            0,
            ev.ProbeStateChanged(
                target=target,
                service=service,
                from_state="unknown",
                to_state="up",
                reason="2 successes",
                latency_ms=22.0,
            ),
        )
    add(
        2,
        ev.ScenarioEvent(
            sim_seq=1,
            sim_time=120,
            scenario="aws-us-east-1-2025",
            service="dynamodb",
            title="DNS automation race empties the record",
        ),
        "sim",
    )
    add(
        3,
        ev.ProbeStateChanged(
            target="dynamodb-dns",
            service="dynamodb",
            from_state="up",
            to_state="down",
            reason="NXDOMAIN",
        ),
    )
    add(
        4,
        ev.ProbeStateChanged(
            target="dynamodb",
            service="dynamodb",
            from_state="up",
            to_state="down",
            reason="connect timeout after 2s",
        ),
    )
    add(
        6,
        ev.IncidentOpened(
            incident_id="2025-10-20T0654Z-us-east-1",
            title="us-east-1: DynamoDB endpoint unreachable",
            severity=ev.Severity.SEV2,
        ),
        ALICE,
    )
    add(7, ev.RoleAssigned(role="commander", person="alice"), ALICE)
    add(8, ev.SeveritySet(severity=ev.Severity.SEV1), ALICE)
    add(
        9,
        ev.ProbeStateChanged(
            target="ec2-launch",
            service="ec2-launch",
            from_state="up",
            to_state="degraded",
            reason="p50 412ms > 250ms",
            latency_ms=412,
        ),
    )
    add(
        10,
        ev.ProbeStateChanged(
            target="lambda",
            service="lambda",
            from_state="up",
            to_state="degraded",
            reason="p50 380ms > 250ms",
            latency_ms=380,
        ),
    )
    add(12, ev.RoleAssigned(role="scribe", person="bob"), ALICE)
    add(
        14,
        ev.NoteAdded(text="DNS record for dynamodb.us-east-1 is empty; automation suspected"),
        BOB,
    )
    add(
        20,
        ev.ProbeStateChanged(
            target="checkout",
            service="checkout",
            from_state="up",
            to_state="down",
            reason="HTTP 503",
        ),
    )
    add(22, ev.StatusSet(status=ev.Status.IDENTIFIED), ALICE)
    add(
        25,
        ev.StatusUpdatePosted(
            conditions="DynamoDB us-east-1 unreachable; checkout down",
            actions="restoring the DNS record by hand",
            needs="DNS owners on the bridge",
        ),
        ALICE,
    )
    if with_runbook:
        rb = runbook()
        add(
            30,
            ev.RunbookOpened(runbook=rb.id, title=rb.title, steps=[s.id for s in rb.steps]),
            ALICE,
        )
        add(
            31,
            ev.StepVerified(
                runbook=rb.id, step=rb.steps[0].id, condition="dynamodb-dns is down", holds=True
            ),
            "warroom",
        )
        add(
            32,
            ev.StepSet(
                runbook=rb.id,
                step=rb.steps[0].id,
                status=ev.StepStatus.DONE,
                note="dig shows NXDOMAIN",
            ),
            ALICE,
        )
        add(40, ev.StepSet(runbook=rb.id, step=rb.steps[1].id, status=ev.StepStatus.DONE), ALICE)
    add(45, ev.BookmarkAdded(label="automation paused"), BOB)
    add(50, ev.TaskAdded(text="Add a guard against empty DNS plans", owner="dns-team"), BOB)
    for minute in range(0, 80, 5):
        samples = [
            ProbeSample(target=t, state="up", ok=5, count=5, latency_ms=_latency(t, minute))
            for t, _ in SERVICES
        ]
        add(minute + 0.5, ev.ProbeSamples(samples=samples))
    out.sort(key=lambda e: e.ts)
    return out


def write_log(path: Path, events: list[ev.BaseEvent] | None = None) -> IncidentLog:
    """A real incident log at `path` holding `events` (the fixture incident by default)."""
    log = IncidentLog.open(path)
    log.append_many(incident_events() if events is None else events)
    return log


class FixtureProbes:
    """The probe engine the fixture incident was recorded with: every target, every 5 minutes
    (its samples' cadence), so at the frozen clock its data is live, as a running engine's is."""

    status = ""

    def intervals(self) -> dict[str, float]:
        return {target: 300.0 for target, _ in SERVICES}


def make_app(log: IncidentLog, *, live_probes: bool = True, **kwargs: Any) -> WarroomApp:
    """The console on `log`, with the frozen clock, a fixed actor and the fixture runbook;
    `live_probes` says a probe engine is running (False: a resumed incident, all stale)."""
    kwargs.setdefault("clock", fixed_clock)
    kwargs.setdefault("actor", ALICE)
    kwargs.setdefault("runbooks", runbooks())
    app = WarroomApp(log, **kwargs)
    if live_probes:
        app.session.probes = FixtureProbes()
    return app


def screen_text(app: Any) -> str:
    """The characters on screen now (all layers composited), for asserting what a user sees."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


def logged(path: Path) -> list[ev.BaseEvent]:
    """Every event in the log file, read fresh from disk."""
    from warroom.log.store import read_events

    return list(read_events(path))


async def settle(pilot: Any, until: Any = None, timeout: float = 2.0) -> None:
    """Let the app process pending messages; with `until`, poll it (real time) up to `timeout`."""
    import asyncio
    import time

    await pilot.pause()
    session = getattr(pilot.app, "session", None)
    if session is not None:
        await session.idle()  # the writes a key started are stored and folded
        # `pause(0)`: every message queued so far is handled, without a second wait for a
        # quiet CPU (up to a second a call on a busy machine); conditions are polled below.
        await pilot.pause(0)
    if until is None:
        return
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
        await pilot.pause(0)
    # What made `until` true may still be on its way to the widgets: let them take it and
    # paint once, so the screen a test reads next is the one a responder would see.
    await pilot.pause(0)


async def paste(pilot: Any, text: str) -> None:
    """Paste `text` into the focused input (one event instead of a key press per character)."""
    from textual import events

    focused = pilot.app.screen.focused
    assert focused is not None, "nothing focused to paste into"
    focused.post_message(events.Paste(text))
    await pilot.pause()


def open_runbook_then(*keys: str) -> Any:
    """A snapshot's `run_before`: `o`, wait until the runbook screen is up, then `keys`.

    `o` records the opening off the event loop first, so a key pressed at once can still
    reach the main screen; a snapshot must show the runbook screen's answer to `keys`."""

    async def run_before(pilot: Any) -> None:
        from warroom.tui.screens.runbook import RunbookScreen

        await pilot.press("o")
        await settle(pilot, until=lambda: isinstance(pilot.app.screen, RunbookScreen), timeout=10)
        await pilot.press(*keys)
        await settle(pilot)

    return run_before
