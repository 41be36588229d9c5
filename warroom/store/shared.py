"""The console's store for a shared incident: PostgreSQL, a local mirror, an offline segment.

Online, appends go to PostgreSQL (`PgStore`) and a `Follower` keeps a checked JSONL mirror and
feeds `follow()`. When the database cannot be reached, the console keeps working: new events
go to a local offline segment chained from the last shared head (same line format, fsynced
like the file store, so a lever pulled offline is on disk before it is acknowledged). When the
database is back, the segment is re-appended before anything else, each event keeping its
`eid` (so a crash mid-merge never stores one twice) and carrying `offline_seq` and
`offline_hash` (its place in the segment's chain), so both chains verify; the segment file
is then kept beside the mirror as `…offline-merged-<time>.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from warroom.errors import WarroomError
from warroom.events import BaseEvent
from warroom.identity import default_actor
from warroom.log import codec
from warroom.log.scan import LogError, scan, where
from warroom.log.stamp import stamp
from warroom.log.store import Recovery
from warroom.store.base import StoreTampered, StoreUnavailable
from warroom.store.chain import parse_row
from warroom.store.follow import Follower
from warroom.store.pg import EID, PgStore
from warroom.store.url import StoreURL, parse_url

#: Envelope keys a merged event carries: its seq and hash in the offline segment.
OFFLINE_SEQ = "offline_seq"
OFFLINE_HASH = "offline_hash"
#: Where a batch for `follow()` comes from; MERGED says a merge is now mirrored.
SHARED, OFFLINE, MERGED = "shared", "offline", "merged"


def is_merged_offline(event: BaseEvent) -> bool:
    """True for an event written offline and merged into the shared chain later."""
    return OFFLINE_HASH in (event.model_extra or {})


class OfflineSegment:
    """Events appended while the database was unreachable, chained from a shared head."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base_seq = 0
        self.base_hash = codec.GENESIS
        self.last_seq = 0
        self.head = codec.GENESIS
        self.count = 0
        if path.exists():
            for record in scan(path):
                if self.count == 0:
                    self.base_seq, self.base_hash = record.seq - 1, record.data["prev"]
                self.count += 1
                self.last_seq, self.head = record.seq, record.data["hash"]

    def append(
        self, events: list[BaseEvent], base_seq: int, base_hash: str, actor: str
    ) -> list[BaseEvent]:
        """Stamp after the segment's end (or after `base_*` when it is empty) and fsync."""
        if self.count == 0:
            self.base_seq, self.base_hash = base_seq, base_hash
            self.last_seq, self.head = base_seq, base_hash
        payloads = [event.__pydantic_serializer__.to_python(event, mode="json") for event in events]
        for data in payloads:
            data[EID] = data.get(EID) or uuid.uuid4().hex
        lines: list[bytes] = []
        stamped: list[BaseEvent] = []
        chained = stamp(payloads, self.last_seq, self.head, actor)
        for data, (body, envelope) in zip(payloads, chained, strict=True):
            lines.append(codec.line_of(body, envelope["hash"]))
            stamped.append(parse_row({**data, "hash": envelope["hash"]}))
        seq, prev = stamped[-1].seq, stamped[-1].hash
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                view = memoryview(b"".join(lines))
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise LogError(f"{where(self.path)}: cannot write offline: {exc.strerror}") from None
        self.last_seq, self.head = seq, prev
        self.count += len(stamped)
        return stamped

    def events(self) -> list[BaseEvent]:
        return list(read_file(self.path)) if self.path.exists() else []


@dataclass(frozen=True)
class SharedStatus:
    """What the console header shows about the shared store."""

    online: bool
    #: When the store went offline (time.time()), None while online.
    offline_since: float | None
    #: Events written offline and not yet merged.
    pending: int
    #: Why the database is unreachable, or what was found tampered; empty when all is well.
    error: str
    #: Set when a follower found a stored event that fails its check.
    tampered_seq: int | None = None


