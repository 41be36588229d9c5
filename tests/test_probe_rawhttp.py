"""The engine's raw plain-HTTP probes reach the same verdicts, with the same reasons, as
`check_http` through httpx: against well-behaved, odd and hostile loopback servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from probe_servers import (
    free_port,
    garbage,
    hang,
    huge_body,
    read_request,
    reset,
    responder,
    serve,
    trickle,
)
from test_probe_engine import Recorder
from test_probe_http_compat import ANSWERS, raw, target

from warroom.probe.checks import ProbeResult, check_http, make_client
from warroom.probe.engine import ProbeEngine
from warroom.probe.rawhttp import prepare, probe_http_raw

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
FRAMINGS = {
    **ANSWERS,
    "chunk extension and trailer": CHUNKED + b"6;x=y\r\nall ok\r\n0\r\nT: 1\r\n\r\n",
    "chunked, bare LF chunk lines": CHUNKED + b"2\nok\n0\n\n",
    "chunked, bad chunk end": CHUNKED + b"2\r\nokXX0\r\n\r\n",
    "chunked, bad size": CHUNKED + b"zz\r\nok\r\n0\r\n\r\n",
    "chunked, closed mid-chunk": CHUNKED + b"10\r\nok",
    "100 continue first": b"HTTP/1.1 100 Continue\r\n\r\n"
    + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "short body": b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\nok but short",
    "longer than declared": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok and more",
    "204 no body": b"HTTP/1.1 204 No Content\r\n\r\n",
    "declared too long": b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\nok",
    "two lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "closed before answering": b"",
    "wrong body": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno",
    "HTTP 500": b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nok",
}


def same(result: ProbeResult) -> tuple[bool, str]:
    """The verdict and reason, without the measured time."""
    return result.ok, result.reason.split(" in ")[0]


async def both(url: str, **fields: Any) -> tuple[ProbeResult, ProbeResult]:
    t = target(url, **fields)
    client = make_client()
    try:
        prepared = prepare(client, t)
        assert prepared is not None
        return await probe_http_raw(t, prepared, 64 * 1024), await check_http(client, t)
    finally:
        await client.aclose()


@pytest.mark.parametrize("answer", FRAMINGS.values(), ids=FRAMINGS.keys())
async def test_same_verdict_on_every_framing(answer: bytes) -> None:
    async with serve(raw(answer)) as server:
        ours, reference = await both(server.url, expect={"body_contains": "ok"})
    assert same(ours) == same(reference)


HOSTILE = {
    "hang": hang,
    "trickle": trickle,
    "garbage": garbage,
    "1GB declared": huge_body(with_length=True),
    "1GB chunked": huge_body(with_length=False),
    "reset": reset,
    "healthy": responder(200, b"ok"),
    "503": responder(503, b"down"),
}


@pytest.mark.parametrize("handler", HOSTILE.values(), ids=HOSTILE.keys())
async def test_same_verdict_against_hostile_servers(handler: Any) -> None:
    async with serve(handler) as server:
        ours, reference = await both(server.url, timeout=0.6)
    assert same(ours) == same(reference)
    assert ours.latency_ms < 1000  # the deadline holds whatever the server does


async def test_refused_and_the_request_on_the_wire() -> None:
    ours, reference = await both(f"http://127.0.0.1:{free_port()}/health")
    assert same(ours) == same(reference) == (False, "connection refused")
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.append(request)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async with serve(record) as server:
        await both(server.url + "?full=1")
    assert seen[0] == seen[1]  # byte for byte what httpx's path sends


def test_only_plain_http_to_an_address_on_a_fresh_connection_goes_raw() -> None:
    client = make_client()
    assert prepare(client, target("http://127.0.0.1:8080/health")) is not None
    assert prepare(client, target("http://[::1]:8080/health")) is not None
    assert prepare(client, target("https://127.0.0.1:8443/health")) is None
    assert prepare(client, target("http://localhost:8080/health")) is None
    assert prepare(client, target("http://127.0.0.1:8080/", keepalive=True)) is None


async def test_engine_probes_raw_and_httpx_targets_alike() -> None:
    recorder = Recorder()
    async with serve(responder(503, b"down")) as server:
        targets = [
            target(server.url.replace("127.0.0.1", host), name=host, interval=0.05)
            for host in ("127.0.0.1", "localhost")
        ]
        async with ProbeEngine(targets, recorder, sample_interval=0) as engine:
            await recorder.wait_for(lambda: len(recorder.changes()) == 2)
            snapshot = engine.snapshot()
    assert {(c.target, c.to_state, c.reason) for c in recorder.changes()} == {
        ("127.0.0.1", "down", "HTTP 503 (expected 2xx)"),
        ("localhost", "down", "HTTP 503 (expected 2xx)"),
    }
    assert all(s.total >= 2 for s in snapshot.values())
