"""Scenario files: TOML (stdlib `tomllib`) validated with pydantic into a `Scenario`.

A scenario names services (capacity, latency, dependencies, special mechanisms such as DNS
records, host populations or a load-balancer health monitor), the edges between them and a
timeline of faults in simulated seconds. Errors name the file and the key path, e.g.
`scenarios/x.toml: services.dynamodb.capacity: must be > 0`.
"""

from __future__ import annotations

import random
import re
import tomllib
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warroom.durations import format_duration, parse_duration
from warroom.errors import WarroomError

RETRY_POLICIES = ("off", "capped", "backoff", "unbounded")
#: Faults a timeline entry or `POST /faults` can inject.
Fault = Literal[
    "down",
    "slow",
    "error",
    "hang",
    "refuse",
    "recover",
    "dns_empty",
    "dns_restore",
    "bad_change",
    "info",
]
FAULTS: tuple[str, ...] = get_args(Fault)
EVENT_KINDS = ("fault", "recovery", "automation", "mitigation", "info")
_NAME = r"^[a-z0-9][a-z0-9-]*$"
SCALE_PREFIX = "scale-"


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"not a duration: {value!r}")


Duration = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthMonitorSpec(_Strict):
    """A load balancer's health checker: removes capacity while the watched service is sick."""

    watch: str
    #: The watched service counts as sick above this latency (s) or below 90 % success.
    latency_threshold: float = Field(default=120.0, gt=0)
    #: Fraction of capacity removed per second while the watched service is sick.
    remove_rate: float = Field(default=0.002, ge=0, le=1)
    max_remove: float = Field(default=0.7, ge=0, le=1)
    #: Fraction restored per second once healthy (or fast when removal is disabled).
    restore_rate: float = Field(default=0.0002, ge=0, le=1)
    disabled_restore_rate: float = Field(default=0.01, ge=0, le=1)
    #: Checks run per zone: a zone whose checks fail is removed whole, then put back once
    #: its (now idle) targets pass again after `flap_period` s, and removed again (flapping).
    zones: int = Field(default=1, ge=1, le=12)
    flap_period: float = Field(default=0.0, ge=0)
    #: Re-adding a zone's targets is network work for this service (`churn_work` items).
    churn_to: str | None = None
    churn_work: float = Field(default=0.0, ge=0)
    #: Count the watched service as sick below 90 % success too (not only when slow).
    watch_errors: bool = True
    #: Share of requests that still reach removed capacity (stale DNS answers) and fail.
    misroute: float = Field(default=0.0, ge=0, le=1)
    #: Offers a `removal_velocity` lever: the largest share of capacity removed per hour.
    velocity_lever: bool = False

    @field_validator("flap_period", mode="before")
    @classmethod
    def _flap(cls, value: Any) -> float:
        return _duration(value)


class ControlMeta(_Strict):
    """Scenario-specific wording for a control (label, description, dangerous)."""

    label: str | None = None
    description: str | None = None
    dangerous: bool | None = None


