"""Probe detail (Enter on a probe row) and the command-output view: read-only screens over
the state and the incident log, for the questions a toast or a table cell cannot answer.

Everything shown that came from outside (addresses, probe reasons, command output) is
untrusted and goes through `warroom.untrusted` (never parsed as markup).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from warroom import events as ev
from warroom.config import Target
from warroom.state import ProbeView
from warroom.tui.widgets.sparkline import sparkline
from warroom.untrusted import block, one_line

#: How many state changes the detail lists (newest last).
MAX_CHANGES = 30


def _clock(ts: str) -> str:
    return ts[11:19] if len(ts) >= 19 else "--:--:--"


def _age(ts: str, now: datetime) -> str:
    if not ts:
        return "no result yet"
    seconds = max(0.0, (now - ev.parse_ts(ts)).total_seconds())
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _expectation(target: Target | None) -> str:
    if target is None:
        return "not in this console's config (results come from the log)"
    expect = target.expect.model_dump(exclude_defaults=True, by_alias=True)
    parts = [f"{key}={value!r}" for key, value in expect.items()]
    if target.condition:
        parts.append(f"condition: {target.condition}")
    if target.degraded_latency:
        parts.append(f"degraded above {target.degraded_latency * 1000:.0f} ms")
    return ", ".join(parts) or "the default: a success (HTTP 2xx, a connect, an answer)"


def probe_detail_text(
    view: ProbeView,
    target: Target | None,
    changes: Sequence[ev.ProbeStateChanged],
    now: datetime,
    stale: bool,
) -> Text:
    """The detail of one target, as plain lines (pure: tested without a terminal)."""
    out = Text()
    out.append(f"{one_line(view.target)}", style="bold")
    out.append(f"  service {one_line(view.service) or '-'}  ")
    out.append(view.state.upper(), style="bold")
    if view.since:
        out.append(f" since {_clock(view.since)}")
    out.append("\n\n")
    if target is not None:
        out.append(f"{target.kind} {one_line(target.address)}\n")
        out.append(f"every {target.interval:g}s, timeout {target.timeout:g}s\n")
    out.append(f"expects: {_expectation(target)}\n")
    out.append(f"last reason: {one_line(view.reason) or '-'}\n")
    latency = f"{view.latency_ms:.0f} ms" if view.latency_ms is not None else "-"
    out.append(f"latency: {latency}  {sparkline(view.history, 48)}\n")
    out.append(f"results: {view.ok}/{view.count} ok  ·  last {_age(view.last_result_at, now)}")
    if stale:
        out.append("  STALE (not live: no recent result)", style="bold red")
    out.append("\n\nstate changes (from the log):\n", style="bold")
    if not changes:
        out.append("  none logged\n")
    for change in changes[-MAX_CHANGES:]:
        reason = f"  {one_line(change.reason, 80)}" if change.reason else ""
        out.append(f"  {_clock(change.ts)} {change.from_state} → {change.to_state}{reason}\n")
    return out


def command_output_text(runs: Iterable[ev.CommandRun]) -> Text:
    """Every shell step run, with its full captured output (pure)."""
    out = Text()
    count = 0
    for run in runs:
        count += 1
        code = "killed (timeout)" if run.exit_code is None else f"exit {run.exit_code}"
        out.append(
            f"{_clock(run.ts)} {one_line(run.actor)} · {one_line(run.runbook)} · step "
            f"{one_line(run.step)} · {code} · {run.duration_s:.1f}s\n",
            style="bold",
        )
        out.append(f"$ {block(run.command).strip()}\n", style="cyan")
        out.append(block(run.output) or "(no output)")
        if run.truncated:
            out.append("\n(output cut: only the last part was kept)", style="dim")
        out.append("\n\n")
    if not count:
        out.append("no shell step has been run in this incident yet")
    return out


class ProbeDetailScreen(ModalScreen[None]):
    """One target: what is probed, what is expected, what it last said, how it changed."""

    BINDINGS = [Binding("escape,q,enter", "close", "Close", show=False)]

    def __init__(self, body: Text, title: str) -> None:
        super().__init__(id="probe-detail")
        self.body = body
        self.title_text = title

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Label(f"{self.title_text} — esc closes", classes="dialog-title", markup=False)
            yield Static(self.body, id="detail-body")

    def action_close(self) -> None:
        self.dismiss(None)


class CommandOutputScreen(ProbeDetailScreen):
    """The full output of every shell step run, scrollable (PgUp/PgDn, Home/End)."""

    BINDINGS = [Binding("escape,q", "close", "Close", show=False)]
