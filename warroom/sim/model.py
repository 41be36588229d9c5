"""The simulated fleet's dynamics: pure, seeded, stepped in ticks (no I/O, no clock, no asyncio).

Each service is a handful of floats updated with simple arithmetic per tick: offered load
(external demand amplified by client retries, calls from callers amplified by their retry
policy, retries of a work backlog), admission (load shed, rate limit), a queue served at an
effective capacity (reduced while workers wait on slow dependencies), latency, and the share
of requests that succeed in time. Dependencies see each other's previous-tick results, so a
tick is one pass over the services in caller-before-callee order.

Congestive collapse falls out of the queue: when offered load exceeds capacity the queue
fills, latency passes the clients' timeout, work is served after the client gave up (goodput
near zero: requests vary, so a few still make it), the work is retried, and the queue stays
full. Only admitting less (a rate limit, or queue-aware admission) gets the service out,
which is what the AWS, AT&T and tutorial scenarios teach. A seed varies the incident within
the scenario's `[variation]` envelope (seed 0: the history as written); drill mode holds
the timeline's titles (root cause, real responders' moves) back until `end_drill()`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from warroom.sim.scenario import RETRY_POLICIES, Scenario, ServiceSpec, topological_order

#: Time constant (s) of the failure average that drives retries.
RETRY_TAU = 10.0
#: Health states a service's `/health` port acts out.
HEALTH_STATES = ("ok", "slow", "error", "hang", "refuse")
_RETRY_ATTEMPTS = {"off": 1, "capped": 3, "backoff": 2, "unbounded": 10}
#: Shape of the per-request latency distribution (Erlang-k: coefficient of variation 0.5).
_SHAPE = 4
#: Queue-aware admission refuses work that would wait longer than this share of the timeout.
ADMISSION_WAIT = 0.4


#: How the feed labels narration of the real outage (the console shows it with the line).
HISTORY_LABEL = "what happened in the real outage"


class ControlError(ValueError):
    """A control request the model refuses; the message says why (shown to the operator)."""


class UnknownControl(KeyError):
    """No such service or control."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown control"


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One entry of the fleet's event feed."""

    seq: int
    sim_time: float
    service: str | None
    kind: str
    title: str
    #: Narration of what happened in the real outage ("history: ..."), not of this fleet.
    history: bool = False
    #: Held back during a drill and shown when it ended (`sim_time` is when it happened).
    revealed: bool = False

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seq": self.seq,
            "sim_time": round(self.sim_time, 3),
            "service": self.service,
            "kind": self.kind,
            "title": self.title,
            "history": self.history,
            "revealed": self.revealed,
        }
        if self.history:
            data["label"] = HISTORY_LABEL
        return data


def retry_multiplier(policy: str, fail: float) -> float:
    """Attempts per original request when a share `fail` of attempts fails."""
    if fail <= 0.0:
        return 1.0
    if policy == "off":
        return 1.0
    if policy == "capped":
        return 1.0 + fail + fail * fail
    if policy == "backoff":
        # Retries spread over time: one retry, and only half of it lands in the same window.
        return 1.0 + 0.5 * fail
    # unbounded: keep trying (up to 10 attempts) — the classic retry storm.
    return (1.0 - fail**10) / (1.0 - fail) if fail < 1.0 else 10.0


def retry_success(policy: str, ok: float) -> float:
    """Share of requests that succeed after retries, if each attempt succeeds with `ok`."""
    return 1.0 - (1.0 - ok) ** _RETRY_ATTEMPTS[policy]


def timely(latency: float, timeout: float) -> float:
    """Share of answers that reach the client before it gives up.

    Requests vary: the time to answer is Erlang-distributed (shape 4) around the mean
    `latency`, so goodput falls smoothly as the mean nears the timeout instead of dropping
    from all to nothing at one knife-edge load (56 % in time at a mean equal to the timeout).
    """
    if latency <= 0.0:
        return 1.0
    x = _SHAPE * timeout / latency
    if x > 60.0:
        return 1.0
    term = 1.0
    tail = 1.0
    for n in range(1, _SHAPE):
        term *= x / n
        tail += term
    return max(0.0, 1.0 - math.exp(-x) * tail)


def queueing_delay(per_request: float, utilisation: float) -> float:
    """Mean wait in line near saturation: variable requests queue before 100 % busy.

    A steep Kingman-like term (negligible below ~70 %, half a service time at 90 %, three
    at 97 %), so the edge of capacity is a slope one can see coming; past it the queue
    itself (a fluid backlog) takes over.
    """
    if utilisation <= 0.5:
        return 0.0
    rho = min(utilisation, 0.97)
    return per_request * 0.125 * rho**8 / (1.0 - rho)


class Edge:
    """Runtime view of an edge, with the callee resolved to its state object."""

    __slots__ = (
        "breaker",
        "critical",
        "dns_fail",
        "dst",
        "fallback",
        "fanout",
        "kind",
        "per_capacity",
        "site",
        "src",
        "unit_class",
    )

    def __init__(
        self,
        src: ServiceState,
        dst: ServiceState,
        fanout: float,
        critical: bool,
        fallback: ServiceState | None,
        site: str | None,
        kind: str,
        per_capacity: float = 0.0,
        unit_class: str | None = None,
    ) -> None:
        self.per_capacity = per_capacity
        self.unit_class = unit_class
        #: The caller's control that opens the breaker on this edge.
        self.breaker = "breaker_" + dst.name
        # Share of the caller's calls failing at name resolution, averaged like `fail_avg`:
        # callers keep retrying a name that does not resolve, and the moment it does, that
        # retry pressure lands on the callee (the herd that follows a DNS fix).
        self.dns_fail = 0.0
        self.src = src
        self.dst = dst
        self.fanout = fanout
        self.critical = critical
        self.fallback = fallback
        self.site = site
        self.kind = kind


