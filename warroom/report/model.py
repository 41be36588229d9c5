"""The postmortem draft as data: what `warroom report --json` prints and Markdown renders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.dataclasses import dataclass

TimelineCategory = Literal["action", "probe", "scenario", "control", "runbook", "other"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class KeyTime(_Model):
    """One row of the key-times table."""

    label: str
    ts: str
    basis: str = ""


class KeyTimes(_Model):
    """When things happened (RFC 3339 UTC, empty when unknown) and the intervals between them.

    Impact starts at the first failing probe (or the simulator's first fault, when earlier)
    and ends when the last failing probe recovered (empty while any is still failing).
    Detection is the first alert or failing probe; acknowledged the first responder action
    after it; mitigated the status "monitoring" and resolved the status "resolved" (both as of
    the last reopen). TTD, TTA, TTM and TTR are defined in `DEFINITIONS`.
    """

    impact_start: str = ""
    opened: str = ""
    first_detection: str = ""
    mitigated: str = ""
    resolved: str = ""
    closed: str = ""
    last_event: str = ""
    time_to_detect_s: float | None = None
    time_to_mitigate_s: float | None = None
    time_to_resolve_s: float | None = None
    duration_s: float | None = None
    trigger: str = ""
    first_failure: str = ""
    impact_end: str = ""
    acknowledged: str = ""
    first_action: str = ""
    reopened: list[str] = []
    time_to_acknowledge_s: float | None = None
    #: Every moment above that is known, in time order.
    rows: list[KeyTime] = []


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One timeline line (a slotted dataclass: a long log has a million of them)."""

    seq: int
    ts: str
    actor: str
    kind: str
    category: TimelineCategory
    text: str
    #: For a collapsed run of state changes (kind "flapping"): how many, and until when.
    count: int = 1
    until: str = ""


class TargetImpact(_Model):
    target: str
    down_s: float
    degraded_s: float
    final_state: str
    since: str = ""
    reason: str = ""


class ServiceImpact(_Model):
    """Time the service spent down / degraded: the worst state of any of its targets."""

    service: str
    down_s: float
    degraded_s: float
    final_state: str
    targets: list[TargetImpact]
    #: When it entered `final_state`.
    since: str = ""


@dataclass(frozen=True, slots=True)
class ProbeChange:
    """One probe's move after a lever (a slotted dataclass: a long outage has 800,000)."""

    target: str
    from_state: str
    to_state: str
    after_s: float


class ControlEffectSummary(_Model):
    """What the affected probes did after a lever, until they settled or the next lever."""

    after_s: float
    before: dict[str, str]
    after: dict[str, str]
    changes: list[ProbeChange] = []
    #: Why the window closed: "settled", "next lever", "end of log" or "no change".
    ended_by: str = ""


class ControlChangeReport(_Model):
    request_id: str
    seq: int
    ts: str
    actor: str
    service: str
    control: str
    from_value: Any = None
    to_value: Any = None
    reason: str = ""
    outcome: str = "pending"
    result_value: Any = None
    error: str = ""
    #: The lever's unit (`%`, `req/s`), so its values read as the console shows them.
    unit: str = ""
    revert_of: str | None = None
    runbook: str | None = None
    step: str | None = None
    effect: ControlEffectSummary | None = None


class StepReport(_Model):
    step: str
    status: str
    note: str = ""
    actor: str = ""
    ts: str = ""
    verified: bool = False


class RunbookReport(_Model):
    runbook: str
    title: str
    opened_at: str
    opened_by: str
    steps: list[StepReport]


@dataclass(frozen=True, slots=True)
class EntryReport:
    """A note, bookmark or follow-up (a slotted dataclass: a log of notes has many)."""

    seq: int
    ts: str
    actor: str
    text: str
    owner: str = ""
    priority: str = ""
    type: str = ""
    link: str = ""


class Participant(_Model):
    """Someone who acted, with their roles and how many actions they took."""

    actor: str
    roles: list[str]
    actions: int
    first_ts: str


class StatusUpdateReport(_Model):
    seq: int
    ts: str
    actor: str
    conditions: str
    actions: str = ""
    needs: str = ""


class Integrity(_Model):
    """Whether the log's hash chain verifies (`checked` is False when it was not run)."""

    checked: bool = False
    ok: bool = False
    count: int = 0
    first_bad_seq: int | None = None
    reason: str = ""
    #: Set when reading stopped early at a line that is not a valid event (torn or corrupt).
    stopped_at_line: int | None = None
    stop_reason: str = ""
    #: The last event read: quoting its seq and hash anchors a pasted report to the log.
    head_seq: int = 0
    head_hash: str = ""


class ProbingPeriodReport(_Model):
    """A stretch of the incident when probing was degraded (its data may miss or lag)."""

    start: str
    #: "" when probing was still degraded at the end of the log.
    end: str = ""
    duration_s: float | None = None
    reason: str = ""


class Report(_Model):
    source: str
    incident_id: str
    title: str
    severity: str
    status: str
    roles: dict[str, str]
    event_count: int
    first_seq: int
    last_seq: int
    times: KeyTimes
    impact: list[ServiceImpact]
    #: The story in a screen: operator actions, bookmarks, status updates and each service's
    #: first failure and last recovery.
    highlights: list[TimelineEntry]
    #: Everything but probe samples, with flapping collapsed.
    timeline: list[TimelineEntry]
    controls: list[ControlChangeReport]
    runbooks: list[RunbookReport]
    notes: list[EntryReport]
    bookmarks: list[EntryReport]
    tasks: list[EntryReport]
    status_updates: list[StatusUpdateReport]
    participants: list[Participant]
    unknown_kinds: list[str]
    integrity: Integrity
    #: When the probe engine could not keep up (missed rounds, late starts).
    probing_degraded: list[ProbingPeriodReport] = []
