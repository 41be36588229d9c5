"""In a real terminal (tmux): a hostile note leaves the pane title and the clipboard alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import PAYLOADS

from warroom import events as ev
from warroom.log.store import IncidentLog

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
    pytest.mark.slow,
]


def _tmux(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-S", str(sock), *args], capture_output=True, text=True, timeout=10
    )


def _wait_for(sock: Path, target: str, text: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        screen = _tmux(sock, "capture-pane", "-p", "-t", target).stdout
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared:\n{screen}")


def test_log_show_in_tmux_sets_no_title_and_no_buffer(tmp_path: Path) -> None:
    log_path = tmp_path / "inc.jsonl"
    with IncidentLog.open(log_path) as log:
        log.append(
            ev.NoteAdded(text="title " + PAYLOADS["osc2_title"], actor=PAYLOADS["osc0_title"])
        )
        log.append(ev.NoteAdded(text="clip " + PAYLOADS["osc52_clipboard"]))
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g set-clipboard on\nset -g allow-rename on\n")
    sock = tmp_path / "tmux.sock"
    show = f"{sys.executable} -m warroom log show {log_path}; echo SHOWN; sleep 60"
    env_cmd = f"cd {Path(__file__).resolve().parents[1]} && {show}"
    started = _tmux(sock, "-f", str(conf), "new-session", "-d", "-x", "200", "-y", "40", env_cmd)
    assert started.returncode == 0, started.stderr
    try:
        title_before = _tmux(sock, "display", "-p", "#{pane_title}").stdout.strip()
        screen = _wait_for(sock, "0", "SHOWN")
        assert "note: clip ␛]52;c;UFdORUQ=␇␛[2J" in screen
        assert "note: title ␛]2;pwned␇" in screen
        assert _tmux(sock, "display", "-p", "#{pane_title}").stdout.strip() == title_before
        assert "pwned" not in title_before
        assert _tmux(sock, "show-buffer").returncode != 0  # no buffer was set
        # The same bytes sent raw do change both: the check above can fail.
        raw = "printf '\\033]2;pwned\\007\\033]52;c;UFdORUQ=\\007'; echo RAW; sleep 60"
        assert _tmux(sock, "new-window", "-d", "-t", "1", raw).returncode == 0
        _wait_for(sock, "1", "RAW")
        assert _tmux(sock, "display", "-p", "-t", "1", "#{pane_title}").stdout.strip() == "pwned"
        assert _tmux(sock, "show-buffer").stdout == "PWNED"
    finally:
        _tmux(sock, "kill-server")
        if sock.exists():
            os.unlink(sock)


def test_console_in_tmux_shows_a_hostile_note_without_obeying_it(tmp_path: Path) -> None:
    """A note with OSC 2 and OSC 52, appended by `warroom note` from another process while the
    console is open, is shown disarmed: the pane title and tmux's buffers stay as they were."""
    log_path = tmp_path / "inc.jsonl"
    with IncidentLog.open(log_path) as log:
        log.append(ev.NoteAdded(text="opened for the tmux test", actor="alice"))
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g set-clipboard on\nset -g allow-rename on\n")
    sock = tmp_path / "tmux.sock"
    console = f"cd {tmp_path} && {sys.executable} -m warroom console --log {log_path}; sleep 60"
    started = _tmux(sock, "-f", str(conf), "new-session", "-d", "-x", "140", "-y", "40", console)
    assert started.returncode == 0, started.stderr
    try:
        _wait_for(sock, "0", "opened for the tmux test")
        title_before = _tmux(sock, "display", "-p", "#{pane_title}").stdout.strip()
        payload = "clip " + PAYLOADS["osc52_clipboard"] + " title " + PAYLOADS["osc2_title"]
        noted = subprocess.run(
            [sys.executable, "-m", "warroom", "note", str(log_path), payload],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
        assert noted.returncode == 0, noted.stderr
        screen = _wait_for(sock, "0", "clip ␛]52;c;UFdORUQ=␇␛[2J")
        assert "title ␛]2;pwned␇" in screen
        time.sleep(0.5)  # a few repaints later: still nothing obeyed
        assert "opened for the tmux test" in _tmux(sock, "capture-pane", "-p").stdout
        title_after = _tmux(sock, "display", "-p", "#{pane_title}").stdout.strip()
        assert title_after == title_before and "pwned" not in title_after
        assert _tmux(sock, "show-buffer").returncode != 0  # no buffer was set
    finally:
        _tmux(sock, "kill-server")
        if sock.exists():
            os.unlink(sock)
