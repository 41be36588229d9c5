"""Runbook parsing: front matter, sections, steps and their annotations, with file lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.runbooks.conditions import AllTargets, TargetIs
from warroom.runbooks.model import RunbookError
from warroom.runbooks.parser import load_runbook, parse_action, parse_runbook, read_runbook, slugify

ANNOTATED = """\
---
title: DynamoDB DNS record missing
services: [dynamodb, "dwfm"]
states:
  - down
severity: sev1
weight: 20
---

# DNS record missing

## Meaning

The regional endpoint's record is **empty**; see [the summary](https://example.com).

| signal | value |
|---|---|
| dynamodb-dns | down |

## Mitigation

- [ ] Pause the DNS automation
  - action: `dynamodb/dns_automation = false`
  - verify: `dynamodb-dns is down or degraded and all dynamodb targets are up`

  Why first: the automation would overwrite a hand-made fix.

  ```sh {name=dig}
  dig @127.0.0.1 -p 5353 dynamodb.us-east-1.sim
  ```

  ```text
  not a command
  ```
- [x] Restore the endpoint's DNS record
  - id: restore
  - action: dynamodb/dns_record = restored
  - verify: `dynamodb is not down`
- [ ] Pause the DNS automation
  ```bash
  curl -s http://127.0.0.1:8080/health
  ```
"""


def test_front_matter_fields() -> None:
    runbook, problems = parse_runbook(ANNOTATED, "runbooks/dns-record-missing.md")
    assert problems == []
    assert runbook is not None
    assert runbook.id == "dns-record-missing"
    assert runbook.title == "DynamoDB DNS record missing"
    assert runbook.services == ["dynamodb", "dwfm"]
    assert runbook.states == ["down"]
    assert runbook.severity == "SEV1"
    assert runbook.source == ANNOTATED
    assert runbook.body.startswith("\n# DNS record missing")


def test_steps_annotations_and_lines() -> None:
    runbook, _ = parse_runbook(ANNOTATED, "x.md")
    assert runbook is not None
    first, second, third = runbook.steps
    assert (first.id, first.line, first.text, first.checked_in_source) == (
        "pause-the-dns-automation",
        22,
        "Pause the DNS automation",
        False,
    )
    assert first.section == "Mitigation"
    assert first.action is not None
    assert (first.action.service, first.action.control, first.action.value) == (
        "dynamodb",
        "dns_automation",
        False,
    )
    assert first.action.raw == "dynamodb/dns_automation = false"
    assert first.verify is not None
    assert first.verify.clauses == (
        TargetIs(target="dynamodb-dns", states=("down", "degraded")),
        AllTargets(service="dynamodb", states=("up",)),
    )
    assert [(c.lang, c.code, c.line) for c in first.commands] == [
        ("sh", "dig @127.0.0.1 -p 5353 dynamodb.us-east-1.sim\n", 28)
    ]
    # Prose and every code block stay in the body; the annotations do not.
    assert first.body_markdown.startswith("Why first: the automation")
    assert "```text\nnot a command\n```" in first.body_markdown
    assert "action:" not in first.body_markdown

    assert (second.id, second.line, second.checked_in_source) == ("restore", 35, True)
    assert second.action is not None and second.action.value == "restored"
    assert second.verify is not None and str(second.verify) == "dynamodb is not down"

    assert third.id == "pause-the-dns-automation-2"
    assert [(c.lang, c.line) for c in third.commands] == [("bash", 40)]


def test_sections_keep_markdown_tables_and_links() -> None:
    runbook, _ = parse_runbook(ANNOTATED, "x.md")
    assert runbook is not None
    assert [(s.title, s.level, s.line) for s in runbook.sections] == [
        ("DNS record missing", 1, 10),
        ("Meaning", 2, 12),
        ("Mitigation", 2, 20),
    ]
    meaning = runbook.section("meaning")
    assert meaning is not None
    assert meaning.markdown == (
        "The regional endpoint's record is **empty**; see [the summary](https://example.com).\n"
        "\n| signal | value |\n|---|---|\n| dynamodb-dns | down |"
    )
    # A section runs to the next heading of its level or higher, subsections included.
    assert "## Meaning" in runbook.sections[0].markdown


SRE_STYLE = """\
---
title: Kube Pod Crash Looping
weight: 20
---

# KubePodCrashLooping

## Meaning

Pod is in CrashLoop.

## Impact

Service degradation or unavailability.

## Diagnosis

- Check template via `kubectl -n $NAMESPACE get pod $POD`.
- Check pod template parameters such as:
  - pod priority

```console
$ kubectl cluster-info
```

## Mitigation

