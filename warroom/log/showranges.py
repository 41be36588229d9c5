"""`log show` of a big log on several cores: byte ranges shown by forked workers, in order.

The parent shows the first range itself, straight to the output, while each other range is
shown by a forked copy of the parent (same clock and caches, so the same lines) into an
unlinked temporary file, keeping the lines it could not show by their number within the
range. The parent then copies each file out in order and reports each range's problems with
line numbers counted from the start of the log: the output and the problems are exactly the
single process's. A worker that fails in any way (no room for its file, killed) has its
range shown by the parent instead, so nothing depends on it.

The workers are forked only once the clock has fixed the incident's day (`clock_ready`),
which the first event shown does; until then the parent goes on alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, BinaryIO

import orjson

from warroom.processes import usable_cores

if TYPE_CHECKING:
    from warroom.log.show import Shower

#: From this many bytes on, a log is shown by several processes (about 80,000 events).
PARALLEL_MIN_BYTES = 32 * 1024 * 1024
#: Bytes copied per write from a worker's file to the output.
COPY_CHUNK = 1 << 20
#: Bytes read at a time while the first lines are shown before the workers fork.
PRIME_CHUNK = 1 << 16
#: What a pipe to the output may hold (Linux lets any process go up to 1 MiB).
PIPE_BYTES = 1 << 20


def workers_for(size: int) -> int:
    """How many processes show `size` bytes of log: one below PARALLEL_MIN_BYTES, where
    forking cannot pay, or where this process cannot fork safely."""
    if size < PARALLEL_MIN_BYTES or not hasattr(os, "fork"):
        return 1
    return min(usable_cores(), 8)


def clock_ready(clock: Callable[[str], str]) -> bool:
    """Whether a copy of `clock` made now reads every stamp as the original will: a clock
    without state, or an `incident_clock` that has fixed the incident's day."""
    started: Callable[[], bool] | None = getattr(clock, "started", None)
    return started is None or started()


def line_bounds(fd: int, start: int, end: int, parts: int) -> list[int]:
    """Offsets cutting [start, end) into up to `parts` ranges of whole lines, of about
    equal size, none empty: [start, ..., end]."""
    bounds = [start]
    for i in range(1, parts):
        pos = max(start + (end - start) * i // parts, bounds[-1])
        while pos < end:
            chunk = os.pread(fd, min(1 << 16, end - pos), pos)
            if not chunk:
                pos = end
                break
            index = chunk.find(b"\n")
            if index >= 0:
                pos += index + 1
                break
            pos += len(chunk)
        if pos >= end:
            break
        bounds.append(pos)
    bounds.append(end)
    return bounds


@dataclass
class _Worker:
    pid: int
    start: int
    end: int
    #: Files of the lines it shows, and of what it could not show and where it stopped.
    lines: int
    state: int


def show_in_ranges(shower: Shower, fd: int, size: int, out: BinaryIO, workers: int) -> None:
    """`shower.show_range(fd, size, out)` on up to `workers` processes (see the module)."""
    bounds = line_bounds(fd, shower.offset, size, workers)
    # Forking a process that runs other threads is not safe (a lock may be held forever).
    if len(bounds) < 3 or threading.active_count() > 1:
        shower.show_range(fd, size, out)
        return
    _widen_pipe(out)
    # The first range is the parent's: its first lines are shown before any fork, until the
    # clock has fixed the incident's day (the first event shown does).
    want = PRIME_CHUNK
    while not clock_ready(shower.clock) and shower.offset < bounds[1]:
        chunk = os.pread(fd, min(want, bounds[1] - shower.offset), shower.offset)
        cut = chunk.rfind(b"\n")
        if not chunk:
            break  # cut short while being read
        if cut < 0:
            want *= 2  # a longer line (bounds[1] ends one): read it whole
            continue
        text = shower.show_lines(shower.offset, chunk[:cut].split(b"\n"))
        if text:
            out.write(text.encode())
        want = PRIME_CHUNK
    if not clock_ready(shower.clock):
        shower.show_range(fd, size, out)
        return
    out.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    forked: list[_Worker] = []
    with contextlib.ExitStack() as files:
        try:
            for begin, end in itertools.pairwise(bounds[1:]):
                forked.append(_fork(shower, fd, begin, end, size, files))
            shower.show_range(fd, bounds[1], out)
            for worker in forked:
                _collect(shower, fd, worker, out)
        finally:
            for worker in forked:
                if worker.pid:
                    with contextlib.suppress(OSError):
                        os.kill(worker.pid, signal.SIGKILL)
                        os.waitpid(worker.pid, 0)


def _widen_pipe(out: BinaryIO) -> None:
    """Let a pipe on `out` hold PIPE_BYTES: the writer then waits for its reader a tenth as
    often (on 200,000 lines, 40 voluntary context switches instead of 490)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    try:
        fd = out.fileno()
        if set_size is not None and stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, set_size, PIPE_BYTES)
    except (OSError, ValueError):
        pass  # not a file, or a pipe the system will not widen: it works as it is


def _fork(
    shower: Shower, fd: int, begin: int, end: int, size: int, files: contextlib.ExitStack
) -> _Worker:
    """A worker showing [begin, end), or (pid 0) none when the OS refuses one."""
    try:
        lines = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by files)
        state = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
        pid = os.fork()
    except OSError:
        return _Worker(0, begin, end, -1, -1)
    if pid == 0:  # the worker: never returns, never runs the parent's exit handlers
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = _work(shower, fd, begin, end, size, lines, state)
        finally:
            os._exit(code)
    return _Worker(pid, begin, end, lines.fileno(), state.fileno())


def _work(
    shower: Shower, fd: int, begin: int, end: int, size: int, lines: IO[bytes], state: IO[bytes]
) -> int:
    """A worker's range, shown with lines numbered from 1 at `begin`."""
    shower.offset, shower.line, shower.problems = begin, 1, []
    shower.show_range(fd, end, lines)
    if end < size:
        shower.flush_pending()  # the next range's first line follows it
    pending = None
    if shower.pending is not None:  # the log's torn last line: left for the parent
        pending = [*shower.pending_at, shower.pending[1]]
    lines.flush()
    summary = {
        "offset": shower.offset,
        "line": shower.line,
        "problems": shower.problems,
        "pending": pending,
    }
    state.write(orjson.dumps(summary))
    state.flush()
    return 0


def _collect(shower: Shower, fd: int, worker: _Worker, out: BinaryIO) -> None:
    """Print a worker's range (or, if it failed, show the range here) and report its
    problems with the log's line numbers."""
    status = 1
    if worker.pid:
        _, status = os.waitpid(worker.pid, 0)
        worker.pid = 0
    first = shower.line
    shower.flush_pending()
    summary = None
    if status == 0:
        size = os.fstat(worker.state).st_size
        with contextlib.suppress(orjson.JSONDecodeError):
            summary = orjson.loads(os.pread(worker.state, size, 0))
    if summary is None or summary["offset"] > worker.end:
        shower.offset = worker.start
        shower.show_range(fd, worker.end, out)
        return
    copied = 0
    while chunk := os.pread(worker.lines, COPY_CHUNK, copied):
        out.write(chunk)
        copied += len(chunk)
    for line_no, why in summary["problems"]:
        shower.report(first - 1 + line_no, why)
    shower.offset, shower.line = summary["offset"], first - 1 + summary["line"]
    shower.forked += 1
    if summary["pending"] is not None:
        offset, line_no, why = summary["pending"]
        shower.pending = (first - 1 + line_no, why)
        shower.pending_at = (offset, first - 1 + line_no)
