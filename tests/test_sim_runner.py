"""Headless drills (`warroom sim run`): the historic levers reproduce the real outages' phases,
the right fix without throttling costs, seeds vary the incident within its history, the
tutorial teaches (the shipped wrong moves are in test_sim_moves.py)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from warroom.runbooks.parser import load_runbook
from warroom.sim.model import HISTORY_LABEL, Fleet
from warroom.sim.runner import DrillResult, LeverChange, history_checks, load_levers, run_drill
from warroom.sim.scenario import builtin_names, load_scenario

HOUR = 3600.0
SCENARIOS = ("aws-us-east-1-2025", "crowdstrike-2024", "att-2024", "tutorial")
#: Coarse steps keep a 15 h (or 7 d) drill well under a second; the phases hold at these.
COARSE = {"aws-us-east-1-2025": 20.0, "crowdstrike-2024": 300.0, "att-2024": 30.0}
RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"


def drill(name: str, levers: list[LeverChange] | None = None, seed: int = 0) -> DrillResult:
    return run_drill(load_scenario(name), seed=seed, levers=levers, max_step=COARSE.get(name))


@functools.cache
def historic_run(name: str) -> DrillResult:
    """The historic levers at the historic times, seed 0 (shared by the tests: it is pure)."""
    return drill(name, historic(name))


def historic(name: str) -> list[LeverChange]:
    history = load_scenario(name).history
    assert history is not None and history.levers is not None
    return list(load_levers(history.levers).lever)


def lever(at: float, service: str, control: str, value: Any) -> LeverChange:
    return LeverChange(at=at, service=service, control=control, value=value)


def without(levers: list[LeverChange], service: str, control: str) -> list[LeverChange]:
    return [c for c in levers if (c.service, c.control) != (service, control)]


def test_every_builtin_scenario_ships_its_historic_levers() -> None:
    for name in SCENARIOS:
        assert name in builtin_names()
        changes = historic(name)
        assert changes and all(c.at >= 0 for c in changes)


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.slow
def test_historic_levers_reproduce_the_phases_and_nothing_else_heals(name: str) -> None:
    played = historic_run(name)
    checks = history_checks(played)
    assert checks and all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]
    assert all(entry["ok"] for entry in played.levers), played.levers
    assert played.all_recovered() is not None
    repair = played.scenario.history.repair_at if played.scenario.history else None
    if repair is not None:  # the tutorial: the runbook's moves beat its own repair
        end = played.all_recovered()
        assert end is not None and end < repair
    # (a) No mitigation: the same incident stays broken to the end of the drill.
    idle = drill(name)
    broken = [n for n, r in idle.services.items() if r.final != "ok"]
    assert broken, f"{name} healed by itself"
    assert idle.all_recovered() is None


@pytest.mark.slow
def test_aws_second_act_nlb_errors_from_0530_to_after_0936_and_ec2_by_1350() -> None:
    played = historic_run("aws-us-east-1-2025")
    nlb = played.services["nlb"]
    assert nlb.first_down is not None and 5 * HOUR <= nlb.first_down <= 6.5 * HOUR  # ~05:30
    disabled = 9 * HOUR + 51 * 60  # 09:36: automatic health-check failover disabled
    recovered = played.recovered("nlb")
    assert recovered is not None and disabled < recovered < disabled + HOUR
    ec2 = played.recovered("ec2-launch")
    assert ec2 is not None and 12 * HOUR + 45 * 60 <= ec2 <= 15 * HOUR + 15 * 60  # 12:30..15:00
    # Network Manager's backlog is fed by lease recovery and by the flapping checks.
    nm = played.services["network-manager"]
    assert nm.first_degraded is not None and nm.first_degraded < nlb.first_down
    assert any("zone" in e.title and "put back" in e.title for e in played.fleet.events)


@pytest.mark.slow
def test_right_fix_without_throttling_recovers_clearly_later() -> None:
    base = historic_run("aws-us-east-1-2025")
    levers = [c for c in historic("aws-us-east-1-2025") if c.control != "rate_limit"]
    dns_only = drill("aws-us-east-1-2025", levers)
    fixed, unthrottled = base.recovered("dwfm"), dns_only.recovered("dwfm")
    assert fixed is not None
    assert unthrottled is None or unthrottled > fixed + 3 * HOUR  # DWFM stays collapsed

    rollback_only = without(historic("att-2024"), "device-registration", "rate_limit")
    unpaced = drill("att-2024", rollback_only)
    assert unpaced.recovered("core-network") is not None
    assert unpaced.recovered("device-registration") is None  # re-registration storm

    # Tutorial: failing over without first limiting the database, web comes back later
    # (the slowed database has to dig itself out of the miss storm).
    no_limit = without(historic("tutorial"), "db", "rate_limit")
    web, web_unprotected = (
        historic_run("tutorial").recovered("web"),
        drill("tutorial", no_limit).recovered("web"),
    )
    assert web is not None and web_unprotected is not None and web_unprotected > web + 20

    # CrowdStrike: fixing hosts while the bad file is still served makes no progress.
    unreverted = without(historic("crowdstrike-2024"), "content-pipeline", "rollback")
    assert drill("crowdstrike-2024", unreverted).recovered("windows-fleet") is None


FIX = 2 * HOUR + 40 * 60  # 02:25 PDT: DNS restored by hand


def test_tutorial_lifting_the_db_limit_early_costs() -> None:
    early = [c for c in historic("tutorial") if c.value != "none"]
    early.append(lever(110.0, "db", "rate_limit", "none"))  # before the cache has failed over
    web, web_early = (
        historic_run("tutorial").recovered("web"),
        drill("tutorial", early).recovered("web"),
    )
    assert web is not None and web_early is not None and web_early > web + 20


def _retry_fleet(policy: str) -> Fleet:
    from warroom.sim.scenario import parse_scenario

    data = {
        "name": "retries",
        "title": "t",
        "description": "t",
        "duration": 600,
        "services": {
            "front": {
                "capacity": 1e5,
                "demand": 200,
                "client_retry": "off",
                "retry_policy": policy,
            },
            "back": {"capacity": 1000, "base_latency": 0.01, "timeout": 1.0},
            "store": {"capacity": 10000, "base_latency": 0.005},
        },
        "edges": [{"from": "front", "to": "back"}, {"from": "back", "to": "store"}],
        "timeline": [
            {"at": 60, "service": "store", "fault": "slow", "factor": 40, "title": "blip"},
            {"at": 120, "service": "store", "fault": "recover", "title": "blip over"},
        ],
    }
    return Fleet(parse_scenario(data, "retries.toml"), seed=0)


def test_unbounded_retries_turn_a_blip_into_an_outage() -> None:
    outcomes = {}
    for policy in ("capped", "unbounded"):
        fleet = _retry_fleet(policy)
        while fleet.time < 600:
            fleet.step(2.0)
        outcomes[policy] = fleet.health("back"), fleet.metrics("back")["goodput_rps"]
    # The same 60 s blip at 30 % of capacity: capped retries recover, unbounded ones keep the
    # backend saturated with retries after the cause is gone (metastable failure).
    assert outcomes["capped"][0] == "ok"
    assert outcomes["unbounded"][0] != "ok"
    assert outcomes["unbounded"][1] < 0.5 * outcomes["capped"][1]


#: Seeds are played coarser still, sampled once a step: every phase of every seed lands in
#: its envelope at these steps too, and each seed's phases differ as at finer ones.
SEED_STEP = {"aws-us-east-1-2025": 60.0, "crowdstrike-2024": 600.0, "att-2024": 60.0}


@pytest.mark.slow
@pytest.mark.parametrize("name", SCENARIOS)
def test_twenty_seeds_vary_the_incident_within_its_history(name: str) -> None:
    scenario = load_scenario(name)
    trajectories = set()
    for seed in range(1, 21):
        step = SEED_STEP.get(name)
        played = run_drill(scenario, seed=seed, levers=historic(name), max_step=step, step=step)
        failed = [c for c in history_checks(played) if not c["ok"]]
        assert not failed, (seed, failed, played.variation)
        phases = tuple((r.first_down, played.recovered(n)) for n, r in played.services.items())
        trajectories.add((phases, played.fleet.trace_row()))
    assert len(trajectories) == 20


def test_seed_zero_is_the_history_and_the_variation_is_reported() -> None:
    scenario = load_scenario("aws-us-east-1-2025")
    assert Fleet(scenario, seed=0).variation["fault_shift_s"] == 0.0
    varied = Fleet(scenario, seed=5).variation
    assert abs(varied["fault_shift_s"]) <= scenario.variation.fault_time
    assert all(abs(f - 1) <= scenario.variation.capacity for f in varied["capacity"].values())
    assert varied["zone"] in (0, 1, 2)


def test_tutorial_drill_with_the_runbooks_steps_in_order_beats_the_repair() -> None:
    runbook = load_runbook(RUNBOOKS / "cache-failover.md")
    actions = [s.action for s in runbook.steps if s.action is not None]
    assert [a.raw for a in actions][:2] == ["db/rate_limit = 50", "cache/failover = replica"]
    # A responder starts 15 s after the cache dies and pulls one lever every 15 s.
    timeline = [
        lever(105.0 + 15.0 * i, a.service, a.control, a.value) for i, a in enumerate(actions)
    ]
    played = drill("tutorial", timeline)
    assert all(entry["ok"] for entry in played.levers), played.levers
    repair = 240.0
    assert played.all_recovered() is not None and played.all_recovered() < repair  # type: ignore[operator]
    # Its own DB limit is below what the slowed database serves, so the limit helps.
    fleet = Fleet(load_scenario("tutorial"), seed=0)
    while fleet.time < 60:
        fleet.step(2.0)
    assert fleet.metrics("db")["effective_capacity_rps"] > 50.0
    # Shedding is not an outage: the web probe does not read "down" while it sheds.
    web = played.services["web"]
    shed_at, unshed_at = (c.at for c in timeline if c.control == "load_shed")
    states = [(t, s) for t, s in web.states if shed_at + 20 <= t <= unshed_at]
    assert all(s in ("ok", "slow") for _, s in states)


def test_drill_mode_keeps_the_root_cause_out_of_the_feed_until_it_ends() -> None:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"), seed=0, drill=True, max_step=30.0)
    while fleet.time < 4 * HOUR:
        fleet.step(60.0)
    titles = " ".join(e.title for e in fleet.events)
    assert "DNS" not in titles and "history:" not in titles
    assert any(e.title.startswith("lambda: ok ->") for e in fleet.events)  # symptoms stay
    revealed = fleet.end_drill()
    assert revealed and all(e.revealed for e in revealed)
    assert any("DNS Enactor" in e.title for e in revealed)
    assert [e.seq for e in fleet.events] == list(range(1, len(fleet.events) + 1))
    notes = [e.as_dict() for e in revealed if e.history]
    assert notes and all(n["label"] == HISTORY_LABEL for n in notes)
    assert revealed[0].sim_time == pytest.approx(3 * 60)  # when it happened, not now
    plain = Fleet(load_scenario("aws-us-east-1-2025"), seed=0, max_step=60.0)
    plain.step(3600.0)
    assert any(e.as_dict()["history"] for e in plain.events)


@pytest.mark.slow
def test_sim_run_prints_one_json_object_and_refuses_bad_lever_files(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "warroom", "sim", "run", "tutorial", "--levers", "tutorial"]
    out = subprocess.run([*cmd, "--seed", "3", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["scenario"] == "tutorial" and data["seed"] == 3
    assert set(data["services"]) == {"web", "cache", "db"}
    web = data["services"]["web"]
    assert web["first_down_s"] < web["recovered_s"] < 240
    assert [lv["control"] for lv in data["levers"]][:2] == ["rate_limit", "failover"]
    assert all(h["ok"] for h in data["history"])

    bad = tmp_path / "bad.toml"
    bad.write_text('[[lever]]\nat = "1m"\nservice = "db"\ncontrol = "rate_limit"\n')
    out = subprocess.run([*cmd[:-1], str(bad)], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.startswith(f"warroom: {bad}: lever[0].value: required")
    assert "Traceback" not in out.stderr
    refused = tmp_path / "refused.toml"
    refused.write_text('[[lever]]\nat = "1m"\nservice = "db"\ncontrol = "rate_limit"\nvalue = -5\n')
    out = subprocess.run([*cmd[:-1], str(refused), "--until", "2m"], capture_output=True, text=True)
    assert out.returncode == 0 and "REFUSED: rate_limit must be between" in out.stdout


@pytest.mark.slow
def test_queue_aware_admission_takes_the_knife_edge_off_a_throttle() -> None:
    """A DWFM throttle 1 % above its effective capacity: FIFO collapses, queue-aware does not."""
    scenario = load_scenario("aws-us-east-1-2025")
    effective = 364.0  # `effective_capacity_rps` of DWFM, below the 400 on its datasheet
    outcomes = {}
    for admission in ("fifo", "queue-aware"):
        levers = [
            lever(c.at, c.service, c.control, round(1.01 * effective))
            if (c.service, c.control) == ("dwfm", "rate_limit") and c.at < 5 * HOUR
            else c
            for c in historic("aws-us-east-1-2025")
        ]
        levers.append(lever(0.0, "dwfm", "admission", admission))
        played = run_drill(scenario, seed=0, levers=levers, max_step=20.0)
        outcomes[admission] = played.recovered("dwfm")
    below = historic_run("aws-us-east-1-2025").recovered("dwfm")
    assert below is not None and outcomes["queue-aware"] is not None
    assert outcomes["queue-aware"] <= below  # refusing at the door protects the queue
    assert outcomes["fifo"] is None or outcomes["fifo"] > below + 2 * HOUR


def test_metrics_show_where_the_edge_is() -> None:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"), seed=0, max_step=20.0)
    fleet.step(FIX)
    fleet.apply_control("dynamodb", "dns_record", "restored")
    fleet.step(HOUR)  # DNS back, no throttle: DWFM in congestive collapse
    dwfm = fleet.metrics("dwfm")
    for key in ("offered_rps", "goodput_rps", "queue", "capacity_rps", "effective_capacity_rps"):
        assert key in dwfm
    assert dwfm["nominal_capacity_rps"] == 400.0
    assert dwfm["effective_capacity_rps"] < dwfm["nominal_capacity_rps"]
    assert dwfm["headroom_rps"] < 0 and dwfm["in_time"] < 0.5  # collapsed: past the edge
    assert dwfm["controls"]["admission"] == "fifo"
    nlb = fleet.metrics("nlb")
    assert nlb["zones_removed"] == [0.0, 0.0, 0.0] and nlb["controls"]["removal_velocity"] is None
