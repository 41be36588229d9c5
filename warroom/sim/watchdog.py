"""Ends a process group when its parent goes: `python -m warroom.sim.watchdog PGID`.

Started beside the simulated fleet with the console holding its stdin: when the console
exits, crashes or is SIGKILLed, the pipe closes and this ends the fleet's whole group (TERM,
then KILL), so no fleet outlives its console.
"""

from __future__ import annotations

import os
import signal
import sys
import time

#: Seconds between TERM and KILL.
GRACE_S = 2.0


def end_group(pgid: int, grace: float = GRACE_S) -> None:
    """TERM the process group, then KILL it if it is still there after `grace` seconds."""
    for sig, pause in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        time.sleep(pause)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m warroom.sim.watchdog PGID", file=sys.stderr)
        return 2
    sys.stdin.buffer.read()  # returns when the parent's end of the pipe closes
    end_group(int(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
