"""Levers of the real simulated fleet, pulled through ControlService over its admin API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from warroom import events as ev
from warroom.controls.client import ControlError
from warroom.controls.service import ControlService
from warroom.log.store import IncidentLog
from warroom.sim.server import running_fleet
from warroom.state import fold

HOUR = 3600.0
#: 02:25 PDT, when AWS restored the DynamoDB record by hand (simulated seconds).
FIX_AT = 2 * HOUR + 40 * 60
#: How long after the fix each run is watched for recovery (simulated).
WATCH = 8 * HOUR  # throttled: back ~4.5 h after the fix; DNS alone: collapsed all day
SPEED = 8000.0

MITIGATIONS: list[tuple[str, str, Any, str]] = [
    ("dwfm", "rate_limit", 250, "throttle lease re-establishment so DWFM can drain"),
    # Below what Network Manager propagates, above the new demand: the backlog drains.
    ("ec2-launch", "rate_limit", 100, "throttle launches while the backlog drains"),
    ("nlb", "health_check_removal", False, "hold off removing capacity on flapping checks"),
]


async def _drill(tmp_path: Path, name: str, throttle: bool) -> dict[str, Any]:
    """One run: fix DNS (plus the throttles) at FIX_AT, then watch for recovery."""
    log = IncidentLog.open(tmp_path / f"{name}.jsonl")
    async with running_fleet("aws-us-east-1-2025", speed=1e-6, seed=7) as fleet:
        server, model = fleet.server, fleet.model
        server.paused = True
        while model.time < FIX_AT - 1e-9:  # the same state at the fix in both runs
            model.step(min(600.0, FIX_AT - model.time))
        controls = await ControlService.for_sim(
            fleet.admin_url, fleet.token_path, log.append, actor="ana@host", effect_after=0.1
        )
        async with controls:
            pulled = [("dynamodb", "dns_record", "restored", "fix the emptied DNS record")]
            if throttle:
                pulled += MITIGATIONS
            outcomes = []
            for service, control, value, reason in pulled:
                confirm = service if controls.spec(service, control).dangerous else None
                outcomes.append(
                    await controls.request_change(service, control, value, reason, confirm=confirm)
                )
            await controls.wait_for_effects()
        server.speed, server.paused = SPEED, False
        recovered_at: float | None = None
        while model.time < FIX_AT + WATCH:
            await asyncio.sleep(0.05)
            if model.all_ok() and recovered_at is None:
                recovered_at = model.time
            if recovered_at is not None and model.time - recovered_at > 1800:
                break
        server.paused = True
        result = {
            "outcomes": outcomes,
            "recovered_after": None if recovered_at is None else recovered_at - FIX_AT,
            "unhealthy": sorted(n for n in model.services if model.health(n) != "ok"),
            "dwfm_backlog": model.services["dwfm"].pending,
            "token": fleet.token,
        }
    log.close()
    result["events"] = list(IncidentLog.open(tmp_path / f"{name}.jsonl", readonly=True).read())
    result["text"] = (tmp_path / f"{name}.jsonl").read_text()
    return result


@pytest.mark.slow
async def test_aws_drill_throttled_recovery_beats_a_dns_fix_alone(tmp_path: Path) -> None:
    throttled, dns_only = await asyncio.gather(
        _drill(tmp_path, "throttled", True), _drill(tmp_path, "dns-only", False)
    )
    assert all(o.ok for o in throttled["outcomes"] + dns_only["outcomes"])
    # With the throttles the fleet is healthy within the watch; the DNS fix alone leaves
    # DWFM in congestive collapse for all of it (same seed, same state at the fix).
    assert throttled["recovered_after"] is not None, throttled["unhealthy"]
    assert throttled["recovered_after"] < WATCH
    assert dns_only["recovered_after"] is None
    assert "dwfm" in dns_only["unhealthy"] and throttled["unhealthy"] == []
    assert throttled["dwfm_backlog"] < dns_only["dwfm_backlog"]

    events = [e for e in throttled["events"] if e.kind != "control_effect"]
    expected = [("dynamodb", "dns_record", "restored")] + [(s, c, v) for s, c, v, _ in MITIGATIONS]
    assert [e.kind for e in events] == ["control_requested", "control_applied"] * len(expected)
    for (service, control, value), requested, applied in zip(
        expected, events[0::2], events[1::2], strict=True
    ):
        assert isinstance(requested, ev.ControlRequested)
        assert isinstance(applied, ev.ControlApplied)
        assert (requested.service, requested.control, requested.to_value) == (
            service,
            control,
            value,
        )
        assert applied.request_id == requested.request_id and applied.value == value
    assert events[0].from_value == "empty"
    assert events[2].from_value == "none"  # no rate limit before the throttle
    # The log reads the values as the panel does: the unit is recorded with the change.
    assert events[2].summary().startswith("dwfm.rate_limit: no limit -> 250 req/s requested")
    assert events[3].summary() == "dwfm.rate_limit = 250 req/s applied"
    assert events[0].summary().startswith("dynamodb.dns_record: empty -> restored requested")
    state = fold(throttled["events"])
    view = state.control("ec2-launch", "rate_limit")
    assert view is not None and view.value == 100 and view.last_changed_by == "ana@host"
    for run in (throttled, dns_only):
        assert run["token"] not in run["text"]


async def test_sim_lever_refusals_and_a_bad_token(tmp_path: Path) -> None:
    log = IncidentLog.open(tmp_path / "incident.jsonl")
    async with running_fleet("tutorial", speed=1.0, seed=1) as fleet:
        controls = await ControlService.for_sim(
            fleet.admin_url, fleet.token_path, log.append, actor="ana@host", effect_after=0.05
        )
        async with controls:
            assert "cache/failover" in {s.key for s in controls.specs()}
            with pytest.raises(ControlError, match="between 0 and 100"):
                await controls.request_change("web", "load_shed", 250, "too much")
            ok = await controls.request_change("web", "load_shed", 30, "shed")
            assert ok.ok and fleet.model.control("web", "load_shed")["value"] == 30
            relaxed = await controls.request_change("db", "rate_limit", "none", "no limit")
            assert relaxed.ok and relaxed.value == "none"
            fleet.token_path.write_text("not-the-token-at-all\n")
            refused = await controls.request_change("web", "load_shed", 60, "more")
            assert not refused.ok
            assert refused.error.startswith("HTTP 401 (check the token)")
            assert refused.value == 30  # the true value, read back
            assert fleet.model.control("web", "load_shed")["value"] == 30
            token = fleet.token
    text = (tmp_path / "incident.jsonl").read_text()
    assert token not in text and "not-the-token-at-all" not in text
    log.close()
