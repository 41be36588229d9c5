"""Messages widgets and screens post up to the app: a lever to pull, revert or extend.

The mitigation panel and a runbook step's "pull lever" post the same `ChangeRequested`; the
app asks for the details (dialog) and makes the change through the session in a worker.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.widget import Widget


class LeverMessage(Message):
    """Something the responder wants done to one lever (`service`/`lever`, the control's name:
    `control` is Textual's name for the sending widget)."""

    def __init__(self, service: str, lever: str) -> None:
        super().__init__()
        self.service = service
        self.lever = lever


class ChangeRequested(LeverMessage):
    """Change a lever: `value` and `reason` preset the dialog (a runbook step's action)."""

    def __init__(
        self,
        service: str,
        lever: str,
        value: Any = None,
        reason: str = "",
        runbook: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(service, lever)
        self.value = value
        self.reason = reason
        self.runbook = runbook
        self.step = step


class RevertRequested(LeverMessage):
    """Undo a lever's last applied change."""


class ExtendRequested(LeverMessage):
    """Push back a lever's pending automatic revert."""


def request_dialog(widget: Widget, message: LeverMessage) -> None:
    """Post a request that opens a dialog; keys typed meanwhile wait for that dialog (the
    app holds them) instead of running as hotkeys on the screen below."""
    hold = getattr(widget.app, "hold_keys_for_dialog", None)
    if hold is not None:
        hold()
    widget.post_message(message)
