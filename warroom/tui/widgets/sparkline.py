"""Latency sparklines drawn with unicode blocks, from a probe's recent history."""

from __future__ import annotations

from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"
#: Drawn for a sample period with no successful result (no latency to show).
GAP = "·"


def sparkline(history: Sequence[float | None], width: int = 16) -> str:
    """The last `width` samples as blocks scaled to the window's maximum (gaps as dots)."""
    window = list(history[-width:]) if width > 0 else []
    values = [v for v in window if v is not None]
    if not values:
        return GAP * len(window)
    top = max(values)
    chars = []
    for value in window:
        if value is None:
            chars.append(GAP)
        elif top <= 0:
            chars.append(BLOCKS[0])
        else:
            index = round(value / top * (len(BLOCKS) - 1))
            chars.append(BLOCKS[max(0, min(len(BLOCKS) - 1, index))])
    return "".join(chars)
