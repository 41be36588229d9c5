"""The simulated fleet's model: retries, breakers, failover, scenario histories, determinism."""

from __future__ import annotations

from typing import Any

import pytest

from warroom.errors import WarroomError
from warroom.sim.model import ControlError, Fleet, UnknownControl
from warroom.sim.scenario import builtin_names, load_scenario, parse_scenario

HOUR = 3600.0
AWS_FIX = 2 * HOUR + 40 * 60  # 02:25 PDT, when AWS restored the record by hand


def small(services: dict[str, Any], edges: list[dict[str, Any]], **extra: Any) -> Fleet:
    data = {
        "name": "t",
        "title": "t",
        "description": "t",
        "duration": 600,
        "services": services,
        "edges": edges,
        **extra,
    }
    return Fleet(parse_scenario(data, "t.toml"), seed=1)


def run_until(fleet: Fleet, t: float, dt: float = 2.0) -> None:
    while fleet.time < t - 1e-9:
        fleet.step(min(dt, t - fleet.time))


def test_builtin_scenarios_load() -> None:
    names = builtin_names()
    for name in ("tutorial", "aws-us-east-1-2025", "crowdstrike-2024", "att-2024"):
        assert name in names
        assert load_scenario(name).name == name


@pytest.mark.parametrize(("policy", "factor"), [("off", 1.0), ("capped", 1.6), ("unbounded", 1.9)])
def test_retries_amplify_load(policy: str, factor: float) -> None:
    fleet = small(
        {
            "front": {
                "capacity": 10000,
                "demand": 100,
                "retry_policy": policy,
                "client_retry": "off",
            },
            "back": {"capacity": 10000},
        },
        [{"from": "front", "to": "back"}],
    )
    fleet.inject("back", "error", fraction=0.5)
    run_until(fleet, 120)
    offered = fleet.services["back"].stats["offered"]
    # 100 req/s reach the backend; retries of the failing half come on top.
    assert offered == pytest.approx(100 * factor, rel=0.15)
    if policy == "off":
        assert offered < 110


def test_circuit_breaker_stops_a_cascade() -> None:
    services = {
        "web": {"capacity": 2000, "base_latency": 0.01, "demand": 300},
        "api": {"capacity": 1000, "base_latency": 0.02, "timeout": 2.0},
        "recs": {"capacity": 1000, "base_latency": 0.02},
    }
    edges = [
        {"from": "web", "to": "api"},
        {"from": "api", "to": "recs", "critical": False},
    ]
    hurt = small(services, edges)
    hurt.inject("recs", "hang")
    run_until(hurt, 120)
    # Workers stuck waiting on the hanging recommendations starve api, then web.
    assert hurt.health("api") in ("hang", "error")
    assert hurt.health("web") in ("hang", "error")

    saved = small(services, edges)
    saved.inject("recs", "hang")
    saved.apply_control("api", "breaker_recs", True, reason="recs hangs")
    run_until(saved, 120)
    assert saved.health("api") == "ok"
    assert saved.health("web") == "ok"
    assert saved.services["recs"].stats["offered"] == 0.0


def test_failover_moves_traffic() -> None:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"))
    run_until(fleet, 1800)
    assert fleet.health("checkout") != "ok"
    lambda_before = fleet.services["lambda"].stats["offered"]
    fleet.apply_control("checkout", "failover", "us-west-2", reason="us-east-1 is down")
    run_until(fleet, 1800 + 1200)
    metrics = fleet.metrics("checkout")
    assert metrics["site"] == "us-west-2"
    # Failover has a cost: the other region has half the room and every request pays the
    # trip back to the data; hit by the retry storm while cold, checkout collapses there.
    assert metrics["effective_capacity_rps"] < 0.5 * 1500
    assert fleet.health("checkout") != "ok"
    # Checkout's calls no longer reach us-east-1's Lambda.
    assert fleet.services["lambda"].stats["offered"] < lambda_before - 200


def test_tutorial_cache_failover_recovers_web() -> None:
    broken = Fleet(load_scenario("tutorial"))
    run_until(broken, 300)
    assert broken.health("web") != "ok"
    assert broken.health("db") != "ok"

    fixed = Fleet(load_scenario("tutorial"))
    run_until(fixed, 120)
    fixed.apply_control("cache", "failover", "replica")
    run_until(fixed, 300)
    assert fixed.health("web") == "ok"
    assert fixed.services["db"].stats["offered"] < 100


