"""`warroom alerts serve`: the Alertmanager intake headless, for a bastion.

Receives webhooks on `[alerts] listen`, polls `[alerts] alertmanager`, and appends every
alert change to the incident log (created if needed; an existing one is continued, and the
alerts it already records are not logged again). The first stdout line is
`alerts: URL log: LOG` (flushed at once); rejected requests are logged on stderr, one line
each. Stops on Ctrl-C / SIGTERM or after `--duration`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from warroom.alerts.intake import AlertIntake
from warroom.alerts.receiver import printable
from warroom.config import find_default_config, load_config
from warroom.errors import WarroomError
from warroom.events import AlertObserved, BaseEvent
from warroom.log.store import IncidentLog
from warroom.signals import stop_on_signals
from warroom.state import fold


async def serve(config_path: Path, log_path: Path, duration: float | None) -> int:
    config = load_config(config_path)
    if config.alerts is None:
        raise WarroomError(f"{config_path}: no [alerts] section (listen, token, alertmanager)")
    log = IncidentLog.open(log_path, create=True)
    try:
        seed = fold(log.read()).alerts

        def sink(events: list[AlertObserved]) -> None:
            batch: list[BaseEvent] = list(events)
            for event in log.append_many(batch, sync=True):
                print(printable(event.summary()), flush=True)

        services = {t.service or t.name for t in config.targets}
        async with AlertIntake(config.alerts, sink, known_services=services, seed=seed) as intake:
            where = f"alerts: {intake.receiver.url} log: {log_path}"
            if intake.poller is not None:
                where += f" polling: {intake.poller.base_url}"
            print(where, flush=True)
            with stop_on_signals() as stop, contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await stop.wait()
    finally:
        log.close()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Entry point of `warroom alerts serve`."""
    config_path = Path(args.config) if args.config else find_default_config()
    if config_path is None:
        raise WarroomError("no warroom.toml here: pass --config FILE (with an [alerts] section)")
    if args.duration is not None and not args.duration > 0:
        raise WarroomError(f"--duration must be > 0, not {args.duration}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warroom: %(message)s"))
    logger = logging.getLogger("warroom.alerts")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return asyncio.run(serve(config_path, Path(args.log), args.duration))
    except KeyboardInterrupt:
        return 130
