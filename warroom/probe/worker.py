"""The console's probe engine, as a child process writing to the incident log.

    python -m warroom.probe.worker --log LOG [--sample-interval S]  < config JSON + newline

Probing 1,000 targets a second takes ~40 % of a core. On the console's own event loop that
work sits between a key press and its frame, and the console's paints sit between a probe's
timer and its start. Here it has a core (and a loop) of its own: state changes and samples are
group-committed to LOG, which the console follows like any other writer's events.

The console writes the configuration (a `WarroomConfig` as JSON, one line) on stdin and keeps
the pipe open: when it closes — the console quit, crashed or was killed — the worker flushes
what it has and exits. So does SIGTERM or SIGINT. A problem is one line on stderr and exit 2.

When one process cannot keep up (5,000 targets at 2 s is 2,500 fresh connections a second,
more than a core), the worker shards the targets: it starts `--shards N` - 1 more copies of
itself (`--shard I/N`), each probing every Nth target and tied to this one by the same stdin
lifeline, and runs the first shard itself. Every shard appends to LOG under its flock and
reports its own `probe_engine_health`. The default is one shard per usable core, but no more
than the probe rate needs (`SHARD_RATE` probes a second each); `WARROOM_PROBE_SHARDS` or
`--shards` sets it. If a shard dies, the worker stops all of them and exits 2, so whoever
supervises it sees one failure and restarts one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from warroom.config import Target, WarroomConfig, describe_validation_error
from warroom.errors import WarroomError
from warroom.probe.engine import ProbeEngine
from warroom.processes import usable_cores
from warroom.signals import stop_on_signals
from warroom.store import group_committer, open_store

if TYPE_CHECKING:
    from warroom.log.store import GroupCommitter

#: How often probe events are committed to the log (the console polls it every 0.25 s).
COMMIT_INTERVAL = 0.2
#: Probes a second one shard takes before another is worth its process: ~0.3 ms of CPU each
#: (a third of a core), and a second process costs its own loop overhead, ~50 % more CPU per
#: probe at 1,000 a second (tests/bench/bench_probe_nginx.py --mode scale --shards 1 / 2).
SHARD_RATE = 1000.0
SHARDS_ENV = "WARROOM_PROBE_SHARDS"


def default_shards(targets: Sequence[Target], cores: int | None = None) -> int:
    """One shard per core, but no more than the probe rate needs (a small config: one)."""
    rate = sum(1.0 / t.interval for t in targets)
    return max(1, min(cores or usable_cores(), math.ceil(rate / SHARD_RATE)))


def shard_of(targets: Sequence[Target], shard: int, shards: int) -> list[Target]:
    """Every `shards`-th target from `shard` on: even shares whatever the config's order."""
    return list(targets[shard::shards])


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based, as shown to people) -> (I - 1, N)."""
    index, slash, count = text.partition("/")
    try:
        shard, shards = int(index) - 1, int(count)
    except ValueError:
        shard, shards = -1, 0
    if not slash or shards < 1 or not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N, got {text!r}")
    return shard, shards


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


class _Shards:
    """The other shards' processes, started by the first shard and tied to its stdin."""

    def __init__(self) -> None:
        self.processes: dict[int, asyncio.subprocess.Process] = {}

    async def start(self, line: bytes, log_path: str, sample_interval: float, shards: int) -> None:
        for shard in range(1, shards):
            try:
                process = await self._spawn(log_path, sample_interval, shard, shards)
            except OSError as exc:
                raise WarroomError(
                    f"cannot start probe shard {shard + 1}/{shards}: {exc}"
                ) from None
            self.processes[shard] = process
            assert process.stdin is not None
            process.stdin.write(line if line.endswith(b"\n") else line + b"\n")
            await process.stdin.drain()

    @staticmethod
    async def _spawn(
        log_path: str, sample_interval: float, shard: int, shards: int
    ) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "warroom.probe.worker",
            "--log",
            str(log_path),
            "--sample-interval",
            str(sample_interval),
            "--shard",
            f"{shard + 1}/{shards}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )

    async def first_exit(self) -> str:
        """Wait until any shard ends; say which, and how."""
        waits = {asyncio.ensure_future(p.wait()): shard for shard, p in self.processes.items()}
        if not waits:
            await asyncio.Event().wait()
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        task = next(iter(done))
        shard = waits[task]
        return f"probe shard {shard + 1}/{len(self.processes) + 1} exited ({task.result()})"

    async def stop(self, grace: float = 3.0) -> None:
        """Close each shard's stdin (it flushes and exits), then TERM, then KILL."""
        for process in self.processes.values():
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes.values():
            for signal_it in (None, process.terminate, process.kill):
                if signal_it is not None:
                    with contextlib.suppress(ProcessLookupError):
                        signal_it()
                try:
                    await asyncio.wait_for(process.wait(), grace)
                    break
                except TimeoutError:
                    continue


async def run(
    log_path: str,
    sample_interval: float,
    shards: int | None = None,
    shard: tuple[int, int] | None = None,
) -> int:
    """Probe the configuration read from stdin until stdin closes; 2 if a shard died."""
    with stop_on_signals() as stop:
        stdin = await _stdin_reader()
        line = await stdin.readline()
        config = read_config(line)

        async def parent_gone() -> None:
            while await stdin.read(4096):  # anything more on stdin is ignored; EOF ends it
                pass
            stop.set()

        targets = config.resolved_targets()
        if shard is None:
            count = shards if shards is not None else default_shards(targets)
            index, count = 0, max(1, min(count, len(targets)))
        else:
            index, count = shard
        log = open_store(log_path, create=False)
        watch = asyncio.create_task(parent_gone(), name="probe-worker-stdin")
        others = _Shards()
        failure = ""
        try:
            if shard is None and count > 1:
                await others.start(line, log_path, sample_interval, count)
            async with (
                group_committer(log, interval=COMMIT_INTERVAL) as committer,
                ProbeEngine(
                    shard_of(targets, index, count),
                    committer.submit_many,
                    sample_interval=sample_interval,
                    shard=index,
                    shards=count,
                ),
            ):
                writes = asyncio.create_task(_stop_when_writes_fail(committer, stop))
                stopped = asyncio.ensure_future(stop.wait())
                died = asyncio.ensure_future(others.first_exit())
                await asyncio.wait({stopped, died}, return_when=asyncio.FIRST_COMPLETED)
                if died.done() and not stopped.done():
                    failure = died.result()
                for waiter in (stopped, died, writes):
                    waiter.cancel()
        finally:
            await others.stop()
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            log.close()
    if failure:
        raise WarroomError(failure)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warroom.probe.worker", description=__doc__)
    parser.add_argument("--log", required=True, help="the incident log to append probe events to")
    parser.add_argument("--sample-interval", type=float, default=5.0)
    parser.add_argument(
        "--shards",
        type=int,
        default=None,
        help=f"probe processes to spread the targets over (default: ${SHARDS_ENV}, else "
        "one per core, as many as the probe rate needs)",
    )
    parser.add_argument("--shard", type=parse_shard, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shards = args.shards
    if shards is None and os.environ.get(SHARDS_ENV):
        try:
            shards = int(os.environ[SHARDS_ENV])
        except ValueError:
            shards = 0
        if shards < 1:
            print(f"warroom: {SHARDS_ENV} must be a whole number of at least 1", file=sys.stderr)
            return 2
    elif shards is not None and shards < 1:
        print("warroom: --shards must be at least 1", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args.log, args.sample_interval, shards, args.shard))
    except WarroomError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
