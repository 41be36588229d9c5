"""The change dialog: pick a value, give a reason (every time), optionally a duration after
which the change is reverted, and for a dangerous lever type the service name.

The dialog only collects and checks the request; `ControlService` makes and logs the change.
It returns a `ChangeRequest`, or None when cancelled (nothing is logged then).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from warroom import untrusted
from warroom.controls.model import ControlKind, ControlSpec, coerce_value, format_value
from warroom.durations import format_duration, parse_duration
from warroom.events import ControlValue
from warroom.state import ControlChange
from warroom.tui.screens.dialogs import Dialog
from warroom.untrusted import block, one_line

CHANGE = "change"
REVERT = "revert"


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    """What the responder asked for; `confirm` is the typed service name (dangerous levers)."""

    value: ControlValue
    reason: str
    auto_revert_s: float | None = None
    confirm: str | None = None


def _choices(spec: ControlSpec) -> list[tuple[str, ControlValue]]:
    if ControlKind(spec.kind) == ControlKind.TOGGLE:
        return [("on", True), ("off", False)]
    return [(choice, choice) for choice in spec.choices]


def _bounds(spec: ControlSpec) -> str:
    unit = f" {spec.unit_text}" if spec.unit_text else ""
    high = spec.high
    upper = f"{high:g}" if high is not None else "any"
    none = ", or none for no limit" if ControlKind(spec.kind) == ControlKind.RATE else ""
    return f"{spec.low:g} to {upper}{unit}{none}"


class ControlDialog(Dialog[ChangeRequest | None]):
    """Change (or revert) one control; checks everything before returning."""

    DEFAULT_CSS = """
    ControlDialog { align: center middle; }
    ControlDialog > .dialog { width: 72; height: auto; max-height: 90%; }
    ControlDialog .dialog-danger { color: $error; text-style: bold; }
    ControlDialog RadioSet { width: 100%; height: auto; }
    ControlDialog .field-label { color: $text-muted; }
    ControlDialog .dialog-buttons { dock: bottom; }
    """

    def __init__(
        self,
        spec: ControlSpec,
        current: ControlValue | None,
        *,
        preset: Any = None,
        mode: str = CHANGE,
        revert_of: ControlChange | None = None,
        note: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(id="control-dialog")
        self.spec = spec
        self.current = current
        self.mode = mode
        self.revert_of = revert_of
        self.note = note
        self.preset_reason = reason
        if mode == REVERT and revert_of is not None:
            preset = revert_of.from_value
        self.preset = preset
        #: The service's load, when the app has read it (see `show_load`).
        self.load_line = ""
        verb = "Revert" if mode == REVERT else "Change"
        self.title_text = f"{verb} {spec.service} · {spec.title}"

    @property
    def _picks(self) -> bool:
        return ControlKind(self.spec.kind) in (ControlKind.TOGGLE, ControlKind.CHOICE)

    def compose(self) -> ComposeResult:
        spec = self.spec
        verb = "Revert" if self.mode == REVERT else "Change"
        with VerticalScroll(classes="dialog"):
            # Names, descriptions and values come from config and the service: shown, not obeyed.
            yield Label(
                one_line(f"{verb} {spec.service} · {spec.title}"),
                classes="dialog-title",
                markup=False,
            )
            if spec.dangerous:
                yield Label("⚠ dangerous lever", classes="dialog-danger")
            if spec.description:
                yield Static(block(spec.description), classes="dialog-help", markup=False)
            yield Static(
                one_line(f"Now: {format_value(spec, self.current)}"), id="control-now", markup=False
            )
            load = Static("", id="control-load", markup=False)
            load.display = False
            yield load
            if self.note:
                yield Static(
                    block(self.note), classes="dialog-help", id="control-note", markup=False
                )
            if self.mode == REVERT and self.revert_of is not None:
                change = self.revert_of
                yield Static(
                    block(
                        f"Undo {change.request_id} by {change.actor}: "
                        f"{format_value(spec, change.from_value)} → "
                        f"{format_value(spec, change.to_value)}. Sets it back to "
                        f"{format_value(spec, change.from_value)}."
                    ),
                    id="control-revert",
                    markup=False,
                )
            elif self._picks:
                yield Label("New value", classes="field-label")
                with RadioSet(id="control-value"):
                    for label, value in _choices(spec):
                        picked = self.preset is not None and _matches(spec, self.preset, value)
                        yield RadioButton(one_line(label), value=picked, name=label)
            else:
                yield Label(
                    one_line(f"New value ({_bounds(spec)})"), classes="field-label", markup=False
                )
                preset = "" if self.preset is None else f"{self.preset}"
                yield Input(preset, placeholder=_bounds(spec), id="control-value")
            yield Label("Reason (asked every time; short is fine)", classes="field-label")
            yield Input(self.preset_reason, placeholder="why", id="control-reason")
            if self.mode == CHANGE:
                yield Label("Revert automatically after (optional)", classes="field-label")
                yield Input(placeholder="e.g. 15m; empty: keep", id="control-auto-revert")
            if spec.dangerous:
                yield Label(
                    one_line(f"Type {spec.service} to confirm"), classes="field-label", markup=False
                )
                yield Input(placeholder=spec.service, id="control-confirm")
            yield Label("", id="control-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                label = "Revert" if self.mode == REVERT else "Apply"
                yield Button(label, variant="error" if spec.dangerous else "primary", id="apply")
                yield Button("Cancel", id="cancel")

    def show_load(self, line: str) -> None:
        """The service's load next to the value (goodput, queue, capacity), once read."""
        self.load_line = line
        if self.is_mounted:
            self._paint_load()

    def _paint_load(self) -> None:
        box = self.query_one("#control-load", Static)
        box.update(untrusted.text(self.load_line))
        box.display = bool(self.load_line)

    def on_mount(self) -> None:
        if self.load_line:  # read before the dialog was up
            self._paint_load()

    def first_focus(self) -> Widget:
        first = "#control-reason" if self.mode == REVERT or self.preset is not None else None
        return self.query_one(first or "#control-value")

    # -- checking ----------------------------------------------------------------------------

    def _raw_value(self) -> Any:
        if self.mode == REVERT:
            return self.preset
        if self._picks:
            radios = self.query_one("#control-value", RadioSet)
            button = radios.pressed_button
            if button is None:
                return None
            return dict(_choices(self.spec))[str(button.name)]
        return self.query_one("#control-value", Input).value.strip()

    def collect(self) -> ChangeRequest | str:
        """The request, or a one-line message saying what is missing or wrong."""
        raw = self._raw_value()
        if raw is None or raw == "":
            return "pick a value"
        try:
            value = coerce_value(self.spec, raw)
        except ValueError as exc:
            if self.mode != REVERT:
                return str(exc)
            value = raw  # reverting restores what the service had: bounds do not apply
        reason = " ".join(self.query_one("#control-reason", Input).value.split())
        if not reason:
            return "give a reason (it goes to the incident log)"
        auto_revert_s: float | None = None
        if self.mode == CHANGE:
            text = self.query_one("#control-auto-revert", Input).value.strip()
            if text:
                try:
                    auto_revert_s = parse_duration(text)
                except ValueError as exc:
                    return f"auto-revert: {exc}"
                if auto_revert_s <= 0:
                    return "auto-revert: give a duration above zero, or leave it empty"
        confirm: str | None = None
        if self.spec.dangerous:
            confirm = self.query_one("#control-confirm", Input).value.strip()
            if confirm != self.spec.service:
                return f"type {self.spec.service} exactly to confirm, or press escape"
        return ChangeRequest(value, reason, auto_revert_s, confirm)

    def _submit(self) -> None:
        result = self.collect()
        if isinstance(result, str):
            self.query_one("#control-error", Label).update(result)
            return
        self.dismiss(result)

    def last_field_entered(self, field: Input) -> None:
        """On to the Apply button: a change is made only from the explicit button, never by
        Enter in a field (at once, so an Enter typed right behind presses it)."""
        self.set_focus(self.query_one("#apply", Button))

    @on(RadioSet.Changed)
    def _picked(self, event: RadioSet.Changed) -> None:
        """Picking a value with the keyboard moves on to the reason, as Enter in a field does."""
        if event.radio_set.has_focus:
            self.focus_next_field(event.radio_set)

    @on(Button.Pressed, "#apply")
    def _pressed_apply(self) -> None:
        self._submit()


