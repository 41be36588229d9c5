"""Who is acting: `$USER@host` unless `--as NAME` says otherwise."""

from __future__ import annotations

import getpass
import os
import socket


def default_actor() -> str:
    """Return the actor recorded on events written by this process."""
    override = os.environ.get("WARROOM_ACTOR")
    if override:
        return override
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    host = socket.gethostname().split(".")[0] or "localhost"
    return f"{user}@{host}"
