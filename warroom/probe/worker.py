"""The console's probe engine, as a child process writing to the incident log.

    python -m warroom.probe.worker --log LOG [--sample-interval S]  < config JSON + newline

Probing 1,000 targets a second takes ~40 % of a core. On the console's own event loop that
work sits between a key press and its frame, and the console's paints sit between a probe's
timer and its start. Here it has a core (and a loop) of its own: state changes and samples are
group-committed to LOG, which the console follows like any other writer's events.

The console writes the configuration (a `WarroomConfig` as JSON, one line) on stdin and keeps
the pipe open: when it closes — the console quit, crashed or was killed — the worker flushes
what it has and exits. So does SIGTERM or SIGINT. A problem is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from warroom.config import WarroomConfig, describe_validation_error
from warroom.errors import WarroomError
from warroom.log.store import GroupCommitter, IncidentLog
from warroom.probe.engine import ProbeEngine
from warroom.signals import stop_on_signals

#: How often probe events are committed to the log (the console polls it every 0.25 s).
COMMIT_INTERVAL = 0.2
#: A log write failing for this long (a full disk) stops the worker with its error, rather
#: than queueing probe events without bound while the console shows the last ones as live.
WRITE_FAILURE_LIMIT_S = 2.0


def read_config(line: bytes) -> WarroomConfig:
    if not line.strip():
        raise WarroomError("probe worker: no configuration on stdin")
    try:
        return WarroomConfig.model_validate_json(line)
    except ValidationError as exc:
        problem = describe_validation_error(exc, WarroomConfig)
        raise WarroomError(f"probe worker: stdin: {problem}") from None


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _stop_when_writes_fail(committer: GroupCommitter, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    failing_since: float | None = None
    while True:
        await asyncio.sleep(COMMIT_INTERVAL)
        if committer.error is None:
            failing_since = None
        elif failing_since is None:
            failing_since = loop.time()
        elif loop.time() - failing_since >= WRITE_FAILURE_LIMIT_S:
            stop.set()  # leaving the committer's block raises the write error
            return


async def run(log_path: Path, sample_interval: float) -> int:
    with stop_on_signals() as stop:
        stdin = await _stdin_reader()
        config = read_config(await stdin.readline())

        async def parent_gone() -> None:
            while await stdin.read(4096):  # anything more on stdin is ignored; EOF ends it
                pass
            stop.set()

        log = IncidentLog.open(log_path, create=False)
        watch = asyncio.create_task(parent_gone(), name="probe-worker-stdin")
        try:
            async with (
                GroupCommitter(log, interval=COMMIT_INTERVAL) as committer,
                ProbeEngine(
                    config.resolved_targets(),
                    committer.submit_many,
                    sample_interval=sample_interval,
                ),
            ):
                writes = asyncio.create_task(_stop_when_writes_fail(committer, stop))
                await stop.wait()
                writes.cancel()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            log.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warroom.probe.worker", description=__doc__)
    parser.add_argument("--log", required=True, help="the incident log to append probe events to")
    parser.add_argument("--sample-interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(Path(args.log), args.sample_interval))
    except WarroomError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
