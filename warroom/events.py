"""Typed incident events: the envelope every log line carries and one model per kind.

Every fact the console shows is derived from these (see DESIGN.md). Events are flat pydantic
models discriminated on `kind`; a kind this version does not know is kept as `UnknownEvent`
with all its fields, never dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warroom.controls.words import value_words
from warroom.words import plural

SCHEMA_VERSION = 1

ENVELOPE_FIELDS = ("v", "seq", "ts", "actor", "kind", "prev", "hash")

ControlValue = bool | int | float | str


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class ProbeState(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class StepStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2025-10-20T06:48:00.000000Z."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class BaseEvent(BaseModel):
    """The envelope. `seq`, `ts`, `prev` and `hash` are filled in by the log on append."""

    model_config = ConfigDict(extra="allow", frozen=True, use_enum_values=True, defer_build=True)

    #: True for operator actions: fsynced before `append` returns. Machine events
    #: (probe samples, state changes, scenario feed) may be group-committed.
    durable: ClassVar[bool] = True
    #: True for actions a person took (used by replay's "step to next action").
    operator: ClassVar[bool] = True

    v: int = SCHEMA_VERSION
    seq: int = 0
    ts: str = ""
    actor: str = ""
    kind: str
    prev: str = ""
    hash: str = ""

    @property
    def time(self) -> datetime:
        return parse_ts(self.ts)

    def payload(self) -> dict[str, Any]:
        """The kind's own fields (everything but the envelope)."""
        data = self.model_dump(mode="json")
        for name in ENVELOPE_FIELDS:
            data.pop(name, None)
        return data

    def summary(self) -> str:
        """One human line describing the event, for the log tail and the report."""
        return self.kind.replace("_", " ")


# -- incident lifecycle ------------------------------------------------------------------


class IncidentOpened(BaseEvent):
    kind: Literal["incident_opened"] = "incident_opened"
    incident_id: str
    title: str
    severity: Severity = Severity.SEV3

    def summary(self) -> str:
        return f"incident declared: {self.title} ({self.severity})"


class IncidentClosed(BaseEvent):
    kind: Literal["incident_closed"] = "incident_closed"
    summary_text: str = ""

    def summary(self) -> str:
        return "incident closed" + (f": {self.summary_text}" if self.summary_text else "")


class TitleSet(BaseEvent):
    kind: Literal["title_set"] = "title_set"
    title: str

    def summary(self) -> str:
        return f"renamed to: {self.title}"


class SeveritySet(BaseEvent):
    kind: Literal["severity_set"] = "severity_set"
    severity: Severity

    def summary(self) -> str:
        return f"severity set to {self.severity}"


class StatusSet(BaseEvent):
    kind: Literal["status_set"] = "status_set"
    status: Status

    def summary(self) -> str:
        return f"status set to {self.status}"


class RoleAssigned(BaseEvent):
    kind: Literal["role_assigned"] = "role_assigned"
    role: str = Field(description="commander, scribe, comms, or free text")
    person: str

    def summary(self) -> str:
        return f"{self.role}: {self.person}"


class NoteAdded(BaseEvent):
    kind: Literal["note_added"] = "note_added"
    text: str

    def summary(self) -> str:
        return f"note: {self.text}"


class BookmarkAdded(BaseEvent):
    kind: Literal["bookmark_added"] = "bookmark_added"
    label: str

    def summary(self) -> str:
        return f"bookmark: {self.label}"


class TaskAdded(BaseEvent):
    """A follow-up task for after the incident (goes to the postmortem)."""

    kind: Literal["task_added"] = "task_added"
    text: str
    owner: str = ""
    priority: str = Field(default="", description="P0 (now) .. P3 (someday), or free text")
    type: str = Field(default="", description="prevent, mitigate or process (or free text)")
    link: str = Field(default="", description="tracking ticket URL or key")

    def summary(self) -> str:
        return f"follow-up: {self.text}" + (f" (owner {self.owner})" if self.owner else "")