class ServiceState:
    """One service's parameters, controls, faults and dynamic state."""

    __slots__ = (
        "calls",
        "cap_factor",
        "cap_scale",
        "change_effect",
        "change_factor",
        "change_fraction",
        "change_live_at",
        "class_fail",
        "class_pending",
        "dns_empty",
        "dns_visible_at",
        "fail_avg",
        "faults",
        "feeds",
        "index",
        "inflow",
        "interval",
        "last_health",
        "lat_avg",
        "name",
        "pending",
        "remediation_since",
        "removed",
        "rolled_back_at",
        "site_since",
        "spec",
        "stats",
        "sticky",
        "values",
        "zone_out",
        "zone_since",
    )

    def __init__(self, name: str, spec: ServiceSpec, index: int) -> None:
        self.name = name
        self.spec = spec
        self.index = index
        self.calls: list[Edge] = []
        self.feeds: list[Edge] = []
        # Control values by control name (see Fleet.controls for their meaning).
        self.values: dict[str, Any] = {}
        # Active faults: site ("*" = every site) -> {fault: parameter}.
        self.faults: dict[str, dict[str, float]] = {}
        self.inflow = 0.0
        # Failure share averaged over ~RETRY_TAU s: retries spread over time, not one tick.
        self.fail_avg = 0.0
        # Latency as callers experience it, averaged the same way (workers wait on it).
        self.lat_avg = spec.base_latency
        self.pending = 0.0
        self.interval = spec.attempt_interval
        self.removed = 0.0
        # Share of its failures a retry cannot fix (clients stuck on a removed zone).
        self.sticky = 0.0
        hm = spec.health_monitor
        zones = hm.zones if hm is not None else 1
        # Share of each zone's targets the health checks have taken out, and since when.
        self.zone_out = [0.0] * zones
        self.zone_since = [-1e18] * zones
        self.cap_scale = 1.0
        self.cap_factor = 1.0
        self.remediation_since: float | None = None
        self.site_since = -1e18
        self.dns_empty = False
        self.dns_visible_at = 0.0
        self.change_live_at: float | None = None
        self.rolled_back_at = -1e18
        self.change_effect = "error"
        self.change_factor = 10.0
        self.change_fraction = 1.0
        self.last_health = "ok"
        # Units in a bad state by class (sums to `pending`), and each class's failure
        # average as its callers see it.
        self.class_pending = dict.fromkeys(spec.classes, 0.0)
        self.class_fail = dict.fromkeys(spec.classes, 0.0)
        # Last tick's results, read by callers in the next tick and by /metrics.
        self.stats = {
            "offered": 0.0,
            "admitted": 0.0,
            "rejected": 0.0,
            "served": 0.0,
            "goodput": 0.0,
            "queue": 0.0,
            "latency": spec.base_latency,
            "success": 1.0,
            "capacity": spec.capacity,
            "dep_ok": 1.0,
            "timely": 1.0,
            "shed": 0.0,
            "remediated": 0.0,
            "front": 0.0,
        }

    @property
    def site(self) -> str | None:
        return self.values.get("failover")

    def class_sticky(self, cls: str) -> float:
        """Share of one class of units in a bad state (what a retry cannot fix), if sticky."""
        if not self.spec.sticky_units:
            return self.sticky
        return self.class_pending[cls] / (self.spec.population * self.spec.classes[cls])

    def active_faults(self) -> dict[str, float]:
        """Faults in force at the active site, including a live bad change's effect."""
        found: dict[str, float] = {}
        if self.faults:
            found.update(self.faults.get("*", {}))
            site = self.site
            if site is not None:
                found.update(self.faults.get(site, {}))
        return found


