"""The one choke point for toasts: both apps' `notify` pass their text through here."""

from __future__ import annotations

from typing import Any

from warroom import untrusted

#: A toast shows at most this much of a message (command output, error text, a note).
MAX_LINES, MAX_CHARS, MAX_TITLE = 12, 2000, 120


def safe_toast(message: object, title: object = "") -> dict[str, Any]:
    """`notify` keywords for a message and title that may quote untrusted text: escapes shown
    (never sent), bounded in size, and never parsed as markup (`[x]` is data)."""
    return {
        "message": untrusted.block(message, max_lines=MAX_LINES, max_len=MAX_CHARS),
        "title": untrusted.one_line(title, MAX_TITLE),
        "markup": False,
    }
