"""Verification conditions and runbook suggestions, evaluated against probe views."""

from __future__ import annotations

import pytest

from warroom.runbooks.conditions import ConditionError, evaluate, parse_condition
from warroom.runbooks.parser import parse_runbook
from warroom.runbooks.suggest import suggest
from warroom.runbooks.tracking import opened_event, verification_events
from warroom.state import IncidentState, ProbeView, reduce


def probes(**states: str) -> dict[str, ProbeView]:
    """Targets named `<service>` or `<service>-<suffix>` (as the sim names them)."""
    return {
        name.replace("_", "-"): ProbeView(
            target=name.replace("_", "-"), service=name.split("_")[0], state=state
        )
        for name, state in states.items()
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dynamodb-dns is up", True),
        ("dynamodb is up", False),
        ("dynamodb is down or degraded", True),
        ("dynamodb is not down", False),
        ("lambda is not down", True),
        ("all dynamodb targets are up", False),
        ("all lambda targets are up", True),
        ("dynamodb-dns is up and lambda is up", True),
        ("dynamodb-dns is up and dynamodb is up", False),
        # Unknown: a missing target, or a probe without a result yet, can't be told.
        ("nlb is up", None),
        ("sts is up", None),
        ("sts is unknown", True),
        ("all nlb targets are up", None),
        ("all checkout targets are up", None),
        # Kleene AND: a definite failure beats "can't tell".
        ("nlb is up and dynamodb is up", False),
        ("nlb is up and lambda is up", None),
    ],
)
def test_evaluate(text: str, expected: bool | None) -> None:
    fleet = probes(dynamodb="down", dynamodb_dns="up", lambda_="up", sts="unknown")
    fleet["checkout"] = ProbeView(target="checkout", service="checkout", state="unknown")
    fleet["lambda"] = fleet.pop("lambda-")
    assert evaluate(parse_condition(text), fleet) is expected


def test_probe_without_service_counts_as_its_target_name() -> None:
    fleet = {"web": ProbeView(target="web", state="up")}
    assert evaluate(parse_condition("all web targets are up"), fleet) is True


def test_canonical_text_round_trips() -> None:
    text = "dynamodb-dns is up or degraded  and all dwfm targets are up and  nlb is not down"
    condition = parse_condition(text)
    assert str(condition) == (
        "dynamodb-dns is up or degraded and all dwfm targets are up and nlb is not down"
    )
    assert parse_condition(str(condition)) == condition
    assert condition.targets() == {"dynamodb-dns", "nlb"}
    assert condition.services() == {"dwfm"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty verification"),
        ("dynamodb up", "not understood"),
        ("dynamodb is", "not understood"),
        ("dynamodb is up or", "not understood"),
        ("dynamodb is up and", "not understood"),
        ("dynamodb is upp", "unknown state 'upp'"),
        ("all dwfm hosts are up", "not understood"),
        ("all dwfm targets be up", "not understood"),
        ("dyna/modb is up", "bad target name"),
    ],
)
def test_grammar_errors(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        parse_condition(text)


def _runbook(stem: str, services: str, states: str = "") -> object:
    states_line = f"states: [{states}]\n" if states else ""
    text = f"---\ntitle: {stem}\nservices: [{services}]\n{states_line}---\n"
    runbook, problems = parse_runbook(text, f"{stem}.md")
    assert problems == []
    return runbook


def test_suggest_ranks_precise_matches_first_and_triage_last() -> None:
    runbooks = [
        _runbook("triage", '"*"'),
        _runbook("dns", "dynamodb", "down"),
        _runbook("backlog", "ec2-launch, dwfm, network-manager"),
        _runbook("failover", "checkout"),
        _runbook("crowdstrike", "windows-fleet"),
        _runbook("reference", ""),
    ]
    fleet = probes(dynamodb="down", dynamodb_dns="down", dwfm="down", ec2="up", checkout="degraded")
    fleet["ec2-launch"] = ProbeView(target="ec2-launch", service="ec2-launch", state="up")
    ranked = suggest(runbooks, fleet)
    assert [s.runbook.id for s in ranked] == ["dns", "failover", "backlog", "triage"]
    dns = ranked[0]
    assert dns.why == "dynamodb down, dynamodb-dns down; 1 of 1 listed service affected"
    assert ranked[-1].score == 0.0
    assert ranked[-1].why.startswith("general triage: 4 targets down or degraded across 3")
    # A runbook for `down` only does not match a degraded service.
    fleet = probes(dynamodb="degraded")
    assert [s.runbook.id for s in suggest(runbooks, fleet)] == ["triage"]


def test_nothing_bad_suggests_nothing() -> None:
    runbooks = [_runbook("triage", '"*"'), _runbook("dns", "dynamodb")]
    assert suggest(runbooks, probes(dynamodb="up", dwfm="unknown")) == []
    assert suggest(runbooks, {}) == []


def test_unpacks_as_runbook_score_why() -> None:
    (runbook, score, why), *_ = suggest([_runbook("dns", "dynamodb")], probes(dynamodb="down"))
    assert (runbook.id, score) == ("dns", 1.0)
    assert why.startswith("dynamodb down")


def test_verification_events_follow_probe_changes_through_the_reducer() -> None:
    text = (
        "# DNS\n\n- [ ] Pause automation\n  - action: `dynamodb/dns_automation = false`\n"
        "- [ ] Restore the record\n  - verify: `dynamodb-dns is up`\n"
        "- [ ] Wait for the endpoint\n  - verify: `dynamodb is up and dynamodb-dns is up`\n"
    )
    runbook, _ = parse_runbook(text, "dns-record-missing.md")
    assert runbook is not None
    opened = opened_event(runbook)
    assert (opened.runbook, opened.title) == ("dns-record-missing", "DNS")
    assert opened.steps == ["pause-automation", "restore-the-record", "wait-for-the-endpoint"]
    state = reduce(IncidentState(), opened)

    def step(fleet: dict[str, ProbeView]) -> list[tuple[str, bool]]:
        nonlocal state
        events = verification_events(runbook, fleet, state.runbooks.get(runbook.id))
        for event in events:
            state = reduce(state, event)
        return [(e.step, e.holds) for e in events]

    assert step(probes(dynamodb="down", dynamodb_dns="down")) == []
    assert step(probes(dynamodb="down", dynamodb_dns="up")) == [("restore-the-record", True)]
    assert step(probes(dynamodb="down", dynamodb_dns="up")) == []
    assert step(probes(dynamodb="up", dynamodb_dns="up")) == [("wait-for-the-endpoint", True)]
    # Probes restarting (unknown) change nothing; a real regression un-verifies.
    assert step(probes(dynamodb="unknown", dynamodb_dns="unknown")) == []
    assert step(probes(dynamodb="up", dynamodb_dns="down")) == [
        ("restore-the-record", False),
        ("wait-for-the-endpoint", False),
    ]
    progress = state.runbooks["dns-record-missing"]
    assert not progress.steps["restore-the-record"].verified
