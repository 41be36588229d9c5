"""The streamed report (`warroom report`'s: highlights from one pass, the appendix from a
second) is byte for byte the report built in memory, on a log with a bit of everything."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from warroom import events as ev
from warroom.cli import main
from warroom.log.store import IncidentLog
from warroom.report.builder import report_from_log, stream_report
from warroom.report.render import render_markdown, write_markdown

START = datetime(2025, 11, 3, 8, 0, tzinfo=UTC)
PEOPLE = ("ana@oncall", "ben@oncall", "cy@oncall")


def _events(count: int, seed: int = 3) -> list[ev.BaseEvent]:
    """Roles in a burst, probes that fail, recover, relapse and flap, samples, levers and
    their results, alerts, the simulator, notes (past the highlights' limit), bookmarks,
    status changes with a reopen, and follow-ups."""
    rng = random.Random(seed)
    targets = [f"t{i}" for i in range(24)]
    state = dict.fromkeys(targets, "unknown")
    t = START
    out: list[ev.BaseEvent] = [
        ev.IncidentOpened(ts=ev.format_ts(t), actor=PEOPLE[0], incident_id="mid", title="mid")
    ]
    out += [
        ev.RoleAssigned(ts=ev.format_ts(t), actor=PEOPLE[0], role=role, person=person)
        for role, person in (("commander", "ana"), ("scribe", "ben"), ("comms", "cy"))
    ]

    def change(target: str, to: str) -> ev.ProbeStateChanged:
        frm, state[target] = state[target], to
        return ev.ProbeStateChanged(
            ts=ev.format_ts(t),
            actor="probe",
            target=target,
            service=target[:2],
            from_state=frm,
            to_state=to,
            reason="check",
        )

    statuses = ["identified", "monitoring", "resolved", "investigating", "resolved"]
    while len(out) < count:
        t += timedelta(seconds=rng.choice((1, 2, 5, 40)))
        ts, who = ev.format_ts(t), rng.choice(PEOPLE)
        roll = rng.random()
        if roll < 0.30:
            target = rng.choice(targets)
            out.append(change(target, rng.choice([s for s in ("up", "down", "degraded")])))
        elif roll < 0.34:
            target = rng.choice(targets[:3])  # these flap: bursts of quick changes
            for _ in range(rng.randint(3, 9)):
                t += timedelta(seconds=2)
                out.append(change(target, "degraded" if state[target] == "up" else "up"))
        elif roll < 0.50:
            samples = [
                ev.ProbeSample(target=name, state=state[name], ok=1, count=1, latency_ms=9.5)
                for name in rng.sample(targets, 6)
                if state[name] != "unknown" or rng.random() < 0.5
            ]
            out.append(ev.ProbeSamples(ts=ts, actor="probe", samples=samples))
        elif roll < 0.80:
            out.append(ev.NoteAdded(ts=ts, actor=who, text=f"note {len(out)} | *x* <b>"))
        elif roll < 0.84:
            out.append(ev.BookmarkAdded(ts=ts, actor=who, label=f"mark {len(out)}"))
        elif roll < 0.88:
            rid = f"r{len(out)}"
            lever = {"request_id": rid, "service": rng.choice(targets)[:2], "control": "rate"}
            out.append(ev.ControlRequested(ts=ts, actor=who, to_value=rng.randint(1, 9), **lever))
            t += timedelta(seconds=1)
            out.append(ev.ControlApplied(ts=ev.format_ts(t), actor="lever", value=3, **lever))
        elif roll < 0.90:
            out.append(
                ev.ScenarioEvent(
                    ts=ts, actor="sim", sim_seq=len(out), sim_time=1.0, title="fault", service="t1"
                )
            )
        elif roll < 0.91 and statuses:
            out.append(ev.StatusSet(ts=ts, actor=who, status=statuses.pop(0)))
        elif roll < 0.92:
            out.append(ev.TaskAdded(ts=ts, actor=who, text=f"fix {len(out)}", owner="ana"))
        elif roll < 0.93:
            out.append(ev.StatusUpdatePosted(ts=ts, actor=who, conditions="still bad"))
        elif roll < 0.94:
            out.append(
                ev.AlertObserved(
                    ts=ts,
                    actor="alerts",
                    fingerprint=f"f{len(out) % 5}",
                    alertname="HighErrors",
                    status=rng.choice(("firing", "resolved")),
                    service="t0",
                    starts_at=ts,
                )
            )
        else:
            out.append(
                ev.CommandRun(ts=ts, actor=who, runbook="rb", step="s1", command="dig", exit_code=0)
            )
    return out


def _log(path: Path, count: int) -> Path:
    with IncidentLog.open(path, create=True) as log:
        log.append_many(_events(count), sync=False)
    return path


def _streamed(path: Path, chunk_size: int = 1 << 20) -> str:
    report, appendix = stream_report(path, verify=False, chunk_size=chunk_size)
    parts: list[str] = []
    write_markdown(report, parts.append, appendix)
    return "".join(parts)


@pytest.mark.slow
def test_the_streamed_report_is_the_in_memory_one(tmp_path: Path) -> None:
    path = _log(tmp_path / "mid.jsonl", 3000)
    in_memory = report_from_log(path, verify=False)
    assert len(in_memory.notes) > 500 and any(e.kind == "flapping" for e in in_memory.timeline)
    assert in_memory.times.reopened and in_memory.highlights
    expected = render_markdown(in_memory)
    # Small blocks: the second pass's lines cross many block boundaries.
    assert _streamed(path, chunk_size=4096) == expected
    assert _streamed(path) == expected
    streamed, _ = stream_report(path, verify=False)
    same = streamed.model_copy(
        update={n: getattr(in_memory, n) for n in ("timeline", "notes", "bookmarks")}
    )
    assert same == in_memory
    assert streamed.timeline == [] and streamed.notes == []  # nothing of the appendix held


def test_report_command_writes_the_streamed_draft(tmp_path: Path) -> None:
    path = _log(tmp_path / "small.jsonl", 400)
    out = tmp_path / "draft.md"
    assert main(["report", str(path), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_markdown(report_from_log(path))


@pytest.mark.parametrize("name", ["aws-drill", "reopen-drill", "hostile"])
def test_the_streamed_report_is_each_golden(name: str) -> None:
    fixtures = Path(__file__).parent / "fixtures"
    report, appendix = stream_report(fixtures / f"incident-{name}.jsonl")
    parts: list[str] = []
    write_markdown(report, parts.append, appendix)
    assert "".join(parts) == (fixtures / f"report-{name}.md").read_text(encoding="utf-8")


#: Note lines of other shapes: whether the model refuses them (so reading stops there).
_OTHER_SHAPES = [
    ({"text": 5}, True),
    ({"actor": None}, True),
    ({"hash": 3}, True),
    ({"v": "x"}, True),
    ({"seq": "7"}, False),  # the model reads "7" as 7: the fast path leaves it to the model
    ({"seq": True}, False),
    ({"extra": [1]}, False),
]


@pytest.mark.slow
def test_a_note_line_of_another_shape_is_judged_by_its_model_in_the_streamed_report(
    tmp_path: Path,
) -> None:
    lines = _log(tmp_path / "good.jsonl", 120).read_bytes().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if b'"kind":"note_added"' in line and i > 60)
    path = tmp_path / "bad.jsonl"
    for bad, stops in _OTHER_SHAPES:
        changed = orjson.dumps({**orjson.loads(lines[at]), **bad}) + b"\n"
        path.write_bytes(b"".join([*lines[:at], changed, *lines[at + 1 :]]))
        streamed, _ = stream_report(path, verify=False)
        assert streamed.integrity.stopped_at_line == (at + 1 if stops else None), bad
        if stops:
            assert streamed.integrity.stop_reason.startswith("note_added: field"), bad
        assert _streamed(path) == render_markdown(report_from_log(path, verify=False)), bad
