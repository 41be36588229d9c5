"""The alerts pane: Alertmanager's alerts not resolved (firing first, then oldest) and one
status line saying how the intake fares (refused webhooks, a failing API poll).

Every label, annotation and reason shown here came from outside (Alertmanager or whoever
posted to the webhook), so all of it goes through `warroom.untrusted`.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from warroom import untrusted
from warroom.durations import format_duration
from warroom.events import AlertStatus, parse_ts
from warroom.session.alerts import IntakeStatus
from warroom.state import AlertView, IncidentState, active_alerts

#: Alerts listed; the rest are counted ("+N more").
SHOWN = 6


def alert_line(alert: AlertView, now: datetime, width: int = 60) -> Text:
    """One alert: status mark, name, service, summary, and how long it has been so."""
    firing = alert.status == AlertStatus.FIRING.value
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("🔔 " if firing else "🔕 ", style="bold red" if firing else "dim")
    text.append(untrusted.one_line(alert.alertname, 60), style="bold" if firing else "dim")
    if alert.service:
        text.append(f" {untrusted.one_line(alert.service, 40)}", style="cyan")
    since = alert.starts_at or alert.first_seen
    if since:
        age = max(0.0, (now - parse_ts(since)).total_seconds())
        text.append(f" {format_duration(age)}", style="dim")
    if not firing:
        text.append(" silenced", style="dim italic")
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    if summary:
        text.append(f" — {untrusted.one_line(summary, width)}", style="" if firing else "dim")
    return text


def status_line(status: IntakeStatus) -> Text:
    """How many webhooks were taken and refused, where they go; then why the last was
    refused and why the API poll fails, when they were or it does."""
    text = Text(no_wrap=True, overflow="ellipsis", style="dim")
    text.append(f"{status.accepted} accepted")
    if status.rejected:
        text.append(f" · {status.rejected} refused", style="bold yellow")
    text.append(f" · webhook {untrusted.one_line(status.url) or 'starting'}")
    if status.rejected:
        last = untrusted.one_line(status.last_rejection, 120)
        text.append(f"\nlast refused: {last}", style="yellow")
    if status.poll_error:
        error = untrusted.one_line(status.poll_error, 160)
        text.append(f"\nAPI poll failing: {error}", style="red")
    return text


def render_alerts(state: IncidentState, now: datetime, status: IntakeStatus | None) -> Text:
    """The pane's text: the active alerts, then the intake's status line."""
    alerts = active_alerts(state)
    text = Text(no_wrap=True, overflow="ellipsis")
    if not alerts:
        text.append("no alerts firing", style="dim")
    for index, alert in enumerate(alerts[:SHOWN]):
        if index:
            text.append("\n")
        text.append_text(alert_line(alert, now))
    if len(alerts) > SHOWN:
        text.append(f"\n+{len(alerts) - SHOWN} more", style="dim")
    if status is not None:
        text.append("\n")
        text.append_text(status_line(status))
    return text


class AlertsPane(Static):
    """Alertmanager's active alerts; shown once there is an intake or an alert in the log."""

    DEFAULT_CSS = """
    AlertsPane {
        height: auto;
        max-height: 10;
        border: round $error 60%;
        border-title-color: $text-accent;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.border_title = "Alerts"
        self.display = False
        self._last: Text | None = None

    def update_from(self, state: IncidentState, now: datetime, status: IntakeStatus | None) -> None:
        show = status is not None or bool(state.alerts)
        if show != self.display:
            self.display = show
        if not show:
            return
        text = render_alerts(state, now, status)
        if text == self._last:
            return
        changed_height = self._last is None or len(text.split()) != len(self._last.split())
        self._last = text
        self.update(text, layout=changed_height)
