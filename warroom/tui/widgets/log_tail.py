"""The incident log tail: the latest events, newest last, appended incrementally by seq."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.widgets import RichLog

from warroom import untrusted
from warroom.events import BaseEvent, CommandRun, is_operator_action
from warroom.report.flapping import Flapping, collapse_events
from warroom.state import IncidentState
from warroom.store.shared import is_merged_offline
from warroom.store.team import machine_of
from warroom.untrusted import one_line

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
    "control_confirmed": "bold cyan",
    "step_verified": "green",
    "command_run": "cyan",
}
#: Events kept for the view (more than any terminal is tall).
KEEP_LINES = 120
#: Machine events drawn per repaint at most (or the pane's height, if taller): a flood of
#: probe changes (thousands of targets flipping) beyond it is one "… N more" line, never an
#: operator's action, which is always drawn. More than a screen of the pane each repaint, at
#: a fraction of the cost of drawing all.
BURST_LINES = 24
#: Screen lines kept per event on average (wrapped); the pane's memory stays bounded.
MAX_WRAPPED_LINES = 3
#: Events that are not news to a responder (heartbeats make the header's team line).
HIDDEN_KINDS = frozenset({"presence"})
PROBE_STYLES = {"down": "red", "degraded": "yellow", "up": "green", "unknown": "dim"}


def event_line(event: BaseEvent) -> Text:
    """One line for an event: time, actor (operator actions only), summary (wraps in the pane)."""
    text = Text()
    clock = event.ts[11:19] if len(event.ts) >= 19 else "--:--:--"
    text.append(f"{clock} ", style="dim")
    text.append(f"#{event.seq:<5} ", style="dim")
    if is_operator_action(event) and event.actor:
        text.append(f"{one_line(event.actor, 64)}: ", style="cyan")
    elif machine_of(event.actor):
        text.append(f"[{one_line(machine_of(event.actor), 64)}] ", style="dim cyan")
    if is_merged_offline(event):
        text.append("⇄ offline ", style="bold yellow")
    style = KIND_STYLES.get(event.kind, "")
    to_state = getattr(event, "to_state", None)
    if event.kind == "probe_state_changed" and isinstance(to_state, str):
        style = PROBE_STYLES.get(to_state, "")
    summary = event.summary()
    if isinstance(event, CommandRun):
        # Every run of a runbook's first block reads the same: the step tells them apart.
        summary = f"step {event.step} of {event.runbook}: {summary}"
    # Notes, actors and probe errors come from other terminals and services: never raw.
    text.append(one_line(summary), style=style)
    if getattr(event, "needs_second", False):
        text.append("  needs a second responder", style="bold yellow")
    return text


def item_line(item: BaseEvent | Flapping) -> Text:
    """An event's line, or one line for a target's flapping (count and span)."""
    if not isinstance(item, Flapping):
        return event_line(item)
    text = Text()
    clock = item.first_ts[11:19] if len(item.first_ts) >= 19 else "--:--:--"
    text.append(f"{clock} ", style="dim")
    text.append(f"#{item.first_seq:<5} ", style="dim")
    text.append(f"⇅ {untrusted.one_line(item.summary())}", style="yellow")
    return text


class LogTail(RichLog):
    """The newest events, newest last, following the end unless the responder scrolls back.

    Long lines wrap (re-wrapped when the width changes), so nothing is pushed out of view;
    while scrolled back, new events are counted in the border ("N new below") and End (or
    scrolling to the bottom) follows again. Wheel, PgUp/PgDn, Home/End scroll it.
    """

    #: RichLog's own scroll keys, shown in the key bar while the log has focus.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("pageup", "page_up", "Page up"),
        Binding("pagedown", "page_down", "Page down"),
        Binding("end", "scroll_end", "Follow"),
    ]

    DEFAULT_CSS = """
    LogTail {
        height: 10;
        overflow-x: hidden;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            wrap=True,
            min_width=1,
            max_lines=KEEP_LINES * MAX_WRAPPED_LINES,
            markup=False,
            highlight=False,
            auto_scroll=False,
        )
        self.shown_seq = 0
        #: Events arrived while scrolled back, not yet seen.
        self.unseen = 0
        self._texts: deque[Text] = deque(maxlen=KEEP_LINES)
        self._wrap_width = 0
        self._follow = True

    def update_from(self, state: IncidentState) -> None:
        if state.last_seq == self.shown_seq:
            return
        if state.last_seq < self.shown_seq:
            self._texts.clear()
            self.clear()
            self.shown_seq = 0
        fresh = [
            event
            for event in state.tail
            if event.seq > self.shown_seq and event.kind not in HIDDEN_KINDS
        ]
        if self._flapping_in(state, fresh):
            return
        lines: list[Text] = []
        burst = max(BURST_LINES, self.size.height)
        if not self.shown_seq:
            fresh = fresh[-KEEP_LINES:]  # the first paint: the history, as much as is kept
        elif len(fresh) > burst:
            older = fresh[:-burst]
            kept = [event for event in older if event.operator]
            if len(kept) < len(older):
                skipped = len(older) - len(kept)
                lines.append(Text(f"… {skipped} more events (see the log or replay)", style="dim"))
            fresh = (kept + fresh[-burst:])[-KEEP_LINES:]
        lines.extend(event_line(event) for event in fresh)
        self.shown_seq = state.last_seq
        self._texts.extend(lines)
        following = self.following
        if self._rewrap_needed():
            self._rewrap()
        else:
            self._write(lines, following)
        if not following:
            self.unseen += len(fresh)
        self._show_marker()

    def _flapping_in(self, state: IncidentState, fresh: list[BaseEvent]) -> bool:
        """When a target flaps, its changes become one line where the run began (which may
        be above lines already shown): the pane is redrawn from the tail; True if it was."""
        if not any(event.kind == "probe_state_changed" for event in fresh):
            return False
        items = collapse_events([e for e in state.tail if e.kind not in HIDDEN_KINDS])
        if not any(isinstance(i, Flapping) and i.last_seq > self.shown_seq for i in items):
            return False
        self.shown_seq = state.last_seq
        self._texts.clear()
        self._texts.extend(item_line(item) for item in items[-KEEP_LINES:])
        if not self.following:
            self.unseen += len(fresh)
        self._rewrap()
        self._show_marker()
        return True

    def restart(self) -> None:
        """Show the tail afresh (the shared order was re-folded after an offline merge)."""
        self._texts.clear()
        self.clear()
        self.shown_seq = 0

    @property
    def following(self) -> bool:
        """Whether new events scroll into view (the responder has not scrolled back)."""
        return self._follow

    @property
    def texts(self) -> list[Text]:
        """The events' lines kept (newest last), for tests and copy-out."""
        return list(self._texts)

    def _rewrap_needed(self) -> bool:
        width = self.scrollable_content_region.width
        return bool(width) and width != self._wrap_width

    def _rewrap(self) -> None:
        following = self.following
        self._wrap_width = self.scrollable_content_region.width
        self.clear()
        self._write(self._texts, following)

    def _write(self, lines: Iterable[Text], following: bool) -> None:
        # One write for the batch: RichLog's per-write cost (options, measuring, scrolling,
        # refreshing) is paid once, not per event, when hundreds of probe changes land.
        batch = _Lines(list(lines))
        if not any(text.plain for text in batch.texts):
            return
        # Wrapped to the pane's own width (RichLog would measure against the terminal's).
        width = self.scrollable_content_region.width or None
        self.write(batch, width=width, scroll_end=following)

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self._rewrap_if_needed)

    def _rewrap_if_needed(self) -> None:
        if self._rewrap_needed():
            self._rewrap()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Following scrolls only ever move down: a move up away from the end is the responder.
        if self.is_vertical_scroll_end:
            self._follow = True
        elif new_value < old_value:
            self._follow = False
        if self.unseen and self._follow:
            self.unseen = 0
            self._show_marker()

    def _show_marker(self) -> None:
        text = f"▼ {self.unseen} new below · End follows" if self.unseen else ""
        if self.border_subtitle != text:
            self.border_subtitle = text


