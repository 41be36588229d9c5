"""The terminal sanitiser: nothing a terminal acts on gets through, and it shows what tried."""

from __future__ import annotations

import time

import pytest
from hostile import BENIGN, INVALID_UTF8, PAYLOADS, assert_terminal_safe
from rich.console import Console

from warroom import untrusted


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_every_payload_is_disarmed_in_both_modes(name: str) -> None:
    payload = PAYLOADS[name]
    assert_terminal_safe(untrusted.one_line(payload), one_line=True)
    assert_terminal_safe(untrusted.block(payload))


def test_escapes_are_shown_not_dropped() -> None:
    assert untrusted.one_line(PAYLOADS["osc52_clipboard"]) == "␛]52;c;UFdORUQ=␇␛[2J"
    assert untrusted.one_line(PAYLOADS["conceal"]) == "visible ␛[8mhidden rm -rf /␛[28m"
    assert untrusted.one_line("\x9b2J") == "\\x9b2J"
    assert untrusted.one_line("user\u202egnp.exe") == "user\\u202egnp.exe"
    assert untrusted.one_line("ok\U000e0049") == "ok\\U000e0049"
    assert untrusted.one_line("a\x00b\x7f") == "a␀b␡"
    assert untrusted.one_line("a\u2028b") == "a\\u2028b"
    assert untrusted.one_line("bad\ud800") == "bad\\ud800"


def test_one_line_never_breaks_a_line_and_block_keeps_layout() -> None:
    assert untrusted.one_line("alice\nroot") == "alice ⏎ root"
    assert untrusted.one_line("a\r\nb\tc\rd") == "a ⏎ b␉c␍d"
    assert untrusted.block("a\r\nb\tc\rd\n") == "a\nb\tc␍d\n"


def test_invalid_utf8_bytes_are_shown_byte_by_byte() -> None:
    assert untrusted.one_line(b"caf\xc3\xa9 \xff\xfe") == "café \\xff\\xfe"
    for raw in INVALID_UTF8:
        assert_terminal_safe(untrusted.one_line(raw), one_line=True)
        assert_terminal_safe(untrusted.block(raw))
    assert untrusted.one_line(PAYLOADS["invalid_utf8_escaped"]) == "caf\\xc3 \\xff\\xfe"


def test_benign_text_comes_through_unchanged() -> None:
    for value in BENIGN:
        assert untrusted.one_line(value) == value
        assert untrusted.block(value) == value
    assert untrusted.block("two\nlines\tand a tab") == "two\nlines\tand a tab"
    assert untrusted.one_line(42) == "42"


def test_limits_cut_visibly() -> None:
    assert untrusted.one_line("abcdef", max_len=4) == "abc…"
    assert untrusted.one_line("abcd", max_len=4) == "abcd"
    assert untrusted.one_line("\x1b\x1b\x1b", max_len=2) == "␛…"
    lines = "\n".join(f"line {i}" for i in range(62))
    shown = untrusted.block(lines, max_lines=10)
    assert shown.splitlines()[:9] == [f"line {i}" for i in range(9)]
    assert shown.splitlines()[9] == "… (53 more lines)" and shown.count("\n") == 9
    assert untrusted.block("a\nb", max_lines=2) == "a\nb"


def test_a_megabyte_line_is_fast_both_when_clean_and_when_hostile() -> None:
    clean = "x" * (1 << 20)
    hostile = "\x1b" * (1 << 20)
    start = time.perf_counter()
    assert untrusted.one_line(clean) is clean
    assert len(untrusted.one_line(hostile)) == 1 << 20
    assert len(untrusted.one_line(PAYLOADS["huge_line"], max_len=200)) == 200
    assert time.perf_counter() - start < 0.5


def test_rich_text_renders_markup_literally_and_nothing_active() -> None:
    console = Console(width=200, color_system=None, force_terminal=False, emoji=True)
    with console.capture() as capture:
        console.print(untrusted.text(PAYLOADS["rich_markup"] + " " + PAYLOADS["emoji_code"]))
    out = capture.get()
    assert "[red]alarm[/red] [link=https://evil.example]x[/link]" in out
    assert ":warning:" in out
    rendered = untrusted.text(PAYLOADS["osc8_link"], style="bold")
    assert rendered.plain == "␛]8;;https://evil.example/␛\\click␛]8;;␛\\" and not rendered.spans
    assert untrusted.text("a\nb").plain == "a ⏎ b"
    assert untrusted.text("a\nb", multiline=True).plain == "a\nb"


def test_markup_escapes_for_markup_only_apis() -> None:
    from rich.text import Text

    escaped = untrusted.markup("[bold]x[/bold]\x1b[2J")
    assert Text.from_markup(escaped).plain == "[bold]x[/bold]␛[2J"
