"""The probe table: one row per target, updated by key from `IncidentState.probes`."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from time import monotonic

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual._two_way_dict import TwoWayDict
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

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
#: Rendered lines kept (a few screens' worth, with and without the cursor).
LINE_CACHE_SIZE = 1000
#: Per-cell styles kept (rows x columns x cursor/hover looks).
STYLE_CACHE_SIZE = 4000
#: A re-sort waits until no key has been pressed for this long (seconds).
RESORT_IDLE_S = 0.15

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


def _fast_cell(
    value: object, width: int, padding: int, pre: Style, post: Style
) -> list[Segment] | None:
    """The segments Rich gives DataTable for one single-line cell, or None if unsure.

    DataTable renders `Styled(Padding(cell, (0, padding)), pre, post)` at `width` with
    `no_wrap`: the text cropped to the inner width ("fold" and "crop" overflow both crop on
    one line) and justified, the padding unstyled; then every segment gets
    `pre + its style + post`. Strings are Rich markup to DataTable, so a string with a `[`
    goes back to it; so does anything with spans, tabs, newlines, or another justify or
    overflow.
    """
    if isinstance(value, str):
        if "[" in value:
            return None
        plain, text_style, justify = value, None, None
    elif type(value) is Text:
        if value._spans or value.overflow not in (None, "fold", "crop"):
            return None
        plain, justify = value.plain, value.justify
        text_style = Style.parse(value.style) if isinstance(value.style, str) else value.style
        if not text_style:
            text_style = None
    else:
        return None
    if "\n" in plain or "\t" in plain or justify not in (None, "default", "left", "right"):
        return None
    inner = width - 2 * padding
    if inner <= 0:
        return None
    if justify == "right":
        plain = plain.rstrip()
    if cell_len(plain) > inner:
        plain = set_cell_size(plain, inner)
    gap = inner - cell_len(plain)
    pad = " " * padding
    segments = [Segment(pad, pre + post)]
    if justify == "right":
        segments.append(Segment(" " * gap + plain, _styled(pre, text_style, post)))
    elif justify == "left":
        segments.append(Segment(plain + " " * gap, _styled(pre, text_style, post)))
    else:
        if plain:
            segments.append(Segment(plain, _styled(pre, text_style, post)))
        if gap:
            segments.append(Segment(" " * gap, pre + post))
    segments.append(Segment(pad, pre + post))
    return segments


def _styled(pre: Style, style: Style | None, post: Style) -> Style:
    return (pre + style if style is not None else pre) + post


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
        #: Shown rows whose cells lag their `_seen` view (they were off screen when it changed).
        self._stale: set[str] = set()
        self._now: datetime | None = None
        self._line_renders: dict[tuple[object, ...], tuple[tuple[object, ...], Strip]] = {}
        self._cell_styles: dict[tuple[object, ...], Style] = {}
        self._paint_style: Style | None = None
        self._viewport_now: range | None = None
        self._on_screen_now: set[str] | None = None
        self._resort_timer: Timer | None = None
        self._resort_pending = False
        self._since_key = ColumnKey("since")

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_renders.clear()
        self._cell_styles.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's Rich style costs ~0.1 ms to work out and DataTable asks for it on
        # every line; it cannot change within one paint.
        self._paint_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._paint_style = None

    def render_line(self, y: int) -> Strip:
        """DataTable's `render_line`, with the widget style of the paint under way."""
        base_style = self._paint_style or self.rich_style
        if self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, base_style)

    def _get_offsets(self, y: int) -> tuple[RowKey, int]:
        """Row and line within it for line `y`: O(1), every row here being one line high.

        DataTable's own version rebuilds a list of all rows after each `update_cell` or
        `sort` (O(rows) on the next paint). (Overrides a private method of 8.2.8's DataTable.)
        """
        if self.show_header:
            header_height = self.header_height
            if y < header_height:
                return self._header_row_key, y
            y -= header_height
        if 0 <= y < len(self._row_locations):
            return self._row_locations.get_key(y), 0
        raise LookupError(f"Y coord {y!r} is greater than total height")

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """One line of the table, drawn without Rich's layout machinery and cached by values.

        DataTable renders every cell through `Console.render_lines` (about 0.3 ms a cell) and
        keys its caches on a counter that every `update_cell` and `sort` bumps, so under
        churn each repaint re-rendered every visible line: tens of milliseconds that a key
        press waited behind. Body rows here are one line of plain text per cell, so a line
        is built straight from segments (`_fast_line`, checked against DataTable's own
        output in the tests), and kept while its row's cell objects (never mutated: a change
        stores a new object), its row number (the mouse reads it from the segments), the
        cursor and hover flags and the table's look stay the same. Anything else (the
        header, markup in a string) goes through DataTable. (Overrides a private method of
        8.2.8's DataTable, keeping its output.)
        """
        width = self.size.width
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        cursor_type = self.cursor_type
        if row_key is self._header_row_key:
            row_index = -1
            values: tuple[object, ...] = tuple(c.label for c in self.ordered_columns)
        else:
            row_index = self._row_locations.get(row_key)
            row_data = self._data[row_key]
            values = tuple(row_data.get(c.key) for c in self.ordered_columns)
            if self._labelled_row_exists:
                values += (self.rows[row_key].label,)
        if cursor_type == "row":
            cursor: object = self.cursor_coordinate.row == row_index
            hover: object = self.hover_coordinate.row == row_index
        else:  # cell or column cursors: keep DataTable's exact key
            cursor, hover = self.cursor_coordinate, self.hover_coordinate
        widths = tuple(c.get_render_width(self) for c in self.ordered_columns)
        key = (
            row_key,
            row_index,
            line_no,
            x1,
            x2,
            width,
            base_style,
            cursor,
            hover,
            cursor_type,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
            self.zebra_stripes,
            self.fixed_rows,
            self.fixed_columns,
            self._row_label_column_width,
            self.show_row_labels,
            widths,
        )
        hit = self._line_renders.get(key)
        if (
            hit is not None
            and len(hit[0]) == len(values)
            and all(a is b for a, b in zip(hit[0], values, strict=True))
        ):
            return hit[1]
        strip = None
        if (
            row_index >= 0
            and cursor_type == "row"
            and line_no == 0
            and not self._labelled_row_exists
            and not self.fixed_columns
            and row_index >= self.fixed_rows
            and self.rows[row_key].height == 1
        ):
            strip = self._fast_line(
                row_index, bool(cursor), bool(hover), values, widths, x1, x2, base_style
            )
        if strip is None:
            strip = super()._render_line(y, x1, x2, base_style)
        if len(self._line_renders) > LINE_CACHE_SIZE:
            self._line_renders.clear()
        self._line_renders[key] = (values, strip)
        return strip

    def _fast_line(
        self,
        row_index: int,
        cursor: bool,
        hover: bool,
        values: tuple[object, ...],
        widths: tuple[int, ...],
        x1: int,
        x2: int,
        base_style: Style,
    ) -> Strip | None:
        """DataTable's line for a one-line body row in row-cursor mode, or None if unsure.

        Same segments (text and style, including the row/column meta) as
        `DataTable._render_line_in_row` + `_render_line` for cells that are plain strings
        or span-less, single-line `Text`.
        """
        # Cursor and hover looks as DataTable picks them: for the cells (with the CSS
        # priorities) and for the filler after the last column (without).
        looks = partial(
            self._get_styles_to_render_cell,
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
        )
        component, post = looks(
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css"
        )
        row_style = self._get_row_style(row_index, base_style)
        padding = self.cell_padding
        segments: list[Segment] = []
        for column_index, (value, cell_width) in enumerate(zip(values, widths, strict=True)):
            pre = self._cell_style(row_style, row_index, column_index, component)
            cell = _fast_cell(value, cell_width, padding, pre, post)
            if cell is None:
                return None
            segments.extend(cell)
        extend_style, _ = looks(False, False)
        extend_style = self._cell_style(row_style, row_index, -1, extend_style)
        width = self.size.width
        remaining = max(0, width - sum(widths) - self._row_label_column_width)
        segments.append(Segment(" " * remaining, extend_style))
        cropped = line_crop(segments, x1, x2, width)
        return Strip(cropped).adjust_cell_length(width, base_style).simplify()

    def _cell_style(
        self, row_style: Style, row_index: int, column_index: int, component: Style
    ) -> Style:
        """`row_style + {row, column} meta + component`, the same object frame after frame.

        Each `Style.from_meta` is a new style with a random link id, so sums made with it
        never hit Rich's style-sum cache; keeping them makes every later sum a cache hit.
        Column -1 is the filler after the last column (DataTable marks it out of bounds).
        """
        key = (row_style, row_index, column_index, component)
        style = self._cell_styles.get(key)
        if style is None:
            if column_index < 0:
                meta = {"row": row_index, "column": 0, "out_of_bounds": True}
                style = row_style + component + Style.from_meta(meta)
            else:
                meta = {"row": row_index, "column": column_index}
                style = row_style + Style.from_meta(meta) + component
            if len(self._cell_styles) > STYLE_CACHE_SIZE:
                self._cell_styles.clear()
            self._cell_styles[key] = style
        return style

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    # -- rendering from state --------------------------------------------------------------

    def update_from(self, state: IncidentState, now: datetime) -> None:
        """Bring the rows in line with `state.probes`, touching only what changed.

        A samples event changes every target: the per-target work is a few dict lookups
        (cells are written only for rows on screen), and a re-sort waits for a pause in the
        typing (see `_resort_soon`).
        """
        self._now = now
        probes = state.probes
        if probes is self._probes:
            self.refresh_stale()
            return
        self._probes = probes
        resort = False
        self._viewport_now = self._viewport() if self.size.height else None
        self._on_screen_now = self._viewport_targets()
        seen = self._seen
        with self.app.batch_update():
            for target, view in probes.items():
                old = seen.get(target)
                if old is view:
                    continue
                seen[target] = view
                resort |= self._apply(view, old, now)
            if len(seen) > len(probes):
                for target in [t for t in seen if t not in probes]:
                    del seen[target]
                    if target in self._shown:
                        self._shown.discard(target)
                        self._stale.discard(target)
                        self.remove_row(target)
                        self._on_screen_now = self._viewport_targets()
            if resort:
                self._resort_soon()
            self.refresh_stale()

    def _apply(self, view: ProbeView, old: ProbeView | None, now: datetime) -> bool:
        """Add, remove or update one row; True when the order may have changed.

        Cells of rows off screen are not touched (marked stale instead and redrawn when they
        scroll into view): with thousands of targets, a samples event changes every row.
        """
        target = view.target
        visible = not self.filter_text or matches(view, self.filter_text)
        if target not in self._shown:
            if not visible:
                return False
            self.add_row(*self._cells(view, now), key=target)
            self._shown.add(target)
            return True
        if not visible:
            self.remove_row(target)
            self._shown.discard(target)
            self._stale.discard(target)
            self._on_screen_now = self._viewport_targets()
            return False
        if old is None:
            old = ProbeView(target=target, state="")
        mode = self.sort_mode
        resort = (
            (mode == "state" and old.state != view.state)
            or (mode == "latency" and old.latency_ms != view.latency_ms)
            or (mode == "service" and old.service != view.service)
        )
        on_screen = self._on_screen_now
        if target in self._stale or (on_screen is not None and target not in on_screen):
            self._stale.add(target)
        else:
            self._write_cells(view, old, now)
        return resort

    def _write_cells(self, view: ProbeView, old: ProbeView | None, now: datetime) -> None:
        target = view.target
        if old is None or old.state != view.state or old.since != view.since:
            self.update_cell(target, "state", state_cell(view.state))
            self.update_cell(target, "since", since_text(view, now))
        if old is None or old.latency_ms != view.latency_ms or old.state != view.state:
            self.update_cell(target, "latency", latency_cell(view))
        if old is None or old.history != view.history:
            self.update_cell(target, "trend", Text(sparkline(view.history, SPARK_WIDTH)))
        if old is None or old.service != view.service:
            self.update_cell(target, "service", view.service)

    def _viewport(self) -> range:
        first = max(0, int(self.scroll_y))
        # Two spare rows each side: a cursor step or a scroll by one shows fresh cells.
        return range(max(0, first - 2), min(self.row_count, first + self.size.height + 2))

    def _viewport_targets(self) -> set[str] | None:
        """Targets of the rows in `_viewport_now` (None: not laid out yet, treat all as shown)."""
        viewport = self._viewport_now
        if viewport is None:
            return None
        key_at = self._row_locations.get_key
        count = self.row_count
        return {key_at(index).value or "" for index in viewport if index < count}

    def refresh_stale(self) -> None:
        """Redraw the stale rows now on screen (after a scroll, a sort or a filter)."""
        if not self._stale or not self.row_count:
            return
        # Row keys by index straight from the index map: `ordered_rows` rebuilds a list of
        # every row after each cell update.
        key_at = self._row_locations.get_key
        now = self._now or datetime.now().astimezone()
        for index in self._viewport():
            target = key_at(index).value or ""
            if target in self._stale:
                self._stale.discard(target)
                self._write_cells(self._seen[target], None, now)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.refresh_stale()

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
        key_at = self._row_locations.get_key
        for index in range(first, last):
            row_key = key_at(index)
            view = self._seen.get(row_key.value or "")
            if view is None:
                continue
            text = since_text(view, now)
            # Unchanged text keeps its cell object, so the row's cached lines stay valid
            # (and nothing is repainted when no time on screen moved on).
            if self._data[row_key].get(self._since_key) != text:
                self.update_cell(row_key, self._since_key, text)

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
        """Order the rows by the sort mode now, keeping the cursor on its target.

        What `DataTable.sort` does (a stable sort of the rows, a new index map, a repaint)
        without building each row's tuple of cells for a key that never reads them.
        """
        self._resort_pending = False
        selected = self.selected_target
        sort_key = self._sort_key
        ordered = sorted(self._data, key=lambda row_key: sort_key(row_key.value or ""))
        self._row_locations = TwoWayDict({key: index for index, key in enumerate(ordered)})
        self._update_count += 1
        self.refresh()
        if selected is not None and selected in self._shown:
            self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)

    def _resort_soon(self) -> None:
        """Re-sort now, or once the keyboard has been quiet for `RESORT_IDLE_S`.

        A re-sort repaints every visible row; while the responder is typing or holding an
        arrow key, rows stay put (their cells still update) and the order catches up at
        the first pause, so a key press never queues behind one.
        """
        quiet = monotonic() - getattr(self.app, "last_input_at", float("-inf"))
        if quiet >= RESORT_IDLE_S:
            self._resort()
            return
        self._resort_pending = True
        if self._resort_timer is None:
            self._resort_timer = self.set_timer(RESORT_IDLE_S - quiet, self._resort_deferred)

    def _resort_deferred(self) -> None:
        self._resort_timer = None
        if self._resort_pending and self.row_count:
            self._resort_soon()
            if not self._resort_pending:
                self.refresh_stale()

    def cycle_sort(self) -> str:
        """Switch to the next sort order; returns its name."""
        index = SORT_MODES.index(self.sort_mode)
        self.sort_mode = SORT_MODES[(index + 1) % len(SORT_MODES)]
        if self.row_count:
            self._resort()
            self.refresh_stale()
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
                    self._stale.discard(target)
            if self.row_count:
                self._resort()
            self.refresh_stale()
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
