"""Small purpose-built servers on 127.0.0.1 for the probe tests: well-behaved and hostile."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    port: int
    connections: int = 0
    requests: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Server]:
    """Run `handler` for each connection; close everything (also hung handlers) on exit."""
    server_info = Server(port=0)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_info.connections += 1
        task = asyncio.current_task()
        assert task is not None
        server_info.tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            server_info.tasks.discard(task)
            writer.transport.abort()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    server_info.port = server.sockets[0].getsockname()[1]
    try:
        yield server_info
    finally:
        server.close()
        for task in list(server_info.tasks):
            task.cancel()
        await asyncio.sleep(0)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None


def http_response(status: int, body: bytes, content_type: str = "text/plain") -> bytes:
    reason = {200: "OK", 204: "No Content", 500: "Internal Server Error", 503: "Unavailable"}
    head = (
        f"HTTP/1.1 {status} {reason.get(status, 'X')}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def responder(
    status: int = 200, body: bytes = b"ok", delay: float = 0.0, server: list[Server] | None = None
) -> Handler:
    """A keep-alive-capable HTTP/1.1 server answering every request the same way."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            if server:
                server[0].requests += 1
            if delay:
                await asyncio.sleep(delay)
            writer.write(http_response(status, body))
            await writer.drain()
            if b"connection: close" in request.lower():
                return

    return handle


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer."""
    await asyncio.Event().wait()


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send a valid response one byte a second."""
    await read_request(reader)
    for byte in http_response(200, b"ok" * 100):
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1.0)


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer with something that is not HTTP."""
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(5)


def huge_body(with_length: bool) -> Handler:
    """Stream a 1 GB body (declared or chunked) for as long as the client keeps reading."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        size = 1 << 30
        if with_length:
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            chunk = b"x" * 65536
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            for _ in range(size // 65536):
                writer.write(chunk)
                await writer.drain()

    return handle


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request, then reset the connection (RST, not FIN)."""
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.contextmanager
def hanging_listener(backlog: int = 16) -> Iterator[str]:
    """A port that listens and never accepts: connections queue in the kernel (then, with the
    queue full, their SYNs are dropped), requests are never read. Costs the test no CPU, so
    a thousand hung targets can share it. Yields its /health URL."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(backlog)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/health"
    finally:
        sock.close()


_HTTP_PROCESS = r"""
import asyncio, sys

DELAY = float(sys.argv[1])
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:
            loop = asyncio.get_running_loop()
            loop.call_later(DELAY, self.answer) if DELAY else self.answer()

    def answer(self):
        self.transport.write(ANSWER)
        self.transport.close()

async def main():
    server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    ended = asyncio.get_running_loop().create_future()

    class Lifeline(asyncio.Protocol):
        def connection_lost(self, exc):
            ended.set_result(None)

    await asyncio.get_running_loop().connect_read_pipe(Lifeline, sys.stdin)
    await ended

asyncio.run(main())
"""


@contextlib.contextmanager
def http_process(delay: float = 0.0) -> Iterator[str]:
    """An HTTP server answering 200 after `delay`, in a process of its own: it keeps its
    timing while the test's own loop (or GIL) is busy. Ends with the test (its stdin closes).
    Yields its /health URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HTTP_PROCESS, str(delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/health"
    finally:
        process.kill()
        process.wait()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- DNS -------------------------------------------------------------------------------------


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, records: dict[str, list[str]], silent: set[str]) -> None:
        self.records = records
        self.silent = silent
        self.transport: Any = None
        self.queries = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().rstrip(".")
        if name in self.silent:
            return
        response = dns.message.make_response(query)
        if name == "servfail.test":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A and self.records[name]:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 30, "IN", "A", self.records[name])
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_server(
    records: dict[str, list[str]], silent: set[str] | None = None
) -> AsyncIterator[str]:
    """A loopback UDP DNS server: names in `records` answer A (empty list = no records),
    `servfail.test` fails, names in `silent` never answer, anything else is NXDOMAIN."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _DnsProtocol(records, silent or set()), local_addr=("127.0.0.1", 0)
    )
    try:
        yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()
