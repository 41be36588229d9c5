"""The embedded incident-log store: an append-only JSON Lines file chained by sha256 hashes.

`IncidentLog` appends (several writers on one machine are safe: each append holds an exclusive
`flock` on the log file and continues the chain from the true tail), `LogFollower` follows the
file as it grows, and `GroupCommitter` batches high-rate machine events. A torn last line left
by a crash is moved to a side file on open, never deleted. The line format is `codec.py`'s;
`EventStore` is the interface the rest of warroom uses, so a shared store can be added later.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from warroom import events as ev
from warroom.events import BaseEvent
from warroom.identity import default_actor
from warroom.log import codec
from warroom.log.scan import (
    LogError,
    OnBad,
    RecordReader,
    Tail,
    TornTail,
    check_head,
    count_lines_before,
    open_for_reading,
    read_settled,
    read_tail,
    scan,
    where,
)
from warroom.log.stamp import now_ts, stamp

__all__ = [
    "EventStore",
    "GroupCommitter",
    "IncidentLog",
    "LogError",
    "LogFileGone",
    "LogFollower",
    "Recovery",
    "read_events",
]


@runtime_checkable
class EventStore(Protocol):
    """What the console, probes, replay and report need from an incident store."""

    def append(self, event: BaseEvent) -> BaseEvent:
        """Stamp (seq, ts, actor, prev, hash) and store; durable kinds are on disk on return."""
        ...

    def append_many(self, events: Iterable[BaseEvent], sync: bool = False) -> list[BaseEvent]:
        """Stamp and store several events at once, in order; return them stamped."""
        ...

    def read(self, from_seq: int = 1) -> Iterator[BaseEvent]:
        """The stored events with seq >= from_seq, in order."""
        ...

    def follow(self, from_seq: int = 1, interval: float = 0.2) -> AsyncIterator[BaseEvent]:
        """The stored events, then each new one as it is stored (never ends by itself)."""
        ...


class LogFileGone(LogError):
    """The file this writer holds is no longer the file at the log's path (deleted, moved or
    replaced): nothing more can be recorded where anyone will read it. Stop acknowledging."""


class Recovery(BaseModel):
    """A torn tail found on open: where it was and where its bytes went."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    offset: int
    size: int
    reason: str
    #: The side file holding the torn bytes; None when the log was opened read-only.
    side_file: str | None = None

    def describe(self) -> str:
        torn = TornTail(self.line, self.offset, self.size, self.reason)
        return torn.describe(self.path, self.side_file)


def _side_file_name(path: Path) -> Path:
    stamp = ev.utc_now().strftime("%Y%m%dT%H%M%S.%fZ")
    candidate = path.with_name(f"{path.name}.torn-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.torn-{stamp}-{n}")
    return candidate


