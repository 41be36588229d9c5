"""The handoff brief on screen: what the next responder must know, from the live log."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from warroom import untrusted


class BriefScreen(ModalScreen[None]):
    """Shows `render_brief(...)` of the incident as it stands; esc closes."""

    BINDINGS = [Binding("escape,q,H", "close_brief", "Close", show=False)]

    def __init__(self, brief: str) -> None:
        super().__init__()
        self.brief = brief

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Label("Handoff brief — esc closes", classes="dialog-title")
            # Titles, notes and names in it are the responders' (and probes') text.
            yield Static(untrusted.text(self.brief, multiline=True), id="brief-text")

    def action_close_brief(self) -> None:
        self.dismiss(None)
