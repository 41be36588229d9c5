"""The runbook screen: the runbook's Markdown beside its checklist, progress from the log."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Label, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from warroom.runbooks.model import Runbook, Step
from warroom.state import IncidentState, RunbookProgress, StepView
from warroom.tui.actions import LIVE, REPLAY, RUNBOOK, actions_for, bindings_for
from warroom.tui.messages import request_dialog
from warroom.tui.screens.dialogs import ChoiceDialog, FormDialog, FormField
from warroom.tui.widgets.header import IncidentHeader
from warroom.tui.widgets.key_bar import KeyBar
from warroom.untrusted import block, one_line

STEP_MARKS = {
    "pending": ("[ ]", ""),
    "done": ("[x]", "green"),
    "skipped": ("[-]", "dim"),
}
STEP_STATUS_CHOICES = [
    ("done", "done"),
    ("skipped", "skipped"),
    ("pending", "pending"),
]


_BOX_LINE = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)\[[ xX]\](.*)$")


def marked_body(body: str, step_ids: Sequence[str], views: Mapping[str, StepView]) -> str:
    """The runbook's Markdown with each step's checkbox showing its logged status (done,
    skipped, verified), so both panes agree; unchanged when its boxes do not match the
    steps one to one (the parser's view wins over a guess)."""
    lines = body.splitlines()
    boxes = [i for i, line in enumerate(lines) if _BOX_LINE.match(line)]
    if len(boxes) != len(step_ids):
        return body
    for index, step_id in zip(boxes, step_ids, strict=True):
        view = views.get(step_id)
        if view is None:
            continue
        match = _BOX_LINE.match(lines[index])
        assert match is not None
        lead, rest = match.groups()
        mark = {"done": "[x]", "skipped": "[-]"}.get(view.status, "[ ]")
        suffix = " ✔ *verified*" if view.verified else ""
        if view.status == "skipped":
            rest = f" ~~{rest.strip()}~~ *(skipped)*"
        lines[index] = f"{lead}{mark}{rest}{suffix}"
    return "\n".join(lines) + ("\n" if body.endswith("\n") else "")


def failing_text(state: IncidentState) -> Text:
    """One line naming the probes not up (down first), or saying all are up."""
    down = sorted(t for t, p in state.probes.items() if p.state == "down")
    degraded = sorted(t for t, p in state.probes.items() if p.state == "degraded")
    text = Text(no_wrap=True, overflow="ellipsis")
    if not down and not degraded:
        text.append("● every probe up" if state.probes else "no probe results", style="green")
        return text
    text.append("failing: ", style="bold")
    for target in down:
        text.append(f"✖ {one_line(target, 40)}  ", style="red")
    for target in degraded:
        text.append(f"▲ {one_line(target, 40)}  ", style="yellow")
    return text


def step_prompt(number: int, step: Step | None, step_id: str, view: StepView | None) -> Text:
    """Two lines per step: checkbox, number and text; then its verification/action/command."""
    status = view.status if view else "pending"
    mark, style = STEP_MARKS.get(status, ("[?]", ""))
    text = Text(no_wrap=False)
    text.append(f"{mark} ", style=f"bold {style}")
    text.append(f"{number}. ", style="dim")
    text.append(
        one_line(step.text if step else step_id), style="strike dim" if status == "skipped" else ""
    )
    details = Text(style="dim")
    if step is not None and step.verify is not None:
        if view is not None and view.verified:
            details.append(f"  ✔ {one_line(step.verify.text)}", style="bold green")
        else:
            details.append(f"  ○ {one_line(step.verify.text)}", style="yellow")
    if step is not None and step.action is not None:
        details.append(f"  ⚡ {one_line(step.action.raw)}", style="cyan")
    if step is not None and step.commands:
        details.append("  $ shell", style="magenta")
    if view is not None and view.note:
        details.append(f"  “{one_line(view.note)}”", style="italic")
    if details.plain:
        text.append("\n")
        text.append_text(details)
    return text


class RunbookScreen(Screen[None]):
    """One runbook: Markdown on the left, the checklist and the selected step on the right."""

    BINDINGS = bindings_for(RUNBOOK, LIVE)
    ACTION_SCOPE = RUNBOOK
    #: The checklist, at once: focusing the document first restyles all of its blocks twice
    #: (it gains focus, then loses it to the checklist), half the cost of opening a runbook.
    AUTO_FOCUS = "#steps"
    DEFAULT_CSS = """
    #runbook-failing { height: 1; width: 100%; padding: 0 1; }
    """

    def __init__(
        self,
        runbook_id: str,
        runbook: Runbook | None,
        state: IncidentState,
        now: datetime,
        mode: str = LIVE,
    ) -> None:
        super().__init__(id=f"runbook-{runbook_id}", classes="runbook-screen")
        self.runbook_id = runbook_id
        self.runbook = runbook
        self.mode = mode
        self._initial = (state, now)
        self.progress: RunbookProgress | None = None
        self._step_ids: list[str] = []
        # Composed with the checkboxes already marked: a Markdown document is a widget per
        # block, so mounting it a second time in on_mount would double the cost of opening.
        self._shown_body = block(self._marked(state.runbooks.get(runbook_id))) if runbook else ""

    def compose(self) -> ComposeResult:
        # The incident stays in view while walking a checklist: headline facts, failing probes.
        header = IncidentHeader(id="runbook-incident")
        header.intervals = dict(getattr(self.app, "status_update_intervals", {}) or {})
        yield header
        yield Static("", id="runbook-failing")
        title = self.runbook.title if self.runbook else self.runbook_id
        yield Label(one_line(title), id="runbook-title", markup=False)
        with Horizontal(id="runbook-body"):
            with VerticalScroll(id="runbook-doc"):
                # A runbook file is hostile like any other text: its escapes are shown, not sent.
                yield Markdown(self._shown_body or "*(runbook file not loaded)*")
            with Vertical(id="runbook-side"):
                yield Label("Checklist", classes="pane-title")
                yield OptionList(id="steps")
                yield Label("Step", classes="pane-title")
                yield Static("", id="step-detail")
        yield KeyBar()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only (replay): the keys that would write are not there at all."""
        spec = next((a for a in actions_for(RUNBOOK, LIVE) if a.name == action), None)
        return not (self.mode == REPLAY and spec is not None and spec.mutating)

    def on_mount(self) -> None:
        self.update_from(*self._initial)
        steps_list = self.query_one("#steps", OptionList)
        remembered = self._cursors().get(self.runbook_id)
        if remembered is not None and remembered < len(self._step_ids):
            steps_list.highlighted = remembered
        steps_list.focus()

    # -- rendering ------------------------------------------------------------------------------

    def update_from(
        self, state: IncidentState, now: datetime, suggested: Sequence[tuple[str, str]] = ()
    ) -> None:
        try:
            incident = self.query_one("#runbook-incident", IncidentHeader)
        except NoMatches:
            return  # its widgets are being taken down (the console is quitting)
        incident.update_from(state, now)
        self.query_one("#runbook-failing", Static).update(failing_text(state))
        progress = state.runbooks.get(self.runbook_id)
        if progress is self.progress and self._step_ids:
            return
        self.progress = progress
        steps = self.runbook.steps if self.runbook else []
        ids = self._ids(progress)
        by_id = {s.id: s for s in steps}
        views = progress.steps if progress else {}
        options = [
            Option(step_prompt(n, by_id.get(sid), sid, views.get(sid)), id=sid)
            for n, sid in enumerate(ids, 1)
        ]
        steps_list = self.query_one("#steps", OptionList)
        highlighted = steps_list.highlighted
        steps_list.clear_options()
        steps_list.add_options(options)
        self._step_ids = ids
        if options:
            steps_list.highlighted = min(highlighted or 0, len(options) - 1)
        total = len(ids)
        done = sum(1 for sid in ids if views.get(sid) and views[sid].status != "pending")
        verified = sum(1 for sid in ids if views.get(sid) and views[sid].verified)
        title = self.runbook.title if self.runbook else self.runbook_id
        header = Text()
        header.append(f" {one_line(title)} ", style="bold reverse")
        header.append(
            f"  {done}/{total} steps done", style="bold green" if done == total else "bold"
        )
        header.append(f"  {verified} verified", style="green" if verified else "dim")
        if progress is not None and progress.opened_by:
            header.append(f"  opened by {one_line(progress.opened_by)}", style="dim")
        self.query_one("#runbook-title", Label).update(header)
        self._show_detail()
        if self.runbook is not None:
            body = block(self._marked(progress))
            if body != self._shown_body:
                self._shown_body = body
                self.query_one("#runbook-doc Markdown", Markdown).update(body)

    def _ids(self, progress: RunbookProgress | None) -> list[str]:
        """The checklist's step ids: the runbook file's, else the order the log recorded."""
        steps = self.runbook.steps if self.runbook else []
        return [s.id for s in steps] or list(progress.step_order if progress else ())

    def _marked(self, progress: RunbookProgress | None) -> str:
        """The runbook's Markdown with the checkboxes `progress` has logged."""
        assert self.runbook is not None
        views = progress.steps if progress else {}
        return marked_body(self.runbook.body, self._ids(progress), views)

    def _show_detail(self) -> None:
        step_id = self.selected_step
        step = self.runbook.step(step_id) if (self.runbook and step_id) else None
        view = self.progress.steps.get(step_id) if (self.progress and step_id) else None
        detail = Text()
        if step_id is None:
            detail.append("no steps", style="dim")
        else:
            detail.append(one_line(step.text if step else step_id), style="bold")
            detail.append("\n")
            status = view.status if view else "pending"
            detail.append(f"status: {status}")
            if view and view.actor:
                detail.append(f" by {one_line(view.actor)} at {view.ts[11:19]}", style="dim")
            if view and view.note:
                detail.append(f"\nnote: {one_line(view.note)}", style="italic")
            if step and step.verify:
                ok = bool(view and view.verified)
                detail.append(f"\nverify: {one_line(step.verify.text)} ")
                detail.append("✔ holds" if ok else "○ not yet", style="green" if ok else "yellow")
            if step and step.action:
                detail.append(
                    f"\naction: {one_line(step.action.raw)}  (a: pull lever)", style="cyan"
                )
            if step and step.commands:
                detail.append("\nshell (!: run):\n", style="magenta")
                detail.append(block(step.commands[0].code.rstrip()), style="magenta")
        self.query_one("#step-detail", Static).update(detail)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.highlighted is not None:
            self._cursors()[self.runbook_id] = event.option_list.highlighted
        self._show_detail()
        self._follow_in_document()

    def _follow_in_document(self) -> None:
        """Scroll the Markdown pane to the selected step's list item (first one matching)."""
        step_id = self.selected_step
        step = self.runbook.step(step_id) if (self.runbook and step_id) else None
        if step is None:
            return
        needle = step.text[:40]
        # Textual's Markdown blocks are not public API: matched by CSS type name.
        for item in self.query("#runbook-doc MarkdownParagraph"):
            source = getattr(item, "source", None) or ""
            if needle and needle in " ".join(source.split()):
                self.query_one("#runbook-doc", VerticalScroll).scroll_to_widget(
                    item, animate=False, top=True
                )
                return

    def _cursors(self) -> dict[str, int]:
        """The app's runbook id -> checklist row last highlighted (reopening keeps the place)."""
        cursors: dict[str, int] = getattr(self.app, "step_cursors", {})
        return cursors

    # -- moving in the checklist (k9s/lazygit keys; the list's own arrows work too) -----------

    def _steps(self) -> OptionList:
        return self.query_one("#steps", OptionList)

    def action_step_next(self) -> None:
        self._steps().action_cursor_down()

    def action_step_prev(self) -> None:
        self._steps().action_cursor_up()

    def action_step_first(self) -> None:
        self._steps().action_first()

    def action_step_last(self) -> None:
        self._steps().action_last()

    @property
    def selected_step(self) -> str | None:
        steps_list = self.query_one("#steps", OptionList)
        if steps_list.highlighted is None or not self._step_ids:
            return None
        return self._step_ids[steps_list.highlighted]

    # -- actions ------------------------------------------------------------------------------

    def _set(self, status: str, note: str = "") -> None:
        step = self.selected_step
        if step is not None:
            self.app.set_step(self.runbook_id, step, status, note)  # type: ignore[attr-defined]

    def action_step_done(self) -> None:
        self._set("done")

    def action_step_skip(self) -> None:
        self._set("skipped")

    def action_step_pending(self) -> None:
        self._set("pending")

    def action_step_note(self) -> None:
        step = self.selected_step
        if step is None:
            return
        current = self.progress.steps.get(step) if self.progress else None

        def with_status(status: str | None) -> None:
            if not status:
                return

            def with_note(values: dict[str, str] | None) -> None:
                if values is not None:
                    self._set(status, values["note"])

            self.app.push_screen(
                FormDialog(
                    f"Step {status}: note",
                    [FormField("note", "Note", current.note if current else "", required=True)],
                    "Save",
                ),
                with_note,
            )

        self.app.push_screen(
            # What a person means by "with a note" is nearly always "done, and here is how".
            ChoiceDialog("Step status", STEP_STATUS_CHOICES, "done"),
            with_status,
        )

    def action_run_command(self) -> None:
        step = self.selected_step
        if step is not None:
            self.app.run_step_command(self.runbook_id, step)  # type: ignore[attr-defined]

    def action_pull_lever(self) -> None:
        step = self.selected_step
        if step is not None:
            request = self.app.step_lever_request(self.runbook_id, step)  # type: ignore[attr-defined]
            if request is not None:
                request_dialog(self, request)

    def action_close_runbook(self) -> None:
        self.app.pop_screen()
