"""The handoff brief of the live incident, built from the log the way the report is.

The console's state is folded for the screen, not for the postmortem (the report keeps lever
effects, flapping and key times the reducer does not), so the brief reads the store again
through `ReportBuilder`: one pass, off the event loop, and always the same brief that
`warroom report --brief` would print for this log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from warroom.log.store import EventStore
from warroom.report.brief import render_brief
from warroom.report.builder import build_report


def handoff_brief(
    store: EventStore, now: datetime, intervals: Mapping[str, float] | None = None
) -> str:
    """The brief of everything `store` holds, as of `now` (blocking: run it in a thread)."""
    report = build_report(store.read(), source=str(getattr(store, "path", "") or ""))
    return render_brief(report, now=now, intervals=dict(intervals) if intervals else None)
