"""Modal dialogs for incident actions: a small form, a choice list, and a confirmation.

Every dialog in the console (these, the lever and extend dialogs, the quit question) keeps
one contract, so a responder's fingers learn it once:

- Enter in a field moves to the next field; Enter on the last field, on the confirm button
  or on a choice submits. Tab and shift+tab move between fields and buttons.
- Escape cancels, and so does Enter on the Cancel button; both say "cancelled" in a
  notification, so nobody believes a lever was pulled when it was not.
- Keys typed ahead are never lost or leaked: keys arriving while a dialog is opening (or
  while a request that opens one is on its way, see `messages.request_dialog`) are held by
  the app and handed to the dialog's first field once it has focus (`Dialog.ready`).

Each returns its result through `dismiss` (`CANCELLED` when cancelled); the app turns results
into events. Every dialog has buttons for the mouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from warroom.tui.widgets.key_bar import KeyBar
from warroom.untrusted import block, one_line

#: The dialog keys its fields handle themselves, shown before the dialog's own bindings.
DIALOG_KEYS = (("⏎", "Next field / OK"), ("tab", "Move"))

ResultT = TypeVar("ResultT")


class Dialog(ModalScreen[ResultT]):
    """The base of every dialog: escape and Cancel say "cancelled"; typed-ahead keys land in
    the first field (the app holds them until `ready`)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    #: What `dismiss` returns when cancelled.
    CANCELLED: ClassVar[Any] = None
    #: The title of the "cancelled" notification.
    title_text: str = "Dialog"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        #: Focus is on the first field: keys typed from now on reach it directly.
        self.ready = False
        self._error = ""

    def show_error(self, text: str) -> None:
        """Say what is wrong under the fields ("" clears it); the label is updated only when
        its words change, since each update lays the whole dialog out again."""
        if text != self._error:
            self._error = text
            self.query_one("#dialog-error", Label).update(text)

    @on(events.Mount)
    def _mount_key_bar(self) -> None:
        self.mount(KeyBar(DIALOG_KEYS))

    def first_focus(self) -> Widget | None:
        """The widget that takes the first key (the first field, by default)."""
        return next((w for w in self.query("Input, RadioSet, OptionList, Button")), None)

    def on_screen_resume(self) -> None:
        widget = self.first_focus()
        if widget is not None:
            self.set_focus(widget)
            if isinstance(widget, Input):
                widget.action_end()
        self.ready = True
        release = getattr(self.app, "release_held_keys", None)
        if release is not None:
            release(self)

    def on_screen_suspend(self) -> None:
        self.ready = False

    def focus_next_field(self, current: Widget) -> bool:
        """Move focus to the field after `current`; False when it is the last one."""
        fields = [w for w in self.query("Input, RadioSet") if w.display]
        if current in fields and fields.index(current) + 1 < len(fields):
            # At once, not deferred: the next typed-ahead key must land in the next field.
            self.set_focus(fields[fields.index(current) + 1])
            return True
        return False

    def last_field_entered(self, field: Input) -> None:
        """Enter in the last field: submit, or on to the button that alone acts."""

    @on(Input.Submitted)
    def _field_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field: on to the next field; in the last one, `last_field_entered`
        (the app moves the focus itself as the key arrives, see `_moved_focus_now`)."""
        event.stop()
        if not self.focus_next_field(event.input):
            self.last_field_entered(event.input)
        handled = getattr(self.app, "field_enter_handled", None)
        if handled is not None:
            handled(self)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        app = self.app
        self.dismiss(self.CANCELLED)
        # After the dismiss, so the toast shows on the screen the responder returns to.
        app.notify("cancelled — nothing was changed", title=self.title_text, timeout=4)


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    required: bool = False


class FormDialog(Dialog[dict[str, str] | None]):
    """A few labelled text inputs; dismisses with {name: value} or None."""

    def __init__(
        self,
        title: str,
        fields: Sequence[FormField],
        submit_label: str = "Save",
        *,
        help_text: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.fields = list(fields)
        self.submit_label = submit_label
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            # Titles, labels and prefilled values may quote the log: shown, never obeyed.
            yield Label(one_line(self.title_text), classes="dialog-title", markup=False)
            if self.help_text:
                yield Static(block(self.help_text), classes="dialog-help", markup=False)
            for field in self.fields:
                yield Label(one_line(field.label) + (" *" if field.required else ""), markup=False)
                yield Input(
                    value=one_line(field.value),
                    placeholder=field.placeholder,
                    id=f"field-{field.name}",
                )
            yield Label("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.submit_label, variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    @property
    def signature(self) -> tuple[object, ...]:
        """Dialogs with the same signature differ only in initial values (reusable)."""
        shape = tuple((f.name, f.label, f.placeholder, f.required) for f in self.fields)
        return ("form", self.title_text, shape, self.submit_label, self.help_text)

    def reset_from(self, other: FormDialog) -> None:
        """Take `other`'s initial values (reusing this mounted dialog instead of a new one)."""
        self.fields = list(other.fields)
        if not self.is_mounted:
            return
        for field in self.fields:
            self.query_one(f"#field-{field.name}", Input).value = one_line(field.value)
        self.show_error("")

    def values(self) -> dict[str, str]:
        return {
            f.name: self.query_one(f"#field-{f.name}", Input).value.strip() for f in self.fields
        }

    def _submit(self) -> None:
        values = self.values()
        missing = [f.label for f in self.fields if f.required and not values[f.name]]
        if missing:
            self.show_error(f"{missing[0]} is required")
            self.query_one(f"#field-{self.fields[0].name}", Input).focus()
            return
        self.dismiss(values)

    def last_field_entered(self, field: Input) -> None:
        self._submit()

    @on(Button.Pressed, "#submit")
    def _pressed_submit(self) -> None:
        self._submit()


