"""Finding and loading runbooks: the shipped ones, ./runbooks, and folders named in the config.

Loading never raises for a bad file: problems are collected (`file:line: message`) and the
rest still load, so a malformed runbook never stops the console. A folder or file another user
could have written is refused (`warroom.trust`), and anything but a regular file (a FIFO named
`*.md`) is skipped with a line saying so, without ever being opened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import warroom
from warroom.runbooks.model import Problem, Runbook
from warroom.runbooks.parser import read_runbook
from warroom.trust import file_type, untrusted_reason

#: Inside a built wheel, pyproject force-includes the top-level `runbooks/` here.
PACKAGED_DIR = "_runbooks"


def shipped_dir() -> Path | None:
    """The runbooks shipped with warroom: `warroom/_runbooks` in a wheel, else the repo's."""
    package = Path(warroom.__file__).resolve().parent
    packaged = package / PACKAGED_DIR
    if packaged.is_dir():
        return packaged
    repo = package.parent / "runbooks"
    return repo if repo.is_dir() else None


def default_dirs(extra: Iterable[str | Path] = (), cwd: str | Path | None = None) -> list[Path]:
    """Where to look, first match of an id wins: `extra` (config), ./runbooks, then shipped.

    Folders are deduplicated by their resolved path (in a checkout ./runbooks *is* the
    shipped folder); `extra` folders are kept even if missing so that loading reports them.
    """
    here = Path(cwd) if cwd is not None else Path.cwd()
    candidates: list[Path] = [Path(d) for d in extra]
    local = here / "runbooks"
    if local.is_dir():
        candidates.append(local)
    shipped = shipped_dir()
    if shipped is not None:
        candidates.append(shipped)
    seen: set[Path] = set()
    result = []
    for path in candidates:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            result.append(path)
    return result


def _is_runbook_file(path: Path) -> bool:
    # README.md documents the folder on GitHub and `_index.md` is a site generator's page.
    return (
        path.suffix.lower() == ".md"
        and path.name.lower() != "readme.md"
        and not path.name.startswith(("_", "."))
    )


def _skip_reason(path: Path) -> str | None:
    """Why a runbook file is not read (not a regular file, or untrusted), or None."""
    try:
        info = os.stat(path)  # the target of a symlink; lstat alone would not tell a FIFO
    except OSError:
        return None  # a dangling symlink: reading it reports the problem
    if not stat.S_ISREG(info.st_mode):
        return f"skipped: {file_type(info.st_mode)}, not a runbook file"
    reason = untrusted_reason(path)
    return f"refused: {reason}" if reason else None


def runbook_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Expand folders to their runbook files (`*.md`, not README.md or `_*.md`), sorted by name.

    A file named directly is taken whatever its name; a missing path is a problem, and so is a
    folder or file another user could write (refused) or a file that is not regular (skipped).
    """
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            folder_problem = untrusted_reason(path, folder=True)
            if folder_problem is not None:
                problems.append(
                    Problem(file=str(path), line=1, message=f"refused: {folder_problem}")
                )
                continue
            try:
                # Not `is_file()`: a dangling symlink must surface as a problem, not vanish.
                found = sorted(p for p in path.iterdir() if not p.is_dir() and _is_runbook_file(p))
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                problems.append(Problem(file=str(path), line=1, message=f"cannot list: {reason}"))
                continue
        elif path.exists() or path.is_symlink():
            found = [path]
        else:
            problems.append(
                Problem(file=str(path), line=1, message="no such runbook file or folder")
            )
            continue
        for file in found:
            key = file.resolve()
            if key in seen:
                continue
            seen.add(key)
            skip = _skip_reason(file)
            if skip is not None:
                problems.append(Problem(file=str(file), line=1, message=skip))
                continue
            files.append(file)
    return files, problems


def load_library(dirs: Iterable[str | Path]) -> tuple[list[Runbook], list[Problem]]:
    """Load every runbook under `dirs` (folders or files), in order; never raises for a file.

    When two files share an id (file stem), the first one found wins, so a config folder can
    override a shipped runbook. A runbook whose annotations have problems is still loaded
    without them; one that cannot be read or whose front matter never ends is left out.
    """
    files, problems = runbook_files(dirs)
    runbooks: list[Runbook] = []
    ids: set[str] = set()
    for file in files:
        runbook, found = read_runbook(file)
        problems.extend(found)
        if runbook is None or runbook.id in ids:
            continue
        ids.add(runbook.id)
        runbooks.append(runbook)
    return runbooks, problems
