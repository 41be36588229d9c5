"""A one-line key hint bar drawn from the action registry.

Used instead of Textual's Footer, which recomposes its key widgets whenever focus or the
screen changes (tens of milliseconds per dialog opened with a dozen keys); this bar is one
Static rendered once per screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Static

from warroom.tui.actions import APP, LIVE, actions_for

#: Below this width the hints are compact (key, one word), so more of them fit.
COMPACT_BELOW = 140


def key_hints(scopes: Sequence[str], mode: str = LIVE, compact: bool = False) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for scope in (*scopes, APP):
        for spec in actions_for(scope, mode):
            if not spec.footer:
                continue
            key = spec.display_keys().split(" / ")[0]
            if compact:
                text.append(key, style="bold reverse")
                text.append(f" {spec.label.split('/')[0].split()[0]} ")
            else:
                text.append(f" {key} ", style="bold reverse")
                text.append(f" {spec.label}  ")
    return text


class KeyBar(Static):
    """The footer keys of the given scopes (plus the app-wide ones) in `mode`."""

    DEFAULT_CSS = "KeyBar { height: 1; dock: bottom; background: $panel; }"

    def __init__(self, *scopes: str, mode: str = LIVE) -> None:
        super().__init__(key_hints(scopes, mode), classes="key-bar")
        self.scopes = scopes
        self.mode = mode
        self._compact = False

        #: The focused pane's own scope (its `KEY_SCOPE`), shown first; None: the screen's.
        self._pane: str | None = None

    def on_mount(self) -> None:
        self.watch(self.screen, "focused", self._focus_moved)

    def _focus_moved(self, focused: Widget | None) -> None:
        """Show the keys of the focused pane (a widget or an ancestor naming its scope)."""
        pane = None
        node = focused
        while node is not None and pane is None:
            pane = getattr(node, "KEY_SCOPE", None)
            node = node.parent if isinstance(node.parent, Widget) else None
        if pane != self._pane:
            self._pane = pane
            self._render_hints()

    def _render_hints(self) -> None:
        scopes = (self._pane, *self.scopes) if self._pane else self.scopes
        self.update(key_hints(scopes, self.mode, self._compact))

    def on_resize(self, event: Resize) -> None:
        compact = event.size.width < COMPACT_BELOW
        if compact != self._compact:
            self._compact = compact
            self._render_hints()
