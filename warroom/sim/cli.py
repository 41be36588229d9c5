"""`warroom sim serve`: serve a simulated fleet on 127.0.0.1 until Ctrl-C / SIGTERM.

The first stdout line is `admin: http://127.0.0.1:PORT token: PATH` (flushed at once: other
programs parse it). `warroom sim list` prints one line per scenario. Many services for load
tests: `--scenario scale-1000` generates a fleet of 1,000 services (any N from 1 to 20,000).
`warroom sim run SCENARIO [--seed N] [--levers FILE] [--until D] [--json]` plays the model
headless (no servers) and prints per service when it degraded, went down and recovered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from warroom.durations import format_duration
from warroom.errors import WarroomError
from warroom.signals import stop_on_signals
from warroom.sim.scenario import builtin_names, load_scenario
from warroom.sim.server import SimServer
from warroom.untrusted import one_line
from warroom.words import plural


def list_scenarios() -> list[str]:
    """One line per scenario: name, drill duration (simulated), one-line description."""
    lines = []
    for name in builtin_names():
        scenario = load_scenario(name)
        about = one_line(scenario.description, 100)
        lines.append(f"{one_line(name):<20} {format_duration(scenario.duration):>7}  {about}")
    lines.append(f"{'scale-N':<20} {'10m00s':>7}  generated fleet of N services (e.g. scale-1000)")
    return lines


async def serve(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    server = SimServer(scenario, speed=args.speed, seed=args.seed, token_path=args.token_file)
    await server.start(admin_port=args.admin_port, dns_port=args.dns_port)
    try:
        with stop_on_signals() as stop:
            print(f"admin: {server.admin_url} token: {server.token_path}", flush=True)
            print(
                f"scenario: {scenario.name} ({plural(len(scenario.services), 'service')}, speed "
                f"{server.speed:g}x, seed {server.seed}) dns: {server.dns_address}",
                flush=True,
            )
            await stop.wait()
    finally:
        await server.stop()
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Entry point of `warroom sim list`."""
    for line in list_scenarios():
        print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of `warroom sim serve`."""
    if args.speed is not None and not args.speed > 0:
        raise WarroomError(f"--speed must be > 0, not {args.speed}")
    for flag, port in (("--admin-port", args.admin_port), ("--dns-port", args.dns_port)):
        if not 0 <= port <= 65535:
            raise WarroomError(f"{flag} must be 0..65535, not {port}")
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


def run_rules(args: argparse.Namespace) -> int:
    """Entry point of `warroom sim rules SCENARIO`: the scenario's alert rules as YAML."""
    from warroom.durations import parse_duration
    from warroom.sim.prometheus import alert_rules

    try:
        for_s = parse_duration(args.for_)
    except ValueError:
        raise WarroomError(f"--for: not a duration: {args.for_!r} (use e.g. 10s)") from None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_:-]*", args.job):
        raise WarroomError(f"--job: not a job name: {args.job!r}")
    sys.stdout.write(alert_rules(load_scenario(args.scenario), for_s=for_s, job=args.job))
    return 0


def run_headless(args: argparse.Namespace) -> int:
    """Entry point of `warroom sim run`: play the model without servers, print the phases."""
    from warroom.durations import parse_duration
    from warroom.sim.runner import load_levers, run_drill

    scenario = load_scenario(args.scenario)
    levers = load_levers(args.levers) if args.levers else None
    until = None
    if args.until is not None:
        try:
            until = parse_duration(args.until)
        except ValueError as exc:
            raise WarroomError(f"--until: {exc}") from None
        if until <= 0:
            raise WarroomError("--until must be > 0")
    result = run_drill(scenario, seed=args.seed, levers=levers, until=until)
    data = result.as_dict()
    if args.json:
        print(json.dumps(data, indent=None, separators=(",", ":")))
        return 0
    if getattr(args, "markdown", False):
        for line in format_markdown(data):
            print(line)
        return 0
    for line in format_table(data):
        print(line)
    return 0


