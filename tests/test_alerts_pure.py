"""The pure parts around alerts: PromQL conditions, the fleet's exposition and rules, config
for [alerts] / [prometheus] / promql targets / silence levers, and runbook alert matching."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.prom_servers import find_binary
from warroom.config import parse_config
from warroom.errors import WarroomError
from warroom.probe.promql import (
    ConditionSyntaxError,
    evaluate_promql,
    parse_value_condition,
)
from warroom.runbooks.parser import parse_runbook
from warroom.runbooks.suggest import suggest_all, suggest_for_alerts
from warroom.sim.model import Fleet
from warroom.sim.prometheus import LatencyHistogram, alert_rules, render_metrics
from warroom.sim.scenario import load_scenario
from warroom.state import AlertView, ProbeView

# -- PromQL conditions -------------------------------------------------------------------


def vector(*values: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    result: list[dict[str, Any]] = [
        {"metric": {"__name__": "x", **(labels or {}), "i": str(i)}, "value": [1.0, v]}
        for i, v in enumerate(values)
    ]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(
    ("condition", "document", "ok", "reason"),
    [
        ("value < 0.01", vector("0.001"), True, "value 0.001 holds"),
        ("value < 0.01", vector("0.5"), False, '{i="0"} = 0.5 (expected all value < 0.01)'),
        ("value < 0.01", vector(), False, "no data"),
        ("value < 0.01", vector("NaN"), False, "= nan"),
        ("all values >= 1 and value < 5", vector("1", "4"), True, "2 series"),
        ("any value > 3", vector("1", "4"), True, "holds"),
        ("empty", vector(), True, "no series"),
        ("empty", vector("0", labels={"service": "cache"}), False, 'service="cache"'),
        (
            "value == 2",
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}},
            True,
            "value 2 holds",
        ),
        ("value > 0", {"status": "error", "error": "parse error\nat 3"}, False, "parse error at"),
        (
            "value > 0",
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            False,
            "expected an instant vector or scalar",
        ),
        ("value > 0", ["garbage"], False, "not a JSON object"),
        ("value > 0", vector("lots"), False, "not a sample value"),
    ],
)
def test_promql_conditions(condition: str, document: Any, ok: bool, reason: str) -> None:
    result = evaluate_promql(parse_value_condition(condition), document, 3.0)
    assert (result.ok, result.latency_ms) == (ok, 3.0)
    assert reason in result.reason, result.reason


@pytest.mark.parametrize(
    "text", ["", "value", "value ~ 3", "rate(x) < 1", "value < 1 or value > 2"]
)
def test_bad_promql_conditions_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConditionSyntaxError, match=r"expected|empty condition"):
        parse_value_condition(text)


# -- config --------------------------------------------------------------------------------


def test_promql_targets_resolve_against_the_configured_prometheus() -> None:
    config = parse_config(
        {
            "prometheus": {"url": "http://127.0.0.1:9090/"},
            "targets": [
                {
                    "name": "errors",
                    "service": "checkout",
                    "promql": "sum(rate(e[1m]))",
                    "condition": "value < 0.01",
                },
                {
                    "name": "other",
                    "promql": "up == 0",
                    "condition": "empty",
                    "prometheus": "http://127.0.0.1:9091",
                },
            ],
        }
    )
    first, second = config.resolved_targets()
    assert (first.kind, first.address, first.prometheus_url, first.condition) == (
        "promql",
        "sum(rate(e[1m]))",
        "http://127.0.0.1:9090",
        "value < 0.01",
    )
    assert first.degraded_latency is None and second.prometheus_url == "http://127.0.0.1:9091"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"targets": [{"name": "a", "promql": "up"}]}, "targets[0].promql: no Prometheus to ask"),
        (
            {"prometheus": {"url": "x"}, "targets": []},
            "prometheus.url: not an http(s) URL",
        ),
        (
            {
                "prometheus": {"url": "http://p"},
                "targets": [{"name": "a", "promql": "up", "condition": "value ~ 1"}],
            },
            "targets[0].condition: cannot read 'value ~ 1'",
        ),
        (
            {"targets": [{"name": "a", "http": "http://x/", "condition": "value < 1"}]},
            "condition and prometheus are only for promql targets",
        ),
        ({"alerts": {"listen": "127.0.0.1:9095"}}, "alerts: give exactly one of token"),
        ({"alerts": {"listen": "localhost:9095", "token": "t"}}, "listen needs an IP address"),
        ({"alerts": {"token": "t", "path": "alerts"}}, "alerts.path: not a URL path"),
        ({"alerts": {"token": "t", "tokn_file": "x"}}, "unknown key (did you mean 'token_file'?)"),
    ],
)
def test_alert_and_promql_config_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(WarroomError) as info:
        parse_config(data, "warroom.toml")
    assert message in str(info.value), str(info.value)


def _silence_control(**changes: Any) -> dict[str, Any]:
    control = {
        "service": "cache",
        "control": "silence",
        "kind": "toggle",
        "apply": {"alertmanager": "http://127.0.0.1:9093", "matchers": {"service": "cache"}},
        "read": {"alertmanager": "http://127.0.0.1:9093"},
    }
    control.update(changes)
    return control


def test_silence_levers_are_toggles_read_back_from_alertmanager() -> None:
    config = parse_config({"controls": [_silence_control()]})
    assert config.controls[0].apply.duration == 3600.0  # type: ignore[union-attr]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "level"}, "a silence lever is a toggle, not level"),
        ({"read": {"url": "http://x/v"}}, "a silence lever reads back from Alertmanager too"),
        ({"apply": {"alertmanager": "http://a", "matchers": {}}}, "controls[0].apply.matchers"),
    ]
    for changes, message in cases:
        with pytest.raises(WarroomError) as info:
            parse_config({"controls": [_silence_control(**changes)]})
        assert message in str(info.value), str(info.value)


# -- the fleet in Prometheus's terms -------------------------------------------------------


def _fleet_metrics(service: str, seconds: float = 100.0) -> dict[str, Any]:
    fleet = Fleet(load_scenario("tutorial"), seed=1)
    fleet.step(seconds)
    return fleet.metrics(service)


def test_exposition_is_valid_prometheus_text(tmp_path: Path) -> None:
    promtool = find_binary("promtool")
    clock = iter([0.0, 2.0])
    histogram = LatencyHistogram(clock=lambda: next(clock))
    render_metrics(_fleet_metrics("db"), histogram)
    text = render_metrics(_fleet_metrics("db"), histogram).decode()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    base = 'service="db",region="local"'
    assert samples[f"warroom_sim_capacity_rps{{{base}}}"] > 0
    assert (
        samples[f'warroom_sim_health{{{base},state="ok"}}']
        + samples[f'warroom_sim_health{{{base},state="slow"}}']
        + samples[f'warroom_sim_health{{{base},state="error"}}']
        + samples[f'warroom_sim_health{{{base},state="hang"}}']
        == 1
    )
    served = _fleet_metrics("db")["served_rps"]
    count = samples[f"warroom_sim_request_duration_seconds_count{{{base}}}"]
    assert math.isclose(count, served * 2.0, rel_tol=0.01)  # two seconds between the scrapes
    assert samples[f'warroom_sim_request_duration_seconds_bucket{{{base},le="+Inf"}}'] == count


def test_label_values_are_escaped() -> None:
    text = render_metrics({"service": 'a"b\\c\nd', "region": "r", "queue": 1}).decode()
    assert 'warroom_sim_queue{service="a\\"b\\\\c\\nd",region="r"} 1' in text


@pytest.mark.parametrize("scenario", ["tutorial", "aws-us-east-1-2025", "crowdstrike-2024"])
def test_shipped_scenarios_rules_pass_promtool(scenario: str, tmp_path: Path) -> None:
    promtool = find_binary("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(alert_rules(load_scenario(scenario), for_s=30))
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "duplicate" not in checked.stderr


def test_sim_rules_cli_prints_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    from warroom.cli import main

    assert main(["sim", "rules", "tutorial", "--for", "5s"]) == 0
    out = capsys.readouterr().out
    assert out == alert_rules(load_scenario("tutorial"), for_s=5)
    assert main(["sim", "rules", "tutorial", "--for", "soon"]) == 1
    assert "--for: not a duration: 'soon'" in capsys.readouterr().err


# -- runbooks ----------------------------------------------------------------------------


RUNBOOK = """---
title: {title}
services: [{services}]
alerts: [{alerts}]
---
# x
"""


def _runbook(name: str, services: str, alerts: str) -> Any:
    runbook, problems = parse_runbook(
        RUNBOOK.format(title=name, services=services, alerts=alerts), Path(f"{name}.md")
    )
    assert runbook is not None and problems == []
    return runbook


def test_runbook_front_matter_names_alerts_and_bad_names_are_located() -> None:
    assert _runbook("a", "cache", "ServiceDown, cache:errors:ratio").alerts == [
        "ServiceDown",
        "cache:errors:ratio",
    ]
    runbook, problems = parse_runbook(
        RUNBOOK.format(title="b", services="x", alerts="9bad"), "b.md"
    )
    assert runbook is not None and runbook.alerts == []
    assert [str(p) for p in problems] == [
        "b.md:4: bad alert name '9bad' (Prometheus names: [A-Za-z_:][A-Za-z0-9_:]*)"
    ]


def _alert(name: str, service: str, status: str = "firing") -> AlertView:
    return AlertView(fingerprint=name + service, alertname=name, status=status, service=service)


def test_alerts_suggest_the_runbook_that_names_them_for_that_service() -> None:
    cache = _runbook("cache-failover", "cache, db", "ServiceDown")
    dns = _runbook("dns", "dynamodb", "ServiceDown")
    slow = _runbook("slow", "", "ServiceSlow")
    alerts = [_alert("ServiceDown", "cache"), _alert("ServiceSlow", "db", "suppressed")]
    ranked = suggest_for_alerts([dns, slow, cache], alerts)
    assert [(s.runbook.id, s.why) for s in ranked] == [
        ("cache-failover", "alert ServiceDown (cache) firing")
    ]
    assert suggest_for_alerts([cache], [_alert("ServiceDown", "cache", "resolved")]) == []
    probes = {"dynamodb": ProbeView(target="dynamodb", service="dynamodb", state="down")}
    both = suggest_all([dns, cache], probes, alerts)
    assert [s.runbook.id for s in both] == ["cache-failover", "dns"]  # alert match first


# -- promql checks over loopback -------------------------------------------------------------


async def test_promql_check_failures_are_short_reasons() -> None:
    import httpx
    from aiohttp import web

    from tests.prom_servers import free_port
    from warroom.config import Defaults, TargetConfig
    from warroom.probe.promql import check_promql

    async def garbage(request: web.Request) -> web.Response:
        assert request.query["query"] == "up == 0"
        return web.Response(text="<html>proxy error</html>", status=502)

    app = web.Application()
    app.router.add_get("/api/v1/query", garbage)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def target(url: str) -> Any:
        config = TargetConfig(name="q", promql="up == 0", condition="empty", timeout=1)
        return config.resolve(Defaults(), url)

    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            bad = await check_promql(client, target(f"http://127.0.0.1:{port}"))
            refused = await check_promql(client, target(f"http://127.0.0.1:{free_port()}"))
    finally:
        await runner.cleanup()
    assert (bad.ok, bad.reason) == (False, "HTTP 502: answer is not JSON")
    assert (refused.ok, refused.reason) == (False, "connection refused")


def test_promql_verifications_parse_and_evaluate_like_targets() -> None:
    from warroom.probe.promql import verification_targets
    from warroom.runbooks.conditions import ConditionError, evaluate, parse_condition

    condition = parse_condition(
        'web is up and promql sum(rate(e{a="1"}[1m])) and on() vector(1) < 0.01'
    )
    web = condition.clauses[0]
    (promql,) = condition.promql()
    assert str(web) == "web is up"
    assert (promql.query, promql.condition) == (
        'sum(rate(e{a="1"}[1m])) and on() vector(1)',
        "all value < 0.01",
    )
    name = condition.promql()[0].target
    assert name.startswith("promql:")
    up = ProbeView(target="web", state="up")
    assert evaluate(condition, {"web": up}) is None  # not probed yet: can't tell
    assert evaluate(condition, {"web": up, name: ProbeView(target=name, state="down")}) is False
    assert evaluate(condition, {"web": up, name: ProbeView(target=name, state="up")}) is True
    (target,) = verification_targets([condition, parse_condition(str(condition))])
    assert (target.name, target.promql, target.condition) == (
        name,
        promql.query,
        "all value < 0.01",
    )  # type: ignore[union-attr]
    config = parse_config(
        {
            "prometheus": {"url": "http://127.0.0.1:9090"},
            "targets": [target.model_dump(exclude_none=True)],
        }
    )
    assert config.resolved_targets()[0].kind == "promql"
    with pytest.raises(ConditionError, match="expected 'promql <query> <op> <number>'"):
        parse_condition("promql rate(x[1m])")
