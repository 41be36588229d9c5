"""Wrong moves cost in every shipped scenario, recovery goes by priority and by degrees.

Each wrong move ships as a lever timeline based on the historic one
(`warroom/sim/scenarios/levers/wrong/<scenario>/<move>.toml`, printed side by side by
`warroom sim moves SCENARIO`); here each is played with the headless runner against the
historic levers, seed 0. Which of the four wrong moves apply where:
- aws-us-east-1-2025: all four (unbounded retries, scaling before throttling, early
  failover, early lifting of a throttle).
- att-2024: unbounded retries and early lifting of the pacing. No failover: one core, no
  second site. Scaling does not apply: registration loads no shared dependency per worker
  and the pacing, not capacity, bounds re-registration (asserted: scaling changes nothing).
- crowdstrike-2024: no throttle, no failover and nothing to scale; retries do not apply: an
  app's request needs its own crashed host (asserted: retries neither help nor cost).
- tutorial: its file belongs to the tutorial drill; its early lift is in test_sim_runner.py.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.test_sim_runner import COARSE, HOUR, historic, historic_run, lever, without
from warroom.cli import main
from warroom.sim.model import Fleet
from warroom.sim.runner import DrillResult, LeverChange, history_checks, run_drill, wrong_moves
from warroom.sim.scenario import load_scenario

SHIPPED = {
    "aws-us-east-1-2025": {
        "unbounded-retries",
        "scaling-before-throttling",
        "early-failover",
        "early-lift",
    },
    "att-2024": {"unbounded-retries", "early-lift"},
    "crowdstrike-2024": set(),
}
#: Later by at least this much counts as measurably later.
LATER = 15 * 60.0


def play(name: str, levers: list[LeverChange]) -> DrillResult:
    return run_drill(load_scenario(name), seed=0, levers=levers, max_step=COARSE[name])


@functools.cache
def wrong(name: str, move: str) -> DrillResult:
    timeline = dict(wrong_moves(name))[move]
    return play(name, list(timeline.lever))


def later(base: float | None, other: float | None) -> bool:
    """`other` is measurably later than `base` (never counts as later)."""
    assert base is not None
    return other is None or other > base + LATER


def test_each_scenario_ships_the_wrong_moves_that_apply_to_it() -> None:
    for name, moves in SHIPPED.items():
        shipped = wrong_moves(name)
        assert {move for move, _ in shipped} == moves
        for _, timeline in shipped:
            # Each is the historic moves plus the mistake.
            assert list(timeline.lever[: len(historic(name))]) == historic(name)
            assert len(timeline.lever) > len(historic(name))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "move"), sorted((n, m) for n, moves in SHIPPED.items() for m in moves)
)
def test_a_wrong_move_makes_a_historic_recovery_later(name: str, move: str) -> None:
    base, played = historic_run(name), wrong(name, move)
    assert all(entry["ok"] for entry in played.levers), played.levers
    recovered = [e.service for e in base.scenario.history.expect if e.event == "recovered"]  # type: ignore[union-attr]
    hit = [s for s in recovered if later(base.recovered(s), played.recovered(s))]
    assert hit or later(base.all_recovered(), played.all_recovered()), move


@pytest.mark.slow
def test_how_each_aws_wrong_move_costs() -> None:
    base = historic_run("aws-us-east-1-2025")
    # The herd after the DNS fix keeps DynamoDB saturated: nothing that needs it comes back.
    storm = wrong("aws-us-east-1-2025", "unbounded-retries")
    assert base.services["dynamodb"].final == "ok"
    assert storm.services["dynamodb"].final != "ok" and storm.recovered("dwfm") is None
    scaled = wrong("aws-us-east-1-2025", "scaling-before-throttling")
    assert scaled.recovered("dwfm") is None and scaled.services["dynamodb"].final != "ok"
    # A cold, half-size us-west-2 in a retry storm: checkout never comes back there.
    assert base.recovered("checkout") is not None
    assert wrong("aws-us-east-1-2025", "early-failover").recovered("checkout") is None
    lifted = wrong("aws-us-east-1-2025", "early-lift")
    assert later(base.recovered("dwfm"), lifted.recovered("dwfm"))
    assert lifted.recovered("ec2-launch") is None


@pytest.mark.slow
def test_how_each_att_wrong_move_costs_and_scaling_does_not_apply() -> None:
    base = historic_run("att-2024")
    for move in ("unbounded-retries", "early-lift"):
        played = wrong("att-2024", move)
        assert played.recovered("core-network") == base.recovered("core-network")
        assert played.recovered("device-registration") is None, move
    # Calls retried without bound from unregistered phones: each retry is a look-up.
    storm = play(
        "att-2024",
        [*historic("att-2024"), lever(2.25 * HOUR, "voice", "retry_policy", "unbounded")],
    )
    assert storm.recovered("voice") is None
    scaled = play(
        "att-2024",
        [*historic("att-2024"), lever(2.25 * HOUR, "device-registration", "capacity", 400)],
    )
    assert scaled.recovered("device-registration") == base.recovered("device-registration")


def test_crowdstrike_retries_cannot_reach_a_crashed_host() -> None:
    base = historic_run("crowdstrike-2024")
    retried = play(
        "crowdstrike-2024",
        [
            *historic("crowdstrike-2024"),
            lever(2 * HOUR, "airline-checkin", "retry_policy", "unbounded"),
            lever(2 * HOUR, "hospital-ehr", "retry_policy", "unbounded"),
        ],
    )
    for app in ("airline-checkin", "hospital-ehr"):
        assert retried.recovered(app) == base.recovered(app)


def test_crowdstrike_hosts_of_the_app_fixed_first_bring_it_back_first() -> None:
    base = historic_run("crowdstrike-2024")
    first = play(
        "crowdstrike-2024",
        [
            *historic("crowdstrike-2024"),
            lever(2 * HOUR, "windows-fleet", "recover_first", "hospital"),
        ],
    )
    assert all(entry["ok"] for entry in first.levers)
    hospital, airline = first.recovered("hospital-ehr"), first.recovered("airline-checkin")
    assert hospital is not None and airline is not None
    assert hospital < base.recovered("hospital-ehr") - 2 * 24 * HOUR  # type: ignore[operator]
    assert airline > base.recovered("airline-checkin") + LATER  # type: ignore[operator]
    # The fleet as a whole recovers as fast: the responders' rate is the bound.
    assert all(check["ok"] for check in history_checks(first))


def test_att_firstnet_and_911_re_attach_first_when_paced() -> None:
    base = historic_run("att-2024")
    e911, voice = base.recovered("e911"), base.recovered("voice")
    assert e911 is not None and voice is not None and e911 < voice - 5 * HOUR
    even = play(
        "att-2024",
        [*historic("att-2024"), lever(2.25 * HOUR, "device-registration", "recover_first", "none")],
    )
    assert even.recovered("e911") is not None
    assert even.recovered("e911") > voice - HOUR  # type: ignore[operator]


def test_att_calls_succeed_in_proportion_to_registered_devices_and_the_edge_is_shown() -> None:
    fleet = Fleet(load_scenario("att-2024"), seed=0, max_step=COARSE["att-2024"])
    fleet.step(2.25 * HOUR)
    fleet.apply_control("core-network", "rollback", True)
    fleet.apply_control("device-registration", "rate_limit", 3300)
    fleet.step(5.75 * HOUR)  # 10:30 CST: about half the devices are back
    registration = fleet.metrics("device-registration")
    registered = registration["healthy_by_class"]["consumer"]
    assert 0.3 < registered < 0.8
    assert fleet.metrics("voice")["success"] == pytest.approx(registered, abs=0.03)
    # The room the callers leave for re-attaches: above the historic pacing, below nominal.
    edge = registration["effective_capacity_rps"]
    assert 3300 < edge < registration["nominal_capacity_rps"]
    assert registration["headroom_rps"] == pytest.approx(edge - 3300, abs=1.0)


@pytest.mark.slow
def test_att_pacing_above_the_shown_edge_collapses_with_fifo_not_queue_aware() -> None:
    fleet = Fleet(load_scenario("att-2024"), seed=0, max_step=COARSE["att-2024"])
    fleet.step(2.25 * HOUR)
    fleet.apply_control("core-network", "rollback", True)
    fleet.step(30 * 60)
    over = round(1.05 * fleet.metrics("device-registration")["effective_capacity_rps"])
    paced = without(historic("att-2024"), "device-registration", "rate_limit")
    paced.append(lever(2.25 * HOUR, "device-registration", "rate_limit", over))
    fifo = play("att-2024", paced)
    assert fifo.recovered("device-registration") is None
    aware = play("att-2024", [*paced, lever(0, "device-registration", "admission", "queue-aware")])
    recovered = aware.recovered("device-registration")
    assert recovered is not None and recovered <= historic_run("att-2024").recovered(
        "device-registration"
    )  # type: ignore[operator]


@pytest.mark.slow
def test_sim_moves_prints_the_historic_row_then_each_wrong_move(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sim", "moves", "att-2024", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| `att-2024` | core-network | device-registration |")
    moves = [line.split(" | ")[0].lstrip("| ") for line in lines[2:]]
    assert moves == ["historic moves", "early-lift", "unbounded-retries"]
    assert lines[2].endswith("h |") and "never" not in lines[2]
    assert "never" in lines[3] and "never" in lines[4]


def runbook_levers(name: str, times: list[float]) -> list[LeverChange]:
    """A shipped runbook's actions in order, pulled at `times` (one per action)."""
    from warroom.runbooks.parser import load_runbook

    path = Path(__file__).resolve().parent.parent / "runbooks" / f"{name}.md"
    actions = [s.action for s in load_runbook(path).steps if s.action is not None]
    assert len(actions) == len(times), [a.raw for a in actions]
    return [lever(t, a.service, a.control, a.value) for t, a in zip(times, actions, strict=True)]


