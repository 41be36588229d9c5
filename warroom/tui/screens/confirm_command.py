"""The "Run this command?" confirmation: the whole command, scrollable, and only the Run
button runs it.

A confirmation that hides part of what it confirms is worse than none: the command is shown
sanitised (a conceal or clear-screen sequence is displayed, not obeyed), every line of it is
reachable by scrolling, a line count says how long it is, and the buttons stay docked in view
at any terminal size. Enter in the command view does nothing; only pressing the Run button
(Enter or a click on it) confirms.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from warroom import untrusted

#: Commands with more lines than this get the full-height dialog.
SHORT_LINES = 8


def line_count_text(code: str) -> str:
    """`1 line` / `62 lines`, so a long command cannot pass for a short one."""
    count = len(code.split("\n")) if code else 0
    return f"{count} line" if count == 1 else f"{count} lines"


class CommandConfirmDialog(ModalScreen[bool]):
    """Show a whole shell command and run it only from the explicit Run button."""

    # A command longer than a few lines takes the whole height, its view the space between
    # the line count and the buttons (a fixed-height dialog, so `1fr` leaves them room).
    DEFAULT_CSS = """
    CommandConfirmDialog > .dialog { height: auto; max-height: 100%; }
    CommandConfirmDialog > .dialog.-long { height: 100%; }
    CommandConfirmDialog #command-view {
        height: auto;
        border: round $warning;
        background: $boost;
    }
    CommandConfirmDialog > .dialog.-long #command-view { height: 1fr; }
    CommandConfirmDialog #command-count { color: $warning; text-style: bold; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, code: str, confirm_label: str = "Run", *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.code = code
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        long = self.code.count("\n") >= SHORT_LINES
        with Vertical(classes="dialog -long" if long else "dialog"):
            yield Label(untrusted.one_line(self.title_text), classes="dialog-title", markup=False)
            yield Label(
                f"{line_count_text(self.code)} — scroll to read all of it before you run it",
                id="command-count",
                markup=False,
            )
            with VerticalScroll(id="command-view", can_focus=True):
                yield Static(untrusted.text(self.code, multiline=True), id="command-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, variant="error", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        # The command view first: reading is the default, running is a deliberate move (tab).
        self.query_one("#command-view", VerticalScroll).focus()

    @on(Button.Pressed, "#confirm")
    def _pressed_confirm(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
