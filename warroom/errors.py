"""The one exception type that the CLI turns into a one-line message instead of a traceback."""

from __future__ import annotations


class WarroomError(Exception):
    """A problem the user can fix, described in one line (naming the file/line or target)."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\n", " ").strip())

    @property
    def message(self) -> str:
        return str(self)