def test_the_att_runbook_in_order_brings_911_back_first_and_everyone_in_the_drill() -> None:
    start = 2.25 * HOUR  # when AT&T rolled back; one step every two minutes, then the relax
    times = [start, start + 120, start + 240, 13.5 * HOUR, 13.6 * HOUR]
    played = play("att-2024", runbook_levers("network-core-change", times))
    assert all(entry["ok"] for entry in played.levers), played.levers
    e911, voice = played.recovered("e911"), played.recovered("voice")
    assert e911 is not None and voice is not None and e911 < start + HOUR < voice
    assert played.all_recovered() is not None


def test_the_crowdstrike_runbook_in_order_brings_hospitals_back_days_first() -> None:
    day = 24 * HOUR
    times = [80 * 60, 87 * 60, 2 * HOUR, 2 * HOUR, day, 2 * day]
    played = play("crowdstrike-2024", runbook_levers("bad-deploy", times))
    assert all(entry["ok"] for entry in played.levers), played.levers
    hospital, airline = played.recovered("hospital-ehr"), played.recovered("airline-checkin")
    assert hospital is not None and airline is not None and hospital < airline - 2 * day
    assert all(check["ok"] for check in history_checks(played))


def test_a_lever_file_whose_base_is_missing_names_both_files(tmp_path: Path) -> None:
    from warroom.errors import WarroomError
    from warroom.sim.runner import load_levers

    move = tmp_path / "move.toml"
    move.write_text(
        'base = "nope"\n[[lever]]\nat = "1m"\nservice = "db"\ncontrol = "x"\nvalue = 1\n'
    )
    with pytest.raises(WarroomError) as info:
        load_levers(move)
    assert str(info.value).startswith(f"{move}: base 'nope': nope: cannot read")