See [Debugging Pods](https://kubernetes.io/docs/tasks/debug-application-cluster/).
"""


def test_sre_heading_runbook_without_steps_is_valid() -> None:
    runbook, problems = parse_runbook(SRE_STYLE, "KubePodCrashLooping.md")
    assert problems == []
    assert runbook is not None
    assert runbook.steps == []
    assert runbook.title == "Kube Pod Crash Looping"
    assert [s.title for s in runbook.sections] == [
        "KubePodCrashLooping",
        "Meaning",
        "Impact",
        "Diagnosis",
        "Mitigation",
    ]
    diagnosis = runbook.section("Diagnosis")
    assert diagnosis is not None and "```console\n$ kubectl cluster-info\n```" in diagnosis.markdown
    assert runbook.services == [] and runbook.states == ["down", "degraded"]


def test_title_falls_back_to_first_h1_then_stem() -> None:
    runbook, _ = parse_runbook("# KubeAPIDown\n\n## Meaning\n\ntext\n", "KubeAPIDown.md")
    assert runbook is not None and runbook.title == "KubeAPIDown"
    runbook, _ = parse_runbook("just prose\n", "notes.md")
    assert runbook is not None and runbook.title == "notes"


def test_crlf_and_bom_are_accepted() -> None:
    text = "\ufeff---\r\ntitle: T\r\n---\r\n- [ ] step one\r\n  - verify: `a is up`\r\n"
    runbook, problems = parse_runbook(text, "t.md")
    assert problems == []
    assert runbook is not None
    assert [(s.id, s.line) for s in runbook.steps] == [("step-one", 4)]


def test_nested_and_ordered_steps() -> None:
    text = "1. [ ] outer\n   - [ ] inner\n     - action: `a/b = 3`\n2. [X] second\n"
    runbook, problems = parse_runbook(text, "t.md")
    assert problems == []
    assert runbook is not None
    assert [(s.id, s.line, s.checked_in_source) for s in runbook.steps] == [
        ("outer", 1, False),
        ("inner", 2, False),
        ("second", 4, True),
    ]
    # The annotation belongs to the nearest step only.
    assert runbook.steps[0].action is None
    assert runbook.steps[1].action is not None and runbook.steps[1].action.value == 3


def test_prose_verify_outside_steps_is_not_an_annotation() -> None:
    runbook, problems = parse_runbook("- Verify: the dashboards are green\n", "t.md")
    assert problems == [] and runbook is not None and runbook.steps == []


def test_bad_annotation_is_dropped_but_runbook_kept() -> None:
    text = "- [ ] throttle\n  - action: ec2-launch rate 50\n  - verify: `ec2-launch is upp`\n"
    runbook, problems = parse_runbook(text, "t.md")
    assert runbook is not None
    assert runbook.steps[0].action is None and runbook.steps[0].verify is None
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (2, "action not 'service/control = value'"),
        (
            3,
            "unknown state 'upp' in verification 'ec2-launch is upp' (expected up, degraded, "
            "down, unknown)",
        ),
    ]


def test_action_values_are_typed() -> None:
    assert parse_action("ec2-launch/rate_limit = 50").value == 50
    assert parse_action("checkout/load_shed=12.5").value == 12.5
    assert parse_action("nlb/health_check_removal = False").value is False
    assert parse_action('checkout/failover = "us-west-2"').value == "us-west-2"
    with pytest.raises(ValueError, match="service/control = value"):
        parse_action("checkout failover us-west-2")


def test_slugs_are_stable_and_bounded() -> None:
    assert slugify("Restore the endpoint's DNS record") == "restore-the-endpoints-dns-record"
    assert slugify("Set `ec2-launch/rate_limit` to [50](x)") == "set-ec2-launch-rate-limit-to-50"
    long = slugify("word " * 40)
    assert len(long) <= 48 and not long.endswith("-")
    assert slugify("!!!") == "step"


def test_load_runbook_raises_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.md"
    path.write_text("---\ntitle: x\nservics: [a]\n---\n")
    with pytest.raises(RunbookError) as err:
        load_runbook(path)
    assert (err.value.file, err.value.line) == (str(path), 3)
    assert str(err.value) == (
        f"{path}:3: unknown front-matter key 'servics' "
        "(known: title, services, states, severity, alerts)"
    )
    good = tmp_path / "good.md"
    good.write_text(ANNOTATED)
    assert load_runbook(good).id == "good"


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes(b"# ok\n\ncaf\xe9\n")
    runbook, problems = read_runbook(path)
    assert runbook is None
    assert [str(p) for p in problems] == [f"{path}:3: not UTF-8 (byte 0xe9)"]


def test_capitalised_prose_under_a_step_is_not_an_annotation() -> None:
    text = (
        "- [ ] Restart DWFM hosts a few at a time\n"
        "  - Verify: the queue drains after each batch\n"
        "  - Action: `dwfm/rate_limit = 200`\n"
    )
    runbook, problems = parse_runbook(text, "t.md")
    assert problems == []
    assert runbook is not None
    (step,) = runbook.steps
    assert step.verify is None
    assert step.action is not None and step.action.value == 200
    assert step.body_markdown == "- Verify: the queue drains after each batch"
