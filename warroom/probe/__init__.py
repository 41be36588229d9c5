"""Probes: HTTP, TCP and DNS checks, and the engine that schedules them and damps their states.

`ProbeEngine(targets, on_events)` is what the console and `warroom probe` run; targets come
from `warroom.config` (`load_config(...).resolved_targets()` or `config_from_sim(url)`).
"""

from __future__ import annotations

from warroom.probe.checks import ProbeResult
from warroom.probe.engine import ProbeEngine, TargetStatus

__all__ = ["ProbeEngine", "ProbeResult", "TargetStatus"]