class StatusUpdatePosted(BaseEvent):
    """A CAN report: Conditions, Actions, Needs."""

    kind: Literal["status_update_posted"] = "status_update_posted"
    conditions: str
    actions: str = ""
    needs: str = ""

    def summary(self) -> str:
        return f"status update: {self.conditions}"


# -- probes --------------------------------------------------------------------------------


class ProbeStateChanged(BaseEvent):
    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["probe_state_changed"] = "probe_state_changed"
    target: str
    service: str = ""
    from_state: ProbeState
    to_state: ProbeState
    reason: str = ""
    latency_ms: float | None = None

    def summary(self) -> str:
        return f"{self.target} {self.from_state} -> {self.to_state}" + (
            f" ({self.reason})" if self.reason else ""
        )


class ProbeSample(BaseModel):
    """A compact summary of one target's results over one sample period."""

    model_config = ConfigDict(frozen=True, use_enum_values=True, defer_build=True)

    target: str
    state: ProbeState
    ok: int = 0
    count: int = 0
    latency_ms: float | None = Field(default=None, description="median over the period")


class ProbeSamples(BaseEvent):
    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["probe_samples"] = "probe_samples"
    samples: list[ProbeSample]

    def summary(self) -> str:
        return f"probe samples ({plural(len(self.samples), 'target')})"


class ProbeEngineHealth(BaseEvent):
    """How one probe engine (one shard of the probe worker) kept up over the last period."""

    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["probe_engine_health"] = "probe_engine_health"
    shard: int = 0
    shards: int = 1
    targets: int = 0
    interval_s: float = Field(default=0.0, description="the shortest interval of its targets")
    period_s: float = 0.0
    probes: int = 0
    probes_per_s: float = 0.0
    lag_p50_ms: float | None = Field(default=None, description="probe start after it was due")
    lag_p99_ms: float | None = None
    missed_rounds: int = 0
    late: int = Field(default=0, description="probes whose latency was not judged")
    slots_in_use: int = 0
    slots_peak: int = 0
    slots: int = 0

    def summary(self) -> str:
        lag = "-" if self.lag_p99_ms is None else f"{self.lag_p99_ms:.0f} ms"
        return (
            f"probe engine {self.shard + 1}/{self.shards}: {self.probes_per_s:g} probes/s, "
            f"lag p99 {lag}, {self.missed_rounds} missed rounds, "
            f"{self.slots_in_use}/{self.slots} slots"
        )


# -- runbooks ------------------------------------------------------------------------------


class RunbookOpened(BaseEvent):
    kind: Literal["runbook_opened"] = "runbook_opened"
    runbook: str = Field(description="runbook id (file stem)")
    title: str = ""
    steps: list[str] = Field(default_factory=list, description="step ids in order")

    def summary(self) -> str:
        return f"runbook opened: {self.title or self.runbook}"


class StepSet(BaseEvent):
    kind: Literal["step_set"] = "step_set"
    runbook: str
    step: str
    status: StepStatus
    note: str = ""

    def summary(self) -> str:
        return f"step {self.runbook}/{self.step}: {self.status}" + (
            f" ({self.note})" if self.note else ""
        )


class StepVerified(BaseEvent):
    """A step's verification condition was observed to hold (or to stop holding)."""

    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["step_verified"] = "step_verified"
    runbook: str
    step: str
    condition: str
    holds: bool

    def summary(self) -> str:
        verb = "verified" if self.holds else "no longer verified"
        return f"step {self.runbook}/{self.step} {verb}: {self.condition}"


class CommandRun(BaseEvent):
    """A runbook shell block run by the responder, with bounded output."""

    kind: Literal["command_run"] = "command_run"
    runbook: str
    step: str
    command: str
    exit_code: int | None
    output: str = ""
    truncated: bool = False
    duration_s: float = 0.0

    def summary(self) -> str:
        lines = [ln.strip() for ln in self.command.splitlines()]
        first = next((ln for ln in lines if ln and not ln.startswith("#")), "")
        if len(first) > 60:
            first = first[:59] + "…"
        more = " …" if len([ln for ln in lines if ln]) > 1 else ""
        return f"ran `{first}{more}` -> exit {self.exit_code}"


