"""The probe list: one line per target, painted with Textual's Line API from `IncidentState`.

A `ScrollView` whose `render_line` builds a row's `Strip` once per version of that row and
keeps it in an `LRUCache` (as Textual's `Tree` and Toolong's `LogLines` do), so a samples
event that touches every target repaints only the rows on screen, and a re-sort reuses the
strips it already has. What is shown, in which order and with which words comes from the
pure `warroom.tui.probe_list`; the colours from the component classes in `DEFAULT_CSS`,
written with theme variables so themes apply.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from itertools import count
from operator import attrgetter
from time import monotonic
from typing import Any, ClassVar, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.actions import SkipAction
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from warroom.state import IncidentState, ProbeView
from warroom.tui import probe_list as pl
from warroom.tui.probe_list import SORT_MODES

#: Rendered rows kept: a few screens' worth, each with and without the cursor.
LINE_CACHE_SIZE = 1024
#: A re-sort waits until no key has been pressed for this long (seconds).
RESORT_IDLE_S = 0.15
#: From this many targets, re-sorts caused by probe churn come at most every
#: `RESORT_GAP_S`: each costs milliseconds there (sort and repaint; see
#: tests/bench/bench_probe_table.py), and rows that jump more often cannot be read anyway.
RESORT_GAP_ROWS = 1000
RESORT_GAP_S = 0.5

_STATES = tuple(pl.SYMBOLS)


class _Looks(NamedTuple):
    """The Rich styles of one paint, worked out once per style change (not per line)."""

    base: Style
    header: Style
    stale: Style
    cursor: Style
    hover: Style
    states: dict[str, Style]


class _Key:
    """`row.key.value` of DataTable's rows, for callers written against that API."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


class ListedRow:
    """A shown row as `ProbeTable.ordered_rows` gives it: `row.key.value` is its target."""

    __slots__ = ("key",)

    def __init__(self, target: str) -> None:
        self.key = _Key(target)


_screen_keys: dict[type, frozenset[str]] = {}


class _TableMessage(Message):
    """A message from the probe list; `control` is the list that sent it."""

    def __init__(self, table: ProbeTable) -> None:
        super().__init__()
        self.table = table

    @property
    def control(self) -> ProbeTable:
        return self.table


class ProbeTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Sortable, filterable list of probe targets; renders only the state it is given."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Details"),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Move", key_display="j/k"),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        # The screen's own g/G win where it has them (the replay timeline): see check_action.
        Binding("g", "first('g')", "First", show=False),
        Binding("G", "last('G')", "Last", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("S", "reverse_sort", "Reverse sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "probe-list--header",
        "probe-list--cursor",
        "probe-list--hover",
        "probe-list--up",
        "probe-list--degraded",
        "probe-list--down",
        "probe-list--unknown",
        "probe-list--stale",
    }

    DEFAULT_CSS = """
    ProbeTable {
        width: 1fr;
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        color: $foreground;
        & > .probe-list--header {
            background: $panel;
            color: $foreground;
            text-style: bold;
        }
        & > .probe-list--cursor {
            background: $block-cursor-blurred-background;
        }
        &:focus > .probe-list--cursor {
            background: $block-cursor-background;
            text-style: bold;
        }
        & > .probe-list--hover {
            background: $block-hover-background;
        }
        & > .probe-list--up {
            color: $success;
        }
        & > .probe-list--degraded {
            color: $warning;
        }
        & > .probe-list--down {
            color: $error;
            text-style: bold;
        }
        & > .probe-list--unknown {
            color: $text-muted;
        }
        & > .probe-list--stale {
            color: $text-muted;
            text-style: italic;
        }
    }
    """

    class TargetHighlighted(_TableMessage):
        """The cursor moved onto a target (or the list emptied: `target` is None)."""

        def __init__(self, table: ProbeTable, target: str | None, service: str | None) -> None:
            super().__init__(table)
            self.target = target
            self.service = service

    class TargetSelected(_TableMessage):
        """Enter or a double click on a target: the responder wants its details."""

        def __init__(self, table: ProbeTable, target: str, service: str) -> None:
            super().__init__(table)
            self.target = target
            self.service = service

    class SortChanged(_TableMessage):
        """The sort order changed (a key or a header click): `mode` and `reverse`."""

        def __init__(self, table: ProbeTable, mode: str, reverse: bool) -> None:
            super().__init__(table)
            self.mode = mode
            self.reverse = reverse

    class FilterClearRequested(_TableMessage):
        """Escape in the list with a filter set: the list shows all again; the screen should
        clear (and hide) whatever holds the filter text."""

    def __init__(
        self, *, id: str | None = None, name: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, name=name, classes=classes)
        self.sort_mode = SORT_MODES[0]
        self.sort_reverse = False
        self.filter_text = ""
        self._probes: Mapping[str, ProbeView] | None = None
        self._views: dict[str, ProbeView] = {}
        #: Bumped whenever a target's view or staleness changes: part of its lines' cache key.
        self._versions: dict[str, int] = {}
        self._next_version = count(1)
        self._stale: frozenset[str] = frozenset()
        self._now: datetime | None = None
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._cursor = 0
        self._hover = -1
        self._announced: tuple[str | None] | None = None
        self._columns: tuple[pl.Placed, ...] = ()
        self._columns_width = -1
        self._lines: LRUCache[tuple[object, ...], Strip] = LRUCache(LINE_CACHE_SIZE)
        self._looks: _Looks | None = None
        #: Which look the lines are painted in (part of their cache key), by its styles.
        self._look = 0
        self._look_ids: dict[tuple[object, ...], int] = {}
        self._paint_width: int | None = None
        #: Targets were added, removed or filtered since the last re-sort.
        self._members_changed = True
        #: Each target's sort key for `_keys_mode` (dropped when its view changes it).
        self._keys: dict[str, tuple[object, ...]] = {}
        self._keys_mode: str | None = None
        self._resort_timer: Timer | None = None
        self._resort_pending = False
        self._sorted_at = float("-inf")
        #: Row lines built so far (cache misses): what a samples event costs, for tests/benches.
        self.rows_built = 0

    # -- painting -----------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # A theme, focus or hover change: every look may differ. Lines are cached per look
        # (see `_paint_looks`), so focus leaving for a dialog and coming back rebuilds none.
        self._looks = None
        self.refresh()

    def _paint_looks(self) -> _Looks:
        looks = self._looks
        if looks is None:
            base = self.rich_style

            def style(name: str) -> Style:
                # Only what the class sets, with its colours blended as painted
                # ($text-muted and friends are translucent).
                full = self.get_component_rich_style(name)
                own = self.get_component_rich_style(name, partial=True)
                return own + Style(
                    color=full.color if own.color is not None else None,
                    bgcolor=full.bgcolor if own.bgcolor is not None else None,
                )

            looks = self._looks = _Looks(
                base=base,
                header=base + style("probe-list--header"),
                stale=base + style("probe-list--stale"),
                cursor=style("probe-list--cursor"),
                hover=style("probe-list--hover"),
                states={state: style(f"probe-list--{state}") for state in _STATES},
            )
            signature = (*looks[:5], *looks.states.items())
            self._look = self._look_ids.setdefault(signature, len(self._look_ids))
        return looks

    def render_lines(self, crop: Region) -> list[Strip]:
        # The content width (less the scrollbar) takes a region computation to find: once
        # per paint, not per line.
        self._paint_width = self.scrollable_content_region.width
        try:
            return super().render_lines(crop)
        finally:
            self._paint_width = None

    def _width(self) -> int:
        width = self._paint_width
        return self.scrollable_content_region.width if width is None else width

    def _layout(self) -> tuple[pl.Placed, ...]:
        width = self._width()
        if width != self._columns_width:
            self._columns_width = width
            self._columns = pl.layout(width)
        return self._columns

    def render_line(self, y: int) -> Strip:
        """Line `y` of the widget: the header on top, then the rows from the scroll offset."""
        if y == 0:
            return self._header_strip()
        row = y - 1 + self.scroll_offset.y
        if 0 <= row < len(self._order):
            return self._row_strip(row)
        return Strip.blank(self._width(), self._paint_looks().base)

    def _header_strip(self) -> Strip:
        columns = self._layout()
        width = self._width()
        looks = self._paint_looks()
        key = ("header", self._look, width, self.sort_mode, self.sort_reverse)
        strip = self._lines.get(key)
        if strip is None:
            texts = [pl.header_text(p.column, self.sort_mode, self.sort_reverse) for p in columns]
            strip = self._strip(columns, texts, width, looks.header, None)
            self._lines.set(key, strip)
        return strip

    def _row_strip(self, row: int) -> Strip:
        target = self._order[row]
        view = self._views[target]
        stale = target in self._stale
        now = self._now or datetime.now(UTC)
        age = pl.age_text(view, now)
        in_state = pl.in_state_text(view, now)
        width = self._width()
        cursor = row == self._cursor
        hover = row == self._hover
        self._paint_looks()
        key = (target, self._versions[target], self._look, width, cursor, hover, age, in_state)
        strip = self._lines.get(key)
        if strip is None:
            self.rows_built += 1
            strip = self._build_row(view, stale, now, width, cursor, hover)
            self._lines.set(key, strip)
        return strip

    def _build_row(
        self, view: ProbeView, stale: bool, now: datetime, width: int, cursor: bool, hover: bool
    ) -> Strip:
        looks = self._paint_looks()
        style = looks.stale if stale else looks.base
        if cursor:
            style += looks.cursor
        elif hover:
            style += looks.hover
        columns = self._layout()
        texts = [pl.cell_text(p.column.key, view, now, stale) for p in columns]
        accents: dict[str, Style] = {}
        if not stale:
            state = pl.shown_state(view, stale)
            accents["state"] = accents["symbol"] = style + looks.states[state]
            if state == "degraded":
                accents["latency"] = accents["state"]
        return self._strip(columns, texts, width, style, accents)

    @staticmethod
    def _strip(
        columns: tuple[pl.Placed, ...],
        texts: list[str],
        width: int,
        style: Style,
        accents: dict[str, Style] | None,
    ) -> Strip:
        """One line of cells at their columns, cropped (with an ellipsis) or padded to fit.

        Runs of one style become one segment, and every cell is exactly its width, so the
        strip is built without measuring or simplifying it afterwards.
        """
        segments = []
        run: list[str] = []
        run_style = style
        x = 0
        for placed, text in zip(columns, texts, strict=True):
            size = placed.width
            length = cell_len(text)
            if length > size:
                text = set_cell_size(text, size - 1) + "…" if size > 1 else set_cell_size(text, 1)
            elif placed.column.right:
                text = " " * (size - length) + text
            elif length < size:
                text += " " * (size - length)
            cell_style = accents.get(placed.column.key, style) if accents else style
            gap = " " * (placed.x - x)
            if cell_style is not run_style:
                run.append(gap)
                segments.append(Segment("".join(run), run_style))
                run, run_style = [text], cell_style
            else:
                run += (gap, text)
            x = placed.x + size
        if x < width:
            if run_style is not style:
                segments.append(Segment("".join(run), run_style))
                run, run_style = [], style
            run.append(" " * (width - x))
        segments.append(Segment("".join(run), run_style))
        strip = Strip(segments, max(x, width))
        return strip.crop(0, width) if x > width else strip

    def refresh_times(self, now: datetime) -> None:
        """Let age and time-in-state move on (once a second): of the rows on screen, only
        those whose words changed are built again."""
        self._now = now
        if self._order:
            self.refresh()

    # -- rendering from state -----------------------------------------------------------------

    def update_from(
        self, state: IncidentState, now: datetime, stale: Collection[str] = frozenset()
    ) -> None:
        """Bring the rows in line with `state.probes`; `stale` names the targets whose data is
        not live (shown as stale, never as their last state).

        Cheap when little changed: a changed row is repainted only if it is on screen, and a
        re-sort waits for a pause in the typing (see `_resort_soon`).
        """
        self._now = now
        probes = state.probes
        stale = stale if isinstance(stale, frozenset) else frozenset(stale)
        stale_changed = stale != self._stale
        if probes is self._probes and not stale_changed:
            return
        views, versions, index, keys = self._views, self._versions, self._index, self._keys
        bump = self._next_version
        first = self.scroll_offset.y
        on_screen = set(self._order[first : first + self.scrollable_content_region.height])
        refresh_line = self.refresh_line
        rebuild = resort = removed = False
        if probes is not self._probes:
            self._probes = probes
            needle = self.filter_text
            sort_fields = attrgetter(*pl.SORT_FIELDS[self.sort_mode] or ("target",))
            for target, view in probes.items():
                old = views.get(target)
                if old is view:
                    continue
                views[target] = view
                versions[target] = next(bump)
                if old is None:
                    rebuild = self._members_changed = True
                    continue
                if sort_fields(old) != sort_fields(view):
                    keys.pop(target, None)
                    resort = True
                if needle and not rebuild:
                    gone = target in self._stale
                    if pl.matches(old, needle, gone) != pl.matches(view, needle, gone):
                        rebuild = True
                if target in on_screen:
                    refresh_line(index[target] + 1)
            if len(views) > len(probes):
                for target in [t for t in views if t not in probes]:
                    del views[target], versions[target]
                    keys.pop(target, None)
                removed = self._members_changed = True
        if stale_changed:
            moves = self.sort_mode in pl.STALE_SORTS
            for target in stale ^ self._stale:
                if target in views:
                    versions[target] = next(bump)
                    if moves:
                        keys.pop(target, None)
                    if target in on_screen:
                        refresh_line(index[target] + 1)
            self._stale = stale
            resort |= moves
            rebuild |= bool(self.filter_text)
        if removed:
            self._rebuild()  # rows must not outlive their targets
        elif rebuild or resort:
            self._resort_soon()

    def _rebuild(self) -> None:
        """Filter and order the rows now (as `probe_list.order` does), keeping the cursor on
        its target.

        Each target's sort key is kept until its view changes in a field the sort reads, so
        a re-sort after a few state changes is a C-level sort of nearly sorted keys (about
        1 ms at 5,000 targets) rather than thousands of Python key calls.
        """
        self._resort_pending = False
        self._sorted_at = monotonic()
        selected = self.selected_target
        views, keys, stale, needle = self._views, self._keys, self._stale, self.filter_text
        if self._keys_mode != self.sort_mode:
            keys.clear()
            self._keys_mode = self.sort_mode
        if len(keys) < len(views):
            key = pl.SORT_KEYS[self.sort_mode]
            for target in views.keys() - keys.keys():
                keys[target] = key(views[target], target in stale)
        if needle:
            order = [t for t, view in views.items() if pl.matches(view, needle, t in stale)]
        elif self._members_changed:
            order = list(views)
        else:
            order = self._order[:]  # nearly sorted already: Timsort's best case
        self._members_changed = False
        order.sort(key=keys.__getitem__, reverse=self.sort_reverse)
        if order != self._order:
            self._order = order
            self._index = {target: row for row, target in enumerate(order)}
            self.virtual_size = Size(0, len(order) + 1)
            self.refresh()
        if selected is not None and selected in self._index:
            self.move_cursor(row=self._index[selected], scroll=False)
        else:
            self._cursor = max(0, min(self._cursor, len(order) - 1))
            self._announce_if_moved()

    def _resort_soon(self) -> None:
        """Re-sort now, or once the keyboard has been quiet for `RESORT_IDLE_S` (and, with
        thousands of targets, `RESORT_GAP_S` after the last re-sort).

        A re-sort repaints every visible row; while the responder is typing or holding an
        arrow key, rows stay put (their cells still update) and the order catches up at the
        first pause, so a key press never queues behind one.
        """
        now = monotonic()
        wait = RESORT_IDLE_S - (now - getattr(self.app, "last_input_at", float("-inf")))
        if len(self._views) >= RESORT_GAP_ROWS:
            wait = max(wait, self._sorted_at + RESORT_GAP_S - now)
        if wait <= 0:
            self._rebuild()
            return
        self._resort_pending = True
        if self._resort_timer is None:
            self._resort_timer = self.set_timer(wait, self._resort_deferred)

    def _resort_deferred(self) -> None:
        self._resort_timer = None
        if self._resort_pending:
            self._resort_soon()

    # -- sorting and filtering ----------------------------------------------------------------

    def sort_by(self, mode: str, reverse: bool = False) -> None:
        """Order the rows by `mode` (one of `SORT_MODES`), turned round if `reverse`."""
        if mode not in SORT_MODES:
            raise ValueError(f"unknown sort {mode!r}: use one of {', '.join(SORT_MODES)}")
        if (mode, reverse) == (self.sort_mode, self.sort_reverse):
            return
        self.sort_mode, self.sort_reverse = mode, reverse
        self._rebuild()
        self.refresh()  # the header's arrow, even if no row moved
        self.post_message(self.SortChanged(self, mode, reverse))

    def cycle_sort(self) -> str:
        """Switch to the next sort order (in its own direction); returns its name."""
        index = SORT_MODES.index(self.sort_mode)
        self.sort_by(SORT_MODES[(index + 1) % len(SORT_MODES)])
        return self.sort_mode

    def reverse_sort(self) -> bool:
        """Turn the current order round; returns whether it is now reversed."""
        self.sort_by(self.sort_mode, not self.sort_reverse)
        return self.sort_reverse

    def set_filter(self, text: str) -> None:
        """Show only targets whose target, service or state contains each word of `text`
        (or, from three letters, spells it in order: "chkt" finds "checkout")."""
        needle = pl.normalise_filter(text)
        if needle == self.filter_text:
            return
        self.filter_text = needle
        self._members_changed = True
        self._rebuild()
        self._announce()

    # -- selection ----------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """How many targets are shown (after the filter)."""
        return len(self._order)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def ordered_targets(self) -> tuple[str, ...]:
        """The shown targets, top to bottom."""
        return tuple(self._order)

    @property
    def ordered_rows(self) -> tuple[ListedRow, ...]:
        """`ordered_targets` shaped as DataTable's rows (`row.key.value`)."""
        return tuple(ListedRow(target) for target in self._order)

    def get_row_index(self, target: str) -> int:
        """Where `target` is shown (KeyError if it is not: unknown or filtered out)."""
        return self._index[target]

    @property
    def selected_target(self) -> str | None:
        if not self._order:
            return None
        return self._order[self._cursor]

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Put the cursor on shown row `row` (clamped), scrolling it into view if `scroll`."""
        if not self._order:
            return
        row = max(0, min(row, len(self._order) - 1))
        old = self._cursor
        if row != old:
            self._cursor = row
            self.refresh_line(old + 1)
            self.refresh_line(row + 1)
        if scroll:
            self._scroll_to_row(row, animate)
        self._announce_if_moved()

    def _scroll_to_row(self, row: int, animate: bool = False) -> None:
        body = self.scrollable_content_region.height - 1  # the header keeps the first line
        if body <= 0:
            return
        top = self.scroll_offset.y
        if row < top:
            self.scroll_to(y=row, animate=animate)
        elif row >= top + body:
            self.scroll_to(y=row - body + 1, animate=animate)

    def _announce(self) -> None:
        target = self.selected_target
        self._announced = (target,)
        view = self._views.get(target) if target else None
        self.post_message(self.TargetHighlighted(self, target, view.service if view else None))

    def _announce_if_moved(self) -> None:
        if self._announced != (self.selected_target,):
            self._announce()

    # -- keys ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if parameters and action in ("first", "last"):
            return parameters[0] not in _keys_of(type(self.screen))
        return True

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_first(self, key: str = "") -> None:
        self.move_cursor(row=0)

    def action_last(self, key: str = "") -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + self._page())

    def action_select(self) -> None:
        target = self.selected_target
        if target is not None:
            self.post_message(self.TargetSelected(self, target, self._views[target].service))

    def action_reverse_sort(self) -> None:
        self.reverse_sort()

    def action_clear_filter(self) -> None:
        if not self.filter_text:
            raise SkipAction()  # Escape means something else to the screen
        self.set_filter("")
        self.post_message(self.FilterClearRequested(self))

    # -- mouse --------------------------------------------------------------------------------

    def _row_at(self, event: events.MouseEvent) -> int | None:
        """The shown row under the pointer; -1 on the header; None elsewhere."""
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        if offset.y == 0:
            return -1
        row = offset.y - 1 + self.scroll_offset.y
        return row if 0 <= row < len(self._order) else None

    def on_click(self, event: events.Click) -> None:
        row = self._row_at(event)
        if row is None:
            return
        event.stop()
        if row == -1:
            offset = event.get_content_offset(self)
            column = pl.column_at(self._layout(), offset.x) if offset is not None else None
            if column is not None and column.sort is not None:
                reverse = not self.sort_reverse if column.sort == self.sort_mode else False
                self.sort_by(column.sort, reverse)
            return
        self.move_cursor(row=row, scroll=False)
        if event.chain >= 2:
            self.action_select()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        row = self._row_at(event)
        self._set_hover(-1 if row is None else row)

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(-1)

    def _set_hover(self, row: int) -> None:
        old = self._hover
        if row != old:
            self._hover = row
            if old >= 0:
                self.refresh_line(old + 1)
            if row >= 0:
                self.refresh_line(row + 1)


def _keys_of(screen: type[Any]) -> frozenset[str]:
    """The keys a screen class binds itself (they win over the list's g/G)."""
    keys = _screen_keys.get(screen)
    if keys is None:
        bindings = getattr(screen, "BINDINGS", [])
        keys = _screen_keys[screen] = frozenset(b.key for b in Binding.make_bindings(bindings))
    return keys
