"""The warroom console: a Textual app whose every fact comes from the incident log.

The app subscribes to a `ConsoleSession` (warroom/session), turns keys into intents and the
session's state into pixels: key -> intent (a dialog result) -> event -> `session.record`
(appended off the event loop, fsynced) -> folded -> subscribers told -> widgets render from
state. Probes, the sim feed, verifications and other processes' events (`warroom note`) reach
the state the same way, through the log. The UI never changes the state directly, and
rendering has no side effects.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from time import monotonic
from typing import Any

from textual import work
from textual.app import App
from textual.events import Event, Key, Resize
from textual.notifications import SeverityLevel
from textual.widgets import Input

from warroom import events as ev
from warroom import untrusted
from warroom.controls.client import ControlError
from warroom.controls.model import ControlSpec, format_value
from warroom.controls.service import ChangeOutcome, ControlService
from warroom.durations import format_duration
from warroom.errors import WarroomError
from warroom.events import BaseEvent, utc_now
from warroom.runbooks.model import Runbook
from warroom.runbooks.shell import run_command
from warroom.runbooks.tracking import opened_event
from warroom.session import Change, ConsoleSession, EventStore, Follower
from warroom.session.alerts import intake_status, silence_lever
from warroom.session.levers import SessionJob, shows_load
from warroom.session.status import status_update_text
from warroom.state import IncidentState, active_alerts
from warroom.tui.actions import APP, LIVE, REPLAY, bindings_for, find
from warroom.tui.commands import ActionCommands, GoAnywhere
from warroom.tui.idle_gc import IdleCollector
from warroom.tui.messages import ChangeRequested, ExtendRequested, RevertRequested
from warroom.tui.screens.confirm_command import CommandConfirmDialog
from warroom.tui.screens.control_dialog import REVERT, ChangeRequest, ControlDialog, ExtendDialog
from warroom.tui.screens.dialogs import ChoiceDialog, ConfirmDialog, Dialog, FormDialog, FormField
from warroom.tui.screens.help import HelpScreen
from warroom.tui.screens.main import MainScreen
from warroom.tui.toasts import safe_toast
from warroom.tui.widgets.probe_table import ProbeTable
from warroom.untrusted import one_line

Clock = Callable[[], datetime]
#: A job the session runs while the console is up (levers, feeds), given the session.
BackgroundTask = SessionJob

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
#: How often other writers' events are read and painted (this console's own actions paint at
#: once). Twice a second is as fresh as a person reads a screen, and under a flood of probe
#: results half the painting a quarter second cost: keys wait for a paint half as often.
FOLLOW_INTERVAL = 0.5
#: The interpreter's thread switch interval while the console runs (Python's default: 5 ms).
SWITCH_INTERVAL_S = 0.001
#: Seconds between re-reads of the shown levers' values from their service.
LEVER_REFRESH_S = 5.0
#: Terminal sizes where the layout changes (columns, rows); see `fit_to`.
NARROW_BELOW, WIDE_FROM, SHORT_BELOW, TALL_FROM = 110, 170, 32, 45
#: Seconds between re-reads of a service's load while its throttle's dialog is open.
LOAD_REFRESH_S = 2.0
#: How long an automatic revert is pushed back by default.
DEFAULT_EXTEND_S = 600.0
#: Longest shell output kept in a `CommandRun` event.
MAX_COMMAND_OUTPUT = 8192
#: A runbook command running longer than this is killed (and logged with no exit code).
COMMAND_TIMEOUT_S = 60.0
#: Keys held for a dialog that never opened (the request failed) are dropped after this.
KEY_HOLD_S = 2.0


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
        error text and names, where `[x]` is data (and a stray `[/]` would raise). The one
        choke point for toasts: everything shown is sanitised (escapes displayed, not sent)."""
        super().notify(**safe_toast(message, title), severity=severity, timeout=timeout)

    # Absolute, so subclasses defined elsewhere (replay, tests, benchmarks) find it too.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "warroom"
    COMMANDS = {ActionCommands, GoAnywhere}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = bindings_for(APP, LIVE)
    ENABLE_COMMAND_PALETTE = True
    #: A simulated fleet's speed, for the header (set by `warroom demo`).
    sim_speed: float | None = None
    #: The first screen's one-line "where to start" (set by `warroom demo`).
    start_hint = ""

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
        idle_gc: bool = True,
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
        for job in background:
            self.session.add_job(
                getattr(job, "__name__", "background job"), partial(job, self.session)
            )
        self.read_only = read_only
        self.mode = REPLAY if read_only else LIVE
        self.command_runner = command_runner
        self._dirty = False
        self._paint_pending = False
        self._switch_interval = sys.getswitchinterval()
        self._shown_generation = 0
        self._dialogs: dict[str, Any] = {}
        #: When the last key arrived (`time.monotonic`): the probe table holds re-sorts
        #: while keys keep coming.
        self.last_input_at = float("-inf")
        #: Full cycle collections only while the keyboard is quiet (see idle_gc.py).
        self._gc: IdleCollector | None = IdleCollector() if idle_gc else None
        #: Seconds between re-reads of the shown levers (None: never, for deterministic tests).
        self.lever_refresh_s: float | None = LEVER_REFRESH_S
        self.main_screen = MainScreen(mode=self.mode)
        #: The last status update posted here, as pasted elsewhere (with the log head).
        self.last_status_text = ""
        #: Runbook id -> the checklist row last highlighted there (see screens/runbook.py).
        self.step_cursors: dict[str, int] = {}
        #: Keys typed while a dialog is on its way, in order (see dialogs.py's contract).
        self._held_keys: list[Key] = []
        #: Held keys handed over and not yet seen again by `_route_typed_ahead` (by id).
        self._replayed: set[int] = set()
        #: Since when keys are held for a requested dialog (None: not holding).
        self._holding_since: float | None = None
        #: The dialog whose last field's Enter is on its way through the field, and the key.
        self._enter_pending: Dialog[Any] | None = None
        self._enter_key: int | None = None
        #: Held keys are being handed to a dialog one handled key at a time.
        self._draining = False
        #: The screen each key was first forwarded on (by id; the last few keys only).
        self._key_screens: dict[int, Any] = {}

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
        # The reader and writer threads hand the interpreter back within a millisecond,
        # not five, when a key arrives: their folds and writes are Python code, and a key's
        # way to the screen crosses the event loop several times.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.fit_to(*self.size)
        await self.push_screen(self.main_screen)
        view = self.main_screen.view
        view.set_status_intervals(self.status_update_intervals)
        view.header.sim_speed = self.sim_speed
        view.header.hint = self.start_hint
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
        if self._gc is not None:
            self.call_after_refresh(self._gc.start)
        self._tick_clock()  # an overdue status update is announced at once, not a second later
        self.set_interval(FOLLOW_INTERVAL, self._tick)
        self.set_interval(1.0, self._tick_clock)
        view.levers_source = self.session.levers
        view.alerts_source = lambda: intake_status(self.session.alert_intake)
        view.on_service_shown = self._refresh_levers_soon
        self.set_interval(LEVER_REFRESH_S, self._refresh_levers_soon)

    def on_resize(self, event: Resize) -> None:
        self.fit_to(event.size.width, event.size.height)

    def fit_to(self, width: int, height: int) -> None:
        """Size classes the stylesheet lays the panes out by (see the end of app.tcss)."""
        self.set_class(width < NARROW_BELOW, "-narrow")
        self.set_class(width >= WIDE_FROM, "-wide")
        self.set_class(height < SHORT_BELOW, "-short")
        self.set_class(height >= TALL_FROM, "-tall")

    async def on_event(self, event: Event) -> None:
        if isinstance(event, Key) and self._route_typed_ahead(event):
            return
        await super().on_event(event)

    # -- typed-ahead keys: held for the dialog that is opening -------------------------------

    def _route_typed_ahead(self, key: Key) -> bool:
        """Keep keys typed ahead of a dialog for that dialog; True when `key` was taken.

        A key reaches the app twice: first to be forwarded to the focused widget, then (if
        no widget used it) bubbling back for the bindings. Keys queued behind the one that
        opens a dialog were forwarded to the screen below; when they bubble back they go to
        the dialog instead of running as hotkeys, in the order they were typed.
        """
        if not key.is_forwarded and id(key) in self._replayed:
            self._replayed.discard(id(key))  # a held key handed over: a press like any other
            self._key_screens[id(key)] = self.screen
            return False
        if not key.is_forwarded:
            self.last_input_at = monotonic()
        elif id(key) == self._enter_key:
            return False  # the last field's Enter, back for the field's own binding
        if self._holding_keys():
            self._held_keys.append(Key(key.key, key.character))
            return True
        if not key.is_forwarded and self._moved_focus_now(key):
            return True
        if not key.is_forwarded:
            self._key_screens[id(key)] = self.screen
            while len(self._key_screens) > 64:
                del self._key_screens[next(iter(self._key_screens))]
            return False
        origin = self._key_screens.pop(id(key), None)
        dialog = self.screen
        if origin is None or origin is dialog or not isinstance(dialog, Dialog):
            return False
        self._held_keys.append(Key(key.key, key.character))
        if dialog.ready:
            self.release_held_keys(dialog)
        return True

    def _moved_focus_now(self, key: Key) -> bool:
        """Enter in a dialog's field and Tab move the focus before the next key is routed;
        True when `key` was that move.

        Keys arrive faster than a screen handles them: left to the field's own Submitted
        message (or the app's Tab binding), the move happens after the keys behind it were
        already forwarded to the field being left, so a burst of "10⏎shed load" all landed
        in the first field.
        """
        dialog = self.screen if self.screen_stack else None
        if not isinstance(dialog, Dialog) or not dialog.ready:
            return False
        target = dialog.focused
        if key.key in ("tab", "shift+tab"):
            if key.key == "tab":
                dialog.focus_next()
            else:
                dialog.focus_previous()
            return True
        if key.key != "enter" or not isinstance(target, Input):
            return False
        if dialog.focus_next_field(target):
            return True
        # The last field's Enter reads what was typed (submit, confirm), so it goes through
        # the field, behind the keys already sent there; the keys after it wait until the
        # dialog has acted on it (`field_enter_handled`).
        self._enter_pending, self._enter_key = dialog, id(key)
        self._holding_since = monotonic()
        return False

    def field_enter_handled(self, dialog: Dialog[Any]) -> None:
        """`dialog` has acted on its last field's Enter: hand on the keys typed behind it
        (to the button it moved to, or to the screen that is now on top)."""
        if self._enter_pending is not dialog:
            return
        self._enter_pending, self._enter_key = None, None
        self._holding_since = None
        self._drain_held_keys(dialog)

    def _holding_keys(self) -> bool:
        if self._draining:
            return True
        if self._holding_since is not None:
            if monotonic() - self._holding_since < KEY_HOLD_S:
                return True
            self.drop_held_keys()
        screen = self.screen if self.screen_stack else None
        return isinstance(screen, Dialog) and not screen.ready

    def hold_keys_for_dialog(self) -> None:
        """Hold keys from now until a dialog is ready for them (or `drop_held_keys`)."""
        self._holding_since = monotonic()

    def release_held_keys(self, dialog: Dialog[Any]) -> None:
        """Hand the held keys, in typed order, to the dialog now focused.

        Text and Enter-to-the-next-field are applied at once (so each key lands in the field
        focused when it would have been typed); any other key is delivered as a key, and the
        rest wait until it has been handled.
        """
        self._holding_since = None
        while self._held_keys:
            key = self._held_keys.pop(0)
            target = dialog.focused
            if isinstance(target, Input) and key.is_printable and key.character:
                target.insert_text_at_cursor(key.character)
                continue
            if isinstance(target, Input) and key.key == "enter" and dialog.focus_next_field(target):
                continue
            self._press_again(key)
            # Keys typed meanwhile wait behind it (held), as they would behind a real press.
            self._draining = True
            self.call_after_refresh(self._drain_held_keys, dialog)
            return
        self._draining = False

    def _drain_held_keys(self, dialog: Dialog[Any]) -> None:
        if self._replayed:  # the key handed over is still on its way to the focused widget
            self.call_after_refresh(self._drain_held_keys, dialog)
            return
        if self.screen is dialog and dialog.ready:
            self.release_held_keys(dialog)
            return
        # The dialog closed (its Enter submitted): what was typed after it is for this screen.
        held, self._held_keys, self._draining = self._held_keys, [], False
        for key in held:
            self._press_again(key)

    def _press_again(self, key: Key) -> None:
        """Deliver a held key as Textual's driver delivers a press (public API only): sent by
        the app to the app, it takes a real press's path (priority bindings, the focused
        widget, bubbling back up to the app for the bindings); marked so it is not held
        again. (Sent by anything else, the key would stop bubbling at that sender.)"""
        again = Key(key.key, key.character).set_sender(self)
        self._replayed.add(id(again))
        self.post_message(again)

    def drop_held_keys(self) -> None:
        """The dialog the keys were typed for did not open: they must not become hotkeys."""
        self._holding_since = None
        self._enter_pending, self._enter_key = None, None
        self._held_keys = []
        self._draining = False

    async def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        if self._gc is not None:
            self._gc.stop()
        await self.session.aclose()

    def report_problem(self, problem: str) -> None:
        """Show a problem in the problems line and as a notification (the console carries on)."""
        self.session.report_problem(problem)

    def _session_changed(self, change: Change) -> None:
        """The session's news: repaint (now for this console's own actions), or tell."""
        if change.kind in ("state", "freshness", "shared"):
            self._dirty = True
            if change.operator:
                self.main_screen.view.header.clear_hint()  # the first action: hint done
                self.render_state()
            elif not self._paint_pending:
                # What the reader thread folded is painted as soon as the loop is free, once
                # for all the news that arrives meanwhile.
                self._paint_pending = True
                self.call_later(self._paint_news)
        elif change.kind == "problem":
            self.main_screen.view.set_problems(self.problems)
            if self.session.log_gone:
                self.main_screen.view.header.alarm = self.session.log_gone
                self._dirty = True
            if change.text:  # "": a problem was resolved (the line above is all there is)
                self.notify(change.text, title=change.title, severity="error", timeout=10)
        elif change.kind == "reminder":
            self.notify(change.text, title=change.title, severity="warning", timeout=15)
        else:
            self.notify(change.text, title=change.title, severity="error")

    # -- the one path into the state: the session ---------------------------------------------

    def record(self, event: BaseEvent) -> asyncio.Task[BaseEvent | None]:
        """Append an operator event through the session (off the event loop, in order)."""
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
        self._show_shared(now)
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

    def _show_shared(self, now: datetime) -> None:
        """The shared incident's line in the header; a re-folded order redraws the log pane."""
        view = self.main_screen.view
        view.header.shared = self.session.shared_view(now)
        if self.session.generation != self._shown_generation:
            self._shown_generation = self.session.generation
            view.log_tail.restart()

    def _paint_news(self) -> None:
        self._paint_pending = False
        if self._dirty:
            self.render_state()

    def _tick(self) -> None:
        # The read runs off the loop; what it folds is painted when it is committed.
        self.session.poll_soon()
        if self._dirty:
            self.render_state()

    def _tick_clock(self) -> None:
        if self._gc is not None:
            self._gc.tick(self.last_input_at)
        now = self.clock()
        self.session.tick(now)
        self._show_shared(now)
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
        if isinstance(self.screen, ConfirmDialog) and self.screen.id == "confirm-quit":
            return  # already asking: a second ctrl+c must not stack another question

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.exit(0)

        self.push_screen(
            ConfirmDialog(
                "Quit warroom?",
                "The incident log stays on disk; reopen it with "
                "`warroom console --log LOG` to resume.",
                "Quit",
                id="confirm-quit",
            ),
            done,
        )

    async def action_quit(self) -> None:
        """Ctrl+Q asks like `q`: quitting at once would end a demo's fleet mid-drill."""
        self.action_quit_console()

    def action_help_quit(self) -> None:
        """Ctrl+C asks like `q` (Textual's own hint would show its markup raw here)."""
        self.action_quit_console()

    # -- probe detail and command output (read-only views over the state and the log) ---------

    def on_probe_table_target_selected(self, message: ProbeTable.TargetSelected) -> None:
        message.stop()
        self.show_probe_detail(message.target)

    @work(group="detail", exclusive=True, exit_on_error=False)
    async def show_probe_detail(self, target: str) -> None:
        """Push the detail of `target`: its config, last result, latency, logged changes."""
        from warroom.tui.screens.probe_detail import ProbeDetailScreen, probe_detail_text

        view = self.state.probes.get(target)
        if view is None:
            self.notify(f"{target}: no probe results for this target", severity="warning")
            return
        configs = getattr(self.session.probes, "targets", None) or []
        config = next((t for t in configs if getattr(t, "name", None) == target), None)
        changes = await self._logged(
            lambda e: isinstance(e, ev.ProbeStateChanged) and e.target == target
        )
        body = probe_detail_text(
            view, config, changes, self.clock(), target in self.session.freshness.stale
        )
        await self.push_screen(ProbeDetailScreen(body, f"Probe {target}"))

    @work(group="detail", exclusive=True, exit_on_error=False)
    async def action_command_output(self) -> None:
        """Every shell step run in this incident with its full output, from the log."""
        from warroom.tui.screens.probe_detail import CommandOutputScreen, command_output_text

        runs = await self._logged(lambda e: isinstance(e, ev.CommandRun))
        screen = CommandOutputScreen(command_output_text(runs), "Command output")
        await self.push_screen(screen)

    async def _logged(self, keep: Callable[[BaseEvent], bool]) -> list[Any]:
        """The log's events `keep` accepts, read off the event loop (the log may be big)."""

        def read() -> list[BaseEvent]:
            return [event for event in self.incident_log.read() if keep(event)]

        return await asyncio.to_thread(read)

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

    def action_confirm_change(self) -> None:
        """Two-person rule: pick a change another responder asked for, give your own reason."""
        waiting = self.session.pending_confirmations()
        if not waiting:
            self.notify("no change is waiting for a second responder", title="Nothing to confirm")
            return
        choices = [
            (
                held.request_id,
                one_line(
                    f"{held.service}.{held.control} -> {held.to_value} "
                    f"by {held.requested_by}: {held.reason}"
                ),
            )
            for held in waiting
        ]

        def with_reason(request_id: str) -> None:
            self._ask(
                FormDialog(
                    "Confirm as second responder",
                    [FormField("reason", "Your reason", required=True)],
                    "Confirm",
                ),
                lambda v: self.session.confirm(request_id, v["reason"]),
            )

        self._ask(ChoiceDialog("Changes waiting for a second responder", choices), with_reason)

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
                    FormField("priority", "Priority", placeholder="P0 (now) .. P3 (someday)"),
                    FormField("type", "Type", placeholder="prevent, mitigate or process"),
                    FormField("link", "Link", placeholder="ticket URL or key"),
                ],
                "Add",
            ),
            lambda v: self.record(
                ev.TaskAdded(
                    text=v["text"],
                    owner=v["owner"],
                    priority=v["priority"],
                    type=v["type"],
                    link=v["link"],
                )
            ),
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
            lambda v: self._post_status_update(
                ev.StatusUpdatePosted(
                    conditions=v["conditions"], actions=v["actions"], needs=v["needs"]
                )
            ),
        )

    @work(group="brief", exclusive=True, exit_on_error=False)
    async def action_handoff_brief(self) -> None:
        """Build the brief from the log off the event loop, then show it."""
        # Imported here: the report builder behind it is not needed for the first frame.
        from warroom.session.handoff import handoff_brief
        from warroom.tui.screens.brief import BriefScreen

        await self.session.idle()  # what this console recorded is in it
        try:
            brief = await asyncio.to_thread(
                handoff_brief, self.incident_log, self.clock(), self.status_update_intervals
            )
        except Exception as exc:
            self.notify(f"cannot build the brief: {exc}", severity="error")
            return
        await self.push_screen(BriefScreen(brief))

    def action_silence_alert(self) -> None:
        """Pick an active alert, then pull its silence lever (the usual change dialog)."""
        alerts = active_alerts(self.state)
        if not alerts:
            self.notify("no active alert to silence", severity="warning")
            return
        by_id = {alert.fingerprint: alert for alert in alerts}
        choices = [
            (
                alert.fingerprint,
                untrusted.one_line(
                    f"{alert.alertname} {alert.service} — {alert.annotations.get('summary', '')}",
                    100,
                ),
            )
            for alert in alerts
        ]

        def chosen(fingerprint: str) -> None:
            alert = by_id[fingerprint]
            try:
                spec = silence_lever(self.session, alert)
            except WarroomError as exc:
                self.notify(str(exc), title="Cannot silence", severity="error")
                return
            self.post_message(
                ChangeRequested(
                    spec.service,
                    spec.control,
                    value=True,
                    reason=untrusted.one_line(f"silence {alert.alertname}", 200),
                )
            )

        self._ask(ChoiceDialog("Silence which alert?", choices, alerts[0].fingerprint), chosen)

    @work(group="status-update", exit_on_error=False)
    async def _post_status_update(self, update: ev.StatusUpdatePosted) -> None:
        """Post it, then show the text to paste: it carries the log head at that moment."""
        stored = await self.record(update)
        if isinstance(stored, ev.StatusUpdatePosted):
            self.last_status_text = status_update_text(stored)
            self.notify(self.last_status_text, title="Status update posted — paste", timeout=30)

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
            CommandConfirmDialog("Run this command?", code, "Run", id="confirm-run"), confirmed
        )

    @work(group="commands", exit_on_error=False)
    async def _run_command(self, runbook_id: str, step_id: str, code: str) -> None:
        step, runbook = untrusted.one_line(step_id, 80), untrusted.one_line(runbook_id, 80)
        self.notify(f"running step {step} of {runbook}", timeout=3)
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
                f"step {step_id}: exit {fields['exit_code']}: "
                f"{fields['output'][-200:] or '(no output)'} (L: full output)",
                title="Command finished",
                severity="information" if fields["exit_code"] == 0 else "warning",
            )

    def step_lever_request(self, runbook_id: str, step_id: str) -> ChangeRequested | None:
        """The `ChangeRequested` for a runbook step's action (None, said why, if it has none)."""
        runbook = self.runbooks.get(runbook_id)
        step = runbook.step(step_id) if runbook else None
        if step is None or step.action is None:
            self.notify("this step has no action to pull", severity="warning")
            return None
        return ChangeRequested(
            step.action.service,
            step.action.control,
            value=step.action.value,
            reason=f"runbook {runbook_id}: {step.text}",
            runbook=runbook_id,
            step=step_id,
        )

    # -- levers: requests come up as messages, changes run in workers through the session ------

    def _need_controls(self, what: str = "") -> ControlService | None:
        controls = self.session.controls
        if controls is None:
            hint = f": set {what} by hand" if what else ""
            self.notify(
                f"no control path: this console has no levers attached{hint}", severity="error"
            )
        return controls

    def on_change_requested(self, message: ChangeRequested) -> None:
        """Ask for the change (value, reason, duration, confirmation), then make it."""
        message.stop()
        controls = self._need_controls(f"{message.service}/{message.lever}")
        if controls is None:
            self.drop_held_keys()  # no dialog: what was typed for it must not run
            return
        try:
            spec = controls.spec(message.service, message.lever)
        except ControlError as exc:
            self.notify(str(exc), severity="error")
            self.drop_held_keys()  # no dialog: what was typed for it must not run
            return
        note = f"From runbook {message.runbook}, step {message.step}." if message.runbook else ""

        def done(request: ChangeRequest | None) -> None:
            if request is not None:
                self._change(spec, request, message.runbook, message.step)

        dialog = ControlDialog(
            spec,
            controls.value(message.service, message.lever),
            preset=message.value,
            note=note,
            reason=message.reason,
        )
        self.push_screen(dialog, done)
        if self.session.service_load is not None and shows_load(spec):
            self._show_load(dialog, spec.service)

    @work(group="service-load", exclusive=True, exit_on_error=False)
    async def _show_load(self, dialog: ControlDialog, service: str) -> None:
        """Goodput, offered load, queue and capacity next to a throttle's value, re-read
        while the dialog is open (the figures move as the responder decides)."""
        first = True
        while first or dialog in self.screen_stack:
            first = False
            read = self.session.service_load
            if read is None:
                return
            try:
                line = (await read(service)).line()
            except WarroomError as exc:
                line = f"load not known: {exc}"
            dialog.show_load(line)
            await asyncio.sleep(LOAD_REFRESH_S)

    def on_revert_requested(self, message: RevertRequested) -> None:
        message.stop()
        controls = self._need_controls()
        if controls is None:
            self.drop_held_keys()  # no dialog: what was typed for it must not run
            return
        spec = controls.spec(message.service, message.lever)
        change = controls.revert_target(message.service, message.lever)
        if change is None or change.from_value is None:
            self.notify(f"{spec.key}: no applied change to revert", severity="warning")
            self.drop_held_keys()  # no dialog: what was typed for it must not run
            return

        def done(request: ChangeRequest | None) -> None:
            if request is not None:
                self._revert(spec, request)

        self.push_screen(
            ControlDialog(
                spec,
                controls.value(message.service, message.lever),
                mode=REVERT,
                revert_of=change,
            ),
            done,
        )

    def on_extend_requested(self, message: ExtendRequested) -> None:
        message.stop()
        controls = self._need_controls()
        if controls is None:
            self.drop_held_keys()  # no dialog: what was typed for it must not run
            return
        spec = controls.spec(message.service, message.lever)
        view = self.state.control(message.service, message.lever)
        if view is None or not view.auto_revert_at:
            self.notify(f"{spec.key}: no automatic revert is pending", severity="warning")
            self.drop_held_keys()  # no dialog: what was typed for it must not run
            return
        change = self.state.changes.get(view.auto_revert_of)
        default = (change.auto_revert_s if change else None) or DEFAULT_EXTEND_S
        due = ev.parse_ts(view.auto_revert_at).strftime("%H:%M:%S")

        def done(result: tuple[float, str] | None) -> None:
            if result is not None:
                self._extend(spec, *result)

        self.push_screen(ExtendDialog(spec, due, default), done)

    @work(group="control-change", exit_on_error=False)
    async def _change(
        self, spec: ControlSpec, request: ChangeRequest, runbook: str | None, step: str | None
    ) -> None:
        controls = self.session.controls
        assert controls is not None
        try:
            outcome = await controls.request_change(
                spec.service,
                spec.control,
                request.value,
                request.reason,
                self.actor,
                auto_revert_s=request.auto_revert_s,
                runbook=runbook,
                step=step,
                confirm=request.confirm,
            )
        except ControlError as exc:
            self.notify(str(exc), title="Not changed", severity="error")
            return
        except Exception as exc:  # logged as failed by the service; the console carries on
            self.notify(f"{spec.key}: {exc}", title="Not changed", severity="error")
            return
        self._finished(spec, outcome)
        if outcome.ok and runbook and step:
            self._offer_step_done(runbook, step)

    def _offer_step_done(self, runbook_id: str, step_id: str) -> None:
        """The step's lever is applied: offer to mark the step done (one Enter)."""
        progress = self.state.runbooks.get(runbook_id)
        view = progress.steps.get(step_id) if progress else None
        if view is not None and view.status == "done":
            return
        runbook = self.runbooks.get(runbook_id)
        step = runbook.step(step_id) if runbook else None

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.set_step(runbook_id, step_id, "done", "lever applied")

        self.push_screen(
            ConfirmDialog(
                "Mark the step done?",
                f"The lever is applied (read back). Mark “{step.text if step else step_id}” "
                "done in the runbook?",
                "Mark done",
                id="confirm-step-done",
            ),
            done,
        )

    @work(group="control-change", exit_on_error=False)
    async def _revert(self, spec: ControlSpec, request: ChangeRequest) -> None:
        controls = self.session.controls
        assert controls is not None
        try:
            outcome = await controls.revert(
                spec.service, spec.control, request.reason, self.actor, confirm=request.confirm
            )
        except ControlError as exc:
            self.notify(str(exc), title="Not reverted", severity="error")
            return
        except Exception as exc:  # logged as failed by the service; the console carries on
            self.notify(f"{spec.key}: {exc}", title="Not reverted", severity="error")
            return
        self._finished(spec, outcome)

    @work(group="control-change", exit_on_error=False)
    async def _extend(self, spec: ControlSpec, seconds: float, reason: str) -> None:
        controls = self.session.controls
        assert controls is not None
        try:
            until = await controls.extend(spec.service, spec.control, seconds, reason, self.actor)
        except ControlError as exc:
            self.notify(str(exc), title="Not extended", severity="error")
            return
        self.notify(
            f"{spec.key}: kept {format_duration(seconds)} longer, reverts at "
            f"{until.strftime('%H:%M:%S')}",
            timeout=5,
        )
        self.render_state()

    def _finished(self, spec: ControlSpec, outcome: ChangeOutcome) -> None:
        value = format_value(spec, outcome.value)
        if outcome.ok:
            self.notify(f"{spec.key} = {value} (read back)", title="Applied", timeout=5)
        else:
            self.notify(
                f"{spec.key}: {outcome.error} — now {value}",
                title="Change failed",
                severity="error",
                timeout=10,
            )
        self.render_state()

    def _refresh_levers_soon(self) -> None:
        service = self.main_screen.view.selected_service
        if self.lever_refresh_s and self.session.controls is not None and service:
            self._refresh_levers(service)

    @work(group="control-refresh", exclusive=True, exit_on_error=False)
    async def _refresh_levers(self, service: str) -> None:
        """Re-read the shown service's lever values; they reach the panel as state."""
        controls = self.session.controls
        if controls is None:
            return
        await controls.refresh(service)
        self.main_screen.view.show_levers()


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
