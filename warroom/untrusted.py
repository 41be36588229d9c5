"""THE one sanitiser for text warroom did not write (probe bodies, notes, actor names, runbooks).

Anything bound for a terminal goes through `one_line` (actor, title, target, step text, log
lines: never spans lines) or `block` (keeps newlines and tabs); Rich and Textual consumers use
`text` (a `rich.text.Text`, never parsed as markup) or `markup` (escaped for a markup string).

What is never emitted, and how it is shown instead, so a responder sees that something tried:

- C0 controls and DEL (ESC, BEL, NUL, CR, backspace, ...) become their Unicode control
  pictures: ESC is `␛`, BEL `␇`, NUL `␀`, CR `␍`, DEL `␡`. An escape sequence is thereby
  disarmed but stays readable: OSC 52 shows as `␛]52;c;…␇`, conceal as `␛[8m`.
  `one_line` also shows a line break as ` ⏎ ` and a tab as `␉`; `block` keeps both.
- C1 controls (U+0080-U+009F, e.g. the one-byte CSI), bidi embeddings, overrides, isolates
  and marks, invisible format characters (zero-width space, word joiner, BOM, soft hyphen,
  tag characters, ...), line/paragraph separators and lone surrogates become Python-style
  escapes: `\\x9b`, `\\u202e`, `\\U000e0041`.
- Invalid UTF-8 (bytes input) shows each bad byte as `\\xff`.

Zero-width joiner/non-joiner and variation selectors are kept: emoji and several scripts need
them, and they cannot move or hide text. Plain printable text is returned as is after one
`str.isprintable()` check, which keeps the sanitiser cheap in `log show` and every repaint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["ELLIPSIS", "block", "clean", "markup", "one_line", "text"]

ELLIPSIS = "…"
LINE_BREAK = " ⏎ "

_FORMAT_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen (invisible unless at a line end)
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x180E, 0x180E),  # Mongolian vowel separator
    (0x200B, 0x200B),  # zero-width space
    (0x200E, 0x200F),  # LRM, RLM
    (0x2028, 0x2029),  # line and paragraph separators
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x2069),  # bidi isolates
    (0x206A, 0x206F),  # deprecated format characters
    (0xFEFF, 0xFEFF),  # BOM / zero-width no-break space
    (0xFFF9, 0xFFFB),  # interlinear annotations
    (0xD800, 0xDFFF),  # surrogates (not text; invalid bytes arrive as U+DC80-U+DCFF)
    (0xE0000, 0xE007F),  # tag characters (invisible ASCII look-alikes)
)


def _escape(code: int) -> str:
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a byte that was not UTF-8 (surrogateescape)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _build_table(keep_layout: bool) -> dict[int, str]:
    table: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20)}
    table[0x7F] = "␡"
    for code in range(0x80, 0xA0):
        table[code] = _escape(code)
    for low, high in _FORMAT_RANGES:
        for code in range(low, high + 1):
            table[code] = _escape(code)
    if keep_layout:
        del table[0x0A], table[0x09]
    else:
        table[0x0A] = LINE_BREAK
    return table


_ONE_LINE = _build_table(keep_layout=False)
_BLOCK = _build_table(keep_layout=True)


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _cut(value: str, max_len: int | None) -> tuple[str, bool]:
    if max_len is None or len(value) <= max_len:
        return value, False
    # Escaping never shortens text, so cutting the input first bounds the work on 1 MB lines.
    return value[:max_len], True


def _fit(out: str, max_len: int | None, cut: bool) -> str:
    if max_len is None:
        return out
    if cut or len(out) > max_len:
        return out[: max(max_len - 1, 0)] + ELLIPSIS if max_len > 0 else ""
    return out


def one_line(value: object, max_len: int | None = None) -> str:
    """`value` as one safe terminal line: controls, escapes and line breaks shown visibly.

    With `max_len`, at most that many characters, the last one `…` when something was cut.
    Accepts str, bytes (invalid UTF-8 shown as `\\xNN`) or anything else via `str()`.
    """
    text_value, cut = _cut(_as_str(value), max_len)
    if text_value.isprintable():
        return _fit(text_value, max_len, cut)
    if "\r\n" in text_value:
        text_value = text_value.replace("\r\n", "\n")
    return _fit(text_value.translate(_ONE_LINE), max_len, cut)


def block(value: object, max_lines: int | None = None, max_len: int | None = None) -> str:
    """`value` as safe multi-line text: newlines and tabs kept, everything else as `one_line`.

    CRLF becomes LF; a lone CR is shown (`␍`), so no line can overwrite another. With
    `max_lines`, longer text keeps its first lines and ends with a line saying how many more
    there are; `max_len` bounds the characters kept overall.
    """
    text_value, cut = _cut(_as_str(value), max_len)
    if not text_value.isprintable():
        if "\r\n" in text_value:
            text_value = text_value.replace("\r\n", "\n")
        text_value = text_value.translate(_BLOCK)
    if max_lines is not None and text_value.count("\n") >= max_lines:
        lines = text_value.split("\n")
        if len(lines) > max_lines:
            keep = max(max_lines - 1, 0)
            more = len(lines) - keep
            text_value = "\n".join([*lines[:keep], f"{ELLIPSIS} ({more} more lines)"])
    return _fit(text_value, max_len, cut)


def clean(value: object) -> bool:
    """True when `one_line(value)` would return it unchanged (plain printable text)."""
    return isinstance(value, str) and value.isprintable()


def text(
    value: object,
    style: str = "",
    *,
    max_len: int | None = None,
    multiline: bool = False,
    max_lines: int | None = None,
) -> Text:
    """A `rich.text.Text` of the sanitised value: never interpreted as markup (`[red]` and
    `[link=…]` show literally), never an emoji code, one line unless `multiline`."""
    from rich.text import Text

    shown = block(value, max_lines, max_len) if multiline else one_line(value, max_len)
    return Text(shown, style=style, end="")


def markup(value: object, max_len: int | None = None) -> str:
    """The sanitised value escaped for APIs that only take a markup string (toasts, titles)."""
    from rich.markup import escape

    return escape(one_line(value, max_len))
