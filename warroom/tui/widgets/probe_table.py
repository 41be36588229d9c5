"""The probe table: one row per target, updated by key from `IncidentState.probes`."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from warroom.durations import format_duration
from warroom.events import parse_ts
from warroom.state import IncidentState, ProbeView
from warroom.tui.widgets.sparkline import sparkline

#: Symbol and colour per state: colour is never the only signal.
STATE_LOOK = {
    "up": ("●", "green"),
    "degraded": ("▲", "yellow"),
    "down": ("✖", "bold red"),
    "unknown": ("?", "dim"),
}
#: Worst first: the default sort puts what is broken at the top.
STATE_RANK = {"down": 0, "degraded": 1, "unknown": 2, "up": 3}
SORT_MODES = ("state", "name", "service", "latency")
SPARK_WIDTH = 14

COLUMNS = (
    ("state", "State", 10),
    ("target", "Target", 22),
    ("service", "Service", 16),
    ("latency", "Latency", 8),
    ("trend", "Trend", SPARK_WIDTH),
    ("since", "In state", 8),
)


def state_cell(state: str) -> Text:
    symbol, style = STATE_LOOK.get(state, ("?", "dim"))
    return Text(f"{symbol} {state}", style=style)


def latency_cell(view: ProbeView) -> Text:
    if view.latency_ms is None:
        return Text("-", style="dim", justify="right")
    style = "yellow" if view.state == "degraded" else ""
    return Text(f"{view.latency_ms:.0f} ms", style=style, justify="right")


def since_text(view: ProbeView, now: datetime) -> str:
    if not view.since:
        return "-"
    return format_duration(max(0.0, (now - parse_ts(view.since)).total_seconds()))


def matches(view: ProbeView, needle: str) -> bool:
    """Filter by case-insensitive substring on target, service or state."""
    if not needle:
        return True
    needle = needle.lower()
    return needle in view.target.lower() or needle in view.service.lower() or needle in view.state


class ProbeTable(DataTable):
    """Sortable, filterable table of probe targets; renders only the state it is given."""

    class TargetHighlighted(Message):
        """The cursor moved onto a target (or the table emptied: `target` is None)."""

        def __init__(self, table: ProbeTable, target: str | None, service: str | None) -> None:
            super().__init__()
            self.table = table
            self.target = target
            self.service = service

        @property
        def control(self) -> ProbeTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.sort_mode = SORT_MODES[0]
        self.filter_text = ""
        self._probes: dict[str, ProbeView] | None = None
        #: What each target looked like when last processed (shown or filtered out).
        self._seen: dict[str, ProbeView] = {}
        self._shown: set[str] = set()
        self._now: datetime | None = None

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    # -- rendering from state --------------------------------------------------------------

    def update_from(self, state: IncidentState, now: datetime) -> None:
        """Bring the rows in line with `state.probes`, touching only what changed."""
        self._now = now
        probes = state.probes
        if probes is self._probes:
            return
        self._probes = probes
        resort = False
        with self.app.batch_update():
            for target, view in probes.items():
                old = self._seen.get(target)
                if old is view:
                    continue
                self._seen[target] = view
                resort |= self._apply(view, old, now)
            if len(self._seen) > len(probes):
                for target in [t for t in self._seen if t not in probes]:
                    del self._seen[target]
                    if target in self._shown:
                        self._shown.discard(target)
                        self.remove_row(target)
            if resort:
                self._resort()

    def _apply(self, view: ProbeView, old: ProbeView | None, now: datetime) -> bool:
        """Add, remove or update one row; True when the order may have changed."""
        target = view.target
        visible = matches(view, self.filter_text)
        if target not in self._shown:
            if not visible:
                return False
            self.add_row(*self._cells(view, now), key=target)
            self._shown.add(target)
            return True
        if not visible:
            self.remove_row(target)
            self._shown.discard(target)
            return False
        if old is None:
            old = ProbeView(target=target, state="")
        resort = False
        if old.state != view.state or old.since != view.since:
            self.update_cell(target, "state", state_cell(view.state))
            self.update_cell(target, "since", since_text(view, now))
            resort |= self.sort_mode == "state"
        if old.latency_ms != view.latency_ms or old.state != view.state:
            self.update_cell(target, "latency", latency_cell(view))
            resort |= self.sort_mode == "latency"
        if old.history != view.history:
            self.update_cell(target, "trend", Text(sparkline(view.history, SPARK_WIDTH)))
        if old.service != view.service:
            self.update_cell(target, "service", view.service)
            resort |= self.sort_mode == "service"
        return resort

    def _cells(self, view: ProbeView, now: datetime) -> tuple[object, ...]:
        return (
            state_cell(view.state),
            view.target,
            view.service,
            latency_cell(view),
            Text(sparkline(view.history, SPARK_WIDTH)),
            since_text(view, now),
        )

    def refresh_times(self, now: datetime) -> None:
        """Update "in state" for the rows on screen only (cheap at thousands of targets)."""
        self._now = now
        if not self.row_count:
            return
        first = max(0, int(self.scroll_y))
        last = min(self.row_count, first + self.size.height + 1)
        rows = self.ordered_rows
        for index in range(first, last):
            target = rows[index].key.value
            view = self._seen.get(target or "")
            if view is not None:
                self.update_cell(target, "since", since_text(view, now))

    # -- sorting and filtering ---------------------------------------------------------------

    def _sort_key(self, target: str) -> tuple[object, ...]:
        view = self._seen[target]
        rank = STATE_RANK.get(view.state, 2)
        if self.sort_mode == "name":
            return (target,)
        if self.sort_mode == "service":
            return (view.service, rank, target)
        if self.sort_mode == "latency":
            latency = view.latency_ms if view.latency_ms is not None else -1.0
            return (-latency, target)
        return (rank, view.service, target)

    def _resort(self) -> None:
        selected = self.selected_target
        self.sort("target", key=self._sort_key)
        if selected is not None and selected in self._shown:
            self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)

    def cycle_sort(self) -> str:
        """Switch to the next sort order; returns its name."""
        index = SORT_MODES.index(self.sort_mode)
        self.sort_mode = SORT_MODES[(index + 1) % len(SORT_MODES)]
        if self.row_count:
            self._resort()
        return self.sort_mode

    def set_filter(self, text: str) -> None:
        """Show only targets whose target, service or state contains `text`."""
        text = text.strip().lower()
        if text == self.filter_text:
            return
        self.filter_text = text
        now = self._now or datetime.now().astimezone()
        with self.app.batch_update():
            for target, view in self._seen.items():
                visible = matches(view, text)
                if visible and target not in self._shown:
                    self.add_row(*self._cells(view, now), key=target)
                    self._shown.add(target)
                elif not visible and target in self._shown:
                    self.remove_row(target)
                    self._shown.discard(target)
            if self.row_count:
                self._resort()
        self._announce()

    # -- selection ---------------------------------------------------------------------------

    @property
    def selected_target(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return key.value

    def _announce(self) -> None:
        target = self.selected_target
        view = self._seen.get(target) if target else None
        self.post_message(self.TargetHighlighted(self, target, view.service if view else None))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce()
