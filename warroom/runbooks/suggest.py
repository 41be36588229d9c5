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


class ProbeIndex:
    """Each target's service and state, by service, with the failing ones apart: what the
    ranking reads, kept current one target at a time so a fold costs what it changed."""

    def __init__(self) -> None:
        #: service -> {target: state}.
        self.by_service: dict[str, dict[str, str]] = {}
        #: target -> its service.
        self.service_of: dict[str, str] = {}
        #: target -> its state.
        self.state_of: dict[str, str] = {}
        #: The targets down or degraded now -> their state.
        self.bad: dict[str, str] = {}

    @classmethod
    def of(cls, probes: Mapping[str, Any]) -> ProbeIndex:
        """The index of every probe (`probes` maps target to anything with `.state`, `.service`)."""
        index = cls()
        for name, probe in probes.items():
            index.put(name, probe)
        return index

    def put(self, name: str, probe: Any) -> None:
        """Index `probe` (the latest view of target `name`)."""
        service = getattr(probe, "service", "") or name
        state = getattr(probe, "state", "unknown") or "unknown"
        before = self.service_of.get(name)
        if before is not None and before != service:
            del self.by_service[before][name]
        self.service_of[name] = service
        self.state_of[name] = state
        self.by_service.setdefault(service, {})[name] = state
        if state in _BAD:
            self.bad[name] = state
        else:
            self.bad.pop(name, None)

    def bad_services(self) -> set[str]:
        return {self.service_of[name] for name in self.bad}


def suggest(
    runbooks: Iterable[Runbook], probes: Mapping[str, Any] | ProbeIndex
) -> list[Suggestion]:
    """Rank runbooks whose `services` have targets in one of the runbook's `states`.

    Score = 0.6 x the share of the runbook's services that are failing (a precise match beats
    a broad one) + 0.4 x the share of all failing services it covers, each service weighted
    by its worst matching state. General runbooks (`services: ["*"]`) come last, with score
    0, and only when some target is down or degraded. Runbooks without services are never
    suggested. `probes` maps target name to anything with `.state` and `.service` (or is
    their `ProbeIndex`, which a caller folding live keeps current).
    """
    index = probes if isinstance(probes, ProbeIndex) else ProbeIndex.of(probes)
    by_service = index.by_service
    bad_services = index.bad_services()
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
            targets = by_service.get(service, {})
            hits = [(t, s) for t, s in targets.items() if s in runbook.states]
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
        bad_targets = len(index.bad)
        why = (
            f"general triage: {bad_targets} target{'s' if bad_targets != 1 else ''} "
            f"down or degraded across {len(bad_services)} "
            f"service{'s' if len(bad_services) != 1 else ''}"
        )
        general.sort(key=lambda r: (r.title.casefold(), r.id))
        specific.extend(Suggestion(runbook, 0.0, why) for runbook in general)
    return specific


def suggest_for_alerts(runbooks: Iterable[Runbook], alerts: Iterable[Any]) -> list[Suggestion]:
    """Rank runbooks that name a firing alert in their front matter (`alerts: [...]`).

    A runbook matches an alert by name; when the runbook lists services, the alert's
    service must be one of them (a `ServiceDown` for the cache is not the DNS runbook's).
    Score: 1 + the share of the firing alerts it answers, so an alert match outranks a probe
    match. `alerts` are anything with `.alertname`, `.service` and `.status` (`AlertView`);
    only firing ones count.
    """
    firing = [a for a in alerts if getattr(a, "status", "") == "firing"]
    if not firing:
        return []
    out: list[Suggestion] = []
    for runbook in runbooks:
        if not runbook.alerts:
            continue
        names = set(runbook.alerts)
        hits = [
            a
            for a in firing
            if a.alertname in names
            and (not runbook.services or runbook.is_general or a.service in runbook.services)
        ]
        if not hits:
            continue
        labels = sorted({f"{a.alertname}" + (f" ({a.service})" if a.service else "") for a in hits})
        score = round(1.0 + len(hits) / len(firing), 4)
        out.append(Suggestion(runbook, score, f"alert {', '.join(labels)} firing"))
    out.sort(key=lambda s: (-s.score, s.runbook.title.casefold(), s.runbook.id))
    return out


def suggest_all(
    runbooks: Iterable[Runbook],
    probes: Mapping[str, Any] | ProbeIndex,
    alerts: Iterable[Any] = (),
) -> list[Suggestion]:
    """Alert matches first, then probe matches; each runbook once, at its best place."""
    books = list(runbooks)
    seen: set[str] = set()
    out: list[Suggestion] = []
    for suggestion in (*suggest_for_alerts(books, alerts), *suggest(books, probes)):
        if suggestion.runbook.id not in seen:
            seen.add(suggestion.runbook.id)
            out.append(suggestion)
    return out
