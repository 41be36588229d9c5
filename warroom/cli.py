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
from pathlib import Path
from typing import NoReturn

from warroom import __version__
from warroom.errors import WarroomError
from warroom.untrusted import one_line

EXIT_USAGE = 2
_AS_HELP = "who is acting, recorded on every event (default: $USER@host)"


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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; each option's default shown when it has a real one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            text
            and "%(default)" not in text
            and "default:" not in text
            and default is not None
            and default is not False
            and default != argparse.SUPPRESS
            and action.option_strings
            and action.nargs != 0  # a flag: its "default" is the value when absent
        ):
            text += " (default: %(default)s)"
        return text


class _ServeFlag(argparse.Action):
    """A serving option given to `warroom sim` itself: one line naming `warroom sim serve`."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.exit(
            EXIT_USAGE,
            f"{parser.prog}: {option_string} is an option of `warroom sim serve` "
            f"(to serve the fleet: warroom sim serve {option_string} {one_line(str(values))})\n",
        )


def _add_fleet_options(parser: argparse.ArgumentParser, scenario: str, scenario_help: str) -> None:
    """The options of a simulated fleet, the same for `demo` and `sim serve`."""
    parser.add_argument("--scenario", default=scenario, help=scenario_help)
    parser.add_argument(
        "--speed",
        type=_finite,
        default=None,
        help="simulated seconds per second (default: the scenario's)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fleet")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    *examples: str,
    actor: bool = False,
) -> argparse.ArgumentParser:
    """One subcommand's parser: its help as description, defaults shown, examples as epilog.

    With `actor`, `--as NAME` is accepted after the subcommand too; its default is SUPPRESS so
    a `--as` given before the subcommand is not overwritten by the subparser's default.
    """
    parser = sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=_examples(*examples) if examples else None,
        formatter_class=_HelpFormatter,
    )
    if actor:
        parser.add_argument(
            "--as", dest="actor", metavar="NAME", default=argparse.SUPPRESS, help=_AS_HELP
        )
    return parser


def _group(
    parser: argparse.ArgumentParser, dest: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The subcommands of a group command; the group alone prints its own help (see `main`)."""
    commands = parser.add_subparsers(dest=dest, metavar="COMMAND")
    parser.set_defaults(group=(parser, commands))
    return commands


