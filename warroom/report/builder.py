"""Build the postmortem report by streaming events through the reducer.

The facts come from `warroom.state.reduce`, like everything the console shows. Probe samples
are the bulk of a long log but only matter to the report when they give a target its first
state, so `ReportBuilder` skips reducing the others (and, for raw lines, skips even building
the event): a million-event log reports in seconds. `exact=True` reduces everything; the tests
check both give the same report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from warroom import events as ev
from warroom.errors import WarroomError
from warroom.log import codec
from warroom.replay.verify_job import VerifyJob
from warroom.report.model import (
    ControlChangeReport,
    ControlEffectSummary,
    EntryReport,
    Integrity,
    KeyTimes,
    Report,
    RunbookReport,
    ServiceImpact,
    StatusUpdateReport,
    StepReport,
    TargetImpact,
    TimelineCategory,
    TimelineEntry,
)
from warroom.state import IncidentState, reduce

_UNKNOWN = ev.ProbeState.UNKNOWN.value
_DOWN = ev.ProbeState.DOWN.value
_DEGRADED = ev.ProbeState.DEGRADED.value
_RANK = {_DOWN: 3, _DEGRADED: 2, ev.ProbeState.UP.value: 1, _UNKNOWN: 0}
_SAMPLES_KIND = ev.ProbeSamples.model_fields["kind"].default
_SAMPLES_MARK = b'"kind":"probe_samples"'
# In canonical JSON a quote inside a string is escaped, so this only matches real keys.
_TARGET_RE = re.compile(rb'"target":"([^"\\]*)"')


def _seconds(start: str, end: str) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (ev.parse_ts(end) - ev.parse_ts(start)).total_seconds())


def _category(event: ev.BaseEvent) -> TimelineCategory:
    if ev.is_operator_action(event):
        return "action"
    match event:
        case ev.ProbeStateChanged():
            return "probe"
        case ev.ScenarioEvent():
            return "scenario"
        case ev.ControlApplied() | ev.ControlFailed() | ev.ControlEffect():
            return "control"
        case ev.StepVerified():
            return "runbook"
        case _:
            return "other"


@dataclass
class _ServiceClock:
    """Accumulates how long a service's worst target state was down or degraded."""

    since: str = ""
    worst: str = _UNKNOWN
    down_s: float = 0.0
    degraded_s: float = 0.0

    def advance(self, ts: str) -> None:
        if self.since and ts:
            elapsed = _seconds(self.since, ts) or 0.0
            if self.worst == _DOWN:
                self.down_s += elapsed
            elif self.worst == _DEGRADED:
                self.degraded_s += elapsed
        self.since = ts