class SharedIncident:
    """A shared incident for a console: satisfies `IncidentStore`, works while offline.

    `follow()` yields the shared events as the follower checks them, and the events this
    console wrote offline as they are written; once merged, their shared copies (same
    `eid`) are not yielded again. `generation` goes up after each merge, once the mirror
    holds the merged events (so `read()` has the shared order by then), and `follow()` calls
    its `on_merged`: a console that wants the exact shared order then re-folds `read()`.
    """

    def __init__(
        self,
        url: StoreURL,
        mirror: Path,
        offline: Path,
        on_status: Callable[[SharedStatus], None] | None = None,
    ) -> None:
        self.url = url
        self.mirror_path = mirror
        self.actor = default_actor()
        self.recovered: Recovery | None = None
        self.path = mirror
        self.on_status = on_status
        self.generation = 0
        self._offline_path = offline
        self._segment = OfflineSegment(offline)
        self._writer: PgStore | None = None
        self._lock = threading.RLock()
        self._offline_since: float | None = None
        self._error = ""
        self._tampered: int | None = None
        self._seen_offline: set[str] = set()
        #: (where from, events) batches for `follow()`: SHARED, OFFLINE, or MERGED (no events).
        self._queue: queue.SimpleQueue[tuple[str, list[BaseEvent]]] = queue.SimpleQueue()
        #: Only once `follow()` runs are events queued (what it reads first covers the rest).
        self._following = False
        self._follower = Follower(url, mirror=mirror, on_connection=self._on_follower)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq, self._hash = self._follower.last_seq, self._follower.head
        #: The last shared event this console appended (seq, hash).
        self._acked = (0, codec.GENESIS)
        #: The shared seq the last merge reached, until the mirror holds it (then 0).
        self._merged_to = 0
        if self._segment.count:
            self._seq, self._hash = self._segment.last_seq, self._segment.head
            self._offline_since = time.time()
            self._seen_offline.update(_eid_of(e) for e in self._segment.events())

    @classmethod
    def open(
        cls,
        url: str | StoreURL,
        mirror: str | os.PathLike[str] | None = None,
        on_status: Callable[[SharedStatus], None] | None = None,
    ) -> SharedIncident:
        """Open (creating the incident if needed); works offline from the mirror.

        The mirror defaults to `incidents/<incident>.shared.jsonl`, the offline segment to
        the same name with `.offline.jsonl`.
        """
        parsed = parse_url(url) if isinstance(url, str) else url
        mirror_path = (
            Path(mirror)
            if mirror is not None
            else Path("incidents") / (f"{parsed.incident}.shared.jsonl")
        )
        offline = mirror_path.with_name(mirror_path.name.removesuffix(".jsonl") + ".offline.jsonl")
        shared = cls(parsed, mirror_path, offline, on_status)
        shared._connect()
        shared._thread = threading.Thread(
            target=shared._run, name=f"shared {parsed.display}", daemon=True
        )
        shared._thread.start()
        return shared

    # -- status ----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """What another process (a probe worker) is given to append to this incident."""
        joiner = "&" if "?" in self.url.conninfo else "?"
        return f"{self.url.conninfo}{joiner}incident={self.url.incident}"

    @property
    def online(self) -> bool:
        return self._writer is not None and self._offline_since is None

    def status(self) -> SharedStatus:
        return SharedStatus(
            online=self.online,
            offline_since=self._offline_since,
            pending=self._segment.count,
            error=self._error,
            tampered_seq=self._tampered,
        )

    def _changed(self) -> None:
        if self.on_status is not None:
            self.on_status(self.status())

    def _on_follower(self, connected: bool, error: str) -> None:
        if not connected and not self._error:
            self._error = error

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def head(self) -> str:
        return self._hash

    # -- connecting and merging ------------------------------------------------------------

    def _connect(self) -> bool:
        """Try the database; merge the offline segment first when there is one."""
        with self._lock:
            try:
                if self._writer is None:
                    self._writer = PgStore.open(self.url, create=True)
                if self._segment.count:
                    self._merge(self._writer)
            except StoreUnavailable as exc:
                if self._writer is not None:
                    self._writer.close()
                self._writer = None
                self._go_offline(str(exc))
                return False
            was_offline = self._offline_since is not None
            self._offline_since, self._error = None, ""
            if self._writer.last_seq >= self._seq:
                self._seq, self._hash = self._writer.last_seq, self._writer.head
            self._acked = max(self._acked, (self._writer.last_seq, self._writer.head))
        if was_offline:
            self._changed()
        return True

    def _merge(self, writer: PgStore) -> None:
        events = self._segment.events()
        batch: list[BaseEvent] = []
        for event in events:
            data = event.model_dump(mode="json")
            for name in ("v", "seq", "prev", "hash"):
                data.pop(name, None)
            data[OFFLINE_SEQ], data[OFFLINE_HASH] = event.seq, event.hash
            batch.append(parse_row(data))
        for start in range(0, len(batch), 500):
            writer.append_many(batch[start : start + 500])
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        done = self._offline_path.with_name(
            self._offline_path.name.removesuffix(".jsonl") + f"-merged-{stamp}.jsonl"
        )
        n = 1
        while done.exists():
            n += 1
            done = done.with_name(done.name.removesuffix(".jsonl") + f"-{n}.jsonl")
        os.replace(self._offline_path, done)
        self._segment = OfflineSegment(self._offline_path)
        self._merged_to = writer.last_seq

    def _go_offline(self, why: str) -> None:
        first = self._offline_since is None
        if first:
            self._offline_since = time.time()
        self._error = why
        if first:
            self._changed()

    # -- appending -------------------------------------------------------------------------

    def append(self, event: BaseEvent) -> BaseEvent:
        """Stored in PostgreSQL, or (database unreachable) fsynced to the offline segment."""
        return self.append_many((event,))[0]

    def append_many(self, events: Iterable[BaseEvent], sync: bool = False) -> list[BaseEvent]:
        # Ids first: a write whose outcome is unknown (the connection dropped) goes to the
        # offline segment with the same ids, so the merge cannot store it twice.
        batch = [_with_eid(event) for event in events]
        if not batch:
            return []
        with self._lock:
            if self._writer is not None and self._offline_since is None:
                try:
                    stamped = self._writer.append_many(batch)
                except StoreUnavailable as exc:
                    self._go_offline(str(exc))
                else:
                    self._seq, self._hash = stamped[-1].seq, stamped[-1].hash
                    self._acked = max(self._acked, (self._seq, self._hash))
                    return stamped
            base_seq, base_hash = self._shared_head()
            if not self._segment.count and self._follower.mirror is not None:
                # The segment chains on the mirror's head: keep that head through a crash.
                with contextlib.suppress(OSError):
                    self._follower.mirror.sync()
            stamped = self._segment.append(batch, base_seq, base_hash, self.actor)
            self._seq, self._hash = stamped[-1].seq, stamped[-1].hash
            for event in stamped:
                self._seen_offline.add(_eid_of(event))
            if self._following:
                self._queue.put((OFFLINE, stamped))
        self._changed()
        return stamped

    def _shared_head(self) -> tuple[int, str]:
        """The last shared event known here: mirrored, or acknowledged to this console."""
        return max((self._follower.last_seq, self._follower.head), self._acked)

    # -- reading and following ---------------------------------------------------------------

    def read(self, from_seq: int = 1) -> Iterator[BaseEvent]:
        """The mirrored shared events from `from_seq`, then those written offline."""
        if self.mirror_path.exists():
            yield from read_file(self.mirror_path, from_seq)
        yield from (e for e in self._segment.events() if e.seq >= from_seq)

    def _run(self) -> None:
        audited = False
        while not self._stop.is_set():
            try:
                connected = self._offline_since is None or self._connect()
            except WarroomError as exc:  # e.g. the schema is being upgraded: retried
                self._error, connected = str(exc), False
            if not connected:
                self._stop.wait(1.0)
                continue
            try:
                if not audited:
                    # Once per console start: has anything this console saw been edited since?
                    self._follower.audit()
                    audited = True
                events = self._follower.wait_and_poll(1.0)
            except StoreUnavailable:
                continue  # the audit found the database gone: retried when it is back
            except StoreTampered as exc:
                self._error, self._tampered = str(exc), exc.seq
                self._changed()
                return
            if not self._follower.connected:
                # Say so now, not at the next append, and write offline without first
                # waiting for a dead connection to time out.
                with self._lock:
                    if self._writer is not None:
                        self._writer.close()
                        self._writer = None
                    self._go_offline(self._follower.error)
                continue
            fresh = [e for e in events if _eid_of(e) not in self._seen_offline]
            if fresh and self._following:
                self._queue.put((SHARED, fresh))
            if self._merged_to and self._follower.last_seq >= self._merged_to:
                # Only now does `read()` hold the merged order; and the merged copies are not
                # yielded, so without a word the consumer would not know to re-fold.
                self._merged_to = 0
                self.generation += 1
                if self._following:
                    self._queue.put((MERGED, []))

    def _next(self, timeout: float) -> tuple[str, list[BaseEvent]]:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return SHARED, []

    async def follow(
        self,
        from_seq: int = 1,
        interval: float = 0.2,
        on_merged: Callable[[], None] | None = None,
    ) -> AsyncIterator[BaseEvent]:
        """The stored events from `from_seq`, then each new one, shared or offline.

        `on_merged` runs (in the caller's loop) each time `generation` went up. One consumer
        at a time (the console session).
        """
        self._following = True
        shared_last = 0
        offline_read: set[str] = set()
        if self.mirror_path.exists():
            for event in read_file(self.mirror_path, from_seq):
                shared_last = event.seq
                yield event
        for event in self._segment.events():
            offline_read.add(event.hash)
            if event.seq >= from_seq:
                yield event
        while True:
            origin, batch = await asyncio.to_thread(self._next, 1.0)
            if origin == MERGED and on_merged is not None:
                on_merged()
            for event in batch:
                if event.hash in offline_read or (origin == SHARED and event.seq <= shared_last):
                    continue
                yield event

    # -- probing lease -------------------------------------------------------------------------

    def try_lease(self, name: str, holder: str, ttl: float) -> tuple[bool, str]:
        """`PgStore.try_lease`; offline, nobody holds a shared lease: (False, "")."""
        with self._lock:
            writer = self._writer
        if writer is None or self._offline_since is not None:
            return False, ""
        try:
            return writer.try_lease(name, holder, ttl)
        except StoreUnavailable as exc:
            with self._lock:
                self._go_offline(str(exc))
            return False, ""

    def release_lease(self, name: str, holder: str) -> None:
        """Give a held lease up now (a console quitting), so another takes over at once."""
        with self._lock:
            writer = self._writer
        if writer is None:
            return
        try:
            writer.release_lease(name, holder)
        except StoreUnavailable:
            pass  # it expires on its own

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._follower.close()
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def __enter__(self) -> SharedIncident:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_file(path: Path, from_seq: int = 1) -> Iterator[BaseEvent]:
    """A mirror's or segment's events; one this version rejects is kept as `UnknownEvent`."""
    for record in scan(path):
        if record.seq >= from_seq:
            yield parse_row(record.data)


def _eid_of(event: BaseEvent) -> str:
    return str((event.model_extra or {}).get(EID, ""))


def _with_eid(event: BaseEvent) -> BaseEvent:
    if (event.model_extra or {}).get(EID):
        return event
    data: dict[str, Any] = event.model_dump(mode="json")
    data[EID] = uuid.uuid4().hex
    return parse_row(data)
