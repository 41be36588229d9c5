"""Collapse a target's flapping (state changes in quick succession) into one line.

Pure, for the report's timelines and the console's log pane alike: give it the items in log
order and a function saying which are a target's state changes; each run of at least
`min_changes` changes of one target, no more than `gap_s` apart, comes back as one `Flapping`
at the place of its first change, with the count and the span. Everything else is untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from warroom.durations import format_duration
from warroom.events import BaseEvent, ProbeStateChanged, parse_ts

T = TypeVar("T")

#: Changes of one target closer together than this belong to one run.
GAP_S = 30.0
#: A run of fewer changes is shown as it is.
MIN_CHANGES = 4


@dataclass(frozen=True)
class StateChange:
    """What `collapse` needs to know of an item that is a state change."""

    target: str
    ts: str
    from_state: str
    to_state: str


@dataclass(frozen=True)
class Flapping:
    """A run of one target's state changes shown as one line."""

    target: str
    count: int
    first_ts: str
    last_ts: str
    states: tuple[str, ...]
    final_state: str
    first_seq: int = 0
    last_seq: int = 0

    @property
    def span_s(self) -> float:
        return max(0.0, (parse_ts(self.last_ts) - parse_ts(self.first_ts)).total_seconds())

    def summary(self) -> str:
        states = "/".join(self.states)
        return (
            f"{self.target} flapping {states}: {self.count} changes over "
            f"{format_duration(self.span_s)}, ended {self.final_state}"
        )


@dataclass
class Run:
    """A run of one target's state changes, by the positions of its first and last."""

    first: int
    last: int
    flapping: Flapping


@dataclass
class _Open:
    target: str
    first: int
    first_seq: int
    first_ts: str
    t: float
    last: int = 0
    last_seq: int = 0
    last_ts: str = ""
    count: int = 0
    final_state: str = ""
    states: list[str] = field(default_factory=list)


class RunFinder:
    """Finds the flapping runs of a stream of state changes, holding only each target's open
    run and the runs found: a million-change log is collapsed without keeping its changes."""

    def __init__(self, *, gap_s: float = GAP_S, min_changes: int = MIN_CHANGES) -> None:
        self.gap_s = gap_s
        self.min_changes = min_changes
        self._open: dict[str, _Open] = {}
        #: target -> its runs of at least `min_changes`, in order.
        self.runs: dict[str, list[Run]] = {}

    def add(self, position: int, seq: int, change: StateChange) -> None:
        """Take the change at `position` (increasing) of the item stream."""
        t = parse_ts(change.ts).timestamp()
        run = self._open.get(change.target)
        if run is None or t - run.t > self.gap_s:
            if run is not None:
                self._close(run)
            run = self._open[change.target] = _Open(change.target, position, seq, change.ts, t)
        run.t, run.last, run.last_seq, run.last_ts = t, position, seq, change.ts
        run.count += 1
        run.final_state = change.to_state
        for state in (change.from_state, change.to_state):
            if state not in run.states:
                run.states.append(state)

    def _close(self, run: _Open) -> None:
        if run.count >= self.min_changes:
            found = Flapping(
                target=run.target,
                count=run.count,
                first_ts=run.first_ts,
                last_ts=run.last_ts,
                states=tuple(run.states),
                final_state=run.final_state,
                first_seq=run.first_seq,
                last_seq=run.last_seq,
            )
            self.runs.setdefault(run.target, []).append(Run(run.first, run.last, found))

    def finish(self) -> Collapser:
        """Close the open runs; what tells, position by position, how to show each change."""
        for run in self._open.values():
            self._close(run)
        self._open.clear()
        return Collapser(self.runs)


class Collapser:
    """Walks the items again in order and says, for each state change, what to show."""

    def __init__(self, runs: dict[str, list[Run]]) -> None:
        self._runs = runs
        self._next: dict[str, int] = {}

    def show(self, position: int, target: str) -> Flapping | bool:
        """The run starting at `position`, True to show the change as it is, or False when it
        is inside a run (shown by the run's line)."""
        runs = self._runs.get(target)
        if not runs:
            return True
        i = self._next.get(target, 0)
        while i < len(runs) and runs[i].last < position:
            i += 1
        self._next[target] = i
        if i == len(runs) or position < runs[i].first:
            return True
        return runs[i].flapping if position == runs[i].first else False


def collapse(
    items: Sequence[T],
    change_of: Callable[[T], StateChange | None],
    *,
    gap_s: float = GAP_S,
    min_changes: int = MIN_CHANGES,
    seq_of: Callable[[T], int] | None = None,
) -> list[T | Flapping]:
    """`items` with every flapping run replaced by one `Flapping` where the run began."""
    finder = RunFinder(gap_s=gap_s, min_changes=min_changes)
    changes = [change_of(item) for item in items]
    for i, change in enumerate(changes):
        if change is not None:
            finder.add(i, seq_of(items[i]) if seq_of else 0, change)
    collapser = finder.finish()
    out: list[T | Flapping] = []
    for i, item in enumerate(items):
        change = changes[i]
        shown = True if change is None else collapser.show(i, change.target)
        if shown is True:
            out.append(item)
        elif shown is not False:
            out.append(shown)
    return out


def event_change(event: BaseEvent) -> StateChange | None:
    """`change_of` for a list of events (the console's log pane)."""
    if isinstance(event, ProbeStateChanged):
        return StateChange(event.target, event.ts, event.from_state, event.to_state)
    return None


def collapse_events(events: Sequence[BaseEvent]) -> list[BaseEvent | Flapping]:
    """`events` with each target's flapping as one `Flapping` (its `summary()` is the line)."""
    return collapse(events, event_change, seq_of=lambda e: e.seq)