class Fleet:
    """The whole simulated fleet. `step(dt)` advances it; controls and faults change it."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int = 1,
        *,
        drill: bool = False,
        max_step: float | None = None,
    ) -> None:
        self.scenario = scenario
        #: Largest step taken at once (headless runs may take coarser steps than the server).
        self.max_step = max_step or scenario.max_step
        self.seed = seed
        self.rng = random.Random(seed)
        self.time = 0.0
        self.events: list[SimEvent] = []
        #: Drill mode: timeline titles (the root cause, the real responders' moves) are held
        #: back from the feed until `end_drill()`; responders see only what probes show.
        self.drill = drill
        self._held: list[SimEvent] = []
        self.variation, entries = self._vary(scenario, seed)
        self._timeline = sorted(enumerate(entries), key=lambda item: (item[1].at, item[0]))
        self._next_entry = 0
        graph: dict[str, list[str]] = {name: [] for name in scenario.services}
        for edge in scenario.edges:
            graph[edge.src].append(edge.dst)
        order = topological_order(graph)
        if order is None:  # parse_scenario already refuses cycles
            raise ValueError("dependency cycle")
        self.services: dict[str, ServiceState] = {}
        for index, name in enumerate(scenario.services):
            self.services[name] = ServiceState(name, scenario.services[name], index)
        self.order = [self.services[n] for n in order]
        for e in scenario.edges:
            src = self.services[e.src]
            runtime = Edge(
                src,
                self.services[e.dst],
                e.fanout,
                e.critical,
                self.services[e.fallback] if e.fallback else None,
                e.site,
                e.kind,
                e.per_capacity,
                e.unit_class,
            )
            (src.calls if e.kind == "call" else src.feeds).append(runtime)
        self.dns_names = {svc.spec.dns: svc for svc in self.services.values() if svc.spec.dns}
        for svc in self.services.values():
            self._init_controls(svc)
            svc.stats["capacity"] = svc.spec.capacity
            svc.cap_factor = self.variation["capacity"].get(svc.name, 1.0)
        self.demand_factor = float(self.variation["demand"])
        self.first_zone = int(self.variation["zone"])

    @staticmethod
    def _vary(scenario: Scenario, seed: int) -> tuple[dict[str, Any], list[Any]]:
        """Draw what this seed changes (within the scenario's stated envelope); 0 = history."""
        spec = scenario.variation
        rng = random.Random(f"{scenario.name}/{seed}")
        out: dict[str, Any] = {"fault_shift_s": 0.0, "capacity": {}, "demand": 1.0, "zone": 0}
        entries = list(scenario.timeline)
        if seed == 0:
            return out, entries
        shift = round(spec.fault_time * (2 * rng.random() - 1), 1)
        out["fault_shift_s"] = shift
        if shift:
            # Faults move together (their order is the history's); notes keep their times.
            entries = [
                e.model_copy(update={"at": max(0.0, e.at + shift)}) if e.fault != "info" else e
                for e in entries
            ]
        if spec.capacity:
            out["capacity"] = {
                name: round(1.0 + spec.capacity * (2 * rng.random() - 1), 4)
                for name in scenario.services
            }
        if spec.demand:
            out["demand"] = round(1.0 + spec.demand * (2 * rng.random() - 1), 4)
        if spec.zone:
            zones = max(
                (s.health_monitor.zones for s in scenario.services.values() if s.health_monitor),
                default=1,
            )
            out["zone"] = rng.randrange(zones)
        return out, entries

    # ------------------------------------------------------------------ controls

    def _init_controls(self, svc: ServiceState) -> None:
        v = svc.values
        v["rate_limit"] = None
        v["load_shed"] = 0.0
        v["retry_policy"] = svc.spec.retry_policy
        v["capacity"] = 100.0
        for edge in svc.calls:
            v[f"breaker_{edge.dst.name}"] = False
        spec = svc.spec
        if spec.sites:
            v["failover"] = spec.sites[0]
        if spec.dns:
            v["dns_record"] = "restored"
            if spec.dns_automation:
                v["dns_automation"] = True
        if spec.rollback:
            v["rollback"] = False
        if spec.automation:
            v["automation"] = True
        if spec.health_monitor is not None:
            v["health_check_removal"] = True
            if spec.health_monitor.velocity_lever:
                v["removal_velocity"] = None
        if spec.admission is not None:
            v["admission"] = spec.admission
        if spec.remediation:
            v["remediation_rate"] = 0.0
        if spec.classes:
            v["recover_first"] = spec.recover_first

    def _describe(self, svc: ServiceState, control: str) -> dict[str, Any]:
        spec = svc.spec
        d: dict[str, Any] = {
            "service": svc.name,
            "control": control,
            "value": svc.values[control],
            "min": None,
            "max": None,
            "choices": None,
            "unit": None,
            "dangerous": False,
        }
        if control == "rate_limit":
            d.update(
                label="Rate limit",
                kind="rate",
                min=0.0,
                max=round(spec.capacity * 10, 3),
                unit="req/s",
                description="Admit at most this many requests per second (none: no limit).",
            )
        elif control == "load_shed":
            d.update(
                label="Load shed",
                kind="level",
                min=0.0,
                max=100.0,
                unit="%",
                description="Drop this share of incoming requests at the door.",
            )
        elif control == "retry_policy":
            d.update(
                label="Retry policy",
                kind="choice",
                choices=list(RETRY_POLICIES),
                description="How calls to dependencies are retried (retries amplify load)."
                + (
                    f" {spec.unit.capitalize()} back off between re-attempts unless unbounded."
                    if spec.attempt_interval > 0
                    else ""
                ),
            )
        elif control == "capacity":
            d.update(
                label="Capacity",
                kind="level",
                min=0.0,
                max=400.0,
                unit="%",
                description="Scale serving capacity (100 % = normal).",
            )
        elif control.startswith("breaker_"):
            dep = control.removeprefix("breaker_")
            d.update(
                label=f"Breaker to {dep}",
                kind="toggle",
                description=f"Open: fail calls to {dep} fast instead of waiting on it.",
            )
        elif control == "failover":
            d.update(
                label="Failover",
                kind="choice",
                choices=list(spec.sites),
                dangerous=True,
                description="Serve from another site; it starts cold and warms up.",
            )
        elif control == "dns_record":
            d.update(
                label="DNS record",
                kind="choice",
                choices=["empty", "restored"],
                dangerous=True,
                description=f"Fix the DNS record {spec.dns} (restored) or empty it.",
            )
        elif control == "dns_automation":
            d.update(
                label="DNS automation",
                kind="toggle",
                description="DNS management automation (off: paused).",
            )
        elif control == "rollback":
            d.update(
                label="Roll back",
                kind="toggle",
                dangerous=True,
                description="Revert the last change (on: rolled back).",
            )
        elif control == "automation":
            d.update(
                label="Automation",
                kind="toggle",
                description="Automated changes/updates (off: paused).",
            )
        elif control == "health_check_removal":
            d.update(
                label="Health-check removal",
                kind="toggle",
                description="Let health checks remove capacity (off: hold off removal).",
            )
        elif control == "removal_velocity":
            d.update(
                label="Removal velocity limit",
                kind="rate",
                min=0.0,
                max=100.0,
                unit="%/h",
                description="Remove at most this share of capacity per hour (none: no limit).",
            )
        elif control == "admission":
            d.update(
                label="Admission",
                kind="choice",
                choices=["fifo", "queue-aware"],
                description="queue-aware: refuse at the door work that would time out queued.",
            )
        elif control == "remediation_rate":
            d.update(
                label="Remediation rate",
                kind="rate",
                min=0.0,
                max=spec.remediation_max,
                unit=f"{spec.remediation_unit}/min",
                description=f"{spec.remediation_unit.capitalize()} fixed by hand per minute.",
            )
        elif control == "recover_first":
            d.update(
                label="Recover first",
                kind="choice",
                choices=["none", *spec.classes],
                description=f"Which {spec.unit} are brought back first (none: all alike).",
            )
        meta = spec.controls.get(control)
        if meta is not None:
            for key in ("label", "description", "dangerous"):
                value = getattr(meta, key)
                if value is not None:
                    d[key] = value
        return {
            "service": d["service"],
            "control": d["control"],
            "label": d["label"],
            "kind": d["kind"],
            "value": d["value"],
            "min": d["min"],
            "max": d["max"],
            "choices": d["choices"],
            "unit": d["unit"],
            "dangerous": d["dangerous"],
            "description": d["description"],
        }

    def controls(self, service: str | None = None) -> list[dict[str, Any]]:
        """Every control (or one service's) with its current value, in a stable order."""
        targets = [self._service(service)] if service else list(self.services.values())
        return [self._describe(svc, name) for svc in targets for name in svc.values]

    def control(self, service: str, control: str) -> dict[str, Any]:
        svc = self._service(service)
        if control not in svc.values:
            raise UnknownControl(f"service {service!r} has no control {control!r}")
        return self._describe(svc, control)

    def _service(self, name: str | None) -> ServiceState:
        svc = self.services.get(name or "")
        if svc is None:
            raise UnknownControl(f"unknown service {name!r}")
        return svc

    def _validate(self, svc: ServiceState, control: str, value: Any) -> Any:
        desc = self._describe(svc, control)
        kind = desc["kind"]
        if kind == "toggle":
            if not isinstance(value, bool):
                raise ControlError(f"{control} is a toggle: value must be true or false")
            return value
        if kind == "choice":
            if value is None and "none" in desc["choices"]:
                return "none"
            if not isinstance(value, str) or value not in desc["choices"]:
                raise ControlError(f"{control} must be one of {', '.join(desc['choices'])}")
            return value
        if value is None and kind == "rate" and control in ("rate_limit", "removal_velocity"):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ControlError(f"{control} must be a number ({desc['unit']})")
        number = float(value)
        if not math.isfinite(number):
            raise ControlError(f"{control} must be a finite number")
        if number < desc["min"] or number > desc["max"]:
            raise ControlError(
                f"{control} must be between {desc['min']:g} and {desc['max']:g} {desc['unit']}"
            )
        return number

    def apply_control(
        self, service: str, control: str, value: Any, reason: str = ""
    ) -> dict[str, Any]:
        """Set a control (validated first: a bad value raises and changes nothing)."""
        svc = self._service(service)
        if control not in svc.values:
            raise UnknownControl(f"service {service!r} has no control {control!r}")
        value = self._validate(svc, control, value)
        old = svc.values[control]
        svc.values[control] = value
        if old != value:
            self._on_control_changed(svc, control, old, value)
            why = f" ({reason})" if reason else ""
            self._emit(svc.name, "mitigation", f"{svc.name}/{control}: {old} -> {value}{why}")
        return self._describe(svc, control)

    def _on_control_changed(self, svc: ServiceState, control: str, old: Any, value: Any) -> None:
        if control == "failover":
            svc.site_since = self.time
        elif control == "rollback" and value:
            svc.rolled_back_at = self.time
        elif control == "remediation_rate" and value and svc.remediation_since is None:
            svc.remediation_since = self.time
        elif control == "dns_record":
            if value == "empty":
                svc.dns_empty = True
            else:
                svc.dns_empty = False
                # Resolvers keep the cached empty answer for the negative TTL.
                svc.dns_visible_at = self.time + svc.spec.dns_negative_ttl

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        service: str,
        fault: str,
        *,
        site: str | None = None,
        factor: float = 10.0,
        fraction: float = 1.0,
        effect: str = "error",
        delay: float = 0.0,
    ) -> None:
        """Inject a fault now (`recover` clears the service's faults at that site or all)."""
        svc = self._service(service)
        key = site or "*"
        if fault == "recover":
            if site is None:
                svc.faults.clear()
            else:
                svc.faults.pop(key, None)
            if site is None and svc.change_live_at is not None and self.change_active(svc):
                svc.change_live_at = None  # repaired in place: the bad change is gone
            # A fixed (restarted) service starts with an empty queue; load decides the rest.
            svc.stats["queue"] = 0.0
            svc.stats["latency"] = svc.spec.base_latency
            svc.stats["success"] = 1.0
        elif fault in ("down", "refuse", "hang"):
            svc.faults.setdefault(key, {})[fault] = 1.0
        elif fault == "slow":
            svc.faults.setdefault(key, {})["slow"] = factor
        elif fault == "error":
            svc.faults.setdefault(key, {})["error"] = fraction
        elif fault == "dns_empty":
            if svc.spec.dns is None:
                raise ControlError(f"{service!r} has no DNS record")
            svc.dns_empty = True
            svc.values["dns_record"] = "empty"
        elif fault == "dns_restore":
            if svc.spec.dns is None:
                raise ControlError(f"{service!r} has no DNS record")
            svc.dns_empty = False
            svc.values["dns_record"] = "restored"
            svc.dns_visible_at = self.time + svc.spec.dns_negative_ttl
        elif fault == "bad_change":
            if not svc.spec.rollback:
                raise ControlError(f"{service!r} cannot take a change that can be rolled back")
            svc.change_live_at = self.time + delay
            svc.change_effect = effect
            svc.change_factor = factor
            svc.change_fraction = fraction
            svc.values["rollback"] = False
        elif fault != "info":
            raise ControlError(f"unknown fault {fault!r}")

    def note_fault(self, service: str, fault: str) -> None:
        """Record an injected fault (drills, tests) in the event feed."""
        kind = "recovery" if fault in ("recover", "dns_restore") else "fault"
        self._emit(service, kind, f"{service}: {fault} (injected)")

    def change_active(self, svc: ServiceState) -> bool:
        """Whether a bad change on `svc` is hurting it now (live and not yet rolled back)."""
        if svc.change_live_at is None or self.time < svc.change_live_at:
            return False
        return not svc.values.get("rollback", False)

    def _restarting(self, svc: ServiceState) -> bool:
        """Rolled back after the change went live, and the rollback has not finished yet."""
        live = svc.change_live_at
        if live is None or not svc.values.get("rollback") or svc.rolled_back_at < live:
            return False
        return self.time < svc.rolled_back_at + svc.spec.rollback_delay

    def dns_resolvable(self, svc: ServiceState) -> bool:
        """Whether callers can resolve `svc`'s name (record present and caches expired)."""
        return not svc.dns_empty and self.time >= svc.dns_visible_at

    # ------------------------------------------------------------------ time

    def _emit(
        self,
        service: str | None,
        kind: str,
        title: str,
        at: float | None = None,
        *,
        held: bool = False,
    ) -> None:
        when = self.time if at is None else at
        history = title.startswith("history:")
        if held:
            self._held.append(SimEvent(0, when, service, kind, title, history, True))
            return
        self.events.append(SimEvent(len(self.events) + 1, when, service, kind, title, history))

    def end_drill(self) -> list[SimEvent]:
        """End drill mode: the held timeline entries join the feed (marked `revealed`)."""
        self.drill = False
        out = []
        for held in self._held:
            event = SimEvent(
                len(self.events) + 1,
                held.sim_time,
                held.service,
                held.kind,
                held.title,
                held.history,
                True,
            )
            self.events.append(event)
            out.append(event)
        self._held = []
        return out

    def _run_timeline(self) -> None:
        while self._next_entry < len(self._timeline):
            _, entry = self._timeline[self._next_entry]
            if entry.at > self.time:
                return
            self._next_entry += 1
            if entry.requires is not None:
                service, _, control = entry.requires.partition("/")
                if not self.services[service].values.get(control, False):
                    self._emit(
                        entry.service,
                        "info",
                        f"did not happen ({entry.requires} paused): {entry.title}",
                        at=entry.at,
                        held=self.drill,
                    )
                    continue
            if entry.service is not None:
                self.inject(
                    entry.service,
                    entry.fault,
                    site=entry.site,
                    factor=entry.factor,
                    fraction=entry.fraction,
                    effect=entry.effect,
                    delay=entry.delay,
                )
            kind = entry.kind or (
                "info"
                if entry.fault == "info"
                else "recovery"
                if entry.fault in ("recover", "dns_restore")
                else "fault"
            )
            self._emit(entry.service, kind, entry.title, at=entry.at, held=self.drill)

    def step(self, dt: float) -> None:
        """Advance the simulation by `dt` simulated seconds."""
        if dt <= 0:
            return
        n = max(1, math.ceil(dt / self.max_step - 1e-9))
        sub = dt / n
        for _ in range(n):
            self._run_timeline()
            self._tick(sub)
            self.time += sub
        self._run_timeline()
        self._note_health_changes()

    def _tick(self, dt: float) -> None:
        rng_random = self.rng.random
        now = self.time
        smoothing = 1.0 - math.exp(-dt / RETRY_TAU)
        for svc in self.order:
            svc.inflow = 0.0
        for svc in self.order:
            spec = svc.spec
            st = svc.stats
            values = svc.values
            prev_fail = svc.fail_avg
            faults = svc.active_faults()
            change = svc.change_live_at is not None and self.change_active(svc)
            if change:
                faults = dict(faults)
                effect = svc.change_effect
                faults[effect] = (
                    svc.change_factor
                    if effect == "slow"
                    else svc.change_fraction
                    if effect == "error"
                    else 1.0
                )
            # Rolled back but still restarting: down until the rollback delay has passed.
            if svc.change_live_at is not None and self._restarting(svc):
                faults = dict(faults)
                faults["down"] = 1.0

            # ---- offered load: callers' requests, and the units' own re-attempts
            jitter = 1.0 + 0.02 * (rng_random() - 0.5)
            demand = spec.demand * self.demand_factor * jitter
            external = demand * retry_multiplier(spec.client_retry, prev_fail)
            attempts = 0.0
            if svc.pending > 0.0 and svc.interval > 0.0:
                attempts = svc.pending / svc.interval
            callers = external + svc.inflow
            offered = callers + attempts

            # ---- admission (with callers first, a rate limit paces only the re-attempts)
            keep = 1.0 - values["load_shed"] / 100.0
            limit = values["rate_limit"]
            if spec.callers_first:
                front = callers * keep
                back = attempts * keep
            else:
                front = 0.0
                back = offered * keep
            limited = 0.0
            if limit is not None and back > limit:
                limited = back - limit
                back = limit
            admitted = front + back

            # ---- capacity (workers blocked on slow dependencies serve fewer requests)
            site = svc.site
            wait = 0.0
            dep_ok = 1.0
            for edge in svc.calls:
                if edge.site is not None and edge.site != site:
                    continue
                if values.get(edge.breaker):
                    if edge.critical:
                        dep_ok = 0.0
                    continue
                dst = edge.dst
                cls = edge.unit_class
                if dst.spec.dns is not None and not self.dns_resolvable(dst):
                    ok = 0.0  # fails at name resolution: fast
                    edge.dns_fail += (1.0 - edge.dns_fail) * smoothing
                else:
                    if edge.dns_fail > 0.0:
                        edge.dns_fail = (
                            0.0 if edge.dns_fail < 1e-4 else edge.dns_fail * (1.0 - smoothing)
                        )
                    ok = 1.0 - (dst.class_fail[cls] if cls is not None else dst.fail_avg)
                    if edge.fanout > 0:
                        wait += edge.fanout * min(dst.lat_avg, spec.timeout)
                sticky = dst.sticky if cls is None else dst.class_sticky(cls)
                if sticky > 0.0:
                    # A client that resolved a removed zone fails again on every retry:
                    # retries add load there but cannot succeed.
                    fresh = min(1.0, ok / (1.0 - sticky)) if sticky < 1.0 else 0.0
                    ok = retry_success(values["retry_policy"], fresh) * (1.0 - sticky)
                else:
                    ok = retry_success(values["retry_policy"], ok)
                if edge.critical and edge.fanout > 0:
                    dep_ok *= ok
            scaled = values["capacity"] / 100.0 * svc.cap_scale * svc.cap_factor
            if site is not None:
                scaled *= spec.site_capacity.get(site, 1.0)
            scale = scaled * (1.0 - svc.removed)
            if svc.site_since > -1e17:
                since = now - svc.site_since
                if spec.failover_warmup > 0 and since < spec.failover_warmup:
                    warm = since / spec.failover_warmup
                    scale *= spec.failover_cold + (1.0 - spec.failover_cold) * warm
            base = spec.base_latency * faults.get("slow", 1.0)
            per_request = base + wait
            if site is not None:
                per_request += spec.site_latency.get(site, 0.0)
            capacity = spec.capacity * scale * spec.base_latency / per_request
            if limited > 0.0 and spec.reject_cost > 0.0:
                capacity = max(0.0, capacity - spec.reject_cost * limited)

            queue = st["queue"]
            hard_down = "down" in faults or "refuse" in faults
            hanging = "hang" in faults
            dropped = 0.0
            refused = 0.0
            front_served = 0.0
            front_latency = per_request
            in_time = 1.0
            if hard_down:
                served = 0.0
                queue = 0.0
                latency = 0.0
                success = 0.0
                attempt_ok = 0.0
                served_ok = 0.0
            else:
                # Callers first: they take what capacity they need; the queue gets the rest.
                front_served = min(front, capacity)
                rest = capacity - front_served
                if front > 0:
                    front_latency = per_request + queueing_delay(per_request, front / capacity)
                queue += back * dt
                if values.get("admission") == "queue-aware" and rest > 0:
                    # Refuse at the door what would wait past the callers' patience.
                    # What this tick serves, plus what may wait without timing out.
                    bound = (ADMISSION_WAIT * spec.timeout + dt) * rest
                    if queue > bound:
                        refused = (queue - bound) / dt
                        queue = bound
                back_served = min(queue, rest * dt) / dt if rest > 0 else 0.0
                queue -= back_served * dt
                bound = spec.max_queue * max(rest, 1e-9)
                if queue > bound:
                    dropped = (queue - bound) / dt
                    queue = bound
                served = front_served + back_served
                utilisation = (front + back) / capacity if capacity > 0 else 1.0
                latency = (
                    per_request
                    + queueing_delay(per_request, utilisation)
                    + (queue / rest if rest > 0 else (1e9 if back > 0 else 0.0))
                )
                if hanging:
                    latency = max(latency, 1e9)
                    front_latency = latency
                good_share = 1.0 - faults.get("error", 0.0)
                svc.sticky = 0.0
                if spec.health_monitor is not None and svc.removed > 0:
                    # Clients still resolve a removed zone's addresses (DNS failover is
                    # not instant): those connections fail.
                    svc.sticky = spec.health_monitor.misroute * svc.removed
                    good_share *= 1.0 - svc.sticky
                population_ok = 1.0
                if spec.population > 0:
                    population_ok = 1.0 - svc.pending / spec.population
                    if spec.sticky_units:
                        svc.sticky = svc.pending / spec.population
                in_time = timely(latency, spec.timeout)
                quality = in_time * good_share * dep_ok
                # An idle service is judged by what it would do with a request.
                back_share = min(1.0, back_served / back) if back > 1e-9 else 1.0
                if spec.callers_first:
                    front_q = timely(front_latency, spec.timeout) * good_share * dep_ok
                    front_share = min(1.0, front_served / front) if front > 1e-9 else 1.0
                    served_ok = front_q * front_share * keep
                    attempt_ok = quality * back_share * (back / attempts if attempts else 1.0)
                    in_time = timely(front_latency, spec.timeout)
                else:
                    share = min(1.0, served / offered) if offered > 1e-9 else 1.0
                    attempt_ok = quality * share
                    served_ok = attempt_ok
                success = served_ok * population_ok

            goodput = success * offered if offered > 1e-9 else 0.0

            # ---- load handed to dependencies (one tick later they answer with it)
            for edge in svc.calls:
                if edge.site is not None and edge.site != site:
                    continue
                dst = edge.dst
                flow = served * edge.fanout
                if edge.per_capacity > 0 and not hard_down:
                    # State sync and heartbeats: every worker talks to it, busy or not.
                    flow += edge.per_capacity * spec.capacity * scaled
                broken = values.get(edge.breaker)
                unresolvable = dst.spec.dns is not None and not self.dns_resolvable(dst)
                if broken or unresolvable:
                    if edge.fallback is not None:
                        edge.fallback.inflow += flow
                    continue
                fail = dst.fail_avg if edge.unit_class is None else dst.class_fail[edge.unit_class]
                if edge.dns_fail > fail:
                    fail = edge.dns_fail
                dst.inflow += flow * retry_multiplier(values["retry_policy"], fail)
                if edge.fallback is not None:
                    edge.fallback.inflow += flow * fail

            # ---- work backlog: units in a bad state, their retries, decay and repair
            recovered = 0.0
            if spec.population > 0 or spec.durable:
                recovered = min(svc.pending / dt, attempts * attempt_ok)
                pending = svc.pending - recovered * dt
                # By class: what attempts regained, what was lost, what hands fixed.
                regained = recovered * dt
                lost = 0.0
                fixed_units = 0.0
                if spec.durable:
                    pending += (
                        external
                        * (1.0 - success)
                        * dt
                        / max(1.0, retry_multiplier(spec.client_retry, prev_fail))
                    )
                    if spec.max_pending > 0:
                        pending = min(pending, spec.max_pending)
                else:
                    good = spec.population - pending
                    if spec.decay > 0 and dep_ok < 1.0:
                        lost = good * spec.decay * (1.0 - dep_ok) * dt
                        pending += lost
                    if spec.poisoned_by is not None:
                        poisoner = self.services[spec.poisoned_by]
                        if self.change_active(poisoner):
                            good = spec.population - pending
                            exposed = good - spec.population * (1.0 - spec.poison_share)
                            if exposed > 0:
                                lost += exposed * spec.poison_rate * dt
                                pending += exposed * spec.poison_rate * dt
                    if spec.remediation:
                        fixed = min(values["remediation_rate"], self.remediation_bound(svc))
                        st["remediated"] = fixed
                        fixed_units = fixed / 60.0 * dt
                        pending -= fixed_units
                    pending = min(pending, spec.population)
                svc.pending = max(0.0, pending)
                if spec.classes:
                    self._move_classes(svc, regained, lost, fixed_units, dt)
                # Units back off while their attempts fail, and speed up again as they succeed;
                # with unbounded retries they never back off (the storm a back-off timer stops).
                if spec.attempt_interval > 0 and attempts > 0:
                    if values["retry_policy"] == "unbounded":
                        svc.interval = spec.attempt_interval
                    elif attempt_ok < 0.5:
                        svc.interval = min(
                            svc.interval * (1.0 + 0.002 * dt), 8 * spec.attempt_interval
                        )
                    else:
                        svc.interval = max(spec.attempt_interval, svc.interval * (1.0 - 0.01 * dt))
            for edge in svc.feeds:
                if edge.kind == "recovery":
                    edge.dst.inflow += recovered * edge.fanout
                else:
                    edge.dst.inflow += goodput * edge.fanout

            # ---- load balancer health monitor
            if spec.health_monitor is not None:
                self._health_monitor(svc, dt)

            # ---- autoscaling (needs launches to succeed when `autoscale_via` is set)
            if spec.autoscale_max > 1.0 and not hard_down:
                utilisation = admitted / max(capacity, 1e-9)
                gate = 1.0
                if spec.autoscale_via is not None:
                    gate = self.services[spec.autoscale_via].stats["success"]
                if utilisation > 0.8:
                    svc.cap_scale = min(spec.autoscale_max, svc.cap_scale + 0.002 * dt * gate)
                elif utilisation < 0.4:
                    svc.cap_scale = max(1.0, svc.cap_scale - 0.001 * dt)

            st["offered"] = offered
            st["admitted"] = admitted - refused
            st["rejected"] = offered - admitted + dropped + refused
            st["served"] = served
            st["goodput"] = goodput
            st["queue"] = queue
            st["latency"] = front_latency if spec.callers_first and not hard_down else latency
            st["success"] = success
            st["capacity"] = capacity
            st["dep_ok"] = dep_ok
            st["timely"] = in_time
            st["shed"] = 1.0 - keep
            st["front"] = front_served
            svc.fail_avg += (1.0 - success - svc.fail_avg) * smoothing
            if spec.classes:
                for cls, share in spec.classes.items():
                    class_ok = 1.0 - svc.class_pending[cls] / (spec.population * share)
                    cf = svc.class_fail
                    cf[cls] += (1.0 - served_ok * class_ok - cf[cls]) * smoothing
            svc.lat_avg += (min(st["latency"], 1e6) - svc.lat_avg) * smoothing

    def _move_classes(
        self, svc: ServiceState, regained: float, lost: float, fixed: float, dt: float
    ) -> None:
        """Spread this tick's losses and recoveries over the classes of units.

        Losses hit each class by its share of good units; recoveries go to the class the
        `recover_first` lever names first (a re-attempt only as fast as its units attempt),
        the rest by each class's share of bad units.
        """
        spec = svc.spec
        pending = svc.class_pending
        first = svc.values.get("recover_first", "none")

        def take(amount: float, bound: float | None) -> None:
            if amount <= 0.0:
                return
            if first in pending:
                cap = pending[first] if bound is None else min(pending[first], bound)
                t = min(amount, cap)
                pending[first] -= t
                amount -= t
            total = sum(pending.values())
            if amount > 0.0 and total > 0.0:
                share = min(1.0, amount / total)
                for cls in pending:
                    pending[cls] -= pending[cls] * share

        bound = None
        if first in pending and svc.interval > 0:
            bound = pending[first] * dt / svc.interval
        take(regained, bound)
        if lost > 0.0:
            good = {c: spec.population * f - pending[c] for c, f in spec.classes.items()}
            total_good = sum(good.values())
            if total_good > 0.0:
                for cls, g in good.items():
                    pending[cls] += lost * g / total_good
        take(fixed, None)
        for cls, f in spec.classes.items():
            pending[cls] = min(max(0.0, pending[cls]), spec.population * f)
        # The total is the truth (clamped as before); classes follow it.
        total = sum(pending.values())
        if total > 0.0 and abs(total - svc.pending) > 1e-6 * spec.population:
            scale = svc.pending / total
            for cls in pending:
                pending[cls] *= scale

    def remediation_bound(self, svc: ServiceState) -> float:
        """Units per minute the responders and tools on hand can fix now."""
        spec = svc.spec
        if spec.remediation_ramp <= 0 or svc.remediation_since is None:
            return spec.remediation_max
        grown = (self.time - svc.remediation_since) / spec.remediation_ramp
        start = spec.remediation_start
        return start + (spec.remediation_max - start) * min(1.0, max(0.0, grown))

    def _health_monitor(self, svc: ServiceState, dt: float) -> None:
        """Per-zone checks: remove sick zones (velocity-limited), flap them back, churn."""
        hm = svc.spec.health_monitor
        assert hm is not None
        watched = self.services[hm.watch].stats
        sick = watched["latency"] > hm.latency_threshold or (
            hm.watch_errors and watched["success"] < 0.9
        )
        values = svc.values
        zones = hm.zones
        out = svc.zone_out
        before = svc.removed
        now = self.time
        if values["health_check_removal"]:
            budget = hm.remove_rate * zones * dt
            velocity = values.get("removal_velocity")
            if velocity is not None:
                budget = min(budget, velocity / 100.0 / 3600.0 * zones * dt)
            room = hm.max_remove * zones - sum(out)
            for k in range(zones):
                z = (self.first_zone + k) % zones
                if (
                    out[z] >= 1.0
                    and hm.flap_period > 0
                    and now - svc.zone_since[z] >= hm.flap_period
                ):
                    # Its targets are idle now, pass their checks, and are put back at once.
                    out[z] = 0.0
                    svc.zone_since[z] = now
                    if hm.churn_to is not None:
                        # Queued directly: the network service already ran this tick.
                        target = self.services[hm.churn_to]
                        target.stats["queue"] += hm.churn_work
                    self._emit(svc.name, "automation", f"{svc.name}: zone {z + 1} put back")
                    continue
                # With zonal failover a zone goes out whole: a removal once begun completes.
                committed = hm.flap_period > 0 and 0.0 < out[z] < 1.0
                if not sick and not committed:
                    if out[z] < 1.0 or hm.flap_period <= 0:
                        out[z] = max(0.0, out[z] - hm.restore_rate * dt)
                    continue
                if out[z] >= 1.0 or budget <= 0 or room <= 0:
                    continue
                if (
                    hm.flap_period > 0
                    and out[z] == 0.0
                    and now - svc.zone_since[z] < hm.flap_period
                ):
                    continue  # just put back: its checks pass for a while
                take = min(1.0 - out[z], budget, room)
                out[z] += take
                budget -= take
                room -= take
                if out[z] >= 1.0 - 1e-9:
                    out[z] = 1.0
                    svc.zone_since[z] = now
                    if hm.churn_to is not None:
                        # Deregistering a zone's targets is network work too.
                        self.services[hm.churn_to].stats["queue"] += hm.churn_work / 2
                    self._emit(svc.name, "automation", f"{svc.name}: zone {z + 1} removed")
        else:
            for z in range(zones):
                out[z] = max(0.0, out[z] - hm.disabled_restore_rate * dt)
        removed = sum(out) / zones
        if int(removed * 10) != int(before * 10):
            if removed > before:
                self._emit(
                    svc.name,
                    "automation",
                    f"{svc.name}: health checks removed {removed:.0%} of capacity",
                )
            else:
                self._emit(
                    svc.name,
                    "automation",
                    f"{svc.name}: capacity back in service, {removed:.0%} still removed",
                )
        svc.removed = removed

    # ------------------------------------------------------------------ reading

    def health(self, name: str) -> str:
        """What `/health` acts out: ok, slow, error, hang or refuse."""
        svc = self.services[name]
        faults = svc.active_faults()
        change = self.change_active(svc)
        effect = svc.change_effect if change else None
        if "refuse" in faults or "down" in faults or effect == "down" or self._restarting(svc):
            return "refuse"
        if "hang" in faults or effect == "hang":
            return "hang"
        # An injected error shows at once, before the next tick recomputes the rates.
        error_share = faults.get("error", 0.0)
        if effect == "error":
            error_share = max(error_share, svc.change_fraction)
        if error_share >= 0.1:
            return "error"
        st = svc.stats
        if st["latency"] >= svc.spec.timeout:
            return "hang"
        # Health checks bypass the load shedder: shedding on purpose is not an outage.
        kept = 1.0 - st["shed"]
        if st["success"] < 0.9 * kept:
            return "error"
        if st["latency"] > max(0.2, 3 * svc.spec.base_latency):
            return "slow"
        return "ok"

    def latency(self, name: str) -> float:
        return self.services[name].stats["latency"]

    def all_ok(self) -> bool:
        return all(self.health(name) == "ok" for name in self.services)

    def health_snapshot(self, refresh: bool = False) -> dict[str, tuple[str, float]]:
        """Every service's health and latency as of the last step (or now, if `refresh`)."""
        if refresh:
            self._note_health_changes()
        return {n: (svc.last_health, svc.stats["latency"]) for n, svc in self.services.items()}

    def _note_health_changes(self) -> None:
        for svc in self.services.values():
            state = self.health(svc.name)
            if state != svc.last_health:
                kind = "recovery" if state == "ok" else "info"
                self._emit(svc.name, kind, f"{svc.name}: {svc.last_health} -> {state}")
                svc.last_health = state

    def metrics(self, name: str) -> dict[str, Any]:
        """The model state of one service, as `/metrics` serves it."""
        svc = self.services[name]
        spec = svc.spec
        st = svc.stats
        # With callers first, a rate limit paces the units' re-attempts: their room is what
        # the callers leave (the edge a throttle must stay under).
        effective = st["capacity"] - st["front"]
        data: dict[str, Any] = {
            "service": name,
            "region": spec.region,
            "sim_time": round(self.time, 3),
            "health": self.health(name),
            "site": svc.site,
            "offered_rps": round(st["offered"], 3),
            "admitted_rps": round(st["admitted"], 3),
            "rejected_rps": round(st["rejected"], 3),
            "served_rps": round(st["served"], 3),
            "goodput_rps": round(st["goodput"], 3),
            "queue": round(st["queue"], 3),
            "latency_s": round(min(st["latency"], 1e6), 4),
            "success": round(st["success"], 4),
            "capacity_rps": round(st["capacity"], 3),
            "dependencies_ok": round(st["dep_ok"], 4),
            "nominal_capacity_rps": round(spec.capacity * svc.values["capacity"] / 100.0, 3),
            "effective_capacity_rps": round(effective, 3),
            "headroom_rps": round(effective - (st["admitted"] - st["front"]), 3),
            "in_time": round(st["timely"], 4),
            "queue_wait_s": round(min(st["queue"] / max(st["capacity"], 1e-9), 1e6), 3),
            "faults": sorted(svc.active_faults()),
            "controls": dict(svc.values),
        }
        if spec.population > 0:
            data["population"] = spec.population
            data["unit"] = spec.unit
            data["pending"] = round(svc.pending, 1)
            data["healthy_fraction"] = round(1.0 - svc.pending / spec.population, 4)
            if spec.classes:
                data["healthy_by_class"] = {
                    cls: round(1.0 - svc.class_pending[cls] / (spec.population * share), 4)
                    for cls, share in spec.classes.items()
                }
            if spec.remediation:
                data["remediation_bound"] = round(self.remediation_bound(svc), 1)
                data["remediated_per_min"] = round(svc.stats["remediated"], 1)
        if spec.durable:
            data["backlog"] = round(svc.pending, 1)
        if spec.dns:
            data["dns"] = {"name": spec.dns, "empty": svc.dns_empty}
        if spec.health_monitor is not None:
            data["capacity_removed"] = round(svc.removed, 4)
            data["zones_removed"] = [round(z, 3) for z in svc.zone_out]
        if spec.autoscale_max > 1.0:
            data["autoscale"] = round(svc.cap_scale, 3)
        if spec.rollback:
            data["change_active"] = self.change_active(svc)
        return data

    def trace_row(self) -> tuple[Any, ...]:
        """A compact snapshot of every service's state, for determinism checks."""
        return (
            round(self.time, 6),
            *(
                (
                    svc.stats["offered"],
                    svc.stats["success"],
                    svc.stats["latency"],
                    svc.stats["queue"],
                    svc.pending,
                    svc.removed,
                )
                for svc in self.services.values()
            ),
        )

    def dns_lookup(self, name: str) -> list[str] | None:
        """Addresses for a fleet DNS name: [] when the record is empty, None if unknown."""
        svc = self.dns_names.get(name.rstrip(".").lower())
        if svc is None:
            return None
        return [] if svc.dns_empty else [svc.spec.dns_address]
