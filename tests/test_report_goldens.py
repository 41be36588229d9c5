"""Golden reports of a drill with a reopen, a late lever effect and flapping, and of a log
whose every string tries to forge the report."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from tests.report_sections import SECTIONS, headings
from warroom.report.builder import report_from_log
from warroom.report.escape import cell, code, inline, link, visible
from warroom.report.render import render_markdown

FIXTURES = Path(__file__).parent / "fixtures"
REOPEN = FIXTURES / "incident-reopen-drill.jsonl"
HOSTILE = FIXTURES / "incident-hostile.jsonl"
AWS = FIXTURES / "incident-aws-drill.jsonl"
REGENERATE = "regenerate with: .venv/bin/python tests/fixtures/make_drills.py"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_drills", FIXTURES / "make_drills.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _golden(log: Path) -> str:
    name = log.name.replace("incident-", "report-").replace(".jsonl", ".md")
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_fixture_logs_are_what_their_generator_writes(tmp_path: Path) -> None:
    gen = _generator()
    for log, story in ((REOPEN, gen.reopen_story()), (HOSTILE, gen.hostile_story())):
        fresh = tmp_path / log.name
        gen.write(fresh, story)
        assert fresh.read_bytes() == log.read_bytes(), REGENERATE


def test_reopen_drill_golden() -> None:
    assert render_markdown(report_from_log(REOPEN)) == _golden(REOPEN), REGENERATE


def test_reopen_drill_facts() -> None:
    report = report_from_log(REOPEN, verify=False)
    times = report.times
    assert times.reopened == ["2025-12-01T09:05:00.000000Z"]
    assert times.resolved == "2025-12-01T09:06:40.000000Z"  # the second resolution
    assert times.impact_end == "2025-12-01T09:05:50.000000Z"  # after the relapse
    pool = next(c for c in report.controls if c.control == "pool_size")
    assert pool.effect is not None
    # The pool change worked 48 s after it applied: a fixed 5 s window would say "no effect".
    assert [(c.target, c.to_state, c.after_s) for c in pool.effect.changes] == [("db", "up", 48.0)]
    flaps = [e for e in report.timeline if e.kind == "flapping"]
    assert len(flaps) == 1 and flaps[0].count == 12
    assert flaps[0].until == "2025-12-01T09:02:54.000000Z"
    assert not [
        e
        for e in report.timeline
        if e.kind == "probe_state_changed" and "web" in e.text[:4] and "degraded" in e.text
    ]
    texts = [h.text for h in report.highlights]
    assert any(t.startswith("api failing again") for t in texts)
    tasks = {t.text: t for t in report.tasks}
    assert tasks["Size the db pool from peak load"].priority == "P1"
    assert tasks["Size the db pool from peak load"].type == "prevent"
    assert tasks["Size the db pool from peak load"].link == "https://tracker.example/DB-7"


_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")


def test_hostile_strings_cannot_forge_the_report() -> None:
    text = render_markdown(report_from_log(HOSTILE))
    assert text == _golden(HOSTILE), REGENERATE
    lines = text.splitlines()
    assert headings(text) == list(SECTIONS), "a note opened a section"
    assert sum(ln.startswith("- The hash chain verifies") for ln in lines) == 1
    assert lines[0].startswith("# Postmortem: ") and sum(ln.startswith("# ") for ln in lines) == 1
    for ln in lines:
        if ln.startswith("### "):
            assert ln in (
                "### What went well",
                "### What went wrong",
                "### Where we got lucky",
            ) or (ln.startswith("### \\# Heading"))
    prose = _CODE_SPAN.sub("", text)
    assert "<" not in prose, "a tag survived outside a code span"
    assert not re.search(r"(?<!\\)\]\(javascript", text), "a javascript: link"
    assert not re.search(r"(?<!\\)!\[", prose), "an image"
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b[31mred" in text.replace("\\[", "[")  # shown, visibly
    # Every table row has as many cells as its header: no pipe split a cell.
    columns = 0
    for ln in lines:
        if not ln.startswith("|"):
            columns = 0
            continue
        cells = len(re.findall(r"(?<!\\)\|", _CODE_SPAN.sub("x", ln)))
        if columns == 0:
            columns = cells
        assert cells == columns, ln
    # A follow-up's link is a link only when it is a plain http(s) URL.
    assert "[ticket](https://ok.example/T-1?a=b)" in text
    assert "](javascript:alert(1))" not in text.replace("\\]", "")


def test_escapers_one_line_each() -> None:
    assert inline("a\nb") == "a ⏎ b"
    assert inline("# h") == "\\# h" and inline("1. x") == "1\\. x" and inline("- x") == "\\- x"
    assert inline("<b>&") == "&lt;b&gt;&amp;"
    assert cell("a|b") == "a\\|b" and cell("") == "-"
    assert code("a`b") == "``a`b``" and code("|", in_table=True) == "`\\|`"
    assert link("t", "javascript:x") == "`javascript:x`"
    assert link("t", "https://x.example/a") == "[t](https://x.example/a)"
    assert visible("\x1b[0m\u202e\x00") == "\\x1b[0m\\u202e\\x00"
    assert visible("a\nb", newlines=True) == "a\nb"


def test_aws_drill_highlights_tell_the_story_in_under_40_lines() -> None:
    report = report_from_log(AWS, verify=False)
    assert len(report.highlights) < 40
    kinds = {h.kind for h in report.highlights}
    assert {"incident_opened", "status_set", "status_update_posted", "bookmark_added"} <= kinds
    assert "step_verified" not in kinds and "control_applied" not in kinds
    texts = [h.text for h in report.highlights]
    # Each service's first failure and last recovery, once.
    for service in ("dynamodb", "sts", "ec2-launch", "nlb", "dwfm", "checkout", "lambda"):
        assert sum(t.startswith(f"{service} failing") for t in texts) == 1, service
        assert sum(f"{service} recovered" in t for t in texts) == 1, service
    assert any("failed: 409" in t for t in texts)  # a lever's result is on its line
    throttle = next(c for c in report.controls if c.request_id == "req-4")
    assert throttle.effect is not None and throttle.effect.changes[-1].to_state == "up"