# -- controls ------------------------------------------------------------------------------


class ControlRequested(BaseEvent):
    kind: Literal["control_requested"] = "control_requested"
    request_id: str
    service: str
    control: str
    from_value: ControlValue | None = None
    to_value: ControlValue
    reason: str = ""
    revert_of: str | None = Field(default=None, description="request_id this change undoes")
    auto_revert_s: float | None = None
    runbook: str | None = None
    step: str | None = None
    #: Two-person rule: not applied until another responder confirms (`ControlConfirmed`).
    #: Left out of the line when False, so events written before it keep their bytes.
    needs_second: bool = Field(default=False, exclude_if=lambda v: not v)
    #: How the values read (`%`, `req/s`; none for toggles and choices), so the log and the
    #: report say `40 %` as the panel does. Left out of the line when empty.
    unit: str = Field(default="", exclude_if=lambda v: not v)

    def summary(self) -> str:
        change = (
            f"{value_words(self.from_value, self.unit)} -> {value_words(self.to_value, self.unit)}"
        )
        return f"{self.service}.{self.control}: {change} requested" + (
            f" ({self.reason})" if self.reason else ""
        )


class ControlApplied(BaseEvent):
    kind: Literal["control_applied"] = "control_applied"
    operator: ClassVar[bool] = False
    request_id: str
    service: str
    control: str
    value: ControlValue | None = Field(description="the value read back from the service")
    response: str = ""
    #: As `ControlRequested.unit`.
    unit: str = Field(default="", exclude_if=lambda v: not v)

    def summary(self) -> str:
        return f"{self.service}.{self.control} = {value_words(self.value, self.unit)} applied"


class ControlFailed(BaseEvent):
    kind: Literal["control_failed"] = "control_failed"
    operator: ClassVar[bool] = False
    request_id: str
    service: str
    control: str
    error: str
    value: ControlValue | None = Field(default=None, description="true value, if read back")
    #: As `ControlRequested.unit`.
    unit: str = Field(default="", exclude_if=lambda v: not v)

    def summary(self) -> str:
        return f"{self.service}.{self.control} change failed: {self.error}"


class ControlEffect(BaseEvent):
    """Probe readings of the affected service just before and a short while after a change."""

    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["control_effect"] = "control_effect"
    request_id: str
    service: str
    control: str
    before: list[ProbeSample] = Field(default_factory=list)
    after: list[ProbeSample] = Field(default_factory=list)
    after_s: float = 0.0

    def summary(self) -> str:
        def states(samples: list[ProbeSample]) -> str:
            return ",".join(f"{s.target}={s.state}" for s in samples) or "-"

        lever = f"{self.service}.{self.control}"
        return f"effect of {lever}: {states(self.before)} -> {states(self.after)}"


class ControlAutoRevertExtended(BaseEvent):
    """A responder pushed back the automatic revert of a change (`until` is the new deadline)."""

    kind: Literal["control_auto_revert_extended"] = "control_auto_revert_extended"
    request_id: str = Field(description="the change whose auto-revert is pushed back")
    service: str
    control: str
    until: str = Field(description="RFC 3339 UTC time the change is now reverted at")
    extend_s: float
    reason: str = ""

    def summary(self) -> str:
        return f"{self.service}.{self.control}: auto-revert pushed back to {self.until}" + (
            f" ({self.reason})" if self.reason else ""
        )


class ControlConfirmed(BaseEvent):
    """A second responder confirms a change that needs two people, with their own reason."""

    kind: Literal["control_confirmed"] = "control_confirmed"
    request_id: str = Field(description="the `needs_second` change confirmed")
    reason: str

    def summary(self) -> str:
        return f"change {self.request_id} confirmed ({self.reason})"


