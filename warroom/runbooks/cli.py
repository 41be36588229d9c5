"""`warroom runbook lint` and `warroom runbook list`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from warroom.runbooks.library import default_dirs, load_library, runbook_files
from warroom.runbooks.model import Problem
from warroom.runbooks.parser import read_runbook


def _paths(args: argparse.Namespace) -> list[Path]:
    given = getattr(args, "paths", None) or []
    return [Path(p) for p in given] if given else default_dirs()


def lint(paths: list[Path]) -> tuple[int, list[Problem]]:
    """Check every runbook file under `paths`: (files checked, problems in file/line order)."""
    files, problems = runbook_files(paths)
    for file in files:
        _, found = read_runbook(file)
        problems.extend(sorted(found, key=lambda p: p.line))
    return len(files), problems


def run_lint(args: argparse.Namespace) -> int:
    """Print `file:line: message` per problem and exit 1, or `N runbooks ok` and exit 0."""
    count, problems = lint(_paths(args))
    for problem in problems:
        print(problem)
    if problems:
        files = len({p.file for p in problems})
        print(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {files} "
            f"file{'s' if files != 1 else ''} ({count} checked)",
            file=sys.stderr,
        )
        return 1
    print(f"{count} runbook{'s' if count != 1 else ''} ok")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print one line per runbook: id, title, services, steps; problems go to stderr."""
    runbooks, problems = load_library(_paths(args))
    rows = [("ID", "TITLE", "SERVICES", "STEPS")]
    rows += [(rb.id, rb.title, ",".join(rb.services) or "-", str(len(rb.steps))) for rb in runbooks]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>5}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 0
