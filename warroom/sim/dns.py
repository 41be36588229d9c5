"""The fleet's DNS server on loopback: A records from the model, empty when a fault empties them.

Answers over UDP and TCP. A known name with its record emptied gets NOERROR with no answer
(what resolvers saw in the AWS outage); an unknown name gets NXDOMAIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

#: Lookup: name -> addresses ([] = record emptied) or None (not a fleet name).
Lookup = Callable[[str], "list[str] | None"]
ANSWER_TTL = 5
_MAX_TCP_MESSAGE = 65535


def answer(wire: bytes, lookup: Lookup) -> bytes | None:
    """The wire-format response to one query, or None for garbage (dropped, as servers do)."""
    try:
        query = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError):
        return None
    if query.flags & dns.flags.QR:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    addresses = lookup(question.name.to_text(omit_final_dot=True))
    if addresses is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif addresses and question.rdtype == dns.rdatatype.A:
        response.answer.append(
            dns.rrset.from_text_list(question.name, ANSWER_TTL, "IN", "A", addresses)
        )
    return response.to_wire()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer(data, self.lookup)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DnsServer:
    """UDP + TCP DNS on 127.0.0.1 (same port number for both)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self, port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        # The UDP port is chosen first; TCP takes the same number (retry if it is taken).
        for _ in range(20):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self.lookup), local_addr=("127.0.0.1", port)
            )
            chosen = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._handle_tcp, "127.0.0.1", chosen)
            except OSError:
                transport.close()
                if port:
                    raise
                continue
            self._udp = transport
            self.port = chosen
            return
        raise OSError("no free port for the DNS server")

    async def _handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(2)
                (length,) = struct.unpack("!H", header)
                wire = await reader.readexactly(length)
                reply = answer(wire, self.lookup)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None
