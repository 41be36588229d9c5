"""One prober per shared incident: a lease in the store says which console runs the probes.

Two consoles on one incident must not double every probe event. The console that holds the
lease runs the probe workers; the others follow its events (the events' actor names the
vantage they were probed from). The holder renews every third of the lease's time; if it
dies or loses the database, the lease expires and another console takes over within `ttl`.
"""

from __future__ import annotations

import time
from typing import Protocol

from warroom.store.base import StoreUnavailable

PROBE_LEASE = "probes"
#: Seconds a lease lasts without renewal.
DEFAULT_TTL = 10.0


class LeaseStore(Protocol):
    def try_lease(self, name: str, holder: str, ttl: float) -> tuple[bool, str]: ...


class ProbeLease:
    """Call `tick()` often (every second is plenty): True while this console should probe."""

    def __init__(
        self, store: LeaseStore, holder: str, ttl: float = DEFAULT_TTL, name: str = PROBE_LEASE
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.name = name
        #: Who holds it as last seen ('' when unknown, e.g. offline).
        self.current = ""
        self._held_until = 0.0
        self._next_try = 0.0

    def tick(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now >= self._next_try:
            try:
                held, self.current = self.store.try_lease(self.name, self.holder, self.ttl)
            except StoreUnavailable:
                held = False
                self.current = ""
            self._held_until = now + self.ttl if held else 0.0
            self._next_try = now + (self.ttl / 3 if held else min(1.0, self.ttl / 3))
        return now < self._held_until

    def release(self) -> None:
        """Give the lease up now if the store can (else it expires within `ttl`)."""
        release = getattr(self.store, "release_lease", None)
        if release is not None and self._held_until:
            release(self.name, self.holder)
        self._held_until = 0.0