class ChoiceDialog(Dialog[str | None]):
    """Pick one of a few values (severity, status, step status); enter or click picks."""

    def __init__(
        self,
        title: str,
        choices: Sequence[tuple[str, str]],
        current: str | None = None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.choices = list(choices)
        self.current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(one_line(self.title_text), classes="dialog-title", markup=False)
            yield OptionList(
                *[
                    Option(
                        one_line(label) + ("  (current)" if value == self.current else ""), id=value
                    )
                    for value, label in self.choices
                ],
                id="choices",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")

    @property
    def signature(self) -> tuple[object, ...]:
        return ("choice", self.title_text, tuple(self.choices))

    def reset_from(self, other: ChoiceDialog) -> None:
        """Take `other`'s current value (reusing this mounted dialog)."""
        self.current = other.current
        if not self.is_mounted:
            return
        options = self.query_one("#choices", OptionList)
        for index, (value, label) in enumerate(self.choices):
            suffix = "  (current)" if value == self.current else ""
            options.replace_option_prompt_at_index(index, one_line(label) + suffix)

    def first_focus(self) -> Widget:
        options = self.query_one("#choices", OptionList)
        values = [value for value, _ in self.choices]
        options.highlighted = values.index(self.current) if self.current in values else 0
        return options

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


class ConfirmDialog(Dialog[bool]):
    """Yes/no, optionally requiring a word to be typed (for dangerous actions)."""

    CANCELLED = False

    def __init__(
        self,
        title: str,
        message: str,
        confirm_label: str = "Confirm",
        *,
        type_to_confirm: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.message = message
        self.confirm_label = confirm_label
        self.type_to_confirm = type_to_confirm

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            # Shell blocks and names are shown as written: `m[k]` is not markup.
            yield Label(one_line(self.title_text), classes="dialog-title", markup=False)
            yield Static(block(self.message), classes="dialog-message", markup=False)
            if self.type_to_confirm:
                yield Label(f"Type {self.type_to_confirm!r} to confirm")
                yield Input(id="confirm-text")
            yield Label("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, variant="error", id="confirm")
                yield Button("Cancel", id="cancel")

    def first_focus(self) -> Widget:
        if self.type_to_confirm:
            return self.query_one("#confirm-text", Input)
        return self.query_one("#confirm", Button)

    def _confirm(self) -> None:
        if self.type_to_confirm:
            typed = self.query_one("#confirm-text", Input).value.strip()
            if typed != self.type_to_confirm:
                self.show_error(f"type {self.type_to_confirm!r} exactly, or press escape")
                return
        self.dismiss(True)

    def last_field_entered(self, field: Input) -> None:
        self._confirm()

    @on(Button.Pressed, "#confirm")
    def _pressed_confirm(self) -> None:
        self._confirm()
