"""The incident log tail: the latest events, newest last, appended incrementally by seq."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from warroom.events import BaseEvent, is_operator_action
from warroom.state import IncidentState

KIND_STYLES = {
    "incident_opened": "bold magenta",
    "incident_closed": "bold magenta",
    "severity_set": "bold magenta",
    "status_set": "bold magenta",
    "status_update_posted": "bold cyan",
    "note_added": "bold",
    "bookmark_added": "bold blue",
    "task_added": "bold",
    "scenario_event": "magenta",
    "control_requested": "cyan",
    "control_applied": "bold cyan",
    "control_failed": "bold red",
    "step_verified": "green",
    "command_run": "cyan",
}
PROBE_STYLES = {"down": "red", "degraded": "yellow", "up": "green", "unknown": "dim"}


def event_line(event: BaseEvent) -> Text:
    """One line for an event: time, actor (operator actions only), summary."""
    text = Text(no_wrap=True)
    clock = event.ts[11:19] if len(event.ts) >= 19 else "--:--:--"
    text.append(f"{clock} ", style="dim")
    text.append(f"#{event.seq:<5} ", style="dim")
    if is_operator_action(event) and event.actor:
        text.append(f"{event.actor}: ", style="cyan")
    style = KIND_STYLES.get(event.kind, "")
    to_state = getattr(event, "to_state", None)
    if event.kind == "probe_state_changed" and isinstance(to_state, str):
        style = PROBE_STYLES.get(to_state, "")
    text.append(event.summary(), style=style)
    return text


class LogTail(RichLog):
    """Shows `state.tail`; writes only events it has not shown, rewrites when rewound (replay)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, wrap=False, markup=False, auto_scroll=True)
        self.shown_seq = 0

    def update_from(self, state: IncidentState) -> None:
        if state.last_seq == self.shown_seq:
            return
        tail = state.tail
        if state.last_seq < self.shown_seq:
            self.clear()
            self.shown_seq = 0
        fresh = [event for event in tail if event.seq > self.shown_seq]
        # Only what can be seen is drawn: when a thousand probes flap at once, writing every
        # line would cost more than the frame; the skipped ones are in the log and replay.
        limit = max(self.size.height, 20)
        if len(fresh) > limit:
            skipped = len(fresh) - limit
            if self.shown_seq:
                self.write(Text(f"… {skipped} more events (see the log or replay)", style="dim"))
            fresh = fresh[-limit:]
        for event in fresh:
            self.write(event_line(event))
        self.shown_seq = state.last_seq
