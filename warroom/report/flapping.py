"""Collapse a target's flapping (state changes in quick succession) into one line.

Pure, for the report's timelines and the console's log pane alike: give it the items in log
order and a function saying which are a target's state changes; each run of at least
`min_changes` changes of one target, no more than `gap_s` apart, comes back as one `Flapping`
at the place of its first change, with the count and the span. Everything else is untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


def collapse(
    items: Sequence[T],
    change_of: Callable[[T], StateChange | None],
    *,
    gap_s: float = GAP_S,
    min_changes: int = MIN_CHANGES,
    seq_of: Callable[[T], int] | None = None,
) -> list[T | Flapping]:
    """`items` with every flapping run replaced by one `Flapping` where the run began."""
    runs: dict[str, list[int]] = {}
    last_time: dict[str, float] = {}
    member: dict[int, int] = {}  # item index -> index of the first item of its run
    groups: dict[int, list[int]] = {}
    for i, item in enumerate(items):
        change = change_of(item)
        if change is None:
            continue
        t = parse_ts(change.ts).timestamp()
        run = runs.get(change.target)
        if run is None or t - last_time[change.target] > gap_s:
            _close(run, min_changes, member, groups)
            run = runs[change.target] = []
        run.append(i)
        last_time[change.target] = t
    for run in runs.values():
        _close(run, min_changes, member, groups)
    out: list[T | Flapping] = []
    for i, item in enumerate(items):
        head = member.get(i)
        if head is None:
            out.append(item)
        elif head == i:
            out.append(_flapping([items[j] for j in groups[i]], change_of, seq_of))
    return out


def _close(
    run: list[int] | None, min_changes: int, member: dict[int, int], groups: dict[int, list[int]]
) -> None:
    if run and len(run) >= min_changes:
        groups[run[0]] = run
        for j in run:
            member[j] = run[0]


def _flapping(
    run: list[T], change_of: Callable[[T], StateChange | None], seq_of: Callable[[T], int] | None
) -> Flapping:
    changes = [c for c in map(change_of, run) if c is not None]
    states: list[str] = []
    for c in changes:
        for s in (c.from_state, c.to_state):
            if s not in states:
                states.append(s)
    return Flapping(
        target=changes[0].target,
        count=len(changes),
        first_ts=changes[0].ts,
        last_ts=changes[-1].ts,
        states=tuple(states),
        final_state=changes[-1].to_state,
        first_seq=seq_of(run[0]) if seq_of else 0,
        last_seq=seq_of(run[-1]) if seq_of else 0,
    )


def event_change(event: BaseEvent) -> StateChange | None:
    """`change_of` for a list of events (the console's log pane)."""
    if isinstance(event, ProbeStateChanged):
        return StateChange(event.target, event.ts, event.from_state, event.to_state)
    return None


def collapse_events(events: Sequence[BaseEvent]) -> list[BaseEvent | Flapping]:
    """`events` with each target's flapping as one `Flapping` (its `summary()` is the line)."""
    return collapse(events, event_change, seq_of=lambda e: e.seq)
