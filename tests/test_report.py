"""The postmortem report: facts from the reducer, deterministic Markdown and JSON, CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import stat
import threading
from pathlib import Path

import orjson
import pytest

from tests.report_sections import SECTIONS, headings
from warroom import events as ev
from warroom.cli import main
from warroom.errors import WarroomError
from warroom.report.builder import build_report, report_from_log
from warroom.report.render import render_json, render_markdown

FIXTURES = Path(__file__).parent / "fixtures"
LOG = FIXTURES / "incident-aws-drill.jsonl"
GOLDEN_MD = FIXTURES / "report-aws-drill.md"
GOLDEN_JSON = FIXTURES / "report-aws-drill.json"
REGENERATE = "regenerate with: .venv/bin/python tests/fixtures/make_golden.py"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_incident", FIXTURES / "make_incident.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _events(path: Path = LOG) -> list[ev.BaseEvent]:
    return [ev.parse_event(orjson.loads(line)) for line in path.read_bytes().splitlines()]


def test_fixture_log_is_what_its_generator_writes() -> None:
    assert b"".join(_load_generator().lines()) == LOG.read_bytes(), REGENERATE


def test_golden_markdown_and_json() -> None:
    report = report_from_log(LOG)
    assert render_markdown(report) == GOLDEN_MD.read_text(encoding="utf-8"), REGENERATE
    assert render_json(report) == GOLDEN_JSON.read_text(encoding="utf-8"), REGENERATE


def test_skipping_redundant_probe_samples_gives_the_same_report() -> None:
    fast = report_from_log(LOG, verify=False)
    exact = report_from_log(LOG, verify=False, exact=True)
    from_events = build_report(_events(), source=LOG.name, exact=True)
    assert fast == exact == from_events


def test_key_times_and_intervals_from_impact_start() -> None:
    times = report_from_log(LOG, verify=False).times
    assert times.impact_start == "2025-11-18T14:01:00.000000Z"  # the DNS record was emptied
    assert times.first_failure == "2025-11-18T14:01:12.000000Z"
    assert times.first_detection == "2025-11-18T14:01:12.000000Z"
    assert times.acknowledged == times.opened == "2025-11-18T14:02:00.000000Z"
    assert times.first_action == "2025-11-18T14:03:01.000000Z"  # the dig
    assert times.impact_end == "2025-11-18T14:07:51.000000Z"  # dwfm, the last to recover
    assert times.mitigated == "2025-11-18T14:08:00.000000Z"
    assert times.resolved == "2025-11-18T14:10:00.000000Z"
    assert (
        times.time_to_detect_s,
        times.time_to_acknowledge_s,
        times.time_to_mitigate_s,
        times.time_to_resolve_s,
    ) == (12.0, 48.0, 411.0, 540.0)
    assert times.duration_s == 480.0
    assert [row.ts for row in times.rows] == sorted(row.ts for row in times.rows)


def test_service_impact_is_the_worst_of_its_probes_not_their_sum() -> None:
    impact = {s.service: s for s in report_from_log(LOG, verify=False).impact}
    dynamodb = impact["dynamodb"]
    # dynamodb-dns down 14:01:12-14:04:30, dynamodb down 14:01:18-14:04:38: union 14:01:12-14:04:38.
    assert dynamodb.down_s == 206.0
    assert {t.target: t.down_s for t in dynamodb.targets} == {
        "dynamodb": 200.0,
        "dynamodb-dns": 198.0,
    }
    # ec2-launch: down 14:04:52-14:06:40, then degraded until 14:07:42.
    assert (impact["ec2-launch"].down_s, impact["ec2-launch"].degraded_s) == (108.0, 62.0)
    assert impact["network-manager"].down_s == impact["network-manager"].degraded_s == 0.0


def test_controls_carry_reason_outcome_and_measured_effect() -> None:
    controls = report_from_log(LOG, verify=False).controls
    restore = [c for c in controls if c.control == "dns_record"]
    assert [c.outcome for c in restore] == ["failed", "applied"]
    assert restore[0].error.startswith("409")
    assert restore[1].effect is not None
    assert restore[1].effect.before == {"dynamodb-dns": "down", "dynamodb": "down"}
    assert restore[1].effect.after == {"dynamodb-dns": "up", "dynamodb": "up"}
    assert restore[1].reason == "retry after the automation's lock expired"
    assert restore[1].step == "restore-record"


def test_timeline_has_actions_changes_and_scenario_but_no_samples() -> None:
    report = report_from_log(LOG, verify=False)
    kinds = {entry.kind for entry in report.timeline}
    assert "probe_samples" not in kinds
    assert {"incident_opened", "probe_state_changed", "scenario_event", "control_applied"} <= kinds
    seqs = [entry.seq for entry in report.timeline]
    assert seqs == sorted(seqs)
    assert all(
        (entry.category == "action")
        == (
            entry.actor.endswith("@drill")
            and entry.kind not in ("control_applied", "control_failed")
        )
        for entry in report.timeline
    )


def test_markdown_sections_and_no_wall_clock() -> None:
    text = render_markdown(report_from_log(LOG))
    assert headings(text) == list(SECTIONS)
    assert "- [ ] failover-checkout: skipped by alice@drill" in text
    assert "The hash chain verifies: 93 events" in text
    assert render_markdown(report_from_log(LOG)) == text


def test_tampered_log_report_names_the_first_bad_seq(tmp_path: Path) -> None:
    lines = LOG.read_bytes().splitlines(keepends=True)
    lines[39] = lines[39].replace(b"alice", b"mallory", 1)
    bad = tmp_path / "tampered.jsonl"
    bad.write_bytes(b"".join(lines))
    report = report_from_log(bad)
    assert report.integrity.checked and not report.integrity.ok
    assert report.integrity.first_bad_seq == 40
    assert "does not verify** at seq 40" in render_markdown(report)
    assert report.event_count == 93  # the content is still reported


def test_torn_log_reports_its_valid_prefix(tmp_path: Path) -> None:
    data = LOG.read_bytes()
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(data[: len(data) - 40])
    report = report_from_log(torn)
    assert report.event_count == 92 and report.last_seq == 92
    assert report.integrity.stopped_at_line == 93
    text = render_markdown(report)
    assert "Reading stopped at line 93" in text
    assert "A write was cut short there" in text


def test_cli_writes_markdown_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pm.md"
    assert main(["report", str(LOG), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == GOLDEN_MD.read_text(encoding="utf-8")
    assert main(["report", str(LOG), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["title"] == "us-east-1: DynamoDB endpoint unresolvable"
    assert data["integrity"]["ok"] is True


def test_cli_missing_log_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warroom: ") and "nope.jsonl" in err


@pytest.mark.slow
def test_chain_check_in_a_second_process_gives_the_same_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warroom.replay import verify_job

    monkeypatch.setattr(verify_job, "PARALLEL_VERIFY_BYTES", 0)
    job = verify_job.VerifyJob(LOG)
    assert not job.in_process
    assert job.result().ok and job.result().count == 93
    lines = LOG.read_bytes().splitlines(keepends=True)
    lines[39] = lines[39].replace(b"alice", b"mallory", 1)
    bad = tmp_path / "tampered.jsonl"
    bad.write_bytes(b"".join(lines))
    report = report_from_log(bad)
    assert report.integrity.first_bad_seq == 40 and "edited" in report.integrity.reason
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    with pytest.raises(WarroomError, match="not-a-file: is a directory"):
        verify_job.VerifyJob(folder).result()


@pytest.mark.parametrize("chunk_size", [64, 700, 4096])
def test_block_boundaries_do_not_change_the_report(chunk_size: int) -> None:
    exact = report_from_log(LOG, verify=False, exact=True)
    assert report_from_log(LOG, verify=False, chunk_size=chunk_size) == exact


def test_a_target_losing_its_state_mid_block_is_reduced_again(tmp_path: Path) -> None:
    from warroom.log.store import IncidentLog

    def samples(*pairs: tuple[str, str]) -> ev.ProbeSamples:
        return ev.ProbeSamples(
            samples=[ev.ProbeSample(target=t, state=s, ok=1, count=1) for t, s in pairs]
        )

    def change(target: str, frm: str, to: str) -> ev.ProbeStateChanged:
        return ev.ProbeStateChanged(target=target, service=target, from_state=frm, to_state=to)

    story = [
        change("a", "unknown", "up"),
        change("b", "unknown", "up"),
        samples(("a", "up"), ("b", "up")),
        change("a", "up", "unknown"),  # e.g. the target was reconfigured
        samples(("a", "down"), ("b", "up")),  # the reducer adopts "down" for a
        samples(("a", "down"), ("b", "up")),
        change("a", "down", "up"),
        samples(("a", "up"), ("b", "up")),
    ]
    path = tmp_path / "states.jsonl"
    with IncidentLog.open(path) as log:
        for i, event in enumerate(story):
            log.append(event.model_copy(update={"ts": f"2025-11-18T14:0{i}:00.000000Z"}))
    exact = report_from_log(path, verify=False, exact=True)
    fast = report_from_log(path, verify=False)
    assert fast == exact
    # The sample's "down" was adopted, so a's outage counts (the reducer's since-rule).
    assert exact.impact[0].service == "a" and exact.impact[0].targets[0].down_s > 0


@pytest.mark.parametrize("others", [1, 70])  # one search of a block, and the many-target way
def test_a_target_named_with_quotes_gets_its_state_from_its_samples(
    tmp_path: Path, others: int
) -> None:
    """Samples lines are skipped when their targets already have a state; a name with a
    quote or a backslash (escaped in the line) must not look as if it had one."""
    from warroom.log.store import IncidentLog

    plain = [f"t{i}" for i in range(others)]
    odd = ['we"ird', "back\\slash"]

    def samples(state: str) -> ev.ProbeSamples:
        pairs = [(t, "up") for t in plain] + [(t, state) for t in odd]
        return ev.ProbeSamples(
            samples=[ev.ProbeSample(target=t, state=s, ok=1, count=1) for t, s in pairs]
        )

    story: list[ev.BaseEvent] = [
        ev.ProbeStateChanged(target=t, service=t, from_state="unknown", to_state="up")
        for t in plain
    ]
    story += [samples("down"), samples("down"), samples("down")]
    story += [
        ev.ProbeStateChanged(target=t, service=t, from_state="down", to_state="up") for t in odd
    ]
    path = tmp_path / "odd.jsonl"
    with IncidentLog.open(path) as log:
        for i, event in enumerate(story):
            log.append(
                event.model_copy(update={"ts": f"2025-11-18T14:{i // 60:02d}:{i % 60:02d}.000000Z"})
            )
    exact = report_from_log(path, verify=False, exact=True)
    assert report_from_log(path, verify=False) == exact
    down = {t.target: t.down_s for row in exact.impact for t in row.targets}
    assert all(down.get(name, 0) > 0 for name in odd), down


@pytest.mark.parametrize("chunk_size", [300, 1 << 20])
def test_corrupt_line_stops_the_report_there(tmp_path: Path, chunk_size: int) -> None:
    lines = LOG.read_bytes().splitlines(keepends=True)
    lines[60] = b'{"kind": "probe_samples", "oops"\n'
    bad = tmp_path / "corrupt.jsonl"
    bad.write_bytes(b"".join(lines))
    report = report_from_log(bad, verify=False, chunk_size=chunk_size)
    assert report.integrity.stopped_at_line == 61
    assert report.event_count == 60 and report.last_seq == 60


def test_report_to_a_device_writes_through_and_keeps_the_device(tmp_path: Path) -> None:
    """`-o /dev/null` (or a FIFO) must not be replaced by a regular file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    code = main(["report", str(LOG), "-o", str(fifo)])
    reader.join(timeout=10)
    assert code == 0
    assert stat.S_ISFIFO(fifo.stat().st_mode), "the FIFO was replaced by a regular file"
    assert received and received[0].startswith("# ")


