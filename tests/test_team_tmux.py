"""Two real `warroom console` processes, each in its own tmux session, on one shared incident
(real PostgreSQL): what one responder types reaches the other's screen within a second."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from warroom import events as ev
from warroom.store import read_events

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="tmux"),
    pytest.mark.slow,
]

ANA, BOB = "ana@alpha", "bob@bravo"


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
        done = self.run("new-session", "-d", "-s", name, "-x", "150", "-y", "40", command)
        assert done.returncode == 0, done.stderr
        self.sessions.append(name)

    def keys(self, name: str, *keys: str) -> None:
        assert self.run("send-keys", "-t", name, *keys).returncode == 0

    def type(self, name: str, text: str) -> None:
        assert self.run("send-keys", "-t", name, "-l", text).returncode == 0

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name).stdout

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


def test_a_note_and_a_severity_typed_in_one_console_show_in_the_other_within_1s(
    pg_url: str, tmp_path: Path
) -> None:
    tmux = Tmux(tmp_path / "tmux.sock")
    repo = Path(__file__).resolve().parents[1]
    try:
        for actor, name in ((ANA, "wr-ana"), (BOB, "wr-bob")):
            home = tmp_path / name  # each console keeps its own mirror under ./incidents
            home.mkdir()
            (home / "warroom.toml").write_text("[incident]\ntwo_person = true\n")  # no targets
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
    finally:
        tmux.close()
