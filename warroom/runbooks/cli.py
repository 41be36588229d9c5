"""`warroom runbook lint` and `warroom runbook list`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from warroom.config import WarroomConfig, load_config
from warroom.runbooks.library import default_dirs, load_library, runbook_files
from warroom.runbooks.lint import against_config, unread_annotations
from warroom.runbooks.model import Problem
from warroom.runbooks.parser import read_runbook
from warroom.untrusted import one_line
from warroom.words import plural


def _paths(args: argparse.Namespace) -> list[Path]:
    given = getattr(args, "paths", None) or []
    return [Path(p) for p in given] if given else default_dirs()


def lint(paths: list[Path], config: WarroomConfig | None = None) -> tuple[int, list[Problem]]:
    """Check every runbook file under `paths`: (files checked, problems in file/line order).

    Besides the parser's problems: annotations it would not read, and with a `config`,
    services, levers and targets the config does not have.
    """
    files, problems = runbook_files(paths)
    for file in files:
        runbook, found = read_runbook(file)
        if runbook is not None:
            found = found + unread_annotations(runbook, {p.line for p in found})
            if config is not None:
                found += against_config(runbook, config)
        problems.extend(sorted(found, key=lambda p: p.line))
    return len(files), problems


def run_lint(args: argparse.Namespace) -> int:
    """Print `file:line: message` per problem and exit 1, or `N runbooks ok` and exit 0."""
    config_path = getattr(args, "config", None)
    config = load_config(config_path) if config_path else None
    count, problems = lint(_paths(args), config)
    for problem in problems:
        print(one_line(problem))
    if problems:
        files = len({p.file for p in problems})
        print(
            f"{plural(len(problems), 'problem')} in {plural(files, 'file')} ({count} checked)",
            file=sys.stderr,
        )
        return 1
    print(f"{plural(count, 'runbook')} ok")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print one line per runbook: id, title, services, steps; problems go to stderr."""
    runbooks, problems = load_library(_paths(args))
    rows = [("ID", "TITLE", "SERVICES", "STEPS")]
    rows += [
        (
            one_line(rb.id),
            one_line(rb.title, 80),
            one_line(",".join(rb.services)) or "-",
            str(len(rb.steps)),
        )
        for rb in runbooks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>5}")
    for problem in problems:
        print(one_line(problem), file=sys.stderr)
    return 0
