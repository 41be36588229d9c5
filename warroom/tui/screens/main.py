"""The main screen: the incident panes plus the footer, with the main-screen actions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from textual.app import ComposeResult
from textual.screen import Screen

from warroom.session.freshness import Freshness
from warroom.state import IncidentState
from warroom.tui.actions import LIVE, MAIN, bindings_for
from warroom.tui.widgets.incident_view import IncidentView
from warroom.tui.widgets.key_bar import KeyBar
from warroom.tui.widgets.runbook_checklist import RunbookChecklist


class MainScreen(Screen[None]):
    """Header, probes, runbooks, mitigation and log tail (see `IncidentView`)."""

    BINDINGS = bindings_for(MAIN, LIVE)

    def __init__(self, mode: str = LIVE) -> None:
        super().__init__(id="main")
        self.mode = mode
        self.view = IncidentView(id="incident")

    def compose(self) -> ComposeResult:
        yield self.view
        yield KeyBar()

    def on_mount(self) -> None:
        self.view.probe_table.focus()

    def update_from(
        self, state: IncidentState, now: datetime, suggested: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.view.update_from(state, now, suggested)

    def show_freshness(self, freshness: Freshness) -> None:
        self.view.show_freshness(freshness)

    def action_filter(self) -> None:
        self.view.open_filter()

    def action_cycle_sort(self) -> None:
        mode = self.view.probe_table.cycle_sort()
        self.view.update_from(self.view.state, self.app.clock(), self.app.suggested)  # type: ignore[attr-defined]
        self.notify(f"sorted by {mode}", timeout=2)

    def action_open_runbook(self) -> None:
        checklist = self.query_one("#runbooks", RunbookChecklist)
        option = checklist.highlighted_option
        runbook_id = option.id if option is not None and not option.disabled else None
        if runbook_id is None:
            self.notify("no runbook to open: none suggested yet", severity="warning")
            return
        self.app.open_runbook(runbook_id)  # type: ignore[attr-defined]

    def on_runbook_checklist_runbook_chosen(self, event: RunbookChecklist.RunbookChosen) -> None:
        self.app.open_runbook(event.runbook)  # type: ignore[attr-defined]
