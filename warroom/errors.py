"""The one exception type that the CLI turns into a one-line message instead of a traceback."""

from __future__ import annotations

import os


class WarroomError(Exception):
    """A problem the user can fix, described in one line (naming the file/line or target)."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\n", " ").strip())

    @property
    def message(self) -> str:
        return str(self)


def os_reason(exc: OSError) -> str:
    """What an OS error says, without the wrapper text asyncio adds to a failed bind
    ("error while attempting to bind on address (...): address already in use")."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__
