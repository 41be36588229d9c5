"""Make user-supplied text inert in Markdown (and the HTML it is rendered to).

Notes, titles, reasons, lever responses and actor names are hostile: a note must never open a
section, a table row, a link or a tag in the report. Every helper here returns one line; the
context (table cell, list item, heading, code span, link) picks the helper.
"""

from __future__ import annotations

import re
import unicodedata

#: Shown where a one-line context had a line break.
NEWLINE_MARK = "⏎"

# C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# ASCII punctuation CommonMark gives a meaning to anywhere in a line.
_INLINE = re.compile(r"([\\`*_\[\]|~])")
# Only at the start of a line (or of a list item's text): headings, quotes, lists, rules.
_LEADING = re.compile(r"^(\s*)([#+\-=]|\d+(?=[.)]))")


def visible(text: str, *, newlines: bool = False) -> str:
    """Control and hidden format characters as visible escapes (`\\x1b`, `\\u202e`); line
    breaks become a visible mark unless `newlines` keeps them. The one function the terminal
    sanitiser can share."""

    def show(match: re.Match[str]) -> str:
        char = match.group(0)
        if char == "\n":
            return "\n" if newlines else f" {NEWLINE_MARK} "
        if char == "\r":
            return "" if newlines else f" {NEWLINE_MARK} "
        if char == "\t":
            return " "
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    text = str(text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return _INVISIBLE.sub(show, text)


# Text made only of these needs no escaping at all (most notes): one scan instead of five.
_PLAIN = re.compile(r"[^\x00-\x1f\x7f-\xff\\`*_\[\]|~&<>]*")


def is_plain(line: str) -> bool:
    """True when `inline` leaves `line` as it is (no character in it means anything)."""
    return bool(
        line.isascii()
        and _PLAIN.fullmatch(line)
        and " -> " not in line
        and not _LEADING.match(line)
        and line == line.strip()
    )


def inline(text: object) -> str:
    """Text for anywhere inside a Markdown line: list items, headings, link text, prose."""
    line = str(text)
    if is_plain(line):
        return line
    line = visible(line).strip().replace(" -> ", " → ")
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    line = _INLINE.sub(r"\\\1", line)
    return _LEADING.sub(_escape_leading, line)


def _escape_leading(match: re.Match[str]) -> str:
    lead, mark = match.group(1), match.group(2)
    # A backslash before a digit would be shown: a list number is broken after its digits.
    return f"{lead}{mark}\\" if mark[0].isdigit() else f"{lead}\\{mark}"


def cell(text: object) -> str:
    """Text for a GFM table cell (a pipe can never split the row; empty shows as '-')."""
    return inline(text) or "-"


def code(text: object, *, in_table: bool = False) -> str:
    """A code span around `text`, fenced longer than any backtick run inside it."""
    body = visible(str(text)).strip()
    if in_table:
        body = body.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body else ""
    return f"{fence}{pad}{body}{pad}{fence}"


_SAFE_URL = re.compile(r"^https?://[^\s<>()\[\]`\"'\\|]+$")


def link(label: object, url: str) -> str:
    """A link when `url` is a plain http(s) URL; otherwise the URL shown as inert text."""
    url = url.strip()
    if _SAFE_URL.match(url):
        return f"[{inline(label)}]({url})"
    return code(url) if url else ""
