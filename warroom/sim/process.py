"""The simulated fleet as a child process of the console (`warroom demo`).

It runs in its own process group, watched by `warroom.sim.watchdog`, which ends the group
when the console's end of its stdin closes: no fleet outlives its console, even a killed one.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from warroom.errors import WarroomError
from warroom.processes import kill_group

#: How long `warroom demo` waits for the simulated fleet to print its admin line.
SIM_START_TIMEOUT = 20.0
ADMIN_LINE = re.compile(r"admin:\s+(?P<url>http://\S+)\s+token:\s+(?P<token>\S+)")


@dataclass
class SimProcess:
    """A running `warroom sim serve` child: its process group, its watchdog and its admin API."""

    process: subprocess.Popen[bytes]
    watchdog: subprocess.Popen[bytes] | None
    admin_url: str
    token_path: str

    def stop(self) -> None:
        """End the fleet's process group (TERM, then KILL), and the watchdog."""
        _stop_group(self.process)
        if self.watchdog is not None:
            with contextlib.suppress(OSError):
                if self.watchdog.stdin is not None:
                    self.watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watchdog.wait(timeout=3)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if process.poll() is not None:
            return
        kill_group(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)


def start_sim(scenario: str, speed: float | None, seed: int, stderr_path: Path) -> SimProcess:
    """Start `warroom sim serve` in its own process group and wait for its admin line."""
    argv = [
        sys.executable,
        "-m",
        "warroom",
        "sim",
        "serve",
        "--scenario",
        scenario,
        "--seed",
        str(seed),
    ]
    if speed is not None:
        argv += ["--speed", str(speed)]
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "warroom.sim.watchdog", str(process.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sim = SimProcess(process, watchdog, "", "")
    try:
        url, token = _read_admin_line(process, stderr_path)
    except BaseException:
        sim.stop()
        raise
    sim.admin_url, sim.token_path = url, token
    return sim


def _read_admin_line(process: subprocess.Popen[bytes], stderr_path: Path) -> tuple[str, str]:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + SIM_START_TIMEOUT
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
            match = ADMIN_LINE.search(buffer.decode("utf-8", "replace"))
            if match:
                return match["url"].rstrip("/"), match["token"]
        elif process.poll() is not None:
            break
    tail = _tail(stderr_path)
    if process.poll() is not None:
        raise WarroomError(f"the simulated fleet exited ({process.returncode}): {tail}")
    raise WarroomError(f"the simulated fleet printed no admin line in {SIM_START_TIMEOUT:.0f}s")


def _tail(path: Path, limit: int = 300) -> str:
    try:
        text = path.read_text("utf-8", "replace").strip()
    except OSError:
        return "(no output)"
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "(no output)")[-limit:]
