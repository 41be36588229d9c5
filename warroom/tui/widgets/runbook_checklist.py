"""The runbooks pane: runbooks in progress (from the log) and suggestions for failing services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from warroom.state import IncidentState, RunbookProgress
from warroom.untrusted import one_line


def progress_text(progress: RunbookProgress) -> Text:
    total = len(progress.step_order) or len(progress.steps)
    done = progress.done
    verified = sum(1 for s in progress.steps.values() if s.verified)
    text = Text(no_wrap=True, overflow="ellipsis")
    style = "green" if total and done >= total else "yellow"
    text.append(f"{done}/{total} ", style=f"bold {style}")
    text.append(one_line(progress.title or progress.runbook))
    if verified:
        text.append(f"  ✔{verified}", style="green")
    return text


class RunbookChecklist(OptionList):
    """Lists open runbooks with their progress, then suggested ones; choosing one opens it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Open")]

    class RunbookChosen(Message):
        """The responder picked a runbook to open."""

        def __init__(self, checklist: RunbookChecklist, runbook: str) -> None:
            super().__init__()
            self.checklist = checklist
            self.runbook = runbook

        @property
        def control(self) -> RunbookChecklist:
            return self.checklist

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._signature: tuple[object, ...] = ()

    def update_from(self, state: IncidentState, suggested: Sequence[tuple[str, str]] = ()) -> None:
        """Render `state.runbooks` plus `suggested` (runbook id, title) not yet opened."""
        fresh = [(rid, title) for rid, title in suggested if rid not in state.runbooks]
        signature = (state.runbooks, tuple(fresh))
        if signature == self._signature:
            return
        self._signature = signature
        # Keep a highlight the responder is working with; otherwise follow the best suggestion
        # (the first one when nothing is open), since `o` opens what is highlighted.
        highlighted = (
            self.highlighted_option.id if self.highlighted_option and self.has_focus else None
        )
        options: list[Option] = []
        for progress in state.runbooks.values():
            options.append(Option(progress_text(progress), id=progress.runbook))
        for rid, title in fresh:
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append("suggested ", style="italic cyan")
            text.append(one_line(title))
            options.append(Option(text, id=rid))
        if not options:
            options.append(Option(Text("no runbook suggested yet", style="dim"), disabled=True))
        self.clear_options()
        self.add_options(options)
        if highlighted is not None:
            try:
                self.highlighted = self.get_option_index(highlighted)
            except Exception:
                self.highlighted = 0
        elif options and not options[0].disabled:
            self.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.RunbookChosen(self, event.option.id))
