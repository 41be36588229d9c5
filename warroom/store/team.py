"""The team on a shared incident, derived from events: who is here, and the two-person rule.

Pure (no I/O, no clock: `now` is passed in), folded like `state.reduce`, so the console,
replay and the report agree. Presence comes from `PresenceHeartbeat` events: a console is
connected while its last heartbeat is younger than `STALE_AFTER` intervals. A change asked
for with `needs_second` is held until a `ControlConfirmed` by a *different* actor, with a
reason of their own, follows it; a confirmation that breaks the rule is kept as rejected
(and shown), never applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from warroom import events as ev

#: Missed heartbeats after which a console counts as gone.
STALE_AFTER = 3.0


def machine_of(actor: str) -> str:
    """The host part of `user@host` (the author's machine), or '' when there is none."""
    return actor.rpartition("@")[2] if "@" in actor else ""


@dataclass(frozen=True)
class Presence:
    actor: str
    machine: str
    session: str
    last_seen: str
    interval_s: float
    left: bool = False

    def connected(self, now: datetime) -> bool:
        if self.left or not self.last_seen:
            return False
        age = (now - ev.parse_ts(self.last_seen)).total_seconds()
        return age <= self.interval_s * STALE_AFTER


@dataclass(frozen=True)
class HeldChange:
    """A `needs_second` change waiting for its second responder."""

    request_id: str
    service: str
    control: str
    to_value: ev.ControlValue
    requested_by: str
    reason: str
    seq: int


@dataclass(frozen=True)
class Confirmation:
    request_id: str
    by: str
    reason: str
    seq: int


@dataclass(frozen=True)
class Rejected:
    """A confirmation that does not count, and why (shown in the timeline)."""

    request_id: str
    by: str
    seq: int
    why: str


@dataclass(frozen=True)
class Team:
    presence: Mapping[str, Presence] = field(default_factory=lambda: MappingProxyType({}))
    held: Mapping[str, HeldChange] = field(default_factory=lambda: MappingProxyType({}))
    confirmed: Mapping[str, Confirmation] = field(default_factory=lambda: MappingProxyType({}))
    rejected: tuple[Rejected, ...] = ()

    def connected(self, now: datetime) -> list[Presence]:
        """Consoles heard from recently, by actor then machine."""
        return sorted(
            (p for p in self.presence.values() if p.connected(now)),
            key=lambda p: (p.actor, p.machine, p.session),
        )

    def may_apply(self, request_id: str) -> bool:
        """False while the change waits for its second responder."""
        return request_id not in self.held


class Heartbeat:
    """Makes this console's `PresenceHeartbeat`s: `due(now)` gives one every `interval_s`."""

    def __init__(self, machine: str, session: str, interval_s: float = 15.0) -> None:
        self.machine = machine
        self.session = session
        self.interval_s = interval_s
        self._last: float | None = None

    def due(self, now: float) -> ev.PresenceHeartbeat | None:
        """A heartbeat when one is due at `now` (monotonic seconds), else None."""
        if self._last is not None and now - self._last < self.interval_s:
            return None
        self._last = now
        return self._event(False)

    def leaving(self) -> ev.PresenceHeartbeat:
        return self._event(True)

    def _event(self, leaving: bool) -> ev.PresenceHeartbeat:
        return ev.PresenceHeartbeat(
            machine=self.machine,
            session=self.session,
            interval_s=self.interval_s,
            leaving=leaving,
        )


def confirmation_problem(team: Team, request_id: str, actor: str, reason: str) -> str | None:
    """Why `actor` may not confirm `request_id` (checked before the event is appended)."""
    held = team.held.get(request_id)
    if held is None:
        if request_id in team.confirmed:
            return f"change {request_id} is already confirmed"
        return f"no change {request_id} is waiting for a second responder"
    if actor == held.requested_by:
        return f"{actor} asked for change {request_id}: a different responder must confirm it"
    if not reason.strip():
        return "a confirmation needs its own reason"
    return None


def reduce_team(team: Team, event: ev.BaseEvent) -> Team:
    """The team after `event`. Pure: `team` is not modified."""
    if isinstance(event, ev.PresenceHeartbeat):
        key = f"{event.actor}|{event.machine}|{event.session}"
        seen = Presence(
            actor=event.actor,
            machine=event.machine or machine_of(event.actor),
            session=event.session,
            last_seen=event.ts,
            interval_s=max(event.interval_s, 0.1),
            left=event.leaving,
        )
        return replace(team, presence=MappingProxyType({**team.presence, key: seen}))
    if isinstance(event, ev.ControlRequested) and event.needs_second:
        held = HeldChange(
            request_id=event.request_id,
            service=event.service,
            control=event.control,
            to_value=event.to_value,
            requested_by=event.actor,
            reason=event.reason,
            seq=event.seq,
        )
        return replace(team, held=MappingProxyType({**team.held, event.request_id: held}))
    if isinstance(event, ev.ControlConfirmed):
        why = confirmation_problem(team, event.request_id, event.actor, event.reason)
        if why is not None:
            rejected = Rejected(event.request_id, event.actor, event.seq, why)
            return replace(team, rejected=(*team.rejected, rejected))
        waiting = dict(team.held)
        del waiting[event.request_id]
        confirmation = Confirmation(event.request_id, event.actor, event.reason, event.seq)
        return replace(
            team,
            held=MappingProxyType(waiting),
            confirmed=MappingProxyType({**team.confirmed, event.request_id: confirmation}),
        )
    return team


def fold_team(events: Iterable[ev.BaseEvent], team: Team | None = None) -> Team:
    current = team if team is not None else Team()
    for event in events:
        current = reduce_team(current, event)
    return current
