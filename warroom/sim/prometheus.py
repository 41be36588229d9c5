"""The simulated fleet in Prometheus's terms: `/metrics` text, scrape targets, alert rules.

`render_metrics` writes one service's `Fleet.metrics(name)` dict in the text exposition
format (version 0.0.4), plus a request-latency histogram that `LatencyHistogram` integrates
between scrapes (the model has one latency per tick, not a distribution: each scrape adds the
requests served since the last one to the bucket of the current latency). `scrape_targets`
is the `http_sd_configs` answer the admin API serves; `alert_rules` the rule file that
`warroom sim rules SCENARIO` prints. All pure apart from the histogram's clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from warroom.sim.scenario import Scenario

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "warroom_sim_"
#: Histogram bucket bounds (seconds), Prometheus client defaults up to the longest timeouts.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A gap between scrapes longer than this counts as this long (a paused scraper, a stall).
MAX_GAP = 60.0

#: (metrics key, metric name, help) of the gauges every service has.
_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("offered_rps", "offered_rps", "Requests per second offered to the service."),
    ("admitted_rps", "admitted_rps", "Requests per second admitted (not rate-limited or shed)."),
    ("rejected_rps", "rejected_rps", "Requests per second rejected by limits or shedding."),
    ("served_rps", "served_rps", "Requests per second served (well or not)."),
    ("goodput_rps", "goodput_rps", "Requests per second served successfully in time."),
    ("capacity_rps", "capacity_rps", "Requests per second the service can serve now."),
    ("queue", "queue", "Requests waiting in the service's queue."),
    ("latency_s", "latency_seconds", "Current request latency in seconds."),
    ("success", "success_ratio", "Share of served requests that succeed."),
    ("dependencies_ok", "dependencies_ok_ratio", "Share of dependency calls that succeed."),
)
#: Optional keys (present for some services only).
_OPTIONAL: tuple[tuple[str, str, str], ...] = (
    ("healthy_fraction", "healthy_fraction", "Share of the population that is healthy."),
    ("pending", "pending", "Hosts or devices still waiting to recover."),
    ("backlog", "backlog", "Durable work waiting to be processed."),
    ("capacity_removed", "capacity_removed_ratio", "Share of capacity health checks removed."),
    ("autoscale", "autoscale_factor", "Capacity multiplier set by autoscaling."),
)
_HEALTH = ("ok", "slow", "error", "hang", "refuse")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, str]) -> str:
    inner = ",".join(f'{name}="{_escape(str(value))}"' for name, value in pairs.items())
    return f"{{{inner}}}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class LatencyHistogram:
    """Cumulative request-latency buckets of one service, integrated between scrapes."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None
        self.counts = [0.0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.goodput = 0.0

    def observe(self, served_rps: float, goodput_rps: float, latency_s: float) -> None:
        """Add what was served since the last call, all at `latency_s`."""
        now = self._clock()
        gap = 0.0 if self._last is None else min(max(now - self._last, 0.0), MAX_GAP)
        self._last = now
        served = max(served_rps, 0.0) * gap
        if served <= 0:
            return
        index = next((i for i, bound in enumerate(BUCKETS) if latency_s <= bound), len(BUCKETS))
        self.counts[index] += served
        self.sum += served * latency_s
        self.goodput += max(goodput_rps, 0.0) * gap

    def lines(self, name: str, base: Mapping[str, str]) -> list[str]:
        out = [
            f"# HELP {name} Request latency, integrated between scrapes.",
            f"# TYPE {name} histogram",
        ]
        total = 0.0
        for bound, count in zip((*BUCKETS, math.inf), self.counts, strict=True):
            total += count
            le = "+Inf" if math.isinf(bound) else _number(bound)
            out.append(f"{name}_bucket{_labels({**base, 'le': le})} {_number(round(total, 3))}")
        out.append(f"{name}_sum{_labels(base)} {_number(round(self.sum, 6))}")
        out.append(f"{name}_count{_labels(base)} {_number(round(total, 3))}")
        return out


def render_metrics(metrics: Mapping[str, Any], histogram: LatencyHistogram | None = None) -> bytes:
    """One service's metrics dict as Prometheus text (every family with HELP and TYPE)."""
    base = {"service": str(metrics.get("service", "")), "region": str(metrics.get("region", ""))}
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]):
        full = PREFIX + name
        lines.append(f"# HELP {full} {help_text}")
        lines.append(f"# TYPE {full} gauge")
        for labels, value in samples:
            lines.append(f"{full}{_labels({**base, **labels})} {_number(value)}")

    for key, name, help_text in (*_GAUGES, *_OPTIONAL):
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            gauge(name, help_text, [({}, float(value))])
    health = str(metrics.get("health", ""))
    gauge(
        "health",
        "1 for what /health acts out now (ok, slow, error, hang, refuse).",
        [({"state": state}, 1.0 if state == health else 0.0) for state in _HEALTH],
    )
    faults = metrics.get("faults") or []
    gauge(
        "faults_active",
        "Faults injected and not recovered.",
        [({}, float(len(faults)))],
    )
    controls = metrics.get("controls") or {}
    numeric = [
        ({"control": str(name)}, float(value))
        for name, value in sorted(controls.items())
        if isinstance(value, int | float)
    ]
    if numeric:
        gauge("control_value", "Numeric lever values (booleans as 0/1).", numeric)
    if "site" in metrics:
        gauge("site_info", "The site serving now.", [({"site": str(metrics["site"])}, 1.0)])
    if isinstance(metrics.get("sim_time"), int | float):
        gauge(
            "time_seconds",
            "Simulated seconds since the scenario started.",
            [({}, float(metrics["sim_time"]))],
        )
    if histogram is not None:
        histogram.observe(
            float(metrics.get("served_rps") or 0.0),
            float(metrics.get("goodput_rps") or 0.0),
            float(metrics.get("latency_s") or 0.0),
        )
        lines.extend(histogram.lines(PREFIX + "request_duration_seconds", base))
        full = PREFIX + "goodput_requests_total"
        lines.append(f"# HELP {full} Requests served successfully, integrated between scrapes.")
        lines.append(f"# TYPE {full} counter")
        lines.append(f"{full}{_labels(base)} {_number(round(histogram.goodput, 3))}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def scrape_targets(services: Mapping[str, tuple[int, str]]) -> list[dict[str, Any]]:
    """The `http_sd_configs` answer: one target group per service port (name -> port, region)."""
    return [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name, "region": region}}
        for name, (port, region) in services.items()
    ]


