"""The session's alert intake: `[alerts]` run as a session job, its alerts logged as events.

The webhook receiver and the Alertmanager poller run on the console's loop for as long as the
session does; every alert change goes through the session's machine-append path, so the
alerts pane, the header count and the runbook suggestions all come from the log. What the
responder must know of the intake itself (refused webhooks, a failing poll) is `intake_status`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from warroom.alerts.silences import SilenceError, silence_control_for
from warroom.config import AlertsSettings
from warroom.controls.model import ControlSpec
from warroom.controls.service import ControlService
from warroom.errors import WarroomError
from warroom.events import AlertObserved
from warroom.state import AlertView

if TYPE_CHECKING:
    from warroom.alerts.intake import AlertIntake
    from warroom.session.core import ConsoleSession
    from warroom.session.levers import SessionJob


@dataclass(frozen=True, slots=True)
class IntakeStatus:
    """What the alerts pane's status line says of the intake (all text untrusted)."""

    url: str = ""
    accepted: int = 0
    rejected: int = 0
    last_rejection: str = ""
    poll_error: str = ""


def intake_status(intake: AlertIntake | None) -> IntakeStatus | None:
    """The receiver's counts and last refusal, and the poller's error (None: no intake)."""
    if intake is None:
        return None
    receiver = intake.receiver
    last = receiver.rejections[-1] if receiver.rejections else None
    error = intake.poller.last_error if intake.poller is not None else ""
    return IntakeStatus(
        url=receiver.url if receiver.port else "",
        accepted=receiver.accepted,
        rejected=receiver.rejected,
        last_rejection=f"{last.status} {last.reason} (from {last.peer})" if last else "",
        poll_error=error,
    )


def alert_intake(settings: AlertsSettings, known_services: Iterable[str] = ()) -> SessionJob:
    """The job that runs the webhook receiver (and the API poll) until the session closes."""
    services = tuple(known_services)

    async def alert_intake_job(session: ConsoleSession) -> None:
        def sink(events: list[AlertObserved]) -> None:
            session.record_machine(events)

        # imported here: its web server (aiohttp) loads only when [alerts] is configured
        from warroom.alerts.intake import AlertIntake

        intake = AlertIntake(
            settings,
            sink,
            known_services=services,
            seed=session.state.alerts,
        )
        session.alert_intake = intake
        await intake.start()
        try:
            await asyncio.Event().wait()
        finally:
            await intake.stop()

    return alert_intake_job


def silence_lever(session: ConsoleSession, alert: AlertView) -> ControlSpec:
    """The silence lever for one alert (matching its name, service and instance), attached to
    the session's levers; pulling it goes through the logged change flow like any other."""
    intake = session.alert_intake
    alertmanager = intake.settings.alertmanager if intake is not None else None
    if not alertmanager:
        raise WarroomError("no Alertmanager to silence in: set [alerts] alertmanager = URL")
    try:
        config = silence_control_for(alert.labels, alertmanager, service=alert.service)
    except SilenceError as exc:
        raise WarroomError(f"cannot silence {alert.alertname}: {exc}") from None
    controls = session.controls
    if controls is None:
        controls = ControlService.from_config(
            [config], session.recorder, **session.control_options()
        )
        session.use_controls(controls)
        session.add_job("alert silences", partial(session.run_controls, controls))
    return controls.add_config(config)
