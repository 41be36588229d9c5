"""How fresh the probe data is: a pure rule, so the screen never shows stale data as live.

A target is stale when no probe engine is running (a resumed incident without targets, a
dead worker), when the running engine does not probe it, or when its newest result is older
than `STALE_FACTOR` of its interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Data older than this many intervals is stale.
STALE_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class Freshness:
    """Which targets' data is not live, since when (the oldest of their last results), why."""

    stale: frozenset[str] = frozenset()
    since: datetime | None = None
    reason: str = ""

    @property
    def live(self) -> bool:
        return not self.stale


def assess(
    targets: Iterable[str],
    seen: Mapping[str, datetime],
    now: datetime,
    intervals: Mapping[str, float],
    engine: str = "",
) -> Freshness:
    """Freshness of `targets` given when each was last seen and each probed one's interval.

    `intervals` holds the targets the running engine probes (empty: none is running);
    `engine` says why none runs when that is so ("no probe engine running" by default).
    """
    names = list(targets)
    if not names:
        return Freshness()
    stale: set[str] = set()
    reasons: set[str] = set()
    # One cut-off per distinct interval: a comparison per target, not a subtraction.
    cutoffs: dict[float, datetime] = {}
    for name in names:
        interval = intervals.get(name)
        if interval is None:
            stale.add(name)
            if intervals:
                reasons.add("not probed")
            else:
                reasons.add(engine or "no probe engine running")
            continue
        cutoff = cutoffs.get(interval)
        if cutoff is None:
            cutoff = cutoffs[interval] = now - timedelta(seconds=STALE_FACTOR * interval)
        last = seen.get(name)
        if last is None or last < cutoff:
            stale.add(name)
            reasons.add(f"no result for {STALE_FACTOR:g}× the interval")
    if not stale:
        return Freshness()
    times = [seen[name] for name in stale if name in seen]
    return Freshness(frozenset(stale), min(times) if times else None, "; ".join(sorted(reasons)))