def test_report_of_another_tools_log_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"level": "info", "msg": "hello"}\n')
    assert main(["report", str(other)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"warroom: {other}:1: not a warroom incident log")
    assert len(err.splitlines()) == 1


def test_a_row_time_reads_the_same_whatever_shape_a_hostile_ts_has() -> None:
    """The fast cut of the log's own ts form gives what the general one gives, on any ts."""
    from warroom.report.render import _clock, _time

    rng = random.Random(1)
    for _ in range(5000):
        chars = list("2025-10-20T06:48:00.123456Z")
        for _ in range(rng.randint(0, 3)):
            chars[rng.randrange(len(chars))] = rng.choice("0123456789T.Z:- ")
        ts = "".join(chars)
        for day in ("2025-10-20", ts[:10], "2025-T0-20"):
            full = _time(ts)
            assert _clock(ts, day) == (full[11:] if full.startswith(day + " ") else full)


def test_a_plain_note_stays_plain_behind_its_timeline_prefix() -> None:
    """The appendix draws a plain note's timeline cell without escaping it again."""
    from warroom.report.builder import ENTRY_PREFIXES
    from warroom.report.escape import inline, is_plain

    rng = random.Random(2)
    alphabet = "ab -#>=+1.)|*\t\n:"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        for _section, prefix in ENTRY_PREFIXES.values():
            if text and is_plain(text):
                assert inline(text) == text and inline(prefix + text) == prefix + text
