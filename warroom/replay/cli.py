"""`warroom replay LOG [--follow]`: relive an incident read-only, or watch a live one."""

from __future__ import annotations

import argparse
import os

from warroom.log.scan import check_head, open_for_reading
from warroom.store import local_log


def run(args: argparse.Namespace) -> int:
    """Open the replay screen on `args.log` (following it live with `--follow`)."""
    path = local_log(args.log, follow=bool(args.follow))
    fd = open_for_reading(path)  # one-line error for a missing file, a directory, ...
    try:
        check_head(fd, os.fstat(fd).st_size, path)  # refuse a file that is not a log
    finally:
        os.close(fd)
    from warroom.tui.screens.replay import ReplayApp

    return int(ReplayApp(path, follow=bool(args.follow)).run() or 0)
