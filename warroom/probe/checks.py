"""One probe of one target: HTTP, TCP or DNS, each ending in a `ProbeResult` with a short reason.

Every check runs under an overall deadline (`asyncio.timeout`), so a server that hangs or
trickles a byte a second costs at most the target's timeout, and HTTP bodies are read in a
stream that stops at `max_body` bytes, so a huge body is never buffered. Failures are turned
into short, specific reasons ("connection refused", "timeout after 2s", "NXDOMAIN").
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import http.cookiejar
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import httpx
import orjson

from warroom import __version__
from warroom.config import Target, split_host_port
from warroom.jsonpath import json_field
from warroom.probe.transport import KEEPALIVE_EXTENSION, InvalidResponse, LeanTransport

#: Bodies are read at most this far; a longer body fails the probe instead of being buffered.
MAX_BODY = 64 * 1024
USER_AGENT = f"warroom-probe/{__version__}"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe; `latency_ms` is the time it took, also for failures."""

    ok: bool
    latency_ms: float
    reason: str


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _seconds(seconds: float) -> str:
    return f"{seconds:g}s" if seconds >= 1 else f"{seconds * 1000:g}ms"


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"


# -- client ------------------------------------------------------------------------------


def make_client(verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The one shared client all HTTP probes go through (see `transport.LeanTransport`)."""
    context: ssl.SSLContext | None = None
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, ssl.SSLContext):
        context = verify
    return ProbeClient(
        transport=LeanTransport(context),
        timeout=httpx.Timeout(None),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


class _NoCookies(http.cookiejar.CookieJar):
    """Probes are stateless: a cookie set by one answer must not change the next request."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


class _StatelessCookies(httpx.Cookies):
    """Cookies that are never stored, skipping even the inspection of each response.

    httpx hands every response to `extract_cookies`, which wraps request and response in
    urllib objects (re-parsing the URL, copying the headers) before the jar can ignore
    them: about a tenth of a probe's client CPU, for nothing.
    """

    def __init__(self) -> None:
        super().__init__(_NoCookies())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class ProbeClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` for probes: stateless, and with a short path for plain sends.

    The cookie store is permanently empty and read-only (a store set from outside would start
    remembering cookies). `send(request, stream=True)` on a client without auth, event hooks,
    redirect following or mounts (how `make_client` builds it) hands the request straight to
    the transport: httpx's general path (an auth flow generator, the redirect and hook loops,
    per-request transport lookup) costs about a tenth of a fresh-connection probe's CPU.
    The response is the same: request attached, `elapsed` set on close, redirects described
    by `next_request`, the `httpx` INFO log line.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._stateless_cookies = _StatelessCookies()
        self._direct_transport = transport
        # Proxies and mounts route requests to other transports: only the general path knows.
        self._can_go_direct = not (
            {"mounts", "proxy", "default_encoding"} & kwargs.keys() or self.trust_env
        )

    @property  # type: ignore[misc]
    def cookies(self) -> httpx.Cookies:  # type: ignore[override]
        return self._stateless_cookies

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        hooks = self.event_hooks
        if not (
            stream
            and self._can_go_direct
            and auth is httpx.USE_CLIENT_DEFAULT
            and follow_redirects is httpx.USE_CLIENT_DEFAULT
            and self.auth is None
            and not self.follow_redirects
            and not hooks["request"]
            and not hooks["response"]
            and not self.is_closed
            and "timeout" in request.extensions
        ):
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        start = time.perf_counter()
        response = await self._direct_transport.handle_async_request(request)
        response.request = request
        response.stream = _TimedStream(response.stream, response, start)  # type: ignore[arg-type]
        if response.has_redirect_location:
            try:
                response.next_request = self._build_redirect_request(request, response)
            except BaseException:
                await response.aclose()
                raise
        if _httpx_log.isEnabledFor(logging.INFO):
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response


_httpx_log = logging.getLogger("httpx")


class _TimedStream(httpx.AsyncByteStream):
    """Sets `response.elapsed` when the body is closed, as httpx's own send path does."""

    __slots__ = ("_response", "_start", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, response: httpx.Response, start: float):
        self._stream = stream
        self._response = response
        self._start = start

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The body's own iterator, not another generator layer around it.
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        self._response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._start)
        await self._stream.aclose()


# -- error descriptions ----------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__])


def _ssl_reason(error: ssl.SSLError) -> str:
    verify_message = getattr(error, "verify_message", None)
    if verify_message:
        return str(verify_message)
    reason = getattr(error, "reason", None)
    return str(reason).lower().replace("_", " ") if reason else str(error) or type(error).__name__


def describe_error(exc: BaseException) -> str:
    """A short, specific reason for a failed connection or request."""
    chain = list(_chain(exc))
    # Prefer the innermost ssl error: wrappers lack its details.
    for error in reversed(chain):
        if isinstance(error, ssl.SSLError):
            return f"TLS handshake failed: {_ssl_reason(error)}"
    for error in chain:
        if isinstance(error, socket.gaierror):
            return "cannot resolve host"
        if isinstance(error, ConnectionRefusedError) or getattr(error, "errno", None) == (
            errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(error, ConnectionResetError) or getattr(error, "errno", None) == (
            errno.ECONNRESET
        ):
            return "connection reset"
    for error in chain:
        if isinstance(error, InvalidResponse):
            return str(error)
        if isinstance(error, httpx.RemoteProtocolError):
            return str(error) or "connection closed"
        if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return f"bad URL: {error}"
    for error in chain:
        if isinstance(error, OSError) and error.strerror:
            return f"connection failed: {error.strerror.lower()}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


# -- HTTP ----------------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def evaluate_http(target: Target, status: int, body: bytes, elapsed: float) -> ProbeResult:
    """Check a complete (bounded) response against the target's conditions."""
    expect = target.expect
    latency = elapsed * 1000
    allowed = expect.status
    if allowed is None:
        if not 200 <= status < 300:
            return ProbeResult(False, latency, f"HTTP {status} (expected 2xx)")
    elif status not in allowed:
        wanted = ", ".join(str(code) for code in allowed)
        return ProbeResult(False, latency, f"HTTP {status} (expected {wanted})")
    if expect.body_contains is not None and expect.body_contains.encode() not in body:
        return ProbeResult(False, latency, f"body does not contain {expect.body_contains!r}")
    if expect.json_fields:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ProbeResult(False, latency, "body is not JSON")
        for path, wanted_value in expect.json_fields.items():
            try:
                found = json_field(document, path)
            except KeyError:
                return ProbeResult(False, latency, f"JSON {path} missing")
            # 1 == 1.0 but True is not 1: compare JSON types as JSON would.
            if found != wanted_value or isinstance(found, bool) != isinstance(wanted_value, bool):
                return ProbeResult(
                    False,
                    latency,
                    f"JSON {path} = {_json_text(found)[:60]} (expected {_json_text(wanted_value)})",
                )
    if expect.max_latency is not None and elapsed > expect.max_latency:
        return ProbeResult(
            False, latency, f"latency {_ms(elapsed)} over max {_ms(expect.max_latency)}"
        )
    return ProbeResult(True, latency, f"HTTP {status} in {_ms(elapsed)}")


class BodyTooLarge(Exception):
    """The response body is longer than the read limit."""


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    # A scan of the raw headers: `headers.get` first works out the headers' text encoding,
    # which costs more than the rest of this function for a small body.
    for name, value in response.headers.raw:
        if len(name) == 14 and name.lower() == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise BodyTooLarge
            break
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_request(client: httpx.AsyncClient, target: Target) -> httpx.Request:
    """The GET a probe sends; built once per target and reused (URL parsing is not free)."""
    return client.build_request(
        "GET", target.address, extensions={KEEPALIVE_EXTENSION: target.keepalive}
    )


async def check_http(
    client: httpx.AsyncClient,
    target: Target,
    max_body: int = MAX_BODY,
    request: httpx.Request | None = None,
) -> ProbeResult:
    """GET the URL, read at most `max_body` bytes, and check the conditions."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(target.timeout):
            if request is None:
                request = build_request(client, target)
            response = await client.send(request, stream=True)
            try:
                body = await _read_bounded(response, max_body)
            finally:
                await response.aclose()
    except TimeoutError:
        return probe_failure(target, time.perf_counter() - start, timed_out=True)
    except BodyTooLarge:
        return probe_failure(target, time.perf_counter() - start, too_large=max_body)
    except Exception as exc:
        return probe_failure(target, time.perf_counter() - start, error=exc)
    return evaluate_http(target, response.status_code, body, time.perf_counter() - start)


def probe_failure(
    target: Target,
    elapsed: float,
    *,
    error: BaseException | None = None,
    timed_out: bool = False,
    too_large: int | None = None,
) -> ProbeResult:
    """A failed HTTP probe: the deadline passed, the body was over `too_large` bytes, or
    `error` (described by `describe_error`)."""
    if timed_out:
        reason = _timeout(target)
    elif too_large is not None:
        reason = f"body over {_size(too_large)} limit"
    else:
        reason = describe_error(error) if error is not None else "failed"
    return ProbeResult(False, elapsed * 1000, reason)


def _timeout(target: Target) -> str:
    return f"timeout after {_seconds(target.timeout)}"


# -- TCP -----------------------------------------------------------------------------------


async def check_tcp(target: Target) -> ProbeResult:
    """Open a TCP connection (and close it at once)."""
    host, port = split_host_port(target.address)
    start = time.perf_counter()
    try:
        async with asyncio.timeout(target.timeout):
            _, writer = await asyncio.open_connection(host, port)
            elapsed = time.perf_counter() - start
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    except TimeoutError:
        return ProbeResult(False, (time.perf_counter() - start) * 1000, _timeout(target))
    except Exception as exc:
        return ProbeResult(False, (time.perf_counter() - start) * 1000, describe_error(exc))
    if target.expect.max_latency is not None and elapsed > target.expect.max_latency:
        return ProbeResult(
            False,
            elapsed * 1000,
            f"connect took {_ms(elapsed)}, over max {_ms(target.expect.max_latency)}",
        )
    return ProbeResult(True, elapsed * 1000, f"connected in {_ms(elapsed)}")


# -- DNS -----------------------------------------------------------------------------------


class Resolvers:
    """One dnspython async resolver per nameserver (the system one is read once, lazily)."""

    def __init__(self) -> None:
        self._by_nameserver: dict[str | None, dns.asyncresolver.Resolver] = {}

    async def get(self, nameserver: str | None) -> dns.asyncresolver.Resolver:
        resolver = self._by_nameserver.get(nameserver)
        if resolver is None:
            if nameserver is None:
                # Reading /etc/resolv.conf is file I/O: keep it off the event loop.
                resolver = await asyncio.to_thread(dns.asyncresolver.Resolver)
            else:
                host, port = split_host_port(nameserver, default_port=53)
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)]
            resolver.cache = None
            self._by_nameserver[nameserver] = resolver
        return resolver


async def check_dns(target: Target, resolvers: Resolvers) -> ProbeResult:
    """Resolve the name (A, or AAAA when the expected address is IPv6) and check the answer."""
    expect = target.expect
    rdtype = "A"
    if expect.contains_address and ipaddress.ip_address(expect.contains_address).version == 6:
        rdtype = "AAAA"
    start = time.perf_counter()
    failure: str | None = None
    addresses: list[str] = []
    try:
        resolver = await resolvers.get(target.nameserver)
        async with asyncio.timeout(target.timeout):
            answer = await resolver.resolve(
                target.address, rdtype, lifetime=target.timeout + 1, search=False
            )
        addresses = sorted((rdata.to_text() for rdata in answer), key=ipaddress.ip_address)
    except TimeoutError:
        return ProbeResult(False, (time.perf_counter() - start) * 1000, _timeout(target))
    except dns.resolver.NXDOMAIN:
        failure = "NXDOMAIN"
    except dns.resolver.NoAnswer:
        failure = f"no {rdtype} records"
    except dns.resolver.NoNameservers as exc:
        failure = _no_nameservers(exc)
    except dns.exception.Timeout:
        return ProbeResult(False, (time.perf_counter() - start) * 1000, _timeout(target))
    except dns.exception.DNSException as exc:
        failure = f"DNS error: {str(exc)[:120]}"
    except Exception as exc:
        failure = describe_error(exc)
    elapsed = time.perf_counter() - start
    latency = elapsed * 1000
    if not expect.resolves:
        if failure in ("NXDOMAIN", f"no {rdtype} records"):
            return ProbeResult(True, latency, f"does not resolve ({failure})")
        if failure is None:
            return ProbeResult(False, latency, f"resolves to {', '.join(addresses)[:80]}")
        return ProbeResult(False, latency, failure)
    if failure is not None:
        return ProbeResult(False, latency, failure)
    if expect.contains_address and ipaddress.ip_address(expect.contains_address) not in {
        ipaddress.ip_address(a) for a in addresses
    }:
        return ProbeResult(
            False,
            latency,
            f"{expect.contains_address} not in answer ({', '.join(addresses)[:80]})",
        )
    if expect.max_latency is not None and elapsed > expect.max_latency:
        return ProbeResult(
            False, latency, f"latency {_ms(elapsed)} over max {_ms(expect.max_latency)}"
        )
    return ProbeResult(True, latency, f"resolved to {', '.join(addresses)[:80]} in {_ms(elapsed)}")


def _no_nameservers(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    for _server, _tcp, _port, error, *_ in errors:
        text = str(error)
        if text:
            return f"nameserver failed: {text[:100]}"
    return "no nameserver answered"
