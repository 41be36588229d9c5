"""Ending a child's whole process group: the one way warroom stops what it started.

Children that start children of their own (a lever's command, a runbook's shell block, the
simulated fleet, a chain check fanning out to range checkers) are started in their own
session (`start_new_session=True`), so one signal to the group reaches all of them.
"""

from __future__ import annotations

import os
import signal


def kill_group(pid: int, sig: int = signal.SIGKILL) -> bool:
    """Send `sig` to the process group `pid` leads; False if there is none (left already)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
