"""Render a `Report` as a Markdown postmortem draft or as JSON (same content, as data)."""

from __future__ import annotations

from typing import Any

from warroom import events as ev
from warroom.controls.words import value_words
from warroom.durations import format_duration
from warroom.report.model import ControlChangeReport, Report
from warroom.words import plural

_ROLE_ORDER = ("commander", "scribe", "comms")


def render_json(report: Report) -> str:
    """The report as indented JSON (a pydantic model dump), newline-terminated."""
    return report.model_dump_json(indent=2) + "\n"


def _cell(text: Any) -> str:
    """Make text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _value(value: Any, unit: str = "") -> str:
    if not isinstance(value, bool | int | float | str | None):
        return str(value)  # a newer warroom's value: shown as it is
    return value_words(value, unit)


def _time(ts: str) -> str:
    """2025-11-18T14:02:00.000000Z -> 2025-11-18 14:02:00Z (milliseconds kept only if set)."""
    if not ts:
        return "-"
    day, _, rest = ts.partition("T")
    clock, _, frac = rest.rstrip("Z").partition(".")
    frac = frac[:3].rstrip("0")
    return f"{day} {clock}{'.' + frac if frac else ''}Z"


def _clock(ts: str, day: str) -> str:
    """Time of day when on `day`, else the full date and time."""
    full = _time(ts)
    return full[11:] if full.startswith(day + " ") else full


def _dur(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _offset(ts: str, origin: str) -> str:
    if not ts or not origin:
        return ""
    delta = (ev.parse_ts(ts) - ev.parse_ts(origin)).total_seconds()
    return "T+0" if delta == 0 else ("T+" if delta > 0 else "T-") + format_duration(abs(delta))


def _effect(change: ControlChangeReport) -> str:
    if change.effect is None:
        return ""
    parts = []
    for target in sorted(set(change.effect.before) | set(change.effect.after)):
        before = change.effect.before.get(target, "?")
        after = change.effect.after.get(target, "?")
        parts.append(f"{target} {before} -> {after}")
    return f"after {format_duration(change.effect.after_s)}: " + ", ".join(parts)


def render_markdown(report: Report) -> str:
    """The postmortem draft as Markdown: deterministic for a given report (no "now" in it)."""
    out: list[str] = []
    add = out.append
    times = report.times
    day = (times.opened or times.impact_start or times.last_event)[:10]
    origin = times.opened or times.impact_start

    add(f"# Postmortem draft: {report.title or '(untitled incident)'}")
    add("")
    ident = f"`{report.incident_id}`" if report.incident_id else "(not declared)"
    add(
        f"Incident {ident}, drafted by `warroom report` from `{report.source}` "
        f"({plural(report.event_count, 'event')}, seq {report.first_seq}-{report.last_seq}). "
        "Times are UTC; T+ counts from the declaration."
    )
    add("")

    add("## Summary")
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| Title | {_cell(report.title or '-')} |")
    add(f"| Severity | {report.severity or '-'} |")
    add(f"| Status | {report.status or '-'} |")
    span = "declared to resolved" if times.resolved else "declared to last event: not resolved"
    add(f"| Duration | {_dur(times.duration_s)} ({span}) |")
    roles = sorted(report.roles.items(), key=lambda kv: (_rank(kv[0]), kv[0]))
    for role, person in roles:
        add(f"| {_cell(role.capitalize())} | {_cell(person)} |")
    if report.impact:
        worst = [s.service for s in report.impact if s.down_s > 0]
        hit = [s.service for s in report.impact if s.down_s > 0 or s.degraded_s > 0]
        add(f"| Services down | {_cell(', '.join(worst) or 'none')} |")
        add(f"| Services impacted | {_cell(', '.join(hit) or 'none')} |")
    add("")

    add("## Key times")
    add("")
    add("| moment | time | |")
    add("|---|---|---|")
    for label, ts in (
        ("Impact started", times.impact_start),
        ("Declared", times.opened),
        ("First detection", times.first_detection),
        ("Mitigated", times.mitigated),
        ("Resolved", times.resolved),
        ("Closed", times.closed),
    ):
        if ts or label != "Closed":
            add(f"| {label} | {_time(ts)} | {_offset(ts, origin)} |")
    add("")
    add(
        f"- Time to detect: {_dur(times.time_to_detect_s)}\n"
        f"- Time to mitigate: {_dur(times.time_to_mitigate_s)}\n"
        f"- Time to resolve: {_dur(times.time_to_resolve_s)}"
    )
    add("")
    add("Measured from the start of impact (the first fault or failing probe).")
    add("")

    add("## Impact by service")
    add("")
    if report.impact:
        add("A service counts as down (or degraded) while any of its probes is.")
        add("")
        add("| service | minutes down | minutes degraded | probes | state at end |")
        add("|---|---:|---:|---|---|")
        for service in report.impact:
            targets = ", ".join(
                f"{t.target} ({_minutes(t.down_s)}/{_minutes(t.degraded_s)})"
                for t in service.targets
            )
            add(
                f"| {_cell(service.service)} | {_minutes(service.down_s)} | "
                f"{_minutes(service.degraded_s)} | {_cell(targets)} | {service.final_state} |"
            )
    else:
        add("No probe data in the log.")
    add("")

    add("## Timeline")
    add("")
    add(f"Operator actions, probe state changes, scenario events and lever results ({day}).")
    add("")
    add("| time | | who | what |")
    add("|---|---|---|---|")
    for entry in report.timeline:
        text = entry.text if entry.category != "action" else f"**{entry.text}**"
        add(
            f"| {_clock(entry.ts, day)} | {_offset(entry.ts, origin)} | "
            f"{_cell(entry.actor)} | {_cell(text)} |"
        )
    add("")

    add("## Levers pulled")
    add("")
    if report.controls:
        add("| time | who | control | change | reason | result | effect |")
        add("|---|---|---|---|---|---|---|")
        for c in report.controls:
            result = {
                "applied": f"applied ({_value(c.result_value, c.unit)})",
                "failed": f"failed: {c.error}",
            }.get(c.outcome, c.outcome)
            reason = c.reason + (f" (reverts {c.revert_of})" if c.revert_of else "")
            add(
                f"| {_clock(c.ts, day)} | {_cell(c.actor)} | `{c.service}/{c.control}` | "
                f"{_cell(_value(c.from_value, c.unit))} -> {_cell(_value(c.to_value, c.unit))} | "
                f"{_cell(reason or '-')} | {_cell(result)} | {_cell(_effect(c) or '-')} |"
            )
    else:
        add("No controls were changed.")
    add("")

    add("## Runbooks")
    add("")
    if not report.runbooks:
        add("No runbook was opened.")
        add("")
    for rb in report.runbooks:
        add(f"### {rb.title or rb.runbook} (`{rb.runbook}`)")
        add("")
        add(f"Opened by {rb.opened_by} at {_clock(rb.opened_at, day)}.")
        add("")
        for step in rb.steps:
            box = "x" if step.status == ev.StepStatus.DONE.value else " "
            line = f"- [{box}] {step.step}: {step.status}"
            if step.status != ev.StepStatus.PENDING.value:
                line += f" by {step.actor} at {_clock(step.ts, day)}"
            if step.verified:
                line += " (verified)"
            if step.note:
                line += f" — {step.note}"
            add(line)
        add("")

    add("## Status updates")
    add("")
    if not report.status_updates:
        add("None posted.")
    for update in report.status_updates:
        add(f"- **{_clock(update.ts, day)}** ({update.actor})")
        add(f"  - Conditions: {update.conditions}")
        if update.actions:
            add(f"  - Actions: {update.actions}")
        if update.needs:
            add(f"  - Needs: {update.needs}")
    add("")

    for heading, entries, empty in (
        ("Notes", report.notes, "No notes."),
        ("Bookmarks", report.bookmarks, "No bookmarks."),
    ):
        add(f"## {heading}")
        add("")
        if not entries:
            add(empty)
        for entry in entries:
            add(f"- {_clock(entry.ts, day)} ({entry.actor}): {entry.text}")
        add("")

    add("## Follow-up tasks")
    add("")
    if not report.tasks:
        add("None recorded.")
    for task in report.tasks:
        owner = f" (owner: {task.owner})" if task.owner else ""
        add(f"- [ ] {task.text}{owner}, added by {task.actor}")
    add("")

    add("## Log integrity")
    add("")
    integrity = report.integrity
    if not integrity.checked:
        add("- The hash chain was not checked.")
    elif integrity.ok:
        events = plural(integrity.count, "event")
        add(f"- The hash chain verifies: {events}, none edited or missing.")
    else:
        bad = f"seq {integrity.first_bad_seq}" if integrity.first_bad_seq else "the log"
        add(f"- **The hash chain does not verify** at {bad}: {integrity.reason}")
        if integrity.reason.startswith("torn"):
            add("- A write was cut short there (a crash); the events before it are intact.")
        else:
            add("- Events from there on may have been edited, removed or reordered.")
    if integrity.stopped_at_line is not None:
        add(
            f"- Reading stopped at line {integrity.stopped_at_line} "
            f"({integrity.stop_reason}); the report covers the lines before it."
        )
    if report.unknown_kinds:
        kinds = ", ".join(f"`{k}`" for k in report.unknown_kinds)
        add(f"- Event kinds from a newer warroom, shown raw: {kinds}")
    return "\n".join(out).rstrip("\n") + "\n"


def _rank(role: str) -> int:
    return _ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER)
