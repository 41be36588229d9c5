"""The one registry of console actions: keys, descriptions, danger, and modes.

It drives the key bindings of every screen, the help screen and the command palette, so a
key cannot exist without being documented. Mutating actions exist only in live mode: in
replay (read-only) mode they are not bound at all, as k9s drops dangerous keys when read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

LIVE = "live"
REPLAY = "replay"

#: Where an action's binding lives: the app (every screen), the main screen, a runbook screen.
APP = "app"
MAIN = "main"
RUNBOOK = "runbook"
#: The mitigation panel (its keys work while it has focus; see widgets/control_panel.py).
CONTROLS = "controls"

SCOPE_TITLES = {APP: "Everywhere", MAIN: "Main screen", RUNBOOK: "Runbook screen"}
SCOPE_TITLES[CONTROLS] = "Mitigation panel"
#: The replay screen's timeline (see screens/replay.py); these exist in replay mode only.
REPLAY_SCREEN = "replay_screen"
SCOPE_TITLES[REPLAY_SCREEN] = "Replay timeline"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: how it is invoked, what it does, and where it exists."""

    #: Textual action name (the `action_<name>` method on the scope's node).
    name: str
    #: Comma-separated Textual key names.
    keys: str
    #: A word or two for the footer.
    label: str
    description: str
    scope: str = APP
    #: Writes to the incident log (an operator action): live mode only.
    mutating: bool = False
    #: Needs a confirmation (quit, running a shell command, pulling a lever).
    dangerous: bool = False
    #: Shown in the footer (the help screen and palette show all).
    footer: bool = False
    #: How the key is shown in the footer/help, when the key name is not readable.
    key_display: str | None = None
    #: In the command palette (actions that need a row under the cursor are not).
    palette: bool = True
    #: Exists only in replay (the timeline's play, step and seek).
    replay_only: bool = False

    @property
    def modes(self) -> tuple[str, ...]:
        if self.replay_only:
            return (REPLAY,)
        return (LIVE,) if self.mutating else (LIVE, REPLAY)

    def display_keys(self) -> str:
        if self.key_display:
            return self.key_display
        return " / ".join(_pretty(k) for k in self.keys.split(","))


def _pretty(key: str) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "colon": ":",
        "escape": "esc",
        "exclamation_mark": "!",
        "space": "space",
        "enter": "enter",
    }
    return names.get(key, key)


