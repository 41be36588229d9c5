"""The incident header: title, severity, status, elapsed time, roles and the status-update clock."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from warroom import untrusted
from warroom.durations import format_duration
from warroom.events import format_ts, parse_ts
from warroom.session.policies import status_update_due
from warroom.session.shared import SharedView, shared_line
from warroom.state import IncidentState, firing_alert_count, probing_degraded
from warroom.untrusted import one_line

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
        #: The shared incident's status, team and prober (None for a file log).
        self.shared: SharedView | None = None
        #: Set when nothing more can be recorded (the log file is gone): shown in red, always.
        self.alarm = ""
        self._last: Text | None = None
        #: A simulated fleet's speed (simulated seconds per second), shown so nobody reads
        #: the demo's minutes as real ones; None on real targets.
        self.sim_speed: float | None = None
        #: Where to start, shown on the third line until the first action (demos only).
        self.hint = ""
        self._counted_services: object = None
        self._counts = (0, 0)

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

    def _bad_counts(self, state: IncidentState) -> tuple[int, int]:
        """Targets down and degraded, from the reducer's per-service counts (O(services),
        not O(targets)), recounted only when those changed."""
        if state.services is not self._counted_services:
            down = degraded = 0
            for view in state.services.values():
                for probe_state, count in view.counts:
                    if probe_state == "down":
                        down += count
                    elif probe_state == "degraded":
                        degraded += count
            self._counted_services, self._counts = state.services, (down, degraded)
        return self._counts

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
            if self.sim_speed:  # first: a long title must not cut it at 80 columns
                text.append(f"sim ×{self.sim_speed:g}", style="bold magenta")
                text.append("  ")
            text.append(one_line(state.title), style="bold")
            text.append("  ")
            text.append(state.status.upper(), style=STATUS_STYLES.get(state.status, "bold"))
            if state.timings.opened:
                elapsed = max(0.0, (now - parse_ts(state.timings.opened)).total_seconds())
                text.append(f"  elapsed {format_duration(elapsed)}", style="bold")
            text.append(f"  {one_line(state.incident_id)}\n", style="dim")
        roles = state.roles
        commander = roles.get("commander")
        text.append(" IC ", style="bold reverse")
        text.append(
            f" {one_line(commander) if commander else 'unassigned'}",
            style="" if commander else "italic red",
        )
        for role, person in sorted(roles.items()):
            if role != "commander":
                text.append(f"  {one_line(role)}: ", style="dim")
                text.append(one_line(person))
        if state.alerts:  # before the probes: a page is what narrow terminals must keep
            firing = firing_alert_count(state)
            text.append("   ")
            text.append(f"🔔 {firing} firing", style="bold red" if firing else "dim")
        down, degraded = self._bad_counts(state)
        text.append("   probes ", style="dim")
        text.append(f"✖ {down} down", style="red" if down else "dim")
        text.append("  ")
        text.append(f"▲ {degraded} degraded", style="yellow" if degraded else "dim")
        text.append(f"  of {len(state.probes)}", style="dim")
        degraded_probing = probing_degraded(state, format_ts(now))
        if degraded_probing is not None:
            since = (
                parse_ts(degraded_probing.since).strftime("%H:%M:%S")
                if degraded_probing.since
                else "?"
            )
            text.append("   ")
            text.append(" PROBING DEGRADED ", style="bold black on yellow")
            text.append(
                f" since {since}: {untrusted.one_line(degraded_probing.reason, 80)}",
                style="yellow",
            )
        text.append("\n")
        if self.alarm:
            # Outranks the status-update clock: nothing typed now would reach the log.
            text.append(f" {one_line(self.alarm)} ", style="bold white on red")
            return text
        if self.shared is not None:
            for piece, style in shared_line(self.shared):
                text.append(piece, style=style)
            text.append("  ")
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
            text.append(f"   last update: {one_line(last.conditions)}", style="dim")
        return text
