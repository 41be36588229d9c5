"""The warroom console: a Textual app whose every fact comes from the incident log.

The flow for an operator action is key -> intent (a dialog result) -> event -> `log.append`
(fsynced) -> `state = reduce(state, stamped)` -> widgets render from state. Machine events
(probes, the sim feed, verifications) take the same path through the log; a `LogFollower`
also brings in events other processes write (`warroom note` from another terminal). The UI
never changes the state directly.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import Any

from textual import work
from textual.app import App
from textual.events import Event, Key
from textual.notifications import SeverityLevel

from warroom import events as ev
from warroom.events import BaseEvent, utc_now
from warroom.runbooks.model import Runbook
from warroom.runbooks.shell import run_command
from warroom.runbooks.tracking import opened_event
from warroom.session import Change, ConsoleSession, EventStore, Follower
from warroom.state import IncidentState
from warroom.tui.actions import APP, LIVE, REPLAY, bindings_for, find
from warroom.tui.commands import ActionCommands
from warroom.tui.idle_gc import IdleCollector
from warroom.tui.screens.dialogs import ChoiceDialog, ConfirmDialog, FormDialog, FormField
from warroom.tui.screens.help import HelpScreen
from warroom.tui.screens.main import MainScreen

Clock = Callable[[], datetime]
#: A long-running coroutine the app owns (probe engine, sim feed); started on mount.
BackgroundTask = Callable[["WarroomApp"], Awaitable[None]]

SEVERITY_CHOICES = [
    ("SEV1", "SEV1 — critical: broad customer impact"),
    ("SEV2", "SEV2 — major: significant impact or a key feature down"),
    ("SEV3", "SEV3 — minor: limited impact, workaround exists"),
    ("SEV4", "SEV4 — low: no customer impact yet"),
]
STATUS_CHOICES = [
    ("investigating", "investigating — cause unknown"),
    ("identified", "identified — cause known, working on a fix"),
    ("monitoring", "monitoring — fix in, watching"),
    ("resolved", "resolved — impact over"),
]
#: How often the log is polled for other writers' events (and the probe table refreshed).
FOLLOW_INTERVAL = 0.25
#: Longest shell output kept in a `CommandRun` event.
MAX_COMMAND_OUTPUT = 8192
#: A runbook command running longer than this is killed (and logged with no exit code).
COMMAND_TIMEOUT_S = 60.0


def incident_id_for(title: str, now: datetime) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "incident"
    return f"{now:%Y-%m-%dT%H%MZ}-{slug}"


class WarroomApp(App[int]):
    """The live console over one incident log."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notify without markup, whatever the caller asked: messages carry command output,
        error text and names, where `[x]` is data (and a stray `[/]` would raise)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # Absolute, so subclasses defined elsewhere (replay, tests, benchmarks) find it too.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "warroom"
    COMMANDS = {ActionCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = bindings_for(APP, LIVE)
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        log: EventStore,
        *,
        follower: Follower | None = None,
        clock: Clock = utc_now,
        actor: str | None = None,
        runbooks: Mapping[str, Runbook] | None = None,
        problems: Sequence[str] = (),
        status_update_intervals: Mapping[str, float] | None = None,
        background: Sequence[BackgroundTask] = (),
        read_only: bool = False,
        command_runner: Callable[[str, float, int], Awaitable[Any]] | None = None,
        session: ConsoleSession | None = None,
    ) -> None:
        super().__init__()
        self.session = session or ConsoleSession(
            log,
            follower=follower,
            clock=clock,
            actor=actor,
            runbooks=runbooks,
            status_intervals=status_update_intervals,
            read_only=read_only,
        )
        self.session.problems.extend(problems)
        self.incident_log = self.session.store
        self.log_path = self.session.path
        self.clock = self.session.clock
        self.actor = self.session.actor
        self.runbooks = self.session.runbooks
        self.status_update_intervals = self.session.status_intervals
        self.background = list(background)
        self.read_only = read_only
        self.mode = REPLAY if read_only else LIVE
        self.command_runner = command_runner
        self._dirty = False
        self._tasks: list[asyncio.Task[None]] = []
        self._dialogs: dict[str, Any] = {}
        #: When the last key arrived (`time.monotonic`): the probe table holds re-sorts
        #: while keys keep coming.
        self.last_input_at = float("-inf")
        self._gc = IdleCollector()
        self.main_screen = MainScreen(mode=self.mode)

    @property
    def state(self) -> IncidentState:
        return self.session.state

    @property
    def suggested(self) -> list[tuple[str, str]]:
        return self.session.suggested

    @property
    def problems(self) -> list[str]:
        return self.session.problems

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_mount(self) -> None:
        await self.push_screen(self.main_screen)
        view = self.main_screen.view
        view.set_status_intervals(self.status_update_intervals)
        recovered = getattr(self.incident_log, "recovered", None)
        if recovered is not None:
            self.problems.append(recovered.describe())
        view.set_problems(self.problems)
        for problem in self.problems:
            self.notify(problem, title="Problem", severity="warning", timeout=10)
        self.session.subscribe(self._session_changed)
        self.session.poll()
        await self.session.start()
        self.session.update_freshness()
        self.render_state()
        # Full cycle collections only while the keyboard is quiet (see idle_gc); started
        # once the first frame is up (its first collection takes ~50 ms).
        self.call_after_refresh(self._gc.start)
        self._tick_clock()  # an overdue status update is announced at once, not a second later
        self.set_interval(FOLLOW_INTERVAL, self._tick)
        self.set_interval(1.0, self._tick_clock)
        for make in self.background:
            self._tasks.append(asyncio.create_task(self._guard(make)))

    async def on_event(self, event: Event) -> None:
        if isinstance(event, Key):
            self.last_input_at = monotonic()
        await super().on_event(event)

    async def _guard(self, make: BackgroundTask) -> None:
        """Run one background task; its failure is shown, never allowed to take the console down."""
        try:
            await make(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.report_problem(f"{getattr(make, '__name__', 'background task')}: {exc}")

    async def on_unmount(self) -> None:
        self._gc.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.session.aclose()

    def report_problem(self, problem: str) -> None:
        """Show a problem in the problems line and as a notification (the console carries on)."""
        self.session.report_problem(problem)

    def _session_changed(self, change: Change) -> None:
        """The session's news: repaint (now for this console's own actions), or tell."""
        if change.kind in ("state", "freshness"):
            self._dirty = True
            if change.operator:
                self.render_state()
        elif change.kind == "problem":
            self.main_screen.view.set_problems(self.problems)
            self.notify(change.text, title=change.title, severity="error", timeout=10)
        elif change.kind == "reminder":
            self.notify(change.text, title=change.title, severity="warning", timeout=15)
        else:
            self.notify(change.text, title=change.title, severity="error")

    # -- the one path into the state: the session ---------------------------------------------

    def record(self, event: BaseEvent) -> asyncio.Task[BaseEvent | None]:
        """Append an operator event through the session (off the event loop, in order)."""
        if self.read_only:
            self.notify("read-only: nothing is written", severity="warning")
        return self.session.record(event)

    def ingest(self, events: Iterable[BaseEvent]) -> None:
        """Fold events already stored (by another writer of this process) into the state."""
        self.session.ingest(events)
        self._dirty = True

    # -- rendering ---------------------------------------------------------------------------

    def render_state(self) -> None:
        """Push the latest state to the visible screens (no side effects: it only paints)."""
        self._dirty = False
        now = self.clock()
        state, suggested = self.session.state, self.session.suggested
        stale = self.session.freshness
        with self.batch_update():
            for screen in self.screen_stack:
                if not screen.is_mounted:
                    continue  # it renders the state it was given once composed
                update = getattr(screen, "update_from", None)
                if update is not None:
                    update(state, now, suggested)
                show = getattr(screen, "show_freshness", None)
                if show is not None:
                    show(stale)

    def _tick(self) -> None:
        self.session.poll()
        if self._dirty:
            self.render_state()

    def _tick_clock(self) -> None:
        self._gc.tick(self.last_input_at)
        now = self.clock()
        self.session.tick(now)
        self.main_screen.view.refresh_clock(now)

    # -- bindings ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        try:
            spec = find(action)
        except StopIteration:
            return True
        return not (self.read_only and spec.mutating)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.mode, self.problems))

    def action_quit_console(self) -> None:
        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.exit(0)

        self.push_screen(
            ConfirmDialog(
                "Quit warroom?",
                "The incident log stays on disk; reopen it with "
                "`warroom console --log LOG` to resume.",
                "Quit",
            ),
            done,
        )

    # -- incident intents ----------------------------------------------------------------------

    def action_declare(self) -> None:
        if self.state.declared:
            self._ask(
                FormDialog(
                    "Rename the incident",
                    [FormField("title", "Title", self.state.title, required=True)],
                ),
                lambda v: self.record(ev.TitleSet(title=v["title"])),
            )
            return

        def with_title(values: dict[str, str]) -> None:
            self._ask(
                ChoiceDialog("Severity", SEVERITY_CHOICES, "SEV2"),
                lambda severity: self.declare(values["title"], severity),
            )

        self._ask(
            FormDialog(
                "Declare an incident",
                [
                    FormField(
                        "title", "Title", placeholder="what is broken, for whom", required=True
                    )
                ],
                "Next",
            ),
            with_title,
        )

    def declare(self, title: str, severity: str) -> asyncio.Task[BaseEvent | None]:
        now = self.clock()
        incident_id = self.log_path.stem if self.log_path else incident_id_for(title, now)
        return self.record(
            ev.IncidentOpened(incident_id=incident_id, title=title, severity=ev.Severity(severity))
        )

    def action_set_severity(self) -> None:
        self._ask(
            ChoiceDialog("Set severity", SEVERITY_CHOICES, self.state.severity or None),
            lambda value: self.record(ev.SeveritySet(severity=ev.Severity(value))),
        )

    def action_set_status(self) -> None:
        self._ask(
            ChoiceDialog("Set status", STATUS_CHOICES, self.state.status or None),
            lambda value: self.record(ev.StatusSet(status=ev.Status(value))),
        )

    def action_assign_role(self) -> None:
        self._ask(
            FormDialog(
                "Assign a role",
                [
                    FormField(
                        "role", "Role", "commander", "commander, scribe, comms, ...", required=True
                    ),
                    FormField("person", "Person", self.actor, required=True),
                ],
                "Assign",
            ),
            lambda v: self.record(ev.RoleAssigned(role=v["role"], person=v["person"])),
        )

    def action_add_note(self) -> None:
        self._ask(
            FormDialog("Add a note", [FormField("text", "Note", required=True)], "Add"),
            lambda v: self.record(ev.NoteAdded(text=v["text"])),
        )

    def action_add_bookmark(self) -> None:
        self._ask(
            FormDialog(
                "Bookmark this moment",
                [FormField("label", "Label", placeholder="e.g. DNS fix applied", required=True)],
                "Bookmark",
            ),
            lambda v: self.record(ev.BookmarkAdded(label=v["label"])),
        )

    def action_add_task(self) -> None:
        self._ask(
            FormDialog(
                "Add a follow-up task",
                [
                    FormField("text", "Task", required=True),
                    FormField("owner", "Owner", placeholder="optional"),
                ],
                "Add",
            ),
            lambda v: self.record(ev.TaskAdded(text=v["text"], owner=v["owner"])),
        )

    def action_status_update(self) -> None:
        self._ask(
            FormDialog(
                "Status update",
                [
                    FormField(
                        "conditions",
                        "Conditions",
                        placeholder="what is happening now",
                        required=True,
                    ),
                    FormField("actions", "Actions", placeholder="what we are doing"),
                    FormField("needs", "Needs", placeholder="what we need, from whom"),
                ],
                "Post",
                help_text="CAN report: Conditions, Actions, Needs. Posted to the incident log.",
            ),
            lambda v: self.record(
                ev.StatusUpdatePosted(
                    conditions=v["conditions"], actions=v["actions"], needs=v["needs"]
                )
            ),
        )

    def _ask(self, dialog: Any, then: Callable[[Any], object]) -> None:
        """Show a dialog; when it returns a result (not cancelled), hand it to `then`.

        Each kind of dialog is mounted once and reused (installed under its signature):
        composing a fresh one costs tens of milliseconds of the key press that opens it.
        """

        def done(result: Any) -> None:
            if result:
                then(result)

        name = f"dialog-{abs(hash(dialog.signature))}"
        cached = self._dialogs.get(name)
        if cached is None:
            self._dialogs[name] = dialog
            self.install_screen(dialog, name)
        else:
            cached.reset_from(dialog)
        self.push_screen(name, done)

    # -- runbooks ------------------------------------------------------------------------------

    def open_runbook(self, runbook_id: str) -> None:
        """Record the runbook as opened (first time), then show it."""
        runbook = self.runbooks.get(runbook_id)
        if runbook_id not in self.state.runbooks and runbook is None:
            self.notify(f"no runbook {runbook_id!r} loaded", severity="error")
            return
        self._open_runbook(runbook_id, runbook)

    @work(group="open-runbook", exclusive=True, exit_on_error=False)
    async def _open_runbook(self, runbook_id: str, runbook: Runbook | None) -> None:
        from warroom.tui.screens.runbook import RunbookScreen

        if runbook_id not in self.state.runbooks:
            assert runbook is not None
            if await self.record(opened_event(runbook)) is None:
                return
        await self.push_screen(
            RunbookScreen(runbook_id, runbook, self.state, self.clock(), self.mode)
        )
        self.render_state()  # what was folded while it was being composed

    def set_step(self, runbook_id: str, step_id: str, status: str, note: str = "") -> None:
        self.record(
            ev.StepSet(runbook=runbook_id, step=step_id, status=ev.StepStatus(status), note=note)
        )

    def run_step_command(self, runbook_id: str, step_id: str) -> None:
        """Ask, then run the step's first shell block in a worker and log a `CommandRun`."""
        runbook = self.runbooks.get(runbook_id)
        step = runbook.step(step_id) if runbook else None
        if step is None or not step.commands:
            self.notify("this step has no shell block to run", severity="warning")
            return
        code = step.commands[0].code.strip()

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run_command(runbook_id, step_id, code)

        self.push_screen(
            ConfirmDialog("Run this command?", code, "Run", id="confirm-run"), confirmed
        )

    @work(group="commands", exit_on_error=False)
    async def _run_command(self, runbook_id: str, step_id: str, code: str) -> None:
        self.notify(f"running: {code.splitlines()[0]}", timeout=3)
        runner = self.command_runner or run_command
        try:
            result = await runner(code, COMMAND_TIMEOUT_S, MAX_COMMAND_OUTPUT)
        except Exception as exc:
            result = {
                "exit_code": None,
                "output": f"could not run: {exc}",
                "truncated": False,
                "duration_s": 0.0,
            }
        fields = _command_fields(result)
        stamped = await self.record(
            ev.CommandRun(runbook=runbook_id, step=step_id, command=code, **fields)
        )
        if stamped is not None:
            self.notify(
                f"exit {fields['exit_code']}: {fields['output'][-200:] or '(no output)'}",
                title="Command finished",
                severity="information" if fields["exit_code"] == 0 else "warning",
            )

    def pull_step_lever(self, runbook_id: str, step_id: str) -> None:
        """Hand the step's action to the control panel's change path (its confirmations apply)."""
        runbook = self.runbooks.get(runbook_id)
        step = runbook.step(step_id) if runbook else None
        if step is None or step.action is None:
            self.notify("this step has no action to pull", severity="warning")
            return
        request_change = self.control_request_hook()
        if request_change is None:
            self.notify(
                f"no control path available: set {step.action.raw} by hand and mark the step",
                severity="warning",
            )
            return
        request_change(
            service=step.action.service,
            control=step.action.control,
            value=step.action.value,
            reason=f"runbook {runbook_id}: {step.text}",
            runbook=runbook_id,
            step=step_id,
        )

    def control_request_hook(self) -> Callable[..., Any] | None:
        """The controls module's `request_change`, found on the control panel if it has one."""
        from warroom.tui.widgets.control_panel import ControlPanel

        try:
            panel = self.main_screen.query_one(ControlPanel)
        except Exception:
            return None
        return getattr(panel, "request_change", None)

    def open_control_dialog(
        self,
        service: str,
        control: str,
        preset_value: Any = None,
        runbook: str | None = None,
        step: str | None = None,
    ) -> None:
        """Ask for a change of one lever through the panel's dialog (reason, confirmation),
        then make and log it; the entry point for anything that wants to pull a lever."""
        from warroom.tui.widgets.control_panel import ControlPanel

        self.main_screen.query_one(ControlPanel).open_control_dialog(
            service, control, preset_value=preset_value, runbook=runbook, step=step
        )


def _command_fields(result: Any) -> dict[str, Any]:
    """Normalise a runner's result (object or dict) to `CommandRun` fields."""

    def get(name: str, default: Any) -> Any:
        if isinstance(result, Mapping):
            return result.get(name, default)
        return getattr(result, name, default)

    output = str(get("output", "") or "")
    truncated = bool(get("truncated", False))
    if len(output) > MAX_COMMAND_OUTPUT:
        output, truncated = output[-MAX_COMMAND_OUTPUT:], True
    return {
        "exit_code": get("exit_code", None),
        "output": output,
        "truncated": truncated,
        "duration_s": float(get("duration_s", 0.0) or 0.0),
    }
