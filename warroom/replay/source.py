"""Random access to a log's events for replay: a newline index plus parsing on demand.

The line offsets (kept in a `warroom.log.scan.LogIndex`) come from an mmap scan, like
Toolong, so opening a million-event log costs one pass of `find`; events are parsed only when
a position needs them, through a small LRU cache. Replay position k means "the first k lines
applied": it does not trust `seq`, so a tampered log (seq gaps, reordering) still replays line
by line. A line that is not an event ends the replayable part (the valid prefix); an incomplete
last line is never indexed.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import orjson

from warroom import events as ev
from warroom.log import codec
from warroom.log.scan import LogIndex, check_line, open_for_reading

#: Events kept parsed for stepping back and forth around the current position.
CACHE_SIZE = 4096
#: Bytes read per pread when folding a range of events.
READ_BLOCK = 1 << 20

OPERATOR_KINDS = frozenset(kind for kind, cls in ev.EVENT_TYPES.items() if cls.operator)
BOOKMARK_KIND = ev.BookmarkAdded.model_fields["kind"].default

_KIND_KEY = b'"kind":"'
_TS_KEY = b'"ts":"'


def _string_field(line: bytes, key: bytes) -> str | None:
    """A string field read straight from canonical JSON bytes; None if not found that way."""
    start = line.find(key)
    if start < 0:
        return None
    start += len(key)
    stop = line.find(b'"', start)
    if stop < 0:
        return None
    return line[start:stop].decode("utf-8", "replace")


class ReplaySource:
    """The events of one log file, by 0-based line index, with the valid prefix tracked."""

    def __init__(self, path: str | os.PathLike[str], *, build: bool = True) -> None:
        self.path = Path(path)
        self._fd = open_for_reading(self.path)
        self.index = LogIndex(path=os.fspath(self.path), offsets=array("q"), end=0)
        self._cache: OrderedDict[int, ev.BaseEvent] = OrderedDict()
        self._lock = threading.Lock()
        #: Number of lines known to be replayable, at most; lowered when a bad line is found.
        self._limit: int | None = None
        #: 1-based line number of the first line that is not an event, and why.
        self.bad_line: int | None = None
        self.bad_reason = ""
        #: Goes up when the file was rewritten below what was indexed (see `refresh`).
        self.generation = 0
        if build:
            self.refresh()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ReplaySource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def refresh(self) -> int:
        """Index complete lines appended since the last call (following a live log).

        If the indexed part changed under us (a writer set aside a garbage last line and
        appended in its place), the index starts over and `generation` goes up.
        """
        with self._lock:
            end = self.index.end
            if end and (
                os.fstat(self._fd).st_size < end or os.pread(self._fd, 1, end - 1) != b"\n"
            ):
                self.index = LogIndex(path=os.fspath(self.path), offsets=array("q"), end=0)
                self._cache.clear()
                self._limit = None
                self.bad_line, self.bad_reason = None, ""
                self.generation += 1
            return self.index.extend(self._fd)

    def __len__(self) -> int:
        count = len(self.index.offsets)
        return count if self._limit is None else min(count, self._limit)

    def _mark_bad(self, i: int, why: str) -> None:
        with self._lock:
            if self._limit is None or i < self._limit:
                self._limit = i
                self.bad_line = i + 1
                self.bad_reason = why

    def line(self, i: int) -> bytes:
        offsets = self.index.offsets
        start = offsets[i]
        stop = offsets[i + 1] if i + 1 < len(offsets) else self.index.end
        return os.pread(self._fd, stop - start, start)

    def _parse(self, i: int, raw: bytes) -> ev.BaseEvent | None:
        # Only "is it an event" matters here (pydantic checks seq, ts, actor and the kind's
        # fields); the hash fields are the chain check's business, not replay's.
        try:
            return ev.parse_event(codec.decode(raw))
        except (codec.CodecError, ev.EventError) as exc:
            self._mark_bad(i, str(exc))
        return None

    def event(self, i: int) -> ev.BaseEvent | None:
        """The event on line i+1, or None past the valid prefix."""
        if i < 0 or i >= len(self):
            return None
        cached = self._cache.get(i)
        if cached is not None:
            self._cache.move_to_end(i)
            return cached
        event = self._parse(i, self.line(i))
        if event is not None:
            self._remember(i, event)
        return event

    def _remember(self, i: int, event: ev.BaseEvent) -> None:
        with self._lock:
            self._cache[i] = event
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def raw_lines(self, start: int, stop: int) -> Iterator[bytes]:
        """Raw bytes of lines start..stop-1 (no newline), read in large blocks."""
        stop = min(stop, len(self.index.offsets))
        offsets = self.index.offsets
        i = start
        while i < stop:
            block_end = i
            first = offsets[i]
            while block_end < stop and offsets[block_end] - first < READ_BLOCK:
                block_end += 1
            end_offset = offsets[block_end] if block_end < len(offsets) else self.index.end
            data = os.pread(self._fd, end_offset - first, first)
            yield from data.split(b"\n")[: block_end - i]
            i = block_end

    def events(self, start: int, stop: int) -> Iterator[ev.BaseEvent]:
        """Events on lines start..stop-1; stops at the first line that is not an event."""
        stop = min(stop, len(self))
        for i, raw in enumerate(self.raw_lines(start, stop), start=start):
            event = self._cache.get(i)
            if event is None:
                event = self._parse(i, raw)
                if event is None:
                    return
            yield event

    def kind(self, i: int) -> str:
        """The kind of line i, read cheaply (no pydantic)."""
        return line_kind(self.line(i))

    def ts(self, i: int) -> str:
        """The timestamp of line i, read cheaply."""
        raw = self.line(i)
        ts = _string_field(raw, _TS_KEY)
        if ts is None:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return ""
            ts = obj.get("ts", "") if isinstance(obj, dict) else ""
        return ts if isinstance(ts, str) else ""


def line_kind(raw: bytes) -> str:
    """The `kind` of a raw log line, from its bytes when canonical, else by decoding it."""
    kind = _string_field(raw, _KIND_KEY)
    if kind is None:
        obj, _why = check_line(raw)
        kind = obj.get("kind", "") if isinstance(obj, dict) else ""
    return kind if isinstance(kind, str) else ""
