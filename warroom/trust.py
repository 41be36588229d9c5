"""Trusting files on disk the way ssh trusts `authorized_keys`: config and runbooks only.

A config names commands to run and runbooks hold shell steps a responder confirms, so a file
that someone else could have written is refused, with a one-line reason and the fix: it must
be owned by the current user (or root) and writable by no one else, and so must its folder
(a sticky folder such as /tmp is fine: nobody else can replace a file in it). Reading never
opens anything but a regular file (a FIFO named `*.md` must not hang the console).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from warroom.errors import WarroomError


class UntrustedFile(WarroomError):
    """A config or runbook file (or its folder) that another user could have written."""


def _owner_problem(info: os.stat_result) -> str | None:
    if info.st_uid not in (0, os.getuid()):
        return f"owned by another user (uid {info.st_uid})"
    return None


def _mode_problem(info: os.stat_result, *, folder: bool) -> str | None:
    mode = info.st_mode
    if folder and mode & stat.S_ISVTX:
        return None
    who = [
        name for bit, name in ((stat.S_IWGRP, "its group"), (stat.S_IWOTH, "others")) if mode & bit
    ]
    if who:
        return f"writable by {' and '.join(who)} (mode {stat.S_IMODE(mode):04o}; chmod go-w)"
    return None


def untrusted_reason(path: str | os.PathLike[str], *, folder: bool = False) -> str | None:
    """Why `path` (followed if a symlink) cannot be trusted, or None; missing paths are None
    (reading them reports that)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return _owner_problem(info) or _mode_problem(info, folder=folder or stat.S_ISDIR(info.st_mode))


def check_trusted(path: str | os.PathLike[str], what: str) -> None:
    """Raise `UntrustedFile` (one line naming the file) unless the file and its folder are
    trusted."""
    target = Path(path)
    reason = untrusted_reason(target)
    if reason is None:
        reason = untrusted_reason(target.resolve().parent, folder=True)
        if reason is not None:
            reason = f"its folder {target.resolve().parent} is {reason}"
    if reason is not None:
        raise UntrustedFile(f"{target}: {what} refused: {reason}")


def file_type(mode: int) -> str:
    """What a non-regular file is, for a message."""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: str | os.PathLike[str], limit: int = 64 * 1024 * 1024) -> bytes:
    """The bytes of a regular file, never blocking on a FIFO or device; `OSError` (with a
    strerror) for anything that is not a regular file or is over `limit` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, f"{file_type(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise OSError(0, f"over {limit // (1024 * 1024)} MB")
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > limit:
                raise OSError(0, f"over {limit // (1024 * 1024)} MB")
        return b"".join(chunks)
    finally:
        os.close(fd)
