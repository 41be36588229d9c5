"""A cursor over a recorded incident: the exact reduced state at any position, fast.

Position k is the state after the first k events (0 = before anything happened). The state
there is always `fold(events[:k])`: the cursor starts from the nearest checkpoint at or before
k (a reference to an immutable `IncidentState`, cheap because states share structure) and
reduces the few events after it. Checkpoints are taken every `every` events, incrementally as
positions are visited or by `build_checkpoints` (run in a background worker), so opening a
log never waits for a full fold. A checkpoint keeps its log tail as line numbers, not events:
a thousand checkpoints of a log of notes would otherwise hold 200 parsed notes each.
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import threading
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from warroom import events as ev
from warroom.replay.source import BOOKMARK_KIND, OPERATOR_KINDS, ReplaySource, line_kind
from warroom.state import TAIL_LEN, IncidentState, reduce

#: Events between checkpoints: a seek reduces at most this many events...
CHECKPOINT_EVERY = 500
#: ...unless the log is so long that more checkpoints than this would be needed: a
#: checkpoint of a 1,000-target log holds ~300 kB of probe views, so their count is bounded.
MAX_CHECKPOINTS = 1000
#: With more checkpoints than this, the built ones are moved out of the collector's sight.
FREEZE_AFTER = 100


@dataclass(frozen=True)
class Bookmark:
    """A bookmark and the position just after it (where "jump to bookmark" lands)."""

    position: int
    seq: int
    ts: str
    label: str


class ReplayCursor:
    """Seek / step / jump over a `ReplaySource`, yielding the reducer's state at each position."""

    def __init__(self, source: ReplaySource, *, every: int | None = None) -> None:
        self.source = source
        self.every = every or max(CHECKPOINT_EVERY, -(-len(source) // MAX_CHECKPOINTS))
        self._checkpoints: list[IncidentState] = [IncidentState()]
        #: Per checkpoint, the line indices of the events in its tail (its tail is kept empty).
        #: (8-byte arrays: a thousand checkpoints of 200 Python ints each add up)
        self._tails: list[array[int]] = [array("q")]
        self._lock = threading.Lock()
        self.position = 0
        self.state = self._checkpoints[0]
        self._tail_lines: tuple[int, ...] = ()
        #: Line indices of operator actions and bookmarks, scanned up to `_marks_until`.
        #: (8-byte arrays: in a log of notes nearly every line is an action)
        self._actions = array("q")
        self._bookmarks = array("q")
        self._marks_until = 0
        self._marks_lock = threading.Lock()
        self._generation = source.generation

    # -- facts ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of replayable events (the valid prefix of the log)."""
        return len(self.source)

    @property
    def at_end(self) -> bool:
        return self.position >= len(self)

    @property
    def current_event(self) -> ev.BaseEvent | None:
        """The last event applied (None at position 0)."""
        return self.source.event(self.position - 1) if self.position > 0 else None

    @property
    def checkpoint_count(self) -> int:
        return len(self._checkpoints)

    @property
    def checkpointed_until(self) -> int:
        """Positions below this have a checkpoint at most `every` events behind them."""
        return (len(self._checkpoints) - 1) * self.every

    # -- state at a position ---------------------------------------------------------------

    def _check_generation(self) -> None:
        """Start over when the source was re-indexed (states from the old bytes are wrong)."""
        if self._generation != self.source.generation:
            with self._lock, self._marks_lock:
                self._generation = self.source.generation
                del self._checkpoints[1:]
                del self._tails[1:]
                del self._actions[:]
                del self._bookmarks[:]
                self._marks_until = 0
            self.position, self.state = 0, self._checkpoints[0]
            self._tail_lines = ()

    def state_at(self, k: int) -> IncidentState:
        """The reducer's state after the first k events (clamped to the replayable range)."""
        return self._state_at(k)[0]

    def _state_at(self, k: int) -> tuple[IncidentState, tuple[int, ...]]:
        self._check_generation()
        k = max(0, min(k, len(self)))
        if k == self.position:
            return self.state, self._tail_lines
        if self.position < k <= self.position + self.every:
            # Stepping forward: continue from where we are rather than from a checkpoint.
            start, state, lines = self.position, self.state, self._tail_lines
        else:
            slot = min(k // self.every, len(self._checkpoints) - 1)
            start, (state, lines) = slot * self.every, self._restore(slot)
        return self._fold(start, state, k, lines)

    def _restore(self, slot: int) -> tuple[IncidentState, tuple[int, ...]]:
        """Checkpoint `slot` with its tail events read back from their lines."""
        state, lines = self._checkpoints[slot], tuple(self._tails[slot])
        if not lines:
            return state, lines
        tail = tuple(e for i in lines if (e := self.source.event(i)) is not None)
        return dataclasses.replace(state, tail=tail), lines

    def _fold(
        self, start: int, state: IncidentState, k: int, lines: tuple[int, ...]
    ) -> tuple[IncidentState, tuple[int, ...]]:
        """Reduce events start..k-1 onto `state`, recording checkpoints passed on the way;
        `lines` are the line indices of `state.tail`, kept in step.

        Stops early at a line that is not an event (the replayable part then ends there).
        """
        position = start
        every = self.every
        tail = deque(lines, maxlen=TAIL_LEN)
        samples = ev.ProbeSamples
        for event in self.source.events(start, k):
            state = reduce(state, event)
            if event.__class__ is not samples:  # the reducer's tail rule
                tail.append(position)
            position += 1
            if position % every == 0:
                self._record(position, state, tuple(tail))
        return state, tuple(tail)

    def _record(self, position: int, state: IncidentState, lines: tuple[int, ...]) -> None:
        slot = position // self.every
        with self._lock:
            if slot == len(self._checkpoints):
                self._checkpoints.append(dataclasses.replace(state, tail=()))
                self._tails.append(array("q", lines))

    def build_checkpoints(self, stop: Callable[[], bool] | None = None) -> int:
        """Fold forward from the last checkpoint to the end, recording checkpoints.

        Meant for a background worker: `stop()` is polled between checkpoints. Returns the
        position up to which seeks are fast.
        """
        self.scan_marks()
        slot = len(self._checkpoints) - 1
        start = slot * self.every
        state, lines = self._restore(slot)
        while True:
            if start + self.every > len(self) or (stop is not None and stop()):
                reached = min(start + self.every, len(self))
                break
            state, lines = self._fold(start, state, start + self.every, lines)
            if len(self._checkpoints) - 1 == slot:
                reached = len(self)  # a bad line ended the replayable part
                break
            slot, start = slot + 1, start + self.every
        if reached == len(self) and len(self._checkpoints) > FREEZE_AFTER:
            # The checkpoints are built and stay: keep the collector from walking their
            # millions of objects again at each full collection (a 200 ms pause mid-seek).
            gc.collect()
            gc.freeze()
        return reached

    def scan_marks(self) -> None:
        """Find operator actions and bookmarks in lines not scanned yet (kinds from bytes)."""
        with self._marks_lock:
            total = len(self)
            start = self._marks_until
            if start >= total:
                return
            actions, bookmarks = self._actions, self._bookmarks
            for i, raw in enumerate(self.source.raw_lines(start, total), start=start):
                kind = line_kind(raw)
                if kind in OPERATOR_KINDS:
                    actions.append(i)
                    if kind == BOOKMARK_KIND:
                        bookmarks.append(i)
            self._marks_until = total

    # -- moving ------------------------------------------------------------------------------

    def seek(self, k: int) -> IncidentState:
        """Move to position k (clamped) and return the state there."""
        k = max(0, min(k, len(self)))
        state, lines = self._state_at(k)
        self.position = min(k, len(self))
        self.state, self._tail_lines = state, lines
        return self.state

    def step(self, n: int = 1) -> IncidentState:
        return self.seek(self.position + n)

    def seek_fraction(self, fraction: float) -> IncidentState:
        """Move to a fraction (0.0-1.0) of the way through the log."""
        fraction = max(0.0, min(1.0, fraction))
        return self.seek(round(fraction * len(self)))

    def position_at_time(self, ts: str) -> int:
        """Number of events stamped at or before `ts` (RFC 3339 UTC; the log is in time order)."""
        total = len(self)
        key = ev.format_ts(ev.parse_ts(ts))
        return bisect.bisect_right(_TimeView(self.source, total), key, 0, total)

    def seek_time(self, ts: str) -> IncidentState:
        """Move to the state as it was at time `ts`."""
        return self.seek(self.position_at_time(ts))

    def position_for(self, text: str) -> int:
        """Where "go to" text points: "50%", "#seq", a time "14:04:33" (on the log's first
        day) or a full RFC 3339 time. `ValueError` says what was not understood."""
        text = text.strip()
        total = len(self)
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                raise ValueError(f"not a percentage: {text!r}") from None
            return round(max(0.0, min(100.0, percent)) / 100 * total)
        if text.startswith("#"):
            try:
                seq = int(text[1:])
            except ValueError:
                raise ValueError(f"not a seq: {text!r} (use e.g. #120)") from None
            return self.position_of_seq(seq)
        if "T" not in text:
            first = self.source.ts(0) if total else ""
            if not first:
                raise ValueError("the log has no events to go to")
            text = f"{first[:10]}T{text}"
        try:
            ev.parse_ts(text if text.endswith("Z") or "+" in text[10:] else text + "Z")
        except ValueError:
            raise ValueError(
                f"not a time, percentage or seq: {text!r} (try 14:05:00, 50% or #120)"
            ) from None
        return self.position_at_time(text if text.endswith("Z") or "+" in text[10:] else text + "Z")

    def position_of_seq(self, seq: int) -> int:
        """The position just after the event with this seq (lines are in seq order)."""
        total = len(self)
        if total == 0:
            return 0
        first = self.source.event(0)
        guess = seq - (first.seq if first is not None else 1) + 1
        guess = max(0, min(guess, total))
        if guess > 0:
            event = self.source.event(guess - 1)
            if event is not None and event.seq == seq:
                return guess
        for i in range(total):  # tampered numbering: fall back to a scan
            event = self.source.event(i)
            if event is not None and event.seq >= seq:
                return i + 1
        return total

    def next_action_position(self) -> int | None:
        """The position just after the first operator action after the current position."""
        self.scan_marks()
        i = bisect.bisect_left(self._actions, self.position)
        if i < len(self._actions) and self._actions[i] < len(self):
            return self._actions[i] + 1
        return None

    def prev_action_position(self) -> int | None:
        """The position just after the last operator action before the current event."""
        self.scan_marks()
        i = bisect.bisect_left(self._actions, self.position - 1)
        return self._actions[i - 1] + 1 if i > 0 else None

    def next_action(self) -> IncidentState | None:
        """Step forward to just after the next operator action (None: there is none)."""
        target = self.next_action_position()
        return None if target is None else self.seek(target)

    def prev_action(self) -> IncidentState | None:
        target = self.prev_action_position()
        return None if target is None else self.seek(target)

    def bookmarks(self) -> list[Bookmark]:
        """Every bookmark in the replayable part, in order."""
        self.scan_marks()
        found = []
        for i in self._bookmarks:
            event = self.source.event(i)
            if isinstance(event, ev.BookmarkAdded):
                found.append(Bookmark(i + 1, event.seq, event.ts, event.label))
        return found

    def next_bookmark(self) -> Bookmark | None:
        return next((b for b in self.bookmarks() if b.position > self.position), None)

    def prev_bookmark(self) -> Bookmark | None:
        return next((b for b in reversed(self.bookmarks()) if b.position < self.position), None)


class _TimeView:
    """Timestamps of the source's lines as a lazy sequence, for `bisect`."""

    def __init__(self, source: ReplaySource, total: int) -> None:
        self.source = source
        self.total = total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, i: int) -> str:
        return self.source.ts(i)
