"""The reducer's view of control changes: values, who changed them, auto-revert deadlines."""

from __future__ import annotations

from warroom import events as ev
from warroom.state import fold


def _stamp(events: list[ev.BaseEvent]) -> list[ev.BaseEvent]:
    out = []
    for seq, event in enumerate(events, start=1):
        ts = f"2025-10-20T07:00:{seq:02d}.000000Z"
        out.append(event.model_copy(update={"seq": seq, "ts": ts}))
    return out


def _requested(rid: str, to: object, **extra: object) -> ev.ControlRequested:
    return ev.ControlRequested(
        actor="ana@host",
        request_id=rid,
        service="checkout",
        control="load_shed",
        from_value=0,
        to_value=to,
        reason="shed",
        **extra,
    )


def _applied(rid: str, value: object) -> ev.ControlApplied:
    return ev.ControlApplied(
        actor="ana@host", request_id=rid, service="checkout", control="load_shed", value=value
    )


def test_applied_change_with_duration_schedules_its_revert() -> None:
    state = fold(_stamp([_requested("r1", 40, auto_revert_s=600), _applied("r1", 40)]))
    view = state.control("checkout", "load_shed")
    assert view is not None
    assert view.value == 40
    assert view.last_changed_by == "ana@host"
    assert view.auto_revert_of == "r1"
    assert view.auto_revert_at == "2025-10-20T07:10:02.000000Z"


def test_extension_moves_the_deadline_and_a_later_change_cancels_it() -> None:
    extend = ev.ControlAutoRevertExtended(
        request_id="r1",
        service="checkout",
        control="load_shed",
        until="2025-10-20T07:20:02.000000Z",
        extend_s=600,
    )
    events = [_requested("r1", 40, auto_revert_s=600), _applied("r1", 40), extend]
    state = fold(_stamp(events))
    view = state.control("checkout", "load_shed")
    assert view is not None and view.auto_revert_at == "2025-10-20T07:20:02.000000Z"

    later = fold(_stamp([*events, _requested("r2", 60), _applied("r2", 60)]))
    view = later.control("checkout", "load_shed")
    assert view is not None
    assert (view.value, view.auto_revert_at, view.auto_revert_of) == (60, "", "")


def test_a_failed_revert_ends_the_schedule_and_keeps_the_true_value() -> None:
    failed = ev.ControlFailed(
        request_id="r2",
        service="checkout",
        control="load_shed",
        error="timed out after 5s (127.0.0.1:1)",
        value=40,
    )
    events = [
        _requested("r1", 40, auto_revert_s=60),
        _applied("r1", 40),
        _requested("r2", 0, revert_of="r1"),
        failed,
    ]
    state = fold(_stamp(events))
    view = state.control("checkout", "load_shed")
    assert view is not None
    assert (view.value, view.error, view.auto_revert_at) == (40, failed.error, "")
    assert state.changes["r2"].outcome == "failed"
