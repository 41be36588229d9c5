"""Client CPU per HTTP request for the transports the probe engine could use.

Starts a minimal keep-alive HTTP server in a separate process (so its CPU is not counted),
then for each client variant sends `--requests` GETs at `--concurrency` and divides this
process's CPU time by the request count. Prints one JSON line: ms of client CPU per request.

    .venv/bin/python tests/bench/bench_probe_transport.py [--requests 3000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from warroom.probe.checks import KEEPALIVE_EXTENSION, make_client

SERVER = r"""
import asyncio, sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            if b"connection: close" in head.lower():
                self.transport.write(CLOSE)
                self.transport.close()
                return
            self.transport.write(RESPONSE)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def drive(send: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> float:
    """CPU ms per request of `send`, run `requests` times with `concurrency` in flight."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    for _ in range(20):  # warm up connections and code paths
        await send()
    remaining = requests
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) * 1000 / requests


async def measure(url: str, requests: int, concurrency: int) -> dict[str, float]:
    results: dict[str, float] = {}

    async with httpx.AsyncClient(
        trust_env=False, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def httpx_default() -> None:
            (await client.get(url)).raise_for_status()

        results["httpx_default_keepalive"] = await drive(httpx_default, requests, concurrency)

    async with httpx.AsyncClient(
        trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:

        async def httpx_fresh() -> None:
            (await client.get(url)).raise_for_status()

        results["httpx_default_fresh"] = await drive(httpx_fresh, requests, concurrency)

    async with httpx.AsyncClient(transport=AiohttpTransport(), trust_env=False) as client:

        async def httpx_aiohttp() -> None:
            (await client.get(url)).raise_for_status()

        results["httpx_aiohttp_keepalive"] = await drive(httpx_aiohttp, requests, concurrency)

    fresh_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    async with httpx.AsyncClient(
        transport=AiohttpTransport(client=fresh_session), trust_env=False
    ) as client:

        async def httpx_aiohttp_fresh() -> None:
            (await client.get(url)).raise_for_status()

        results["httpx_aiohttp_fresh"] = await drive(httpx_aiohttp_fresh, requests, concurrency)

    for keepalive in (True, False):
        async with make_client() as client:

            async def probe_client(keepalive: bool = keepalive) -> None:
                request = client.build_request(
                    "GET", url, extensions={KEEPALIVE_EXTENSION: keepalive}
                )
                response = await client.send(request, stream=True)
                async for _ in response.aiter_raw():
                    pass
                await response.aclose()
                response.raise_for_status()

            name = "warroom_probe_" + ("keepalive" if keepalive else "fresh")
            results[name] = await drive(probe_client, requests, concurrency)

    for force_close in (False, True):
        connector = aiohttp.TCPConnector(force_close=force_close, limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def aiohttp_only() -> None:
                async with session.get(url) as response:
                    await response.read()
                    response.raise_for_status()

            name = "aiohttp_" + ("fresh" if force_close else "keepalive")
            results[name] = await drive(aiohttp_only, requests, concurrency)
    return {name: round(ms, 3) for name, ms in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/health"
        results = asyncio.run(measure(url, args.requests, args.concurrency))
    finally:
        server.terminate()
        server.wait()
    print(
        orjson.dumps(
            {
                "bench": "probe_transport",
                "unit": "client CPU ms per request",
                "requests": args.requests,
                "concurrency": args.concurrency,
                **results,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
