"""`warroom console --dry-run`: what a config would make the console run, without running it.

A `warroom.toml` is read from the current folder by default and its `[[controls]]` name
programs and URLs; a responder (or a reviewer of the file) sees every one of them here
first. Reading a config never runs anything: reads and applies happen only once the console
is up (applies only when a change is confirmed).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from warroom.config import (
    WarroomConfig,
    config_from_sim,
    find_default_config,
    load_config,
)
from warroom.controls.client import ControlCallError, read_token
from warroom.controls.model import (
    ArgvApply,
    ArgvRead,
    ControlConfig,
    HttpApply,
    SilenceApply,
    SilenceRead,
)
from warroom.errors import WarroomError
from warroom.untrusted import one_line
from warroom.words import plural


def _apply_line(control: ControlConfig) -> str:
    apply = control.apply
    if isinstance(apply, ArgvApply):
        return f"run {shlex.join(apply.argv)}"
    if isinstance(apply, SilenceApply):
        return f"HTTP POST {apply.alertmanager}/api/v2/silences (create / extend / expire)"
    assert isinstance(apply, HttpApply)
    return f"HTTP {apply.method} {apply.url}"


def _read_line(control: ControlConfig) -> str:
    read = control.read
    if isinstance(read, ArgvRead):
        return f"run {shlex.join(read.argv)}"
    if isinstance(read, SilenceRead):
        return f"HTTP GET {read.alertmanager}/api/v2/silences"
    return f"HTTP GET {read.url}"


def planned_actions(config: WarroomConfig) -> list[str]:
    """One line per thing the console would do with this config: probes, reads, applies."""
    lines: list[str] = []
    for target in config.resolved_targets():
        lines.append(
            f"probe {target.name}: {target.kind} {target.address} every {target.interval:g}s"
        )
    for control in config.controls:
        lever = f"{control.service}/{control.control}"
        lines.append(
            f"read {lever} (once the console is up, then after each change): {_read_line(control)}"
        )
        lines.append(f"apply {lever} (only when you confirm a change): {_apply_line(control)}")
    return [one_line(line) for line in lines]


def run(args: argparse.Namespace) -> int:
    """Print what `warroom console` would run with these arguments, then exit."""
    sim_url = getattr(args, "sim", None)
    config_path = getattr(args, "config", None)
    token = getattr(args, "token", None)
    if token:
        try:
            read_token(token)
        except ControlCallError as exc:
            raise WarroomError(str(exc)) from None
    if sim_url:
        config = config_from_sim(sim_url)
        source = f"the simulated fleet at {sim_url}"
    else:
        path = Path(config_path) if config_path else find_default_config()
        if path is None:
            raise WarroomError(
                "no config: pass --config FILE or --sim URL, or create ./warroom.toml"
            )
        config = load_config(path)
        source = str(path)
    actions = planned_actions(config)
    print(
        one_line(
            f"{source}: the console would do {plural(len(actions), 'thing')} (nothing run now):"
        )
    )
    for line in actions:
        print(f"  {line}")
    if sim_url:
        print("  levers: the fleet's own, through its admin API (with --token)")
    return 0
