"""Probing degraded: the console header warns while it lasts, and the report lists when."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tui_harness import SIZE, incident_events, make_app, screen_text, settle, ts, write_log

from warroom import events as ev
from warroom.report.builder import build_report
from warroom.report.render import render_json, render_markdown


def health(minute: float, *, missed: int = 0, lag_p99_ms: float = 20.0) -> ev.BaseEvent:
    return ev.ProbeEngineHealth(
        targets=9,
        interval_s=5.0,
        period_s=10.0,
        probes=18,
        probes_per_s=1.8,
        lag_p50_ms=5.0,
        lag_p99_ms=lag_p99_ms,
        missed_rounds=missed,
        slots=64,
    ).model_copy(update={"ts": ts(minute), "actor": "warroom-probe"})


def hand_built_log() -> list[ev.BaseEvent]:
    """The opening of an incident with two degraded stretches, the second still on at the end."""
    opened = ev.IncidentOpened(incident_id="i-probing", title="probing under load")
    events: list[ev.BaseEvent] = [opened.model_copy(update={"ts": ts(0), "actor": "alice"})]
    events += [
        health(1),
        health(2, missed=3),
        health(3, missed=1),
        health(4),
        health(6, lag_p99_ms=900.0),
    ]
    return [e.model_copy(update={"seq": i + 1}) for i, e in enumerate(events)]


def test_the_report_lists_each_degraded_period() -> None:
    report = build_report(hand_built_log())
    markdown = render_markdown(report)
    section = markdown.split("## Probing degraded\n", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert table == [
        "| from | to | for | why |",
        "| 06:50:00Z | 06:52:00Z | 2m00s | 3 missed rounds in 10s |",
        "| 06:54:00Z | end of log | - | probes start 900 ms late (p99), over 10 % of the 5s "
        "interval |",
    ]
    periods = orjson.loads(render_json(report))["probing_degraded"]
    assert periods == [
        {
            "start": ts(2),
            "end": ts(4),
            "duration_s": 120.0,
            "reason": "3 missed rounds in 10s",
        },
        {
            "start": ts(6),
            "end": "",
            "duration_s": None,
            "reason": "probes start 900 ms late (p99), over 10 % of the 5s interval",
        },
    ]


def test_a_report_without_degraded_probing_has_no_such_section() -> None:
    report = build_report(hand_built_log()[:2])
    assert report.probing_degraded == []
    assert "## Probing degraded" not in render_markdown(report)


@pytest.mark.slow
async def test_the_header_warns_while_probing_is_degraded(tmp_path: Path) -> None:
    events = incident_events()
    last = ts(86.8)  # 12 s before the frozen now: the engine is reporting
    lagging = health(86.8, missed=2)
    log = write_log(tmp_path / "i.jsonl", [*events, lagging])
    app = make_app(log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert f"PROBING DEGRADED  since {last[11:19]}: 2 missed rounds in 10s" in text
        # The engine catches up: the warning goes.
        caught_up = health(86.9)
        app.ingest(log.append_many([caught_up]))
        app.render_state()
        await settle(pilot)
        assert "PROBING DEGRADED" not in screen_text(app)
