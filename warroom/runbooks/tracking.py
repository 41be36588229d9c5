"""Runbook -> events: opening one, and verifications that start or stop holding (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warroom.events import RunbookOpened, StepVerified
from warroom.runbooks.conditions import evaluate
from warroom.runbooks.model import Runbook
from warroom.state import RunbookProgress


def opened_event(runbook: Runbook) -> RunbookOpened:
    """The `runbook_opened` event for this runbook, with its step ids in order."""
    return RunbookOpened(
        runbook=runbook.id, title=runbook.title, steps=[step.id for step in runbook.steps]
    )


def verification_events(
    runbook: Runbook, probes: Mapping[str, Any], progress: RunbookProgress | None
) -> list[StepVerified]:
    """`step_verified` events for steps whose verification now differs from the record.

    Call it whenever probe states change. A condition that can't be told yet (a target
    missing or without a result) changes nothing, so a restart of the probes never
    "unverifies" a step.
    """
    recorded = progress.steps if progress is not None else {}
    events = []
    for step in runbook.steps:
        if step.verify is None:
            continue
        holds = evaluate(step.verify, probes)
        if holds is None:
            continue
        view = recorded.get(step.id)
        if holds != (view.verified if view is not None else False):
            events.append(
                StepVerified(
                    runbook=runbook.id, step=step.id, condition=step.verify.text, holds=holds
                )
            )
    return events
