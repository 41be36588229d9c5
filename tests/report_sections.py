"""The postmortem draft's sections, in order: what every report must have (the SRE book's
template plus warroom's appendices)."""

from __future__ import annotations

SECTIONS = (
    "## Summary",
    "## Impact",
    "## Root causes",
    "## Trigger",
    "## Detection",
    "## Resolution",
    "## Key times",
    "## Action items",
    "## Lessons learned",
    "## Timeline",
    "## Levers pulled",
    "## Runbooks",
    "## Status updates",
    "## Participants",
    "## Appendix: full timeline",
    "## Appendix: notes",
    "## Appendix: bookmarks",
    "## Log integrity",
)


def headings(markdown: str) -> list[str]:
    """The level-2 headings of a rendered report, in order."""
    return [line for line in markdown.splitlines() if line.startswith("## ")]
