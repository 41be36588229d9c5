"""The reducer: every fact the console, replay and report show comes from here."""

from __future__ import annotations

import copy

import pytest

from warroom import events as ev
from warroom.state import IncidentState, fold, reduce


def stamp(events: list[ev.BaseEvent], start_minute: int = 0) -> list[ev.BaseEvent]:
    """Give events the envelope the log would: seq 1.. and a minute apart."""
    out = []
    for i, event in enumerate(events):
        minute = start_minute + i
        out.append(
            event.model_copy(
                update={
                    "seq": i + 1,
                    "ts": f"2025-10-20T{6 + minute // 60:02d}:{minute % 60:02d}:00.000000Z",
                    "actor": event.actor or "alice@host",
                }
            )
        )
    return out


def down(target: str, service: str, frm: str = "up", to: str = "down") -> ev.ProbeStateChanged:
    return ev.ProbeStateChanged(
        target=target, service=service, from_state=frm, to_state=to, reason="timeout"
    )


def test_incident_lifecycle_fields() -> None:
    state = fold(
        stamp(
            [
                ev.IncidentOpened(incident_id="inc-1", title="DynamoDB DNS", severity="SEV2"),
                ev.SeveritySet(severity="SEV1"),
                ev.TitleSet(title="us-east-1: DynamoDB endpoint unresolvable"),
                ev.RoleAssigned(role="commander", person="alice"),
                ev.RoleAssigned(role="scribe", person="bob"),
                ev.RoleAssigned(role="commander", person="carol"),
                ev.StatusSet(status="identified"),
            ]
        )
    )
    assert state.incident_id == "inc-1"
    assert state.title == "us-east-1: DynamoDB endpoint unresolvable"
    assert state.severity == "SEV1"
    assert state.status == "identified"
    assert state.roles == {"commander": "carol", "scribe": "bob"}
    assert state.timings.opened == "2025-10-20T06:00:00.000000Z"
    assert state.last_seq == 7
    assert state.event_count == 7


def test_notes_bookmarks_tasks_and_status_updates_keep_author_and_order() -> None:
    state = fold(
        stamp(
            [
                ev.NoteAdded(text="first", actor="bob@h"),
                ev.BookmarkAdded(label="DNS fixed"),
                ev.NoteAdded(text="second"),
                ev.TaskAdded(text="velocity limit on capacity removal", owner="nlb-team"),
                ev.StatusUpdatePosted(conditions="DDB down", actions="fixing DNS", needs="none"),
            ]
        )
    )
    assert [n.text for n in state.notes] == ["first", "second"]
    assert state.notes[0].actor == "bob@h"
    assert state.bookmarks[0].text == "DNS fixed"
    assert state.bookmarks[0].seq == 2
    assert state.tasks[0].owner == "nlb-team"
    assert state.status_updates[0].actions == "fixing DNS"


def test_probe_transitions_track_state_since_and_time_down() -> None:
    state = fold(
        stamp(
            [
                ev.IncidentOpened(incident_id="i", title="t"),
                down("dynamodb-dns", "dynamodb", "unknown", "up"),
                down("dynamodb-dns", "dynamodb", "up", "down"),
                down("dynamodb-dns", "dynamodb", "down", "degraded"),
                down("dynamodb-dns", "dynamodb", "degraded", "up"),
            ]
        )
    )
    probe = state.probes["dynamodb-dns"]
    assert probe.state == "up"
    assert probe.service == "dynamodb"
    assert probe.since == "2025-10-20T06:04:00.000000Z"
    assert probe.down_s == 60.0
    assert probe.degraded_s == 60.0
    assert state.timings.first_detection == "2025-10-20T06:02:00.000000Z"


def test_probe_samples_feed_the_sparkline_history_but_not_the_tail() -> None:
    samples = [
        ev.ProbeSamples(
            samples=[ev.ProbeSample(target="a", state="up", ok=5, count=5, latency_ms=float(i))]
        )
        for i in range(70)
    ]
    state = fold(stamp(samples))
    probe = state.probes["a"]
    assert len(probe.history) == 60
    assert probe.history[-1] == 69.0
    assert probe.latency_ms == 69.0
    assert state.tail == ()


def test_a_probe_remembers_when_its_last_result_arrived() -> None:
    """The console shows each row's age from this: samples and state changes are results."""
    sample = ev.ProbeSamples(samples=[ev.ProbeSample(target="a", state="up", ok=1, count=1)])
    other = ev.ProbeSamples(samples=[ev.ProbeSample(target="b", state="up", ok=1, count=1)])
    events = stamp([down("a", "svc", "unknown", "up"), sample, other, down("b", "svc")])
    state = fold(events[:1])
    assert state.probes["a"].last_result_at == "2025-10-20T06:00:00.000000Z"
    state = fold(events)
    # "a" had no result after the first sample; "b" changed state after its sample.
    assert state.probes["a"].last_result_at == "2025-10-20T06:01:00.000000Z"
    assert state.probes["b"].last_result_at == "2025-10-20T06:03:00.000000Z"


