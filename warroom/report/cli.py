"""`warroom report LOG [-o FILE] [--json]`: write the postmortem draft; `warroom brief LOG`:
print the handoff brief."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from warroom.errors import WarroomError
from warroom.report.brief import render_brief
from warroom.report.builder import Appendix, report_from_log, stream_report
from warroom.report.model import Report
from warroom.report.render import render_json, write_markdown
from warroom.store import local_log


def _report(path: Path, *, verify: bool = True) -> Report:
    if not path.is_file():
        raise WarroomError(f"{path}: no such log file")
    return _checked(path, report_from_log(path, verify=verify))


def _checked(path: Path, report: Report) -> Report:
    if report.event_count == 0 and report.integrity.stopped_at_line == 1:
        # Nothing of an incident in it: a log of another tool, or not a log at all.
        why = report.integrity.stop_reason
        raise WarroomError(f"{path}:1: not a warroom incident log ({why})")
    return report


def run_brief(args: argparse.Namespace) -> int:
    """Print the handoff brief for `args.log` as of now (or of its last event with --at-end)."""
    report = _report(local_log(args.log), verify=False)
    now = None if getattr(args, "at_end", False) else datetime.now(UTC)
    sys.stdout.write(render_brief(report, now=now))
    sys.stdout.flush()
    return 0


def run(args: argparse.Namespace) -> int:
    """Build the report for `args.log` and print it (or write it to `args.output`)."""
    path = local_log(args.log)
    appendix: Appendix | None = None
    if args.json:
        report = _report(path)
    else:
        # The draft streams its appendix from a second pass: memory does not grow with the log.
        if not path.is_file():
            raise WarroomError(f"{path}: no such log file")
        report, appendix = stream_report(path)
        _checked(path, report)

    def emit(handle: TextIO) -> None:
        if args.json:
            handle.write(render_json(report))
        else:
            write_markdown(report, handle.write, appendix)

    if args.output:
        out = Path(args.output)
        try:
            if out.exists() and not out.is_file():
                # A device or pipe (-o /dev/stdout, /dev/null): write through, never replace it.
                with out.open("w", encoding="utf-8") as handle:
                    emit(handle)
            else:
                # Atomic for regular files: a half-written report never replaces a good one.
                tmp = out.with_name(f".{out.name}.tmp")
                with tmp.open("w", encoding="utf-8") as handle:
                    emit(handle)
                os.replace(tmp, out)
        except OSError as exc:
            raise WarroomError(f"{out}: cannot write: {exc.strerror or exc}") from None
    else:
        emit(sys.stdout)
        sys.stdout.flush()
    return 0
