"""Plain-HTTP probes on a fresh connection as loop callbacks: no task, no coroutine, no httpx.

Most probes are a GET over plain HTTP to an IP address on a fresh connection. For those the
engine skips everything between its timer and the socket: `RawHttpProbe` connects, sends the
exact bytes `LeanTransport` would send, reads the answer with the same parser (bare LF and
all, bounded by `max_body`) and judges it with the same `evaluate_http`, driven by the
loop's reader/writer callbacks and one timer for the deadline. Same verdicts and reasons as
`check_http` (tests/test_probe_rawhttp.py holds them side by side against hostile servers),
for about half the CPU (tests/bench/bench_probe_nginx.py). HTTPS, keep-alive and host names
(resolved on each probe) keep going through httpx.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from warroom.config import Target
from warroom.probe.checks import ProbeResult, build_request, evaluate_http, probe_failure
from warroom.probe.transport import (
    MAX_HEADER_BYTES,
    READ_SIZE,
    InvalidResponse,
    LeanTransport,
    find_head_end,
    parse_head,
    request_bytes,
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a raw probe of one target needs, worked out once."""

    family: int
    address: tuple[str, int]
    request: bytes


def prepare(client: httpx.AsyncClient, target: Target) -> Prepared | None:
    """The raw form of a target's probe, or None when it needs httpx (TLS, keep-alive, a
    host name, a URL httpx rejects)."""
    if target.kind != "http" or target.keepalive:
        return None
    try:
        request = build_request(client, target)
    except httpx.InvalidURL:
        return None
    url = request.url
    if url.scheme != "http":
        return None
    try:
        version = ipaddress.ip_address(url.host).version
    except ValueError:
        return None
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    return Prepared(family, (url.host, url.port or 80), request_bytes(request, b"", False))


class _Failed(Exception):
    """Ends a raw probe with this exception's description as the reason."""


Done = Callable[["RawHttpProbe", ProbeResult], None]