@pytest.mark.slow
def test_aws_without_mitigation_stays_broken_for_its_history() -> None:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"))
    run_until(fleet, 14 * HOUR + 5 * 60, dt=10)  # 13:50 PDT, when EC2 had fully recovered
    assert fleet.dns_lookup("dynamodb.us-east-1.sim") == []
    for name in ("lambda", "sts", "checkout", "dwfm", "ec2-launch"):
        assert fleet.health(name) != "ok", name
    assert fleet.metrics("dwfm")["healthy_fraction"] < 0.01
    kinds = [e.kind for e in fleet.events]
    assert "fault" in kinds


def test_aws_paused_dns_automation_prevents_the_race() -> None:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"))
    fleet.apply_control("dynamodb", "dns_automation", False)
    run_until(fleet, 3600, dt=10)
    assert fleet.dns_lookup("dynamodb.us-east-1.sim") == ["10.0.1.10"]
    assert fleet.health("lambda") == "ok"
    assert any("did not happen" in e.title for e in fleet.events)


@pytest.mark.slow
def test_aws_dns_fix_after_negative_ttl() -> None:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"))
    run_until(fleet, AWS_FIX, dt=10)
    fleet.apply_control("dynamodb", "dns_record", "restored")
    assert fleet.dns_lookup("dynamodb.us-east-1.sim") == ["10.0.1.10"]
    run_until(fleet, AWS_FIX + 600, dt=10)
    assert fleet.health("lambda") != "ok"  # resolvers still cache the empty answer
    run_until(fleet, AWS_FIX + 1800, dt=10)
    assert fleet.health("lambda") == "ok"


@pytest.mark.slow
def test_crowdstrike_without_mitigation_stays_broken() -> None:
    fleet = Fleet(load_scenario("crowdstrike-2024"))
    run_until(fleet, 6 * 24 * HOUR, dt=60)
    assert fleet.metrics("windows-fleet")["healthy_fraction"] < 0.1
    assert fleet.health("airline-checkin") != "ok"
    assert fleet.health("hospital-ehr") != "ok"


@pytest.mark.slow
def test_crowdstrike_remediation_needs_rollback_first() -> None:
    futile = Fleet(load_scenario("crowdstrike-2024"))
    run_until(futile, 2 * HOUR, dt=30)
    futile.apply_control("windows-fleet", "remediation_rate", 1200.0)
    run_until(futile, 26 * HOUR, dt=60)
    # Fixed hosts fetch the bad file again and crash: no progress.
    assert futile.metrics("windows-fleet")["healthy_fraction"] < 0.1

    staged = Fleet(load_scenario("crowdstrike-2024"))
    run_until(staged, 2 * HOUR, dt=30)
    staged.apply_control("content-pipeline", "rollback", True, reason="revert Channel File 291")
    staged.apply_control("windows-fleet", "remediation_rate", 1200.0)
    run_until(staged, 26 * HOUR, dt=60)
    # Bounded by the responders and tools on hand: they ramp up over two days.
    metrics = staged.metrics("windows-fleet")
    assert metrics["remediated_per_min"] < 1200.0
    assert 0.05 < metrics["healthy_fraction"] < 0.3  # slow, staged
    run_until(staged, 4 * 24 * HOUR, dt=60)
    assert staged.health("airline-checkin") != "ok"  # days, not hours
    run_until(staged, 6 * 24 * HOUR, dt=60)
    assert staged.health("airline-checkin") == "ok"


@pytest.mark.slow
def test_att_rollback_then_paced_registration() -> None:
    unpaced = Fleet(load_scenario("att-2024"))
    run_until(unpaced, 2 * HOUR + 15 * 60, dt=10)
    assert unpaced.health("core-network") == "refuse"
    unpaced.apply_control("core-network", "rollback", True)
    run_until(unpaced, 14 * HOUR, dt=20)
    assert unpaced.health("core-network") == "ok"
    # Every device retries at once: registration stays in congestive collapse (the few
    # fast attempts of a varied mix get through: a trickle, not a recovery).
    assert unpaced.metrics("device-registration")["healthy_fraction"] < 0.1
    assert unpaced.health("voice") != "ok"

    paced = Fleet(load_scenario("att-2024"))
    run_until(paced, 2 * HOUR + 15 * 60, dt=10)
    paced.apply_control("core-network", "rollback", True)
    paced.apply_control("device-registration", "rate_limit", 3300.0)
    run_until(paced, 12 * HOUR, dt=20)
    assert paced.health("voice") != "ok"  # history: at least 12 hours in all
    run_until(paced, 14 * HOUR, dt=20)
    assert paced.health("voice") == "ok"
    assert paced.health("e911") == "ok"


