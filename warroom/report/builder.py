"""Build the postmortem report by streaming events through the reducer.

The facts come from `warroom.state.reduce`, like everything the console shows: impact minutes
are the reducer's per-target and per-service clocks, never a clock of the report's own. Probe
samples are the bulk of a long log but only matter to the report when they give a target its
first state, so `ReportBuilder` skips reducing the others (and, for raw lines, skips even
building the event): a million-event log reports in seconds. `exact=True` reduces everything;
the tests check both give the same report.
"""

from __future__ import annotations

import bisect
import itertools
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

from warroom import events as ev
from warroom.controls.words import value_words
from warroom.errors import WarroomError
from warroom.log import codec
from warroom.replay.verify_job import VerifyJob
from warroom.report import flapping
from warroom.report.model import (
    ControlChangeReport,
    ControlEffectSummary,
    EntryReport,
    Integrity,
    KeyTime,
    KeyTimes,
    Participant,
    ProbeChange,
    ProbingPeriodReport,
    Report,
    RunbookReport,
    ServiceImpact,
    StatusUpdateReport,
    StepReport,
    TargetImpact,
    TimelineCategory,
    TimelineEntry,
)
from warroom.state import BAD_STATES, ControlChange, IncidentState, reduce

_UNKNOWN = ev.ProbeState.UNKNOWN.value
_SAMPLES_KIND = ev.ProbeSamples.model_fields["kind"].default
_SAMPLES_MARK = b'"kind":"probe_samples"'
# In canonical JSON a quote inside a string is escaped, so this only matches real keys; a
# name's escapes are kept, as `_settled` holds names the way canonical JSON writes them.
_TARGET_RE = re.compile(rb'"target":"([^"\\]*(?:\\.[^"\\]*)*)"')
#: Up to this many settled targets, a block's check for an unsettled one is one search.
_LOOKAHEAD_MAX = 64
_RESOLVED = ev.Status.RESOLVED.value
_MONITORING = ev.Status.MONITORING.value

#: A lever's effect window closes once its probes were quiet this long after a change...
SETTLE_S = 120.0
#: ...or this long after the lever when they never changed.
EFFECT_WAIT_S = 300.0

#: Who machine events are credited to, by kind (the actor field names the console that ran).
MACHINE_ACTORS = {
    "probe_state_changed": "probe",
    "probe_samples": "probe",
    "step_verified": "probe",
    "control_effect": "probe",
    "scenario_event": "sim",
    "control_applied": "lever",
    "control_failed": "lever",
}
#: Operator kinds that tell the story (runbook steps and commands are in their own section).
HIGHLIGHT_KINDS = frozenset(
    {
        "incident_opened",
        "incident_closed",
        "title_set",
        "severity_set",
        "status_set",
        "role_assigned",
        "note_added",
        "bookmark_added",
        "status_update_posted",
        "runbook_opened",
        "control_requested",
        "control_auto_revert_extended",
    }
)
#: Beyond this many, notes leave the highlights (they stay in the appendix).
HIGHLIGHTS_MAX = 200
#: Beyond this many relapses (impact back after it ended), they leave the highlights.
RELAPSES_MAX = 20
#: What a streamed report's appendix reads again rather than hold (see `Appendix`).
_APPENDIX_KINDS = frozenset({"note_added", "bookmark_added"})
#: Kinds that count as acting on the system (the "first action" milestone).
ACTION_KINDS = frozenset({"control_requested", "command_run"})


def _seconds(start: str, end: str) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (ev.parse_ts(end) - ev.parse_ts(start)).total_seconds())


#: The timeline category of each machine kind's model (operator actions are "action").
_CATEGORIES: dict[type[ev.BaseEvent], TimelineCategory] = {
    ev.ProbeStateChanged: "probe",
    ev.ScenarioEvent: "scenario",
    ev.ControlApplied: "control",
    ev.ControlFailed: "control",
    ev.ControlEffect: "control",
    ev.StepVerified: "runbook",
}


def _category(event: ev.BaseEvent) -> TimelineCategory:
    if event.operator:
        return "action"
    return _CATEGORIES.get(event.__class__, "other")


def credit(kind: str, actor: str) -> str:
    """Who an event is credited to: the machine for machine events, else its actor."""
    return MACHINE_ACTORS.get(kind, actor)


@dataclass(slots=True)
class _Row:
    """One timeline line, kept small (a long log has many)."""

    seq: int
    ts: str
    actor: str
    kind: str
    category: TimelineCategory
    text: str
    change: flapping.StateChange | None
    #: Its place among the timeline's rows (a streamed report keeps only some rows).
    index: int = 0


@dataclass
class _Moments:
    """Key moments as the events arrive (status moments honour reopen)."""

    trigger: str = ""
    first_failure: str = ""
    impact_start: str = ""
    impact_end: str = ""
    alert: str = ""
    alert_began: str = ""
    acknowledged: str = ""
    first_action: str = ""
    mitigated: str = ""
    resolved: str = ""
    closed: str = ""
    reopened: list[str] = field(default_factory=list)
    status: str = ""


