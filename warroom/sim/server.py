"""Serve a simulated fleet on loopback: one port per service, DNS, and the admin API.

Each service port speaks a minimal HTTP/1.1 (keep-alive and `Connection: close`) written on
`asyncio.Protocol`, which is cheap enough for thousands of probes per second and gives full
control over the behaviours the model asks for: a fast 200, a slow 200, a 503, a request that
hangs until the client gives up, and a refused connection (the listening socket is really
closed, and open connections are reset, while the model says `refuse`).

The model is ticked from an asyncio task at 10 Hz, scaled by the clock speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from warroom.errors import WarroomError, os_reason
from warroom.sim import prometheus
from warroom.sim.dns import DnsServer
from warroom.sim.model import Fleet, SimEvent
from warroom.sim.scenario import Scenario, load_scenario

TICK_INTERVAL = 0.1
#: A hanging /health keeps the connection this long at most (clients give up well before).
HANG_MAX = 120.0
#: A slow /health answers after the model's latency, capped here (wall seconds).
SLOW_MAX = 10.0
_MAX_HEAD = 16384
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS[503] = "Service Unavailable"


def _response(
    status: int, body: bytes, keep_alive: bool, content_type: str = "application/json"
) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("ascii") + body


class _HealthProtocol(asyncio.Protocol):
    """One client connection to a service port."""

    __slots__ = ("_timer", "buf", "busy", "endpoint", "transport")

    def __init__(self, endpoint: ServiceEndpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.endpoint.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > 4 * _MAX_HEAD:
            # A client piling up requests behind a hanging one: drop it, memory stays bounded.
            self.transport.abort()  # type: ignore[union-attr]
            return
        if len(self.buf) > _MAX_HEAD and self.buf.find(b"\r\n\r\n") < 0:
            self._write(_response(400, b'{"error":"request head too large"}', False), False)
            return
        self._process()

    def _process(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                self._write(_response(400, b'{"error":"bad request line"}', False), False)
                return
            length = 0
            connection = b""
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        length = -1
                elif name == b"connection":
                    connection = value.strip().lower()
            if length < 0 or length > _MAX_HEAD:
                self._write(_response(400, b'{"error":"bad content-length"}', False), False)
                return
            total = end + 4 + length
            if len(self.buf) < total:
                return
            del self.buf[:total]
            if parts[2] == b"HTTP/1.1":
                keep_alive = connection != b"close"
            else:
                keep_alive = connection == b"keep-alive"
            self._handle(parts[0], parts[1], keep_alive)

    def _handle(self, method: bytes, target: bytes, keep_alive: bool) -> None:
        endpoint = self.endpoint
        path = target.split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            self._write(_response(405, b'{"error":"only GET"}', keep_alive), keep_alive)
            return
        if path == b"/health":
            state, latency = endpoint.sim.health_state[endpoint.name]
            if state == "refuse":
                self.transport.abort()  # type: ignore[union-attr]
                return
            body = endpoint.sim.health_body(endpoint.name, state, latency)
            if state == "hang":
                # Answer nothing; the client gives up (a timeout), or we drop it eventually.
                self.busy = True
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(HANG_MAX, self._drop)
                return
            if state == "slow":
                self.busy = True
                loop = asyncio.get_running_loop()
                response = _response(200, body, keep_alive)
                self._timer = loop.call_later(
                    min(latency, SLOW_MAX), self._write, response, keep_alive
                )
                return
            status = 503 if state == "error" else 200
            self._write(_response(status, body, keep_alive), keep_alive)
        elif path == b"/metrics":
            metrics = endpoint.sim.model.metrics(endpoint.name)
            body = prometheus.render_metrics(metrics, endpoint.histogram)
            self._write(_response(200, body, keep_alive, prometheus.CONTENT_TYPE), keep_alive)
        elif path == b"/metrics.json":
            body = orjson.dumps(endpoint.sim.model.metrics(endpoint.name))
            self._write(_response(200, body, keep_alive), keep_alive)
        else:
            self._write(_response(404, b'{"error":"not found"}', keep_alive), keep_alive)

    def _write(self, data: bytes, keep_alive: bool) -> None:
        self._timer = None
        self.busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if not keep_alive:
            transport.close()
        elif self.buf:
            self._process()

    def _drop(self) -> None:
        self._timer = None
        if self.transport is not None:
            self.transport.close()


@dataclass(eq=False)
class ServiceEndpoint:
    """One service's listening port; closed for real while the model says `refuse`."""

    sim: SimServer
    name: str
    port: int = 0
    server: asyncio.Server | None = None
    connections: set[_HealthProtocol] = field(default_factory=set)
    reopening: bool = False
    histogram: prometheus.LatencyHistogram = field(default_factory=prometheus.LatencyHistogram)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _HealthProtocol(self), "127.0.0.1", self.port, reuse_address=True, backlog=512
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def refuse(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()

    async def reopen(self) -> None:
        if self.server is not None or self.reopening:
            return
        self.reopening = True
        try:
            await self.open()
        except OSError:
            pass  # the port is taken for now; the next tick tries again
        finally:
            self.reopening = False

    async def close(self) -> None:
        server = self.server
        self.refuse()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()


def write_token_file(path: Path, token: str) -> None:
    """Create the admin token file readable by the owner only (0600).

    Never an existing file or a symlink (O_EXCL|O_NOFOLLOW): writing the token into a file
    someone else made, or through a link they planted, would hand them the token.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise WarroomError(
            f"{path}: already exists; the token file must be new (remove it or pick another "
            "--token-file)"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode("ascii") + b"\n")
    finally:
        os.close(fd)


class SimServer:
    """A running fleet: the model, its clock, the service ports, DNS and the admin API."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        speed: float | None = None,
        seed: int = 1,
        token_path: str | Path | None = None,
    ) -> None:
        if speed is not None and not speed > 0:
            raise WarroomError(f"--speed must be > 0, not {speed}")
        self.scenario = scenario
        self.model = Fleet(scenario, seed=seed)
        self.seed = seed
        self.speed = speed if speed is not None else scenario.speed
        self.paused = False
        self.token = secrets.token_urlsafe(32)
        self._own_token_dir: Path | None = None
        if token_path is None:
            self._own_token_dir = Path(tempfile.mkdtemp(prefix="warroom-sim-"))
            token_path = self._own_token_dir / "token"
        self.token_path = Path(token_path)
        self.endpoints = {name: ServiceEndpoint(self, name) for name in scenario.services}
        self.dns = DnsServer(self.model.dns_lookup)
        self.health_state: dict[str, tuple[str, float]] = {}
        self.event_wall: dict[int, float] = {}
        self.admin_port = 0
        self._runner: Any = None
        self._tick_task: asyncio.Task[None] | None = None
        self._last_tick = 0.0
        self._refresh(now=True)

    # ---------------------------------------------------------------- lifecycle

    async def start(self, admin_port: int = 0, dns_port: int = 0) -> None:
        from warroom.sim.admin import start_admin

        try:
            write_token_file(self.token_path, self.token)
        except OSError as exc:
            raise WarroomError(f"{self.token_path}: cannot write token: {exc.strerror}") from None
        try:
            for endpoint in self.endpoints.values():
                await endpoint.open()
            await self.dns.start(dns_port)
        except OSError as exc:
            await self.stop()
            raise WarroomError(f"cannot listen on 127.0.0.1: {os_reason(exc)}") from None
        try:
            self._runner, self.admin_port = await start_admin(self, admin_port)
        except OSError as exc:
            await self.stop()
            raise WarroomError(
                f"cannot listen on 127.0.0.1:{admin_port}: {os_reason(exc)}"
            ) from None
        self._sync_listeners()
        self._last_tick = time.monotonic()
        self._tick_task = asyncio.create_task(self._tick_loop(), name="warroom-sim-tick")

    async def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for endpoint in self.endpoints.values():
            await endpoint.close()
        await self.dns.stop()
        if self._own_token_dir is not None:
            shutil.rmtree(self._own_token_dir, ignore_errors=True)

    # ---------------------------------------------------------------- clock

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            now = time.monotonic()
            elapsed = now - self._last_tick
            self._last_tick = now
            if not self.paused:
                # A stalled loop does not make the fleet jump ahead by minutes at once.
                self.model.step(min(elapsed, 1.0) * self.speed)
            self._refresh()
            self._sync_listeners()

    def _refresh(self, now: bool = False) -> None:
        self.health_state = self.model.health_snapshot(refresh=now)
        wall = time.time()
        for event in self.model.events[len(self.event_wall) :]:
            self.event_wall[event.seq] = wall

    def _sync_listeners(self) -> None:
        for name, endpoint in self.endpoints.items():
            refusing = self.health_state[name][0] == "refuse"
            if refusing and endpoint.server is not None:
                endpoint.refuse()
            elif not refusing and endpoint.server is None and not endpoint.reopening:
                asyncio.get_running_loop().create_task(endpoint.reopen())

    def after_change(self) -> None:
        """Call after a control or fault changed the model: ports and health follow at once."""
        self._refresh(now=True)
        self._sync_listeners()

    # ---------------------------------------------------------------- views

    def health_body(self, name: str, state: str, latency: float) -> bytes:
        return orjson.dumps(
            {
                "service": name,
                "status": state,
                "latency_ms": round(min(latency, 1e6) * 1000, 1),
                "sim_time": round(self.model.time, 1),
            }
        )

    @property
    def dns_address(self) -> str:
        return f"127.0.0.1:{self.dns.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def info(self) -> dict[str, Any]:
        sc = self.scenario
        return {
            "scenario": sc.name,
            "title": sc.title,
            "description": sc.description,
            "speed": self.speed,
            "sim_time": round(self.model.time, 3),
            "duration": sc.duration,
            "start_label": sc.start_label,
            "seed": self.seed,
            "dns": self.dns_address,
            "services": [
                {
                    "name": name,
                    "port": ep.port,
                    "region": sc.services[name].region,
                    "description": sc.services[name].description,
                }
                for name, ep in self.endpoints.items()
            ],
            "paused": self.paused,
        }

    def targets(self) -> dict[str, Any]:
        targets: list[dict[str, Any]] = []
        for name, ep in self.endpoints.items():
            spec = self.scenario.services[name]
            targets.append(
                {
                    "name": name,
                    "service": name,
                    "http": f"http://127.0.0.1:{ep.port}/health",
                    "expect": {"status": [200]},
                    "tags": [spec.region],
                }
            )
        for name, spec in self.scenario.services.items():
            if spec.dns:
                targets.append(
                    {
                        "name": f"{name}-dns",
                        "service": name,
                        "dns": spec.dns,
                        "nameserver": self.dns_address,
                        "expect": {"resolves": True, "contains_address": spec.dns_address},
                        "tags": [spec.region, "dns"],
                    }
                )
        return {
            "defaults": {
                "interval": "1s",
                "timeout": "2s",
                "failure_threshold": 2,
                "success_threshold": 2,
                "degraded_latency": "250ms",
            },
            "targets": targets,
        }

    def scrape_targets(self) -> list[dict[str, Any]]:
        """Prometheus `http_sd_configs` target groups: one per service port."""
        return prometheus.scrape_targets(
            {
                name: (ep.port, self.scenario.services[name].region)
                for name, ep in self.endpoints.items()
            }
        )

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        out = []
        for event in self.model.events[max(0, after) :]:
            out.append(self._event_dict(event))
        return out

    def _event_dict(self, event: SimEvent) -> dict[str, Any]:
        data = event.as_dict()
        data["wall_time"] = round(self.event_wall.get(event.seq, time.time()), 3)
        return data


@dataclass
class RunningFleet:
    """What `running_fleet` yields: addresses, token and the live model."""

    server: SimServer
    admin_url: str
    token: str
    token_path: Path
    dns_address: str
    service_ports: dict[str, int]

    @property
    def model(self) -> Fleet:
        return self.server.model


@contextlib.asynccontextmanager
async def running_fleet(
    scenario: str | Scenario = "tutorial",
    speed: float | None = None,
    seed: int = 1,
    token_path: str | Path | None = None,
    admin_port: int = 0,
    dns_port: int = 0,
) -> AsyncIterator[RunningFleet]:
    """Run a fleet on the current event loop (for tests and the demo); stops it on exit."""
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    server = SimServer(loaded, speed=speed, seed=seed, token_path=token_path)
    await server.start(admin_port=admin_port, dns_port=dns_port)
    try:
        yield RunningFleet(
            server=server,
            admin_url=server.admin_url,
            token=server.token,
            token_path=server.token_path,
            dns_address=server.dns_address,
            service_ports={name: ep.port for name, ep in server.endpoints.items()},
        )
    finally:
        await server.stop()