class ServiceSpec(_Strict):
    """One simulated service: how much it can serve, how fast, and its special mechanisms."""

    description: str = ""
    region: str = "local"
    #: Requests per second the service can serve at 100 % capacity and base latency.
    capacity: float = Field(gt=0)
    base_latency: float = Field(default=0.02, gt=0)
    #: How long its clients wait (s); served later than this counts as a failure.
    timeout: float = Field(default=2.0, gt=0)
    #: External requests per second (users, schedulers) arriving at this service.
    demand: float = Field(default=0.0, ge=0)
    #: How its external clients retry when it fails.
    client_retry: Literal["off", "capped", "backoff", "unbounded"] = "capped"
    #: How this service retries calls to its dependencies (the `retry_policy` control).
    retry_policy: Literal["off", "capped", "backoff", "unbounded"] = "capped"
    #: Queue bound in seconds of work; beyond it requests are dropped.
    max_queue: float = Field(default=4.0, gt=0)
    #: Sites it can fail over between (regions or primary/replica); first is active.
    sites: list[str] = Field(default_factory=list)
    #: After a failover the new site serves this fraction at first, warming up over `warmup`.
    failover_cold: float = Field(default=0.5, gt=0, le=1)
    failover_warmup: float = Field(default=300.0, ge=0)
    #: DNS name served by the fleet's DNS server (A record), and its address.
    dns: str | None = None
    dns_address: str = "127.0.0.1"
    #: Seconds resolvers keep a cached empty answer after the record is fixed.
    dns_negative_ttl: float = Field(default=0.0, ge=0)
    dns_automation: bool = False
    #: Offers a `rollback` control that reverts a `bad_change` fault.
    rollback: bool = False
    #: Seconds between rolling back and the service working again.
    rollback_delay: float = Field(default=0.0, ge=0)
    #: Offers an `automation` toggle; timeline entries may require it.
    automation: bool = False
    #: Units (hosts, devices, leases) that must be in a good state for it to work; 0 = none.
    population: float = Field(default=0.0, ge=0)
    unit: str = "units"
    #: Each unit in a bad state retries its work every this many seconds (0: never by itself).
    attempt_interval: float = Field(default=0.0, ge=0)
    #: Fraction of good units lost per second while a critical dependency fails.
    decay: float = Field(default=0.0, ge=0, le=1)
    #: Failed external requests are kept and retried (work backlog), up to `max_pending`.
    durable: bool = False
    max_pending: float = Field(default=0.0, ge=0)
    #: A `bad_change` on this service crash-loops `poison_share` of our units.
    poisoned_by: str | None = None
    poison_rate: float = Field(default=0.01, ge=0, le=1)
    poison_share: float = Field(default=1.0, ge=0, le=1)
    #: Offers a `remediation_rate` control (units fixed by hand per minute).
    remediation: bool = False
    remediation_unit: str = "hosts"
    remediation_max: float = Field(default=10000.0, gt=0)
    health_monitor: HealthMonitorSpec | None = None
    #: Autoscaling: capacity may grow up to this multiple when busy (1 = off).
    autoscale_max: float = Field(default=1.0, ge=1)
    #: Scaling up needs instance launches from this service to succeed.
    autoscale_via: str | None = None
    controls: dict[str, ControlMeta] = Field(default_factory=dict)
    #: Offers an `admission` lever: "fifo" (admit until the queue bound) or "queue-aware"
    #: (refuse at the door once queued work would wait past the callers' timeout).
    admission: Literal["fifo", "queue-aware"] | None = None
    #: Per-site cost of serving elsewhere: capacity factor and extra latency (s) per request.
    site_capacity: dict[str, float] = Field(default_factory=dict)
    site_latency: dict[str, float] = Field(default_factory=dict)
    #: Hand fixes (the remediation lever) are bounded by the responders and tools on hand:
    #: this many units per minute at first, growing to `remediation_max` over `ramp`.
    remediation_start: float = Field(default=0.0, ge=0)
    remediation_ramp: float = Field(default=0.0, ge=0)
    #: Callers' requests are served before the units' own re-attempts (a registered device can
    #: call while others are still attaching; 911 never queues behind re-registration).
    callers_first: bool = False
    #: A caller's request is tied to one unit (a device's call, an app on its host): a retry
    #: reaches the same broken unit, so retries cannot fix a failure the units cause.
    sticky_units: bool = False
    #: Classes of units by share of the population (FirstNet devices, hospital hosts); an
    #: edge's `unit_class` depends on one class, and the `recover_first` lever (default
    #: below, "none": proportional) brings one class back before the others.
    classes: dict[str, float] = Field(default_factory=dict)
    recover_first: str = "none"
    #: Work a refusal at the rate limit costs, as a share of serving the request (a reject
    #: still parses and answers): a storm of attempts eats capacity even when throttled.
    reject_cost: float = Field(default=0.0, ge=0, le=1)

    @field_validator("remediation_ramp", mode="before")
    @classmethod
    def _ramp(cls, value: Any) -> float:
        return _duration(value)

    @field_validator(
        "failover_warmup", "dns_negative_ttl", "rollback_delay", "attempt_interval", mode="before"
    )
    @classmethod
    def _durations(cls, value: Any) -> float:
        return _duration(value)