class ReportBuilder:
    """Feed events (or decoded log lines) in log order, then call `report()`.

    With `keep_timeline=False` (a streamed report) it keeps only the rows the highlights
    need, finds flapping runs as they come and leaves notes and bookmarks to the appendix's
    second pass (`Appendix`): memory no longer grows with the log.
    """

    def __init__(self, *, exact: bool = False, keep_timeline: bool = True) -> None:
        self.exact = exact
        self.keep_timeline = keep_timeline
        self.state = IncidentState()
        #: Every timeline row, or with `keep_timeline=False` the highlight candidates only.
        self.rows: list[_Row] = []
        self.row_count = 0
        #: The line number of the event being fed (set by the log reader), and of every row's.
        self.line = 0
        self.row_lines = array("q")
        #: Rows of a kind the highlights show (they leave out notes beyond `HIGHLIGHTS_MAX`).
        self.highlight_kinds = 0
        self.runs = flapping.RunFinder()
        self.logged_effects: dict[str, ev.ControlEffect] = {}
        self.change_context: dict[str, tuple[str | None, str | None]] = {}
        self.applied_at: dict[str, str] = {}
        #: service -> times a lever of it was requested or applied, in order (what closes the
        #: effect window of the one before: only its own service's levers act on its probes).
        self.lever_times: dict[str, list[str]] = {}
        #: target -> ([ts], [state]) every state it took, for lever effects (two lists, not
        #: a tuple per change: a long outage has 800,000 changes).
        self.history: dict[str, tuple[list[str], list[str]]] = {}
        self.target_state: dict[str, str] = {}
        #: service -> the row of its first failure and of its last recovery.
        self.first_bad: dict[str, _Row] = {}
        self.last_good: dict[str, _Row] = {}
        self.moments = _Moments()
        #: Failures that brought impact back after it had ended (the first few, and how many).
        self.relapses: list[_Row] = []
        self.relapse_count = 0
        #: The changes after which every probe was healthy again.
        self.healthy: list[_Row] = []
        self._service_targets: dict[str, list[str]] = {}
        self.actions: dict[str, list[int | str]] = {}
        self._settled: set[bytes] = set()
        self._unsettled_re: tuple[frozenset[bytes], re.Pattern[bytes]] | None = None
        #: How many times a target lost its state (its samples must be reduced again).
        self.unsettled = 0
        #: The last line skipped undecoded, when it is the last line fed so far.
        self._skipped_last: bytes | None = None
        self.count = 0
        self.first_seq = 0
        self.last_seq = 0
        self.last_ts = ""
        self.last_hash = ""

    # -- input -------------------------------------------------------------------------

    def feed(self, event: ev.BaseEvent) -> None:
        """Take one event."""
        cls = event.__class__
        if cls is ev.ProbeSamples:
            event = cast(ev.ProbeSamples, event)
            self._envelope(event.seq, event.ts, event.hash)
            fresh = [
                (s.target, s.state)
                for s in event.samples
                if self.target_state.get(s.target, _UNKNOWN) == _UNKNOWN
            ]
            if self.exact or fresh:
                self._reduce(event, None)
            for target, state in fresh:
                self._target_state(target, state, event.ts)
            return
        if cls is ev.ProbeEngineHealth:
            # The prober's own health, every few seconds per shard: state, not story.
            self._envelope(event.seq, event.ts, event.hash)
            self.state = reduce(self.state, event)
            return
        self._envelope(event.seq, event.ts, event.hash)
        kind = event.kind
        row = self._row(event.seq, event.ts, credit(kind, event.actor), kind, _category(event))
        row.text = event.summary()
        moments = self.moments
        # By class, not `match`: a class pattern costs a few µs per event on a million.
        if cls is ev.ProbeStateChanged:
            change = cast(ev.ProbeStateChanged, event)
            row.change = flapping.StateChange(
                change.target, change.ts, change.from_state, change.to_state
            )
            self._target_state(change.target, change.to_state, change.ts)
        elif cls is ev.ControlEffect:
            effect = cast(ev.ControlEffect, event)
            self.logged_effects[effect.request_id] = effect
        elif cls is ev.ControlRequested:
            request = cast(ev.ControlRequested, event)
            self.change_context[request.request_id] = (request.runbook, request.step)
            self.lever_times.setdefault(request.service, []).append(request.ts)
        elif cls is ev.ControlApplied:
            applied = cast(ev.ControlApplied, event)
            self.applied_at[applied.request_id] = applied.ts
            self.lever_times.setdefault(applied.service, []).append(applied.ts)
        elif cls is ev.ScenarioEvent:
            moments.trigger = moments.trigger or event.ts
        elif cls is ev.StatusSet:
            self._status(cast(ev.StatusSet, event).status, event.ts)
        elif cls is ev.IncidentClosed:
            moments.closed = event.ts
            self._status(_RESOLVED, event.ts)
        elif cls is ev.AlertObserved:
            alert = cast(ev.AlertObserved, event)
            if alert.status == "firing":
                moments.alert = moments.alert or alert.ts
                # An alert's startsAt is when its condition began: impact began then at latest.
                began = alert.starts_at or alert.ts
                moments.alert_began = min(filter(None, (moments.alert_began, began)))
        elif cls is ev.UnknownEvent and "alert" in kind:
            moments.alert = moments.alert or event.ts
        if row.change is not None and not self.keep_timeline:
            self.runs.add(row.index, row.seq, row.change)
        if event.operator:
            self._acted(event.actor, kind, event.ts)
        self._keep(row)
        if not self.keep_timeline and kind in _APPENDIX_KINDS:
            # Nothing the report shows but the appendix, which reads them again: not held.
            return
        touched = (cast(ev.ProbeStateChanged, event).target,) if cls is ev.ProbeStateChanged else ()
        self._reduce(event, row, touched)

    def _row(self, seq: int, ts: str, actor: str, kind: str, category: TimelineCategory) -> _Row:
        """A new timeline row (its text set by the caller), its line noted when streaming."""
        row = _Row(seq, ts, actor, kind, category, "", None, self.row_count)
        self.row_count += 1
        if not self.keep_timeline:
            self.row_lines.append(self.line)
        return row

    def _acted(self, actor: str, kind: str, ts: str) -> None:
        """An operator action: the acknowledged and first-action moments, and its tally."""
        moments = self.moments
        if not moments.acknowledged and (self.state.bad_targets or moments.alert):
            moments.acknowledged = ts
        if kind in ACTION_KINDS and not moments.first_action:
            moments.first_action = ts
        tally = self.actions.setdefault(actor, [0, ts])
        tally[0] = int(tally[0]) + 1

    def _feed_entry(self, data: dict[str, Any]) -> bool:
        """A note or bookmark line of a streamed report taken from its decoded dict, without
        building the event (most of a log of notes); False when its shape is not exactly what
        its model declares, so the model judges it (and names what is wrong)."""
        plain = _PLAIN_ENTRIES.get(data.get("kind"))  # type: ignore[arg-type]
        if plain is None or not _plain_envelope(data):
            return False
        text = data.get(plain[1])
        if text.__class__ is not str:
            return False
        seq, ts, actor, kind = data["seq"], data["ts"], data.get("actor", ""), data["kind"]
        self._envelope(seq, ts, data.get("hash", ""))
        row = self._row(seq, ts, actor, kind, "action")
        row.text = plain[2] + text
        # An operator action (`NoteAdded.operator`, `BookmarkAdded.operator`), never a lever.
        self._acted(actor, kind, ts)
        self._keep(row)
        return True

    def _keep(self, row: _Row) -> None:
        if row.kind in HIGHLIGHT_KINDS:
            self.highlight_kinds += 1
            if self.highlight_kinds == HIGHLIGHTS_MAX + 1 and not self.keep_timeline:
                self.rows = [r for r in self.rows if r.kind != "note_added"]
        if self.keep_timeline or (
            row.kind in HIGHLIGHT_KINDS
            and (row.kind != "note_added" or self.highlight_kinds <= HIGHLIGHTS_MAX)
        ):
            self.rows.append(row)

    def _status(self, status: str, ts: str) -> None:
        moments = self.moments
        if moments.status == _RESOLVED and status != _RESOLVED:
            moments.reopened.append(ts)
            moments.resolved = moments.mitigated = ""
        if status == _MONITORING and not moments.mitigated:
            moments.mitigated = ts
        if status == _RESOLVED and not moments.resolved:
            moments.resolved = ts
        moments.status = status

    def _reduce(self, event: ev.BaseEvent, row: _Row | None, touched: Iterable[str] = ()) -> None:
        """Fold `event` and note what it did to impact (from the reducer's clocks)."""
        before = self.state
        after = self.state = reduce(before, event)
        if after.services is before.services:
            return
        moments = self.moments
        if after.bad_targets and not before.bad_targets:
            if moments.first_failure and row is not None:
                self.relapse_count += 1
                if len(self.relapses) <= RELAPSES_MAX:
                    self.relapses.append(row)
            moments.impact_start = moments.impact_start or event.ts
            moments.first_failure = moments.first_failure or event.ts
            moments.impact_end = ""
        elif before.bad_targets and not after.bad_targets:
            moments.impact_end = event.ts
            if row is not None:
                self.healthy.append(row)
        if row is None:
            return
        names = {
            probe.service or probe.target
            for probes in (before.probes, after.probes)
            for target in touched
            if (probe := probes.get(target)) is not None
        }
        for name in names:
            view, old = after.services.get(name), before.services.get(name)
            was_bad = old is not None and old.state in BAD_STATES
            if view is None or view is old:
                continue
            if view.state in BAD_STATES and not was_bad:
                self.first_bad.setdefault(name, row)
            elif was_bad and view.state not in BAD_STATES:
                self.last_good[name] = row

    def feed_line(self, data: dict[str, Any]) -> None:
        """Take one decoded log line; probe samples that change nothing are not even parsed."""
        if not self.exact and data.get("kind") == _SAMPLES_KIND:
            fast = self._fast_samples(data)
            if fast:
                return
        if not self.keep_timeline and self._feed_entry(data):
            return
        self.feed(ev.parse_event(data))

    def _fast_samples(self, data: dict[str, Any]) -> bool:
        samples = data.get("samples")
        seq, ts = data.get("seq"), data.get("ts")
        if not isinstance(samples, list) or not isinstance(seq, int) or not isinstance(ts, str):
            return False
        known = self.target_state
        for sample in samples:
            if not isinstance(sample, dict) or known.get(str(sample.get("target")), _UNKNOWN) == (
                _UNKNOWN
            ):
                return False
        self._envelope(seq, ts, str(data.get("hash", "")))
        return True

    # -- bookkeeping ---------------------------------------------------------------------

    def _envelope(self, seq: int, ts: str, digest: str) -> None:
        self._skipped_last = None
        self.count += 1
        if not self.first_seq:
            self.first_seq = seq
        self.last_seq = seq
        self.last_hash = digest
        if ts:
            self.last_ts = ts

    def _target_state(self, target: str, to_state: str, ts: str) -> None:
        self.target_state[target] = to_state
        times, states = self.history.setdefault(target, ([], []))
        times.append(ts)
        states.append(to_state)
        # Targets whose samples can be skipped, as their names appear in canonical JSON.
        if to_state == _UNKNOWN:
            self.unsettled += 1
            self._settled.discard(orjson.dumps(target)[1:-1])
        else:
            self._settled.add(orjson.dumps(target)[1:-1])

    # -- output ----------------------------------------------------------------------------

    def report(self, *, source: str = "", integrity: Integrity | None = None) -> Report:
        """The report for everything fed so far."""
        if self._skipped_last is not None:
            data = codec.decode(self._skipped_last)
            self.last_seq, self.last_ts = int(data["seq"]), str(data["ts"])
            self.last_hash = str(data.get("hash", ""))
            self._skipped_last = None
        state = self.state
        end = self.last_ts
        integrity = (integrity or Integrity()).model_copy(
            update={"head_seq": self.last_seq, "head_hash": self.last_hash}
        )
        timeline = self._timeline() if self.keep_timeline else []
        self._service_targets = _service_targets(state)
        return Report(
            source=source,
            incident_id=state.incident_id,
            title=state.title,
            severity=state.severity,
            status=state.status,
            roles=dict(state.roles),
            event_count=self.count,
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            times=self._times(state, end),
            impact=self._impact(state, end),
            highlights=self._highlights(),
            timeline=timeline,
            controls=[
                self._change(c, end) for c in sorted(state.changes.values(), key=lambda c: c.seq)
            ],
            runbooks=[
                RunbookReport(
                    runbook=rb.runbook,
                    title=rb.title,
                    opened_at=rb.opened_at,
                    opened_by=rb.opened_by,
                    steps=[
                        StepReport(
                            step=step,
                            status=view.status,
                            note=view.note,
                            actor=view.actor,
                            ts=view.ts,
                            verified=view.verified,
                        )
                        if (view := rb.steps.get(step)) is not None
                        else StepReport(step=step, status=ev.StepStatus.PENDING.value)
                        for step in rb.step_order
                    ],
                )
                for rb in state.runbooks.values()
            ],
            notes=[_entry(e) for e in state.notes] if self.keep_timeline else [],
            bookmarks=[_entry(e) for e in state.bookmarks] if self.keep_timeline else [],
            tasks=[_entry(e) for e in state.tasks],
            status_updates=[
                StatusUpdateReport(
                    seq=u.seq,
                    ts=u.ts,
                    actor=u.actor,
                    conditions=u.conditions,
                    actions=u.actions,
                    needs=u.needs,
                )
                for u in state.status_updates
            ],
            participants=self._participants(state),
            unknown_kinds=list(state.unknown_kinds),
            integrity=integrity,
            probing_degraded=[
                ProbingPeriodReport(
                    start=p.start,
                    end=p.end,
                    duration_s=_seconds(p.start, p.end),
                    reason=p.reason,
                )
                for p in state.probing.periods
            ],
        )

    def _times(self, state: IncidentState, end: str) -> KeyTimes:
        t, m = state.timings, self.moments
        candidates = [ts for ts in (m.trigger, m.impact_start, m.alert_began) if ts]
        impact_start = min(candidates) if candidates else ""
        detections = [ts for ts in (m.alert, t.first_detection) if ts]
        detected = min(detections) if detections else ""
        acknowledged = m.acknowledged or t.opened
        # Impact ends when the last failing probe recovered; with no probes, at "monitoring".
        stopped = m.impact_end if m.first_failure else m.mitigated
        start = impact_start or t.opened
        finish = m.resolved or end
        began = (
            "fault injected (simulator)"
            if impact_start == m.trigger
            else "first alert's startsAt"
            if impact_start == m.alert_began
            else "first failing probe"
        )
        rows = [
            KeyTime(label=label, ts=ts, basis=basis)
            for label, ts, basis in (
                ("Impact started", impact_start, began),
                (
                    "First failing probe",
                    m.first_failure if began != "first failing probe" else "",
                    "probe",
                ),
                ("Detected", detected, "first alert" if detected == m.alert else "probe"),
                ("Acknowledged", acknowledged, "first responder action"),
                ("Declared", t.opened, "incident opened"),
                ("First action", m.first_action, "first lever or command"),
                ("Impact ended", m.impact_end, "last failing probe recovered"),
                ("Mitigated", m.mitigated, "status monitoring"),
                ("Resolved", m.resolved, "status resolved"),
                ("Closed", m.closed, "incident closed"),
                *(("Reopened", ts, "status left resolved") for ts in m.reopened),
            )
            if ts
        ]
        rows.sort(key=lambda row: row.ts)
        return KeyTimes(
            impact_start=impact_start,
            opened=t.opened,
            first_detection=detected,
            mitigated=m.mitigated,
            resolved=m.resolved,
            closed=m.closed,
            last_event=end,
            time_to_detect_s=_seconds(impact_start, detected),
            time_to_acknowledge_s=_seconds(detected, acknowledged),
            time_to_mitigate_s=_seconds(start, stopped),
            time_to_resolve_s=_seconds(start, m.resolved),
            duration_s=_seconds(t.opened, finish),
            trigger=m.trigger,
            first_failure=m.first_failure,
            impact_end=m.impact_end,
            acknowledged=acknowledged,
            first_action=m.first_action,
            reopened=list(m.reopened),
            rows=rows,
        )

    def _impact(self, state: IncidentState, end: str) -> list[ServiceImpact]:
        by_service: dict[str, list[TargetImpact]] = {}
        for name, probe in sorted(state.probes.items()):
            open_s = _seconds(probe.since, end) or 0.0
            down = probe.down_s + (open_s if probe.state == ev.ProbeState.DOWN.value else 0.0)
            degraded = probe.degraded_s + (
                open_s if probe.state == ev.ProbeState.DEGRADED.value else 0.0
            )
            by_service.setdefault(probe.service or name, []).append(
                TargetImpact(
                    target=name,
                    down_s=down,
                    degraded_s=degraded,
                    final_state=probe.state,
                    since=probe.since,
                    reason=probe.reason,
                )
            )
        result = []
        for service, targets in sorted(by_service.items()):
            view = state.services.get(service)
            down = view.down_s if view else 0.0
            degraded = view.degraded_s if view else 0.0
            final = view.state if view else _UNKNOWN
            tail = _seconds(view.since, end) or 0.0 if view else 0.0
            if final == ev.ProbeState.DOWN.value:
                down += tail
            elif final == ev.ProbeState.DEGRADED.value:
                degraded += tail
            result.append(
                ServiceImpact(
                    service=service,
                    down_s=down,
                    degraded_s=degraded,
                    final_state=final,
                    targets=targets,
                    since=view.since if view else "",
                )
            )
        return result

    def _change(self, c: ControlChange, end: str) -> ControlChangeReport:
        runbook, step = self.change_context.get(c.request_id, (None, None))
        return ControlChangeReport(
            unit=c.unit,
            request_id=c.request_id,
            seq=c.seq,
            ts=c.ts,
            actor=c.actor,
            service=c.service,
            control=c.control,
            from_value=c.from_value,
            to_value=c.to_value,
            reason=c.reason,
            outcome=c.outcome,
            result_value=c.result_value,
            error=c.error,
            revert_of=c.revert_of,
            runbook=runbook,
            step=step,
            effect=self._effect(c, end),
        )

    def _effect(self, change: ControlChange, end: str) -> ControlEffectSummary | None:
        """What the lever's probes did from when it applied until they settled, the next
        lever, or the end of the log (whichever came first)."""
        start = self.applied_at.get(change.request_id)
        if start is None:
            return None
        logged = self.logged_effects.get(change.request_id)
        targets = set(self._service_targets.get(change.service, ()))
        if logged is not None:
            targets |= {s.target for s in logged.before}
        targets = {t for t in targets if t in self.history}
        if not targets:
            return None
        levers = self.lever_times.get(change.service, [])
        i = bisect.bisect_right(levers, start)
        next_lever = levers[i] if i < len(levers) else ""
        limit = next_lever or end
        changes: list[tuple[str, str, str, str]] = []  # ts, target, from, to
        before: dict[str, str] = {}
        for target in sorted(targets):
            times, states = self.history[target]
            j = bisect.bisect_right(times, start)
            before[target] = states[j - 1] if j else _UNKNOWN
            prev = before[target]
            for ts, state in zip(
                itertools.islice(times, j, None), itertools.islice(states, j, None), strict=True
            ):
                if limit and ts >= limit:
                    break
                changes.append((ts, target, prev, state))
                prev = state
        changes.sort()
        close, ended_by = limit, "next lever" if next_lever else "end of log"
        last = start
        # Each ts parsed once: a long outage has ~800,000 of these moves.
        began = last_t = ev.parse_ts(start)
        kept: list[tuple[str, str, str, str]] = []
        after_s: list[float] = []
        for item in changes:
            t = ev.parse_ts(item[0])
            if (t - last_t).total_seconds() > (SETTLE_S if kept else EFFECT_WAIT_S):
                close, ended_by = item[0], "settled" if kept else "no change"
                break
            kept.append(item)
            after_s.append(max(0.0, (t - began).total_seconds()))
            last, last_t = item[0], t
        else:
            waited = _seconds(last, limit) or 0.0
            if waited > (SETTLE_S if kept else EFFECT_WAIT_S):
                ended_by = "settled" if kept else "no change"
        after = dict(before)
        for _ts, target, _from, to in kept:
            after[target] = to
        window = _seconds(start, close) or 0.0
        if ended_by in ("settled", "no change"):
            window = _seconds(start, last) or 0.0 if kept else min(window, EFFECT_WAIT_S)
        return ControlEffectSummary(
            after_s=window,
            before=before,
            after=after,
            changes=[
                ProbeChange(target=target, from_state=frm, to_state=to, after_s=seconds)
                for (_ts, target, frm, to), seconds in zip(kept, after_s, strict=True)
            ],
            ended_by=ended_by,
        )

    def _timeline(self) -> list[TimelineEntry]:
        entries: list[TimelineEntry] = []
        make = TimelineEntry
        for item in flapping.collapse(self.rows, _change_of, seq_of=_seq_of):
            if isinstance(item, flapping.Flapping):
                entries.append(_flapping_entry(item))
            else:
                entries.append(
                    make(
                        seq=item.seq,
                        ts=item.ts,
                        actor=item.actor,
                        kind=item.kind,
                        category=item.category,
                        text=item.text,
                        count=1,
                        until="",
                    )
                )
        return entries

    def _highlights(self) -> list[TimelineEntry]:
        """Operator actions that tell the story, with each service's first failure and last
        recovery; a lever's result is folded into its request's line."""
        marks: dict[int, str] = {}
        for name, row in self.first_bad.items():
            marks[row.seq] = marks.get(row.seq, "") + f"{name} failing; "
        # A long flappy outage relapses often: then only the final recovery is a highlight.
        few = self.relapse_count <= RELAPSES_MAX
        for row in self.relapses if few else ():
            if row.seq not in marks and row.change is not None:
                marks[row.seq] = f"{row.change.target} failing again; "
        for name, row in self.last_good.items():
            view = self.state.services.get(name)
            if view is not None and view.state not in BAD_STATES:
                marks[row.seq] = marks.get(row.seq, "") + f"{name} recovered; "
        for row in self.healthy if few else self.healthy[-1:]:
            marks[row.seq] = marks.get(row.seq, "") + "every probe healthy; "
        outcome = {
            c.request_id: (
                f"applied ({value_words(c.result_value, c.unit)})"
                if c.outcome == "applied"
                else c.outcome
            )
            + (f": {c.error}" if c.error else "")
            for c in self.state.changes.values()
        }
        notes_too = self.highlight_kinds <= HIGHLIGHTS_MAX
        found: list[TimelineEntry] = []
        make = TimelineEntry
        rows = self.rows
        if not self.keep_timeline:
            marked = [*self.first_bad.values(), *self.relapses, *self.last_good.values()]
            marked += self.healthy
            by_index = {row.index: row for row in (*rows, *marked)}
            rows = [by_index[i] for i in sorted(by_index)]
        request_ids: dict[int, str] = {}
        for c in self.state.changes.values():
            request_ids.setdefault(c.seq, c.request_id)
        i = 0
        while i < len(rows):
            row = rows[i]
            text = ""
            if row.seq in marks:
                text = f"{marks[row.seq].rstrip('; ')} ({row.text})"
            elif (
                row.kind in HIGHLIGHT_KINDS
                and row.category == "action"
                and (notes_too or row.kind != "note_added")
            ):
                text = row.text
                if row.kind == "role_assigned":
                    # A burst of role assignments by one person reads as one line.
                    while (
                        i + 1 < len(rows)
                        and rows[i + 1].index == rows[i].index + 1
                        and rows[i + 1].kind == "role_assigned"
                        and rows[i + 1].actor == row.actor
                        and (_seconds(row.ts, rows[i + 1].ts) or 0.0) <= 60
                    ):
                        i += 1
                        text += ", " + rows[i].text
                    text = "roles: " + text
                elif row.kind == "control_requested":
                    rid = request_ids.get(row.seq, "")
                    if rid in outcome:
                        text += f": {outcome[rid]}"
            if text:
                found.append(
                    make(
                        seq=row.seq,
                        ts=row.ts,
                        actor=row.actor,
                        kind=row.kind,
                        category=row.category,
                        text=text,
                        count=1,
                        until="",
                    )
                )
            i += 1
        return found

    def _participants(self, state: IncidentState) -> list[Participant]:
        """Everyone who acted (and everyone given a role), in order of first action."""
        people = []
        unclaimed = dict(state.roles)
        for actor, (count, first) in self.actions.items():
            short = actor.split("@", 1)[0]
            mine = [r for r, p in state.roles.items() if p in (actor, short)]
            for role in mine:
                unclaimed.pop(role, None)
            people.append(
                Participant(actor=actor, roles=mine, actions=int(count), first_ts=str(first))
            )
        by_person: dict[str, list[str]] = {}
        for role, person in unclaimed.items():
            by_person.setdefault(person, []).append(role)
        people.extend(
            Participant(actor=person, roles=roles, actions=0, first_ts="")
            for person, roles in by_person.items()
        )
        return people


