"""Deterministic mitigation-panel data for snapshots and screenshots: checkout's levers with
fixed values, a change with a pending auto-revert and a failed change in the fixture log.

No I/O happens: the levers point at a closed port and the panel's periodic re-read is off,
so only what is given here is shown.
"""

from __future__ import annotations

from typing import Any

import httpx
from tui_harness import ALICE, BOB, settle, ts

from warroom import events as ev
from warroom.controls.client import SimApplier
from warroom.controls.model import ControlSpec
from warroom.controls.service import ControlService
from warroom.tui.widgets.control_panel import ControlPanel

CHECKOUT_LEVERS = [
    ControlSpec(
        service="checkout",
        control="failover",
        label="Failover",
        kind="choice",
        choices=["us-east-1", "us-west-2"],
        dangerous=True,
        description="Serve checkout from us-west-2 (starts cold; warms up over 15 minutes).",
    ),
    ControlSpec(service="checkout", control="load_shed", label="Load shed", kind="level", unit="%"),
    ControlSpec(
        service="checkout",
        control="rate_limit",
        label="Rate limit",
        kind="rate",
        max=15000,
        unit="req/s",
    ),
    ControlSpec(
        service="checkout",
        control="breaker_dynamodb",
        label="Breaker to dynamodb",
        kind="toggle",
    ),
    ControlSpec(
        service="checkout",
        control="retry_policy",
        label="Retry policy",
        kind="choice",
        choices=["off", "capped", "backoff", "unbounded"],
    ),
]

VALUES: dict[str, Any] = {
    "checkout/failover": "us-east-1",
    "checkout/load_shed": 30,
    "checkout/rate_limit": "none",
    "checkout/breaker_dynamodb": False,
    "checkout/retry_policy": "capped",
}


def control_events() -> list[ev.BaseEvent]:
    """A shed with a 15-minute auto-revert (applied) and a failover that failed."""
    events: list[ev.BaseEvent] = [
        ev.ControlRequested(
            request_id="chg-0a1b2c3d4e",
            service="checkout",
            control="load_shed",
            from_value=0,
            to_value=30,
            reason="shed bot traffic while DynamoDB is out",
            auto_revert_s=900,
        ).model_copy(update={"ts": ts(80), "actor": ALICE}),
        ev.ControlApplied(
            request_id="chg-0a1b2c3d4e",
            service="checkout",
            control="load_shed",
            value=30,
            response="HTTP 200",
        ).model_copy(update={"ts": ts(80.02), "actor": ALICE}),
        ev.ControlRequested(
            request_id="chg-5f6a7b8c9d",
            service="checkout",
            control="failover",
            from_value="us-east-1",
            to_value="us-west-2",
            reason="serve from the west",
        ).model_copy(update={"ts": ts(84), "actor": BOB}),
        ev.ControlFailed(
            request_id="chg-5f6a7b8c9d",
            service="checkout",
            control="failover",
            error="timed out after 5s (127.0.0.1:7411)",
            value="us-east-1",
        ).model_copy(update={"ts": ts(84.1), "actor": BOB}),
    ]
    return events


def checkout_controls(app: Any) -> ControlService:
    client = httpx.AsyncClient(trust_env=False)
    appliers = [
        SimApplier(spec, "http://127.0.0.1:9", "/nonexistent/token", client)
        for spec in CHECKOUT_LEVERS
    ]
    session = app.session
    return ControlService(
        appliers, session.recorder, values=VALUES, client=client, **session.control_options()
    )


async def show_checkout_levers(pilot: Any, highlight: str = "load_shed") -> ControlPanel:
    """Log the fixture changes, attach the levers, select checkout and focus the panel."""
    app = pilot.app
    app.ingest(app.incident_log.append_many(control_events()))
    app.render_state()
    panel = app.main_screen.query_one(ControlPanel)
    app.lever_refresh_s = None
    app.session.use_controls(checkout_controls(app))
    table = app.main_screen.view.probe_table
    table.move_cursor(row=table.get_row_index("checkout"))
    await settle(pilot, until=lambda: bool(panel.shown_keys))
    panel.option_list.focus()
    panel.option_list.highlighted = panel.shown_keys.index(f"checkout/{highlight}")
    await settle(pilot)
    return panel
