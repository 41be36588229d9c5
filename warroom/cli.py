"""The `warroom` command: argument parsing and dispatch to each concern's entry point.

Each subcommand's work lives with its concern (`warroom/<concern>/cli.py`, a `run(args)`
returning an exit code); this module only parses arguments, imports lazily (so `warroom note`
stays fast) and turns `WarroomError` into one line on stderr instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from warroom import __version__
from warroom.errors import WarroomError
from warroom.untrusted import one_line

EXIT_USAGE = 2


def _port(text: str) -> int:
    """An argparse type: a TCP/UDP port, 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range (0-65535): {port}")
    return port


def _finite(text: str) -> float:
    """An argparse type: a finite number (not nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (`warroom sim: argument --admin-port: ...`), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def _add_target_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", "-c", metavar="FILE", help="warroom.toml to read targets from")
    source.add_argument(
        "--sim", metavar="URL", help="take targets and controls from a simulated fleet's admin URL"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    demo.add_argument("--speed", type=_finite, default=None, help="simulated seconds per second")
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
    console.add_argument(
        "--dry-run",
        action="store_const",
        dest="entry",
        const="warroom.dryrun:run",
        help="print what the config would make the console run, and exit",
    )
    console.set_defaults(entry="warroom.tui.cli:run_console")

    sim = sub.add_parser("sim", help="serve the simulated fleet on loopback")
    sim.add_argument("--scenario", default="tutorial", help="scenario name or TOML file")
    sim.add_argument("--speed", type=_finite, default=None, help="simulated seconds per second")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sim.add_argument("--admin-port", type=_port, default=0, help="admin port (default: any free)")
    sim.add_argument("--dns-port", type=_port, default=0, help="DNS port (default: any free)")
    sim.add_argument("--token-file", metavar="PATH", help="where to write the admin token")
    sim.set_defaults(entry="warroom.sim.cli:run")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="COMMAND")
    rules = sim_sub.add_parser("rules", help="print a scenario's Prometheus alert rules")
    rules.add_argument("scenario", metavar="SCENARIO", help="scenario name or TOML file")
    rules.add_argument("--for", dest="for_", default="10s", help="how long before firing")
    rules.add_argument("--job", default="warroom-sim", help="the scrape job's name")
    rules.set_defaults(entry="warroom.sim.cli:run_rules")

    sim_run = sim_sub.add_parser(
        "run",
        help="play a scenario headless (no servers) and print its phases as JSON",
        description="Play a scenario's model headless with a timeline of lever changes and "
        "print per service the first degraded / down / recovered times. Example: "
        "warroom sim run aws-us-east-1-2025 --levers aws-us-east-1-2025 --json",
    )
    sim_run.add_argument("scenario", metavar="SCENARIO", help="scenario name or TOML file")
    sim_run.add_argument("--seed", type=int, default=1, help="0 plays the history as written")
    sim_run.add_argument(
        "--levers", metavar="FILE.toml", help="lever timeline ([[lever]] at/service/control/value)"
    )
    sim_run.add_argument(
        "--until", metavar="DURATION", help="simulated time to stop (default: the drill's length)"
    )
    sim_run.add_argument("--json", action="store_true", help="one JSON object (default: a table)")
    sim_run.add_argument(
        "--markdown", action="store_true", help="only the simulated-vs-historic rows, as Markdown"
    )
    sim_run.set_defaults(entry="warroom.sim.cli:run_headless")

    alerts = sub.add_parser("alerts", help="Alertmanager intake")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="COMMAND")
    serve = alerts_sub.add_parser(
        "serve", help="receive Alertmanager webhooks headless, writing to an incident log"
    )
    serve.add_argument("--config", "-c", metavar="FILE", help="warroom.toml with [alerts]")
    serve.add_argument("--log", required=True, metavar="LOG", help="incident log to append to")
    serve.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    serve.set_defaults(entry="warroom.alerts.cli:run_serve")

    probe = sub.add_parser("probe", help="run the probe engine headless")
    _add_target_source(probe)
    probe.add_argument("--log", metavar="LOG", help="append state changes and samples to LOG")
    probe.add_argument("--duration", type=_finite, metavar="S", help="stop after S seconds")
    probe.add_argument("--json", action="store_true", help="one JSON object per line")
    probe.set_defaults(entry="warroom.probe.cli:run")

    log = sub.add_parser("log", help="incident log tools")
    log_sub = log.add_subparsers(dest="log_command", metavar="COMMAND")
    verify = log_sub.add_parser("verify", help="check a log's hash chain; exit 0 when intact")
    verify.add_argument("log", metavar="LOG")
    verify.add_argument(
        "--head",
        metavar="HASH[:SEQ]",
        help="a head recorded elsewhere (e.g. 'log head #N sha256:…'): the log must hold it",
    )
    verify.set_defaults(entry="warroom.log.cli:run_verify")
    show = log_sub.add_parser("show", help="print a log's events, one line each")
    show.add_argument("log", metavar="LOG")
    show.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    show.set_defaults(entry="warroom.log.cli:run_show")
    export = log_sub.add_parser("export", help="write a shared incident (URL) to a JSONL file")
    export.add_argument("url", metavar="URL", help="postgresql://…?incident=ID")
    export.add_argument("-o", "--output", required=True, metavar="FILE")
    export.set_defaults(entry="warroom.store.cli:run_export")
    seed = log_sub.add_parser("import", help="seed an empty shared incident from a JSONL file")
    seed.add_argument("file", metavar="FILE")
    seed.add_argument("url", metavar="URL", help="postgresql://…?incident=ID")
    seed.set_defaults(entry="warroom.store.cli:run_import")

    db = sub.add_parser("db", help="shared store (PostgreSQL) tools")
    db_sub = db.add_subparsers(dest="db_command", metavar="COMMAND")
    db_init = db_sub.add_parser("init", help="create or upgrade the schema (idempotent)")
    db_init.add_argument("url", metavar="URL", help="postgresql://[user@]host[:port]/db")
    db_init.add_argument(
        "--grant", metavar="ROLE", help="let ROLE read and append events (never rewrite them)"
    )
    db_init.set_defaults(entry="warroom.store.cli:run_db_init")

    note = sub.add_parser("note", help="append a note to an existing incident log")
    note.add_argument("log", metavar="LOG")
    note.add_argument("--create", action="store_true", help="start LOG if it does not exist")
    note.add_argument("text", nargs="+", metavar="TEXT")
    note.set_defaults(entry="warroom.log.cli:run_note")

    runbook = sub.add_parser("runbook", help="runbook tools")
    rb_sub = runbook.add_subparsers(dest="runbook_command", metavar="COMMAND")
    lint = rb_sub.add_parser("lint", help="check runbooks; prints file:line: message")
    lint.add_argument("paths", nargs="*", metavar="PATH")
    lint.add_argument(
        "--config", "-c", metavar="FILE", help="also check levers, targets and services against it"
    )
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
        print(f"warroom: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
