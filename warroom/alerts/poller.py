"""Read Alertmanager's `/api/v2/alerts` on a schedule: the truth a webhook cannot tell.

A silenced alert sends no "resolved" webhook, a webhook lost while warroom was down is never
re-sent before `repeat_interval`; the API lists what is firing (and what is silenced) now.
A failed poll is logged and changes nothing: alerts are never resolved because the API was
unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import httpx

from warroom.alerts.model import ApiAlert, PayloadError, parse_api_alerts

log = logging.getLogger("warroom.alerts")

#: The API answer is read at most this far (a few thousand alerts).
MAX_API_BODY = 16 * 1024 * 1024
DEFAULT_INTERVAL = 15.0


class PollError(Exception):
    """One line: why this poll failed."""


async def fetch_alerts(
    client: httpx.AsyncClient, base_url: str, timeout: float = 5.0
) -> list[ApiAlert]:
    """One `GET /api/v2/alerts`, bounded and with a deadline; `PollError` when it fails."""
    url = base_url.rstrip("/") + "/api/v2/alerts"
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url, timeout=timeout) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_API_BODY:
                        raise PollError(f"{url}: answer over {MAX_API_BODY} bytes")
                    chunks.append(chunk)
                status = response.status_code
    except TimeoutError:
        raise PollError(f"{url}: timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise PollError(f"{url}: {type(exc).__name__}: {exc}"[:300]) from None
    if status != 200:
        raise PollError(f"{url}: HTTP {status}")
    try:
        return parse_api_alerts(b"".join(chunks))
    except PayloadError as exc:
        raise PollError(f"{url}: {exc}") from None


class AlertmanagerPoller:
    """Calls `on_alerts(alerts, asked_at)` after each good poll, every `interval` seconds.

    `asked_at` is `time.monotonic()` when the request went out.
    """

    def __init__(
        self,
        base_url: str,
        on_alerts: Callable[[list[ApiAlert], float], None],
        *,
        interval: float = DEFAULT_INTERVAL,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url
        self.interval = interval
        self.timeout = timeout
        self.polls = 0
        #: The last poll's problem ("" after a good poll), for a status line.
        self.last_error = ""
        self._on_alerts = on_alerts
        self._client = client
        self._own_client = client is None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        self._task = asyncio.create_task(self._loop(), name="alertmanager-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def poll_soon(self) -> None:
        """Poll now rather than at the next tick (after a webhook, after a silence change)."""
        self._wake.set()

    async def poll_once(self) -> bool:
        """One poll; True when it succeeded and `on_alerts` was called."""
        assert self._client is not None, "start() first"
        asked_at = time.monotonic()
        try:
            alerts = await fetch_alerts(self._client, self.base_url, self.timeout)
        except PollError as exc:
            if str(exc) != self.last_error:
                log.warning("alertmanager poll failed: %s", exc)
            self.last_error = str(exc)
            return False
        self.last_error = ""
        self.polls += 1
        try:
            self._on_alerts(alerts, asked_at)
        except Exception:
            log.exception("alertmanager poll: handling the alerts failed")
        return True

    async def _loop(self) -> None:
        while True:
            await self.poll_once()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
