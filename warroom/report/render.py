"""Render a `Report` as a Markdown postmortem draft or as JSON (same content, as data).

The Markdown follows the Google SRE book's postmortem template: every section is present,
filled in from the log where the log knows, with a short prompt (a quoted line starting
"✍") where a person must write. Every string from the log goes through `warroom.report.escape`
for the context it lands in, so no note can forge a section, a row, a link or a tag.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from warroom import events as ev
from warroom.controls.words import value_words
from warroom.durations import format_duration
from warroom.report.escape import cell, code, inline, is_plain, link
from warroom.report.model import ControlChangeReport, Report, TimelineEntry

if TYPE_CHECKING:
    from warroom.report.builder import Appendix

_ROLE_ORDER = ("commander", "scribe", "comms")

#: How the report's intervals are measured (incident.io's and the SRE book's meanings).
DEFINITIONS = (
    ("TTD", "time to detect", "impact started → detected (first alert or failing probe)"),
    ("TTA", "time to acknowledge", "detected → acknowledged (first responder action)"),
    ("TTM", "time to mitigate", "impact started → impact ended (every probe healthy again)"),
    ("TTR", "time to resolve", "impact started → resolved (status set to resolved)"),
)


def render_json(report: Report) -> str:
    """The report as indented JSON (a pydantic model dump), newline-terminated."""
    return report.model_dump_json(indent=2) + "\n"


def _value(value: Any, unit: str = "") -> str:
    """A lever value in the one vocabulary the console and `log show` use too."""
    return value_words(value, unit)


def _time(ts: str) -> str:
    """2025-11-18T14:02:00.123456Z -> 2025-11-18 14:02:00Z (whole seconds, like every row)."""
    if not ts:
        return "-"
    day, _, rest = ts.partition("T")
    clock = rest.rstrip("Z").partition(".")[0]
    return f"{day} {clock}Z"


def _clock(ts: str, day: str) -> str:
    """Time of day when on `day`, else the full date and time."""
    if (
        len(ts) == 27
        and ts[:10] == day
        and ts[10] == "T"
        and ts[19] == "."
        and ts[26] == "Z"
        and "T" not in day
        and "." not in ts[11:19]
    ):
        return ts[11:19] + "Z"  # the log's own form (`format_ts`): what `_time` would cut
    full = _time(ts)
    return full[11:] if full.startswith(day + " ") else full


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return format_duration(round(seconds)) if round(seconds) else "0s"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


@functools.lru_cache(maxsize=4)
def _origin(origin: str) -> datetime:
    return ev.parse_ts(origin)


def _offset(ts: str, origin: str) -> str:
    if not ts or not origin:
        return ""
    # The log's own form (UTC, "Z") parses directly, several times faster than `parse_ts`.
    when = datetime.fromisoformat(ts) if ts.endswith("Z") else ev.parse_ts(ts)
    delta = round((when - _origin(origin)).total_seconds())
    return "T+0" if delta == 0 else ("T+" if delta > 0 else "T-") + format_duration(abs(delta))


def _prompt(text: str) -> str:
    return f"> ✍ {text}"


def effect_text(change: ControlChangeReport) -> str:
    """What the lever's probes did, e.g. "dwfm down -> up after 40s (settled)"."""
    effect = change.effect
    if effect is None:
        return ""
    if not effect.changes:
        states = ", ".join(f"{t} {s}" for t, s in sorted(effect.before.items()))
        return f"no change in {format_duration(round(effect.after_s))} ({states})"
    parts = [
        f"{c.target} {c.from_state} -> {c.to_state} after {format_duration(round(c.after_s))}"
        for c in effect.changes
    ]
    return ", ".join(parts) + f" ({effect.ended_by})"


def _result(c: ControlChangeReport) -> str:
    if c.outcome == "applied":
        return f"applied ({_value(c.result_value, c.unit)})"
    if c.outcome == "failed":
        return f"failed: {c.error}"
    return c.outcome


_TIMELINE_HEAD = ("| time | | who | what |", "|---|---|---|---|")


