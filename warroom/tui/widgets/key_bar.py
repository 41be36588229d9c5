"""A one-line key hint bar drawn from the action registry.

Used instead of Textual's Footer, which recomposes its key widgets whenever focus or the
screen changes (tens of milliseconds per dialog opened with a dozen keys); this bar is one
Static rendered once per screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from warroom.tui.actions import APP, LIVE, actions_for


def key_hints(scopes: Sequence[str], mode: str = LIVE) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for scope in (*scopes, APP):
        for spec in actions_for(scope, mode):
            if not spec.footer:
                continue
            text.append(f" {spec.display_keys().split(' / ')[0]} ", style="bold reverse")
            text.append(f" {spec.label}  ")
    return text


class KeyBar(Static):
    """The footer keys of the given scopes (plus the app-wide ones) in `mode`."""

    DEFAULT_CSS = "KeyBar { height: 1; dock: bottom; background: $panel; }"

    def __init__(self, *scopes: str, mode: str = LIVE) -> None:
        super().__init__(key_hints(scopes, mode), classes="key-bar")
