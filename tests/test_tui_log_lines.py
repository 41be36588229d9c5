"""The log pane's own line renderer draws exactly what Rich draws for the same lines."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from warroom import events as ev
from warroom.tui.widgets.log_tail import _Lines, event_line


def lines() -> list[Text]:
    events: list[ev.BaseEvent] = [
        ev.ProbeStateChanged(
            target="checkout-7", service="checkout", from_state="up", to_state="down"
        ),
        ev.NoteAdded(text="a note with [bold]markup[/] that is data " * 5, actor="ana@host"),
        ev.SeveritySet(severity=ev.Severity.SEV2, actor="ana@host"),
        ev.ControlApplied(request_id="r1", service="checkout", control="rate", value=5),
    ]
    stamped = [
        e.model_copy(update={"seq": i + 1, "ts": "2026-12-01T09:00:00.000000Z"})
        for i, e in enumerate(events)
    ]
    return [
        Text("… 12 more events (see the log or replay)", style="dim"),  # a base style
        *(event_line(e) for e in stamped),
        Text("a long line without a newline at its end " * 4, end=""),
        Text("tab\tseparated"),
        Text(""),
    ]


def painted(renderable: Any, width: int) -> list[list[tuple[str, Any]]]:
    """Each line's cells as runs of (text, style), however the segments were cut."""
    console = Console(width=200, force_terminal=True, color_system="truecolor")
    out = []
    for line in Segment.split_lines(
        console.render(renderable, console.options.update_width(width))
    ):
        runs: list[tuple[str, Any]] = []
        for segment in line:
            style = segment.style or None  # no style and the null style paint alike
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + segment.text, style)
            elif segment.text:
                runs.append((segment.text, style))
        out.append(runs)
    return out


@pytest.mark.parametrize("width", [30, 80, 140])
def test_lines_paint_as_rich_paints_them_joined(width: int) -> None:
    texts = lines()
    assert painted(_Lines(texts), width) == painted(Text("\n", end="").join(texts), width)
