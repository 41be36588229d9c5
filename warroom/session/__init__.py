"""The console session: store, fold, policies, probe supervision and levers, outside `tui/`."""

from __future__ import annotations

from warroom.session.core import Change, ConsoleSession, EventStore, Follower, ProbeSource
from warroom.session.freshness import Freshness, assess

__all__ = [
    "Change",
    "ConsoleSession",
    "EventStore",
    "Follower",
    "Freshness",
    "ProbeSource",
    "assess",
]
