"""HTTP answers are judged as httpx's own parser (h11) judges them, bare LF line endings too."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from probe_servers import read_request, serve

from warroom.config import Target, TargetConfig, parse_config
from warroom.probe.checks import ProbeResult, check_http, make_client


def target(url: str, **fields: Any) -> Target:
    config = {"name": "t", "http": url, "timeout": 2, **fields}
    return TargetConfig.model_validate(config).resolve(parse_config({}).defaults)


def raw(answer: bytes) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    return handle


ANSWERS = {
    "bare LF": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "bare LF, 503": b"HTTP/1.1 503 Unavailable\nContent-Length: 0\n\n",
    "CRLF lines, bare LF blank line": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok",
    "bare LF lines, CRLF blank line": b"HTTP/1.1 200 OK\nContent-Length: 2\n\r\nok",
    "no reason phrase": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.0, body to close": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok",
    "folded header": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 2\r\n\r\nok",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "chunked, bare LF head": b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\r\nok\r\n0\r\n\r\n",
    "space before colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "not HTTP": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "folded first header": b"HTTP/1.1 200 OK\r\n X-A: 1\r\nContent-Length: 2\r\n\r\nok",
}


async def judged_by_both(answer: bytes, **fields: Any) -> tuple[ProbeResult, ProbeResult]:
    async with serve(raw(answer)) as server:
        t = target(server.url, **fields)
        lean = make_client()
        reference = httpx.AsyncClient(trust_env=False)
        try:
            return await check_http(lean, t), await check_http(reference, t)
        finally:
            await lean.aclose()
            await reference.aclose()


def verdict(result: ProbeResult) -> tuple[bool, str]:
    """What decides a state: ok or not, and the status when there was one."""
    reason = result.reason
    return result.ok, reason.split(" in ")[0] if reason.startswith("HTTP ") else "no answer"


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
async def test_same_verdict_as_httpx(answer: bytes) -> None:
    ours, theirs = await judged_by_both(answer, expect={"body_contains": "ok"})
    assert verdict(ours) == verdict(theirs), (ours, theirs)


async def test_bare_lf_answers_are_up_and_their_status_is_read() -> None:
    ours, _ = await judged_by_both(ANSWERS["bare LF"], expect={"body_contains": "ok"})
    assert ours.ok and ours.reason.startswith("HTTP 200 in ")
    ours, _ = await judged_by_both(ANSWERS["bare LF, 503"])
    assert (ours.ok, ours.reason) == (False, "HTTP 503 (expected 2xx)")