class EdgeSpec(_Strict):
    """A dependency: `from` calls `to` `fanout` times per request (or feeds it work)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    src: str = Field(alias="from")
    dst: str = Field(alias="to")
    fanout: float = Field(default=1.0, ge=0)
    #: A failed critical call fails the request; a non-critical one degrades gracefully.
    critical: bool = True
    #: When `to` fails, that share of calls goes to this service instead (cache -> database).
    fallback: str | None = None
    #: Only used while the caller's active site is this one.
    site: str | None = None
    #: `call` waits for the answer; `feed` hands over work asynchronously (no waiting);
    #: `recovery` hands over one work item per `fanout` of the units the caller re-establishes.
    kind: Literal["call", "feed", "recovery"] = "call"
    #: Background calls (state sync, heartbeats) per second per req/s of the caller's scaled
    #: capacity: scaling a service up loads what it depends on.
    per_capacity: float = Field(default=0.0, ge=0)
    #: The caller depends only on this class of the callee's units (see `classes`).
    unit_class: str | None = None


class TimelineEntry(_Strict):
    """A scheduled fault or note, at `at` simulated seconds (or a duration like "2h37m")."""

    at: float
    service: str | None = None
    fault: Fault = "info"
    title: str
    kind: Literal["fault", "recovery", "automation", "mitigation", "info"] | None = None
    #: Only happens if this `service/control` is truthy then (e.g. automation not paused).
    requires: str | None = None
    site: str | None = None
    #: slow: latency multiplier; error: failing fraction.
    factor: float = Field(default=10.0, gt=0)
    fraction: float = Field(default=1.0, ge=0, le=1)
    #: bad_change: what the change does and how long after going live.
    effect: Literal["down", "error", "slow", "hang"] = "error"
    delay: float = Field(default=0.0, ge=0)

    @field_validator("at", "delay", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return _duration(value)


class Variation(_Strict):
    """What a seed varies (seed 0 plays the history as written)."""

    #: Every fault entry of the timeline moves by one shared shift of up to ± this (s).
    fault_time: float = Field(default=0.0, ge=0)
    #: Each service's capacity is scaled by a factor within 1 ± this.
    capacity: float = Field(default=0.0, ge=0, lt=1)
    #: External demand is scaled by one factor within 1 ± this.
    demand: float = Field(default=0.0, ge=0, lt=1)
    #: Which zone of a health-monitored load balancer flaps first.
    zone: bool = False

    @field_validator("fault_time", mode="before")
    @classmethod
    def _shift(cls, value: Any) -> float:
        return _duration(value)


class Expectation(_Strict):
    """A phase of the real outage the historic levers must reproduce, within `tolerance`."""

    service: str
    event: Literal["degraded", "down", "recovered"]
    at: float
    tolerance: float = Field(default=1800.0, ge=0)
    #: Instead of `at ± tolerance`: only that it happens after this time.
    after: float | None = None
    note: str = ""

    @field_validator("at", "tolerance", "after", mode="before")
    @classmethod
    def _times(cls, value: Any) -> float | None:
        return None if value is None else _duration(value)


class History(_Strict):
    """How the real outage went: the lever file of the historic moves and the phases it gave."""

    levers: str | None = None
    #: When the scenario's own repair happens (a drill played right ends before it).
    repair_at: float | None = None
    expect: list[Expectation] = Field(default_factory=list)

    @field_validator("repair_at", mode="before")
    @classmethod
    def _repair(cls, value: Any) -> float | None:
        return None if value is None else _duration(value)


class Scenario(_Strict):
    """A whole scenario: metadata, services, edges and the timeline."""

    name: str = Field(pattern=_NAME)
    title: str
    description: str
    #: Simulated seconds per wall second by default.
    speed: float = Field(default=1.0, gt=0)
    #: Length of the drill in simulated seconds (for listings and the console).
    duration: float
    #: Largest simulated step the model takes at once (longer for slow, days-long scenarios).
    max_step: float = Field(default=2.0, gt=0, le=600)
    #: Wall-clock label of simulated second 0, e.g. "2025-10-19 23:45 PDT".
    start_label: str = ""
    regions: list[str] = Field(default_factory=list)
    domain: str = "sim"
    services: dict[str, ServiceSpec]
    edges: list[EdgeSpec] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    variation: Variation = Field(default_factory=Variation)
    history: History | None = None

    def clock(self, t: float) -> str:
        """Simulated second `t` as the wall clock of the real outage, e.g. "10-20 02:25 PDT"."""
        match = re.match(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?: (\S+))?$", self.start_label)
        if match is None:
            return f"{self.start_label or 'T'}+{format_duration(t)}".replace("T+0+", "T+")
        year, month, day, hour, minute, zone = match.groups()
        start = datetime(int(year), int(month), int(day), int(hour), int(minute))
        when = start + timedelta(seconds=round(t))
        text = (
            when.strftime("%H:%M") if when.date() == start.date() else when.strftime("%m-%d %H:%M")
        )
        return f"{text} {zone}" if zone else text

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_field(cls, value: Any) -> float:
        return _duration(value)

    @field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        if not value:
            raise ValueError("needs at least one service")
        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"bad service name {name!r} (use a-z, 0-9 and '-')")
        return value


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "missing": "required",
    "extra_forbidden": "unknown key",
    "string_pattern_mismatch": "must match {pattern}",
}


def _format_error(err: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in err["loc"]:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    path = "".join(parts) or "(top)"
    template = _MESSAGES.get(err["type"])
    if template is not None:
        ctx = {
            k: f"{v:g}" if isinstance(v, float) else v for k, v in (err.get("ctx") or {}).items()
        }
        message = template.format(**ctx)
    else:
        message = err["msg"].removeprefix("Value error, ")
    return f"{path}: {message}"


def _check_references(scenario: Scenario) -> list[str]:
    """Cross-references pydantic cannot see: edges, timeline and mechanisms name real things."""
    problems: list[str] = []
    names = scenario.services
    for i, edge in enumerate(scenario.edges):
        for key, ref in (("from", edge.src), ("to", edge.dst), ("fallback", edge.fallback)):
            if ref is not None and ref not in names:
                problems.append(f"edges[{i}].{key}: unknown service {ref!r}")
        if edge.src == edge.dst:
            problems.append(f"edges[{i}]: a service cannot depend on itself")
        if edge.site is not None and edge.src in names and edge.site not in names[edge.src].sites:
            problems.append(f"edges[{i}].site: {edge.src!r} has no site {edge.site!r}")
        callee = names.get(edge.dst)
        if (
            edge.unit_class is not None
            and callee is not None
            and edge.unit_class not in callee.classes
        ):
            problems.append(f"edges[{i}].unit_class: {edge.dst!r} has no class {edge.unit_class!r}")
    for name, svc in names.items():
        for key, ref in (
            ("poisoned_by", svc.poisoned_by),
            ("autoscale_via", svc.autoscale_via),
            ("health_monitor.watch", svc.health_monitor.watch if svc.health_monitor else None),
        ):
            if ref is not None and ref not in names:
                problems.append(f"services.{name}.{key}: unknown service {ref!r}")
        poisoner = names.get(svc.poisoned_by or "")
        if poisoner is not None and not poisoner.rollback:
            problems.append(
                f"services.{name}.poisoned_by: {svc.poisoned_by!r} needs rollback = true"
            )
        hm = svc.health_monitor
        if hm is not None and hm.churn_to is not None and hm.churn_to not in names:
            problems.append(f"services.{name}.health_monitor.churn_to: unknown {hm.churn_to!r}")
        for key, table in (
            ("site_capacity", svc.site_capacity),
            ("site_latency", svc.site_latency),
        ):
            for site in table:
                if site not in svc.sites:
                    problems.append(f"services.{name}.{key}: no site {site!r}")
        if svc.classes:
            total = sum(svc.classes.values())
            if svc.population <= 0:
                problems.append(f"services.{name}.classes: needs a population")
            elif any(v <= 0 for v in svc.classes.values()) or abs(total - 1.0) > 1e-6:
                problems.append(f"services.{name}.classes: shares must be > 0 and sum to 1")
        if svc.recover_first != "none" and svc.recover_first not in svc.classes:
            problems.append(f"services.{name}.recover_first: no class {svc.recover_first!r}")
        if svc.population > 0 and svc.durable:
            problems.append(f"services.{name}: population and durable exclude each other")
    for i, entry in enumerate(scenario.timeline):
        if entry.service is not None and entry.service not in names:
            problems.append(f"timeline[{i}].service: unknown service {entry.service!r}")
            continue
        if entry.fault != "info" and entry.service is None:
            problems.append(f"timeline[{i}].service: required for fault {entry.fault!r}")
            continue
        target = names.get(entry.service or "")
        if target is not None:
            if entry.fault in ("dns_empty", "dns_restore") and target.dns is None:
                problems.append(f"timeline[{i}].fault: {entry.service!r} has no dns record")
            if entry.fault == "bad_change" and not target.rollback:
                problems.append(f"timeline[{i}].fault: {entry.service!r} needs rollback = true")
            if entry.site is not None and entry.site not in target.sites:
                problems.append(f"timeline[{i}].site: {entry.service!r} has no site {entry.site!r}")
        if entry.requires is not None:
            service, _, control = entry.requires.partition("/")
            if service not in names or control not in ("automation", "dns_automation"):
                problems.append(
                    f"timeline[{i}].requires: must be <service>/automation or "
                    f"<service>/dns_automation of a known service, not {entry.requires!r}"
                )
            elif control == "automation" and not names[service].automation:
                problems.append(f"timeline[{i}].requires: {service!r} has no automation")
            elif control == "dns_automation" and not names[service].dns_automation:
                problems.append(f"timeline[{i}].requires: {service!r} has no dns_automation")
    if scenario.history is not None:
        for i, expect in enumerate(scenario.history.expect):
            if expect.service not in names:
                problems.append(f"history.expect[{i}].service: unknown service {expect.service!r}")
    # Load flows callers -> callees in one pass per tick, so the graph must be acyclic.
    graph: dict[str, list[str]] = {n: [] for n in names}
    for edge in scenario.edges:
        if edge.src in graph and edge.dst in graph:
            graph[edge.src].append(edge.dst)
    if not problems and topological_order(graph) is None:
        problems.append("edges: dependencies form a cycle")
    return problems


def topological_order(graph: dict[str, list[str]]) -> list[str] | None:
    """Callers before callees (stable: scenario order), or None if there is a cycle."""
    indegree = dict.fromkeys(graph, 0)
    for targets in graph.values():
        for t in targets:
            indegree[t] += 1
    ready = [n for n in graph if indegree[n] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for t in graph[node]:
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    return order if len(order) == len(graph) else None


def parse_scenario(data: dict[str, Any], source: str) -> Scenario:
    """Validate parsed TOML; raise `WarroomError` naming `source` and the key path."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = _format_error(dict(errors[0]))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WarroomError(f"{source}: {first}{more}") from None
    problems = _check_references(scenario)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise WarroomError(f"{source}: {problems[0]}{more}")
    return scenario


