"""The incident log tail: the latest events, newest last, appended incrementally by seq."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.widget import Widget

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
#: Lines kept for the view (more than any terminal is tall).
KEEP_LINES = 120
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


class LogTail(Widget, can_focus=True):
    """Shows the newest events of `state.tail` that fit, newest last.

    A fixed-height view rather than a scrolling RichLog: every RichLog write changes its
    virtual size, which relayouts (and repaints) the whole screen; under probe churn that
    was several full repaints a second. The full record is the log itself (and replay).
    """

    DEFAULT_CSS = "LogTail { height: 10; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown_seq = 0
        self._lines: deque[Text] = deque(maxlen=KEEP_LINES)

    def update_from(self, state: IncidentState) -> None:
        if state.last_seq == self.shown_seq:
            return
        if state.last_seq < self.shown_seq:
            self._lines.clear()
            self.shown_seq = 0
        fresh = [event for event in state.tail if event.seq > self.shown_seq]
        if len(fresh) > KEEP_LINES:
            if self.shown_seq:
                skipped = len(fresh) - KEEP_LINES
                self._lines.append(
                    Text(f"… {skipped} more events (see the log or replay)", style="dim")
                )
            fresh = fresh[-KEEP_LINES:]
        self._lines.extend(event_line(event) for event in fresh)
        self.shown_seq = state.last_seq
        self.refresh()

    @property
    def lines(self) -> list[Text]:
        """The lines kept (newest last), for tests and copy-out."""
        return list(self._lines)

    def render(self) -> Text:
        height = max(1, self.content_region.height)
        return Text("\n").join(list(self._lines)[-height:])