def test_runbook_progress_and_verification() -> None:
    state = fold(
        stamp(
            [
                ev.RunbookOpened(runbook="dns-record-missing", title="DNS", steps=["a", "b"]),
                ev.StepSet(runbook="dns-record-missing", step="a", status="done", note="ok"),
                ev.StepVerified(
                    runbook="dns-record-missing", step="b", condition="x is up", holds=True
                ),
                ev.StepSet(runbook="dns-record-missing", step="b", status="skipped"),
                ev.RunbookOpened(runbook="dns-record-missing", title="DNS", steps=["a", "b"]),
            ]
        )
    )
    progress = state.runbooks["dns-record-missing"]
    assert progress.step_order == ("a", "b")
    assert progress.steps["a"].status == "done"
    assert progress.steps["a"].note == "ok"
    assert progress.steps["b"].verified is True
    assert progress.steps["b"].status == "skipped"
    assert progress.done == 2, "re-opening a runbook keeps its progress"


def test_control_change_applied_then_failed_keeps_true_value() -> None:
    state = fold(
        stamp(
            [
                ev.ControlRequested(
                    request_id="r1",
                    service="ec2-launch",
                    control="rate_limit",
                    from_value=1000,
                    to_value=50,
                    reason="throttle the recovery",
                ),
                ev.ControlApplied(
                    request_id="r1", service="ec2-launch", control="rate_limit", value=50
                ),
                ev.ControlRequested(
                    request_id="r2",
                    service="ec2-launch",
                    control="rate_limit",
                    from_value=50,
                    to_value=5,
                    reason="tighter",
                    actor="bob@h",
                ),
                ev.ControlFailed(
                    request_id="r2",
                    service="ec2-launch",
                    control="rate_limit",
                    error="HTTP 500",
                    value=50,
                ),
            ]
        )
    )
    view = state.control("ec2-launch", "rate_limit")
    assert view is not None
    assert view.value == 50
    assert view.error == "HTTP 500"
    assert view.pending is None
    assert view.last_changed_by == "alice@host"
    assert view.last_reason == "throttle the recovery"
    assert state.changes["r2"].outcome == "failed"
    last = state.last_applied_change("ec2-launch", "rate_limit")
    assert last is not None and last.request_id == "r1"


def test_status_drives_mitigated_and_resolved_times() -> None:
    state = fold(
        stamp(
            [
                ev.IncidentOpened(incident_id="i", title="t"),
                ev.StatusSet(status="monitoring"),
                ev.StatusSet(status="investigating"),
                ev.StatusSet(status="monitoring"),
                ev.StatusSet(status="resolved"),
            ]
        )
    )
    assert state.timings.mitigated == "2025-10-20T06:01:00.000000Z"
    assert state.timings.resolved == "2025-10-20T06:04:00.000000Z"


def test_unknown_kinds_are_kept_in_the_tail_and_listed() -> None:
    future = ev.parse_event({"kind": "pager_escalated", "seq": 1, "to": "vp", "ts": ""})
    state = reduce(IncidentState(), future)
    assert state.unknown_kinds == ("pager_escalated",)
    assert state.tail[0].model_extra == {"to": "vp"}
    assert "pager_escalated" in state.tail[0].summary()


def test_reduce_is_pure() -> None:
    events = stamp(
        [
            ev.IncidentOpened(incident_id="i", title="t"),
            down("a", "svc"),
            ev.RunbookOpened(runbook="r", steps=["s"]),
            ev.StepSet(runbook="r", step="s", status="done"),
            ev.ControlRequested(request_id="x", service="svc", control="c", to_value=True),
        ]
    )
    before = fold(events[:3])
    snapshot = copy.deepcopy(before)
    after = fold(events[3:], before)
    assert before == snapshot, "reduce must not modify the state it was given"
    assert after != before
    assert fold(events) == after, "folding in two parts equals folding at once"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "severity_set", "severity": "SEV9"}, "severity_set: field 'severity'"),
        ({"kind": "note_added"}, "note_added: field 'text': Field required"),
        ({"text": "x"}, "missing 'kind'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_parse_event_errors_name_the_field(data: object, message: str) -> None:
    with pytest.raises(ev.EventError) as info:
        ev.parse_event(data)  # type: ignore[arg-type]
    assert message in str(info.value)
