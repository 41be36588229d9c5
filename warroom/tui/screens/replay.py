"""Read-only replay of an incident log: the console's panes plus a timeline.

The screen shows, at every position, exactly `fold(events[:k])` (the `ReplayCursor` makes
sure of it) rendered by the console's own `IncidentView`, with "now" frozen at the current
event's time. Moves run in a thread worker (a far seek on a big log may fold thousands of
events); checkpoints are built and the chain verified in background workers, so the first
frame never waits for them. Mutating actions do not exist here: the bindings come from the
action registry in replay mode, plus the timeline's own keys.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from warroom import events as ev
from warroom.replay.cursor import ReplayCursor
from warroom.replay.source import ReplaySource
from warroom.replay.verify_job import VerifyJob
from warroom.state import IncidentState
from warroom.tui.actions import APP, MAIN, REPLAY, REPLAY_SCREEN, bindings_for
from warroom.tui.commands import ActionCommands
from warroom.tui.screens.dialogs import FormDialog, FormField
from warroom.tui.screens.help import HelpScreen
from warroom.tui.toasts import safe_toast
from warroom.tui.widgets.incident_view import IncidentView
from warroom.untrusted import one_line

#: Playback speeds: event-time seconds per real second; None = as fast as possible.
SPEEDS: tuple[float | None, ...] = (1.0, 10.0, 60.0, None)
#: Playback and follow timer period (seconds).
TICK = 0.1
FOLLOW_TICK = 0.25
#: A move still running after this long shows "seeking…" (seconds).
SEEKING_HINT_AFTER = 0.3
#: Events per tick at "as fast as possible".
MAX_SPEED_STEP = 250

#: The timeline's keys come from the action registry (replay mode only); 1-9 jump to 10%-90%
#: and are documented there with `seek_start` ("0-9").
REPLAY_BINDINGS = [
    *bindings_for(REPLAY_SCREEN, REPLAY),
    *[Binding(str(d), f"seek_fraction({d / 10})", f"{d * 10}%", show=False) for d in range(1, 10)],
]


def speed_label(speed: float | None) -> str:
    return "max" if speed is None else f"{speed:g}x"


@dataclass(frozen=True)
class Frame:
    """What the screen shows: a position and the state there."""

    position: int
    total: int
    state: IncidentState
    event: ev.BaseEvent | None


class ReplayBar(Static):
    """Top line: the REPLAY marker, position (seq k of N), event time, play state, warnings."""

    DEFAULT_CSS = """
    ReplayBar { height: auto; background: $boost; padding: 0 1; }
    """

    def show(
        self,
        frame: Frame,
        *,
        playing: bool,
        speed: float | None,
        following: bool,
        warnings: list[str],
        indexed: bool = True,
        seeking: bool = False,
    ) -> None:
        text = Text(no_wrap=False)
        text.append(" REPLAY ", style="bold white on dark_blue")
        text.append(" read-only ", style="dim")
        seq = frame.event.seq if frame.event is not None else 0
        total = str(frame.total) if indexed else "… (indexing the log)"
        text.append(f" seq {seq} of {total}", style="bold")
        if frame.event is not None:
            text.append(f"  ·  {_time(frame.event.ts)}")
            text.append(f"  ·  {frame.event.kind.replace('_', ' ')}", style="dim")
        text.append("  ·  ")
        if following:
            text.append("● FOLLOWING LIVE", style="bold green")
        elif playing:
            text.append(f"▶ playing {speed_label(speed)}", style="bold green")
        else:
            text.append(f"⏸ paused ({speed_label(speed)})", style="yellow")
        if seeking:
            text.append("  ·  seeking…", style="bold yellow")
        for warning in warnings:
            text.append("\n")
            text.append(f" ⚠ {one_line(warning)}", style="bold black on yellow")
        self.update(text)


class Timeline(Static):
    """Bottom line: a progress bar over the log with bookmark ticks, and the position."""

    DEFAULT_CSS = """
    Timeline { height: 1; padding: 0 1; background: $panel; }
    """

    _last: tuple[Frame, list[int], int] | None = None

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(*self._last)

    def show(self, frame: Frame, bookmarks: list[int], checkpointed: int) -> None:
        self._last = (frame, bookmarks, checkpointed)
        width = max(10, self.size.width - 34) if self.size.width else 60
        total = max(frame.total, 1)
        filled = round(frame.position / total * width)
        marks = {min(width - 1, (p * width) // total) for p in bookmarks}
        text = Text(no_wrap=True)
        text.append(f"{frame.position:>7}/{frame.total:<7} ", style="bold")
        for i in range(width):
            char = "◆" if i in marks else ("━" if i < filled else "─")
            style = "bold blue" if i in marks else ("green" if i < filled else "dim")
            text.append(char, style=style)
        percent = 100 * frame.position / total if frame.total else 0.0
        text.append(f" {percent:5.1f}%", style="bold")
        if checkpointed < frame.total:
            text.append(f"  indexing {100 * checkpointed / total:3.0f}%", style="dim")
        self.update(text)


def _time(ts: str) -> str:
    return ts[:10] + " " + ts[11:19] + "Z" if len(ts) >= 19 else ts


class ReplayScreen(Screen[None]):
    """The console's panes at a position of a recorded incident, with a timeline."""

    #: The command palette offers the registry's actions of this scope (and the app's).
    ACTION_SCOPE = REPLAY_SCREEN

    BINDINGS = [
        *[
            b
            for b in bindings_for(MAIN, REPLAY)
            if isinstance(b, Binding) and b.action in ("filter", "cycle_sort", "open_runbook")
        ],
        *REPLAY_BINDINGS,
    ]

    def __init__(
        self,
        source: ReplaySource,
        *,
        follow: bool = False,
        every: int | None = None,
        verify: bool = True,
        start: int | None = None,
    ) -> None:
        super().__init__(id="replay")
        self.source = source
        self.cursor = ReplayCursor(source) if every is None else ReplayCursor(source, every=every)
        self.view = IncidentView(id="incident")
        self.follow_mode = follow
        self.following = follow
        self.verify = verify
        self.start = start
        self.playing = False
        self.speed_index = 1
        self.warnings: list[str] = []
        self.checkpointed = 0
        self._lock = threading.Lock()
        self._moving = False
        #: Bumped whenever playback starts or stops, so a play timer from an earlier run that
        #: still fires does nothing (Dolphie ea4df78).
        self._generation = 0
        self._play_timer: Timer | None = None
        self._follow_timer: Timer | None = None
        self._stopping = False
        self._bookmark_positions: list[int] = []
        #: False until the worker has indexed the log (the bars say "indexing").
        self.indexed = False
        #: Event time playback has reached (None until playing starts).
        self._play_clock: datetime | None = None

    @property
    def speed(self) -> float | None:
        return SPEEDS[self.speed_index]

    def compose(self) -> ComposeResult:
        yield ReplayBar(id="replay-bar")
        yield self.view
        yield Timeline(id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        self.view.probe_table.focus()
        # The first frame is position 0 and does not wait for the index: it is built (and
        # then the checkpoints) in a worker.
        self._show_frame(self._frame())
        self.call_after_refresh(self._start_background)
        if self.follow_mode:
            self._follow_timer = self.set_interval(FOLLOW_TICK, self._follow_tick)

    def _start_background(self) -> None:
        # After the first frame is painted: these threads compete with it for the GIL.
        self._open()
        if self.verify:
            self._verify_chain()

    def on_unmount(self) -> None:
        self._stopping = True
        self._generation += 1
        for timer in (self._play_timer, self._follow_timer):
            if timer is not None:
                timer.stop()

    def action_open_runbook(self) -> None:
        """Open a runbook of the incident read-only, as it stood at the replay's position."""
        from warroom.runbooks.library import default_dirs, load_library
        from warroom.tui.screens.runbook import RunbookScreen
        from warroom.tui.widgets.runbook_checklist import RunbookChecklist

        frame = self._frame()
        option = self.query_one("#runbooks", RunbookChecklist).highlighted_option
        runbook_id = option.id if option is not None and not option.disabled else None
        runbook_id = runbook_id or next(iter(frame.state.runbooks), None)
        if runbook_id is None:
            self.notify("no runbook was opened in this incident by here", severity="warning")
            return
        loaded, _ = load_library(default_dirs())
        runbook = next((r for r in loaded if r.id == runbook_id), None)
        now = frame.event.time if frame.event is not None else datetime(1970, 1, 1)
        self.app.push_screen(RunbookScreen(runbook_id, runbook, frame.state, now, REPLAY))

    # -- rendering -------------------------------------------------------------------------

    def _frame(self) -> Frame:
        cursor = self.cursor
        return Frame(cursor.position, len(cursor), cursor.state, cursor.current_event)

    def _show_frame(self, frame: Frame) -> None:
        if self._stopping:
            return
        now = frame.event.time if frame.event is not None else datetime(1970, 1, 1)
        with self.app.batch_update():
            self.view.update_from(frame.state, now)
            self._render_bars(frame)

    def _render_bars(self, frame: Frame | None = None) -> None:
        frame = frame or self._frame()
        self.query_one(ReplayBar).show(
            frame,
            playing=self.playing,
            speed=self.speed,
            following=self.following,
            warnings=self.warnings,
            indexed=self.indexed,
            seeking=self._moving,
        )
        self.query_one(Timeline).show(frame, self._bookmark_positions, self.checkpointed)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            self.notify(message, title="Replay", severity="warning", timeout=10)
            self._render_bars()

    def _note_bad_lines(self) -> None:
        if self.source.bad_line is not None:
            self._warn(
                f"line {self.source.bad_line} is not an event ({self.source.bad_reason}): "
                f"replaying the {len(self.source)} events before it"
            )

    # -- background work --------------------------------------------------------------------

    @work(thread=True, group="replay-open", exit_on_error=False)
    def _open(self) -> None:
        """Index the log, go to the start position, then fold it once keeping checkpoints.

        Checkpoint building is safe alongside moves: the cursor only appends checkpoints
        under its own lock.
        """
        cursor = self.cursor
        with self._lock:
            self.source.refresh()
        self.indexed = True
        start = self.start
        if start is None:
            start = len(cursor) if self.follow_mode else 0
        self.app.call_from_thread(self._move, lambda c: c.seek(start), keep_following=True)
        cursor.scan_marks()
        self.app.call_from_thread(self._got_bookmarks, [b.position for b in cursor.bookmarks()])
        last_report = cursor.checkpoint_count

        def stop() -> bool:
            nonlocal last_report
            if cursor.checkpoint_count >= last_report + 50:
                last_report = cursor.checkpoint_count
                self.app.call_from_thread(self._got_checkpoints, cursor.checkpointed_until)
            return self._stopping

        reached = cursor.build_checkpoints(stop=stop)
        if not self._stopping:
            self.app.call_from_thread(self._got_checkpoints, reached)

    def _got_bookmarks(self, positions: list[int]) -> None:
        self._bookmark_positions = positions
        self._render_bars()

    def _got_checkpoints(self, reached: int) -> None:
        self.checkpointed = reached
        self._note_bad_lines()
        self._render_bars()

    @work(thread=True, group="replay-verify", exit_on_error=False)
    def _verify_chain(self) -> None:
        """Check the hash chain without holding up the replay; a break becomes a warning.

        A big log is checked in a second process (VerifyJob), so hashing a million lines
        does not hold the GIL against the screen and the checkpoint builder.
        """
        try:
            job = VerifyJob(self.source.path)
            try:
                result = job.result()
            finally:
                job.shutdown()
        except Exception as exc:
            if not self._stopping:
                self.app.call_from_thread(self._warn, f"could not verify the log: {exc}")
            return
        if not result.ok and not self._stopping:
            detail = f"{result.reason}: {result.detail}" if result.detail else result.reason
            message = (
                f"hash chain broken at seq {result.first_bad_seq} ({detail}); "
                "events from there on may have been altered"
            )
            self.app.call_from_thread(self._warn, message)

    # -- moving ----------------------------------------------------------------------------

    def _move(self, how: Callable[[ReplayCursor], object], *, keep_following: bool = False) -> None:
        """Run a cursor move in a worker; `how` returning False means nothing to redraw."""
        if not keep_following and self.following:
            self.following = False
        self._moving = True
        self._move_worker(how)
        if not keep_following:
            # A far seek before the checkpoints reach it folds many events: say so. (Not for
            # the follow tick's refresh, which redraws nothing when nothing was appended.)
            self.set_timer(SEEKING_HINT_AFTER, self._show_seeking)

    def _show_seeking(self) -> None:
        if self._moving and not self._stopping:
            self._render_bars()

    @work(thread=True, group="replay-move", exit_on_error=False)
    def _move_worker(self, how: Callable[[ReplayCursor], object]) -> None:
        try:
            with self._lock:
                changed = how(self.cursor)
                frame = self._frame()
        finally:
            self._moving = False
        if not self._stopping and changed is not False:
            self.app.call_from_thread(self._show_frame, frame)

    def _make_tick(self, tick: Callable[[], None], generation: int) -> Callable[[], None]:
        def guarded() -> None:
            if generation == self._generation and not self._stopping:
                tick()

        return guarded

    def _play_tick(self) -> None:
        if self._moving:
            return
        cursor = self.cursor
        if cursor.position >= len(cursor):
            self._set_playing(False)
            return
        speed = self.speed
        if speed is None:
            self._move(lambda c: c.step(MAX_SPEED_STEP))
            return
        if self._play_clock is None:
            event = cursor.current_event or cursor.source.event(0)
            if event is None:
                return
            self._play_clock = event.time
        self._play_clock += timedelta(seconds=speed * TICK)
        position = cursor.position_at_time(ev.format_ts(self._play_clock))
        if position > cursor.position:
            self._move(lambda c: c.seek(position))

    def _follow_tick(self) -> None:
        if self._moving:
            return

        def refresh(cursor: ReplayCursor) -> bool:
            added = cursor.source.refresh()
            if added and self.following:
                cursor.seek(len(cursor))
            return bool(added)

        self._move(refresh, keep_following=True)

    def _set_playing(self, playing: bool) -> None:
        self.playing = playing
        self._play_clock = None
        self._generation += 1
        if self._play_timer is not None:
            self._play_timer.stop()
            self._play_timer = None
        if playing:
            self._play_timer = self.set_interval(
                TICK, self._make_tick(self._play_tick, self._generation)
            )
        self._render_bars()

    # -- actions -----------------------------------------------------------------------------

    def action_toggle_play(self) -> None:
        if not self.playing and self.cursor.at_end:
            self.notify("at the end of the log: press 0 to start over", timeout=3)
            return
        self.following = False
        self._set_playing(not self.playing)

    def action_faster(self) -> None:
        self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
        self._render_bars()

    def action_slower(self) -> None:
        self.speed_index = max(self.speed_index - 1, 0)
        self._render_bars()

    def action_step_forward(self) -> None:
        self._move(lambda c: c.step(1))

    def action_step_back(self) -> None:
        self._move(lambda c: c.step(-1))

    def action_seek_fraction(self, fraction: float) -> None:
        self._move(lambda c: c.seek_fraction(fraction))

    def action_seek_start(self) -> None:
        self.action_seek_fraction(0.0)

    def action_seek_end(self) -> None:
        self.action_seek_fraction(1.0)

    def action_next_action(self) -> None:
        target = self.cursor.next_action_position()
        if target is None:
            self.notify("no operator action after this point", timeout=3)
            return
        self._move(lambda c: c.seek(target))

    def action_prev_action(self) -> None:
        target = self.cursor.prev_action_position()
        if target is None:
            self.notify("no operator action before this point", timeout=3)
            return
        self._move(lambda c: c.seek(target))

    def action_next_bookmark(self) -> None:
        mark = self.cursor.next_bookmark()
        if mark is None:
            self.notify("no bookmark after this point", timeout=3)
            return
        self._move(lambda c: c.seek(mark.position))

    def action_prev_bookmark(self) -> None:
        mark = self.cursor.prev_bookmark()
        if mark is None:
            self.notify("no bookmark before this point", timeout=3)
            return
        self._move(lambda c: c.seek(mark.position))

    def action_go_to(self) -> None:
        def done(values: dict[str, str] | None) -> None:
            if not values:
                return
            try:
                target = self.cursor.position_for(values["where"])
            except ValueError as exc:
                self.notify(str(exc), severity="error")
                return
            self._move(lambda c: c.seek(target))

        self.app.push_screen(
            FormDialog(
                "Go to",
                [FormField("where", "Time, percentage or seq", placeholder="14:05:00, 50%, #120")],
                "Go",
                help_text="A time of day (UTC, the log's first day), a full RFC 3339 time, "
                "a percentage of the log, or #seq.",
            ),
            done,
        )

    def action_follow(self) -> None:
        if not self.follow_mode:
            self.notify("not following a live log (start with --follow)", timeout=3)
            return
        self.following = True
        self._set_playing(False)
        self._move(lambda c: c.seek(len(c)), keep_following=True)

    def action_filter(self) -> None:
        self.view.open_filter()

    def action_cycle_sort(self) -> None:
        mode = self.view.probe_table.cycle_sort()
        self._show_frame(self._frame())
        self.notify(f"sorted by {mode}", timeout=2)


class ReplayApp(App[int]):
    """A read-only app around one `ReplayScreen` (the live console is `WarroomApp`)."""

    CSS_PATH = str(Path(__file__).resolve().parents[1] / "app.tcss")
    TITLE = "warroom replay"
    COMMANDS = {ActionCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = bindings_for(APP, REPLAY)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every toast sanitised and never markup (warnings quote the log's lines)."""
        super().notify(**safe_toast(message, title), severity=severity, timeout=timeout)

    def __init__(
        self,
        path: str | Path,
        *,
        follow: bool = False,
        every: int | None = None,
        verify: bool = True,
        start: int | None = None,
    ) -> None:
        super().__init__()
        self.mode = REPLAY
        self.read_only = True
        self.source = ReplaySource(path, build=False)
        self.replay_screen = ReplayScreen(
            self.source, follow=follow, every=every, verify=verify, start=start
        )

    async def on_mount(self) -> None:
        await self.push_screen(self.replay_screen)

    def on_unmount(self) -> None:
        self.replay_screen._stopping = True
        self.source.close()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(REPLAY, self.replay_screen.warnings))

    def action_quit_console(self) -> None:
        # Nothing to lose in replay: quit at once.
        self.exit(0)
