"""The probe list widget: keys, mouse, sorting, filter, stale rows and what each line shows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.strip import Strip

from warroom import events as ev
from warroom.state import IncidentState, fold
from warroom.tui import probe_list as pl
from warroom.tui.widgets.probe_table import ProbeTable

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

START = datetime(2025, 10, 20, 6, 0, tzinfo=UTC)
NOW = START + timedelta(minutes=10)
HEIGHT = 12  # the header and 11 rows


def ts(seconds: float) -> str:
    return ev.format_ts(START + timedelta(seconds=seconds))


def incident(targets: int = 40, down: tuple[int, ...] = (5, 17)) -> IncidentState:
    """`targets` targets t00.. in services s0..s3, all up at 0 s except `down`, through the
    reducer, with a samples event (latency = 10 * index ms) at 9m58s."""
    events: list[ev.BaseEvent] = []
    for i in range(targets):
        events.append(
            ev.ProbeStateChanged(
                target=f"t{i:02d}",
                service=f"s{i % 4}",
                from_state=ev.ProbeState.UNKNOWN,
                to_state=ev.ProbeState.DOWN if i in down else ev.ProbeState.UP,
                ts=ts(i),
            )
        )
    samples = [
        ev.ProbeSample(target=f"t{i:02d}", state=ev.ProbeState.UP, latency_ms=10.0 * i)
        for i in range(targets)
    ]
    events.append(ev.ProbeSamples(samples=samples, ts=ts(598)))
    return fold(events)


class ListApp(App[None]):
    def __init__(self, state: IncidentState, stale: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.state = state
        self.stale = stale
        self.messages: list[Any] = []

    def compose(self) -> ComposeResult:
        yield ProbeTable(id="t")

    def on_mount(self) -> None:
        table = self.query_one(ProbeTable)
        table.update_from(self.state, NOW, self.stale)
        table.focus()

    def on_probe_table_target_selected(self, message: ProbeTable.TargetSelected) -> None:
        self.messages.append(("selected", message.target, message.service))

    def on_probe_table_target_highlighted(self, message: ProbeTable.TargetHighlighted) -> None:
        self.messages.append(("highlighted", message.target, message.service))

    def on_probe_table_filter_clear_requested(self, message: Any) -> None:
        self.messages.append(("clear filter",))

    def on_probe_table_sort_changed(self, message: ProbeTable.SortChanged) -> None:
        self.messages.append(("sort", message.mode, message.reverse))


def line(table: ProbeTable, target: str) -> Strip:
    """The strip the widget paints for `target`'s row (it must be on screen)."""
    y = table.get_row_index(target) + 1 - table.scroll_offset.y
    assert 1 <= y < table.scrollable_content_region.height, f"{target} is not on screen"
    return table.render_line(y)


def cell(table: ProbeTable, target: str, key: str) -> str:
    """The words in one cell of `target`'s row, as painted."""
    text = line(table, target).text
    for placed in pl.layout(table.scrollable_content_region.width):
        if placed.column.key == key:
            return text[placed.x : placed.x + placed.width].strip()
    raise AssertionError(f"no {key} column")


def colours(strip: Strip) -> set[Any]:
    return {segment.style.color for segment in strip if segment.style and segment.text.strip()}


async def test_keys_move_the_cursor_like_a_pager() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        order = table.ordered_targets
        assert order[:2] == ("t05", "t17")  # down first
        assert table.selected_target == "t05"
        page = HEIGHT - 2
        steps: list[tuple[str, int]] = [
            ("j", 1),
            ("down", 2),
            ("k", 1),
            ("up", 0),
            ("up", 0),  # stays at the top
            ("G", 39),
            ("down", 39),
            ("g", 0),
            ("end", 39),
            ("home", 0),
            ("pagedown", page),
            ("pagedown", 2 * page),
            ("pageup", page),
        ]
        for key, row in steps:
            await pilot.press(key)
            assert table.cursor_row == row, key
            assert table.selected_target == order[row], key
            # The cursor row is always on screen, below the header.
            assert table.scroll_offset.y <= row < table.scroll_offset.y + HEIGHT - 1, key
        target = order[page]
        assert app.messages[-1] == ("highlighted", target, f"s{int(target[1:]) % 4}")


async def test_enter_and_double_click_ask_for_the_targets_details() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        await pilot.press("j", "enter")
        assert app.messages[-1] == ("selected", "t17", "s1")
        await pilot.click(ProbeTable, offset=(5, 3), times=2)  # header + 2 rows down
        await pilot.pause()
        assert app.messages[-1] == ("selected", table.ordered_targets[2], "s0")


