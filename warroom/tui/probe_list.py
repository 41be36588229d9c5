"""What the probe list shows and in which order: sorting, filtering, columns and cell text.

Plain data in, plain data out, no Textual: the widget (`tui/widgets/probe_table.py`) asks
this module which targets to show, in which order, in which columns and with what words, and
only paints. A stale target (its data not live) is shown as `stale` whatever its last state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from warroom.durations import format_duration
from warroom.events import parse_ts
from warroom.state import ProbeView
from warroom.tui.widgets.sparkline import sparkline
from warroom.untrusted import one_line

#: The state shown for a target whose data is not live (set by the session, not the reducer).
STALE = "stale"
#: A symbol beside each state's word, so colour is never the only signal.
SYMBOLS = {"up": "●", "degraded": "▲", "down": "✖", "unknown": "?", STALE: "◌"}
#: Worst first: what is broken, then what cannot be seen, then what is fine.
STATE_RANK = {"down": 0, "degraded": 1, STALE: 2, "unknown": 3, "up": 4}
#: Sort modes in the order `s` cycles through them.
SORT_MODES = ("state", "name", "service", "latency", "in-state", "age")
SPARK_WIDTH = 14
#: Cells between two columns.
GAP = 1


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its title, narrowest width, alignment and the sort its title click picks."""

    key: str
    title: str
    width: int
    right: bool = False
    sort: str | None = None
    #: How many more cells it takes when there is room (-1: all that is left).
    grow: int = 0


STATE_COLUMN = Column("state", "State", 10, sort="state")
#: The state as its symbol alone, where the word does not fit beside the others.
SYMBOL = Column("symbol", "", 1, sort="state")
TARGET = Column("target", "Target", 12, sort="name", grow=28)
SERVICE = Column("service", "Service", 12, sort="service", grow=6)
LATENCY = Column("latency", "Latency", 8, right=True, sort="latency")
TREND = Column("trend", "Trend", SPARK_WIDTH)
IN_STATE = Column("in-state", "In state", 8, right=True, sort="in-state")
AGE = Column("age", "Age", 6, right=True, sort="age")
REASON = Column("reason", "Reason", 16, grow=-1)

#: Left to right, when shown.
COLUMNS = (SYMBOL, STATE_COLUMN, TARGET, SERVICE, LATENCY, TREND, IN_STATE, AGE, REASON)
#: Shown at every width: what is wrong, where, how slow, and how old that news is.
REQUIRED = (STATE_COLUMN, TARGET, LATENCY, AGE)
#: The same in fewer cells (a tmux split, the side of an 80-column terminal).
NARROW = (SYMBOL, TARGET, LATENCY, AGE)
#: The others, in the order they join as the list gets wider.
OPTIONAL = (SERVICE, IN_STATE, TREND, REASON)
#: Who gets spare cells first (service names are short: a little room shows them whole).
GROW_ORDER = (SERVICE, TARGET)


@dataclass(frozen=True, slots=True)
class Placed:
    """A column as laid out: its first cell (after the gap before it) and its width."""

    column: Column
    x: int
    width: int


def layout(width: int) -> tuple[Placed, ...]:
    """The columns that fit in `width` cells and where they go (the target shrinks last)."""
    required = REQUIRED
    used = sum(column.width + GAP for column in REQUIRED)
    if used > width:
        required = NARROW
        used = sum(column.width + GAP for column in NARROW)
    chosen = set(required)
    for column in OPTIONAL:
        if used + column.width + GAP > width:
            break
        chosen.add(column)
        used += column.width + GAP
    widths = {column.key: column.width for column in chosen}
    spare = width - used
    if spare < 0:
        widths[TARGET.key] = max(4, TARGET.width + spare)
    for column in GROW_ORDER:
        if column in chosen and column.grow > 0 and spare > 0:
            take = min(spare, column.grow)
            widths[column.key] += take
            spare -= take
    if REASON in chosen and spare > 0:
        widths[REASON.key] += spare
    placed = []
    x = 0
    for column in COLUMNS:
        if column in chosen:
            x += GAP
            placed.append(Placed(column, x, widths[column.key]))
            x += widths[column.key]
    return tuple(placed)


def column_at(columns: Iterable[Placed], x: int) -> Column | None:
    """The column whose cells (or the gap before them) cover cell `x`."""
    for placed in columns:
        if placed.x - GAP <= x < placed.x + placed.width:
            return placed.column
    return None


# -- what a row says ---------------------------------------------------------------------------


def shown_state(view: ProbeView, stale: bool) -> str:
    """The state a row shows: `stale` when its data is not live, else its last known state."""
    if stale:
        return STALE
    return view.state if view.state in SYMBOLS else "unknown"


@lru_cache(maxsize=16384)
def _seconds(ts: str) -> float:
    """POSIX seconds of an RFC 3339 timestamp (a samples event stamps thousands alike)."""
    return parse_ts(ts).timestamp()


def _elapsed(ts: str, now: datetime) -> str:
    if not ts:
        return "-"
    # Whole seconds: a cell that ticks in tenths is noise at a glance.
    seconds = int(max(0.0, now.timestamp() - _seconds(ts)))
    return format_duration(seconds) if seconds else "0s"


