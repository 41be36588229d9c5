"""The main screen's panes in one container, rendered from an `IncidentState`.

Live console and read-only replay both build this: it holds no app globals, takes the state
and a clock reading in `update_from`, and reports the responder's picks as messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Key
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from warroom import untrusted
from warroom.session.alerts import IntakeStatus
from warroom.session.freshness import Freshness
from warroom.session.levers import LeverReadings
from warroom.state import IncidentState
from warroom.tui.widgets.alerts_pane import AlertsPane
from warroom.tui.widgets.control_panel import ControlPanel
from warroom.tui.widgets.header import IncidentHeader
from warroom.tui.widgets.log_tail import LogTail
from warroom.tui.widgets.probe_table import ProbeTable
from warroom.tui.widgets.runbook_checklist import RunbookChecklist
from warroom.untrusted import one_line
from warroom.words import plural

#: How long the probe cursor rests on a service before the mitigation panel shows it.
CONTROLS_SETTLE_S = 0.08


def freshness_text(freshness: Freshness, total: int) -> str:
    """The one line saying which probe data is not live and since when ("" if all is)."""
    if freshness.live:
        return ""
    count = len(freshness.stale)
    which = "all probe data" if count == total else f"{count} of {plural(total, 'target')}"
    since = f" since {freshness.since:%H:%M:%S}" if freshness.since is not None else ""
    return f"⚠ STALE: {which} not live{since} — {one_line(freshness.reason)}"


def _plain(value: str) -> Text:
    """Already-sanitised text as a `Text`, so `[` in a path or filter is never markup."""
    return Text(value, end="")


class IncidentView(Vertical):
    """Header, problems line, probe table (+ filter), runbooks, control panel and log tail."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selected_service: str | None = None
        self.state = IncidentState()
        self.problems: list[str] = []
        # Held directly (not queried): timers may render while the screen is being torn down.
        self.header = IncidentHeader(id="header")
        self.problems_line = Static("", id="problems")
        self.freshness_line = Static("", id="freshness")
        self.freshness = Freshness()
        self._now: datetime | None = None
        self.probe_table = ProbeTable(id="probes")
        self.filter_box = Input(placeholder="filter: target, service or state", id="filter")
        self.probe_status = Label("", id="probe-status")
        self.runbook_list = RunbookChecklist(id="runbooks")
        self.controls_title = Label("Mitigation", classes="pane-title", id="controls-title")
        self.control_panel = ControlPanel(id="controls")
        self.log_tail = LogTail(id="log")
        self.alerts_pane = AlertsPane(id="alerts")
        #: The session's alert intake status (live), or None (no intake, or replay).
        self.alerts_source: Callable[[], IntakeStatus | None] = lambda: None
        self.filter_box.display = False
        self.problems_line.display = False
        self.freshness_line.display = False
        self._probe_status_text = ""
        self._controls_timer: Timer | None = None
        #: The session's readings of a service's levers (live), or None (replay: the log's).
        self.levers_source: Callable[[str | None], LeverReadings | None] = lambda service: None
        #: Called when the panel starts showing another service (the app re-reads its levers).
        self.on_service_shown: Callable[[], None] = lambda: None

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.freshness_line
        yield self.problems_line
        with Horizontal(id="middle"):
            with Vertical(id="probe-pane"):
                yield self.probe_table
                yield self.filter_box
                yield self.probe_status
            with Vertical(id="side"):
                yield self.alerts_pane
                yield Label("Runbooks", classes="pane-title")
                yield self.runbook_list
                yield self.controls_title
                yield self.control_panel
        yield Label("Incident log", classes="pane-title", id="log-title")
        yield self.log_tail

    def update_from(
        self,
        state: IncidentState,
        now: datetime,
        suggested: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Render every pane from `state`; cheap when little changed."""
        previous = self.state
        self.state = state
        self._now = now
        self.header.update_from(state, now)
        self.alerts_pane.update_from(state, now, self.alerts_source())
        self.probe_table.update_from(state, now, stale=self.freshness.stale)
        self.runbook_list.update_from(state, suggested)
        self.log_tail.update_from(state)
        # The panel follows control changes at once; probe changes reach it with the clock
        # (once a second), since under churn they arrive at every refresh.
        if previous.controls is not state.controls or previous.changes is not state.changes:
            self._show_controls()
        self._update_probe_status()

    def show_freshness(self, freshness: Freshness) -> None:
        """Say which probe data is not live (the table greys those rows out)."""
        if freshness == self.freshness:
            return
        self.freshness = freshness
        text = freshness_text(freshness, len(self.state.probes))
        self.freshness_line.update(_plain(text))
        self.freshness_line.display = bool(text)
        if self._now is not None:
            self.probe_table.update_from(self.state, self._now, stale=freshness.stale)

    def refresh_clock(self, now: datetime) -> None:
        """Once a second: elapsed time and time-in-state move on without new events."""
        self.header.update_from(self.state, now)
        self.alerts_pane.update_from(self.state, now, self.alerts_source())
        self.probe_table.refresh_times(now)
        self._show_controls()

    def set_status_intervals(self, intervals: dict[str, float]) -> None:
        self.header.intervals = dict(intervals)

    def set_problems(self, problems: Sequence[str]) -> None:
        """Show config/runbook problems, one line each (the pane scrolls past a few)."""
        self.problems = list(problems)
        line = self.problems_line
        if not problems:
            line.display = False
            return
        # Problems quote configs, runbooks and log lines: one safe line each, never markup.
        line.update(_plain("\n".join(f"⚠ problem: {one_line(problem)}" for problem in problems)))
        line.display = True

    def _update_probe_status(self) -> None:
        table = self.probe_table
        shown = table.row_count
        total = len(self.state.probes)
        counted = plural(total, "target")
        text = f"{shown} of {counted}" if table.filter_text else counted
        text += f" · sort: {table.sort_mode}"
        if table.filter_text:
            text += f" · filter: {table.filter_text!r} (esc in filter clears)"
        if text != self._probe_status_text:
            self._probe_status_text = text
            self.probe_status.update(_plain(text), layout=False)

    def _show_controls(self) -> None:
        service = self.selected_service
        changed = service != self.control_panel.service
        self.control_panel.show_service(service, self.state, self.levers_source(service))
        self._show_controls_title()
        if changed and service:
            self.on_service_shown()

    def show_levers(self) -> None:
        """Re-render the panel with the session's latest lever readings."""
        self._show_controls()

    def _show_controls_title(self) -> None:
        self.controls_title.update(
            untrusted.text(
                f"Mitigation · {self.selected_service}" if self.selected_service else "Mitigation"
            ),
            layout=False,
        )

    # -- filter -------------------------------------------------------------------------------

    def open_filter(self) -> None:
        box = self.filter_box
        box.display = True
        box.value = self.probe_table.filter_text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            event.stop()
            self.probe_table.set_filter(event.value)
            self._update_probe_status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            event.input.display = bool(event.value)
            self.probe_table.focus()

    def clear_filter(self) -> None:
        box = self.filter_box
        box.value = ""
        box.display = False
        self.probe_table.set_filter("")
        self.probe_table.focus()
        self._update_probe_status()

    def on_key(self, event: Key) -> None:
        focused = self.screen.focused
        if event.key == "escape" and focused is not None and focused.id == "filter":
            event.stop()
            self.clear_filter()

    def on_probe_table_filter_clear_requested(self, event: ProbeTable.FilterClearRequested) -> None:
        event.stop()
        self.clear_filter()

    def on_probe_table_sort_changed(self, event: ProbeTable.SortChanged) -> None:
        event.stop()
        self._update_probe_status()

    def on_probe_table_target_highlighted(self, event: ProbeTable.TargetHighlighted) -> None:
        if event.service != self.selected_service:
            self.selected_service = event.service
            # The cursor is painted first; the panel follows once the cursor rests (holding
            # an arrow key must not render a panel per row passed).
            self._show_controls_title()
            if self._controls_timer is not None:
                self._controls_timer.stop()
            self._controls_timer = self.set_timer(CONTROLS_SETTLE_S, self._show_controls)
