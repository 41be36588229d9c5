"""The handoff brief: what the next shift must know, in one screen of plain text.

`render_brief(report, now=...)` is pure (the console calls it on the report it keeps for its
session; `warroom brief LOG` on a log): what is broken now, what was tried and what it did,
the open follow-ups and the hypotheses noted, who commands and when the next status update
is due. Every string from the log is shown with its control characters made visible.
"""

from __future__ import annotations

import re
from datetime import datetime

from warroom import events as ev
from warroom.durations import format_duration
from warroom.report.escape import visible
from warroom.report.model import Report

#: Lines in a brief at most (one terminal screen) and characters per line.
SCREEN_LINES = 24
WIDTH = 100
#: Reminder interval per severity when the caller gives none (the console's defaults).
DEFAULT_INTERVALS = {"SEV1": 1800.0, "SEV2": 3600.0, "SEV3": 7200.0}
_HYPOTHESIS = re.compile(r"\b(hypothes\w*|suspect\w*|maybe|might|could be|think|theory)\b|\?", re.I)
_BAD = {ev.ProbeState.DOWN.value, ev.ProbeState.DEGRADED.value}


def _one(text: object, width: int = WIDTH) -> str:
    line = " ".join(visible(str(text)).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _item(text: object) -> str:
    return "  " + _one(text, WIDTH - 2)


def _hhmm(ts: str) -> str:
    return ts[11:19] + "Z" if len(ts) >= 19 else "-"


def _ago(ts: str, now: datetime) -> str:
    seconds = round((now - ev.parse_ts(ts)).total_seconds())
    return format_duration(max(0, seconds)) if seconds else "0s"


def status_update_due(report: Report, intervals: dict[str, float] | None = None) -> str:
    """When the next status update is due (RFC 3339), "" when none is (resolved, no SEV)."""
    interval = (intervals or DEFAULT_INTERVALS).get(report.severity)
    if interval is None or not report.incident_id or report.status == "resolved":
        return ""
    last = report.status_updates[-1].ts if report.status_updates else report.times.opened
    if not last:
        return ""
    due = ev.parse_ts(last).timestamp() + interval
    return ev.format_ts(datetime.fromtimestamp(due, tz=ev.parse_ts(last).tzinfo))


def render_brief(
    report: Report,
    *,
    now: datetime | None = None,
    intervals: dict[str, float] | None = None,
) -> str:
    """The brief as lines of at most `WIDTH` characters, at most `SCREEN_LINES` of them.

    `now` defaults to the last event's time (a brief of a finished log reads as of its end).
    """
    times = report.times
    as_of = now or (ev.parse_ts(times.last_event) if times.last_event else None)
    head: list[str] = []
    title = _one(report.title or "(untitled incident)", 60)
    state = " · ".join(x for x in (report.severity, report.status) if x) or "not declared"
    head.append(_one(f"HANDOFF  {title}  [{state}]  {_one(report.incident_id, 30)}"))
    when = f"as of {ev.format_ts(as_of)[:19].replace('T', ' ')}Z" if as_of else "empty log"
    if times.last_event:
        when += f" · last event {_hhmm(times.last_event)}"
    if times.opened and as_of:
        when += f" · declared {_hhmm(times.opened)} ({_ago(times.opened, as_of)} ago)"
    head.append(_one(when))
    order = ("commander", "scribe", "comms")
    ranked = sorted(
        report.roles.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9, kv[0])
    )
    who = ", ".join(f"{_one(role, 20)} {_one(person, 30)}" for role, person in ranked if person)
    due = status_update_due(report, intervals)
    update = ""
    if due and as_of:
        late = (as_of - ev.parse_ts(due)).total_seconds()
        update = f" · next status update due {_hhmm(due)} " + (
            f"(OVERDUE by {_ago(due, as_of)})"
            if late >= 0
            else f"(in {_ago(ev.format_ts(as_of), ev.parse_ts(due))})"
        )
    head.append(_one((who or "no commander assigned") + update))

    broken = [
        _item(
            f"{_one(t.target, 30)} {t.final_state} since {_hhmm(t.since)}"
            + (f" ({_one(t.reason, 50)})" if t.reason else "")
        )
        for s in report.impact
        for t in s.targets
        if t.final_state in _BAD
    ]
    if not broken:
        healthy = f" since {_hhmm(times.impact_end)}" if times.impact_end else ""
        broken = [f"  nothing: every probe healthy{healthy}" if report.impact else "  no probes"]

    tried = []
    for c in report.controls:
        result = "applied" if c.outcome == "applied" else f"{c.outcome} {c.error}".strip()
        effect = ""
        if c.effect is not None and c.effect.changes:
            effect = "; " + ", ".join(
                f"{x.target} {x.from_state}→{x.to_state} after {format_duration(round(x.after_s))}"
                for x in c.effect.changes[-3:]
            )
        elif c.effect is not None:
            effect = "; no probe change"
        tried.append(
            _item(
                f"{_hhmm(c.ts)} {c.service}/{c.control} {c.from_value}→{c.to_value} "
                f"({c.actor.split('@')[0]}): {result}{effect}"
            )
        )

    follow = [
        _item(
            (f"[{' '.join(x for x in (t.priority, t.type) if x)}] " if t.priority or t.type else "")
            + t.text
            + (f" ({t.owner})" if t.owner else "")
            + (f" {t.link}" if t.link else "")
        )
        for t in report.tasks
    ]
    noted = [n for n in report.notes if _HYPOTHESIS.search(n.text)] or report.notes
    notes = [_item(f"{_hhmm(n.ts)} {n.actor.split('@')[0]}: {n.text}") for n in noted]

    # (title, lines, how many fit, keep the first ones (else the latest ones))
    sections = [
        ("BROKEN NOW", broken, 5, True),
        ("TRIED (latest last)", tried, 5, False),
        ("OPEN FOLLOW-UPS", follow, 4, True),
        ("HYPOTHESES AND NOTES (latest last)", notes, 3, False),
    ]
    lines = list(head)
    for name, items, cap, first in sections:
        lines.append(name)
        if len(items) <= cap:
            lines.extend(items or ["  none"])
            continue
        more = f"  … {len(items) - cap + 1} more (see warroom report)"
        lines.extend([*items[: cap - 1], more] if first else [more, *items[1 - cap :]])
    return "\n".join(lines[:SCREEN_LINES]) + "\n"
