"""The `warroom` command: argument parsing and dispatch to each concern's entry point.

Each subcommand's work lives with its concern (`warroom/<concern>/cli.py`, a `run(args)`
returning an exit code); this module only parses arguments, imports lazily (so `warroom note`
stays fast) and turns `WarroomError` into one line on stderr instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from warroom import __version__
from warroom.errors import WarroomError

EXIT_USAGE = 2


def _add_target_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", "-c", metavar="FILE", help="warroom.toml to read targets from")
    source.add_argument(
        "--sim", metavar="URL", help="take targets and controls from a simulated fleet's admin URL"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warroom",
        description="Terminal incident-response console: probes, runbooks, levers, incident log.",
    )
    parser.add_argument("--version", action="version", version=f"warroom {__version__}")
    parser.add_argument(
        "--as", dest="actor", metavar="NAME", help="who is acting (default: $USER@host)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="start the simulated fleet and open the console on it")
    demo.add_argument("--scenario", default="aws-us-east-1-2025", help="scenario name")
    demo.add_argument("--speed", type=float, default=None, help="simulated seconds per second")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--log", metavar="LOG", help="incident log (default: new one in ./incidents)")
    demo.set_defaults(entry="warroom.tui.cli:run_demo")

    console = sub.add_parser("console", help="open the console on real targets")
    _add_target_source(console)
    console.add_argument("--log", metavar="LOG", help="incident log; an existing one is resumed")
    console.add_argument(
        "--token",
        metavar="PATH",
        help="with --sim: the admin token file `warroom sim` printed (enables its levers)",
    )
    console.set_defaults(entry="warroom.tui.cli:run_console")

    sim = sub.add_parser("sim", help="serve the simulated fleet on loopback")
    sim.add_argument("--scenario", default="tutorial", help="scenario name or TOML file")
    sim.add_argument("--speed", type=float, default=None, help="simulated seconds per second")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sim.add_argument("--admin-port", type=int, default=0, help="admin port (default: any free)")
    sim.add_argument("--dns-port", type=int, default=0, help="DNS port (default: any free)")
    sim.add_argument("--token-file", metavar="PATH", help="where to write the admin token")
    sim.set_defaults(entry="warroom.sim.cli:run")

    probe = sub.add_parser("probe", help="run the probe engine headless")
    _add_target_source(probe)
    probe.add_argument("--log", metavar="LOG", help="append state changes and samples to LOG")
    probe.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    probe.add_argument("--json", action="store_true", help="one JSON object per line")
    probe.set_defaults(entry="warroom.probe.cli:run")

    log = sub.add_parser("log", help="incident log tools")
    log_sub = log.add_subparsers(dest="log_command", metavar="COMMAND")
    verify = log_sub.add_parser("verify", help="check a log's hash chain; exit 0 when intact")
    verify.add_argument("log", metavar="LOG")
    verify.set_defaults(entry="warroom.log.cli:run_verify")
    show = log_sub.add_parser("show", help="print a log's events, one line each")
    show.add_argument("log", metavar="LOG")
    show.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    show.set_defaults(entry="warroom.log.cli:run_show")

    note = sub.add_parser("note", help="append a note to an incident log (created if needed)")
    note.add_argument("log", metavar="LOG")
    note.add_argument("text", nargs="+", metavar="TEXT")
    note.set_defaults(entry="warroom.log.cli:run_note")

    runbook = sub.add_parser("runbook", help="runbook tools")
    rb_sub = runbook.add_subparsers(dest="runbook_command", metavar="COMMAND")
    lint = rb_sub.add_parser("lint", help="check runbooks; prints file:line: message")
    lint.add_argument("paths", nargs="*", metavar="PATH")
    lint.set_defaults(entry="warroom.runbooks.cli:run_lint")
    rb_list = rb_sub.add_parser("list", help="list the runbooks warroom finds")
    rb_list.add_argument("paths", nargs="*", metavar="PATH")
    rb_list.set_defaults(entry="warroom.runbooks.cli:run_list")

    replay = sub.add_parser("replay", help="replay an incident log read-only")
    replay.add_argument("log", metavar="LOG")
    replay.add_argument("--follow", "-f", action="store_true", help="follow a live incident")
    replay.set_defaults(entry="warroom.replay.cli:run")

    report = sub.add_parser("report", help="write a postmortem draft from an incident log")
    report.add_argument("log", metavar="LOG")
    report.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    report.add_argument("--json", action="store_true", help="the same content as JSON")
    report.set_defaults(entry="warroom.report.cli:run")

    brief = sub.add_parser("brief", help="print a handoff brief for the next shift (one screen)")
    brief.add_argument("log", metavar="LOG")
    brief.add_argument(
        "--at-end", action="store_true", help="as of the log's last event instead of now"
    )
    brief.set_defaults(entry="warroom.report.cli:run_brief")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    entry = getattr(args, "entry", None)
    if entry is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.actor:
        os.environ["WARROOM_ACTOR"] = args.actor
    module_name, func_name = entry.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return int(func(args) or 0)
    except WarroomError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