def _yaml_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def alert_rules(scenario: Scenario, for_s: float = 10.0, job: str = "warroom-sim") -> str:
    """A Prometheus rule file (YAML) for the scenario's services.

    `ServiceDown`: the port refuses (Prometheus cannot scrape it). `ServiceErrors`: under half
    of the offered requests are served well. `ServiceSlow`: latency past half the service's
    timeout. `ServiceQueueBuilding`: a queue longer than a second of capacity. Every alert
    carries `service`, so warroom matches it to the service and its runbooks.
    """
    duration = f"{for_s:g}s"
    group = _yaml_text(f"warroom-sim-{scenario.name}")
    out = [
        f"# Alert rules for the simulated fleet's {scenario.name} scenario.",
        f"# Scrape the fleet with job_name {job!r} (see the README's Alertmanager section).",
        "groups:",
        f"  - name: {group}",
        "    rules:",
    ]

    def rule(name: str, expr: str, summary: str, severity: str, service: str = "") -> None:
        out.extend(
            [
                f"      - alert: {name}",
                f"        expr: {_yaml_text(expr)}",
                f"        for: {duration}",
                "        labels:",
                f"          severity: {severity}",
            ]
        )
        if service:
            # One rule per service: distinct labels keep the rules apart for Prometheus.
            out.append(f"          service: {_yaml_text(service)}")
        out.extend(["        annotations:", f"          summary: {_yaml_text(summary)}"])

    rule(
        "ServiceDown",
        f'up{{job="{job}"}} == 0',
        "{{ $labels.service }} refuses connections",
        "page",
    )
    rule(
        "ServiceErrors",
        f"{PREFIX}goodput_rps / clamp_min({PREFIX}offered_rps, 1) < 0.5"
        f" and {PREFIX}offered_rps > 1",
        "{{ $labels.service }} serves under half of its requests well",
        "page",
    )
    for name, spec in scenario.services.items():
        rule(
            "ServiceSlow",
            f'{PREFIX}latency_seconds{{service="{name}"}} > {_number(spec.timeout / 2)}',
            f"{name} is slower than half its {spec.timeout:g}s timeout",
            "ticket",
            name,
        )
    rule(
        "ServiceQueueBuilding",
        f"{PREFIX}queue > clamp_min({PREFIX}capacity_rps, 1)",
        "{{ $labels.service }} has over a second of work queued",
        "ticket",
    )
    return "\n".join(out) + "\n"
