"""The session's probe index, kept one fold at a time, always equals one built from scratch,
so suggestions made from it are the ones the full pass over every target would make."""

from __future__ import annotations

import random
from pathlib import Path

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.runbooks.parser import parse_runbook
from warroom.runbooks.suggest import ProbeIndex
from warroom.session import ConsoleSession, policies

STATES = ["up", "down", "degraded", "unknown"]


def _runbook(stem: str, services: str, states: str) -> object:
    text = f"---\ntitle: {stem}\nservices: [{services}]\nstates: [{states}]\n---\n"
    runbook, problems = parse_runbook(text, f"{stem}.md")
    assert problems == []
    return runbook


def _same(index: ProbeIndex, fresh: ProbeIndex) -> None:
    assert index.state_of == fresh.state_of
    assert index.service_of == fresh.service_of
    assert index.bad == fresh.bad
    assert {s: t for s, t in index.by_service.items() if t} == fresh.by_service


def test_the_index_kept_per_fold_equals_one_built_from_the_state(tmp_path: Path) -> None:
    runbooks = {
        r.id: r  # type: ignore[attr-defined]
        for r in (
            _runbook("triage", '"*"', "down"),
            _runbook("db", "db, cache", "down, degraded"),
            _runbook("idle", "web", "up, unknown"),
        )
    }
    session = ConsoleSession(IncidentLog.open(tmp_path / "i.jsonl"), runbooks=runbooks)
    rng = random.Random(5)
    targets = [f"t{i}" for i in range(40)]
    services = ["db", "cache", "web", ""]
    seq = 0
    for round_ in range(60):
        batch: list[ev.BaseEvent] = []
        # Samples first name targets in "unknown" (new) and adopt a state on the next ones.
        seq += 1
        batch.append(
            ev.ProbeSamples(
                seq=seq,
                ts=f"2026-01-01T00:{round_ // 60:02d}:{round_ % 60:02d}Z",
                samples=[
                    ev.ProbeSample(target=t, state=rng.choice(STATES), ok=1, count=1)
                    for t in rng.sample(targets, 10)
                ],
            )
        )
        for _ in range(rng.randrange(0, 4)):
            seq += 1
            batch.append(
                ev.ProbeStateChanged(
                    seq=seq,
                    ts=f"2026-01-01T00:{round_ // 60:02d}:{round_ % 60:02d}Z",
                    target=rng.choice(targets),
                    service=rng.choice(services),  # a target may move to another service
                    from_state="up",
                    to_state=rng.choice(STATES),
                )
            )
        session.ingest(batch)
        session.settle()
        _same(session.probe_index, ProbeIndex.of(session.state.probes))
        assert session.suggested == policies.suggestions(runbooks, session.state)
    assert session.probe_index.bad  # the run did go through failures
