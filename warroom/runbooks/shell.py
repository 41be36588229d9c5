"""Running a runbook's shell block after the responder confirmed it, with bounded output.

The block runs exactly as written in the runbook, via `/bin/sh -c`, in its own process group
so a timeout (or a cancelled task) kills everything it started. Nothing is ever interpolated
into it. Output (stdout and stderr interleaved) is capped, keeping the tail: the end of a
command's output is where the answer and the error usually are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from warroom.events import CommandRun
from warroom.processes import kill_group
from warroom.runbooks.model import Command

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_OUTPUT = 16 * 1024
#: After SIGTERM on timeout, how long the group gets before SIGKILL.
KILL_GRACE_S = 0.5
#: After the shell exits, how long background children may keep the output pipe open.
DRAIN_S = 0.5
_CHUNK = 64 * 1024


class CommandResult(BaseModel):
    """What a run produced: exit code (None when killed on timeout) and the output's tail."""

    model_config = ConfigDict(frozen=True)

    command: str
    exit_code: int | None
    output: str
    truncated: bool = False
    #: Bytes the command wrote in total (output keeps at most `max_output` of them).
    output_bytes: int = 0
    duration_s: float
    timed_out: bool = False

    def to_event(self, runbook: str, step: str) -> CommandRun:
        """The `command_run` event to append to the incident log."""
        return CommandRun(
            runbook=runbook,
            step=step,
            command=self.command,
            exit_code=self.exit_code,
            output=self.output,
            truncated=self.truncated,
            duration_s=round(self.duration_s, 3),
        )


class _Tail:
    """Keeps the last `limit` bytes written."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self.buffer = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buffer += chunk
        if len(self.buffer) > self.limit:
            del self.buffer[: len(self.buffer) - self.limit]

    def text(self) -> str:
        data = bytes(self.buffer)
        if self.total > len(data):
            # The cut may fall inside a UTF-8 sequence: drop its continuation bytes.
            start = 0
            while start < min(len(data), 3) and 0x80 <= data[start] <= 0xBF:
                start += 1
            data = data[start:]
        return data.decode("utf-8", errors="replace")


async def _read_all(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while chunk := await stream.read(_CHUNK):
        tail.add(chunk)


async def _exited(
    process: asyncio.subprocess.Process, reader: asyncio.Future[None], deadline: float
) -> bool:
    """Wait until the shell itself exits (True) or the deadline passes (False).

    `Process.wait()` also waits for the output pipe to close, which a background child may
    hold open forever, so the exit status is polled instead (promptly once output ended).
    """
    loop = asyncio.get_running_loop()
    while process.returncode is None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        if reader.done():
            await asyncio.sleep(min(0.005, remaining))
        else:
            await asyncio.wait({reader}, timeout=min(0.05, remaining))
    return True


async def run_command(
    command: Command | str,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_output: int = DEFAULT_MAX_OUTPUT,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run a shell block with `/bin/sh -c`; kill its process group on timeout or cancel.

    `env` is added to the inherited environment: the block reads it as ordinary shell
    variables (e.g. `WARROOM_SIM`, the simulated fleet's admin URL), nothing is substituted
    into its text.
    """
    code = command.code if isinstance(command, Command) else command
    loop = asyncio.get_running_loop()
    tail = _Tail(max_output)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        code,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
        start_new_session=True,
    )
    assert process.stdout is not None
    reader = asyncio.ensure_future(_read_all(process.stdout, tail))
    timed_out = False
    try:
        if not await _exited(process, reader, loop.time() + timeout):
            timed_out = True
            kill_group(process.pid, signal.SIGTERM)
            if not await _exited(process, reader, loop.time() + KILL_GRACE_S):
                kill_group(process.pid, signal.SIGKILL)
                await _exited(process, reader, loop.time() + KILL_GRACE_S)
        # Background children may still hold the pipe; give them a moment, then end them.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), DRAIN_S)
    finally:
        kill_group(process.pid, signal.SIGKILL)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        # Reaps the shell and closes the pipe; bounded in case something escaped the group.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), KILL_GRACE_S)
    return CommandResult(
        command=code,
        exit_code=None if timed_out else process.returncode,
        output=tail.text(),
        truncated=tail.total > len(tail.buffer),
        output_bytes=tail.total,
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
    )
