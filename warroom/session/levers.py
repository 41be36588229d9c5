"""The session's levers: the `ControlService` it owns, what the panel is shown of it, and the
jobs that build it from the simulated fleet or from warroom.toml."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from warroom.controls.model import ControlConfig, ControlKind, ControlSpec
from warroom.controls.service import ControlService
from warroom.errors import WarroomError
from warroom.events import ControlValue

if TYPE_CHECKING:
    from warroom.session.core import ConsoleSession

#: A job the session runs (see `ConsoleSession.add_job`), given the session.
SessionJob = Callable[["ConsoleSession"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LeverReadings:
    """One service's levers as last read: specs in order, values and read errors by key."""

    specs: tuple[ControlSpec, ...] = ()
    values: Mapping[str, ControlValue | None] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)


def readings(controls: ControlService | None, service: str | None) -> LeverReadings | None:
    """What the panel shows of `service`'s levers; None when no control service is attached."""
    if controls is None:
        return None
    if not service:
        return LeverReadings()
    specs = tuple(controls.specs(service))
    keys = [spec.key for spec in specs]
    return LeverReadings(
        specs,
        {key: controls.values.get(key) for key in keys},
        {key: controls.read_errors[key] for key in keys if key in controls.read_errors},
    )


#: The lever kinds that move where a service sits against its capacity (throttles, limits).
LOAD_KINDS = frozenset({ControlKind.RATE.value, ControlKind.LEVEL.value})
#: Longest metrics answer read (the whole fleet's is a few KiB).
MAX_METRICS_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class ServiceLoad:
    """Where a simulated service stands against its capacity now (requests per second)."""

    offered_rps: float
    goodput_rps: float
    queue: float
    effective_capacity_rps: float
    nominal_capacity_rps: float

    def line(self) -> str:
        """One line for the lever dialog: goodput against offered load, queue and capacity,
        and whether the offered load is past the edge (the queue then only grows)."""
        text = (
            f"goodput {self.goodput_rps:.0f} of {self.offered_rps:.0f} rps offered · "
            f"queue {self.queue:.0f} · capacity {self.effective_capacity_rps:.0f} rps"
        )
        if self.effective_capacity_rps < self.nominal_capacity_rps * 0.95:
            text += f" (nominal {self.nominal_capacity_rps:.0f})"
        if self.offered_rps > self.effective_capacity_rps:
            text += " · over the edge: the queue grows"
        return text


def shows_load(spec: ControlSpec) -> bool:
    """Whether the lever dialog shows the service's load next to this lever's value."""
    return spec.kind in LOAD_KINDS


class SimLoadReader:
    """Reads one service's load from the simulated fleet's metrics (`GET /metrics` of its
    admin API: each service's `/metrics.json`, all in one answer)."""

    def __init__(self, admin_url: str, timeout: float = 2.0) -> None:
        self.url = admin_url.rstrip("/") + "/metrics"
        self.timeout = timeout
        self._client = httpx.AsyncClient(trust_env=False, timeout=timeout)

    async def read(self, service: str) -> ServiceLoad:
        """The service's load now; `WarroomError` (one line) when it cannot be read."""
        try:
            async with self._client.stream("GET", self.url) as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_METRICS_BODY:
                        raise WarroomError(f"{self.url}: answer over {MAX_METRICS_BODY} bytes")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise WarroomError(f"{self.url}: {type(exc).__name__}: {exc}"[:300]) from None
        if status != 200:
            raise WarroomError(f"{self.url}: HTTP {status}")
        try:
            services = orjson.loads(body)["services"]
            (data,) = [m for m in services if m.get("service") == service]
            return ServiceLoad(
                offered_rps=float(data["offered_rps"]),
                goodput_rps=float(data["goodput_rps"]),
                queue=float(data["queue"]),
                effective_capacity_rps=float(data["effective_capacity_rps"]),
                nominal_capacity_rps=float(data["nominal_capacity_rps"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise WarroomError(f"{self.url}: no load figures for {service!r}") from None

    async def aclose(self) -> None:
        await self._client.aclose()


def sim_levers(admin_url: str, token_path: str | Path, **kwargs: Any) -> SessionJob:
    """The simulated fleet's levers (`GET /controls`), changed through its admin API, and
    its services' load for the lever dialog."""

    async def levers_from_sim(session: ConsoleSession) -> None:
        controls = await ControlService.for_sim(
            admin_url, token_path, session.recorder, **session.control_options(), **kwargs
        )
        loads = SimLoadReader(admin_url)
        session.service_load = loads.read
        try:
            await session.run_controls(controls)
        finally:
            session.service_load = None
            await loads.aclose()

    return levers_from_sim


def config_levers(
    configs: Sequence[ControlConfig], env: Mapping[str, str] | None = None, **kwargs: Any
) -> SessionJob:
    """The `[[controls]]` of warroom.toml."""

    async def levers_from_config(session: ConsoleSession) -> None:
        controls = ControlService.from_config(
            configs, session.recorder, env=env, **session.control_options(), **kwargs
        )
        await session.run_controls(controls)

    return levers_from_config
