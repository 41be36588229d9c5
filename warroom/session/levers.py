"""The session's levers: the `ControlService` it owns, what the panel is shown of it, and the
jobs that build it from the simulated fleet or from warroom.toml."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.controls.model import ControlConfig, ControlSpec
from warroom.controls.service import ControlService
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


def sim_levers(admin_url: str, token_path: str | Path, **kwargs: Any) -> SessionJob:
    """The simulated fleet's levers (`GET /controls`), changed through its admin API."""

    async def levers_from_sim(session: ConsoleSession) -> None:
        controls = await ControlService.for_sim(
            admin_url, token_path, session.recorder, **session.control_options(), **kwargs
        )
        await session.run_controls(controls)

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