ACTIONS: tuple[ActionSpec, ...] = (
    # -- everywhere ----------------------------------------------------------------------
    ActionSpec("help", "question_mark", "Help", "Show every key", footer=True),
    ActionSpec(
        "command_palette",
        "colon,ctrl+p",
        "Commands",
        "Command palette: run any action by name",
        footer=True,
        palette=False,
    ),
    ActionSpec(
        "quit_console",
        "q",
        "Quit",
        "Quit the console (asks first; ctrl+q and ctrl+c ask too)",
        footer=True,
    ),
    # The most used action first among the app's: the key bar keeps it at 80 columns.
    ActionSpec(
        "add_note", "n", "Note", "Add a note to the incident log", mutating=True, footer=True
    ),
    ActionSpec("focus_next", "tab", "Next pane", "Move focus to the next pane", palette=False),
    ActionSpec(
        "command_output",
        "L",
        "Output",
        "Show the full output of every shell step run (from the log)",
    ),
    ActionSpec(
        "declare",
        "t",
        "Declare/rename",
        "Declare the incident, or rename it",
        mutating=True,
        footer=True,
    ),
    ActionSpec(
        "set_severity", "v", "Severity", "Set the severity (SEV1-SEV4)", mutating=True, footer=True
    ),
    ActionSpec(
        "set_status",
        "u",
        "Status",
        "Set the status (investigating, identified, monitoring, resolved)",
        mutating=True,
        footer=True,
    ),
    ActionSpec(
        "assign_role", "r", "Role", "Assign a role (commander, scribe, comms, ...)", mutating=True
    ),
    ActionSpec(
        "add_bookmark", "b", "Bookmark", "Bookmark this moment for the timeline", mutating=True
    ),
    ActionSpec(
        "add_task", "f", "Follow-up", "Add a follow-up task for the postmortem", mutating=True
    ),
    ActionSpec(
        "handoff_brief",
        "H",
        "Brief",
        "Handoff brief for the next responder",
    ),
    ActionSpec(
        "silence_alert",
        "A",
        "Silence alert",
        "Silence an Alertmanager alert (a logged lever)",
        mutating=True,
        dangerous=True,
    ),
    ActionSpec(
        "status_update",
        "c",
        "Status update",
        "Write a status update (Conditions / Actions / Needs)",
        mutating=True,
        footer=True,
    ),
    ActionSpec(
        "confirm_change",
        "y",
        "Second",
        "Confirm another responder's lever change waiting for a second person",
        mutating=True,
        dangerous=True,
    ),
    # -- main screen --------------------------------------------------------------------------
    ActionSpec(
        "filter",
        "slash",
        "Filter",
        "Filter probes by target, service or state",
        scope=MAIN,
        footer=True,
    ),
    ActionSpec(
        "cycle_sort", "s", "Sort", "Cycle the probe sort: state, name, service, latency", scope=MAIN
    ),
    ActionSpec(
        "open_runbook",
        "o",
        "Runbook",
        "Open the highlighted runbook (or the first suggested one)",
        scope=MAIN,
        footer=True,
    ),
    # -- runbook screen -----------------------------------------------------------------------
    ActionSpec(
        "step_done", "d", "Done", "Mark the step done", scope=RUNBOOK, mutating=True, footer=True
    ),
    ActionSpec(
        "step_skip", "x", "Skip", "Mark the step skipped", scope=RUNBOOK, mutating=True, footer=True
    ),
    ActionSpec(
        "step_pending",
        "p",
        "Pending",
        "Mark the step pending again",
        scope=RUNBOOK,
        mutating=True,
        footer=True,
    ),
    ActionSpec(
        "step_note",
        "m",
        "With note",
        "Set the step's status with a note",
        scope=RUNBOOK,
        mutating=True,
    ),
    ActionSpec(
        "run_command",
        "exclamation_mark",
        "Run",
        "Run the step's shell block (asks first)",
        scope=RUNBOOK,
        mutating=True,
        dangerous=True,
        footer=True,
    ),
    ActionSpec(
        "pull_lever",
        "a",
        "Pull lever",
        "Pull the step's lever through the control panel (asks first)",
        scope=RUNBOOK,
        mutating=True,
        dangerous=True,
        footer=True,
    ),
    ActionSpec(
        "step_next", "j", "Down", "Next step (also down arrow)", scope=RUNBOOK, palette=False
    ),
    ActionSpec(
        "step_prev", "k", "Up", "Previous step (also up arrow)", scope=RUNBOOK, palette=False
    ),
    ActionSpec(
        "step_first",
        "g",
        "First",
        "First step (also home; pgup/pgdn page)",
        scope=RUNBOOK,
        palette=False,
    ),
    ActionSpec("step_last", "G", "Last", "Last step (also end)", scope=RUNBOOK, palette=False),
    ActionSpec(
        "close_runbook",
        "escape",
        "Back",
        "Back to the main screen",
        scope=RUNBOOK,
        footer=True,
        palette=False,
    ),
)


ACTIONS += (
    # -- mitigation panel (controls engineer) ------------------------------------------------
    ActionSpec(
        "change_control",
        "enter",
        "Change",
        "Change the highlighted lever (asks value and reason)",
        scope=CONTROLS,
        mutating=True,
        dangerous=True,
        footer=True,
        palette=False,
    ),
    ActionSpec(
        "revert_control",
        "z",
        "Revert",
        "Revert the lever's last applied change (asks first)",
        scope=CONTROLS,
        mutating=True,
        dangerous=True,
        footer=True,
        palette=False,
    ),
    ActionSpec(
        "extend_control",
        "e",
        "Extend",
        "Push back the lever's automatic revert",
        scope=CONTROLS,
        mutating=True,
        footer=True,
        palette=False,
    ),
)

