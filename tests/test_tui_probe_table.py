"""The probe table draws its lines itself: they must be exactly what DataTable would draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from tui_harness import SIZE, make_app, settle, write_log

from warroom.tui.widgets.probe_table import ProbeTable, _fast_cell


def cells(strip: Any) -> list[tuple[str, Any]]:
    """Each character of a line with its full style (colours, attributes and mouse meta)."""
    return [(char, segment.style) for segment in strip for char in segment.text]


def datatable_line(table: ProbeTable, y: int) -> list[tuple[str, Any]]:
    """The line as DataTable itself renders it (its caches emptied first)."""
    for cache in (
        table._row_render_cache,
        table._cell_render_cache,
        table._line_cache,
        table._row_renderable_cache,
    ):
        cache.clear()
    table._update_count += 1
    x1 = table.scroll_offset.x
    return cells(DataTable._render_line(table, y, x1, x1 + table.size.width, table.rich_style))


def ours(table: ProbeTable, y: int) -> list[tuple[str, Any]]:
    """The line from the table's own renderer; body rows must take the fast path."""
    table._line_renders.clear()
    scroll_x = table.scroll_offset.x
    x2 = scroll_x + table.size.width
    if y == 0:  # the header: DataTable's renderer
        return cells(table._render_line(y, scroll_x, x2, table.rich_style))
    row_key = table._row_locations.get_key(y - 1)
    values = tuple(table._data[row_key].get(c.key) for c in table.ordered_columns)
    widths = tuple(c.get_render_width(table) for c in table.ordered_columns)
    cursor, hover = table.cursor_row == y - 1, table.hover_coordinate.row == y - 1
    strip = table._fast_line(y - 1, cursor, hover, values, widths, scroll_x, x2, table.rich_style)
    assert strip is not None, f"line {y} left the fast path"
    return cells(strip)


ODD_VALUES = [
    "",
    "x",
    "a-target-name-much-longer-than-its-column-is-wide",
    "東京-api-gateway-primary",  # wide characters cropped on a cell boundary
    "trailing  ",
    Text(""),
    Text("● up", style="green"),
    Text("✖ down", style="bold red"),
    Text("12 ms", style="yellow", justify="right"),
    Text("1234567890123 ms", justify="right"),
    Text("  padded  ", justify="right"),
    Text("left", style="dim", justify="left"),
    Text("▁▂▃▅▇█▇▅▃▂▁▁▂▃▅▇"),
]


class Table(App[None]):
    def compose(self) -> ComposeResult:
        yield ProbeTable(id="t")


async def test_fast_lines_match_datatable_for_every_kind_of_cell() -> None:
    app = Table()
    async with app.run_test(size=(90, 30)) as pilot:
        table = app.query_one(ProbeTable)
        for index in range(len(ODD_VALUES)):
            row = [ODD_VALUES[(index + column) % len(ODD_VALUES)] for column in range(6)]
            table.add_row(*row, key=f"r{index}")
        await pilot.pause()
        table.hover_coordinate = Coordinate(3, 0)
        for focused in (True, False):
            if focused:
                table.focus()
            else:
                table.blur()
            await pilot.pause()
            table._pseudo_class_state = table.get_pseudo_class_state()
            for cursor_row in (0, 5):
                table.move_cursor(row=cursor_row)
                await pilot.pause()
                for y in range(1, len(ODD_VALUES) + 1):  # line 0 is the header
                    assert ours(table, y) == datatable_line(table, y), (focused, cursor_row, y)


async def test_fast_lines_match_datatable_on_the_incident_screen(tmp_path: Path) -> None:
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main_screen.view.probe_table
        table._pseudo_class_state = table.get_pseudo_class_state()
        for y in range(table.row_count + 1):
            assert ours(table, y) == datatable_line(table, y), y


def test_cells_the_fast_path_cannot_vouch_for_go_back_to_datatable() -> None:
    from rich.style import Style

    plain = Style()
    assert _fast_cell("[bold]markup[/]", 10, 1, plain, plain) is None
    assert _fast_cell(Text.assemble(("a", "red"), "b"), 10, 1, plain, plain) is None
    assert _fast_cell(Text("two\nlines"), 10, 1, plain, plain) is None
    assert _fast_cell(Text("x", justify="center"), 10, 1, plain, plain) is None
    assert _fast_cell(Text("long text", overflow="ellipsis"), 10, 1, plain, plain) is None
    assert _fast_cell(3.5, 10, 1, plain, plain) is None
    assert _fast_cell("ok", 10, 1, plain, plain) is not None
