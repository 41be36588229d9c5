"""The help screen: every key from the action registry, grouped by where it works."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from warroom.tui.actions import LIVE, SCOPE_TITLES, actions_for
from warroom.untrusted import one_line


def keys_table(mode: str) -> Table:
    table = Table(box=None, expand=True, show_header=False, pad_edge=False)
    table.add_column("key", style="bold cyan", width=14, no_wrap=True)
    table.add_column("what")
    table.add_column("flags", width=16, no_wrap=True)
    for scope, title in SCOPE_TITLES.items():
        specs = actions_for(scope, mode)
        if not specs:
            continue
        table.add_row(Text(title, style="bold underline"), "", "")
        for spec in specs:
            flags = Text()
            if spec.mutating:
                flags.append("logged ", style="green")
            if spec.dangerous:
                flags.append("confirms", style="red")
            table.add_row(spec.display_keys(), spec.description, flags)
        table.add_row("", "", "")
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every action that exists in the current mode (live or replay)."""

    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss_help", "Close", show=False),
    ]

    def __init__(self, mode: str = LIVE, problems: Sequence[str] = ()) -> None:
        super().__init__()
        self.mode = mode
        self.problems = list(problems)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Label(f"warroom keys ({self.mode} mode) — esc closes", classes="dialog-title")
            yield Static(keys_table(self.mode), id="help-keys")
            yield Static(
                "Mouse: click a probe row to select its service, click a runbook to open it, "
                "click dialog buttons. Every mutating action is written to the incident log "
                "(fsynced) before the screen shows it.",
                classes="dialog-help",
            )
            if self.problems:
                yield Label("Problems", classes="dialog-title")
                problems = "\n".join(one_line(problem) for problem in self.problems)
                yield Static(Text(problems), id="help-problems")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