class _Lines:
    """Event lines as one renderable, one line each: a line that fits the width is cut into
    segments at its spans directly, and only a longer one goes through Rich's wrapping
    (which costs several times more, and at thousands of targets hundreds of lines land at
    every refresh). Both give the strips Rich gives for the lines joined into one Text."""

    def __init__(self, texts: list[Text]) -> None:
        self.texts = texts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        newline = Segment.line()
        last = len(self.texts) - 1
        for i, text in enumerate(self.texts):
            segments = _fitting_segments(text, width, console)
            if segments is None:
                yield from console.render(text, options)
                if text.end.endswith("\n"):
                    continue  # the wrapped lines end with their own newline
            else:
                yield from segments
            if i < last:
                yield newline


def _fitting_segments(text: Text, width: int, console: Console) -> list[Segment] | None:
    """`text` as segments when it fits `width` on one line with spans in order and apart
    (what `event_line` builds); None otherwise."""
    plain = text.plain
    if text.cell_len > width or "\n" in plain or "\t" in plain:
        return None
    null = Style.null()
    base = console.get_style(text.style, default=null) if text.style else null
    segments: list[Segment] = []
    at = 0
    for span in text.spans:
        if span.start < at:
            return None
        if span.start > at:
            segments.append(Segment(plain[at : span.start], base))
        if span.end > span.start:
            style = console.get_style(span.style, default=null)
            segments.append(Segment(plain[span.start : span.end], base + style))
        at = max(at, span.end)
    if at < len(plain):
        segments.append(Segment(plain[at:], base))
    return segments
