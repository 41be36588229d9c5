"""A lean HTTP/1.1 transport for httpx, made for probing: fresh connections, bounded reads.

httpx stays the client API; this replaces the connection layer under it. Client CPU per
request measured here (tests/bench/bench_probe_transport.py, loopback, 50 in flight, a busy
shared 2-core machine): fresh connection 0.55 ms (httpx over aiohttp 0.95 ms, httpx's default
transport 2.4 ms, bare aiohttp 0.51 ms); keep-alive 0.39 ms (httpx over aiohttp 0.56 ms,
httpx default 3.5 ms). With 1,000 targets a second that decides whether probing fits in half
a core. Plain TCP uses the loop's socket API (cheaper than a transport and protocol); TLS
uses a transport.

Why not a general-purpose pool: by default each request opens its own connection and sends
`Connection: close` (as blackbox_exporter and Gatus do), because a pooled connection can report
up while the service no longer accepts new ones. Only requests carrying the
`warroom_keepalive` extension reuse idle connections. Headers are limited in size and the
body is streamed in pieces; the caller decides how much of it to read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx

#: Request extension asking to reuse a pooled connection for this request.
KEEPALIVE_EXTENSION = "warroom_keepalive"
MAX_HEADER_BYTES = 64 * 1024
#: Reading pauses above this much unread data, so a flood is held back by TCP, not memory.
HIGH_WATER = 256 * 1024
MAX_IDLE_PER_HOST = 8
READ_SIZE = 65536

# As h11 (httpx's parser) and curl read them: any HTTP/d.d version, the reason optional.
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})(?: ([^\r\n]*))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_BODY_STATUS = frozenset({204, 304})


class InvalidResponse(httpx.RemoteProtocolError):
    """The peer answered with something that is not HTTP/1.x."""


class _Stream:
    """A connection's read buffer and await-able reads; subclasses say how bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        self.loop = loop
        self.key = key
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None

    async def _fill(self) -> None:
        """Wait until more bytes (or the end of the stream) arrive."""
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    @property
    def usable(self) -> bool:
        """Idle, open and with nothing unread: safe to send another request on."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _check_eof(self, what: str) -> None:
        if self.error is not None:
            raise httpx.ReadError(f"{what}: {self.error}") from self.error
        raise httpx.RemoteProtocolError(f"connection closed {what}")

    async def read_until(self, marker: bytes, limit: int, what: str) -> bytes:
        start = 0
        while True:
            index = self.buffer.find(marker, start)
            if index >= 0:
                data = bytes(self.buffer[:index])
                del self.buffer[: index + len(marker)]
                return data
            if len(self.buffer) > limit:
                raise InvalidResponse(f"invalid HTTP response: {what} over {limit} bytes")
            if self.eof:
                self._check_eof(what)
            start = max(0, len(self.buffer) - len(marker) + 1)
            await self._fill()

    async def read_head(self, limit: int) -> bytes:
        """Everything up to the blank line ending a response head, CRLF or bare LF (as h11
        and curl accept: `\n\n` and `\n\r\n` end it as well as `\r\n\r\n`)."""
        start = 0
        while True:
            buffer = self.buffer
            index, size = find_head_end(buffer, start)
            if index >= 0:
                data = bytes(buffer[:index])
                del buffer[: index + size]
                return data
            if len(buffer) > limit:
                raise InvalidResponse(f"invalid HTTP response: head over {limit} bytes")
            if self.eof:
                self._check_eof("before a response")
            start = max(0, len(buffer) - 2)
            await self._fill()

    async def read_line(self, limit: int, what: str) -> bytes:
        """One line, ended by CRLF or a bare LF, without its ending."""
        line = await self.read_until(b"\n", limit, what)
        return line[:-1] if line.endswith(b"\r") else line

    async def read_some(self, most: int) -> bytes:
        """Up to `most` bytes as soon as any are there; b"" at a clean end of stream."""
        while not self.buffer:
            if self.eof:
                if self.error is not None:
                    raise httpx.ReadError(str(self.error)) from self.error
                return b""
            await self._fill()
        data = bytes(self.buffer[:most])
        del self.buffer[:most]
        return data

    async def read_exact(self, count: int, what: str) -> bytes:
        while len(self.buffer) < count:
            if self.eof:
                self._check_eof(what)
            await self._fill()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


class _SocketStream(_Stream):
    """Plain TCP through the loop's socket API: about a quarter less CPU per connection than
    a transport and protocol, and reads only happen when asked (natural back-pressure)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int], sock: socket.socket
    ) -> None:
        super().__init__(loop, key)
        self.sock = sock

    async def _fill(self) -> None:
        # What `loop.sock_recv` does, without its done-callback chain and extra loop hop.
        # Returning with nothing read (a spurious wake-up) is fine: callers loop.
        sock = self.sock
        try:
            try:
                data = sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                fd = sock.fileno()
                waiter: asyncio.Future[None] = self.loop.create_future()
                self.loop.add_reader(fd, _wake_waiter, waiter)
                try:
                    await waiter
                finally:
                    self.loop.remove_reader(fd)
                data = sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.error = exc
            self.eof = True
            return
        if data:
            self.buffer += data
        else:
            self.eof = True

    async def send(self, data: bytes) -> None:
        try:
            await self.loop.sock_sendall(self.sock, data)
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc

    @property
    def usable(self) -> bool:
        if self.eof or self.buffer or self.sock.fileno() < 0:
            return False
        try:
            peeked = self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True  # open, and the peer has sent nothing unasked
        except OSError:
            return False
        # b"" is the peer's close; anything else is data nobody asked for.
        del peeked
        return False

    def close(self) -> None:
        self.sock.close()


