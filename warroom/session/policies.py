"""What the console decides after each fold, as pure functions of the state (no I/O, no UI).

The session runs them; the screens only show their results. Verifications come from
`runbooks/tracking.py`, suggestions from `runbooks/suggest.py`; the status-update reminder
rule lives here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from warroom.events import StepVerified, parse_ts
from warroom.runbooks.model import Runbook
from warroom.runbooks.suggest import ProbeIndex, suggest_all
from warroom.runbooks.tracking import verification_events
from warroom.state import IncidentState, active_alerts

#: Status-update reminder per severity when the config gives only the SEV1 interval.
DEFAULT_INTERVAL_FACTORS = {"SEV1": 1.0, "SEV2": 2.0, "SEV3": 4.0}


def status_intervals(sev1_seconds: float = 1800.0) -> dict[str, float]:
    """Reminder interval per severity from the SEV1 one (SEV2 twice as long, SEV3 four times)."""
    return {sev: sev1_seconds * factor for sev, factor in DEFAULT_INTERVAL_FACTORS.items()}


def status_update_due(
    state: IncidentState, now: datetime, intervals: Mapping[str, float]
) -> tuple[datetime | None, bool]:
    """When the next status update is due for the current severity, and whether it is overdue."""
    interval = intervals.get(state.severity)
    if not state.declared or interval is None or state.status == "resolved":
        return None, False
    last = state.status_updates[-1].ts if state.status_updates else state.timings.opened
    if not last:
        return None, False
    due = parse_ts(last).timestamp() + interval
    due_at = datetime.fromtimestamp(due, tz=now.tzinfo)
    return due_at, now.timestamp() >= due


def reminder_marker(state: IncidentState, now: datetime, intervals: Mapping[str, float]) -> str:
    """A key naming the overdue status update ("" when none is): remind once per key."""
    due_at, overdue = status_update_due(state, now, intervals)
    return due_at.isoformat() if overdue and due_at is not None else ""


def suggestions(
    runbooks: Mapping[str, Runbook], state: IncidentState, index: ProbeIndex | None = None
) -> list[tuple[str, str]]:
    """(id, title) of the runbooks that fit what is failing or firing now, best first
    (`index`: the probes' index kept by the caller, saving a pass over every target)."""
    if not runbooks:
        return []
    probes = index if index is not None else state.probes
    found = suggest_all(runbooks.values(), probes, active_alerts(state))
    return [(s.runbook.id, s.runbook.title) for s in found]


def bad_signature(
    state: IncidentState, index: ProbeIndex | None = None
) -> frozenset[tuple[str, str]]:
    """The failing (target, state) pairs and the firing alerts: suggestions change only when
    this does (`index`: as for `suggestions`)."""
    if index is not None:
        bad = set(index.bad.items())
    else:
        bad = {
            (p.target, p.state) for p in state.probes.values() if p.state in ("down", "degraded")
        }
    bad.update((f"alert:{a.fingerprint}", a.status) for a in active_alerts(state))
    return frozenset(bad)


def verifications(
    runbooks: Mapping[str, Runbook],
    state: IncidentState,
    probes: Mapping[str, Any] | None = None,
) -> list[StepVerified]:
    """`step_verified` events for the opened runbooks' steps whose truth changed.

    `probes` (default: every probe of `state`) lets the caller leave out data that is not
    live, so a stale "up" never verifies a step.
    """
    seen = state.probes if probes is None else probes
    out: list[StepVerified] = []
    for runbook_id, progress in state.runbooks.items():
        runbook = runbooks.get(runbook_id)
        if runbook is not None:
            out.extend(verification_events(runbook, seen, progress))
    return out