def compare_moves(scenario_name: str, seed: int = 0) -> list[dict[str, Any]]:
    """The historic moves and each shipped wrong move: when the history's services recover."""
    from warroom.sim.runner import DrillResult, load_levers, run_drill, wrong_moves

    scenario = load_scenario(scenario_name)
    if scenario.history is None or scenario.history.levers is None:
        raise WarroomError(f"{scenario.name}: no historic levers to compare with")
    plays = [("historic moves", load_levers(scenario.history.levers))]
    plays += wrong_moves(scenario.name)
    results = [(name, run_drill(scenario, seed=seed, levers=levers)) for name, levers in plays]

    def outcome(result: DrillResult, svc: str) -> tuple[float | None, str]:
        record = result.services[svc]
        return result.recovered(svc), record.final if record.first_degraded is not None else "-"

    # The history's services, and any other whose recovery a move changes (checkout).
    watched = list(dict.fromkeys(e.service for e in scenario.history.expect))
    watched += [
        svc
        for svc in scenario.services
        if svc not in watched and len({outcome(r, svc) for _, r in results}) > 1
    ]
    rows = []
    for name, result in results:
        cells = {}
        for svc in watched:
            recovered, final = outcome(result, svc)
            cells[svc] = "never" if final not in ("ok", "-") else result.clock(recovered) or "-"
        rows.append(
            {
                "move": name,
                "recovered": cells,
                "recovered_s": {svc: result.recovered(svc) for svc in watched},
                "all_recovered": result.clock(result.all_recovered()),
                "all_recovered_s": result.all_recovered(),
                "unhealthy_h": round(result.unhealthy_total() / 3600.0, 1),
            }
        )
    return rows


def run_moves(args: argparse.Namespace) -> int:
    """Entry point of `warroom sim moves`: the historic moves against each wrong move."""
    rows = compare_moves(args.scenario, seed=args.seed)
    if args.json:
        print(json.dumps(rows, separators=(",", ":")))
        return 0
    services = list(rows[0]["recovered"])
    if args.markdown:
        print(f"| `{args.scenario}` | " + " | ".join(services) + " | all back | unhealthy |")
        print("|---" * (len(services) + 3) + "|")
        for row in rows:
            cells = [row["recovered"][s] for s in services]
            print(
                f"| {row['move']} | " + " | ".join(cells) + f" | {row['all_recovered'] or 'never'}"
                f" | {row['unhealthy_h']} h |"
            )
        return 0
    width = max(len(r["move"]) for r in rows)
    cols = [max(16, len(s)) for s in services]
    head = "  ".join(f"{s:>{w}}" for s, w in zip(services, cols, strict=True))
    print(f"{'':<{width}}  {head}  {'all back':>16}")
    for row in rows:
        line = "  ".join(f"{row['recovered'][s]:>{w}}" for s, w in zip(services, cols, strict=True))
        print(f"{row['move']:<{width}}  {line}  {row['all_recovered'] or 'never':>16}")
    return 0


def format_markdown(data: dict[str, Any]) -> list[str]:
    """One Markdown table row per historic phase: scenario, phase, real, simulated, held."""
    rows = []
    for check in data["history"]:
        window = f"{check['historic']} (± {format_duration(check['tolerance_s'])})"
        if check.get("after_s") is not None:
            window = f"after {check['historic']} (by {format_duration(check['tolerance_s'])})"
        rows.append(
            f"| `{data['scenario']}` | {check['service']} {check['event']} | {window} | "
            f"{check['simulated'] or 'never'} | "
            f"{'yes' if check['ok'] else 'NO'} |"
        )
    return rows


def format_table(data: dict[str, Any]) -> list[str]:
    """The runner's result as aligned text: one line per service, then levers and history."""
    lines = [f"{data['scenario']} seed {data['seed']} (start {data['start'] or 'T+0'})"]
    lines.append(f"{'service':<18} {'degraded':>16} {'down':>16} {'recovered':>16}  final")
    for name, svc in data["services"].items():
        cells = [svc["first_degraded"] or "-", svc["first_down"] or "-", svc["recovered"] or "-"]
        lines.append(f"{name:<18} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}  {svc['final']}")
    for lever in data["levers"]:
        mark = "" if lever["ok"] else f"  REFUSED: {lever['error']}"
        lines.append(
            f"lever {lever['at']}: {lever['service']}/{lever['control']} = {lever['value']}{mark}"
        )
    for check in data["history"]:
        verdict = "ok" if check["ok"] else "OFF"
        lines.append(
            f"history {check['service']} {check['event']}: real {check['historic']}, "
            f"simulated {check['simulated'] or '-'} [{verdict}]"
        )
    return lines
