"""The incident header: title, severity, status, elapsed time, roles and the status-update clock."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from warroom.durations import format_duration
from warroom.events import parse_ts
from warroom.session.policies import status_update_due
from warroom.state import IncidentState

SEVERITY_STYLES = {
    "SEV1": "bold white on red",
    "SEV2": "bold black on dark_orange",
    "SEV3": "bold black on yellow",
    "SEV4": "bold black on grey62",
}
STATUS_STYLES = {
    "investigating": "bold red",
    "identified": "bold dark_orange",
    "monitoring": "bold yellow",
    "resolved": "bold green",
}


class IncidentHeader(Static):
    """Renders the incident's headline facts from an `IncidentState`."""

    DEFAULT_CSS = "IncidentHeader { height: 3; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.intervals: dict[str, float] = {}
        self._last: Text | None = None
        #: A simulated fleet's speed (simulated seconds per second), shown so nobody reads
        #: the demo's minutes as real ones; None on real targets.
        self.sim_speed: float | None = None
        #: Where to start, shown on the third line until the first action (demos only).
        self.hint = ""

    def clear_hint(self) -> None:
        if self.hint:
            self.hint = ""
            self._last = None

    def update_from(self, state: IncidentState, now: datetime) -> None:
        text = self.render_header(state, now)
        if text == self._last:
            return
        self._last = text
        # Fixed height: no layout pass (a layout repaints the whole screen).
        self.update(text, layout=False)

    def render_header(self, state: IncidentState, now: datetime) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if not state.declared:
            text.append(" no incident declared ", style="bold reverse")
            text.append("  press ")
            text.append("t", style="bold")
            text.append(" to declare one; probes and notes are recorded meanwhile\n")
        else:
            text.append(f" {state.severity or '-'} ", style=SEVERITY_STYLES.get(state.severity, ""))
            text.append("  ")
            text.append(state.title, style="bold")
            text.append("  ")
            text.append(state.status.upper(), style=STATUS_STYLES.get(state.status, "bold"))
            if state.timings.opened:
                elapsed = max(0.0, (now - parse_ts(state.timings.opened)).total_seconds())
                text.append(f"  elapsed {format_duration(elapsed)}", style="bold")
            if self.sim_speed:
                text.append(f"  sim ×{self.sim_speed:g}", style="bold magenta")
            text.append(f"  {state.incident_id}\n", style="dim")
        roles = state.roles
        commander = roles.get("commander")
        text.append(" IC ", style="bold reverse")
        text.append(f" {commander or 'unassigned'}", style="" if commander else "italic red")
        for role, person in sorted(roles.items()):
            if role != "commander":
                text.append(f"  {role}: ", style="dim")
                text.append(person)
        down = sum(1 for p in state.probes.values() if p.state == "down")
        degraded = sum(1 for p in state.probes.values() if p.state == "degraded")
        text.append("   probes ", style="dim")
        text.append(f"✖ {down} down", style="red" if down else "dim")
        text.append("  ")
        text.append(f"▲ {degraded} degraded", style="yellow" if degraded else "dim")
        text.append(f"  of {len(state.probes)}", style="dim")
        text.append("\n")
        due_at, overdue = status_update_due(state, now, self.intervals)
        if due_at is not None:
            left = (due_at - now).total_seconds()
            if overdue:
                text.append(" STATUS UPDATE DUE ", style="bold white on red")
                text.append(f" overdue by {format_duration(-left)} — press c", style="red")
            elif self.hint:
                text.append(f" ▶ {self.hint}", style="bold cyan")
            else:
                text.append(f" next status update in {format_duration(left)}", style="dim")
        elif self.hint:
            text.append(f" ▶ {self.hint}", style="bold cyan")
        if state.status_updates:
            last = state.status_updates[-1]
            text.append(f"   last update: {last.conditions}", style="dim")
        return text
