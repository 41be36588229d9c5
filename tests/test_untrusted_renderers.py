"""Every non-console renderer of untrusted text, fed the hostile corpus."""

from __future__ import annotations

import io

import pytest
from hostile import PAYLOADS, assert_terminal_safe

from warroom import events as ev
from warroom.probe.cli import Printer


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_probe_output_shows_state_changes_safely(name: str) -> None:
    payload = PAYLOADS[name]
    out = io.StringIO()
    printer = Printer(False, out)
    printer.change(
        ev.ProbeStateChanged(
            ts="2025-10-20T06:48:00.000000Z",
            target=payload,
            from_state="up",
            to_state="down",
            reason=payload,
        )
    )
    text = out.getvalue()
    assert text.endswith("\n")
    assert_terminal_safe(text.rstrip("\n").replace("\n", " "))
    if name == "rich_markup":
        assert "[red]alarm[/red]" in text
