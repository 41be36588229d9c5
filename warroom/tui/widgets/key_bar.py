"""A one-line key bar: the keys of the focused pane first, then the screen's, then the app's.

It reads what Textual itself would dispatch, `Screen.active_bindings` (the bindings of the
focused widget and its ancestors, those a check_action hides left out), and repaints when the
screen publishes `bindings_updated_signal` (focus moved, a screen pushed), as Textual's
`Footer` does. Unlike `Footer`, which recomposes a widget per key on every focus change (tens
of milliseconds per dialog with a dozen keys), this bar is one Static updated only when its
text changes. Too narrow for all of it, the tail goes: app-wide keys last, the pane's first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Static

#: Below this width the hints are compact (key, one word), so more of them fit.
COMPACT_BELOW = 140


def key_hints(bindings: Sequence[tuple[str, Binding, bool]], compact: bool = False) -> Text:
    """`(key shown, binding, enabled)` in priority order as one line; disabled ones dimmed."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for key, binding, enabled in bindings:
        label = binding.description
        dim = "" if enabled else "dim "
        if compact:
            text.append(key, style=f"{dim}bold reverse")
            text.append(f"{label.split('/')[0].split()[0]} ", style=dim.strip())
        else:
            text.append(f" {key} ", style=f"{dim}bold reverse")
            text.append(f" {label}  ", style=dim.strip())
    return text


def shown_bindings(screen: Screen[Any]) -> list[tuple[str, Binding, bool]]:
    """The screen's active bindings marked `show`, one per action, the focused pane's first,
    then the screen's, then the app's (the order keys are looked up in)."""
    panes: list[tuple[str, Binding, bool]] = []
    own: list[tuple[str, Binding, bool]] = []
    app_wide: list[tuple[str, Binding, bool]] = []
    seen: set[tuple[int, str]] = set()
    for node, binding, enabled, _tooltip in screen.active_bindings.values():
        if not binding.show or (id(node), binding.action) in seen:
            continue
        seen.add((id(node), binding.action))
        where = app_wide if isinstance(node, App) else own if node is screen else panes
        where.append((screen.app.get_key_display(binding), binding, enabled))
    return [*panes, *own, *app_wide]


class KeyBar(Static):
    """The keys that work now, for the focused pane first; `lead` are hints shown before
    them for keys a focused widget handles itself (Enter in a dialog's fields)."""

    DEFAULT_CSS = "KeyBar { height: 1; dock: bottom; background: $panel; }"

    def __init__(self, lead: Sequence[tuple[str, str]] = (), *, id: str | None = None) -> None:
        super().__init__("", classes="key-bar", id=id)
        self.lead = [(key, Binding(key, "", label)) for key, label in lead]
        self._compact = False
        self._shown: Text | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._compact = self.app.size.width < COMPACT_BELOW  # drawn once at the right width
        self._render_hints()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        if self.is_attached and screen is self.screen:
            self._render_hints()

    def _render_hints(self) -> None:
        lead = [(key, binding, True) for key, binding in self.lead]
        text = key_hints([*lead, *shown_bindings(self.screen)], self._compact)
        if text != self._shown:
            self._shown = text
            self.update(text)

    def on_resize(self, event: Resize) -> None:
        compact = event.size.width < COMPACT_BELOW
        if compact != self._compact:
            self._compact = compact
            self._shown = None
            self._render_hints()
