"""The incident state and the one pure reducer that derives it from events.

`reduce(state, event)` never mutates its input and does no I/O: the live console, replay and
the report all fold the same events through it, so they all show the same facts. States share
unchanged parts with their predecessors, so keeping many of them (replay checkpoints) is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from warroom import events as ev
from warroom.events import BaseEvent, ProbeState, Severity, Status, StepStatus

#: How many recent latency samples each probe keeps for its sparkline.
HISTORY_LEN = 60
#: How many recent events the log tail keeps (probe samples excluded: they are noise there).
TAIL_LEN = 200

_T = TypeVar("_T")
_UNKNOWN = ProbeState.UNKNOWN.value

BAD_STATES = frozenset({ProbeState.DOWN.value, ProbeState.DEGRADED.value})


@dataclass(frozen=True)
class Entry:
    """A note, bookmark or follow-up task as it was written."""

    seq: int
    ts: str
    actor: str
    text: str
    owner: str = ""


@dataclass(frozen=True)
class StatusUpdate:
    seq: int
    ts: str
    actor: str
    conditions: str
    actions: str
    needs: str


@dataclass(frozen=True)
class ProbeView:
    target: str
    service: str = ""
    state: str = ProbeState.UNKNOWN.value
    since: str = ""
    reason: str = ""
    latency_ms: float | None = None
    history: tuple[float | None, ...] = ()
    ok: int = 0
    count: int = 0
    #: Seconds spent down / degraded, closed intervals only (the report adds the open one).
    down_s: float = 0.0
    degraded_s: float = 0.0
    #: When the last result for this target (a sample or a state change) was logged, "" if none.
    last_result_at: str = ""


@dataclass(frozen=True)
class StepView:
    status: str = StepStatus.PENDING.value
    note: str = ""
    actor: str = ""
    ts: str = ""
    verified: bool = False
    verified_ts: str = ""


@dataclass(frozen=True)
class RunbookProgress:
    runbook: str
    title: str
    opened_at: str
    opened_by: str
    step_order: tuple[str, ...] = ()
    steps: dict[str, StepView] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps.values() if s.status != StepStatus.PENDING.value)


@dataclass(frozen=True)
class ControlView:
    service: str
    control: str
    value: Any = None
    last_changed_at: str = ""
    last_changed_by: str = ""
    last_reason: str = ""
    last_request_id: str = ""
    pending: str | None = None
    error: str = ""
    #: When the change `auto_revert_of` is reverted automatically (RFC 3339), "" if never.
    auto_revert_at: str = ""
    auto_revert_of: str = ""


@dataclass(frozen=True)
class ControlChange:
    """One requested change and how it ended; the record revert and the report work from."""

    request_id: str
    seq: int
    ts: str
    actor: str
    service: str
    control: str
    from_value: Any
    to_value: Any
    reason: str
    revert_of: str | None = None
    auto_revert_s: float | None = None
    outcome: str = "pending"  # pending | applied | failed
    result_value: Any = None
    error: str = ""


@dataclass(frozen=True)
class Timings:
    opened: str = ""
    impact_start: str = ""
    first_detection: str = ""
    mitigated: str = ""
    resolved: str = ""
    closed: str = ""


@dataclass(frozen=True)
class IncidentState:
    incident_id: str = ""
    title: str = ""
    severity: str = ""
    status: str = ""
    roles: dict[str, str] = field(default_factory=dict)
    notes: tuple[Entry, ...] = ()
    bookmarks: tuple[Entry, ...] = ()
    tasks: tuple[Entry, ...] = ()
    status_updates: tuple[StatusUpdate, ...] = ()
    probes: dict[str, ProbeView] = field(default_factory=dict)
    runbooks: dict[str, RunbookProgress] = field(default_factory=dict)
    controls: dict[str, ControlView] = field(default_factory=dict)
    changes: dict[str, ControlChange] = field(default_factory=dict)
    scenario_events: tuple[ev.ScenarioEvent, ...] = ()
    tail: tuple[BaseEvent, ...] = ()
    timings: Timings = field(default_factory=Timings)
    last_seq: int = 0
    last_ts: str = ""
    event_count: int = 0
    unknown_kinds: tuple[str, ...] = ()

    @property
    def declared(self) -> bool:
        return bool(self.incident_id)

    def control(self, service: str, control: str) -> ControlView | None:
        return self.controls.get(control_key(service, control))

    def last_applied_change(self, service: str, control: str) -> ControlChange | None:
        """The most recent applied change of a control (what "revert" undoes)."""
        best: ControlChange | None = None
        for change in self.changes.values():
            if (
                change.service == service
                and change.control == control
                and change.outcome == "applied"
                and (best is None or change.seq > best.seq)
            ):
                best = change
        return best


def _evolve(obj: _T, **changes: Any) -> _T:
    """`dataclasses.replace` without re-running `__init__`: 3x faster, which matters when
    replay folds a million events. Safe because these dataclasses have no validation."""
    new = object.__new__(obj.__class__)
    fields = new.__dict__
    fields.update(obj.__dict__)
    fields.update(changes)
    return new


def control_key(service: str, control: str) -> str:
    return f"{service}/{control}"


def _seconds_between(start: str, end: str) -> float:
    if not start or not end:
        return 0.0
    return max(0.0, (ev.parse_ts(end) - ev.parse_ts(start)).total_seconds())


def _push(items: tuple[Any, ...], item: Any, limit: int) -> tuple[Any, ...]:
    if len(items) >= limit:
        return (*items[len(items) - limit + 1 :], item)
    return (*items, item)


def _entry(event: BaseEvent, text: str, owner: str = "") -> Entry:
    return Entry(seq=event.seq, ts=event.ts, actor=event.actor, text=text, owner=owner)


def _probe_changed(state: IncidentState, event: ev.ProbeStateChanged) -> IncidentState:
    old = state.probes.get(event.target) or ProbeView(target=event.target)
    down_s, degraded_s = old.down_s, old.degraded_s
    elapsed = _seconds_between(old.since, event.ts)
    if old.state == ProbeState.DOWN.value:
        down_s += elapsed
    elif old.state == ProbeState.DEGRADED.value:
        degraded_s += elapsed
    view = _evolve(
        old,
        service=event.service or old.service,
        state=event.to_state,
        since=event.ts,
        reason=event.reason,
        latency_ms=event.latency_ms if event.latency_ms is not None else old.latency_ms,
        down_s=down_s,
        degraded_s=degraded_s,
        last_result_at=event.ts or old.last_result_at,
    )
    probes = dict(state.probes)
    probes[event.target] = view
    timings = state.timings
    if event.to_state in BAD_STATES:
        if not timings.first_detection:
            timings = _evolve(timings, first_detection=event.ts)
        if not timings.impact_start:
            timings = _evolve(timings, impact_start=event.ts)
    return _evolve(state, probes=probes, timings=timings)


def _probe_samples(state: IncidentState, event: ev.ProbeSamples) -> IncidentState:
    probes = dict(state.probes)
    for sample in event.samples:
        old = probes.get(sample.target) or ProbeView(target=sample.target, since=event.ts)
        probes[sample.target] = _evolve(
            old,
            state=sample.state if old.state == _UNKNOWN else old.state,
            latency_ms=sample.latency_ms,
            history=_push(old.history, sample.latency_ms, HISTORY_LEN),
            ok=sample.ok,
            count=sample.count,
            last_result_at=event.ts or old.last_result_at,
        )
    return _evolve(state, probes=probes)


def _runbook_opened(state: IncidentState, event: ev.RunbookOpened) -> IncidentState:
    runbooks = dict(state.runbooks)
    existing = runbooks.get(event.runbook)
    if existing is not None:
        # Re-opening keeps progress; a newer step list (runbook edited) is adopted.
        order = tuple(event.steps) or existing.step_order
        runbooks[event.runbook] = _evolve(
            existing, title=event.title or existing.title, step_order=order
        )
    else:
        runbooks[event.runbook] = RunbookProgress(
            runbook=event.runbook,
            title=event.title,
            opened_at=event.ts,
            opened_by=event.actor,
            step_order=tuple(event.steps),
        )
    return _evolve(state, runbooks=runbooks)


def _runbook_for(state: IncidentState, runbook: str, event: BaseEvent) -> RunbookProgress:
    return state.runbooks.get(runbook) or RunbookProgress(
        runbook=runbook, title=runbook, opened_at=event.ts, opened_by=event.actor
    )


def _step_set(state: IncidentState, event: ev.StepSet) -> IncidentState:
    progress = _runbook_for(state, event.runbook, event)
    steps = dict(progress.steps)
    old = steps.get(event.step) or StepView()
    steps[event.step] = _evolve(
        old, status=event.status, note=event.note, actor=event.actor, ts=event.ts
    )
    order = progress.step_order
    if event.step not in order:
        order = (*order, event.step)
    runbooks = dict(state.runbooks)
    runbooks[event.runbook] = _evolve(progress, steps=steps, step_order=order)
    return _evolve(state, runbooks=runbooks)


def _step_verified(state: IncidentState, event: ev.StepVerified) -> IncidentState:
    progress = _runbook_for(state, event.runbook, event)
    steps = dict(progress.steps)
    old = steps.get(event.step) or StepView()
    steps[event.step] = _evolve(
        old, verified=event.holds, verified_ts=event.ts if event.holds else ""
    )
    runbooks = dict(state.runbooks)
    runbooks[event.runbook] = _evolve(progress, steps=steps)
    return _evolve(state, runbooks=runbooks)


def _control_requested(state: IncidentState, event: ev.ControlRequested) -> IncidentState:
    key = control_key(event.service, event.control)
    old = state.controls.get(key) or ControlView(
        service=event.service, control=event.control, value=event.from_value
    )
    controls = dict(state.controls)
    controls[key] = _evolve(old, pending=event.request_id, error="")
    changes = dict(state.changes)
    changes[event.request_id] = ControlChange(
        request_id=event.request_id,
        seq=event.seq,
        ts=event.ts,
        actor=event.actor,
        service=event.service,
        control=event.control,
        from_value=event.from_value,
        to_value=event.to_value,
        reason=event.reason,
        revert_of=event.revert_of,
        auto_revert_s=event.auto_revert_s,
    )
    return _evolve(state, controls=controls, changes=changes)


def _control_result(
    state: IncidentState, event: ev.ControlApplied | ev.ControlFailed
) -> IncidentState:
    key = control_key(event.service, event.control)
    old = state.controls.get(key) or ControlView(service=event.service, control=event.control)
    changes = dict(state.changes)
    change = changes.get(event.request_id)
    applied = isinstance(event, ev.ControlApplied)
    if applied:
        view = _evolve(
            old,
            value=event.value,
            pending=None,
            error="",
            last_changed_at=event.ts,
            last_changed_by=change.actor if change else event.actor,
            last_reason=change.reason if change else "",
            last_request_id=event.request_id,
        )
    else:
        view = _evolve(
            old,
            value=event.value if event.value is not None else old.value,
            pending=None,
            error=event.error,
        )
    view = _auto_revert_after(view, change, event.ts, applied)
    if change is not None:
        changes[event.request_id] = _evolve(
            change,
            outcome="applied" if applied else "failed",
            result_value=event.value,
            error="" if applied else event.error,
        )
    controls = dict(state.controls)
    controls[key] = view
    return _evolve(state, controls=controls, changes=changes)


def _auto_revert_after(
    view: ControlView, change: ControlChange | None, ts: str, applied: bool
) -> ControlView:
    """An applied change with a duration schedules its revert; any later applied change (or an
    attempt to revert it) ends that schedule."""
    if applied and change is not None and change.auto_revert_s:
        until = ev.format_ts(ev.parse_ts(ts) + timedelta(seconds=change.auto_revert_s))
        return _evolve(view, auto_revert_at=until, auto_revert_of=change.request_id)
    ends = applied or (change is not None and change.revert_of == view.auto_revert_of)
    if view.auto_revert_of and ends:
        return _evolve(view, auto_revert_at="", auto_revert_of="")
    return view


def _auto_revert_extended(
    state: IncidentState, event: ev.ControlAutoRevertExtended
) -> IncidentState:
    key = control_key(event.service, event.control)
    view = state.controls.get(key)
    if view is None or view.auto_revert_of != event.request_id:
        return state
    controls = dict(state.controls)
    controls[key] = _evolve(view, auto_revert_at=event.until)
    return _evolve(state, controls=controls)


def _status_set(state: IncidentState, event: ev.StatusSet) -> IncidentState:
    timings = state.timings
    if event.status == Status.MONITORING.value and not timings.mitigated:
        timings = _evolve(timings, mitigated=event.ts)
    if event.status == Status.RESOLVED.value:
        if not timings.mitigated:
            timings = _evolve(timings, mitigated=event.ts)
        if not timings.resolved:
            timings = _evolve(timings, resolved=event.ts)
    return _evolve(state, status=event.status, timings=timings)


def _apply(state: IncidentState, event: BaseEvent) -> IncidentState:
    match event:
        case ev.IncidentOpened():
            timings = state.timings
            if not timings.opened:
                timings = _evolve(timings, opened=event.ts)
            return _evolve(
                state,
                incident_id=event.incident_id,
                title=event.title,
                severity=event.severity,
                status=state.status or Status.INVESTIGATING.value,
                timings=timings,
            )
        case ev.IncidentClosed():
            timings = state.timings
            timings = _evolve(
                timings,
                closed=event.ts,
                resolved=timings.resolved or event.ts,
                mitigated=timings.mitigated or event.ts,
            )
            return _evolve(state, status=Status.RESOLVED.value, timings=timings)
        case ev.TitleSet():
            return _evolve(state, title=event.title)
        case ev.SeveritySet():
            return _evolve(state, severity=event.severity)
        case ev.StatusSet():
            return _status_set(state, event)
        case ev.RoleAssigned():
            return _evolve(state, roles={**state.roles, event.role: event.person})
        case ev.NoteAdded():
            return _evolve(state, notes=(*state.notes, _entry(event, event.text)))
        case ev.BookmarkAdded():
            return _evolve(state, bookmarks=(*state.bookmarks, _entry(event, event.label)))
        case ev.TaskAdded():
            return _evolve(state, tasks=(*state.tasks, _entry(event, event.text, event.owner)))
        case ev.StatusUpdatePosted():
            update = StatusUpdate(
                seq=event.seq,
                ts=event.ts,
                actor=event.actor,
                conditions=event.conditions,
                actions=event.actions,
                needs=event.needs,
            )
            return _evolve(state, status_updates=(*state.status_updates, update))
        case ev.ProbeStateChanged():
            return _probe_changed(state, event)
        case ev.ProbeSamples():
            return _probe_samples(state, event)
        case ev.RunbookOpened():
            return _runbook_opened(state, event)
        case ev.StepSet():
            return _step_set(state, event)
        case ev.StepVerified():
            return _step_verified(state, event)
        case ev.ControlRequested():
            return _control_requested(state, event)
        case ev.ControlApplied() | ev.ControlFailed():
            return _control_result(state, event)
        case ev.ControlAutoRevertExtended():
            return _auto_revert_extended(state, event)
        case ev.ScenarioEvent():
            timings = state.timings
            if not timings.impact_start:
                timings = _evolve(timings, impact_start=event.ts)
            return _evolve(state, scenario_events=(*state.scenario_events, event), timings=timings)
        case ev.UnknownEvent():
            if event.kind in state.unknown_kinds:
                return state
            return _evolve(state, unknown_kinds=(*state.unknown_kinds, event.kind))
        case _:
            # CommandRun, ControlEffect: recorded in the tail and the report, no state of their own.
            return state


def reduce(state: IncidentState, event: BaseEvent) -> IncidentState:
    """Return the state after `event`. Pure: `state` is not modified."""
    if event.__class__ is ev.ProbeSamples:
        # Most of a long log; skips the match and never enters the tail (noise there).
        return _evolve(
            _probe_samples(state, event),  # type: ignore[arg-type]
            last_seq=event.seq,
            last_ts=event.ts or state.last_ts,
            event_count=state.event_count + 1,
        )
    new = _apply(state, event)
    return _evolve(
        new,
        tail=_push(new.tail, event, TAIL_LEN),
        last_seq=event.seq,
        last_ts=event.ts or new.last_ts,
        event_count=new.event_count + 1,
    )


def fold(events: Iterable[BaseEvent], state: IncidentState | None = None) -> IncidentState:
    """Reduce a sequence of events, starting from `state` (or the empty state)."""
    current = state if state is not None else IncidentState()
    for event in events:
        current = reduce(current, event)
    return current


def severity_rank(severity: str) -> int:
    """1 for SEV1 (worst) ... 4 for SEV4; 9 when unset."""
    try:
        return int(Severity(severity).value[-1])
    except ValueError:
        return 9
