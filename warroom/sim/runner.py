"""Headless drills: play a scenario's model with a timeline of lever changes, no servers.

`run_drill(scenario, seed, levers, until)` steps the pure `Fleet` in big steps and records,
per service, when it first degraded, first went down and finally recovered, plus when each
lever was pulled and what the model said. `warroom sim run` prints that as one JSON object;
drill authors and the tests use it to compare a drill with the public timeline.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warroom.errors import WarroomError
from warroom.sim.model import ControlError, Fleet, UnknownControl
from warroom.sim.scenario import Scenario, _duration, _format_error, builtin_levers_dir

#: Health states that count as "down" (the rest of not-ok is "degraded").
DOWN_STATES = ("error", "hang", "refuse")


class LeverChange(BaseModel):
    """One lever change of a timeline: at `at` (simulated), set `service/control` to `value`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float
    service: str
    control: str
    #: null (TOML has none: write "none") lifts a rate limit.
    value: Any
    reason: str = ""

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> float:
        return _duration(value)


class LeverTimeline(BaseModel):
    """A file of lever changes (`[[lever]]` tables), e.g. the historic moves of an outage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str | None = None
    description: str = ""
    #: Another timeline (a shipped name or a file) whose changes this one adds to: a wrong
    #: move is the historic moves plus the mistake.
    base: str | None = None
    lever: list[LeverChange] = Field(default_factory=list)


#: Shipped wrong moves: `levers/wrong/<scenario>/<move>.toml`, each based on the history.
WRONG_DIR = "wrong"


def wrong_moves(scenario: str) -> list[tuple[str, LeverTimeline]]:
    """The shipped wrong moves of a scenario, by name, each with its full timeline."""
    folder = builtin_levers_dir() / WRONG_DIR / scenario
    if not folder.is_dir():
        return []
    names = sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml"))
    return [(name, load_levers(f"{WRONG_DIR}/{scenario}/{name}")) for name in names]


def load_levers(path: str | Path, _depth: int = 0) -> LeverTimeline:
    """Read a lever timeline TOML file; errors name the file and the key path.

    A name without a suffix that is no file is looked up among the shipped timelines
    (`aws-us-east-1-2025`, `wrong/att-2024/early-lift`); `base` changes come first.
    """
    p = Path(path)
    if not p.exists() and not p.suffix:
        shipped = builtin_levers_dir().joinpath(*p.parts[:-1], f"{p.name}.toml")
        if shipped.is_file():
            p = Path(str(shipped))
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WarroomError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WarroomError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise WarroomError(f"{p}: invalid TOML: {exc}") from None
    try:
        timeline = LeverTimeline.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WarroomError(f"{p}: {_format_error(dict(errors[0]))}{more}") from None
    if timeline.base is None:
        return timeline
    if _depth >= 4:
        raise WarroomError(f"{p}: base: timelines based on each other more than 4 deep")
    base = timeline.base
    if not Path(base).is_absolute() and (p.parent / base).is_file():
        base = str(p.parent / base)
    try:
        under = load_levers(base, _depth + 1)
    except WarroomError as exc:
        raise WarroomError(f"{p}: base {timeline.base!r}: {exc}") from None
    return timeline.model_copy(update={"lever": [*under.lever, *timeline.lever]})


@dataclass
class ServiceRecord:
    """When one service first degraded, first went down and last came back."""

    first_degraded: float | None = None
    first_down: float | None = None
    recovered: float | None = None
    unhealthy_s: float = 0.0
    down_s: float = 0.0
    final: str = "ok"
    states: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class DrillResult:
    """The outcome of one headless drill (see `as_dict` for the JSON shape)."""

    scenario: Scenario
    seed: int
    until: float
    services: dict[str, ServiceRecord]
    levers: list[dict[str, Any]]
    variation: dict[str, Any]
    fleet: Fleet

    def recovered(self, name: str) -> float | None:
        return self.services[name].recovered if self.services[name].final == "ok" else None

    def all_recovered(self) -> float | None:
        """When the last service came back for good (None if any is still not ok)."""
        if any(r.final != "ok" for r in self.services.values()):
            return None
        return max((r.recovered or 0.0 for r in self.services.values()), default=0.0)

    def unhealthy_total(self) -> float:
        return sum(r.unhealthy_s for r in self.services.values())

    def clock(self, t: float | None) -> str | None:
        return None if t is None else self.scenario.clock(t)

    def as_dict(self) -> dict[str, Any]:
        services = {}
        for name, r in self.services.items():
            services[name] = {
                "first_degraded_s": r.first_degraded,
                "first_degraded": self.clock(r.first_degraded),
                "first_down_s": r.first_down,
                "first_down": self.clock(r.first_down),
                "recovered_s": self.recovered(name),
                "recovered": self.clock(self.recovered(name)),
                "unhealthy_s": round(r.unhealthy_s, 1),
                "down_s": round(r.down_s, 1),
                "final": r.final,
            }
        history = [
            {**check, "simulated": self.clock(check["simulated_s"])}
            for check in history_checks(self)
        ]
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "start": self.scenario.start_label,
            "until_s": self.until,
            "variation": self.variation,
            "services": services,
            "levers": self.levers,
            "history": history,
        }


def _sample_step(scenario: Scenario, until: float) -> float:
    """Steps small enough to time transitions to ~0.1 % of the run, big enough to be fast."""
    return max(scenario.max_step, min(60.0, until / 1000.0))


def run_drill(
    scenario: Scenario,
    *,
    seed: int = 1,
    levers: LeverTimeline | list[LeverChange] | None = None,
    until: float | None = None,
    step: float | None = None,
    max_step: float | None = None,
) -> DrillResult:
    """Play `scenario` headless with `levers` applied at their times; record the phases."""
    changes = levers.lever if isinstance(levers, LeverTimeline) else list(levers or [])
    pending = sorted(enumerate(changes), key=lambda item: (item[1].at, item[0]))
    horizon = scenario.duration if until is None else until
    dt = step or max(max_step or 0.0, _sample_step(scenario, horizon))
    fleet = Fleet(scenario, seed=seed, max_step=max_step)
    records = {name: ServiceRecord() for name in scenario.services}
    applied: list[dict[str, Any]] = []
    nxt = 0

    def observe(elapsed: float) -> None:
        for name, rec in records.items():
            state = fleet.health(name)
            if state != "ok":
                rec.unhealthy_s += elapsed
                if rec.first_degraded is None:
                    rec.first_degraded = round(fleet.time, 1)
                if state in DOWN_STATES:
                    rec.down_s += elapsed
                    if rec.first_down is None:
                        rec.first_down = round(fleet.time, 1)
            elif rec.final != "ok":
                rec.recovered = round(fleet.time, 1)
            if state != rec.final:
                rec.states.append((round(fleet.time, 1), state))
            rec.final = state

    while True:
        while nxt < len(pending) and pending[nxt][1].at <= fleet.time + 1e-9:
            change = pending[nxt][1]
            nxt += 1
            value = None if change.value == "none" else change.value
            entry: dict[str, Any] = {
                "at_s": round(fleet.time, 1),
                "at": scenario.clock(fleet.time),
                "service": change.service,
                "control": change.control,
                "value": change.value,
            }
            try:
                fleet.apply_control(change.service, change.control, value, reason=change.reason)
                entry["ok"] = True
            except (ControlError, UnknownControl) as exc:
                entry["ok"] = False
                entry["error"] = str(exc)
            applied.append(entry)
        if fleet.time >= horizon - 1e-9:
            break
        target = min(horizon, fleet.time + dt)
        if nxt < len(pending):
            target = min(target, max(pending[nxt][1].at, fleet.time))
        elapsed = target - fleet.time
        if elapsed > 1e-9:
            fleet.step(elapsed)
            observe(elapsed)
    return DrillResult(scenario, seed, horizon, records, applied, fleet.variation, fleet)


def history_checks(result: DrillResult) -> list[dict[str, Any]]:
    """Each phase the scenario file expects, with the simulated time and whether it holds."""
    out = []
    for expect in result.scenario.history.expect if result.scenario.history else []:
        rec = result.services[expect.service]
        simulated = {
            "degraded": rec.first_degraded,
            "down": rec.first_down,
            "recovered": result.recovered(expect.service),
        }[expect.event]
        ok = simulated is not None and abs(simulated - expect.at) <= expect.tolerance
        if expect.after is not None:
            ok = ok and simulated is not None and simulated > expect.after
        out.append(
            {
                "service": expect.service,
                "event": expect.event,
                "historic_s": expect.at,
                "historic": result.scenario.clock(expect.at),
                "tolerance_s": expect.tolerance,
                "after_s": expect.after,
                "simulated_s": simulated,
                "ok": ok,
                "note": expect.note,
            }
        )
    return out