#: The replay timeline's actions: a table of their own, so the console's `ACTIONS` stay the
#: live keys; `actions_for` and `bindings_for` serve both (these exist in replay mode only).
REPLAY_ACTIONS: tuple[ActionSpec, ...] = (
    # -- replay timeline (replay mode only; nothing here writes) --------------------------
    ActionSpec(
        "toggle_play",
        "space",
        "Play/pause",
        "Play or pause the replay",
        scope=REPLAY_SCREEN,
        replay_only=True,
        footer=True,
    ),
    ActionSpec(
        "faster",
        "plus,equals_sign",
        "Faster",
        "Play faster: 1x, 10x, 60x, as fast as possible",
        scope=REPLAY_SCREEN,
        replay_only=True,
        footer=True,
        key_display="+",
    ),
    ActionSpec(
        "slower",
        "minus",
        "Slower",
        "Play slower",
        scope=REPLAY_SCREEN,
        replay_only=True,
        key_display="-",
    ),
    ActionSpec(
        "step_forward",
        "full_stop,l",
        "Step",
        "Step one event forward",
        scope=REPLAY_SCREEN,
        replay_only=True,
        footer=True,
        key_display=".",
    ),
    ActionSpec(
        "step_back",
        "comma,h",
        "Back",
        "Step one event back",
        scope=REPLAY_SCREEN,
        replay_only=True,
        key_display=",",
    ),
    ActionSpec(
        "next_action",
        "n,right_square_bracket",
        "Next action",
        "Step to the next operator action",
        scope=REPLAY_SCREEN,
        replay_only=True,
        footer=True,
        key_display="n",
    ),
    ActionSpec(
        "prev_action",
        "N,left_square_bracket",
        "Prev action",
        "Step back to the previous operator action",
        scope=REPLAY_SCREEN,
        replay_only=True,
        key_display="N",
    ),
    ActionSpec(
        "next_bookmark",
        "b",
        "Bookmark",
        "Jump to the next bookmark",
        scope=REPLAY_SCREEN,
        replay_only=True,
        footer=True,
    ),
    ActionSpec(
        "prev_bookmark",
        "B",
        "Prev bookmark",
        "Jump to the previous bookmark",
        scope=REPLAY_SCREEN,
        replay_only=True,
    ),
    ActionSpec(
        "seek_start",
        "0",
        "Start",
        "Jump to the start (1-9: to 10%-90% of the log)",
        scope=REPLAY_SCREEN,
        replay_only=True,
        key_display="0-9",
    ),
    ActionSpec("seek_end", "G", "End", "Jump to the end", scope=REPLAY_SCREEN, replay_only=True),
    ActionSpec(
        "go_to",
        "g",
        "Go to",
        "Go to a time, a percentage or a #seq",
        scope=REPLAY_SCREEN,
        replay_only=True,
        footer=True,
    ),
    ActionSpec(
        "follow",
        "f",
        "Follow",
        "Follow the live end again (with --follow)",
        scope=REPLAY_SCREEN,
        replay_only=True,
    ),
)


def actions_for(scope: str | None = None, mode: str = LIVE) -> list[ActionSpec]:
    """Actions that exist in `mode`, optionally for one scope."""
    return [
        a
        for a in (*ACTIONS, *REPLAY_ACTIONS)
        if mode in a.modes and (scope is None or a.scope == scope)
    ]


def bindings_for(scope: str, mode: str = LIVE) -> list[BindingType]:
    """Textual bindings for one scope, generated from the registry."""
    return [
        Binding(
            a.keys,
            a.name,
            a.label,
            show=a.footer,
            key_display=a.key_display
            or (None if "," not in a.keys else _pretty(a.keys.split(",")[0])),
        )
        for a in actions_for(scope, mode)
    ]


def find(name: str) -> ActionSpec:
    return next(a for a in ACTIONS if a.name == name)