def _timeline_table(entries: list[TimelineEntry], day: str, origin: str) -> list[str]:
    return [*_TIMELINE_HEAD, *(_timeline_row(entry, day, origin) for entry in entries)]


class _Entry(Protocol):
    """What an appendix entry (a note, a bookmark) is drawn from."""

    @property
    def ts(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def text(self) -> str: ...


class _Line(_Entry, Protocol):
    """What a timeline line is drawn from."""

    @property
    def kind(self) -> str: ...
    @property
    def category(self) -> str: ...


@functools.lru_cache(maxsize=256)
def _actor(actor: str) -> str:
    # Few people write a long log: each name is escaped once.
    return inline(actor)


def _timeline_row(entry: _Line, day: str, origin: str) -> str:
    text = cell(entry.text)
    if entry.category == "action":
        text = f"**{text}**"
    when = f"{_clock(entry.ts, day)} | {_offset(entry.ts, origin)}"
    return f"| {when} | {_actor(entry.actor) or '-'} | {text} |"


def _entry_line(entry: _Entry, day: str) -> str:
    return f"- {_clock(entry.ts, day)} ({_actor(entry.actor)}): {inline(entry.text)}"


def _copy(spool: TextIO, out: _Lines) -> bool:
    """Copy a spooled section into the draft; False when it was empty."""
    if not spool.tell():
        return False
    spool.seek(0)
    while block := spool.read(1 << 20):
        out.write(block)
    return True


class _Lines:
    """Lines written straight through (a million-row appendix is never one string)."""

    def __init__(self, write: Callable[[str], object]) -> None:
        self._write = write
        self.write = write

    def append(self, line: str) -> None:
        self._write(line + "\n")

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self._write(line + "\n")


def render_markdown(report: Report) -> str:
    """The postmortem draft as Markdown: deterministic for a given report (no "now" in it)."""
    parts: list[str] = []
    write_markdown(report, parts.append)
    return "".join(parts)


class _Found:
    """The timeline entries the draft's prose quotes, found in one look at each entry."""

    def __init__(self, report: Report) -> None:
        self.times = report.times
        self.scenario: _Line | None = None
        self.change: _Line | None = None
        self.failing: _Line | None = None
        self.detected: _Line | None = None
        self.acknowledged: _Line | None = None

    def see(self, e: _Line) -> None:
        times = self.times
        if self.scenario is None and e.kind == "scenario_event":
            self.scenario = e
        if self.change is None and e.kind == "probe_state_changed":
            self.change = e
        if self.failing is None and e.ts == times.first_failure and e.category == "probe":
            self.failing = e
        if (
            self.detected is None
            and e.ts == times.first_detection
            and e.category in ("probe", "other")
        ):
            self.detected = e
        if self.acknowledged is None and e.ts == times.acknowledged:
            self.acknowledged = e


def write_markdown(
    report: Report, write: Callable[[str], object], appendix: Appendix | None = None
) -> None:
    """Write the draft line by line through `write` (each call gets one line and its newline).

    With `appendix` (a streamed report), the full timeline, notes and bookmarks come from
    its second pass over the log: written to temporary files first, since the prose before
    them quotes entries found on the way, then copied after it.
    """
    if appendix is None:
        found = _Found(report)
        for entry in report.timeline:
            found.see(entry)
        _write_markdown(report, write, found, None)
        return
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as timeline,
        tempfile.TemporaryFile("w+", encoding="utf-8") as notes,
        tempfile.TemporaryFile("w+", encoding="utf-8") as bookmarks,
    ):
        from warroom.report.builder import ENTRY_PREFIXES  # loaded with the appendix

        found = _Found(report)
        day, origin = _day_origin(report)
        rows: list[str] = []
        entries: dict[str, list[str]] = {"notes": [], "bookmarks": []}
        spools = {"notes": notes, "bookmarks": bookmarks}
        for section, item in appendix.walk():
            if section == "timeline":
                found.see(item)
                rows.append(_timeline_row(item, day, origin))
                if len(rows) >= _SPOOL_LINES:
                    _spool(timeline, rows)
            elif section == "entry":
                # A note or bookmark: its timeline row and its appendix line, as
                # `_timeline_row` and `_entry_line` draw them, with the text looked at once.
                found.see(item)
                section, prefix = ENTRY_PREFIXES[item.kind]
                text, clock, actor = item.text, _clock(item.ts, day), _actor(item.actor)
                if text and is_plain(text):  # then so is the prefixed text
                    shown, written = prefix + text, text
                else:
                    shown, written = cell(prefix + text), inline(text)
                rows.append(
                    f"| {clock} | {_offset(item.ts, origin)} | {actor or '-'} | **{shown}** |"
                )
                lines = entries[section]
                lines.append(f"- {clock} ({actor}): {written}")
                if len(rows) >= _SPOOL_LINES:
                    _spool(timeline, rows)
                if len(lines) >= _SPOOL_LINES:
                    _spool(spools[section], lines)
            else:
                lines = entries[section]
                lines.append(_entry_line(item, day))
                if len(lines) >= _SPOOL_LINES:
                    _spool(spools[section], lines)
        _spool(timeline, rows)
        for section, lines in entries.items():
            _spool(spools[section], lines)
        _write_markdown(report, write, found, (timeline, notes, bookmarks))