class RawHttpProbe:
    """One probe in flight; `done(probe, result)` is called exactly once (not on `cancel`)."""

    __slots__ = (
        "_body",
        "_buffer",
        "_done",
        "_fd",
        "_finished",
        "_head_searched",
        "_length",
        "_loop",
        "_max_body",
        "_mode",
        "_prepared",
        "_reading",
        "_sock",
        "_status",
        "_target",
        "_timer",
        "_to_send",
        "_writing",
        "start",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        target: Target,
        prepared: Prepared,
        max_body: int,
        done: Done,
    ) -> None:
        self._loop = loop
        self._target = target
        self._prepared = prepared
        self._max_body = max_body
        self._done = done
        self._sock: socket.socket | None = None
        self._fd = -1
        self._timer: asyncio.TimerHandle | None = None
        self._buffer = bytearray()
        self._to_send = prepared.request
        self._status = 0
        self._mode = ""
        self._length = 0
        self._body = b""
        self._head_searched = 0
        self._reading = self._writing = False
        self._finished = False
        self.start = 0.0

    def begin(self) -> None:
        """Start connecting; the latency clock starts here, with the connection attempt."""
        loop = self._loop
        self.start = time.perf_counter()
        self._timer = loop.call_at(loop.time() + self._target.timeout, self._expired)
        try:
            sock = self._sock = socket.socket(self._prepared.family, socket.SOCK_STREAM)
            self._fd = sock.fileno()
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.connect(self._prepared.address)
            except (BlockingIOError, InterruptedError):
                # Still connecting; on loopback (and a near host) the handshake is usually
                # done already, so try sending at once and only wait if that would block:
                # two fewer selector calls per probe.
                pass
        except OSError as exc:
            self._fail(exc)
            return
        self._send()

    def cancel(self) -> None:
        """Stop without a result (the engine is closing)."""
        self._finished = True
        self._cleanup()

    # -- the exchange ---------------------------------------------------------------------

    def _connected(self) -> None:
        """Writable: the connection attempt ended, or there is room to send the rest."""
        assert self._sock is not None
        self._loop.remove_writer(self._fd)
        self._writing = False
        error = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self._fail(OSError(error, os.strerror(error)))
            return
        self._send()

    def _send(self) -> None:
        assert self._sock is not None
        try:
            sent = self._sock.send(self._to_send)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        self._to_send = self._to_send[sent:]
        if self._to_send:
            self._writing = True
            self._loop.add_writer(self._fd, self._connected)
            return
        self._reading = True
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        try:
            self._progress(data)
        except (_Failed, httpx.HTTPError) as exc:
            self._fail(exc)

    def _progress(self, data: bytes) -> None:
        eof = not data
        buffer = self._buffer
        buffer += data
        while not self._mode:
            index, size = find_head_end(buffer, self._head_searched)
            if index < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise InvalidResponse(
                        f"invalid HTTP response: head over {MAX_HEADER_BYTES} bytes"
                    )
                if eof:
                    raise httpx.RemoteProtocolError("connection closed before a response")
                self._head_searched = max(0, len(buffer) - 2)
                return
            status, mode, length, declared = _read_head(bytes(buffer[:index]))
            del buffer[: index + size]
            self._head_searched = 0
            if not mode:
                continue  # an interim answer: the real one follows
            if declared is not None and declared > self._max_body:
                self._too_large()
                return
            self._status, self._mode, self._length = status, mode, length
        mode = self._mode
        if mode == "none":
            self._complete(b"")
        elif mode == "length":
            if len(buffer) >= self._length:
                self._complete(bytes(buffer[: self._length]))
            elif eof:
                raise httpx.RemoteProtocolError("connection closed in the middle of the body")
        elif mode == "close":
            if len(buffer) > self._max_body:
                self._too_large()
            elif eof:
                self._complete(bytes(buffer))
        else:
            body = _dechunk(buffer, self._max_body)
            if body is None:
                if eof:
                    raise httpx.RemoteProtocolError("connection closed in the middle of a chunk")
            elif body is _TOO_LARGE:
                self._too_large()
            else:
                self._complete(body)

    # -- endings --------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _complete(self, body: bytes) -> None:
        elapsed = self._elapsed()
        self._finish(evaluate_http(self._target, self._status, body, elapsed))

    def _too_large(self) -> None:
        self._finish(probe_failure(self._target, self._elapsed(), too_large=self._max_body))

    def _expired(self) -> None:
        self._timer = None
        self._finish(probe_failure(self._target, self._elapsed(), timed_out=True))

    def _fail(self, exc: BaseException) -> None:
        self._finish(probe_failure(self._target, self._elapsed(), error=exc))

    def _finish(self, result: ProbeResult) -> None:
        if self._finished:
            return
        self._finished = True
        self._cleanup()
        self._done(self, result)

    def _cleanup(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@functools.lru_cache(maxsize=128)
def _read_head(head: bytes) -> tuple[int, str, int, int | None]:
    """Status, body mode ("" for an interim 1xx answer), body length and declared
    Content-Length of a response head, or `InvalidResponse`.

    Cached because a server's answers differ, if at all, in their Date line, once a second:
    parsing is about a tenth of a probe's CPU, a lookup almost nothing. Failures are not
    cached, so a hostile server cannot fill the cache with anything but valid heads."""
    status, _, headers = parse_head(head)
    if 100 <= status < 200 and status != 101:
        return status, "", 0, None
    mode, length, _ = LeanTransport.body_mode("GET", status, headers, False)
    declared = None
    for name, value in headers:
        if len(name) == 14 and name.lower() == b"content-length":
            declared = int(value) if value.isdigit() else None
            break
    return status, mode, length, declared


_TOO_LARGE = b"\0too large"


def _dechunk(buffer: bytearray, limit: int) -> bytes | None:
    """The body of a complete chunked message in `buffer`, None while it is incomplete,
    `_TOO_LARGE` past `limit`; `InvalidResponse` as `LeanTransport` raises it."""
    pieces: list[bytes] = []
    size_total = 0
    position = 0
    while True:
        newline = buffer.find(b"\n", position)
        if newline < 0:
            if len(buffer) - position > 1024:
                raise InvalidResponse("invalid HTTP response: chunk size over 1024 bytes")
            return None
        line = bytes(buffer[position:newline]).rstrip(b"\r")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise InvalidResponse("invalid HTTP response: bad chunk size") from None
        position = newline + 1
        if size == 0:
            # Trailer fields (rarely any) end with an empty line.
            while True:
                newline = buffer.find(b"\n", position)
                if newline < 0:
                    return None
                line = bytes(buffer[position:newline])
                position = newline + 1
                if line in (b"", b"\r"):
                    return b"".join(pieces)
        size_total += size
        if size_total > limit:
            return _TOO_LARGE
        if len(buffer) < position + size + 1:
            return None
        pieces.append(bytes(buffer[position : position + size]))
        position += size
        end = buffer[position : position + 2]
        if end[:1] == b"\n":
            position += 1
        elif end == b"\r\n":
            position += 2
        elif end == b"\r":
            return None
        else:
            raise InvalidResponse("invalid HTTP response: bad chunk end")


async def probe_http_raw(target: Target, prepared: Prepared, max_body: int) -> ProbeResult:
    """One raw probe, awaited (the engine drives them by callback; tests await them)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[ProbeResult] = loop.create_future()

    def done(_: RawHttpProbe, result: ProbeResult) -> None:
        if not future.done():
            future.set_result(result)

    probe = RawHttpProbe(loop, target, prepared, max_body, done)
    probe.begin()
    try:
        return await future
    finally:
        probe.cancel()
