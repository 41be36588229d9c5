"""The postmortem draft as data: what `warroom report --json` prints and Markdown renders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TimelineCategory = Literal["action", "probe", "scenario", "control", "runbook", "other"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class KeyTimes(_Model):
    """When things happened (RFC 3339 UTC, empty when unknown) and the intervals between them.

    The intervals run from the start of impact (first scenario fault or first bad probe), or
    from the declaration when impact was never observed.
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


class TimelineEntry(_Model):
    seq: int
    ts: str
    actor: str
    kind: str
    category: TimelineCategory
    text: str


class TargetImpact(_Model):
    target: str
    down_s: float
    degraded_s: float
    final_state: str


class ServiceImpact(_Model):
    """Time the service spent down / degraded: the worst state of any of its targets."""

    service: str
    down_s: float
    degraded_s: float
    final_state: str
    targets: list[TargetImpact]


class ControlEffectSummary(_Model):
    after_s: float
    before: dict[str, str]
    after: dict[str, str]


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
    revert_of: str | None = None
    runbook: str | None = None
    step: str | None = None
    effect: ControlEffectSummary | None = None
    unit: str = Field(default="", description="how the values read: %, req/s; none for toggles")


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


class EntryReport(_Model):
    seq: int
    ts: str
    actor: str
    text: str
    owner: str = ""


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
    timeline: list[TimelineEntry]
    controls: list[ControlChangeReport]
    runbooks: list[RunbookReport]
    notes: list[EntryReport]
    bookmarks: list[EntryReport]
    tasks: list[EntryReport]
    status_updates: list[StatusUpdateReport]
    unknown_kinds: list[str]
    integrity: Integrity