def _change_of(row: _Row) -> flapping.StateChange | None:
    return row.change


def _seq_of(row: _Row) -> int:
    return row.seq


def _flapping_entry(run: flapping.Flapping) -> TimelineEntry:
    return TimelineEntry(
        seq=run.first_seq,
        ts=run.first_ts,
        actor="probe",
        kind="flapping",
        category="probe",
        text=run.summary(),
        count=run.count,
        until=run.last_ts,
    )


def _service_targets(state: IncidentState) -> dict[str, list[str]]:
    """service -> its targets, as the reducer last saw them."""
    found: dict[str, list[str]] = {}
    for name, probe in state.probes.items():
        found.setdefault(probe.service or name, []).append(name)
    return found


def _entry(entry: Any) -> EntryReport:
    return EntryReport(
        seq=entry.seq,
        ts=entry.ts,
        actor=entry.actor,
        text=entry.text,
        owner=entry.owner,
        priority=getattr(entry, "priority", ""),
        type=getattr(entry, "type", ""),
        link=getattr(entry, "link", ""),
    )


def build_report(
    events: Iterable[ev.BaseEvent],
    *,
    source: str = "",
    integrity: Integrity | None = None,
    exact: bool = False,
) -> Report:
    """The report for a sequence of events (already parsed)."""
    builder = ReportBuilder(exact=exact)
    for event in events:
        builder.feed(event)
    return builder.report(source=source, integrity=integrity)


