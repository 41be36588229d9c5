"""The store interface the console session, probes, replay and report code against.

`IncidentStore` is a `typing.Protocol`: `warroom.log.store.IncidentLog` (the JSONL file)
satisfies it as it is, and so do `PgStore` (PostgreSQL) and `SharedIncident` (PostgreSQL with
a local mirror and an offline segment), so the session never needs to know which it holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from warroom.log.scan import LogError

if TYPE_CHECKING:  # annotations only: `log show` of a file imports no pydantic
    from warroom.events import BaseEvent
    from warroom.log.store import Recovery


@runtime_checkable
class IncidentStore(Protocol):
    """Append one / append many / read from seq / follow, plus where the chain ends."""

    #: Who appended events are credited to when they do not name an actor themselves.
    actor: str

    def append(self, event: BaseEvent) -> BaseEvent:
        """Stamp (seq, ts, actor, prev, hash) and store; durable kinds are stored on return."""
        ...

    def append_many(self, events: Iterable[BaseEvent], sync: bool = False) -> list[BaseEvent]:
        """Stamp and store several events at once, in order; return them stamped."""
        ...

    def read(self, from_seq: int = 1) -> Iterator[BaseEvent]:
        """The stored events with seq >= from_seq, in order."""
        ...

    def follow(self, from_seq: int = 1, interval: float = 0.2) -> AsyncIterator[BaseEvent]:
        """The stored events, then each new one as it is stored (never ends by itself)."""
        ...

    @property
    def last_seq(self) -> int:
        """The seq of the last event this store knows of (0 when empty)."""
        ...

    @property
    def head(self) -> str:
        """The hash of that event (`codec.GENESIS` when empty)."""
        ...

    #: A torn tail found (and set aside) when a file store was opened; None otherwise.
    recovered: Recovery | None

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class StoreUnavailable(LogError):
    """The database cannot be reached (or stopped answering); the outcome of a write is
    unknown until it is retried with the same idempotency ids."""


class StoreTampered(LogError):
    """A stored event fails its check: `seq` is the first one that cannot be trusted."""

    def __init__(self, message: str, seq: int, reason: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.reason = reason