async def test_s_reverses_and_header_clicks_sort_then_reverse() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        forward = table.ordered_targets
        await pilot.press("S")
        assert table.sort_reverse and table.ordered_targets == forward[::-1]
        assert table.selected_target == "t05"  # the cursor stays on its target
        assert app.messages[-1] == ("sort", "state", True)
        assert "State ↑" in table.render_line(0).text

        await pilot.click(ProbeTable, offset=(15, 0))  # the Target title
        await pilot.pause()
        assert (table.sort_mode, table.sort_reverse) == ("name", False)
        assert table.ordered_targets == tuple(sorted(forward))
        header = table.render_line(0).text
        assert "Target ↓" in header and "State ↓" not in header
        await pilot.click(ProbeTable, offset=(15, 0))
        await pilot.pause()
        assert table.sort_reverse and table.ordered_targets == tuple(sorted(forward, reverse=True))

        latency_x = table.render_line(0).text.index("Latency")
        await pilot.click(ProbeTable, offset=(latency_x, 0))
        await pilot.pause()
        assert table.sort_mode == "latency" and table.ordered_targets[0] == "t39"
        assert table.cycle_sort() == "in-state" and table.ordered_targets[0] == "t39"


async def test_a_click_after_a_re_sort_selects_the_row_under_the_pointer() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        await pilot.press("pagedown", "pagedown")  # scrolled: rows under the pointer moved
        for mode in ("name", "latency", "state"):
            for reverse in (False, True):
                table.sort_by(mode, reverse)
                await pilot.pause()
                order, top = table.ordered_targets, table.scroll_offset.y
                for row in (1, 9):
                    await pilot.click(ProbeTable, offset=(5, row))
                    await pilot.pause()
                    assert table.selected_target == order[top + row - 1], (mode, reverse, row)


