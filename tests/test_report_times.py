"""Every key time of the report, on small hand-built logs (one fact per test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warroom import events as ev
from warroom.report.builder import build_report
from warroom.report.model import Report
from warroom.report.render import render_markdown
from warroom.state import Chain, fold

T0 = datetime(2025, 10, 20, 6, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return ev.format_ts(T0 + timedelta(seconds=seconds))


def build(*items: tuple[float, str, ev.BaseEvent]) -> Report:
    events = [
        event.model_copy(update={"seq": i, "ts": at(t), "actor": actor})
        for i, (t, actor, event) in enumerate(items, start=1)
    ]
    fast = build_report(events)
    assert fast == build_report(events, exact=True)
    return fast


def change(target: str, frm: str, to: str, service: str = "") -> ev.ProbeStateChanged:
    return ev.ProbeStateChanged(
        target=target, service=service or target, from_state=frm, to_state=to, reason="r"
    )


def opened() -> ev.IncidentOpened:
    return ev.IncidentOpened(incident_id="i", title="t", severity="SEV2")


def status(value: str) -> ev.StatusSet:
    return ev.StatusSet(status=value)


def test_impact_starts_at_the_first_failing_probe_and_ends_at_the_last_recovery() -> None:
    report = build(
        (0, "probe", change("a", "unknown", "up")),
        (0, "probe", change("b", "unknown", "up")),
        (60, "probe", change("a", "up", "down")),
        (90, "probe", change("b", "up", "degraded")),
        (200, "probe", change("a", "down", "up")),
        (260, "probe", change("b", "degraded", "up")),
    )
    times = report.times
    assert times.impact_start == times.first_failure == at(60)
    assert times.impact_end == at(260)
    assert times.time_to_mitigate_s == 200.0


def test_impact_that_returns_is_not_over_until_it_ends_again() -> None:
    report = build(
        (0, "probe", change("a", "unknown", "up")),
        (60, "probe", change("a", "up", "down")),
        (120, "probe", change("a", "down", "up")),
        (300, "probe", change("a", "up", "down")),
    )
    assert report.times.impact_start == at(60)
    assert report.times.impact_end == ""  # still failing at the last event
    assert report.times.time_to_mitigate_s is None
    assert "Impact had not ended" in render_markdown(report)


def test_a_simulated_fault_before_the_probes_starts_impact() -> None:
    report = build(
        (0, "probe", change("a", "unknown", "up")),
        (30, "sim", ev.ScenarioEvent(sim_seq=1, sim_time=0.0, title="fault")),
        (42, "probe", change("a", "up", "down")),
    )
    times = report.times
    assert (times.trigger, times.impact_start, times.first_failure) == (at(30), at(30), at(42))
    assert times.first_detection == at(42)
    assert times.time_to_detect_s == 12.0


def test_detection_is_the_first_alert_when_it_beats_the_probes() -> None:
    alert = ev.parse_event({"kind": "alert_fired", "ts": "", "name": "HighErrorRate"})
    report = build(
        (0, "probe", change("a", "unknown", "up")),
        (10, "alertmanager", alert),
        (40, "probe", change("a", "up", "down")),
    )
    assert report.times.first_detection == at(10)
    assert next(r for r in report.times.rows if r.label == "Detected").basis == "first alert"


def test_acknowledged_is_the_first_responder_action_after_detection() -> None:
    report = build(
        (0, "bob@h", ev.NoteAdded(text="before anything broke")),
        (10, "probe", change("a", "unknown", "up")),
        (60, "probe", change("a", "up", "down")),
        (100, "bob@h", ev.NoteAdded(text="looking")),
        (150, "alice@h", opened()),
    )
    times = report.times
    assert times.acknowledged == at(100)
    assert times.time_to_acknowledge_s == 40.0
    assert times.opened == at(150)


def test_first_action_is_the_first_lever_or_command() -> None:
    report = build(
        (0, "alice@h", opened()),
        (10, "alice@h", ev.NoteAdded(text="n")),
        (
            20,
            "alice@h",
            ev.ControlRequested(request_id="r", service="s", control="c", to_value=1),
        ),
    )
    assert report.times.first_action == at(20)


def test_mitigated_is_monitoring_and_never_copied_from_resolved() -> None:
    report = build((0, "a@h", opened()), (100, "a@h", status("resolved")))
    assert report.times.mitigated == ""
    assert report.times.resolved == at(100)
    report = build(
        (0, "a@h", opened()), (50, "a@h", status("monitoring")), (90, "a@h", status("resolved"))
    )
    assert (report.times.mitigated, report.times.resolved) == (at(50), at(90))


def test_reopen_clears_resolved_and_the_next_resolution_counts() -> None:
    report = build(
        (0, "a@h", opened()),
        (50, "a@h", status("monitoring")),
        (90, "a@h", status("resolved")),
        (120, "a@h", status("monitoring")),  # reopened: it was not over
    )
    times = report.times
    assert times.reopened == [at(120)]
    assert times.resolved == "" and times.mitigated == at(120)
    text = render_markdown(report)
    assert "declared to last event: still monitoring" in text
    assert "| Reopened |" in text
    report = build(
        (0, "a@h", opened()),
        (90, "a@h", status("resolved")),
        (120, "a@h", status("investigating")),
        (300, "a@h", status("resolved")),
    )
    assert report.times.resolved == at(300)
    assert report.times.duration_s == 300.0
    assert "declared to resolved" in render_markdown(report)


def test_closing_resolves_and_rows_are_in_time_order() -> None:
    report = build(
        (0, "probe", change("a", "unknown", "up")),
        (5, "sim", ev.ScenarioEvent(sim_seq=1, sim_time=0.0, title="fault")),
        (10, "probe", change("a", "up", "down")),
        (20, "a@h", opened()),
        (40, "probe", change("a", "down", "up")),
        (60, "a@h", ev.IncidentClosed()),
    )
    times = report.times
    assert times.closed == times.resolved == at(60)
    assert [r.ts for r in times.rows] == sorted(r.ts for r in times.rows)
    labels = [r.label for r in times.rows]
    assert labels.index("Impact ended") < labels.index("Resolved")


def test_definitions_are_written_in_the_report() -> None:
    text = render_markdown(build((0, "a@h", opened())))
    for short in ("**TTD** (time to detect)", "**TTA**", "**TTM**", "**TTR**"):
        assert short in text


def test_service_minutes_are_the_reducers_clock() -> None:
    items = [
        (0, "probe", change("a1", "unknown", "up", "a")),
        (0, "probe", change("a2", "unknown", "up", "a")),
        (60, "probe", change("a1", "up", "down", "a")),
        (90, "probe", change("a2", "up", "degraded", "a")),
        (120, "probe", change("a1", "down", "up", "a")),
        (180, "probe", change("a2", "degraded", "up", "a")),
    ]
    report = build(*items)
    state = fold(
        e.model_copy(update={"seq": i, "ts": at(t)}) for i, (t, _a, e) in enumerate(items, 1)
    )
    service = report.impact[0]
    assert (service.down_s, service.degraded_s) == (60.0, 60.0)
    view = state.services["a"]
    assert (view.down_s, view.degraded_s, view.state) == (60.0, 60.0, "up")
    assert state.bad_targets == 0


def test_machine_events_are_credited_to_the_machine() -> None:
    report = build(
        (0, "alice@laptop", change("a", "unknown", "up")),
        (1, "alice@laptop", ev.ScenarioEvent(sim_seq=1, sim_time=0.0, title="fault")),
        (2, "alice@laptop", ev.NoteAdded(text="mine")),
    )
    assert [e.actor for e in report.timeline] == ["probe", "sim", "alice@laptop"]


def test_chain_shares_items_and_refolds_without_copying() -> None:
    base = Chain[int]().append(1).append(2)
    longer = base.append(3)
    again = base.append(3)  # a re-fold of the same history
    other = base.append(4)  # history diverged
    assert list(base) == [1, 2] and list(longer) == list(again) == [1, 2, 3]
    assert longer._items is again._items is base._items
    assert list(other) == [1, 2, 4] and other._items is not base._items
    assert longer[-1] == 3 and longer[:2] == (1, 2) and longer == (1, 2, 3)


def test_highlights_stay_short_on_long_noisy_incidents() -> None:
    items: list[tuple[float, str, ev.BaseEvent]] = [(0, "probe", change("a", "unknown", "up"))]
    for i in range(30):  # 30 relapses
        items.append((100 * i + 10, "probe", change("a", "up", "down")))
        items.append((100 * i + 50, "probe", change("a", "down", "up")))
    items += [(4000 + i, "b@h", ev.NoteAdded(text=f"n{i}")) for i in range(250)]
    items.append((5000, "b@h", ev.BookmarkAdded(label="kept")))
    report = build(*items)
    texts = [h.text for h in report.highlights]
    assert not any("failing again" in t for t in texts)
    assert sum("every probe healthy" in t for t in texts) == 1  # the final recovery
    assert not any(t.startswith("note:") for t in texts)  # 250 notes: in the appendix only
    assert "bookmark: kept" in texts
    assert len(texts) < 10
    assert sum(e.kind == "note_added" for e in report.timeline) == 250