#: Lines gathered before they are written to a spool in one call.
_SPOOL_LINES = 4096


def _spool(spool: TextIO, lines: list[str]) -> None:
    """Write `lines` (each without its newline) to `spool` and empty the list."""
    if lines:
        spool.write("\n".join(lines) + "\n")
        lines.clear()


def _day_origin(report: Report) -> tuple[str, str]:
    times = report.times
    day = (times.opened or times.impact_start or times.last_event)[:10]
    return day, times.opened or times.impact_start


def _write_markdown(
    report: Report,
    write: Callable[[str], object],
    found: _Found,
    spooled: tuple[TextIO, TextIO, TextIO] | None,
) -> None:
    out = _Lines(write)
    add = out.append
    times = report.times
    day, origin = _day_origin(report)
    down = [s for s in report.impact if s.down_s > 0]
    hit = [s for s in report.impact if s.down_s > 0 or s.degraded_s > 0]

    add(f"# Postmortem: {inline(report.title or '(untitled incident)')}")
    add("")
    ident = code(report.incident_id, in_table=True) if report.incident_id else "(not declared)"
    add(
        f"Draft written by `warroom report` from {code(report.source)} "
        f"({report.event_count} events, seq {report.first_seq}-{report.last_seq}). "
        "Times are UTC; T+ counts from the declaration. Lines starting ✍ are for you to write."
    )
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| Incident | {ident} |")
    add(f"| Date | {day or '-'} |")
    add("| Authors | ✍ |")
    add(f"| Status | draft; incident {cell(report.status or 'not declared')} |")
    add(f"| Severity | {cell(report.severity or '-')} |")
    roles = sorted(report.roles.items(), key=lambda kv: (_rank(kv[0]), kv[0]))
    for role, person in roles:
        add(f"| {cell(role.capitalize())} | {cell(person)} |")
    if times.resolved:
        span = "declared to resolved"
    else:
        span = f"declared to last event: still {report.status or 'open'}"
    add(f"| Duration | {_dur(times.duration_s)} ({span}) |")
    add("")

    add("## Summary")
    add("")
    add(_summary(report, down, hit))
    add("")
    add(_prompt("In two sentences a customer would understand: what broke, for whom, how long."))
    add("")

    add("## Impact")
    add("")
    if report.impact:
        add("A service counts as down (or degraded) while any of its probes is.")
        add("")
        add("| service | minutes down | minutes degraded | probes (down/degraded) | at end |")
        add("|---|---:|---:|---|---|")
        for service in report.impact:
            targets = ", ".join(
                f"{t.target} ({_minutes(t.down_s)}/{_minutes(t.degraded_s)})"
                for t in service.targets
            )
            add(
                f"| {cell(service.service)} | {_minutes(service.down_s)} | "
                f"{_minutes(service.degraded_s)} | {cell(targets)} | "
                f"{cell(service.final_state)} |"
            )
    else:
        add("No probe data in the log.")
    add("")
    add(_prompt("Impact in customer terms: who could not do what, how many, SLO budget spent."))
    add("")

    add("## Root causes")
    add("")
    add(_prompt("Why it happened, as deep as the evidence goes (ask why until it is a fix)."))
    add("")

    add("## Trigger")
    add("")
    trigger = _trigger(report, found, day)
    if trigger:
        add(trigger)
        add("")
    add(_prompt("What set it off: a change, a load, a dependency?"))
    add("")

    add("## Detection")
    add("")
    add(_detection(report, found, day))
    add("")
    add(_prompt("Would we have noticed without these probes? What would have told us sooner?"))
    add("")

    add("## Resolution")
    add("")
    resolution: list[tuple[str, str]] = [
        (
            c.ts,
            f"- {_clock(c.ts, day)} {code(c.service + '/' + c.control)} "
            f"{inline(_value(c.from_value, c.unit))} -> {inline(_value(c.to_value, c.unit))} "
            f"by {inline(c.actor)}: {inline(effect_text(c))}",
        )
        for c in report.controls
        if c.effect is not None and c.effect.changes
    ]
    if times.impact_end:
        resolution.append(
            (
                times.impact_end,
                f"- Impact ended at {_clock(times.impact_end, day)}: every probe healthy again.",
            )
        )
    resolution.extend(
        (row.ts, f"- {row.label} at {_clock(row.ts, day)} ({row.basis}).")
        for row in times.rows
        if row.label in ("Mitigated", "Resolved", "Reopened")
    )
    out.extend(line for _ts, line in sorted(resolution, key=lambda item: item[0]))
    if report.impact and not times.impact_end:
        add("- Impact had not ended at the last event: some probes were still failing.")
    add("")
    add(_prompt("What fixed it, and what made the fix slow or fast?"))
    add("")

    add("## Key times")
    add("")
    add("| moment | time | | from |")
    add("|---|---|---|---|")
    for row in times.rows:
        add(f"| {row.label} | {_time(row.ts)} | {_offset(row.ts, origin)} | {row.basis} |")
    add("")
    intervals = {
        "TTD": times.time_to_detect_s,
        "TTA": times.time_to_acknowledge_s,
        "TTM": times.time_to_mitigate_s,
        "TTR": times.time_to_resolve_s,
    }
    for short, name, meaning in DEFINITIONS:
        add(f"- **{short}** ({name}): {_dur(intervals[short])}, {meaning}")
    add("")

    add("## Action items")
    add("")
    if report.tasks:
        add("| item | type | priority | owner | tracking | added by |")
        add("|---|---|---|---|---|---|")
        for task in report.tasks:
            tracking = link("ticket", task.link) if task.link else "✍"
            if task.link and "|" in tracking:
                tracking = tracking.replace("|", "\\|")
            add(
                f"| {cell(task.text)} | {cell(task.type or '✍')} | "
                f"{cell(task.priority or '✍')} | {cell(task.owner or '✍')} | "
                f"{tracking} | {cell(task.actor)} |"
            )
    else:
        add("None recorded.")
    add("")
    add(_prompt("One item per cause and per gap found: type prevent, mitigate or process."))
    add("")

    add("## Lessons learned")
    add("")
    add("### What went well")
    add("")
    add(_prompt("What worked: tools, runbooks, people, decisions."))
    add("")
    add("### What went wrong")
    add("")
    for c in report.controls:
        if c.outcome == "failed":
            add(
                f"- {_clock(c.ts, day)} {code(c.service + '/' + c.control)} change failed: "
                f"{inline(c.error)}"
            )
    if any(c.outcome == "failed" for c in report.controls):
        add("")
    add(_prompt("What slowed us down or made it worse."))
    add("")
    add("### Where we got lucky")
    add("")
    add(_prompt("What went right by chance, and would not next time."))
    add("")

    add("## Timeline")
    add("")
    add(
        "Highlights: operator actions, bookmarks, status updates, and each service's first "
        "failure and last recovery. The full timeline is in the appendix."
    )
    add("")
    out.extend(_timeline_table(report.highlights, day, origin))
    add("")

    add("## Levers pulled")
    add("")
    if report.controls:
        add(
            "Effect: what the lever's probes did after it, until they settled (quiet for 2m), "
            "the next lever on the same service, or the end of the log."
        )
        add("")
        add("| time | who | control | change | reason | result | effect |")
        add("|---|---|---|---|---|---|---|")
        for c in report.controls:
            reason = c.reason + (f" (reverts {c.revert_of})" if c.revert_of else "")
            add(
                f"| {_clock(c.ts, day)} | {cell(c.actor)} | "
                f"{code(c.service + '/' + c.control, in_table=True)} | "
                f"{cell(_value(c.from_value, c.unit))} -> {cell(_value(c.to_value, c.unit))} | "
                f"{cell(reason)} | {cell(_result(c))} | {cell(effect_text(c))} |"
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
        add(f"### {inline(rb.title or rb.runbook)} ({code(rb.runbook)})")
        add("")
        add(f"Opened by {inline(rb.opened_by)} at {_clock(rb.opened_at, day)}.")
        add("")
        for step in rb.steps:
            box = "x" if step.status == ev.StepStatus.DONE.value else " "
            line = f"- [{box}] {inline(step.step)}: {inline(step.status)}"
            if step.status != ev.StepStatus.PENDING.value:
                line += f" by {inline(step.actor)} at {_clock(step.ts, day)}"
            if step.verified:
                line += " (verified)"
            if step.note:
                line += f" — {inline(step.note)}"
            add(line)
        add("")

    add("## Status updates")
    add("")
    if not report.status_updates:
        add("None posted.")
    for update in report.status_updates:
        add(f"- **{_clock(update.ts, day)}** ({inline(update.actor)})")
        add(f"  - Conditions: {inline(update.conditions)}")
        if update.actions:
            add(f"  - Actions: {inline(update.actions)}")
        if update.needs:
            add(f"  - Needs: {inline(update.needs)}")
    add("")

    add("## Participants")
    add("")
    if report.participants:
        add("| who | roles | actions | first action |")
        add("|---|---|---|---|")
        for p in report.participants:
            add(
                f"| {cell(p.actor)} | {cell(', '.join(p.roles))} | {p.actions} | "
                f"{_clock(p.first_ts, day) if p.first_ts else '-'} |"
            )
    else:
        add("Nobody acted in this log.")
    add("")

    add("## Appendix: full timeline")
    add("")
    add(
        f"Everything but probe samples ({day}); a target's flapping is one line. "
        "Machine events are credited to `probe`, `sim` or `lever`."
    )
    add("")
    if spooled is None:
        out.extend(_timeline_table(report.timeline, day, origin))
    else:
        out.extend(_TIMELINE_HEAD)
        _copy(spooled[0], out)
    add("")

    for i, (heading, entries, empty) in enumerate(
        (
            ("Appendix: notes", report.notes, "No notes."),
            ("Appendix: bookmarks", report.bookmarks, "No bookmarks."),
        ),
        start=1,
    ):
        add(f"## {heading}")
        add("")
        if spooled is None:
            if not entries:
                add(empty)
            out.extend(_entry_line(entry, day) for entry in entries)
        elif not _copy(spooled[i], out):
            add(empty)
        add("")

    if report.probing_degraded:
        add("## Probing degraded")
        add("")
        add(
            "The probe engine could not keep up (missed rounds, or probes started over 10 % "
            "of their interval late): probe data in these periods may be missing or late."
        )
        add("")
        add("| from | to | for | why |")
        add("|---|---|---|---|")
        for period in report.probing_degraded:
            end = _clock(period.end, day) if period.end else "end of log"
            add(
                f"| {_clock(period.start, day)} | {end} | {_dur(period.duration_s)} | "
                f"{cell(period.reason)} |"
            )
        add("")

    add("## Log integrity")
    add("")
    integrity = report.integrity
    if not integrity.checked:
        add("- The hash chain was not checked.")
    elif integrity.ok:
        add(f"- The hash chain verifies: {integrity.count} events, none edited or missing.")
    else:
        bad = f"seq {integrity.first_bad_seq}" if integrity.first_bad_seq else "the log"
        add(f"- **The hash chain does not verify** at {bad}: {inline(integrity.reason)}")
        if integrity.reason.startswith("torn"):
            add("- A write was cut short there (a crash); the events before it are intact.")
        else:
            add("- Events from there on may have been edited, removed or reordered.")
    if integrity.stopped_at_line is not None:
        add(
            f"- Reading stopped at line {integrity.stopped_at_line} "
            f"({inline(integrity.stop_reason)}); the report covers the lines before it."
        )
    if report.unknown_kinds:
        kinds = ", ".join(code(k) for k in report.unknown_kinds)
        add(f"- Event kinds from a newer warroom, shown raw: {kinds}")
    if integrity.head_hash:
        add(
            f"- Log head: seq {integrity.head_seq}, sha256 {code(integrity.head_hash)} "
            "(the hash of its last line: a copy of the log that ends there is this log)."
        )


def _summary(report: Report, down: list[Any], hit: list[Any]) -> str:
    times = report.times
    sev = f"{report.severity} " if report.severity else ""
    parts = [f"A {sev}incident, {inline(report.title or 'untitled')}."]
    if hit:
        worst = max(hit, key=lambda s: (s.down_s, s.degraded_s))
        names = ", ".join(inline(s.service) for s in down) or "none"
        parts.append(
            f"{len(hit)} of {len(report.impact)} services were impaired ({names} down); "
            f"the worst, {inline(worst.service)}, was down {_minutes(worst.down_s)} and "
            f"degraded {_minutes(worst.degraded_s)} minutes."
        )
    if times.impact_start:
        ended = (
            f"ended after {_dur(times.time_to_mitigate_s)}"
            if times.impact_end
            else "had not ended at the last event"
        )
        parts.append(
            f"Impact began at {_time(times.impact_start)}, was detected "
            f"{_dur(times.time_to_detect_s)} later and {ended}."
        )
    if times.resolved:
        parts.append(f"Resolved at {_time(times.resolved)}.")
    else:
        parts.append(f"Not resolved at the last event (status {inline(report.status or '-')}).")
    if times.reopened:
        parts.append(f"Reopened {len(times.reopened)} time(s).")
    return " ".join(parts)


def _trigger(report: Report, found: _Found, day: str) -> str:
    times = report.times
    first = found.scenario
    if first is not None:
        return f"- The simulator at {_clock(first.ts, day)}: {inline(first.text)}"
    bad = found.change
    if times.first_failure and bad is not None:
        failing = found.failing or bad
        return f"- First failing probe at {_clock(failing.ts, day)}: {inline(failing.text)}"
    return ""


def _detection(report: Report, found: _Found, day: str) -> str:
    times = report.times
    lines = []
    if times.first_detection:
        what = found.detected
        how = f": {inline(what.text)}" if what is not None else ""
        lines.append(
            f"- Detected at {_clock(times.first_detection, day)} "
            f"({_dur(times.time_to_detect_s)} after impact began) by "
            f"{'the probes' if what is None or what.category == 'probe' else 'an alert'}{how}."
        )
    else:
        lines.append("- No alert or failing probe in the log.")
    if times.acknowledged:
        who = found.acknowledged.actor if found.acknowledged is not None else ""
        lines.append(
            f"- Acknowledged at {_clock(times.acknowledged, day)} by {inline(who or '-')} "
            f"({_dur(times.time_to_acknowledge_s)} after detection)."
        )
    if times.opened:
        lines.append(f"- Declared at {_clock(times.opened, day)}.")
    return "\n".join(lines)


def _rank(role: str) -> int:
    return _ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER)