def _fsync_dir(path: Path) -> None:
    """Make a newly created directory entry durable (the file itself is fsynced separately)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _os_error(path: Path, action: str, exc: OSError) -> LogError:
    if isinstance(exc, IsADirectoryError):
        return LogError(f"{where(path)}: is a directory, not a log file")
    if isinstance(exc, PermissionError):
        return LogError(f"{where(path)}: permission denied ({action})")
    if isinstance(exc, FileNotFoundError):
        return LogError(f"{where(path)}: no such file")
    return LogError(f"{where(path)}: cannot {action}: {exc.strerror or exc}")


class IncidentLog:
    """One incident log file, open for appending (or read-only).

    Holds the file open with O_APPEND and remembers the last seq/hash it knows of; before each
    write it takes the lock and, only if the file size differs from what it last saw (another
    writer appended, or a crash left a torn line), re-reads the tail to continue the true chain.
    """

    def __init__(
        self,
        path: Path,
        fd: int,
        *,
        readonly: bool,
        tail: Tail,
        size: int,
        recovered: Recovery | None,
    ) -> None:
        self.path = path
        self.readonly = readonly
        #: The torn tail found when the log was opened, if any (report it once to the user).
        self.recovered = recovered
        self.actor = default_actor()
        self._fd: int | None = fd
        self._seq = tail.seq
        self._hash = tail.hash
        self._size = size
        # flock excludes other processes (other open file descriptions), not other threads
        # sharing this one; the mutex does that.
        self._mutex = threading.Lock()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], create: bool = True, readonly: bool = False
    ) -> IncidentLog:
        """Open (and with `create`, make, with its directory) a log; set aside a torn tail.

        Read-only opens never modify the file: a torn tail is only reported in `recovered`.
        Raises `LogError` (one line naming the file) for a missing file, a directory, no
        permission, or a file that is not an incident log.
        """
        path = Path(path)
        if readonly:
            return cls._open_readonly(path)
        existed = path.exists()
        if create and not existed:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _os_error(path.parent, "create the directory", exc) from None
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise _os_error(path, "open for appending", exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LogError(f"{where(path)}: not a regular file")
            if not existed:
                _fsync_dir(path.parent)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                check_head(fd, size, path)
                tail, size, recovered = cls._settle_tail(fd, path, size)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, readonly=False, tail=tail, size=size, recovered=recovered)

    @classmethod
    def _open_readonly(cls, path: Path) -> IncidentLog:
        fd = open_for_reading(path)
        try:
            size, tail, torn = read_settled(fd, path)
        except BaseException:
            os.close(fd)
            raise
        recovered = None
        if torn is not None:
            recovered = Recovery(
                path=str(path),
                line=torn.line,
                offset=torn.offset,
                size=torn.size,
                reason=torn.reason,
            )
        return cls(path, fd, readonly=True, tail=tail, size=size, recovered=recovered)

    @staticmethod
    def _settle_tail(fd: int, path: Path, size: int) -> tuple[Tail, int, Recovery | None]:
        """Read the tail (lock held); move a torn tail to a side file. Returns the new size."""
        tail = read_tail(fd, size, path)
        if tail.torn_offset is None:
            return tail, size, None
        torn = os.pread(fd, tail.torn_size, tail.torn_offset)
        side = _side_file_name(path)
        try:
            side_fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(torn)
                while view:
                    view = view[os.write(side_fd, view) :]
                os.fsync(side_fd)
            except OSError:
                # A side file that does not hold the torn bytes is noise (a full disk would
                # leave one per retry): the bytes stay in the log until a retry succeeds.
                with contextlib.suppress(OSError):
                    os.unlink(side)
                raise
            finally:
                os.close(side_fd)
            _fsync_dir(path.parent)
            # Only once the torn bytes are safe elsewhere is the log cut back to its valid part.
            # No fsync here: the next durable append's fdatasync persists the new size, and if
            # a crash comes first the torn bytes are simply found and set aside again.
            os.ftruncate(fd, tail.torn_offset)
        except OSError as exc:
            raise _os_error(side, "set the torn tail aside", exc) from None
        recovered = Recovery(
            path=str(path),
            line=count_lines_before(fd, tail.torn_offset) + 1,
            offset=tail.torn_offset,
            size=tail.torn_size,
            reason=tail.torn_reason,
            side_file=str(side),
        )
        return tail, tail.torn_offset, recovered

    def _check_still_at_path(self, held: os.stat_result) -> None:
        """Refuse to write into a file that is no longer the log at `path` (lock held)."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise _os_error(self.path, "check the log file", exc) from None
        if current is None or (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
            what = "deleted" if current is None else "replaced by another file"
            raise LogFileGone(
                f"{where(self.path)}: the log file was {what} after it was opened; nothing "
                f"since seq {self._seq} is recorded (reopen the log to go on)"
            )

    # -- state -----------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The seq of the last event this writer knows of (0 for an empty log)."""
        return self._seq

    @property
    def head(self) -> str:
        """The hash of the last event this writer knows of (`codec.GENESIS` when empty)."""
        return self._hash

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        # A log dropped without close() must not leak its descriptor in a long-lived console.
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> IncidentLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "append"
        return f"IncidentLog({str(self.path)!r}, {mode}, last_seq={self._seq})"

    # -- appending -------------------------------------------------------------------------

    def append(self, event: BaseEvent) -> BaseEvent:
        """Stamp and write one event; fsynced before returning when `type(event).durable`."""
        return self.append_many((event,), sync=type(event).durable)[0]

    def append_many(self, events: Iterable[BaseEvent], sync: bool = False) -> list[BaseEvent]:
        """Stamp and write events in order with one lock and one write.

        Fsynced when `sync` is true or any of the events is durable (an operator action is on
        disk before it is acknowledged, however it was submitted). `ts` and `actor` already set
        on an event are kept (fixtures, group-committed events stamped when observed); missing
        ones are now and this process's actor.
        """
        return self._append(list(events), None, sync)

    def _append(
        self, batch: list[BaseEvent], times: list[str] | None, sync: bool
    ) -> list[BaseEvent]:
        """append_many, with `times[i]` (when given) as the ts of an event that has none."""
        if not batch:
            return []
        if self.readonly:
            raise LogError(f"{where(self.path)}: opened read-only")
        sync = sync or any(type(event).durable for event in batch)
        # Serialised before taking the lock: only the chaining has to happen under it.
        # (model_dump(mode="json") without its Python-level argument handling.)
        payloads = [event.__pydantic_serializer__.to_python(event, mode="json") for event in batch]
        with self._mutex:
            fd = self._fd
            if fd is None:
                raise LogError(f"{where(self.path)}: log is closed")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                held = os.fstat(fd)
                self._check_still_at_path(held)
                size = held.st_size
                if size != self._size:
                    tail, size, recovered = self._settle_tail(fd, self.path, size)
                    self._seq, self._hash, self._size = tail.seq, tail.hash, size
                    if recovered is not None:
                        self.recovered = recovered
                try:
                    lines, stamped, seq, head = self._stamp(batch, payloads, times)
                except TypeError as exc:
                    # orjson refuses text that is not UTF-8 (lone surrogates): nothing written.
                    raise LogError(f"{where(self.path)}: cannot record an event: {exc}") from None
                data = b"".join(lines)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                except OSError as exc:
                    # Cut back what part of this write landed (still under the lock, so it is
                    # nobody else's): a retry while the disk stays full leaves no torn tail and
                    # no side file. If even that fails, the next append re-reads the tail.
                    try:
                        os.ftruncate(fd, size)
                    except OSError:
                        self._size = -1
                    raise _os_error(self.path, "write", exc) from None
                self._seq, self._hash, self._size = seq, head, size + len(data)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if sync:
            # Outside the locks: the lines' place in the chain is fixed once written, and other
            # writers append while this waits for the disk (their fsyncs share the journal
            # commit with this one). fdatasync covers every earlier byte of the file.
            try:
                _fdatasync(fd)
            except OSError as exc:
                raise _os_error(self.path, "sync to disk", exc) from None
        return stamped

    def _stamp(
        self, batch: list[BaseEvent], payloads: list[dict[str, Any]], times: list[str] | None
    ) -> tuple[list[bytes], list[BaseEvent], int, str]:
        line_of = codec.line_of
        lines: list[bytes] = []
        stamped: list[BaseEvent] = []
        envelope: dict[str, Any] = {}
        chained = stamp(payloads, self._seq, self._hash, self.actor, times)
        for event, (body, envelope) in zip(batch, chained, strict=True):
            lines.append(line_of(body, envelope["hash"]))
            stamped.append(_with_envelope(event, envelope))
        return lines, stamped, envelope["seq"], envelope["hash"]

    # -- reading ---------------------------------------------------------------------------

    def read(self, from_seq: int = 1) -> Iterator[BaseEvent]:
        """The events with seq >= from_seq as typed models (a torn tail is skipped)."""
        return read_events(self.path, from_seq)

    def follow(self, from_seq: int = 1, interval: float = 0.2) -> AsyncIterator[BaseEvent]:
        return LogFollower(self.path, from_seq=from_seq).follow(interval)


#: fdatasync flushes the data and the size an append changes; macOS only has fsync.
_fdatasync = getattr(os, "fdatasync", os.fsync)


def _with_envelope(event: BaseEvent, envelope: dict[str, object]) -> BaseEvent:
    """`event.model_copy(update=envelope)` for envelope fields only, at a quarter of the cost.

    Group commit stamps tens of thousands of events a second; this is pydantic's own shallow
    `__copy__` without the generic paths (envelope keys are declared fields, never extras).
    The store tests check the result equals the event parsed back from its line.
    """
    new = object.__new__(type(event))
    values = event.__dict__.copy()
    values.update(envelope)
    extra = event.__pydantic_extra__
    object.__setattr__(new, "__dict__", values)
    object.__setattr__(new, "__pydantic_extra__", None if extra is None else extra.copy())
    object.__setattr__(
        new, "__pydantic_fields_set__", event.__pydantic_fields_set__ | _ENVELOPE_SET
    )
    object.__setattr__(new, "__pydantic_private__", event.__pydantic_private__)
    return new


_ENVELOPE_SET = frozenset(ev.ENVELOPE_FIELDS)

#: Events stamped and written per lock/write/fsync by the group committer.
_FLUSH_CHUNK = 1000


def read_events(
    path: str | os.PathLike[str], from_seq: int = 1, on_bad: OnBad | None = None
) -> Iterator[BaseEvent]:
    """Stream a log's events as typed models; a bad line goes to `on_bad` (naming file:line)
    and is skipped, or raises `LogError` without it."""
    report = on_bad or _raise_error
    for record in scan(path, on_bad=on_bad):
        if record.seq < from_seq:
            continue
        try:
            yield _parse(path, record.line, record.data)
        except LogError as exc:
            report(exc)


def _raise_error(error: LogError) -> None:
    raise error


def _parse(path: str | os.PathLike[str], line: int, data: dict[str, object]) -> BaseEvent:
    try:
        return ev.parse_event(data)
    except ev.EventError as exc:
        raise LogError(f"{where(path, line)}: {exc}") from None


# -- following ---------------------------------------------------------------------------------


class LogFollower:
    """Follows a log file as it grows (`tail -f`): each poll returns the new complete lines.

    Never blocks and never modifies the file. It does not need the file to exist yet. A last
    line that is not JSON is left unread (a writer may be about to set it aside as torn); if
    the file is replaced or cut below what was read, it starts over and skips seqs seen. A bad
    line in the middle goes to `on_bad` and is skipped (without `on_bad`, the poll raises
    `LogError` for it; the next poll continues after it).
    """

    def __init__(
        self, path: str | os.PathLike[str], from_seq: int = 1, on_bad: OnBad | None = None
    ) -> None:
        self.path = Path(path)
        self.from_seq = from_seq
        self._reader = RecordReader(self.path, from_seq=from_seq, on_bad=on_bad)

    @property
    def offset(self) -> int:
        """Byte offset just past the last line consumed."""
        return self._reader.offset

    def poll(self, limit: int | None = None) -> list[BaseEvent]:
        """The events written since the last poll (at most `limit`); [] if none or no file."""
        out: list[BaseEvent] = []
        for event in self.iter_available():
            out.append(event)
            if limit is not None and len(out) >= limit:
                break
        return out

    def iter_available(self) -> Iterator[BaseEvent]:
        """Yield the events available now, advancing the position as each one is yielded."""
        reader = self._reader
        for record in reader.records():
            try:
                event = _parse(self.path, record.line, record.data)
            except LogError as exc:
                reader.on_bad(exc)
                continue
            yield event

    async def follow(self, interval: float = 0.2) -> AsyncIterator[BaseEvent]:
        """Yield the events there are, then each new one as it appears (polling every interval)."""
        batch = 1000
        while True:
            events = self.poll(limit=batch)
            for event in events:
                yield event
            if len(events) < batch:
                await asyncio.sleep(interval)


# -- group commit ------------------------------------------------------------------------------


class GroupCommitter:
    """Batches high-rate machine events into one write + fsync every `interval` seconds.

    `submit()` is cheap and thread-safe; an event without `ts` gets the time of submission,
    so it keeps the time it was observed, not the time of the flush. Each flush calls
    `on_committed(stamped_events)`, from the committer's thread when run with `start()`, or in
    the event loop with `run()`.
    A failed write keeps the batch queued and retries it on the next flush.
    """

    def __init__(
        self,
        log: IncidentLog,
        interval: float = 0.1,
        on_committed: Callable[[list[BaseEvent]], None] | None = None,
        sync: bool = True,
    ) -> None:
        self.log = log
        self.interval = interval
        self.on_committed = on_committed
        self.sync = sync
        #: The last write error (None after a successful flush).
        self.error: LogError | None = None
        #: The last exception raised by on_committed in the background thread.
        self.callback_error: Exception | None = None
        self._pending: list[BaseEvent] = []
        self._times: list[str] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    def submit(self, event: BaseEvent) -> None:
        ts = now_ts()
        with self._lock:
            self._pending.append(event)
            self._times.append(ts)

    def submit_many(self, events: Sequence[BaseEvent]) -> None:
        """Queue events observed together (one probe round, one feed poll) under one lock."""
        ts = now_ts()
        with self._lock:
            self._pending.extend(events)
            self._times.extend([ts] * len(events))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _write_pending(self) -> list[BaseEvent]:
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                times, self._times = self._times, []
            if not batch:
                return []
            stamped: list[BaseEvent] = []
            # Written in chunks: one huge batch (a backlog after a stall) stamps ~30 % slower
            # than the same events in cache-sized pieces, and a chunk's fsync is cheap.
            for start in range(0, len(batch), _FLUSH_CHUNK):
                end = start + _FLUSH_CHUNK
                try:
                    stamped += self.log._append(batch[start:end], times[start:end], self.sync)
                except LogError as exc:
                    self.error = exc
                    with self._lock:
                        self._pending[:0] = batch[start:]
                        self._times[:0] = times[start:]
                    if stamped:
                        # Report what did reach the disk; the rest is retried next flush.
                        return stamped
                    raise
            self.error = None
            return stamped

    def flush(self) -> list[BaseEvent]:
        """Write what is queued now and report it to `on_committed`; return it stamped."""
        stamped = self._write_pending()
        if stamped and self.on_committed is not None:
            self.on_committed(stamped)
        return stamped

    def start(self) -> GroupCommitter:
        """Flush from a background thread every `interval` until `close()`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name=f"group-commit {self.log.path.name}", daemon=True
            )
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except LogError:
                pass  # kept queued; `error` says why, and close() raises it if it persists
            except Exception as exc:
                # A failing on_committed must not stop the committing: the events are in the
                # log; keep the error for the owner instead of killing the thread.
                self.callback_error = exc

    def close(self) -> None:
        """Stop the thread (if started) and flush what is left; raises if that write fails."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.flush()

    def __enter__(self) -> GroupCommitter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> GroupCommitter:
        """`run()` in the background of the running event loop until the block ends."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"group-commit {self.log.path.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop `run()`, which writes what is left; raises if events are still unwritten."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.flush()  # a task cancelled before its first step never ran its final flush
        if self.error is not None:
            raise self.error

    async def run(self) -> None:
        """Flush every `interval` from the running event loop (writes in a thread) until
        cancelled; on cancellation, flush what is left."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                write = asyncio.ensure_future(asyncio.to_thread(self._write_pending))
                try:
                    stamped = await asyncio.shield(write)
                except asyncio.CancelledError:
                    # The write goes on in its thread: wait for it so its events still reach
                    # on_committed (they are in the log either way), then stop.
                    with contextlib.suppress(LogError):
                        stamped = await write
                        if stamped and self.on_committed is not None:
                            self.on_committed(stamped)
                    raise
                except LogError:
                    continue
                if stamped and self.on_committed is not None:
                    self.on_committed(stamped)
        finally:
            stamped = self._write_pending()
            if stamped and self.on_committed is not None:
                self.on_committed(stamped)