class ReportBuilder:
    """Feed events (or decoded log lines) in log order, then call `report()`."""

    def __init__(self, *, exact: bool = False) -> None:
        self.exact = exact
        self.state = IncidentState()
        self.timeline: list[TimelineEntry] = []
        self.effects: dict[str, ControlEffectSummary] = {}
        self.change_context: dict[str, tuple[str | None, str | None]] = {}
        self.units: dict[str, str] = {}
        self.target_state: dict[str, str] = {}
        self._settled: set[bytes] = set()
        #: The last line skipped undecoded, when it is the last line fed so far.
        self._skipped_last: bytes | None = None
        self.target_service: dict[str, str] = {}
        self.services: dict[str, _ServiceClock] = {}
        self.count = 0
        self.first_seq = 0
        self.last_seq = 0
        self.last_ts = ""

    # -- input -------------------------------------------------------------------------

    def feed(self, event: ev.BaseEvent) -> None:
        """Take one event."""
        if isinstance(event, ev.ProbeSamples):
            self._samples(event.seq, event.ts, [(s.target, s.state) for s in event.samples])
            if self.exact or self._needs_reduce:
                self.state = reduce(self.state, event)
            return
        self._envelope(event.seq, event.ts)
        match event:
            case ev.ProbeStateChanged():
                self._target_changed(event.target, event.service, event.to_state, event.ts)
            case ev.ControlEffect():
                self.effects[event.request_id] = ControlEffectSummary(
                    after_s=event.after_s,
                    before={s.target: s.state for s in event.before},
                    after={s.target: s.state for s in event.after},
                )
            case ev.ControlRequested():
                self.change_context[event.request_id] = (event.runbook, event.step)
                self.units[event.request_id] = event.unit
            case _:
                pass
        self.timeline.append(
            TimelineEntry(
                seq=event.seq,
                ts=event.ts,
                actor=event.actor,
                kind=event.kind,
                category=_category(event),
                text=event.summary(),
            )
        )
        self.state = reduce(self.state, event)

    def feed_line(self, data: dict[str, Any]) -> None:
        """Take one decoded log line; probe samples that change nothing are not even parsed."""
        if not self.exact and data.get("kind") == _SAMPLES_KIND:
            fast = self._fast_samples(data)
            if fast:
                return
        self.feed(ev.parse_event(data))

    def _fast_samples(self, data: dict[str, Any]) -> bool:
        samples = data.get("samples")
        seq, ts = data.get("seq"), data.get("ts")
        if not isinstance(samples, list) or not isinstance(seq, int) or not isinstance(ts, str):
            return False
        known = self.target_state
        for sample in samples:
            if not isinstance(sample, dict) or known.get(sample.get("target"), _UNKNOWN) == (
                _UNKNOWN
            ):
                return False
        self._envelope(seq, ts)
        return True

    # -- bookkeeping ---------------------------------------------------------------------

    _needs_reduce = False

    def _envelope(self, seq: int, ts: str) -> None:
        self._skipped_last = None
        self.count += 1
        if not self.first_seq:
            self.first_seq = seq
        self.last_seq = seq
        if ts:
            self.last_ts = ts

    def _samples(self, seq: int, ts: str, samples: list[tuple[str, str]]) -> None:
        self._envelope(seq, ts)
        self._needs_reduce = False
        for target, state in samples:
            if self.target_state.get(target, _UNKNOWN) == _UNKNOWN:
                # The reducer adopts a sample's state for a target it knew nothing of.
                self._needs_reduce = True
                self._target_changed(target, "", state, ts)

    def _target_changed(self, target: str, service: str, to_state: str, ts: str) -> None:
        if service:
            self.target_service[target] = service
        name = self.target_service.get(target, target)
        self.target_state[target] = to_state
        # Targets whose samples can be skipped, as their names appear in canonical JSON.
        if to_state == _UNKNOWN:
            self._settled.discard(orjson.dumps(target)[1:-1])
        else:
            self._settled.add(orjson.dumps(target)[1:-1])
        clock = self.services.setdefault(name, _ServiceClock())
        clock.advance(ts)
        clock.worst = max(
            (s for t, s in self.target_state.items() if self.target_service.get(t, t) == name),
            key=lambda s: _RANK.get(s, 0),
        )

    # -- output ----------------------------------------------------------------------------

    def report(self, *, source: str = "", integrity: Integrity | None = None) -> Report:
        """The report for everything fed so far."""
        if self._skipped_last is not None:
            data = codec.decode(self._skipped_last)
            self.last_seq, self.last_ts = int(data["seq"]), str(data["ts"])
            self._skipped_last = None
        state = self.state
        end = self.last_ts
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
            timeline=list(self.timeline),
            controls=[
                ControlChangeReport(
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
                    runbook=self.change_context.get(c.request_id, (None, None))[0],
                    step=self.change_context.get(c.request_id, (None, None))[1],
                    effect=self.effects.get(c.request_id),
                    unit=self.units.get(c.request_id, ""),
                )
                for c in sorted(state.changes.values(), key=lambda c: c.seq)
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
            notes=[_entry(e) for e in state.notes],
            bookmarks=[_entry(e) for e in state.bookmarks],
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
            unknown_kinds=list(state.unknown_kinds),
            integrity=integrity or Integrity(),
        )

    def _times(self, state: IncidentState, end: str) -> KeyTimes:
        t = state.timings
        start = t.impact_start or t.opened
        finish = t.closed or t.resolved or end
        return KeyTimes(
            impact_start=t.impact_start,
            opened=t.opened,
            first_detection=t.first_detection,
            mitigated=t.mitigated,
            resolved=t.resolved,
            closed=t.closed,
            last_event=end,
            time_to_detect_s=_seconds(start, t.first_detection),
            time_to_mitigate_s=_seconds(start, t.mitigated),
            time_to_resolve_s=_seconds(start, t.resolved),
            duration_s=_seconds(t.opened, finish),
        )

    def _impact(self, state: IncidentState, end: str) -> list[ServiceImpact]:
        by_service: dict[str, list[TargetImpact]] = {}
        for name, probe in sorted(state.probes.items()):
            open_s = _seconds(probe.since, end) or 0.0
            down = probe.down_s + (open_s if probe.state == _DOWN else 0.0)
            degraded = probe.degraded_s + (open_s if probe.state == _DEGRADED else 0.0)
            service = self.target_service.get(name, probe.service or name)
            by_service.setdefault(service, []).append(
                TargetImpact(target=name, down_s=down, degraded_s=degraded, final_state=probe.state)
            )
        result = []
        for service, targets in sorted(by_service.items()):
            clock = self.services.get(service, _ServiceClock())
            down, degraded = clock.down_s, clock.degraded_s
            tail = _seconds(clock.since, end) or 0.0
            if clock.worst == _DOWN:
                down += tail
            elif clock.worst == _DEGRADED:
                degraded += tail
            result.append(
                ServiceImpact(
                    service=service,
                    down_s=down,
                    degraded_s=degraded,
                    final_state=clock.worst,
                    targets=targets,
                )
            )
        return result


def _entry(entry: Any) -> EntryReport:
    return EntryReport(
        seq=entry.seq, ts=entry.ts, actor=entry.actor, text=entry.text, owner=entry.owner
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
    block_settled = (
        not builder.exact
        and builder.first_seq
        and settled.issuperset(block_targets := set(_TARGET_RE.findall(data)))
    )
    if block_settled:
        others = [(i, line) for i, line in enumerate(lines) if mark not in line]
        done = -1
        for i, line in others:
            builder.count += i - done - 1  # the samples lines in between
            done = i
            if not line.strip():
                continue
            try:
                builder.feed_line(codec.decode(line))
            except (codec.CodecError, ev.EventError) as exc:
                return LineStop(first_line + i, str(exc))
            if not settled.issuperset(block_targets):
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
        try:
            builder.feed_line(codec.decode(line))
        except (codec.CodecError, ev.EventError) as exc:
            return LineStop(first_line + i, str(exc))
    return len(lines)


def report_from_log(
    path: Path, *, exact: bool = False, verify: bool = True, chunk_size: int = 1 << 20
) -> Report:
    """Stream a log file into a report; reading stops at the first line that is not an event.

    The chain check reads the whole file too, so on a big log it runs in a second process
    while this one builds the report (verify is CPU-bound; a thread would not overlap).
    """
    pending = VerifyJob(path) if verify else None
    try:
        builder = ReportBuilder(exact=exact)
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
