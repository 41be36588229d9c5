"""Alert intake: the webhook receiver and the API poller feeding one `AlertBook` and a sink.

The console's session (and `warroom alerts serve`) builds one from `[alerts]` in
warroom.toml and hands it a sink that appends events to the incident log. Both sources run
on the caller's event loop; neither raises into it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from warroom.alerts.model import AlertBook, ApiAlert, WebhookPayload
from warroom.alerts.poller import AlertmanagerPoller
from warroom.alerts.receiver import WebhookReceiver
from warroom.config import AlertsSettings, split_host_port
from warroom.controls.model import MissingEnvError, substitute_env
from warroom.errors import WarroomError, os_reason
from warroom.events import AlertObserved

EventSink = Callable[[list[AlertObserved]], None]


def resolve_token(settings: AlertsSettings, env: Mapping[str, str] | None = None) -> str:
    """The webhook's bearer token from `token` (with `${ENV}`) or `token_file`."""
    if settings.token is not None:
        try:
            token, _ = substitute_env(settings.token, env)
        except MissingEnvError as exc:
            raise WarroomError(f"alerts.token: {exc}") from None
    else:
        assert settings.token_file is not None
        path = Path(settings.token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise WarroomError(f"alerts.token_file: {path}: cannot read ({exc})") from None
    if len(token) < 16:
        raise WarroomError("alerts: the token must be at least 16 characters")
    return token


class AlertIntake:
    """Receiver + poller + book: every alert change becomes one `AlertObserved` on `sink`."""

    def __init__(
        self,
        settings: AlertsSettings,
        sink: EventSink,
        *,
        known_services: Iterable[str] = (),
        seed: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        host, port = split_host_port(settings.listen, any_port=True)
        self.settings = settings
        self.book = AlertBook(settings.service_labels, known_services)
        if seed:
            self.book.seed(seed)
        self._sink = sink
        self.receiver = WebhookReceiver(
            resolve_token(settings, env),
            self._on_webhook,
            host=host,
            port=port,
            path=settings.path,
            max_body=settings.max_body,
        )
        self.poller: AlertmanagerPoller | None = None
        if settings.alertmanager:
            self.poller = AlertmanagerPoller(
                settings.alertmanager,
                self._on_api,
                interval=settings.poll_interval,
                client=client,
            )

    async def start(self) -> None:
        try:
            await self.receiver.start()
        except OSError as exc:
            raise WarroomError(
                f"alerts.listen: cannot listen on {self.settings.listen}: {os_reason(exc)}"
            ) from None
        if self.poller is not None:
            await self.poller.start()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
        await self.receiver.stop()

    async def __aenter__(self) -> AlertIntake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _emit(self, events: list[AlertObserved]) -> None:
        if events:
            self._sink(events)

    def _on_webhook(self, payload: WebhookPayload) -> None:
        self._emit(self.book.from_webhook(payload))

    def _on_api(self, alerts: list[ApiAlert], asked_at: float) -> None:
        self._emit(self.book.from_api(alerts, asked_at))