class _TlsStream(_Stream, asyncio.Protocol):
    """TLS through a transport (the socket API has no TLS)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        super().__init__(loop, key)
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self._paused and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _fill(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("connection closed")
        self.transport.write(data)

    @property
    def usable(self) -> bool:
        return (
            self.transport is not None
            and not self.transport.is_closing()
            and not self.eof
            and not self.buffer
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Body(httpx.AsyncByteStream):
    """The response body, read in pieces from the connection as the caller iterates."""

    def __init__(
        self,
        transport: LeanTransport,
        conn: _Stream,
        mode: str,
        length: int,
        reusable: bool,
    ) -> None:
        self._transport = transport
        self._conn = conn
        self._mode = mode
        self._remaining = length
        self._reusable = reusable
        self._complete = mode == "none"
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if self._mode == "length":
            while self._remaining > 0:
                chunk = await conn.read_some(min(self._remaining, 65536))
                if not chunk:
                    conn._check_eof("in the middle of the body")
                self._remaining -= len(chunk)
                yield chunk
            self._complete = True
        elif self._mode == "chunked":
            async for chunk in self._chunks():
                yield chunk
            self._complete = True
        elif self._mode == "close":
            while True:
                chunk = await conn.read_some(65536)
                if not chunk:
                    break
                yield chunk
            self._complete = True

    async def _chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            line = await conn.read_line(1024, "chunk size")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise InvalidResponse("invalid HTTP response: bad chunk size") from None
            if size == 0:
                # Trailer fields (rarely any) end with an empty line.
                while await conn.read_line(MAX_HEADER_BYTES, "trailers"):
                    pass
                return
            while size > 0:
                chunk = await conn.read_some(min(size, 65536))
                if not chunk:
                    conn._check_eof("in the middle of a chunk")
                size -= len(chunk)
                yield chunk
            end = await conn.read_exact(1, "chunk end")
            if end == b"\r":
                end = await conn.read_exact(1, "chunk end")
            if end != b"\n":
                raise InvalidResponse("invalid HTTP response: bad chunk end")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reusable and self._complete and self._conn.usable:
            self._transport._release(self._conn)
        else:
            self._conn.close()


def parse_head(head: bytes) -> tuple[int, str, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\n")
    status_line = lines[0][:-1] if lines[0].endswith(b"\r") else lines[0]
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise InvalidResponse("invalid HTTP response")
    headers: list[tuple[bytes, bytes]] = []
    for raw in lines[1:]:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t"):
            # An obsolete folded continuation of the previous header, as h11 reads it.
            if not headers:
                raise InvalidResponse("invalid HTTP response: malformed header")
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip()).strip())
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise InvalidResponse("invalid HTTP response: malformed header")
        headers.append((name, value.strip()))
    reason = (match.group(2) or b"").decode("latin-1")
    return int(match.group(1)), reason, headers


def request_bytes(request: httpx.Request, body: bytes, keepalive: bool) -> bytes:
    """The request as sent on the wire (`Connection: close` unless keep-alive)."""
    lines = [request.method.encode() + b" " + request.url.raw_path + b" HTTP/1.1"]
    has_length = False
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"connection":
            continue
        has_length = has_length or lower == b"content-length"
        lines.append(name + b": " + value)
    if body and not has_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: keep-alive" if keepalive else b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def find_head_end(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """Where the blank line ending a response head starts and how long it is; (-1, 0) if
    it has not arrived. CRLF or bare LF, as h11 and curl accept (`\n\n`, `\n\r\n`)."""
    lf = buffer.find(b"\n\n", start)
    crlf = buffer.find(b"\n\r\n", start)
    if crlf >= 0 and not 0 <= lf < crlf:
        return crlf, 3
    if lf >= 0:
        return lf, 2
    return -1, 0


def _wake_waiter(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _sock_connect(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, address: tuple[Any, ...]
) -> None:
    """`loop.sock_connect` for an address that is already resolved, with less around it.

    The loop's version resolves the address again and completes through a chain of done
    callbacks; with a fresh connection per probe that was a few percent of all probe CPU.
    Errors are the same: the socket's own error, raised as `OSError(errno, "Connect call
    failed ...")`.
    """
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass  # in progress: wait until the socket is writable
    fd = sock.fileno()
    waiter: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _wake_waiter, waiter)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, f"Connect call failed {address}")


class LeanTransport(httpx.AsyncBaseTransport):
    """httpx transport: HTTP/1.1 over asyncio, a new connection per request unless keep-alive."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Stream]] = defaultdict(list)
        #: host -> 4 or 6 for IP literals, 0 for names (parsing an address is not free).
        self._literal_family: dict[str, int] = {}
        self._closed = False

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    async def _connect(self, key: tuple[str, str, int]) -> _Stream:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        try:
            if scheme == "https":
                tls_stream = _TlsStream(loop, key)
                await loop.create_connection(
                    lambda: tls_stream, host, port, ssl=self._ssl(), server_hostname=host
                )
                return tls_stream
            return _SocketStream(loop, key, await self._open_socket(loop, host, port))
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc

    async def _open_socket(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int
    ) -> socket.socket:
        family = self._literal_family.get(host)
        if family is None:
            try:
                family = ipaddress.ip_address(host).version
            except ValueError:
                family = 0
            self._literal_family[host] = family
        if family:
            infos: list[Any] = [
                (
                    socket.AF_INET6 if family == 6 else socket.AF_INET,
                    socket.SOCK_STREAM,
                    0,
                    "",
                    (host, port),
                )
            ]
        else:
            # Names are resolved by the system resolver in a worker thread, each time, so a
            # DNS change is seen by the next probe.
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await _sock_connect(loop, sock, address)
            except BaseException as exc:
                sock.close()
                if not isinstance(exc, OSError):
                    raise
                error = exc
                continue
            return sock
        raise error or OSError(f"no address for {host}")

    def _release(self, conn: _Stream) -> None:
        idle = self._idle[conn.key]
        if self._closed or len(idle) >= MAX_IDLE_PER_HOST:
            conn.close()
        else:
            idle.append(conn)

    def _pooled(self, key: tuple[str, str, int]) -> _Stream | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        key = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        keepalive = bool(request.extensions.get(KEEPALIVE_EXTENSION, False))
        conn = self._pooled(key) if keepalive else None
        if conn is None:
            conn = await self._connect(key)
        try:
            return await self._exchange(conn, request, keepalive)
        except BaseException:
            conn.close()
            raise

    async def _exchange(
        self, conn: _Stream, request: httpx.Request, keepalive: bool
    ) -> httpx.Response:
        body = await request.aread()
        await conn.send(request_bytes(request, body, keepalive))
        while True:
            head = await conn.read_head(MAX_HEADER_BYTES)
            status, reason, headers = parse_head(head)
            if not 100 <= status < 200 or status == 101:
                break
        mode, length, reusable = self.body_mode(request.method, status, headers, keepalive)
        return httpx.Response(
            status_code=status,
            headers=headers,
            stream=_Body(self, conn, mode, length, reusable),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1")},
        )

    @staticmethod
    def body_mode(
        method: str, status: int, headers: list[tuple[bytes, bytes]], keepalive: bool
    ) -> tuple[str, int, bool]:
        connection = b""
        encoding = b""
        lengths: list[bytes] = []
        for name, value in headers:
            lower = name.lower()
            if lower == b"connection":
                connection = value.lower()
            elif lower == b"transfer-encoding":
                encoding = value.lower()
            elif lower == b"content-length":
                lengths.append(value)
        reusable = keepalive and b"close" not in connection
        if method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
            return "none", 0, reusable
        if encoding:
            if encoding.rsplit(b",", 1)[-1].strip() != b"chunked":
                return "close", 0, False
            return "chunked", 0, reusable
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                raise InvalidResponse("invalid HTTP response: bad Content-Length")
            length = int(lengths[0])
            return ("length", length, reusable) if length else ("none", 0, reusable)
        return "close", 0, False

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
