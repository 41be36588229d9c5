"""Two real `warroom console` processes, each in its own tmux session, on one shared incident
(real PostgreSQL): what one responder types, or pulls, reaches the other's screen within a
second, and a dangerous lever waits until the other confirms it from his own console."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from warroom import events as ev
from warroom.store import read_events

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="tmux"),
    pytest.mark.slow,
]

ANA, BOB = "ana@alpha", "bob@bravo"
#: Both consoles' config: the two-person rule, and two levers kept in files (set by a
#: program, read back by another, as `[[controls]]` argv levers are); no targets.
CONFIG = """
[incident]
two_person = true

[[controls]]
service = "web"
control = "load_shed"
label = "Load shed"
kind = "level"
apply = {{ argv = ["/bin/sh", "-c", "printf %s \\"$1\\" > {dir}/shed", "sh", "{{value}}"] }}
read = {{ argv = ["/bin/cat", "{dir}/shed"] }}

[[controls]]
service = "db"
control = "rollback"
label = "Pin previous query plan"
kind = "toggle"
dangerous = true
apply = {{ argv = ["/bin/sh", "-c", "printf %s \\"$1\\" > {dir}/plan", "sh", "{{value}}"] }}
read = {{ argv = ["/bin/cat", "{dir}/plan"] }}
"""
_STYLE = re.compile(r"\x1b\[[0-9;:?]*[A-Za-z]")


class Tmux:
    """A private tmux server (its own socket) whose named sessions this test starts and ends."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.sessions: list[str] = []

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.sock), *args], capture_output=True, text=True, timeout=10
        )

    def start(self, name: str, command: str) -> None:
        # Wide enough that toasts (bottom right) never overlap a centred dialog's fields.
        done = self.run("new-session", "-d", "-s", name, "-x", "200", "-y", "40", command)
        assert done.returncode == 0, done.stderr
        self.sessions.append(name)

    def keys(self, name: str, *keys: str) -> None:
        assert self.run("send-keys", "-t", name, *keys).returncode == 0

    def type(self, name: str, text: str) -> None:
        assert self.run("send-keys", "-t", name, "-l", text).returncode == 0

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name).stdout

    def styled_block(self, name: str, label: str, above: int, below: int) -> str:
        """The screen lines around the one showing `label`, with their colours and styles."""
        lines = self.run("capture-pane", "-e", "-p", "-t", name).stdout.splitlines()
        for i, line in enumerate(lines):
            if label in _STYLE.sub("", line):
                return "\n".join(lines[max(0, i - above) : i + below + 1])
        return ""

    def move(self, name: str, key: str, label: str, button: bool = False) -> None:
        """Press `key` and wait until the field under `label` (or the button) shows the focus:
        keys typed before the focus has moved would still reach the field it left."""
        above, below = (1, 1) if button else (0, 2)
        before = self.styled_block(name, label, above, below)
        self.keys(name, key)
        wait(
            lambda: self.styled_block(name, label, above, below) != before,
            f"{name}: focus on {label!r}",
            timeout=10,
            screen=lambda: self.screen(name),
        )

    def close(self) -> None:
        for name in self.sessions:
            self.run("kill-session", "-t", name)
        self.sessions.clear()


def wait(
    condition: Callable[[], object],
    what: str,
    timeout: float = 30.0,
    screen: Callable[[], str] = lambda: "",
) -> float:
    """Seconds until `condition` held, polled every 20 ms."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} did not happen in {timeout:.0f} s:\n{screen()}")
        time.sleep(0.02)
    return time.monotonic() - start


def stored(url: str, kind: type[ev.BaseEvent]) -> list[ev.BaseEvent]:
    return [e for e in read_events(url) if isinstance(e, kind)]


def lever(url: str, kind: type[ev.BaseEvent], control: str) -> list[ev.BaseEvent]:
    return [e for e in stored(url, kind) if getattr(e, "control", None) == control]


def pull(tmux: Tmux, name: str, query: str, hit: str) -> None:
    """Open a lever's dialog from the palette, as a responder does: `:`, a few words, Enter."""

    def shows(text: str) -> None:
        screen = partial(tmux.screen, name)
        wait(lambda: text in screen(), f"{name}: {text!r}", screen=screen)

    tmux.keys(name, ":")
    shows("🔎")
    tmux.type(name, query)
    shows(hit)
    tmux.keys(name, "Enter")
    shows(hit.replace("Pull lever: ", "Change "))


