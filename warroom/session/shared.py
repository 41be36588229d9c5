"""A console on a shared incident: follow the store, show who is here, probe only with the lease.

`SharedFeed` turns `SharedIncident.follow()` into the session's `Follower` (events are released
in seq order, so an event this console appended is never folded before one another console
stored just before it). `shared_line` is the pure text the header shows of the store's status,
the team and the prober. `LeasedProbes` runs the probe supervisor only while this console holds
the incident's probing lease; the others follow its probe events. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from warroom.events import BaseEvent
from warroom.session.supervisor import ProbeSupervisor
from warroom.store.lease import ProbeLease
from warroom.store.team import Team
from warroom.untrusted import one_line

#: Seconds an event out of seq order is held for the one before it, then folded anyway.
HOLD_S = 2.0


class SharedStore(Protocol):
    """What the session needs of `warroom.store.shared.SharedIncident`."""

    generation: int

    def status(self) -> Any: ...

    def follow(
        self,
        from_seq: int = 1,
        interval: float = 0.2,
        on_merged: Callable[[], None] | None = None,
    ) -> AsyncIterator[BaseEvent]: ...

    def read(self, from_seq: int = 1) -> Iterator[BaseEvent]: ...

    def try_lease(self, name: str, holder: str, ttl: float) -> tuple[bool, str]: ...


def is_shared(store: object) -> bool:
    """True for a store shared with other consoles (it has `follow`, `status`, `try_lease`)."""
    return all(hasattr(store, name) for name in ("follow", "status", "try_lease", "generation"))


class SharedFeed:
    """The session's follower on a shared incident, fed by `run()` from `store.follow()`."""

    def __init__(self, store: SharedStore, last_seq: Callable[[], int]) -> None:
        self.store = store
        self._last_seq = last_seq
        self._held: dict[int, tuple[float, BaseEvent]] = {}
        #: Called (on the event loop) when new events are waiting to be polled.
        self.on_events: Callable[[], None] | None = None

    def hold(self, events: list[BaseEvent]) -> None:
        """Keep `events` until the ones before them arrive (see the module docstring)."""
        now = time.monotonic()
        for event in events:
            self._held.setdefault(event.seq, (now, event))

    def poll(self, limit: int | None = None) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        last = self._last_seq()
        now = time.monotonic()
        for seq in sorted(self._held):
            at, event = self._held[seq]
            if seq <= last:
                del self._held[seq]
            elif seq == last + 1 or now - at >= HOLD_S:
                del self._held[seq]
                out.append(event)
                last = seq
            else:
                break
        return out

    async def run(self) -> None:
        """Follow the store until cancelled, waking the session after each event and after
        each merge of offline events (whose shared copies are not yielded: it must re-fold)."""
        async for event in self.store.follow(on_merged=self._woke):
            self._held.setdefault(event.seq, (time.monotonic(), event))
            self._woke()

    def _woke(self) -> None:
        if self.on_events is not None:
            self.on_events()


@dataclass(frozen=True)
class SharedView:
    """What the header shows of a shared incident (pure data; `shared_line` words it)."""

    online: bool
    offline_since: float | None
    pending: int
    error: str
    tampered_seq: int | None
    team: tuple[str, ...]
    prober: str
    probing_here: bool
    #: Changes waiting for a second responder: (service.control, asked by).
    waiting: tuple[tuple[str, str], ...] = ()


def shared_view(status: Any, team: Team, now: datetime, prober: str, here: bool) -> SharedView:
    people = tuple(dict.fromkeys(p.actor for p in team.connected(now)))
    waiting = tuple(
        (f"{h.service}.{h.control}", h.requested_by)
        for h in sorted(team.held.values(), key=lambda h: h.seq)
    )
    return SharedView(
        online=bool(status.online),
        offline_since=status.offline_since,
        pending=int(status.pending),
        error=str(status.error or ""),
        tampered_seq=status.tampered_seq,
        team=people,
        prober=prober,
        probing_here=here,
        waiting=waiting,
    )


def shared_line(view: SharedView) -> list[tuple[str, str]]:
    """(text, style) pieces: tampering first and loudest, then offline, team, prober."""
    parts: list[tuple[str, str]] = []
    if view.tampered_seq is not None:
        parts.append((f" TAMPERED at #{view.tampered_seq} ", "bold white on red"))
        parts.append(("  shared log fails its check — stop trusting it  ", "bold red"))
    if not view.online and view.offline_since is not None:
        since = datetime.fromtimestamp(view.offline_since, UTC).strftime("%H:%M:%S")
        waiting = "event" if view.pending == 1 else "events"
        parts.append(
            (f" OFFLINE since {since} — {view.pending} {waiting} waiting ", "bold reverse")
        )
        parts.append(("  ", ""))
    if view.waiting:
        lever, by = view.waiting[0]
        more = f" (+{len(view.waiting) - 1})" if len(view.waiting) > 1 else ""
        text = f" {lever} by {one_line(by, 40)} waits for a second responder{more} (y) "
        parts.append((text, "bold black on yellow"))
        parts.append(("  ", ""))
    if view.team:
        parts.append((f"team ({len(view.team)}): ", "dim"))
        parts.append((", ".join(one_line(p, 60) for p in view.team), ""))
    if view.probing_here:
        parts.append(("  probes here", "dim"))
    elif view.prober:
        parts.append((f"  probes by {one_line(view.prober, 60)}", "dim"))
    return parts


class LeasedProbes:
    """Runs `supervisor` only while this console holds the incident's probing lease."""

    def __init__(
        self,
        supervisor: ProbeSupervisor,
        lease: ProbeLease,
        on_change: Callable[[], None] | None = None,
        tick_s: float = 1.0,
    ) -> None:
        self.supervisor = supervisor
        self.lease = lease
        self.on_change = on_change
        self.tick_s = tick_s
        self.holding = False
        self._task: asyncio.Task[None] | None = None

    def intervals(self) -> dict[str, float]:
        """The targets' intervals while anyone probes (here, or the lease holder elsewhere)."""
        if self.holding:
            return dict(self.supervisor.intervals())
        return dict(self.supervisor.planned_intervals()) if self.lease.current else {}

    @property
    def status(self) -> str:
        if self.holding:
            return self.supervisor.status
        return "" if self.lease.current else "no console is probing this incident"

    @property
    def holder(self) -> str:
        """Who probes this incident as last seen ('' when unknown)."""
        return self.lease.holder if self.holding else self.lease.current

    async def run(self) -> None:
        try:
            while True:
                held = await asyncio.to_thread(self.lease.tick)
                if held and self._task is None:
                    self._task = asyncio.get_running_loop().create_task(self.supervisor.run())
                elif not held and self._task is not None:
                    await self._stop()
                if held != self.holding:
                    self.holding = held
                    if self.on_change is not None:
                        self.on_change()
                await asyncio.sleep(self.tick_s)
        finally:
            await self._stop()
            if self.holding:
                await asyncio.to_thread(self.lease.release)

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