def _scenario_names() -> str:
    """The shipped scenarios, read from the package folder (no pydantic import for --help)."""
    folder = Path(__file__).parent / "sim" / "scenarios"
    names = sorted(p.stem for p in folder.glob("*.toml"))
    return ", ".join([*names, "scale-N"])


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
        epilog=_examples(
            "warroom demo                       # a simulated outage, console open on it",
            "warroom console -c warroom.toml    # the console on your own targets",
            "warroom note incidents/x.jsonl db failing over --as alice",
            "warroom COMMAND --help             # each command's options and examples",
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"warroom {__version__}")
    parser.add_argument("--as", dest="actor", metavar="NAME", help=_AS_HELP)
    sub = _group(parser, "command")
    scenarios = _scenario_names()

    demo = _command(
        sub,
        "demo",
        "start the simulated fleet and open the console on it",
        "warroom demo",
        "warroom demo --scenario tutorial --speed 10",
        "warroom demo --log incidents/drill.jsonl --as alice",
        actor=True,
    )
    _add_fleet_options(demo, "aws-us-east-1-2025", f"scenario name: {scenarios}")
    demo.add_argument("--log", metavar="LOG", help="incident log (default: new one in ./incidents)")
    demo.set_defaults(entry="warroom.tui.cli:run_demo")

    console = _command(
        sub,
        "console",
        "open the console on real targets",
        "warroom console -c warroom.toml --log incidents/inc-42.jsonl",
        "warroom console --log 'postgresql://db.internal/warroom?incident=inc-42'",
        "warroom console --sim http://127.0.0.1:PORT --token TOKEN_FILE",
        "warroom console -c warroom.toml --dry-run",
        actor=True,
    )
    _add_target_source(console)
    console.add_argument(
        "--log",
        metavar="LOG",
        help="incident log file or postgresql:// URL; an existing one is resumed "
        "(default: [store] url of warroom.toml, else a new file in ./incidents)",
    )
    console.add_argument(
        "--token",
        metavar="PATH",
        help="with --sim: the admin token file `warroom sim serve` printed (enables its levers)",
    )
    console.add_argument(
        "--dry-run",
        action="store_const",
        dest="entry",
        const="warroom.dryrun:run",
        help="print what the config would make the console run, and exit",
    )
    console.set_defaults(entry="warroom.tui.cli:run_console")

    sim = _command(
        sub,
        "sim",
        "the simulated fleet: serve it, list its scenarios, play one headless",
        "warroom sim serve --scenario aws-us-east-1-2025 --token-file /tmp/sim.token",
        "warroom sim list",
        "warroom sim run att-2024 --levers att-2024",
    )
    sim_sub = _group(sim, "sim_command")
    for flag in ("--scenario", "--speed", "--seed", "--admin-port", "--dns-port", "--token-file"):
        sim.add_argument(flag, action=_ServeFlag, help=argparse.SUPPRESS)
    sim.add_argument(
        "--list",
        action="store_const",
        dest="entry",
        const="warroom.sim.cli:run_list",
        help=argparse.SUPPRESS,
    )
    sim_serve = _command(
        sim_sub,
        "serve",
        "serve the simulated fleet on loopback until Ctrl-C",
        "warroom sim serve --scenario aws-us-east-1-2025 --token-file /tmp/sim.token",
        "warroom sim serve --scenario scale-1000 --speed 1",
    )
    _add_fleet_options(sim_serve, "tutorial", f"scenario name or TOML file: {scenarios}")
    sim_serve.add_argument(
        "--admin-port", type=_port, default=0, help="admin port (default: any free)"
    )
    sim_serve.add_argument("--dns-port", type=_port, default=0, help="DNS port (default: any free)")
    sim_serve.add_argument(
        "--token-file",
        metavar="PATH",
        help="where to write the admin token (default: a new temporary file)",
    )
    sim_serve.set_defaults(entry="warroom.sim.cli:run")
    sim_list = _command(
        sim_sub,
        "list",
        "list the scenarios: name, simulated length, what happens",
        "warroom sim list",
    )
    sim_list.set_defaults(entry="warroom.sim.cli:run_list")
    rules = _command(
        sim_sub,
        "rules",
        "print a scenario's Prometheus alert rules",
        "warroom sim rules tutorial --for 30s > rules.yml",
    )
    rules.add_argument(
        "scenario", metavar="SCENARIO", help=f"scenario name or TOML file: {scenarios}"
    )
    rules.add_argument("--for", dest="for_", default="10s", help="how long before firing")
    rules.add_argument("--job", default="warroom-sim", help="the scrape job's name")
    rules.set_defaults(entry="warroom.sim.cli:run_rules")

    sim_run = _command(
        sim_sub,
        "run",
        "play a scenario headless (no servers) and print its phases",
        "warroom sim run aws-us-east-1-2025 --levers aws-us-east-1-2025 --json",
        "warroom sim run tutorial --seed 7 --until 4m",
    )
    sim_run.add_argument(
        "scenario", metavar="SCENARIO", help=f"scenario name or TOML file: {scenarios}"
    )
    sim_run.add_argument("--seed", type=int, default=1, help="0 plays the history as written")
    sim_run.add_argument(
        "--levers",
        metavar="FILE.toml",
        help="lever timeline ([[lever]] at/service/control/value), or a scenario name for "
        "its shipped historic moves",
    )
    sim_run.add_argument(
        "--until", metavar="DURATION", help="simulated time to stop (default: the drill's length)"
    )
    sim_run.add_argument("--json", action="store_true", help="one JSON object (default: a table)")
    sim_run.add_argument(
        "--markdown", action="store_true", help="only the simulated-vs-historic rows, as Markdown"
    )
    sim_run.set_defaults(entry="warroom.sim.cli:run_headless")
    moves = _command(
        sim_sub,
        "moves",
        "play the historic moves and each shipped wrong move; print when services recover",
        "warroom sim moves aws-us-east-1-2025",
        "warroom sim moves att-2024 --markdown",
    )
    moves.add_argument(
        "scenario", metavar="SCENARIO", help=f"scenario name or TOML file: {scenarios}"
    )
    moves.add_argument("--seed", type=int, default=0, help="0 plays the history as written")
    moves.add_argument("--json", action="store_true", help="one JSON array (default: a table)")
    moves.add_argument("--markdown", action="store_true", help="a Markdown table")
    moves.set_defaults(entry="warroom.sim.cli:run_moves")

    alerts = _command(sub, "alerts", "Alertmanager intake", "warroom alerts serve --log LOG")
    alerts_sub = _group(alerts, "alerts_command")
    serve = _command(
        alerts_sub,
        "serve",
        "receive Alertmanager webhooks headless, writing to an incident log",
        "warroom alerts serve -c warroom.toml --log incidents/inc-42.jsonl",
        actor=True,
    )
    serve.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="warroom.toml with [alerts] (default: ./warroom.toml)",
    )
    serve.add_argument("--log", required=True, metavar="LOG", help="incident log to append to")
    serve.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    serve.set_defaults(entry="warroom.alerts.cli:run_serve")

    probe = _command(
        sub,
        "probe",
        "run the probe engine headless",
        "warroom probe -c warroom.toml --duration 30",
        "warroom probe -c warroom.toml --log incidents/inc-42.jsonl --json",
        actor=True,
    )
    _add_target_source(probe)
    probe.add_argument("--log", metavar="LOG", help="append state changes and samples to LOG")
    probe.add_argument(
        "--duration",
        type=_finite,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    probe.add_argument("--json", action="store_true", help="one JSON object per line")
    probe.set_defaults(entry="warroom.probe.cli:run")

    log = _command(
        sub,
        "log",
        "incident log tools",
        "warroom log show incidents/inc-42.jsonl",
        "warroom log verify incidents/inc-42.jsonl",
    )
    log_sub = _group(log, "log_command")
    verify = _command(
        log_sub,
        "verify",
        "check a log's hash chain; exit 0 when intact",
        "warroom log verify incidents/inc-42.jsonl",
        "warroom log verify incidents/inc-42.jsonl --head sha256:3f2a…:228",
    )
    verify.add_argument("log", metavar="LOG", help="incident log file or postgresql:// URL")
    verify.add_argument(
        "--head",
        metavar="HASH[:SEQ]",
        help="a head recorded elsewhere (e.g. 'log head #N sha256:…'): the log must hold it",
    )
    verify.set_defaults(entry="warroom.log.cli:run_verify")
    show = _command(
        log_sub,
        "show",
        "print a log's events, one line each",
        "warroom log show incidents/inc-42.jsonl",
        "warroom log show -f incidents/inc-42.jsonl",
        "warroom log show --utc incidents/inc-42.jsonl > inc-42.txt",
    )
    show.add_argument("log", metavar="LOG", help="incident log file or postgresql:// URL")
    show.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    show.add_argument(
        "--utc",
        action="store_true",
        help="full UTC timestamps (ISO 8601), for scripts (default: local HH:MM:SS, "
        "with the date on days other than the incident's first)",
    )
    show.set_defaults(entry="warroom.log.cli:run_show")
    export = _command(
        log_sub,
        "export",
        "write a shared incident (URL) to a JSONL file",
        "warroom log export 'postgresql://db.internal/warroom?incident=inc-42' -o inc-42.jsonl",
    )
    export.add_argument("url", metavar="URL", help="postgresql://…?incident=ID")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    export.set_defaults(entry="warroom.store.cli:run_export")
    seed = _command(
        log_sub,
        "import",
        "seed an empty shared incident from a JSONL file",
        "warroom log import inc-42.jsonl 'postgresql://db.internal/warroom?incident=inc-42'",
    )
    seed.add_argument("file", metavar="FILE", help="a JSONL incident log (verified first)")
    seed.add_argument("url", metavar="URL", help="postgresql://…?incident=ID")
    seed.set_defaults(entry="warroom.store.cli:run_import")

    db = _command(
        sub,
        "db",
        "shared store (PostgreSQL) tools",
        "warroom db init postgresql://warroom@db.internal/warroom",
    )
    db_sub = _group(db, "db_command")
    db_init = _command(
        db_sub,
        "init",
        "create or upgrade the schema (idempotent)",
        "warroom db init postgresql://admin@db.internal/warroom --grant responders",
    )
    db_init.add_argument("url", metavar="URL", help="postgresql://[user@]host[:port]/db")
    db_init.add_argument(
        "--grant", metavar="ROLE", help="let ROLE read and append events (never rewrite them)"
    )
    db_init.set_defaults(entry="warroom.store.cli:run_db_init")

    note = _command(
        sub,
        "note",
        "append a note to an existing incident log",
        "warroom note incidents/inc-42.jsonl db primary failing over",
        "warroom note incidents/inc-42.jsonl 'paged the DB on-call' --as alice",
        "warroom note --create incidents/inc-43.jsonl starting a new incident",
        actor=True,
    )
    note.add_argument("log", metavar="LOG", help="incident log file or postgresql:// URL")
    note.add_argument("--create", action="store_true", help="start LOG if it does not exist")
    note.add_argument("text", nargs="+", metavar="TEXT", help="the note (words are joined)")
    note.set_defaults(entry="warroom.log.cli:run_note", words_dest="text")

    runbook = _command(
        sub,
        "runbook",
        "runbook tools",
        "warroom runbook list",
        "warroom runbook lint runbooks/ -c warroom.toml",
    )
    rb_sub = _group(runbook, "runbook_command")
    lint = _command(
        rb_sub,
        "lint",
        "check runbooks; prints file:line: message",
        "warroom runbook lint",
        "warroom runbook lint runbooks/bad-deploy.md -c warroom.toml",
    )
    lint.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders (default: the runbook folders)"
    )
    lint.add_argument(
        "--config", "-c", metavar="FILE", help="also check levers, targets and services against it"
    )
    lint.set_defaults(entry="warroom.runbooks.cli:run_lint")
    rb_list = _command(
        rb_sub,
        "list",
        "list the runbooks warroom finds",
        "warroom runbook list",
        "warroom runbook list ~/team-runbooks",
    )
    rb_list.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders (default: the runbook folders)"
    )
    rb_list.set_defaults(entry="warroom.runbooks.cli:run_list")

    replay = _command(
        sub,
        "replay",
        "replay an incident log read-only",
        "warroom replay incidents/inc-42.jsonl",
        "warroom replay -f 'postgresql://db.internal/warroom?incident=inc-42'",
    )
    replay.add_argument("log", metavar="LOG", help="incident log file or postgresql:// URL")
    replay.add_argument("--follow", "-f", action="store_true", help="follow a live incident")
    replay.set_defaults(entry="warroom.replay.cli:run")

    report = _command(
        sub,
        "report",
        "write a postmortem draft from an incident log",
        "warroom report incidents/inc-42.jsonl -o postmortem.md",
        "warroom report incidents/inc-42.jsonl --json | jq .controls",
    )
    report.add_argument("log", metavar="LOG", help="incident log file or postgresql:// URL")
    report.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    report.add_argument("--json", action="store_true", help="the same content as JSON")
    report.set_defaults(entry="warroom.report.cli:run")

    brief = sub.add_parser("brief", help="print a handoff brief for the next shift (one screen)")
    brief.add_argument("log", metavar="LOG")
    brief.add_argument(
        "--at-end", action="store_true", help="as of the log's last event instead of now"
    )
    brief.set_defaults(entry="warroom.report.cli:run_brief")
    return parser


def _missing_command(
    group: argparse.ArgumentParser, commands: argparse._SubParsersAction[argparse.ArgumentParser]
) -> int:
    """A group command alone (`warroom log`): its own help, then one line saying what to add.

    Exit 2 on stderr, as git does for `git worktree` with no subcommand: a script that runs
    the bare group has a bug and must not pass for one that did something.
    """
    group.print_help(sys.stderr)
    names = ", ".join(commands.choices)
    print(f"{group.prog}: missing COMMAND (one of: {names})", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    words = getattr(args, "words_dest", None)
    if extra and words and not any(item.startswith("-") for item in extra):
        # `warroom note LOG some text --as bob more text`: argparse stops a `+` positional at
        # the first option, so the words after it come back here; they are the same note.
        getattr(args, words).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    entry = getattr(args, "entry", None)
    if entry is None:
        return _missing_command(*args.group)
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
