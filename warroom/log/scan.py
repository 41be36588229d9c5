"""Reading incident-log files at the byte level: envelope checks, the tail, scans and an index.

Everything here works on raw lines and plain dicts (no pydantic), so that opening, verifying
and indexing a log of a million events stays within a few seconds. The store (`store.py`),
`verify.py` and replay build on it.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import stat
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from warroom.errors import WarroomError
from warroom.log import codec

#: Bytes read per step when scanning backwards for a line start, or forwards in a scan.
TAIL_BLOCK = 64 * 1024
SCAN_CHUNK = 8 * 1024 * 1024
#: A first line that does not start like an event within this many bytes is not a log's.
HEAD_PROBE = 64 * 1024


class LogError(WarroomError):
    """A log file that cannot be read as an incident log; the message names the file and line."""


def where(path: str | os.PathLike[str], line: int | None = None) -> str:
    return f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)


def envelope_error(obj: Any) -> str | None:
    """Why a decoded line is not an event envelope, or None when it is one.

    Checks only what the chain and the readers rely on (types of the envelope fields); the
    kind's own fields are checked by `events.parse_event` when the event is built.
    """
    if not isinstance(obj, dict):
        return f"not a JSON object (a {type(obj).__name__})"
    kind = obj.get("kind")
    if type(kind) is not str or not kind:
        return "not an event: no string 'kind'"
    seq = obj.get("seq")
    if type(seq) is not int or seq < 1:
        return "not an event: 'seq' is not a positive integer"
    for name in ("hash", "prev"):
        value = obj.get(name)
        if type(value) is not str or len(value) != 64:
            return f"not an event: '{name}' is not a 64-digit hex string"
    if type(obj.get("ts", "")) is not str or type(obj.get("actor", "")) is not str:
        return "not an event: 'ts' and 'actor' must be strings"
    if type(obj.get("v", 1)) is not int:
        return "not an event: 'v' is not an integer"
    return None


def check_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Decode one line and check its envelope: (obj, None) or (obj_or_None, why not)."""
    try:
        obj = codec.decode(line)
    except codec.CodecError as exc:
        return None, str(exc)
    return obj, envelope_error(obj)


def count_lines_before(fd: int, offset: int) -> int:
    """Number of newlines in the first `offset` bytes (so the line at `offset` is this + 1)."""
    count = 0
    pos = 0
    while pos < offset:
        chunk = os.pread(fd, min(SCAN_CHUNK, offset - pos), pos)
        if not chunk:
            break
        count += chunk.count(b"\n")
        pos += len(chunk)
    return count