@pytest.mark.slow
def test_att_without_mitigation_stays_down() -> None:
    fleet = Fleet(load_scenario("att-2024"))
    run_until(fleet, 13 * HOUR, dt=20)
    assert fleet.health("core-network") == "refuse"
    assert fleet.health("e911") != "ok"


def _trace(seed: int, actions: bool = True) -> list[tuple[Any, ...]]:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"), seed=seed)
    rows = []
    for i in range(200):
        if actions and i == 50:
            fleet.apply_control("dynamodb", "dns_record", "restored")
            fleet.apply_control("dwfm", "rate_limit", 120.0)
        fleet.step(30)
        rows.append(fleet.trace_row())
    return rows


@pytest.mark.slow
def test_same_seed_and_inputs_give_identical_trace() -> None:
    assert _trace(1) == _trace(1)
    assert _trace(1) != _trace(2)


def test_bad_control_values_are_refused_and_change_nothing() -> None:
    fleet = Fleet(load_scenario("tutorial"))
    before = fleet.controls()
    with pytest.raises(ControlError, match="between 0 and 100"):
        fleet.apply_control("web", "load_shed", 150)
    with pytest.raises(ControlError, match="one of primary, replica"):
        fleet.apply_control("cache", "failover", "tertiary")
    with pytest.raises(ControlError, match="true or false"):
        fleet.apply_control("web", "breaker_cache", "yes")
    with pytest.raises(ControlError, match="number"):
        fleet.apply_control("db", "rate_limit", "fast")
    with pytest.raises(UnknownControl):
        fleet.apply_control("web", "warp_drive", 1)
    with pytest.raises(UnknownControl):
        fleet.apply_control("nope", "load_shed", 1)
    assert fleet.controls() == before
    assert not [e for e in fleet.events if e.kind == "mitigation"]


