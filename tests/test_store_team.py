"""Presence and the two-person rule (pure), and the probing lease (real server)."""

from __future__ import annotations

import time
from datetime import timedelta

from warroom import events as ev
from warroom.store.lease import ProbeLease
from warroom.store.pg import PgStore
from warroom.store.team import Heartbeat, Team, confirmation_problem, fold_team, machine_of

T0 = "2025-10-20T07:00:00.000000Z"


def _at(seconds: float) -> str:
    return ev.format_ts(ev.parse_ts(T0) + timedelta(seconds=seconds))


def _beat(actor: str, at: float, leaving: bool = False) -> ev.PresenceHeartbeat:
    machine = machine_of(actor)
    return ev.PresenceHeartbeat(
        actor=actor, ts=_at(at), machine=machine, session="s1", interval_s=10, leaving=leaving
    )


def test_presence_shows_who_is_connected_and_forgets_the_silent_and_the_gone() -> None:
    team = fold_team(
        [_beat("alice@db1", 0), _beat("bob@net2", 0), _beat("carol@c3", 0), _beat("alice@db1", 25)]
    )
    team = fold_team([_beat("carol@c3", 26, leaving=True)], team)
    now = ev.parse_ts(_at(35))
    assert [(p.actor, p.machine) for p in team.connected(now)] == [("alice@db1", "db1")]
    assert [p.actor for p in team.connected(ev.parse_ts(_at(29)))] == ["alice@db1", "bob@net2"]


def test_a_console_beats_once_per_interval_and_says_goodbye() -> None:
    beat = Heartbeat("db1", "s9", interval_s=10)
    assert beat.due(100.0) is not None
    assert beat.due(105.0) is None
    again = beat.due(110.0)
    assert again is not None
    assert (again.machine, again.session, again.leaving) == ("db1", "s9", False)
    assert beat.leaving().leaving


def _request(actor: str, needs_second: bool = True) -> ev.ControlRequested:
    return ev.ControlRequested(
        seq=1, actor=actor, request_id="r1", service="db", control="failover", to_value=True,
        reason="primary gone", needs_second=needs_second,
    )  # fmt: skip


def test_a_dangerous_change_waits_for_a_different_responder_with_a_reason() -> None:
    team = fold_team([_request("alice@a")])
    assert not team.may_apply("r1")
    assert "different responder" in (confirmation_problem(team, "r1", "alice@a", "sure") or "")
    assert "own reason" in (confirmation_problem(team, "r1", "bob@b", "  ") or "")
    # Rule-breaking confirmations are recorded as rejected, and the change stays held.
    team = fold_team(
        [
            ev.ControlConfirmed(seq=2, actor="alice@a", request_id="r1", reason="me again"),
            ev.ControlConfirmed(seq=3, actor="bob@b", request_id="r1", reason=""),
        ],
        team,
    )
    assert [r.seq for r in team.rejected] == [2, 3] and not team.may_apply("r1")
    team = fold_team(
        [ev.ControlConfirmed(seq=4, actor="bob@b", request_id="r1", reason="replica caught up")],
        team,
    )
    assert team.may_apply("r1")
    assert team.confirmed["r1"].by == "bob@b"
    assert confirmation_problem(team, "r1", "carol@c", "x") == "change r1 is already confirmed"


def test_an_ordinary_change_keeps_its_bytes_and_needs_no_second() -> None:
    plain = _request("alice@a", needs_second=False)
    assert "needs_second" not in plain.model_dump(mode="json")
    assert fold_team([plain]).may_apply("r1")
    assert _request("alice@a").model_dump(mode="json")["needs_second"] is True
    assert Team().may_apply("anything")


def test_one_console_holds_the_probing_lease_and_another_takes_over_when_it_lapses(
    pg_url: str,
) -> None:
    with PgStore.open(pg_url) as a, PgStore.open(pg_url) as b:
        first = ProbeLease(a, "alice@a/1", ttl=0.6)
        second = ProbeLease(b, "bob@b/2", ttl=0.6)
        assert first.tick() and not second.tick()
        assert second.current == "alice@a/1"
        time.sleep(0.3)
        assert first.tick()  # renewed in time
        time.sleep(0.8)  # alice's console stops renewing (hung, or gone)
        assert second.tick() and second.current == "bob@b/2"
        assert not first.tick(time.monotonic() + 1)
        b.release_lease("probes", "bob@b/2")
        assert first.tick(time.monotonic() + 2)
