"""The mitigation panel: the levers of the selected service, their true values, and who last
pulled them.

It renders what it is given (the incident state and the session's lever readings: values
read back from the service, read errors) and posts `ChangeRequested` / `RevertRequested` /
`ExtendRequested`; the app asks for the details and makes the change. Without readings
(replay), the values come from the incident log.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from warroom import events as ev
from warroom import untrusted
from warroom.controls.model import ControlKind, ControlSpec, format_value
from warroom.session.levers import LeverReadings
from warroom.state import ControlView, IncidentState
from warroom.tui.actions import CONTROLS, LIVE, bindings_for
from warroom.tui.messages import (
    ChangeRequested,
    ExtendRequested,
    RevertRequested,
    request_dialog,
)
from warroom.untrusted import one_line


def _line(text: str, style: str) -> Text:
    """An indented detail line, cut with an ellipsis rather than wrapped."""
    # Lever titles, responses and errors come from the control service: shown, never obeyed.
    return Text("  " + one_line(text), style=style, no_wrap=True, overflow="ellipsis")


def _clock_text(ts: str) -> str:
    return ev.parse_ts(ts).strftime("%H:%M:%S") if ts else ""


def _spec_from_view(view: ControlView) -> ControlSpec:
    """A display-only spec for a control known only from the log (replay): kind and unit are
    not logged, so values are shown as they were read back."""
    kind = ControlKind.TOGGLE if isinstance(view.value, bool) else ControlKind.CHOICE
    return ControlSpec(service=view.service, control=view.control, kind=kind)


class _LeverList(OptionList):
    """The panel's levers: Enter here is the panel's Change, and the key bar says so."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Change")]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "select" and getattr(self.app, "read_only", False))


class ControlPanel(Widget):
    """Shows the controls of the selected service; pulling one posts a message."""

    BINDINGS = bindings_for(CONTROLS, LIVE)

    DEFAULT_CSS = """
    ControlPanel { height: auto; }
    ControlPanel > #control-panel-message { color: $text-muted; height: auto; }
    ControlPanel > OptionList, ControlPanel > OptionList:focus {
        height: auto;
        max-height: 100%;
        border: none;
        padding: 0;
        background: transparent;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.service: str | None = None
        self.state = IncidentState()
        #: The session's readings of the shown service (None: no control service, replay).
        self.levers: LeverReadings | None = None
        self._keys: list[str] = []
        self._drawn: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._message(), id="control-panel-message")
        yield _LeverList(id="control-list")

    def on_mount(self) -> None:
        self._redraw()

    # -- what the screen calls ----------------------------------------------------------------

    def show_service(
        self, service: str | None, state: IncidentState, levers: LeverReadings | None = None
    ) -> None:
        """Show `service`'s controls as of `state` and the session's `levers` readings."""
        self.service = service or None
        self.state = state
        self.levers = levers
        self._redraw()

    @property
    def shown_keys(self) -> list[str]:
        """The `service/control` keys listed, in order."""
        return list(self._keys)

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#control-list", OptionList)

    # -- rendering -------------------------------------------------------------------------------

    def _message(self) -> str:
        if self.service is None:
            return "Select a service in the probe table to see its levers."
        if self.levers is None and not self._specs():
            return f"No controls for {self.service} (none configured, none in the log)."
        if not self._specs():
            return f"No controls for {self.service}."
        return ""

    def _specs(self) -> list[ControlSpec]:
        if self.service is None:
            return []
        if self.levers is not None:
            return list(self.levers.specs)
        return [
            _spec_from_view(view)
            for view in self.state.controls.values()
            if view.service == self.service
        ]

    def _value(self, spec: ControlSpec) -> Any:
        if self.levers is not None:
            live = self.levers.values.get(spec.key)
            if live is not None:
                return live
        view = self.state.controls.get(spec.key)
        return view.value if view is not None else None

    def _row(self, spec: ControlSpec) -> Group:
        """Title and value on one line (the value always whole), then when/who, then why not."""
        view = self.state.controls.get(spec.key)
        title = Text(("⚠ " if spec.dangerous else "") + one_line(spec.title))
        title.stylize("bold red" if spec.dangerous else "bold")
        head = Table.grid(expand=True, padding=(0, 1))
        head.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        head.add_column(justify="right", no_wrap=True)
        head.add_row(
            title, untrusted.text(format_value(spec, self._value(spec)), style="bold cyan")
        )
        detail = ""
        if view is not None and view.last_changed_at:
            detail = f"{_clock_text(view.last_changed_at)} {view.last_changed_by}"
        if view is not None and view.auto_revert_at:
            detail += f"{' · ' if detail else ''}↺ {_clock_text(view.auto_revert_at)}"
        # Unchanged levers take one line, so a narrow pane shows more of them.
        lines: list[Any] = [head, _line(detail, "dim")] if detail else [head]
        if view is not None and view.pending:
            change = self.state.changes.get(view.pending)
            target = format_value(spec, change.to_value) if change is not None else "?"
            lines.append(_line(f"⋯ applying → {target}", "yellow"))
        elif view is not None and view.error:
            lines.append(_line(f"✗ {view.error}", "red"))
        elif self.levers is not None and spec.key in self.levers.errors:
            lines.append(_line(f"? cannot read: {self.levers.errors[spec.key]}", "red"))
        return Group(*lines)

    def _signature(self, specs: list[ControlSpec]) -> tuple[Any, ...]:
        """Everything a redraw depends on: unchanged means nothing to repaint."""
        errors = self.levers.errors if self.levers is not None else {}
        return (
            self.service,
            self.levers is not None,
            tuple(
                (spec, self._value(spec), self.state.controls.get(spec.key), errors.get(spec.key))
                for spec in specs
            ),
        )

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        specs = self._specs()
        signature = self._signature(specs)
        if signature == self._drawn:
            return
        self._drawn = signature
        message = self._message()
        note = self.query_one("#control-panel-message", Static)
        note.update(untrusted.text(message))
        note.display = bool(message)
        options = self.option_list
        keys = [spec.key for spec in specs]
        rows = [self._row(spec) for spec in specs]
        highlighted = options.highlighted
        if keys == self._keys:
            for index, row in enumerate(rows):
                options.replace_option_prompt_at_index(index, row)
        else:
            options.set_options(Option(row, id=key) for row, key in zip(rows, keys, strict=True))
            self._keys = keys
            highlighted = 0 if keys else None
        if highlighted is not None and keys:
            options.highlighted = min(highlighted, len(keys) - 1)
        options.display = bool(keys)
        if keys:
            # A row grows when an error line appears: keep all of the highlighted one in view.
            self.call_after_refresh(options.scroll_to_highlight)

    # -- pulling levers: messages up ---------------------------------------------------------

    def _selected(self) -> tuple[str, str] | None:
        option = self.option_list.highlighted_option
        if option is None or option.id is None:
            return None
        service, _, control = option.id.partition("/")
        return service, control

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (getattr(self.app, "read_only", False) and action.endswith("_control"))

    def action_change_control(self) -> None:
        selected = self._selected()
        if selected is not None:
            request_dialog(self, ChangeRequested(*selected))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if not getattr(self.app, "read_only", False):
            self.action_change_control()

    def action_revert_control(self) -> None:
        selected = self._selected()
        if selected is not None:
            request_dialog(self, RevertRequested(*selected))

    def action_extend_control(self) -> None:
        selected = self._selected()
        if selected is not None:
            request_dialog(self, ExtendRequested(*selected))
