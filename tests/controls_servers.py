"""Small real servers on 127.0.0.1 for the control tests: a flag store that can misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FlagServer:
    """A feature-flag store: `POST /flags/{name}` sets, `GET /flags/{name}` reads.

    `mode` makes it misbehave: "error" answers 500, "hang" never answers a POST, "hang_all"
    never answers anything, "lie" accepts a change but keeps the old value. Responses echo
    the Authorization header, as a careless real service might, to prove it is redacted.
    """

    token: str
    values: dict[str, Any] = field(default_factory=dict)
    mode: str = "ok"
    port: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base}/flags/{name}"


async def _hang() -> None:
    await asyncio.sleep(3600)


def _app(server: FlagServer) -> web.Application:
    async def read(request: web.Request) -> web.Response:
        if server.mode == "hang_all":
            await _hang()
        name = request.match_info["name"]
        if name not in server.values:
            return web.json_response({"error": f"no flag {name}"}, status=404)
        return web.json_response({"flag": {"name": name, "value": server.values[name]}})

    async def write(request: web.Request) -> web.Response:
        if server.mode in ("hang", "hang_all"):
            await _hang()
        auth = request.headers.get("Authorization", "")
        body = await request.json()
        server.posts.append({"body": body, "query": dict(request.query), "auth": auth})
        if server.mode == "error":
            return web.json_response({"error": f"flag store is read-only ({auth})"}, status=500)
        if auth != f"Bearer {server.token}":
            return web.json_response({"error": f"bad token {auth}"}, status=401)
        name = request.match_info["name"]
        if server.mode != "lie":
            server.values[name] = body["value"]
        return web.json_response({"ok": True, "seen_auth": auth})

    app = web.Application()
    app.router.add_get("/flags/{name}", read)
    app.router.add_post("/flags/{name}", write)
    return app


@contextlib.asynccontextmanager
async def flag_server(token: str, **values: Any) -> AsyncIterator[FlagServer]:
    """Serve a flag store on a free loopback port; hung handlers are cut off on exit."""
    server = FlagServer(token=token, values=dict(values))
    runner = web.AppRunner(_app(server), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()


def refused_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