def load_scenario_file(path: str | Path) -> Scenario:
    """Read and validate one scenario TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WarroomError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WarroomError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise WarroomError(f"{path}: invalid TOML: {exc}") from None
    return parse_scenario(data, str(path))


def _builtin_dir() -> Any:
    return resources.files("warroom.sim") / "scenarios"


def builtin_levers_dir() -> Any:
    """Where the shipped lever timelines live (`scenarios/levers/NAME.toml`)."""
    return _builtin_dir() / "levers"


def builtin_names() -> list[str]:
    """Names of the scenarios shipped inside the package, sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _builtin_dir().iterdir()
        if entry.name.endswith(".toml")
    )


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, `scale-N` (generated), or a TOML file path."""
    if name_or_path.startswith(SCALE_PREFIX) and name_or_path[len(SCALE_PREFIX) :].isdigit():
        return generate_scale_scenario(int(name_or_path[len(SCALE_PREFIX) :]))
    if name_or_path in builtin_names():
        resource = _builtin_dir() / f"{name_or_path}.toml"
        source = f"scenarios/{name_or_path}.toml"
        try:
            data = tomllib.loads(resource.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise WarroomError(f"{source}: invalid TOML: {exc}") from None
        return parse_scenario(data, source)
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return load_scenario_file(path)
    known = ", ".join([*builtin_names(), "scale-N"])
    raise WarroomError(f"unknown scenario {name_or_path!r} (known: {known}; or a .toml file)")


def generate_scale_scenario(count: int, seed: int = 7) -> Scenario:
    """A generated fleet of `count` services in layers (for load tests of probes and server).

    Services `svc-0000`... form about eight layers; each calls two services of the next
    layer. A few faults are scheduled so that probes see changes.
    """
    if not 1 <= count <= 20000:
        raise WarroomError(f"scale-{count}: the number of services must be 1..20000")
    rng = random.Random(seed)
    names = [f"svc-{i:04d}" for i in range(count)]
    width = max(10, count // 8)
    services: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        services[name] = {
            "capacity": 2000.0,
            "base_latency": 0.005 + 0.01 * rng.random(),
            "demand": 200.0 if i < width else 0.0,
            "timeout": 2.0,
        }
        layer = i // width
        layer_next = range((layer + 1) * width, min((layer + 2) * width, count))
        if layer_next:
            for dst in rng.sample(list(layer_next), k=min(2, len(layer_next))):
                edges.append({"from": name, "to": names[dst], "fanout": 0.3, "critical": False})
    timeline: list[dict[str, Any]] = []
    faults = ["slow", "error", "hang", "refuse"]
    for k in range(min(count, 8)):
        target = names[rng.randrange(count)]
        at = 60.0 * (k + 1)
        timeline.append(
            {"at": at, "service": target, "fault": faults[k % 4], "title": f"{target} fault"}
        )
        timeline.append(
            {"at": at + 45.0, "service": target, "fault": "recover", "title": f"{target} ok"}
        )
    data = {
        "name": f"scale-{count}",
        "title": f"Generated fleet of {count} services",
        "description": f"{count} generated services in layers, a few scheduled faults",
        "speed": 1.0,
        "duration": 600.0,
        "services": services,
        "edges": edges,
        "timeline": timeline,
    }
    return parse_scenario(data, f"scale-{count}")
