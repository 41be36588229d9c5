"""The text of a posted status update as a responder pastes it: the CAN report plus the log
head at that moment, so whoever keeps the paste holds an anchor against a log cut short."""

from __future__ import annotations

from warroom.events import StatusUpdatePosted
from warroom.log.anchor import head_before


def status_update_text(update: StatusUpdatePosted) -> str:
    """`Conditions: …` / `Actions: …` / `Needs: …` lines, then `log head #N sha256:<64 hex>`
    (the head just before the update was appended; `log verify --head` checks it)."""
    lines = [f"Conditions: {update.conditions}"]
    if update.actions:
        lines.append(f"Actions: {update.actions}")
    if update.needs:
        lines.append(f"Needs: {update.needs}")
    lines.append(head_before(update))
    return "\n".join(lines)
