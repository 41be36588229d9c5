"""Event times as the screen shows them: local `07:52:14`, dated (`Oct 20 07:52:14`) only
when the event is not on the reference day (the incident's, or today).

Pure apart from the local time zone (the process's, unless a `tz` is given). Month names
are English whatever the locale, so two responders' screens and pastes read the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _parse(ts: str | datetime) -> datetime | None:
    if isinstance(ts, datetime):
        return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def local_time(ts: str | datetime, tz: tzinfo | None = None) -> datetime | None:
    """`ts` (RFC 3339, UTC unless it says otherwise) in `tz` (default: local); None if bad."""
    parsed = _parse(ts)
    return None if parsed is None else parsed.astimezone(tz)


def local_day(ts: str | datetime, tz: tzinfo | None = None) -> date | None:
    """The local calendar day of `ts`: the reference day to pass to `clock`."""
    moment = local_time(ts, tz)
    return None if moment is None else moment.date()


def clock(ts: str | datetime, day: date | None = None, tz: tzinfo | None = None) -> str:
    """`07:52:14` (local), or `Oct 20 07:52:14` when that is not on `day` (default: today).

    A year is added only when it differs too (`Oct 20 2024 07:52:14`). Text that is not a
    time comes back as it was, or `-` when empty: a bad stamp is shown, never hidden.
    """
    moment = local_time(ts, tz)
    if moment is None:
        return str(ts) or "-"
    reference = day if day is not None else datetime.now(tz).date()
    text = moment.strftime("%H:%M:%S")
    if moment.date() == reference:
        return text
    year = f" {moment.year}" if moment.year != reference.year else ""
    return f"{_MONTHS[moment.month - 1]} {moment.day:>2}{year} {text}"


def clock_for(day: date | None = None, tz: tzinfo | None = None) -> Callable[[str], str]:
    """`clock` with its day and zone fixed, remembering each second it formatted (a big log
    has many events per second: `log show` formats millions of them)."""
    seen: dict[str, str] = {}

    def one(ts: str) -> str:
        # Stamps warroom writes are UTC (`...Z`): the fraction never changes the second shown.
        key = ts[:19] if len(ts) > 19 and ts.endswith("Z") else ts
        text = seen.get(key)
        if text is None:
            text = clock(key, day, tz)
            if len(seen) < 100_000:
                seen[key] = text
        return text

    return one