def _matches(spec: ControlSpec, preset: Any, value: ControlValue) -> bool:
    try:
        return coerce_value(spec, preset) == value
    except ValueError:
        return False


class ExtendDialog(Dialog[tuple[float, str] | None]):
    """Push back a pending automatic revert: by how long, and optionally why."""

    DEFAULT_CSS = """
    ExtendDialog { align: center middle; }
    ExtendDialog > .dialog { width: 64; height: auto; }
    ExtendDialog .dialog-buttons { dock: bottom; }
    """

    def __init__(self, spec: ControlSpec, due: str, default_s: float) -> None:
        super().__init__(id="extend-dialog")
        self.spec = spec
        self.due = due
        self.default_s = default_s
        self.title_text = f"Keep {spec.service} · {spec.title} longer"

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(one_line(self.title_text), classes="dialog-title", markup=False)
            yield Static(f"Reverts automatically at {self.due}.", classes="dialog-help")
            yield Label("Extend by", classes="field-label")
            yield Input(format_duration(self.default_s), id="extend-by")
            yield Label("Reason (optional)", classes="field-label")
            yield Input(placeholder="why keep it", id="extend-reason")
            yield Label("", id="extend-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Extend", variant="primary", id="extend")
                yield Button("Cancel", id="cancel")

    def first_focus(self) -> Widget:
        return self.query_one("#extend-by", Input)

    def _submit(self) -> None:
        text = self.query_one("#extend-by", Input).value.strip()
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            self.query_one("#extend-error", Label).update(str(exc))
            return
        if seconds <= 0:
            self.query_one("#extend-error", Label).update("give a duration above zero")
            return
        self.dismiss((seconds, self.query_one("#extend-reason", Input).value.strip()))

    def last_field_entered(self, field: Input) -> None:
        """On to the Extend button: only the button extends."""
        self.set_focus(self.query_one("#extend", Button))

    @on(Button.Pressed, "#extend")
    def _pressed(self) -> None:
        self._submit()
