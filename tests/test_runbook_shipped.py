"""The shipped runbooks: lint clean, and every action and verification fits the drill fleets."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.cli import main
from warroom.runbooks.conditions import AllTargets, TargetIs
from warroom.runbooks.library import load_library, shipped_dir
from warroom.runbooks.model import Runbook
from warroom.runbooks.suggest import suggest
from warroom.sim.model import Fleet
from warroom.sim.scenario import Scenario, builtin_names, load_scenario
from warroom.state import ProbeView

SHIPPED = shipped_dir()
EXPECTED = {
    "general-triage",
    "dns-record-missing",
    "control-plane-backlog",
    "health-checks-removing-capacity",
    "bad-deploy",
    "network-core-change",
    "regional-failover",
    "cache-failover",
}
SRE_HEADINGS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Verification", "Escalation")


@pytest.fixture(scope="module")
def runbooks() -> list[Runbook]:
    assert SHIPPED is not None
    found, problems = load_library([SHIPPED])
    assert problems == []
    return found


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return [load_scenario(name) for name in builtin_names()]


def test_shipped_runbooks_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert SHIPPED is not None
    assert main(["runbook", "lint", str(SHIPPED)]) == 0
    assert capsys.readouterr().out == f"{len(EXPECTED)} runbooks ok\n"


def test_every_runbook_is_shipped_with_the_sre_headings(runbooks: list[Runbook]) -> None:
    assert {rb.id for rb in runbooks} == EXPECTED
    for runbook in runbooks:
        titles = {s.title for s in runbook.sections}
        assert set(SRE_HEADINGS) <= titles, runbook.id
        assert runbook.steps, runbook.id
        for step in runbook.steps:
            # A shell block is a diagnostic: it never changes the fleet (that's what actions do).
            for command in step.commands:
                assert "POST" not in command.code and "-X" not in command.code, runbook.id


def _fleets_with(service: str, scenarios: list[Scenario]) -> list[Scenario]:
    return [s for s in scenarios if service in s.services]


def test_actions_name_real_controls_with_valid_values(
    runbooks: list[Runbook], scenarios: list[Scenario]
) -> None:
    checked = 0
    for runbook in runbooks:
        for step in runbook.steps:
            action = step.action
            if action is None:
                continue
            fleets = _fleets_with(action.service, scenarios)
            assert fleets, f"{runbook.id}:{step.line}: no scenario has {action.service!r}"
            for scenario in fleets:
                fleet = Fleet(scenario)
                # Raises on an unknown control or a value the control refuses.
                applied = fleet.apply_control(action.service, action.control, action.value)
                assert applied["value"] == action.value, f"{runbook.id}:{step.line}"
                checked += 1
    assert checked >= 25


def test_verifications_and_services_name_real_targets(
    runbooks: list[Runbook], scenarios: list[Scenario]
) -> None:
    services = {name for s in scenarios for name in s.services}
    dns_targets = {
        f"{name}-dns" for s in scenarios for name, spec in s.services.items() if spec.dns
    }
    for runbook in runbooks:
        assert set(runbook.services) - {"*"} <= services, runbook.id
        for step in runbook.steps:
            if step.verify is None:
                continue
            for clause in step.verify.clauses:
                if isinstance(clause, TargetIs):
                    assert clause.target in services | dns_targets, f"{runbook.id}:{step.line}"
                else:
                    assert isinstance(clause, AllTargets)
                    assert clause.service in services, f"{runbook.id}:{step.line}"


def test_dns_runbook_pauses_automation_before_fixing_the_record(
    runbooks: list[Runbook],
) -> None:
    runbook = next(rb for rb in runbooks if rb.id == "dns-record-missing")
    actions = [s.action.raw for s in runbook.steps if s.action is not None]
    assert actions.index("dynamodb/dns_automation = false") < actions.index(
        "dynamodb/dns_record = restored"
    )
    restore = next(s for s in runbook.steps if s.action and s.action.control == "dns_record")
    assert str(restore.verify) == "dynamodb-dns is up"


def _probes(states: dict[str, str]) -> dict[str, ProbeView]:
    return {
        target: ProbeView(target=target, service=target.removesuffix("-dns"), state=state)
        for target, state in states.items()
    }


@pytest.mark.parametrize(
    ("states", "first"),
    [
        ({"dynamodb-dns": "down", "dynamodb": "down", "lambda": "down"}, "dns-record-missing"),
        ({"dynamodb": "up", "dwfm": "down", "ec2-launch": "down"}, "control-plane-backlog"),
        ({"nlb": "degraded", "network-manager": "degraded"}, "health-checks-removing-capacity"),
        ({"windows-fleet": "down", "airline-checkin": "down"}, "bad-deploy"),
        ({"core-network": "down", "device-registration": "down"}, "network-core-change"),
        ({"checkout": "down"}, "regional-failover"),
        ({"cache": "down", "db": "degraded"}, "cache-failover"),
    ],
)
def test_the_matching_runbook_is_suggested_first(
    runbooks: list[Runbook], states: dict[str, str], first: str
) -> None:
    ranked = suggest(runbooks, _probes(states))
    assert ranked[0].runbook.id == first
    assert ranked[-1].runbook.id == "general-triage"


def test_shipped_dir_is_what_the_wheel_packs() -> None:
    assert SHIPPED is not None
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '"runbooks" = "warroom/_runbooks"' in pyproject
    assert SHIPPED.resolve() == (Path(__file__).parent.parent / "runbooks").resolve()