def test_notes_severity_and_levers_reach_the_other_console_and_two_people_pull_a_dangerous_one(
    pg_url: str, tmp_path: Path
) -> None:
    tmux = Tmux(tmp_path / "tmux.sock")
    repo = Path(__file__).resolve().parents[1]
    levers = tmp_path / "levers"
    levers.mkdir()
    (levers / "shed").write_text("0")
    (levers / "plan").write_text("false")
    try:
        for actor, name in ((ANA, "wr-ana"), (BOB, "wr-bob")):
            home = tmp_path / name  # each console keeps its own mirror under ./incidents
            home.mkdir()
            (home / "warroom.toml").write_text(CONFIG.format(dir=levers))
            console = [sys.executable, "-m", "warroom", "console", "--as", actor, "--log", pg_url]
            run = f"PYTHONPATH={shlex.quote(str(repo))} {shlex.join(console)}"
            tmux.start(name, f"cd {shlex.quote(str(home))} && {run}; sleep 60")
        for name in ("wr-ana", "wr-bob"):
            wait(
                lambda name=name: "team (" in tmux.screen(name),  # type: ignore[misc]
                f"{name}'s console",
                screen=lambda name=name: tmux.screen(name),  # type: ignore[misc]
            )
        wait(lambda: "team (2)" in tmux.screen("wr-bob"), "ana in bob's team line")

        tmux.keys("wr-ana", "n")
        wait(lambda: "Add a note" in tmux.screen("wr-ana"), "the note dialog")
        tmux.type("wr-ana", "from ana: the db primary is down")
        tmux.keys("wr-ana", "Enter")
        wait(lambda: stored(pg_url, ev.NoteAdded), "the note stored")
        seen = wait(lambda: "from ana: the db primary is down" in tmux.screen("wr-bob"), "note")
        assert seen < 1.0
        (note,) = stored(pg_url, ev.NoteAdded)
        assert note.actor == ANA
        assert f"{ANA}: note: from ana" in tmux.screen("wr-bob")

        tmux.keys("wr-ana", "v")
        wait(lambda: "Set severity" in tmux.screen("wr-ana"), "the severity dialog")
        tmux.keys("wr-ana", "Enter")
        wait(lambda: stored(pg_url, ev.SeveritySet), "the severity stored")
        (severity,) = stored(pg_url, ev.SeveritySet)
        assert isinstance(severity, ev.SeveritySet) and severity.actor == ANA
        label = f" {severity.severity} "
        assert wait(lambda: label in tmux.screen("wr-bob"), "severity on bob's screen") < 1.0

        # An ordinary lever pulled in ana's console is applied at once and shows in bob's.
        pull(tmux, "wr-ana", "Load shed", "Pull lever: web · Load shed")
        tmux.type("wr-ana", "10")
        tmux.move("wr-ana", "Enter", "Reason (asked")
        tmux.type("wr-ana", "shed some load")
        tmux.move("wr-ana", "Enter", "Revert automatically")
        tmux.move("wr-ana", "Enter", "Apply", button=True)
        tmux.keys("wr-ana", "Enter")
        wait(lambda: lever(pg_url, ev.ControlApplied, "load_shed"), "the lever applied")
        (shed,) = lever(pg_url, ev.ControlApplied, "load_shed")
        assert isinstance(shed, ev.ControlApplied) and (shed.service, shed.value) == ("web", 10)
        assert wait(lambda: shed.summary() in tmux.screen("wr-bob"), "lever on bob's") < 1.0

        # A dangerous one waits for a second responder: not ana again, bob, with his reason.
        pull(tmux, "wr-ana", "Pin previous", "Pull lever: db · Pin previous query plan")
        tmux.move("wr-ana", "Enter", "Reason (asked")  # Enter on the radio set picks "on"
        tmux.type("wr-ana", "pin the old plan")
        tmux.move("wr-ana", "Enter", "Revert automatically")
        tmux.move("wr-ana", "Enter", "Type db to confirm")
        tmux.type("wr-ana", "db")
        tmux.move("wr-ana", "Enter", "Apply", button=True)
        tmux.keys("wr-ana", "Enter")
        wait(lambda: lever(pg_url, ev.ControlRequested, "rollback"), "the change requested")
        (asked,) = lever(pg_url, ev.ControlRequested, "rollback")
        assert isinstance(asked, ev.ControlRequested) and asked.needs_second
        assert (asked.actor, asked.to_value) == (ANA, True)
        held = f"db.rollback by {ANA} waits for a second responder"
        assert wait(lambda: held in tmux.screen("wr-bob"), "the held change on bob's") < 1.0
        tmux.keys("wr-ana", "y")
        wait(lambda: "Nothing to confirm" in tmux.screen("wr-ana"), "ana may not second herself")
        # Held: nothing applied, the lever itself untouched.
        assert not lever(pg_url, ev.ControlApplied, "rollback")
        assert (levers / "plan").read_text() == "false"
        tmux.keys("wr-bob", "y")
        wait(lambda: "Changes waiting for a second" in tmux.screen("wr-bob"), "bob's choice")
        tmux.keys("wr-bob", "Enter")
        wait(lambda: "Confirm as second responder" in tmux.screen("wr-bob"), "bob's reason")
        tmux.type("wr-bob", "agreed: the new plan is the cause")
        tmux.keys("wr-bob", "Enter")
        wait(lambda: stored(pg_url, ev.ControlConfirmed), "bob's confirmation stored")
        (second,) = stored(pg_url, ev.ControlConfirmed)
        assert isinstance(second, ev.ControlConfirmed) and second.actor == BOB
        assert (second.request_id, second.reason) == (
            asked.request_id,
            "agreed: the new plan is the cause",
        )
        wait(lambda: lever(pg_url, ev.ControlApplied, "rollback"), "applied once seconded")
        (pinned,) = lever(pg_url, ev.ControlApplied, "rollback")
        assert isinstance(pinned, ev.ControlApplied) and pinned.value is True
        assert pinned.request_id == asked.request_id and second.seq < pinned.seq
        assert wait(lambda: pinned.summary() in tmux.screen("wr-bob"), "applied on bob's") < 1.0
        assert (levers / "shed").read_text() == "10" and (levers / "plan").read_text() == "true"
    finally:
        tmux.close()