def prev_newline(fd: int, before: int) -> int:
    """Offset of the last newline in [0, before), or -1 when there is none."""
    pos = before
    while pos > 0:
        step = min(TAIL_BLOCK, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        index = chunk.rfind(b"\n")
        if index >= 0:
            return pos + index
    return -1


def first_line(fd: int, size: int) -> tuple[bytes, bool]:
    """The first line of the file and whether it is complete.

    Read whole however long it is (any line that verifies must open again), except that a
    file whose first bytes are not an event's start (`{"`) is not read past HEAD_PROBE bytes.
    """
    parts: list[bytes] = []
    pos = 0
    while pos < size:
        if pos >= HEAD_PROBE and not parts[0].startswith(b'{"'):
            break
        chunk = os.pread(fd, min(SCAN_CHUNK if pos else TAIL_BLOCK, size - pos), pos)
        if not chunk:
            break
        index = chunk.find(b"\n")
        if index >= 0:
            parts.append(chunk[: index + 1])
            return b"".join(parts), True
        parts.append(chunk)
        pos += len(chunk)
    return b"".join(parts), False


def check_head(fd: int, size: int, path: str | os.PathLike[str]) -> None:
    """Refuse a file that is not an incident log (another tool's JSON Lines, a binary, ...).

    A torn first write is still accepted: an incomplete first line that starts like a log line
    (`{`) or is zero-filled (what a crash can leave on some file systems).
    """
    if size == 0:
        return
    line, complete = first_line(fd, size)
    if complete:
        _obj, why = check_line(line)
        if why is not None:
            raise LogError(f"{where(path, 1)}: not a warroom incident log ({why})")
    elif len(line) < size and not line.startswith(b'{"') and line.strip(b"\0"):
        raise LogError(f"{where(path, 1)}: not a warroom incident log (no line break in 64 KB)")
    elif not (line.startswith(b"{") or not line.strip(b"\0")):
        raise LogError(f"{where(path, 1)}: not a warroom incident log (not JSON Lines)")


@dataclass(frozen=True, slots=True)
class Tail:
    """Where the valid part of a log ends and what a new event must continue from."""

    #: Offset just past the last complete, decodable line (the file size when nothing is torn).
    end: int
    #: seq and hash of the last event (0 and GENESIS for an empty log).
    seq: int
    hash: str
    #: Offset where the torn tail starts (== end), or None when the file ends cleanly.
    torn_offset: int | None = None
    torn_size: int = 0
    torn_reason: str = ""


@dataclass(frozen=True, slots=True)
class TornTail:
    """A torn last line: its number, byte offset and size, and why it is torn."""

    line: int
    offset: int
    size: int
    reason: str

    def describe(self, path: str | os.PathLike[str], side_file: str | None = None) -> str:
        """What a reader is told of it (moved to `side_file`, or left in place read-only)."""
        fate = f"moved to {side_file}" if side_file else "ignored (read-only, left in place)"
        return (
            f"{where(path, self.line)}: torn last line ({self.reason}; {self.size} bytes) "
            f"{fate}; the {self.line - 1} lines before it are kept"
        )


def read_settled(fd: int, path: str | os.PathLike[str]) -> tuple[int, Tail, TornTail | None]:
    """The log's size, its tail and any torn last line, read without changing the file (a
    shared lock waits out an append in progress, which would look like a torn tail)."""
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        size = os.fstat(fd).st_size
        check_head(fd, size, path)
        tail = read_tail(fd, size, path)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    if tail.torn_offset is None:
        return size, tail, None
    line = count_lines_before(fd, tail.torn_offset) + 1
    return size, tail, TornTail(line, tail.torn_offset, tail.torn_size, tail.torn_reason)


def read_tail(fd: int, size: int, path: str | os.PathLike[str]) -> Tail:
    """Find the last valid event and any torn tail after it, reading only the end of the file.

    Torn means: bytes after the last newline (a write cut short), or a last line that is not
    JSON at all (zero-filled or half-persisted pages after a power loss). A last line that is
    JSON but fails its checks is not torn; it is reported as a bad log, never set aside.
    """
    if size == 0:
        return Tail(end=0, seq=0, hash=codec.GENESIS)
    torn_offset: int | None = None
    reason = ""
    if os.pread(fd, 1, size - 1) == b"\n":
        end = size
    else:
        end = prev_newline(fd, size) + 1
        torn_offset = end
        reason = "no newline at the end: a write was cut short"
    if end > 0:
        start = prev_newline(fd, end - 1) + 1
        line = os.pread(fd, end - start, start)
        obj, why = check_line(line)
        if obj is None:
            torn_offset = start
            reason = f"last line {why}"
            end = start
            if end > 0:
                start = prev_newline(fd, end - 1) + 1
                line = os.pread(fd, end - start, start)
                obj, why = check_line(line)
        if end > 0:
            if obj is None or why is not None:
                line_no = count_lines_before(fd, start) + 1
                raise LogError(f"{where(path, line_no)}: {why}")
            last = Tail(end=end, seq=obj["seq"], hash=obj["hash"])
        else:
            last = Tail(end=0, seq=0, hash=codec.GENESIS)
    else:
        last = Tail(end=0, seq=0, hash=codec.GENESIS)
    if torn_offset is None:
        return last
    return Tail(
        end=last.end,
        seq=last.seq,
        hash=last.hash,
        torn_offset=torn_offset,
        torn_size=size - torn_offset,
        torn_reason=reason,
    )


class ScannedLine(NamedTuple):
    """One complete line of a log: where it starts, its line number, its seq and its dict."""

    offset: int
    line: int
    seq: int
    data: dict[str, Any]
    #: The line's bytes (no newline).
    raw: bytes = b""


def iter_lines(fd: int, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, line without its newline) for each complete line in [start, end).

    An incomplete last line (no newline yet) is not yielded: followers and readers see only
    whole lines, like `tail -f`.
    """
    pos = start
    carry = b""
    carry_offset = start
    while True:
        want = SCAN_CHUNK if end is None else min(SCAN_CHUNK, end - pos)
        if want <= 0:
            break
        chunk = os.pread(fd, want, pos)
        if not chunk:
            break
        pos += len(chunk)
        data = carry + chunk if carry else chunk
        base = carry_offset
        last_nl = data.rfind(b"\n")
        if last_nl < 0:
            carry = data
            continue
        lines = data[:last_nl].split(b"\n")
        carry = data[last_nl + 1 :]
        carry_offset = base + last_nl + 1
        offset = base
        for line in lines:
            yield offset, line
            offset += len(line) + 1


#: Called with a one-line `LogError` for a line that is skipped (a reader goes on after it).
OnBad = Callable[[LogError], None]


def _raise(error: LogError) -> None:
    raise error


class RecordReader:
    """The one line reader every log reader builds on: whole lines as envelope-checked dicts.

    Each `records()` call yields the complete lines written since the last call, as
    `ScannedLine`s, from the byte offset reached. A line that is not an event (junk in the
    middle) goes to `on_bad` with its file:line and is skipped, so a reader continues to the
    end; without `on_bad` it raises there instead (the position is already past that line, so
    the next call continues after it). A last line that is not JSON is left unread: it may be a
    torn tail a writer is about to set aside. Never modifies the file; a missing file reads as
    empty; a file replaced or cut below what was read is read again from the start, skipping
    seqs already yielded.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        from_seq: int | None = 1,
        on_bad: OnBad | None = None,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> None:
        self.path = path
        self.on_bad: OnBad = on_bad or _raise
        #: bytes -> object, raising orjson.JSONDecodeError (a reader may decode only what it shows).
        self.decode = decode
        #: Byte offset just past the last line consumed, and the line number there.
        self.offset = 0
        self.line = 1
        #: Records with seq <= this are not yielded; None yields every line (a plain scan).
        self.last_seq = from_seq - 1 if from_seq is not None else None
        self._inode: int | None = None

    def records(self, *, missing_ok: bool = True) -> Iterator[ScannedLine]:
        if missing_ok:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except FileNotFoundError:
                return
            except OSError:
                fd = open_for_reading(self.path)  # the same error, as one line
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                fd = open_for_reading(self.path)
        else:
            fd = open_for_reading(self.path)
        try:
            yield from self._records(fd)
        finally:
            os.close(fd)

    def _records(self, fd: int) -> Iterator[ScannedLine]:
        info = os.fstat(fd)
        if self._inode is not None and (info.st_ino != self._inode or info.st_size < self.offset):
            self.offset, self.line = 0, 1
        self._inode = info.st_ino
        path = self.path
        pending: LogError | None = None
        loads = self.decode
        decode_error = orjson.JSONDecodeError
        for offset, raw in iter_lines(fd, self.offset, info.st_size):
            line = self.line
            if pending is not None:
                # The unreadable line was not the last one after all: skip it and say so.
                self.offset, self.line = offset, line
                error, pending = pending, None
                self.on_bad(error)
            try:
                obj = loads(raw)
            except decode_error as exc:
                pending = LogError(f"{where(path, line)}: not JSON ({exc.args[0].split(':')[0]})")
                self.line = line + 1
                continue
            self.offset = offset + len(raw) + 1
            self.line = line + 1
            # envelope_error, inlined for the common case: this loop is `log show`'s speed.
            if type(obj) is dict:
                seq = obj.get("seq")
                kind, digest, prev = obj.get("kind"), obj.get("hash"), obj.get("prev")
                good = (
                    type(seq) is int
                    and seq > 0
                    and type(kind) is str
                    and kind
                    and type(digest) is str
                    and len(digest) == 64
                    and type(prev) is str
                    and len(prev) == 64
                    and type(obj.get("ts", "")) is str
                    and type(obj.get("actor", "")) is str
                    and type(obj.get("v", 1)) is int
                )
            else:
                good = False
            if not good:
                self.on_bad(LogError(f"{where(path, line)}: {envelope_error(obj)}"))
                continue
            seq = obj["seq"]
            if self.last_seq is not None:
                if seq <= self.last_seq:
                    continue
                self.last_seq = seq
            yield ScannedLine(offset, line, seq, obj, raw)
        if pending is not None:
            self.line -= 1  # left unread: counted again when it is read


def scan(
    path: str | os.PathLike[str],
    start: int = 0,
    first_line_no: int = 1,
    on_bad: OnBad | None = None,
) -> Iterator[ScannedLine]:
    """Yield every complete line of a log from byte offset `start` as (offset, line, seq, dict).

    Decodes with orjson and checks only the envelope, so it is several times faster than
    building events. A line that is not an event goes to `on_bad` (naming file:line) and is
    skipped; without `on_bad` it raises `LogError`. A torn tail (see `read_tail`) is skipped.
    `first_line_no` is the line number at `start` (for messages).
    """
    reader = RecordReader(path, from_seq=None, on_bad=on_bad)
    reader.offset, reader.line = start, first_line_no
    return reader.records(missing_ok=False)


def open_for_reading(path: str | os.PathLike[str]) -> int:
    """os.open for reading with the OS error turned into a one-line `LogError`."""
    try:
        # O_NONBLOCK: opening a FIFO by mistake must fail below, not hang for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise LogError(f"{where(path)}: no such file") from None
    except IsADirectoryError:
        raise LogError(f"{where(path)}: is a directory, not a log file") from None
    except PermissionError:
        raise LogError(f"{where(path)}: permission denied") from None
    except OSError as exc:
        raise LogError(f"{where(path)}: cannot open: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "is a directory, not a log file" if stat.S_ISDIR(mode) else "not a regular file"
        raise LogError(f"{where(path)}: {what}")
    return fd


#: Scanned bytes between two releases of the mmap's pages (see `LogIndex.extend`).
_RELEASE_EVERY = 32 << 20


@dataclass
class LogIndex:
    """Byte offsets of every complete line of a log, for random access (replay, seek).

    `offsets[i]` is where line i+1 starts; in a verified log that line holds seq i+1. `end` is
    the offset just past the last complete line: call `LogIndex.build(path, index)` again, or
    `extend()`, to pick up lines written since. Memory: 8 bytes per event.
    """

    path: str
    offsets: array[int]
    end: int

    @classmethod
    def build(cls, path: str | os.PathLike[str]) -> LogIndex:
        index = cls(path=os.fspath(path), offsets=array("q"), end=0)
        index.extend()
        return index

    def __len__(self) -> int:
        return len(self.offsets)

    def extend(self, fd: int | None = None) -> int:
        """Index the complete lines appended since the last call; return how many were added.

        An mmap scan with `find` (like Toolong) that drops the pages already scanned from the
        resident set as it goes, so indexing a 400 MB log does not cost 400 MB of memory.
        Pass an open fd to reuse it (replay keeps one).
        """
        own = open_for_reading(self.path) if fd is None else None
        try:
            return self._scan(own if own is not None else fd)  # type: ignore[arg-type]
        finally:
            if own is not None:
                os.close(own)

    def _scan(self, fd: int) -> int:
        size = os.fstat(fd).st_size
        if size <= self.end:
            return 0
        before = len(self.offsets)
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as view:
            find = view.find
            append = self.offsets.append
            pos = self.end
            released = (pos // mmap.PAGESIZE) * mmap.PAGESIZE
            while True:
                nl = find(b"\n", pos)
                if nl < 0:
                    break
                append(pos)
                pos = nl + 1
                if pos - released > _RELEASE_EVERY:
                    length = ((pos - released) // mmap.PAGESIZE) * mmap.PAGESIZE
                    view.madvise(mmap.MADV_DONTNEED, released, length)
                    released += length
            self.end = pos
        return len(self.offsets) - before

    def line_bytes(self, i: int, fd: int | None = None) -> bytes:
        """The raw bytes of line i (0-based), read with pread (pass an open fd to reuse it)."""
        start = self.offsets[i]
        stop = self.offsets[i + 1] if i + 1 < len(self.offsets) else self.end
        if fd is not None:
            return os.pread(fd, stop - start, start)
        own = open_for_reading(self.path)
        try:
            return os.pread(own, stop - start, start)
        finally:
            os.close(own)

    def data(self, i: int, fd: int | None = None) -> dict[str, Any]:
        """The decoded dict of line i (0-based); `LogError` naming file:line if it is not one."""
        obj, why = check_line(self.line_bytes(i, fd))
        if why is not None or obj is None:
            raise LogError(f"{where(self.path, i + 1)}: {why}")
        return obj