def age_text(view: ProbeView, now: datetime) -> str:
    """How long ago the last result for this target arrived ("-": never)."""
    return _elapsed(view.last_result_at, now)


def in_state_text(view: ProbeView, now: datetime) -> str:
    """How long the target has been in its state ("-": no state change seen)."""
    return _elapsed(view.since, now)


def latency_text(view: ProbeView) -> str:
    return "-" if view.latency_ms is None else f"{view.latency_ms:.0f} ms"


def cell_text(key: str, view: ProbeView, now: datetime, stale: bool) -> str:
    """The words in one cell of a row (one line, untrusted parts through the sanitiser)."""
    if key == "state":
        state = shown_state(view, stale)
        return f"{SYMBOLS[state]} {state}"
    if key == "symbol":
        return SYMBOLS[shown_state(view, stale)]
    if key == "target":
        return one_line(view.target)
    if key == "service":
        return one_line(view.service)
    if key == "latency":
        return latency_text(view)
    if key == "trend":
        return sparkline(view.history, SPARK_WIDTH)
    if key == "in-state":
        return in_state_text(view, now)
    if key == "age":
        return age_text(view, now)
    if key == "reason":
        reason = one_line(view.reason)
        if stale:
            return f"last {view.state}" + (f": {reason}" if reason else "")
        return reason
    raise KeyError(key)


def header_text(column: Column, sort_mode: str, reverse: bool) -> str:
    """A column's title, with an arrow on the sorted one (down: the mode's own order)."""
    if column.sort is not None and column.sort == sort_mode:
        arrow = "↑" if reverse else "↓"
        return f"{column.title} {arrow}" if column.title else arrow
    return column.title


# -- which rows, in which order ----------------------------------------------------------------


def normalise_filter(text: str) -> str:
    return " ".join(text.lower().split())


def _in_order(term: str, text: str) -> bool:
    """True when the letters of `term` appear in `text` in that order (fuzzy: "chkt")."""
    rest = iter(text)
    return all(char in rest for char in term)


def matches(view: ProbeView, needle: str, stale: bool = False) -> bool:
    """Every word of `needle` is in the target, service or shown state, or (3+ letters)
    spelled in order in the target or service. `needle` is `normalise_filter`ed."""
    if not needle:
        return True
    target = view.target.lower()
    service = view.service.lower()
    state = shown_state(view, stale)
    for term in needle.split():
        if term in target or term in service or term in state:
            continue
        if len(term) >= 3 and (_in_order(term, target) or _in_order(term, service)):
            continue
        return False
    return True


_NEVER = float("-inf")
SortKey = Callable[[ProbeView, bool], tuple[object, ...]]


def _by_state(view: ProbeView, stale: bool) -> tuple[object, ...]:
    return (STATE_RANK[shown_state(view, stale)], view.service, view.target)


def _by_name(view: ProbeView, stale: bool) -> tuple[object, ...]:
    return (view.target,)


def _by_service(view: ProbeView, stale: bool) -> tuple[object, ...]:
    return (view.service, STATE_RANK[shown_state(view, stale)], view.target)


def _by_latency(view: ProbeView, stale: bool) -> tuple[object, ...]:
    # Slowest first; targets with no latency after all that have one.
    if view.latency_ms is None:
        return (1, 0.0, view.target)
    return (0, -view.latency_ms, view.target)


def _by_in_state(view: ProbeView, stale: bool) -> tuple[object, ...]:
    # What changed most recently first: a fresh flip is what a responder looks for.
    if not view.since:
        return (1, 0.0, view.target)
    return (0, -_seconds(view.since), view.target)


def _by_age(view: ProbeView, stale: bool) -> tuple[object, ...]:
    # Oldest data first (never heard of: oldest of all).
    seconds = _seconds(view.last_result_at) if view.last_result_at else _NEVER
    return (seconds, view.target)


SORT_KEYS: dict[str, SortKey] = {
    "state": _by_state,
    "name": _by_name,
    "service": _by_service,
    "latency": _by_latency,
    "in-state": _by_in_state,
    "age": _by_age,
}
#: The view fields each sort reads (a change elsewhere cannot move a row).
SORT_FIELDS = {
    "state": ("state", "service"),
    "name": (),
    "service": ("service", "state"),
    "latency": ("latency_ms",),
    "in-state": ("since",),
    "age": ("last_result_at",),
}
#: The sorts that rank by shown state, so a target going stale (or live again) moves.
STALE_SORTS = frozenset({"state", "service"})


def order(
    views: Iterable[ProbeView],
    mode: str = "state",
    *,
    reverse: bool = False,
    stale: Collection[str] = frozenset(),
    needle: str = "",
) -> list[str]:
    """The targets to show, in order: those matching `needle`, sorted by `mode` (`reverse`
    turns the whole order round)."""
    key = SORT_KEYS[mode]
    shown = [view for view in views if matches(view, needle, view.target in stale)]
    shown.sort(key=lambda view: key(view, view.target in stale), reverse=reverse)
    return [view.target for view in shown]


def moves(mode: str, old: ProbeView, new: ProbeView) -> bool:
    """Whether the change from `old` to `new` can move the row in a list sorted by `mode`."""
    return any(getattr(old, name) != getattr(new, name) for name in SORT_FIELDS[mode])