async def test_filter_and_escape_clears_it() -> None:
    class WithEscape(ListApp):
        BINDINGS = [Binding("escape", "escaped")]

        def action_escaped(self) -> None:
            self.messages.append(("app escape",))

    app = WithEscape(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        table.set_filter("  T1 ")
        assert table.filter_text == "t1"
        assert table.ordered_targets[0] == "t17"  # still worst first
        assert set(table.ordered_targets) == {f"t1{i}" for i in range(10)}
        table.set_filter("s3 down")
        await pilot.pause()
        assert table.row_count == 0 and table.selected_target is None
        assert app.messages[-1] == ("highlighted", None, None)
        table.set_filter("t1")
        await pilot.press("escape")
        assert table.filter_text == "" and table.row_count == 40
        assert app.messages[-1] == ("clear filter",)
        await pilot.press("escape")  # no filter: Escape is the screen's
        assert app.messages[-1] == ("app escape",)


async def test_g_and_shift_g_stay_the_screens_where_it_binds_them() -> None:
    class Timeline(Screen[None]):
        BINDINGS = [Binding("G", "seek_end")]

        def __init__(self) -> None:
            super().__init__()
            self.seeks = 0

        def compose(self) -> ComposeResult:
            yield ProbeTable()

        def action_seek_end(self) -> None:
            self.seeks += 1

    class TimelineApp(App[None]):
        def on_mount(self) -> None:
            self.push_screen(Timeline())

    app = TimelineApp()
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        screen = app.screen
        assert isinstance(screen, Timeline)
        table = screen.query_one(ProbeTable)
        table.update_from(incident(), NOW)
        table.focus()
        await pilot.press("j", "j", "G")
        assert screen.seeks == 1 and table.cursor_row == 2
        await pilot.press("end", "g")
        assert table.cursor_row == 0


async def test_a_stale_row_says_stale_and_is_never_painted_as_up() -> None:
    state = incident()
    app = ListApp(state, stale=frozenset({"t03"}))
    async with app.run_test(size=(160, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        assert state.probes["t03"].state == "up"
        up_colour = table.get_component_rich_style("probe-list--up").color
        stale_colour = table.get_component_rich_style("probe-list--stale").color
        assert up_colour is not None and up_colour != stale_colour
        stale_line, up_line = line(table, "t03"), line(table, "t04")
        assert "◌ stale" in stale_line.text and "● up" not in stale_line.text
        assert "last up" in stale_line.text  # the reason column says what it last was
        assert up_colour not in colours(stale_line) and stale_colour in colours(stale_line)
        assert "● up" in up_line.text and up_colour in colours(up_line)
        # Stale sorts after what is broken, before what is fine.
        assert table.ordered_targets[:3] == ("t05", "t17", "t03")

        # The session says the data is live again: the row is painted up.
        table.update_from(state, NOW, frozenset())
        await pilot.pause()
        assert table.ordered_targets[2] != "t03"
        table.move_cursor(row=table.get_row_index("t03"))
        await pilot.pause()
        assert "● up" in line(table, "t03").text and up_colour in colours(line(table, "t03"))
        # All stale (say, a resumed incident with no engine): nothing is green.
        table.update_from(state, NOW, frozenset(state.probes))
        await pilot.pause()
        for y in range(1, HEIGHT):
            painted = table.render_line(y)
            assert "◌ stale" in painted.text and up_colour not in colours(painted), y


async def test_every_row_shows_its_age_and_it_moves_on_with_the_clock() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(160, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        header = table.render_line(0).text
        assert "Age" in header and "In state" in header
        # t05 went down at 5 s; its last result is the samples event at 9m58s.
        assert cell(table, "t05", "in-state") == "9m55s"
        assert all(cell(table, t, "age") == "2s" for t in table.ordered_targets[:10])
        table.refresh_times(NOW + timedelta(seconds=65))
        await pilot.pause()
        assert cell(table, "t05", "in-state") == "11m00s" and cell(table, "t05", "age") == "1m07s"


async def test_only_rows_on_screen_are_redrawn_when_every_target_changes() -> None:
    state = incident(targets=1000)
    app = ListApp(state)
    async with app.run_test(size=(120, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        table.sort_by("name")
        await pilot.pause()
        built = table.rows_built
        samples = [
            ev.ProbeSample(target=f"t{i:02d}", state=ev.ProbeState.UP, latency_ms=1.0 + i)
            for i in range(1000)
        ]
        state = fold([ev.ProbeSamples(samples=samples, ts=ts(599))], state)
        table.update_from(state, NOW)
        await pilot.pause()
        assert 0 < table.rows_built - built <= HEIGHT - 1
        # Nothing changed: nothing is redrawn.
        built = table.rows_built
        table.update_from(state, NOW)
        table.refresh_times(NOW)
        await pilot.pause()
        assert table.rows_built == built


async def test_focus_leaving_and_coming_back_rebuilds_no_row() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        cursor = table.selected_target
        assert cursor is not None
        focused = line(table, cursor)
        table.blur()  # as when a dialog opens over the list
        await pilot.pause()
        blurred = line(table, cursor)
        assert blurred.text == focused.text and list(blurred) != list(focused)
        table.focus()
        await pilot.pause()
        built = table.rows_built
        for _ in range(2):
            table.blur()
            await pilot.pause()
            table.focus()
            await pilot.pause()
        assert table.rows_built == built  # each look's rows were kept
        assert list(line(table, cursor)) == list(focused)


async def test_a_theme_change_repaints_in_the_themes_colours() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        before = colours(line(table, "t04"))
        app.theme = "gruvbox" if app.theme != "gruvbox" else "nord"
        await pilot.pause()
        up = table.get_component_rich_style("probe-list--up").color
        after = colours(line(table, "t04"))
        assert up in after and up not in before


async def test_hostile_target_names_are_painted_inert() -> None:
    evil = "x\x1b[31mred\u202e"
    state = fold(
        [
            ev.ProbeStateChanged(
                target=evil, from_state=ev.ProbeState.UNKNOWN, to_state=ev.ProbeState.UP, ts=ts(1)
            )
        ]
    )
    app = ListApp(state)
    async with app.run_test(size=(100, HEIGHT)):
        table = app.query_one(ProbeTable)
        text = table.render_line(1).text
        # Shown the sanitiser's way (the column cuts the escaped bidi override short).
        assert "x␛[31mred\\u" in text and "\x1b" not in text and "\u202e" not in text


async def test_the_order_under_churn_is_what_probe_list_says() -> None:
    """The widget keeps sort keys between re-sorts; they must never go out of date."""
    rng = random.Random(5)
    state = incident(targets=200)
    app = ListApp(state)
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        seconds = 600.0
        for step in range(40):
            mode = pl.SORT_MODES[step % len(pl.SORT_MODES)]
            table.sort_by(mode, reverse=step % 3 == 0)
            table.set_filter(["", "t1", "s2", "down"][step % 4])
            events: list[ev.BaseEvent] = []
            for _ in range(15):
                target = f"t{rng.randrange(200):02d}"
                old = state.probes[target].state
                new = rng.choice([s for s in ev.ProbeState if s.value != old])
                events.append(
                    ev.ProbeStateChanged(
                        target=target,
                        from_state=ev.ProbeState(old),
                        to_state=new,
                        latency_ms=rng.uniform(1, 500),
                        ts=ts(seconds),
                    )
                )
                seconds += 1
            state = fold(events, state)
            stale = frozenset(t for t in state.probes if rng.random() < 0.1)
            table.update_from(state, NOW, stale)
            await pilot.pause()
            expected = pl.order(
                state.probes.values(),
                mode,
                reverse=step % 3 == 0,
                stale=stale,
                needle=table.filter_text,
            )
            assert table.ordered_targets == tuple(expected), step


async def test_the_row_under_the_pointer_is_highlighted() -> None:
    app = ListApp(incident())
    async with app.run_test(size=(100, HEIGHT)) as pilot:
        table = app.query_one(ProbeTable)
        await pilot.hover(ProbeTable, offset=(5, 4))
        await pilot.pause()
        hover = table.get_component_rich_style("probe-list--hover").bgcolor
        assert hover is not None
        assert {segment.style.bgcolor for segment in table.render_line(4)} == {hover}
        assert hover not in {segment.style.bgcolor for segment in table.render_line(5)}
        assert hover not in {segment.style.bgcolor for segment in table.render_line(1)}  # cursor
