"""The Alertmanager webhook endpoint: `POST /alerts` with a bearer token, bounded bodies.

Everything a sender can get wrong is answered with a 4xx and one logged line naming the
reason and the peer (wrong or missing token 401, not POST 405, body over the limit 413,
not JSON or not Alertmanager's shape 400); nothing raises into the caller. Accepted payloads
go to `on_payload`, which must be quick (it runs on the server's loop).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from warroom.alerts.model import PayloadError, WebhookPayload, parse_webhook

log = logging.getLogger("warroom.alerts")

#: A webhook body larger than this is refused (Alertmanager's are a few KiB per alert).
MAX_BODY = 1024 * 1024
DEFAULT_PATH = "/alerts"
#: Rejections remembered for a status line.
REJECTIONS_KEPT = 20


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """One terminal-safe line of untrusted text: control characters shown as `\\xNN`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused request: HTTP status, reason, and the peer it came from."""

    status: int
    reason: str
    peer: str


class WebhookReceiver:
    """An aiohttp server for Alertmanager's webhook on `host:port` (port 0 = any free)."""

    def __init__(
        self,
        token: str,
        on_payload: Callable[[WebhookPayload], None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = DEFAULT_PATH,
        max_body: int = MAX_BODY,
    ) -> None:
        if not token:
            raise ValueError("the webhook receiver needs a token")
        self.host = host
        self.port = port
        self.path = path
        self.max_body = max_body
        self.accepted = 0
        self.rejected = 0
        self.rejections: deque[Rejection] = deque(maxlen=REJECTIONS_KEPT)
        self._expected = f"Bearer {token}".encode()
        self._on_payload = on_payload
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    def build_app(self) -> web.Application:
        # aiohttp's own limit is a backstop; `_read_bounded` answers first, with a reason.
        app = web.Application(client_max_size=self.max_body + 1)
        app.router.add_route("*", self.path, self._handle)
        app.router.add_get("/-/healthy", self._healthy)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        server: Any = site._server
        sockets = server.sockets if server is not None else []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def _reject(self, request: web.Request, status: int, reason: str) -> web.Response:
        peer = request.remote or "?"
        self.rejected += 1
        self.rejections.append(Rejection(status, reason, peer))
        log.warning("alert webhook from %s rejected (%d): %s", peer, status, printable(reason))
        return web.json_response({"error": reason}, status=status)

    async def _read_bounded(self, request: web.Request) -> bytes | None:
        length = request.content_length
        if length is not None and length > self.max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return self._reject(request, 405, f"method {request.method[:10]} (only POST)")
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not given:
            return self._reject(request, 401, "no Authorization header")
        if not hmac.compare_digest(given, self._expected):
            return self._reject(request, 401, "wrong token")
        body = await self._read_bounded(request)
        if body is None:
            return self._reject(request, 413, f"body over {self.max_body} bytes")
        try:
            payload = parse_webhook(body)
        except PayloadError as exc:
            return self._reject(request, 400, str(exc))
        try:
            self._on_payload(payload)
        except Exception:
            # The sink failing (a full disk) must not look like the sender's fault, nor stop us.
            log.exception("alert webhook: handling the payload failed")
            return web.json_response({"error": "internal error"}, status=500)
        self.accepted += 1
        return web.json_response({"accepted": len(payload.alerts)})
