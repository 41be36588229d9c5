"""Counted nouns as a person writes them: `1 target`, `2 targets`, `0 runbooks`."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`count` and `noun`, the noun in the plural unless count is 1 (`many` when not `+s`)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"
