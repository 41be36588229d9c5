"""End to end with Debian's Prometheus and Alertmanager scraping the simulated fleet.

One Prometheus + Alertmanager pair serves the module (1 s scrape and evaluation). The
tutorial fleet runs at 60x: its cache primary dies 1.5 s in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.prom_servers import PromStack, prom_stack
from warroom import events as ev
from warroom.alerts.intake import AlertIntake
from warroom.config import AlertsSettings, Defaults
from warroom.controls.client import CallContext, SilenceApplier, load_sim_controls
from warroom.controls.model import ControlConfig
from warroom.probe.engine import ProbeEngine
from warroom.probe.promql import verification_targets
from warroom.runbooks.conditions import evaluate, parse_condition
from warroom.runbooks.library import load_library, shipped_dir
from warroom.runbooks.suggest import suggest_all
from warroom.sim.prometheus import alert_rules
from warroom.sim.scenario import load_scenario
from warroom.sim.server import RunningFleet, running_fleet
from warroom.state import IncidentState, active_alerts, firing_alert_count, fold

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    rules = alert_rules(load_scenario("tutorial"), for_s=0)
    with prom_stack(tmp_path_factory.mktemp("prom"), rules) as running:
        yield running


async def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.1)


def _cache_down(
    events: list[ev.BaseEvent], fleet: RunningFleet, status: str, source: str | None = None
) -> bool:
    """Whether this fleet's cache (not an earlier test's, by port) had a ServiceDown so."""
    instance = f"127.0.0.1:{fleet.service_ports['cache']}"
    return any(
        isinstance(e, ev.AlertObserved)
        and e.alertname == "ServiceDown"
        and e.labels.get("instance") == instance
        and e.status == status
        and (source is None or e.source == source)
        for e in events
    )


def _settings(stack: PromStack, alertmanager: str | None) -> AlertsSettings:
    return AlertsSettings(
        listen=f"127.0.0.1:{stack.webhook_port}",
        token=stack.webhook_token,
        alertmanager=alertmanager,
        poll_interval=0.5,
    )


async def test_fault_alert_runbook_lever_and_promql_verification(
    stack: PromStack, tmp_path: Path
) -> None:
    events: list[ev.BaseEvent] = []
    async with running_fleet("tutorial", speed=60.0, token_path=tmp_path / "tok") as fleet:
        stack.scrape(fleet.server.scrape_targets())
        # A step's `verify:` with a PromQL clause; its target is probed like any other.
        verification = parse_condition('promql up{job="warroom-sim", service="cache"} == 1')
        (target,) = verification_targets([verification])
        promql = target.model_copy(update={"interval": 0.5}).resolve(
            Defaults(), stack.prometheus.url
        )
        async with (
            AlertIntake(_settings(stack, None), events.extend, known_services=fleet.service_ports),
            ProbeEngine([promql], events.extend, sample_interval=0),
            httpx.AsyncClient(trust_env=False) as client,
        ):
            await wait_for(lambda: _cache_down(events, fleet, "firing", "webhook"), 20, "the page")
            state = fold(events)
            assert firing_alert_count(state) >= 1
            instance = f"127.0.0.1:{fleet.service_ports['cache']}"
            alert = next(
                a
                for a in active_alerts(state)
                if (a.alertname, a.labels.get("instance")) == ("ServiceDown", instance)
            )
            assert alert.labels["severity"] == "page"
            assert alert.annotations["summary"] == "cache refuses connections"
            assert alert.starts_at and alert.generator_url.startswith(stack.prometheus.url)
            assert state.timings.first_detection  # detection = the first alert
            shipped = shipped_dir()
            assert shipped is not None
            runbooks, _ = load_library([shipped])
            top = suggest_all(runbooks, state.probes, active_alerts(state))[0]
            assert top.runbook.id == "cache-failover", top
            await wait_for(
                lambda: evaluate(verification, fold(events).probes) is False, 10, "red promql"
            )

            controls = await load_sim_controls(fleet.admin_url, fleet.token_path, client)
            failover = next(a for a in controls.appliers if a.spec.key == "cache/failover")
            await failover.apply(CallContext("replica", reason="drill", actor="tester"))
            await wait_for(
                lambda: _cache_down(events, fleet, "resolved", "webhook"), 20, "resolved"
            )
            await wait_for(
                lambda: evaluate(verification, fold(events).probes) is True, 10, "green promql"
            )


async def test_silence_lever_and_api_poll_set_a_silenced_alert_right(
    stack: PromStack, tmp_path: Path
) -> None:
    events: list[ev.BaseEvent] = []
    am = stack.alertmanager.url
    lever = ControlConfig.model_validate(
        {
            "service": "cache",
            "control": "silence_down",
            "kind": "toggle",
            "apply": {
                "alertmanager": am,
                "matchers": {"alertname": "ServiceDown", "service": "cache"},
            },
            "read": {"alertmanager": am},
        }
    )
    async with (
        running_fleet("tutorial", speed=60.0, token_path=tmp_path / "tok") as fleet,
        httpx.AsyncClient(trust_env=False) as client,
    ):
        fleet.model.inject("cache", "refuse")  # both nodes: the cache is down from the start
        fleet.server.after_change()
        stack.scrape(fleet.server.scrape_targets())
        silence = SilenceApplier(lever, client)
        async with AlertIntake(
            _settings(stack, am), events.extend, known_services=fleet.service_ports
        ) as intake:
            await wait_for(lambda: _cache_down(events, fleet, "firing"), 20, "the page")
            assert await silence.read() is False
            revert_at = datetime.now(UTC) + timedelta(minutes=10)
            summary = await silence.apply(
                CallContext(
                    True, reason="known: cache rebuild", actor="alice@bastion", ends_at=revert_at
                )
            )
            assert summary.startswith("silence ") and "created" in summary
            assert await silence.read() is True
            listed = httpx.get(f"{am}/api/v2/silences", trust_env=False).json()
            mine = [s for s in listed if s["status"]["state"] == "active"]
            assert [(s["createdBy"], s["comment"]) for s in mine] == [
                ("alice@bastion", "known: cache rebuild")
            ]
            # The auto-revert is the silence's end, so Alertmanager ends it even without us.
            assert abs(ev.parse_ts(mine[0]["endsAt"]) - revert_at) < timedelta(seconds=1)
            later = revert_at + timedelta(minutes=20)
            assert "extended" in await silence.extend(later)
            (extended,) = await silence.current()
            assert abs(ev.parse_ts(extended.ends_at) - later) < timedelta(seconds=1)
            assert (extended.created_by, extended.comment) == (
                "alice@bastion",
                "known: cache rebuild",
            )
            assert intake.poller is not None
            await wait_for(
                lambda: _cache_down(events, fleet, "suppressed", "api"), 10, "suppressed"
            )
            silenced = fold(events)
            cache = f"127.0.0.1:{fleet.service_ports['cache']}"
            counted = [a.labels.get("instance") for a in active_alerts(silenced)]
            firing = [
                a.labels.get("instance")
                for a in active_alerts(silenced)
                if a.status == "firing" and a.alertname == "ServiceDown"
            ]
            assert cache in counted  # still shown, as silenced...
            assert cache not in firing  # ...and not counted in the header
            everything_firing = [a for a in active_alerts(silenced) if a.status == "firing"]
            assert firing_alert_count(silenced) == len(everything_firing)

            fleet.model.inject("cache", "recover")
            fleet.server.after_change()
            # Alertmanager sends no webhook for a silenced alert's end: only the API tells.
            await wait_for(lambda: _cache_down(events, fleet, "resolved", "api"), 20, "api resolve")
            assert not _cache_down(events, fleet, "resolved", "webhook")

            await silence.apply(CallContext(False, reason="revert", actor="alice@bastion"))
            assert await silence.read() is False
            states = {
                s["id"]: s["status"]["state"]
                for s in httpx.get(f"{am}/api/v2/silences", trust_env=False).json()
            }
            assert [states[s["id"]] for s in mine] == ["expired"]
        instance = cache
    final = fold(events, IncidentState()).alerts.values()
    cache_down = [
        a for a in final if (a.alertname, a.labels.get("instance")) == ("ServiceDown", instance)
    ]
    assert [a.status for a in cache_down] == ["resolved"]
