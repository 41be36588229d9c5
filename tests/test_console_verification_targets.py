"""`verify: promql …` steps become probe targets of the console's worker (with Prometheus)."""

from __future__ import annotations

from pathlib import Path

from warroom.config import PrometheusSettings, WarroomConfig
from warroom.runbooks.parser import parse_runbook
from warroom.tui.cli import with_verification_targets

RUNBOOK = """\
---
title: Errors after a deploy
services: [web]
---
# Errors after a deploy

- [ ] Roll back
  - verify: `promql sum(rate(errors_total[1m])) < 0.01`
- [ ] Check the web is up
  - verify: `web is up`
"""


def books() -> dict:
    runbook, problems = parse_runbook(RUNBOOK, Path("runbooks/deploy.md"))
    assert runbook is not None and not problems, problems
    return {runbook.id: runbook}


def test_promql_verifications_are_probed_when_prometheus_is_set() -> None:
    config = WarroomConfig(prometheus=PrometheusSettings(url="http://127.0.0.1:9090"))
    problems: list[str] = []
    merged = with_verification_targets(config, books(), problems)
    (target,) = merged.targets
    assert target.promql == "sum(rate(errors_total[1m]))" and "verification" in target.tags
    assert problems == [] and config.targets == []  # the loaded config is left as it was


def test_without_prometheus_it_is_a_problem_not_a_target() -> None:
    problems: list[str] = []
    config = WarroomConfig()
    assert with_verification_targets(config, books(), problems) is config
    assert problems == ["1 promql verification(s) cannot be checked: set [prometheus] url"]