@dataclass
class LineStop:
    """Where reading a log stopped before its end, and why."""

    line: int | None = None
    reason: str = ""


def iter_log_blocks(path: Path, stop: LineStop, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Yield the log in blocks of complete lines (each ending with a newline); a torn last
    line (no newline) is left out and noted in `stop.reason` (the caller knows its number)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise WarroomError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        rest = b""
        while chunk := handle.read(chunk_size):
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield data[:cut]
        if rest.strip():
            stop.reason = "torn last line (no newline): left out"


def _feed_block(builder: ReportBuilder, data: bytes, first_line: int) -> int | LineStop:
    """Feed a block of complete lines and return how many there were, or a `LineStop`
    naming the first line that is not an event.

    Probe-samples lines whose targets all have a state already change nothing the report
    shows; their bytes tell (kind and target names, canonical JSON) without decoding them.
    When that holds for the whole block, only its other lines are visited one by one.
    """
    lines = data.split(b"\n")
    lines.pop()  # after the final newline
    mark = _SAMPLES_MARK
    settled = builder._settled
    block_settled = False
    if not builder.exact and builder.first_seq:
        # Only the samples lines' targets matter (every other line is fed): on a long
        # outage's log the other lines are most of the block's targets.
        if len(settled) > _LOOKAHEAD_MAX:
            others: list[tuple[int, bytes]] = []
            samples: list[bytes] = []
            for i, line in enumerate(lines):
                if mark in line:
                    samples.append(line)
                else:
                    others.append((i, line))
            block_settled = settled.issuperset(_TARGET_RE.findall(b"\n".join(samples)))
        else:
            # A few targets: one search of the block for a name without a state. A target
            # named outside the samples lines counts too, which only ever sends the block
            # the exact way.
            others = [(i, line) for i, line in enumerate(lines) if mark not in line]
            block_settled = _unsettled_name(builder).search(data) is None
    if block_settled:
        unsettled = builder.unsettled
        done = -1
        for i, line in others:
            builder.count += i - done - 1  # the samples lines in between
            done = i
            if not line.strip():
                continue
            builder.line = first_line + i
            try:
                builder.feed_line(codec.decode(line))
            except (codec.CodecError, ev.EventError) as exc:
                return LineStop(first_line + i, str(exc))
            if builder.unsettled != unsettled:
                # A target lost its state: the rest of the block goes line by line.
                rest = b"".join(line + b"\n" for line in lines[i + 1 :])
                fed = _feed_block(builder, rest, first_line + i + 1)
                return fed if isinstance(fed, LineStop) else len(lines)
        if done < len(lines) - 1:
            builder.count += len(lines) - 1 - done
            builder._skipped_last = lines[-1]
        return len(lines)
    targets_of = _TARGET_RE.findall
    skip_ok = not builder.exact
    for i, line in enumerate(lines):
        if skip_ok and mark in line and builder.first_seq and settled.issuperset(targets_of(line)):
            builder.count += 1
            builder._skipped_last = line
            continue
        if not line.strip():
            continue
        builder.line = first_line + i
        try:
            builder.feed_line(codec.decode(line))
        except (codec.CodecError, ev.EventError) as exc:
            return LineStop(first_line + i, str(exc))
    return len(lines)


def _unsettled_name(builder: ReportBuilder) -> re.Pattern[bytes]:
    """A pattern that finds a `"target":"…"` whose name has no state yet (its samples would
    give it one): the settled names, as canonical JSON writes them, in a negative lookahead."""
    settled = builder._settled
    cached = builder._unsettled_re
    if cached is None or cached[0] != settled:
        names = sorted(settled, key=len, reverse=True)
        alternatives = b"|".join(re.escape(name) for name in names) or b"(?!)"
        pattern = re.compile(rb'"target":"(?!(?:' + alternatives + rb')")')
        cached = builder._unsettled_re = (frozenset(settled), pattern)
    return cached[1]


class Appendix:
    """A streamed report's second pass: the full timeline (flapping collapsed), the notes and
    the bookmarks, read again from the log's lines that made timeline rows in the first."""

    def __init__(self, path: Path, builder: ReportBuilder, chunk_size: int = 1 << 20) -> None:
        self.path = path
        self.lines = builder.row_lines
        builder.runs.finish()
        self.runs = builder.runs.runs
        self.chunk_size = chunk_size

    def walk(self) -> Iterator[tuple[str, _Row]]:
        """("timeline", row) in log order, with ("notes" or "bookmarks", row) for each note
        and bookmark right after its own line's (its text as written), or instead of both
        ("entry", row) for one read from its dict (its text as written: the timeline's line
        is `ENTRY_PREFIXES[row.kind]` and the text). Rows, not `TimelineEntry`s: a million
        validated models would cost more than the rest."""
        collapser = flapping.Collapser(self.runs)
        wanted = self.lines
        if not wanted:
            return
        k, line_no, last = 0, 1, len(wanted)
        for block in iter_log_blocks(self.path, LineStop(), self.chunk_size):
            lines = block.split(b"\n")
            lines.pop()
            end = line_no + len(lines)
            while k < last and wanted[k] < end:
                try:
                    data = codec.decode(lines[wanted[k] - line_no])
                    entry = _plain_entry(data)
                    if entry is not None:
                        # Most of a log of notes: drawn from the line the first pass validated.
                        yield "entry", entry
                        k += 1
                        continue
                    change = _plain_change(data)
                    if change is not None:
                        # Most of a long outage's timeline, drawn the same way.
                        target, row = change
                        placed = collapser.show(k, target)
                        if placed is True:
                            yield "timeline", row
                        elif placed is not False:
                            yield "timeline", _flapping_row(placed, row.seq, row.ts)
                        k += 1
                        continue
                    event = ev.parse_event(data)
                except (codec.CodecError, ev.EventError) as exc:
                    raise WarroomError(
                        f"{self.path}:{wanted[k]}: changed while the report was written ({exc})"
                    ) from None
                kind, seq, ts = event.kind, event.seq, event.ts
                shown: flapping.Flapping | bool = True
                if isinstance(event, ev.ProbeStateChanged):
                    shown = collapser.show(k, event.target)
                if shown is True:
                    actor, category = credit(kind, event.actor), _category(event)
                    yield "timeline", _Row(seq, ts, actor, kind, category, event.summary(), None)
                elif shown is not False:
                    yield "timeline", _flapping_row(shown, seq, ts)
                if isinstance(event, ev.NoteAdded):
                    yield "notes", _Row(seq, ts, event.actor, kind, "action", event.text, None)
                elif isinstance(event, ev.BookmarkAdded):
                    label = event.label
                    yield "bookmarks", _Row(seq, ts, event.actor, kind, "action", label, None)
                k += 1
            if k == last:
                return
            line_no = end


#: The kinds `_plain_entry` draws: their section, text field and timeline line's prefix
#: (`NoteAdded.summary()`, `BookmarkAdded.summary()`; the stream test holds them equal).
_PLAIN_ENTRIES = {
    "note_added": ("notes", "text", "note: "),
    "bookmark_added": ("bookmarks", "label", "bookmark: "),
}
#: kind -> (its appendix section, its timeline line's prefix), for the renderer.
ENTRY_PREFIXES = {kind: (section, prefix) for kind, (section, _f, prefix) in _PLAIN_ENTRIES.items()}


def _plain_envelope(data: dict[str, Any]) -> bool:
    """True when seq and ts are there and every envelope field present has exactly the type
    `BaseEvent` declares (v, seq int; ts, actor, prev, hash str): validating it would accept
    each value unchanged."""
    get = data.get
    return (
        get("seq").__class__ is int
        and get("ts").__class__ is str
        and get("actor", "").__class__ is str
        and get("v", 1).__class__ is int
        and get("prev", "").__class__ is str
        and get("hash", "").__class__ is str
    )


def _plain_entry(data: dict[str, Any]) -> _Row | None:
    """A note or bookmark line as its row (the text as written), without building the
    event; None for any other line or an unexpected shape (then the event is built)."""
    plain = _PLAIN_ENTRIES.get(data.get("kind"))  # type: ignore[arg-type]
    if plain is None:
        return None
    seq, ts, actor, text = data.get("seq"), data.get("ts"), data.get("actor"), data.get(plain[1])
    if not (
        isinstance(seq, int)
        and isinstance(ts, str)
        and isinstance(actor, str)
        and isinstance(text, str)
    ):
        return None
    return _Row(seq, ts, actor, data["kind"], "action", text, None)


def _flapping_row(run: flapping.Flapping, seq: int, ts: str) -> _Row:
    """The timeline row of a flapping run, at its first change (`seq`, `ts`)."""
    return _Row(seq, ts, "probe", "flapping", "probe", run.summary(), None)


_CHANGE_KIND = ev.ProbeStateChanged.model_fields["kind"].default


def _plain_change(data: dict[str, Any]) -> tuple[str, _Row] | None:
    """A probe state change line as (its target, its timeline row, as
    `ProbeStateChanged.summary()` words it), without building the event; None otherwise."""
    if data.get("kind") != _CHANGE_KIND:
        return None
    seq, ts, target = data.get("seq"), data.get("ts"), data.get("target")
    frm, to, reason = data.get("from_state"), data.get("to_state"), data.get("reason", "")
    if not (
        isinstance(seq, int)
        and isinstance(ts, str)
        and isinstance(target, str)
        and isinstance(frm, str)
        and isinstance(to, str)
        and isinstance(reason, str)
    ):
        return None
    text = f"{target} {frm} -> {to}" + (f" ({reason})" if reason else "")
    return target, _Row(seq, ts, "probe", _CHANGE_KIND, "probe", text, None)


def stream_report(
    path: Path, *, verify: bool = True, chunk_size: int = 1 << 20
) -> tuple[Report, Appendix]:
    """The report of a log without its full timeline, notes and bookmarks, and the
    `Appendix` that reads them again: what `warroom report` writes, in memory that does not
    grow with the log. `write_markdown(report, write, appendix)` renders it."""
    builder = ReportBuilder(keep_timeline=False)
    report = _report_from_log(path, builder, verify=verify, chunk_size=chunk_size)
    return report, Appendix(path, builder, chunk_size)


def report_from_log(
    path: Path, *, exact: bool = False, verify: bool = True, chunk_size: int = 1 << 20
) -> Report:
    """Stream a log file into a report; reading stops at the first line that is not an event."""
    return _report_from_log(path, ReportBuilder(exact=exact), verify=verify, chunk_size=chunk_size)


def _report_from_log(
    path: Path, builder: ReportBuilder, *, verify: bool, chunk_size: int
) -> Report:
    """Feed the log to `builder` and build the report.

    The chain check reads the whole file too, so on a big log it runs in a second process
    while this one builds the report (verify is CPU-bound; a thread would not overlap).
    """
    pending = VerifyJob(path) if verify else None
    try:
        stop = LineStop()
        first_line = 1
        for block in iter_log_blocks(path, stop, chunk_size):
            fed = _feed_block(builder, block, first_line)
            if isinstance(fed, LineStop):
                stop = fed
                break
            first_line += fed
        else:
            if stop.reason:
                stop.line = first_line  # the torn line comes after the last complete one
        integrity = Integrity(stopped_at_line=stop.line, stop_reason=stop.reason)
        if pending is not None:
            integrity = _integrity(pending.result(), integrity)
        return builder.report(source=path.name, integrity=integrity)
    finally:
        if pending is not None:
            pending.shutdown()


def verify_integrity(path: Path, base: Integrity | None = None) -> Integrity:
    """Run the log store's chain check and describe its outcome."""
    from warroom.log.verify import verify_log

    return _integrity(verify_log(path), base)


def _integrity(result: Any, base: Integrity | None = None) -> Integrity:
    fields = (base or Integrity()).model_dump()
    fields.update(
        checked=True,
        ok=bool(result.ok),
        count=int(result.count),
        first_bad_seq=result.first_bad_seq,
        reason=f"{result.reason} ({result.detail})" if result.detail else result.reason,
    )
    return Integrity(**fields)
