"""The simulated fleet over real loopback sockets: health behaviours, DNS, admin API."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from typing import Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from warroom.sim.server import RunningFleet, running_fleet

FAST = 50.0  # sim speed in these tests; scenario events come after >= 30 s of sim time


async def health(port: int, timeout: float = 1.0) -> tuple[str, int | None, float]:
    """One fresh-connection GET /health: ("ok"|"refused"|"timeout", status, seconds)."""
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except ConnectionRefusedError:
        return "refused", None, time.monotonic() - start
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            data = await asyncio.wait_for(reader.read(), timeout)
        except TimeoutError:
            return "timeout", None, time.monotonic() - start
        if not data:
            return "reset", None, time.monotonic() - start
        return "answered", int(data.split(b" ", 2)[1]), time.monotonic() - start
    except ConnectionResetError:
        return "reset", None, time.monotonic() - start
    finally:
        writer.close()


async def post(
    fleet: RunningFleet, path: str, body: Any, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(fleet.admin_url + path, json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def get(fleet: RunningFleet, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(fleet.admin_url + path) as resp:
        return resp.status, await resp.json()


async def test_health_behaviours_follow_injected_faults(tmp_path: Any) -> None:
    async with running_fleet("tutorial", speed=1.0, token_path=tmp_path / "tok") as fleet:
        port = fleet.service_ports["web"]
        assert (await health(port))[:2] == ("answered", 200)

        status, _ = await post(fleet, "/faults", {"service": "web", "fault": "error"}, fleet.token)
        assert status == 200
        assert (await health(port))[:2] == ("answered", 503)

        await post(fleet, "/faults", {"service": "web", "fault": "recover"}, fleet.token)
        await post(fleet, "/faults", {"service": "web", "fault": "hang"}, fleet.token)
        kind, _, took = await health(port, timeout=0.5)
        assert kind == "timeout" and took >= 0.45

        await post(fleet, "/faults", {"service": "web", "fault": "recover"}, fleet.token)
        await post(fleet, "/faults", {"service": "web", "fault": "refuse"}, fleet.token)
        assert (await health(port))[0] == "refused"  # the listening socket is really closed

        await post(fleet, "/faults", {"service": "web", "fault": "recover"}, fleet.token)
        await asyncio.sleep(0.05)
        assert (await health(port))[:2] == ("answered", 200)  # same port, listening again

        # Slow: the model's latency (db x5 = 0.25 s, still below its capacity: at x8 it would
        # be overloaded and fail) is acted out in wall time.
        await post(fleet, "/faults", {"service": "db", "fault": "slow", "factor": 5}, fleet.token)
        await asyncio.sleep(0.3)  # a tick computes the new latency
        kind, status, took = await health(fleet.service_ports["db"], timeout=3)
        assert (kind, status) == ("answered", 200)
        assert took >= 0.2


async def test_keep_alive_and_metrics(tmp_path: Any) -> None:
    async with running_fleet("tutorial", speed=1.0, token_path=tmp_path / "tok") as fleet:
        reader, writer = await asyncio.open_connection("127.0.0.1", fleet.service_ports["db"])
        # Two pipelined requests on one connection, then one that closes it.
        writer.write(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        writer.write(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2)
        writer.close()
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert b"HTTP/1.1 404 Not Found" in data
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{fleet.service_ports['db']}/metrics.json") as resp,
        ):
            metrics = await resp.json()
        assert metrics["service"] == "db"
        assert metrics["health"] == "ok"
        assert metrics["capacity_rps"] > 0

        reader, writer = await asyncio.open_connection("127.0.0.1", fleet.service_ports["db"])
        writer.write(b"\x16\x03\x01 garbage\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2)
        writer.close()
        assert data.startswith(b"HTTP/1.1 400 Bad Request")


async def test_dns_answers_and_empties(tmp_path: Any) -> None:
    async with running_fleet("aws-us-east-1-2025", speed=1.0, token_path=tmp_path / "t") as fleet:
        host, port = fleet.dns_address.split(":")
        query = dns.message.make_query("dynamodb.us-east-1.sim", "A")
        reply = await dns.asyncquery.udp(query, host, port=int(port), timeout=2)
        assert reply.rcode() == dns.rcode.NOERROR
        assert [r.address for r in reply.answer[0]] == ["10.0.1.10"]
        tcp_reply = await dns.asyncquery.tcp(query, host, port=int(port), timeout=2)
        assert [r.address for r in tcp_reply.answer[0]] == ["10.0.1.10"]

        unknown = dns.message.make_query("nothing.us-east-1.sim", "A")
        reply = await dns.asyncquery.udp(unknown, host, port=int(port), timeout=2)
        assert reply.rcode() == dns.rcode.NXDOMAIN

        status, _ = await post(
            fleet, "/faults", {"service": "dynamodb", "fault": "dns_empty"}, fleet.token
        )
        assert status == 200
        reply = await dns.asyncquery.udp(query, host, port=int(port), timeout=2)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer == []

        status, body = await post(
            fleet, "/controls/dynamodb/dns_record", {"value": "restored"}, fleet.token
        )
        assert (status, body["value"]) == (200, "restored")
        reply = await dns.asyncquery.udp(query, host, port=int(port), timeout=2)
        assert [r.address for r in reply.answer[0]] == ["10.0.1.10"]


async def test_control_api_changes_model_and_refuses_bad_requests(tmp_path: Any) -> None:
    async with running_fleet("tutorial", speed=1.0, token_path=tmp_path / "tok") as fleet:
        assert stat.S_IMODE(os.stat(fleet.token_path).st_mode) == 0o600
        assert fleet.token_path.read_text().strip() == fleet.token

        status, body = await post(fleet, "/controls/db/rate_limit", {"value": 120}, fleet.token)
        assert status == 200 and body["value"] == 120.0
        assert fleet.model.services["db"].values["rate_limit"] == 120.0
        status, body = await get(fleet, "/controls/db/rate_limit")
        assert (status, body["value"], body["kind"]) == (200, 120.0, "rate")

        before = await get(fleet, "/controls")
        refused = [
            (await post(fleet, "/controls/db/rate_limit", {"value": 5}), 401),
            (await post(fleet, "/controls/db/rate_limit", {"value": 5}, "wrong"), 401),
            (await post(fleet, "/controls/db/warp", {"value": 5}, fleet.token), 404),
            (await post(fleet, "/controls/nope/rate_limit", {"value": 5}, fleet.token), 404),
            (await post(fleet, "/controls/web/load_shed", {"value": 101}, fleet.token), 422),
            (await post(fleet, "/controls/cache/failover", {"value": "x"}, fleet.token), 422),
            (await post(fleet, "/controls/web/load_shed", {"valu": 1}, fleet.token), 422),
            (await post(fleet, "/controls/web/load_shed", [1], fleet.token), 422),
            (await post(fleet, "/faults", {"service": "web", "fault": "melt"}, fleet.token), 422),
            (await post(fleet, "/faults", {"service": "web", "fault": "down"}), 401),
        ]
        for (status, body), expected in refused:
            assert status == expected, body
            assert body["error"]
        assert "between 0 and 100" in refused[4][0][1]["error"]
        assert "primary, replica" in refused[5][0][1]["error"]
        assert await get(fleet, "/controls") == before
        assert fleet.model.health("web") == "ok"

        status, events = await get(fleet, "/events?after=0")
        mitigations = [e for e in events["events"] if e["kind"] == "mitigation"]
        assert len(mitigations) == 1 and "db/rate_limit" in mitigations[0]["title"]
        assert mitigations[0]["wall_time"] > 1e9
        last = events["events"][-1]["seq"]
        assert (await get(fleet, f"/events?after={last}"))[1]["events"] == []


async def test_root_targets_and_timeline_feed(tmp_path: Any) -> None:
    async with running_fleet("tutorial", speed=FAST, token_path=tmp_path / "tok") as fleet:
        status, root = await get(fleet, "/")
        assert status == 200
        assert root["scenario"] == "tutorial" and root["speed"] == FAST
        assert root["dns"] == fleet.dns_address
        assert {s["name"]: s["port"] for s in root["services"]} == fleet.service_ports

        _, targets = await get(fleet, "/targets")
        names = {t["name"]: t for t in targets["targets"]}
        assert names["web"]["http"] == f"http://127.0.0.1:{fleet.service_ports['web']}/health"
        assert names["db-dns"]["dns"] == "db.tutorial.sim"
        assert names["db-dns"]["nameserver"] == fleet.dns_address
        assert "interval" in targets["defaults"]

        # 30 s of sim time at 50x: the db slow-down from the timeline is in the feed.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, feed = await get(fleet, "/events")
            if any(e["kind"] == "fault" and e["service"] == "db" for e in feed["events"]):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("timeline fault never reached the feed")
        assert feed["sim_time"] >= 30

        status, clock = await post(fleet, "/clock", {"paused": True}, fleet.token)
        assert status == 200 and clock["paused"] is True
        frozen = clock["sim_time"]
        await asyncio.sleep(0.3)
        assert (await get(fleet, "/"))[1]["sim_time"] == frozen


async def test_sim_fleet_fixture(sim_fleet: RunningFleet) -> None:
    assert (await health(sim_fleet.service_ports["web"]))[:2] == ("answered", 200)


async def test_a_taken_admin_port_is_one_plain_line() -> None:
    """The OS's reason, not asyncio's 'error while attempting to bind on address' wrapper."""
    import socket

    from warroom.errors import WarroomError

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(WarroomError) as caught:
            async with running_fleet(admin_port=port):
                pass
        assert str(caught.value) == f"cannot listen on 127.0.0.1:{port}: Address already in use"
    finally:
        taken.close()