# -- team ----------------------------------------------------------------------------------


class PresenceHeartbeat(BaseEvent):
    """A console on a shared incident says it is there (every `interval_s`, and on leaving)."""

    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["presence"] = "presence"
    machine: str
    session: str = Field(default="", description="this console's random id")
    interval_s: float = 15.0
    leaving: bool = False

    def summary(self) -> str:
        return f"{self.actor or '?'} {'left' if self.leaving else 'here'} on {self.machine}"


# -- simulator -----------------------------------------------------------------------------


class ScenarioEvent(BaseEvent):
    """An event from the simulated fleet's feed (fault injected, automation acted, ...)."""

    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["scenario_event"] = "scenario_event"
    sim_seq: int
    sim_time: float = Field(description="simulated seconds since scenario start")
    scenario: str = ""
    service: str = ""
    title: str

    def summary(self) -> str:
        return f"[sim t={self.sim_time:.0f}s] {self.title}"


# -- alerts --------------------------------------------------------------------------------


class AlertStatus(StrEnum):
    FIRING = "firing"
    #: Still firing at Alertmanager but silenced or inhibited there (read from its API).
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"


class AlertObserved(BaseEvent):
    """An alert from Alertmanager changed: it fired, was silenced, or resolved.

    `source` says how warroom learnt it: a webhook, or the Alertmanager API poll (which is
    how a silenced or missed alert is set right: a silenced alert sends no resolved webhook).
    """

    durable: ClassVar[bool] = False
    operator: ClassVar[bool] = False
    kind: Literal["alert_observed"] = "alert_observed"
    fingerprint: str
    alertname: str = ""
    status: AlertStatus
    service: str = Field(default="", description="the service matched from the labels")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = ""
    ends_at: str = ""
    generator_url: str = ""
    silenced_by: list[str] = Field(default_factory=list)
    source: Literal["webhook", "api"] = "webhook"

    def summary(self) -> str:
        where = f" ({self.service})" if self.service else ""
        text = self.annotations.get("summary", "")
        return f"alert {self.alertname or self.fingerprint} {self.status}{where}" + (
            f": {text}" if text else ""
        )


class UnknownEvent(BaseEvent):
    """A kind from a newer warroom: kept whole and shown raw."""

    operator: ClassVar[bool] = False

    def summary(self) -> str:
        extra = {k: v for k, v in (self.model_extra or {}).items()}
        return f"{self.kind} {extra}"


Event = BaseEvent

EVENT_TYPES: dict[str, type[BaseEvent]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        IncidentOpened,
        IncidentClosed,
        TitleSet,
        SeveritySet,
        StatusSet,
        RoleAssigned,
        NoteAdded,
        BookmarkAdded,
        TaskAdded,
        StatusUpdatePosted,
        ProbeStateChanged,
        ProbeSamples,
        ProbeEngineHealth,
        RunbookOpened,
        StepSet,
        StepVerified,
        CommandRun,
        ControlRequested,
        ControlApplied,
        ControlFailed,
        ControlEffect,
        ControlAutoRevertExtended,
        ControlConfirmed,
        PresenceHeartbeat,
        ScenarioEvent,
        AlertObserved,
    )
}


class EventError(ValueError):
    """A log line that is JSON but not a valid event; the message says which field is wrong."""


def parse_event(data: dict[str, Any]) -> BaseEvent:
    """Build the typed event for a decoded log line; unknown kinds become `UnknownEvent`."""
    if not isinstance(data, dict):
        raise EventError(f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise EventError("missing 'kind'")
    try:
        if kind in EVENT_TYPES:
            return EVENT_TYPES[kind].model_validate(data)
        return UnknownEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != kind) or "event"
        raise EventError(f"{kind}: field '{where}': {first['msg']}") from None


def is_operator_action(event: BaseEvent) -> bool:
    return type(event).operator