def test_controls_have_contract_shape() -> None:
    fleet = Fleet(load_scenario("aws-us-east-1-2025"))
    controls = {f"{c['service']}/{c['control']}": c for c in fleet.controls()}
    for key in (
        "dynamodb/dns_record",
        "dynamodb/dns_automation",
        "ec2-launch/rate_limit",
        "dwfm/rate_limit",
        "nlb/health_check_removal",
        "lambda/retry_policy",
        "checkout/failover",
        "checkout/load_shed",
        "checkout/breaker_dynamodb",
        "checkout/capacity",
    ):
        assert key in controls, key
    assert controls["dynamodb/dns_record"]["dangerous"] is True
    assert controls["dynamodb/dns_record"]["choices"] == ["empty", "restored"]
    assert controls["lambda/retry_policy"]["choices"] == ["off", "capped", "backoff", "unbounded"]
    assert controls["checkout/failover"]["choices"] == ["us-east-1", "us-west-2"]
    assert set(controls["dwfm/rate_limit"]) == {
        "service",
        "control",
        "label",
        "kind",
        "value",
        "min",
        "max",
        "choices",
        "unit",
        "dangerous",
        "description",
    }


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"services": {"db": {"capacity": 0}}}, "t.toml: services.db.capacity: must be > 0"),
        ({"services": {"db": {"capacity": 5, "colour": 1}}}, "services.db.colour: unknown key"),
        ({"edges": [{"from": "db", "to": "nope"}]}, "edges[0].to: unknown service 'nope'"),
        (
            {"timeline": [{"at": "1x", "service": "db", "fault": "down", "title": "x"}]},
            "timeline[0].at: not a duration",
        ),
        (
            {"services": {"db": {"capacity": 5, "population": 10, "classes": {"a": 0.5}}}},
            "services.db.classes: shares must be > 0 and sum to 1",
        ),
        (
            {"services": {"db": {"capacity": 5, "recover_first": "vip"}}},
            "services.db.recover_first: no class 'vip'",
        ),
        (
            {
                "services": {"db": {"capacity": 5}, "web": {"capacity": 5}},
                "edges": [{"from": "web", "to": "db", "unit_class": "vip"}],
            },
            "edges[0].unit_class: 'db' has no class 'vip'",
        ),
    ],
)
def test_scenario_errors_name_file_and_key_path(patch: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {
        "name": "t",
        "title": "t",
        "description": "t",
        "duration": 60,
        "services": {"db": {"capacity": 5}},
    }
    data.update(patch)
    with pytest.raises(WarroomError) as info:
        parse_scenario(data, "t.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("t.toml: ")


def test_scenario_cycle_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "loop.toml"
    path.write_text(
        'name = "loop"\ntitle = "l"\ndescription = "l"\nduration = "1m"\n'
        "[services.a]\ncapacity = 1\n[services.b]\ncapacity = 1\n"
        '[[edges]]\nfrom = "a"\nto = "b"\n[[edges]]\nfrom = "b"\nto = "a"\n'
    )
    with pytest.raises(WarroomError, match=r"loop.toml: edges: dependencies form a cycle"):
        load_scenario(str(path))
    path.write_text("name = [")
    with pytest.raises(WarroomError, match=r"loop\.toml: invalid TOML"):
        load_scenario(str(path))


@pytest.mark.slow
def test_scale_scenario_generates_many_services() -> None:
    fleet = Fleet(load_scenario("scale-300"))
    assert len(fleet.services) == 300
    run_until(fleet, 30, dt=0.1)
    assert sum(fleet.health(n) == "ok" for n in fleet.services) == 300


def test_autoscaling_needs_launches() -> None:
    services = {
        "app": {
            "capacity": 100,
            "demand": 150,
            "client_retry": "off",
            "autoscale_max": 2.0,
            "autoscale_via": "launcher",
        },
        "launcher": {"capacity": 100, "demand": 10},
    }
    grows = small(services, [])
    run_until(grows, 900)
    assert grows.metrics("app")["autoscale"] > 1.5
    assert grows.health("app") == "ok"

    stuck = small(services, [])
    stuck.inject("launcher", "error")  # "insufficient capacity": no instances to scale onto
    run_until(stuck, 900)
    assert stuck.metrics("app")["autoscale"] < 1.01
    assert stuck.health("app") != "ok"


@pytest.mark.parametrize(
    ("control", "value", "goodput"),
    [
        (None, None, 0.0),
        ("rate_limit", 90.0, 90.0),
        ("load_shed", 40.0, 90.0),
        ("capacity", 200.0, 150.0),
    ],
)
def test_overload_collapses_unless_a_lever_is_pulled(
    control: str | None, value: float | None, goodput: float
) -> None:
    fleet = small({"api": {"capacity": 100, "demand": 150, "client_retry": "off"}}, [])
    if control is not None:
        fleet.apply_control("api", control, value)
    run_until(fleet, 300)
    stats = fleet.services["api"].stats
    # Overloaded, the queue fills until nearly every answer comes too late: goodput
    # collapses to the few fast requests of a varied mix (about a tenth of capacity).
    assert stats["goodput"] == pytest.approx(goodput, abs=5.0 if control else 15.0)
    if control is None:
        assert fleet.health("api") == "hang"
    else:
        assert stats["latency"] < 0.5


def test_timeline_becomes_the_event_feed_at_its_times() -> None:
    fleet = Fleet(load_scenario("att-2024"), seed=0)  # seed 0: the history as written
    run_until(fleet, 3 * HOUR, dt=7)
    faults = [e for e in fleet.events if e.kind == "fault"]
    assert faults[0].sim_time == 12 * 60  # 02:42 CST, as the scenario file says
    assert faults[0].service == "core-network"
    assert any(e.title.startswith("history: AT&T rolled back") for e in fleet.events)
    assert [e.seq for e in fleet.events] == list(range(1, len(fleet.events) + 1))


def test_lever_descriptions_speak_the_panels_words() -> None:
    """A description names values as the dialog and the panel do (on/off, none), not as
    JSON (true/false/null): one vocabulary per lever value."""
    import re

    json_words = re.compile(r"\b(true|false|null|True|False|None)\b")
    for name in builtin_names():
        for control in Fleet(load_scenario(name)).controls():
            description = control.get("description") or ""
            assert not json_words.search(description), (name, control["control"], description)
