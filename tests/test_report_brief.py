"""The handoff brief: one screen of what the next shift must know, from the log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from warroom import events as ev
from warroom.cli import main
from warroom.report.brief import SCREEN_LINES, WIDTH, render_brief, status_update_due
from warroom.report.builder import build_report, report_from_log

FIXTURES = Path(__file__).parent / "fixtures"
REOPEN = FIXTURES / "incident-reopen-drill.jsonl"
HOSTILE = FIXTURES / "incident-hostile.jsonl"


def _events_until(path: Path, ts: str) -> list[ev.BaseEvent]:
    events = [ev.parse_event(orjson.loads(line)) for line in path.read_bytes().splitlines()]
    return [e for e in events if e.ts <= ts]


def test_brief_mid_incident_says_what_is_broken_tried_noted_and_due() -> None:
    report = build_report(_events_until(REOPEN, "2025-12-01T09:05:30.000000Z"))
    text = render_brief(report, now=ev.parse_ts("2025-12-01T09:30:00.000000Z"))
    lines = text.splitlines()
    assert len(lines) <= SCREEN_LINES and all(len(line) <= WIDTH for line in lines)
    assert lines[0].startswith("HANDOFF API down [SEV3 · investigating]")
    assert "commander dana, scribe eve" in lines[2]
    # The last status update was at 09:03:25; SEV3 wants one every 2 h.
    assert "next status update due 11:03:25Z (in 1h33m)" in lines[2]
    broken = lines[lines.index("BROKEN NOW") + 1]
    assert broken == "  api down since 09:04:50Z (HTTP 503 x2)"
    tried = "\n".join(lines[lines.index("TRIED (latest last)") :])
    assert "db/pool_size 20→80 (dana): applied; db degraded→up after 48s" in tried
    assert "api/cache_ttl 5→60 (dana): applied; no probe change" in tried
    assert "eve: hypothesis: the pool is too small" in text
    assert "OPEN FOLLOW-UPS\n  none" in text


def test_brief_of_a_finished_incident_and_an_overdue_update() -> None:
    report = report_from_log(REOPEN, verify=False)
    text = render_brief(report)
    assert "nothing: every probe healthy since 09:05:50Z" in text
    assert (
        "[P1 prevent] Size the db pool from peak load (db-team) https://tracker.example/DB-7"
        in text
    )
    assert status_update_due(report) == ""  # resolved: nothing is due
    early = build_report(_events_until(REOPEN, "2025-12-01T09:02:00.000000Z"))
    text = render_brief(early, now=ev.parse_ts("2025-12-01T12:00:00.000000Z"))
    assert "next status update due 11:01:40Z (OVERDUE by 58m20s)" in text  # SEV3: 2 h


def test_brief_shows_hostile_text_inert_and_fits_the_screen() -> None:
    text = render_brief(report_from_log(HOSTILE, verify=False))
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b[31mred" in text
    lines = text.splitlines()
    assert len(lines) <= SCREEN_LINES and all(len(line) <= WIDTH for line in lines)
    titles = {"BROKEN NOW", "TRIED (latest last)", "OPEN FOLLOW-UPS"}
    titles.add("HYPOTHESES AND NOTES (latest last)")
    # No note can start a line of its own: every line is a head line, a title or an item.
    assert all(line in titles or line.startswith("  ") for line in lines[3:])


def test_brief_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["brief", str(REOPEN), "--at-end"]) == 0
    out = capsys.readouterr().out
    assert out == render_brief(report_from_log(REOPEN, verify=False))
    other = tmp_path / "other.jsonl"
    other.write_text('{"msg": "hello"}\n')
    assert main(["brief", str(other)]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"warroom: {other}:1: not a warroom incident log") and err.count("\n") == 1
    )
