"""Single probes against real loopback servers: every condition, every hostile endpoint."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from probe_servers import (
    dns_server,
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

from warroom.config import Target, TargetConfig, parse_config
from warroom.probe.checks import Resolvers, check_dns, check_http, check_tcp, make_client


def target(**fields: Any) -> Target:
    fields.setdefault("name", "t")
    return TargetConfig.model_validate(fields).resolve(parse_config({}).defaults)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as shared:
        yield shared


# -- HTTP conditions ---------------------------------------------------------------------------


async def test_http_ok_with_default_conditions(client: httpx.AsyncClient) -> None:
    async with serve(responder(200, b"ok")) as server:
        result = await check_http(client, target(http=server.url))
    assert result.ok, result.reason
    assert result.reason.startswith("HTTP 200 in ")
    assert 0 < result.latency_ms < 1000


async def test_http_status_default_is_2xx(client: httpx.AsyncClient) -> None:
    async with serve(responder(503, b"no")) as server:
        result = await check_http(client, target(http=server.url))
    assert not result.ok and result.reason == "HTTP 503 (expected 2xx)"


async def test_http_status_set(client: httpx.AsyncClient) -> None:
    async with serve(responder(503, b"no")) as server:
        allowed = await check_http(client, target(http=server.url, expect={"status": [200, 503]}))
        refused = await check_http(client, target(http=server.url, expect={"status": [200, 204]}))
    assert allowed.ok
    assert not refused.ok and refused.reason == "HTTP 503 (expected 200, 204)"


async def test_http_body_contains(client: httpx.AsyncClient) -> None:
    async with serve(responder(200, b"status: healthy")) as server:
        good = await check_http(
            client, target(http=server.url, expect={"body_contains": "healthy"})
        )
        bad = await check_http(client, target(http=server.url, expect={"body_contains": "ready"}))
    assert good.ok
    assert not bad.ok and bad.reason == "body does not contain 'ready'"


async def test_http_json_field_equals(client: httpx.AsyncClient) -> None:
    body = json.dumps({"db": {"ok": True, "lag": 3}, "shards": [{"up": 1}]}).encode()
    async with serve(responder(200, body)) as server:

        async def probe(fields: dict[str, Any]) -> tuple[bool, str]:
            result = await check_http(client, target(http=server.url, expect={"json": fields}))
            return result.ok, result.reason

        assert (await probe({"db.ok": True, "db.lag": 3, "shards.0.up": 1}))[0]
        assert await probe({"db.ok": False}) == (False, "JSON db.ok = true (expected false)")
        assert await probe({"db.lag": True}) == (False, "JSON db.lag = 3 (expected true)")
        assert await probe({"db.missing": 1}) == (False, "JSON db.missing missing")
    async with serve(responder(200, b"<html>")) as server:
        result = await check_http(client, target(http=server.url, expect={"json": {"a": 1}}))
    assert (result.ok, result.reason) == (False, "body is not JSON")


async def test_http_max_latency(client: httpx.AsyncClient) -> None:
    async with serve(responder(200, b"ok", delay=0.15)) as server:
        result = await check_http(client, target(http=server.url, expect={"max_latency": "50ms"}))
    assert not result.ok
    assert result.reason.startswith("latency ") and result.reason.endswith("over max 50 ms")


async def test_http_fresh_connection_per_probe_unless_keepalive(
    client: httpx.AsyncClient,
) -> None:
    """A pooled connection could report up while the service refuses new connections."""
    async with serve(responder(200, b"ok")) as server:
        for _ in range(5):
            assert (await check_http(client, target(http=server.url))).ok
        assert server.connections == 5
        for _ in range(5):
            assert (await check_http(client, target(http=server.url, keepalive=True))).ok
        assert server.connections == 6


# -- hostile HTTP endpoints ----------------------------------------------------------------------

TIMEOUT = 0.6
#: Allowed overshoot of the deadline on a busy 2-core machine.
SLACK = 0.5


async def timed(coro: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - start


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (hang, "timeout after 600ms"),
        (trickle, "timeout after 600ms"),
        (garbage, "invalid HTTP response"),
        (huge_body(with_length=True), "body over 64 KiB limit"),
        (huge_body(with_length=False), "body over 64 KiB limit"),
        (reset, "connection reset"),
    ],
    ids=["hang", "trickle", "garbage", "1GB-declared", "1GB-chunked", "reset"],
)
async def test_hostile_http_endpoint_fails_fast_with_a_specific_reason(
    client: httpx.AsyncClient, handler: Any, reason: str
) -> None:
    async with serve(handler) as server:
        result, elapsed = await timed(check_http(client, target(http=server.url, timeout=TIMEOUT)))
    assert (result.ok, result.reason) == (False, reason)
    assert elapsed < TIMEOUT + SLACK


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    result, elapsed = await timed(check_http(client, target(http=url, timeout=TIMEOUT)))
    assert (result.ok, result.reason) == (False, "connection refused")
    assert elapsed < TIMEOUT


async def test_accept_then_close_is_not_a_success(client: httpx.AsyncClient) -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serve(close_at_once) as server:
        result = await check_http(client, target(http=server.url, timeout=TIMEOUT))
    assert (result.ok, result.reason) == (False, "connection closed before a response")


async def test_tls_handshake_against_plain_http_fails(client: httpx.AsyncClient) -> None:
    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # the ClientHello
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serve(plain_http) as server:
        url = f"https://127.0.0.1:{server.port}/health"
        result, elapsed = await timed(check_http(client, target(http=url, timeout=TIMEOUT)))
    assert not result.ok
    assert result.reason.startswith("TLS handshake failed: "), result.reason
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls_self_signed_certificate_fails_verification(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await responder(200, b"ok")(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await check_http(
            client, target(http=f"https://127.0.0.1:{port}/", timeout=TIMEOUT * 2)
        )
    finally:
        server.close()
    assert not result.ok
    assert result.reason.startswith("TLS handshake failed: "), result.reason
    assert "self-signed" in result.reason or "self signed" in result.reason


async def test_unresolvable_host_fails_within_the_timeout(client: httpx.AsyncClient) -> None:
    result, elapsed = await timed(
        check_http(client, target(http="http://no-such-host.invalid/", timeout=1.0))
    )
    assert not result.ok
    assert result.reason.startswith(("cannot resolve host", "timeout after")), result.reason
    assert elapsed < 1.0 + SLACK


# -- TCP -------------------------------------------------------------------------------------


async def test_tcp_connects_and_refused() -> None:
    async with serve(hang) as server:
        good = await check_tcp(target(tcp=server.address))
    assert good.ok and good.reason.startswith("connected in ")
    bad = await check_tcp(target(tcp=f"127.0.0.1:{free_port()}"))
    assert (bad.ok, bad.reason) == (False, "connection refused")


async def test_tcp_timeout_is_bounded() -> None:
    # 192.0.2.0/24 is TEST-NET-1: never routed, so the connect can only time out or fail.
    result, elapsed = await timed(check_tcp(target(tcp="192.0.2.1:9", timeout=0.3)))
    assert not result.ok
    assert elapsed < 0.3 + SLACK


# -- DNS -------------------------------------------------------------------------------------


RECORDS = {"ok.test": ["10.0.0.1", "10.0.0.2"], "empty.test": []}


async def test_dns_resolves_and_contains_address() -> None:
    resolvers = Resolvers()
    async with dns_server(RECORDS) as ns:
        good = await check_dns(target(dns="ok.test", nameserver=ns), resolvers)
        has = await check_dns(
            target(dns="ok.test", nameserver=ns, expect={"contains_address": "10.0.0.2"}),
            resolvers,
        )
        lacks = await check_dns(
            target(dns="ok.test", nameserver=ns, expect={"contains_address": "10.9.9.9"}),
            resolvers,
        )
    assert good.ok and good.reason.startswith("resolved to 10.0.0.1, 10.0.0.2")
    assert has.ok
    assert (lacks.ok, lacks.reason) == (False, "10.9.9.9 not in answer (10.0.0.1, 10.0.0.2)")


async def test_dns_nxdomain_empty_servfail_and_silence() -> None:
    resolvers = Resolvers()
    async with dns_server(RECORDS, silent={"silent.test"}) as ns:
        nx = await check_dns(target(dns="gone.test", nameserver=ns), resolvers)
        empty = await check_dns(target(dns="empty.test", nameserver=ns), resolvers)
        servfail = await check_dns(target(dns="servfail.test", nameserver=ns), resolvers)
        silent, elapsed = await timed(
            check_dns(target(dns="silent.test", nameserver=ns, timeout=0.4), resolvers)
        )
        absent = await check_dns(
            target(dns="gone.test", nameserver=ns, expect={"resolves": False}), resolvers
        )
    assert (nx.ok, nx.reason) == (False, "NXDOMAIN")
    assert (empty.ok, empty.reason) == (False, "no A records")
    assert not servfail.ok and "SERVFAIL" in servfail.reason
    assert (silent.ok, silent.reason) == (False, "timeout after 400ms")
    assert elapsed < 0.4 + SLACK
    assert (absent.ok, absent.reason) == (True, "does not resolve (NXDOMAIN)")


def raw_answer(payload: bytes) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(payload)
        await writer.drain()
        writer.close()

    return handle


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        (
            CHUNKED + b"3\r\nall\r\n4\r\n ok!\r\n0\r\n\r\n",
            True,
        ),
        (
            CHUNKED + b"6;x=y\r\nall ok\r\n0\r\nT: 1\r\n\r\n",
            True,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall ok, until close", True),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nall ok", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\nall ok but short", False),
    ],
    ids=["chunked", "chunk-ext-trailer", "until-close", "100-continue", "short-body"],
)
async def test_body_framings(client: httpx.AsyncClient, payload: bytes, ok: bool) -> None:
    async with serve(raw_answer(payload)) as server:
        result = await check_http(
            client, target(http=server.url, timeout=TIMEOUT, expect={"body_contains": "all ok"})
        )
    assert result.ok is ok, result.reason
    if not ok:
        assert result.reason == "connection closed in the middle of the body"


async def test_request_sent_is_a_plain_http11_get(client: httpx.AsyncClient) -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.append(request)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async with serve(record) as server:
        result = await check_http(client, target(http=server.url + "?full=1"))
    assert result.ok
    lines = seen[0].decode().split("\r\n")
    assert lines[0] == "GET /health?full=1 HTTP/1.1"
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["connection"] == "close"
    assert headers["user-agent"].startswith("warroom-probe/")


async def test_a_cookie_set_by_one_answer_is_not_sent_with_the_next_probe(
    client: httpx.AsyncClient,
) -> None:
    seen: list[bytes] = []

    async def set_cookie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.append(request)
        writer.write(b"HTTP/1.1 204 No Content\r\nSet-Cookie: session=abc; Path=/\r\n\r\n")
        await writer.drain()

    async with serve(set_cookie) as server:
        probe = target(http=server.url)
        assert (await check_http(client, probe)).ok
        assert (await check_http(client, probe)).ok
    assert len(seen) == 2
    assert b"cookie" not in seen[1].lower()
    assert not client.cookies


async def test_probe_client_responses_are_complete_httpx_responses(
    client: httpx.AsyncClient,
) -> None:
    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serve(redirect) as server:
        request = client.build_request("GET", server.url)
        response = await client.send(request, stream=True)
        await response.aread()
        await response.aclose()
    assert response.request is request
    assert response.status_code == 302
    assert response.elapsed.total_seconds() >= 0
    assert response.next_request is not None
    assert response.next_request.url == httpx.URL(server.url).join("/elsewhere")


async def test_probe_client_still_runs_event_hooks(client: httpx.AsyncClient) -> None:
    seen: list[int] = []

    async def on_response(response: httpx.Response) -> None:
        seen.append(response.status_code)

    client.event_hooks = {"request": [], "response": [on_response]}
    async with serve(responder(status=204, body=b"")) as server:
        assert (await check_http(client, target(http=server.url))).ok
    assert seen == [204]


async def test_keepalive_reconnects_when_the_server_dropped_the_idle_connection(
    client: httpx.AsyncClient,
) -> None:
    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async with serve(one_answer_then_close) as server:
        for _ in range(3):
            result = await check_http(client, target(http=server.url, keepalive=True))
            assert result.ok, result.reason
            await asyncio.sleep(0.05)
        assert server.connections == 3


async def test_max_latency_applies_to_tcp_and_dns() -> None:
    async with serve(hang) as server, dns_server(RECORDS) as ns:
        tcp = await check_tcp(target(tcp=server.address, expect={"max_latency": 1e-6}))
        dns_result = await check_dns(
            target(dns="ok.test", nameserver=ns, expect={"max_latency": 1e-6}), Resolvers()
        )
    assert not tcp.ok and tcp.reason.startswith("connect took ")
    assert not dns_result.ok and dns_result.reason.startswith("latency ")


async def test_fresh_probe_sees_a_refusing_service_that_a_pooled_one_misses(
    client: httpx.AsyncClient,
) -> None:
    """Why fresh connections are the default: the listener is gone, old connections live on."""
    server = await asyncio.start_server(responder(200, b"ok"), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/health"
    try:
        assert (await check_http(client, target(http=url, keepalive=True))).ok
        server.close()  # stop accepting; the pooled connection stays open
        pooled = await check_http(client, target(http=url, keepalive=True))
        fresh = await check_http(client, target(http=url))
    finally:
        server.close()
    assert pooled.ok
    assert (fresh.ok, fresh.reason) == (False, "connection refused")
