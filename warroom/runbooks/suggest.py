"""Which runbooks fit what is failing now: a pure ranking over runbooks and probe states."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from warroom.runbooks.model import Runbook

_BAD = ("down", "degraded")
#: A down service counts fully, a degraded one half, so outages outrank slowness.
_WEIGHT = {"down": 1.0, "degraded": 0.5, "unknown": 0.25, "up": 0.25}


class Suggestion(NamedTuple):
    """A runbook worth opening, its score (higher first) and a one-line reason."""

    runbook: Runbook
    score: float
    why: str


def _service_states(probes: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """service -> [(target, state)] for every probe."""
    by_service: dict[str, list[tuple[str, str]]] = {}
    for name, probe in probes.items():
        service = getattr(probe, "service", "") or name
        state = getattr(probe, "state", "unknown") or "unknown"
        by_service.setdefault(service, []).append((name, state))
    return by_service


def suggest(runbooks: Iterable[Runbook], probes: Mapping[str, Any]) -> list[Suggestion]:
    """Rank runbooks whose `services` have targets in one of the runbook's `states`.

    Score = 0.6 x the share of the runbook's services that are failing (a precise match beats
    a broad one) + 0.4 x the share of all failing services it covers, each service weighted
    by its worst matching state. General runbooks (`services: ["*"]`) come last, with score
    0, and only when some target is down or degraded. Runbooks without services are never
    suggested. `probes` maps target name to anything with `.state` and `.service`.
    """
    by_service = _service_states(probes)
    bad_services = {
        service
        for service, targets in by_service.items()
        if any(state in _BAD for _, state in targets)
    }
    specific: list[Suggestion] = []
    general: list[Runbook] = []
    for runbook in runbooks:
        if runbook.is_general:
            general.append(runbook)
            continue
        if not runbook.services:
            continue
        matched: dict[str, float] = {}
        reasons: list[str] = []
        for service in runbook.services:
            hits = [(t, s) for t, s in by_service.get(service, []) if s in runbook.states]
            if not hits:
                continue
            matched[service] = max(_WEIGHT.get(s, 0.25) for _, s in hits)
            reasons.extend(f"{target} {state}" for target, state in sorted(hits))
        if not matched:
            continue
        weight = sum(matched.values())
        coverage = weight / len(runbook.services)
        share = weight / max(len(bad_services | set(matched)), 1)
        score = round(0.6 * coverage + 0.4 * share, 4)
        why = (
            f"{', '.join(reasons)}; {len(matched)} of {len(runbook.services)} "
            f"listed service{'s' if len(runbook.services) != 1 else ''} affected"
        )
        specific.append(Suggestion(runbook, score, why))
    specific.sort(key=lambda s: (-s.score, s.runbook.title.casefold(), s.runbook.id))
    if bad_services:
        bad_targets = sum(
            1 for targets in by_service.values() for _, state in targets if state in _BAD
        )
        why = (
            f"general triage: {bad_targets} target{'s' if bad_targets != 1 else ''} "
            f"down or degraded across {len(bad_services)} "
            f"service{'s' if len(bad_services) != 1 else ''}"
        )
        general.sort(key=lambda r: (r.title.casefold(), r.id))
        specific.extend(Suggestion(runbook, 0.0, why) for runbook in general)
    return specific
