"""Following a shared incident live, checking every row, into a local JSONL mirror.

A `Follower` LISTENs on a connection of its own (a NOTIFY is only a wake-up: the table is the
truth) and polls at least every second anyway, so a lost notification costs at most that
second. Each poll reads the rows after the last seq it holds, checks each one client-side
(`ChainChecker`) and appends it to the mirror: a file byte-identical to `warroom log export`,
which the console reads when the database is down and which `warroom log verify` accepts.
When the database goes away the follower says so (`connected`), backs off, and reconnects;
since it always resumes from its last seq, a restart costs a reconnect and leaves no gap.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.events import BaseEvent
from warroom.log import codec
from warroom.log.codec import line_of
from warroom.log.scan import LogError, check_head, read_tail, scan, where
from warroom.log.verify import DELETED, EDITED
from warroom.store.base import StoreTampered, StoreUnavailable
from warroom.store.chain import ChainChecker, parse_row
from warroom.store.pg import READ_PAGE, PgStore, connect, unavailable
from warroom.store.schema import NOTIFY_CHANNEL
from warroom.store.url import StoreURL, StoreURLError, parse_url

if TYPE_CHECKING:
    import psycopg

#: Longest wait between reconnection attempts while the database is unreachable.
MAX_BACKOFF = 2.0


class Mirror:
    """The local JSONL copy of a shared incident: only checked rows, appended in order.

    Not fsynced row by row: the database holds every row durably, and a tail a crash tore
    off is cut on open and read again. It is synced when it matters on its own: before the
    console chains offline events on its head (`sync`), and on close.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(
                self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as exc:
            raise LogError(f"{where(self.path)}: cannot open the mirror: {exc.strerror}") from None
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(self._fd).st_size
            check_head(self._fd, size, self.path)
            tail = read_tail(self._fd, size, self.path)
            if tail.torn_offset is not None:
                # A copy: the torn bytes are re-read from the database.
                os.ftruncate(self._fd, tail.torn_offset)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.last_seq = tail.seq
        self.head = tail.hash

    def append(self, lines: list[bytes], last_seq: int, head: str) -> None:
        if not lines:
            return
        data = b"".join(lines)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.last_seq, self.head = last_seq, head

    def sync(self) -> None:
        """Make what is mirrored durable (a crash keeps every row written so far)."""
        if self._fd >= 0:
            os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = -1


class Follower:
    """Follows one shared incident from `from_seq` (or from the end of `mirror`).

    `poll()` returns the checked events stored since the last call; `wait_and_poll(t)`
    first waits (at most `t` seconds) for a wake-up. `start(on_events)` does that in a
    thread. Connection trouble never raises from `wait_and_poll`: `connected` turns False
    and `error` says why; tampering does raise `StoreTampered` (following stops there).
    """

    def __init__(
        self,
        url: str | StoreURL,
        from_seq: int = 1,
        mirror: str | os.PathLike[str] | None = None,
        on_connection: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.url = parse_url(url) if isinstance(url, str) else url
        self.mirror = Mirror(mirror) if mirror is not None else None
        self.on_connection = on_connection
        self.connected = False
        #: Why the database is unreachable (empty while connected).
        self.error = ""
        self._from_seq = from_seq
        self._store: PgStore | None = None
        self._listen: psycopg.Connection[Any] | None = None
        self._checker: ChainChecker | None = None
        if self.mirror is not None:
            self._checker = ChainChecker(self.url.display, self.mirror.last_seq, self.mirror.head)
        self._more = True
        self._backoff = 0.1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def last_seq(self) -> int:
        """The last seq checked (and mirrored); what the next poll continues from."""
        return self._checker.last_seq if self._checker is not None else self._from_seq - 1

    @property
    def head(self) -> str:
        return self._checker.head if self._checker is not None else codec.GENESIS

    def _set_connected(self, connected: bool, error: str = "") -> None:
        changed = connected != self.connected
        self.connected, self.error = connected, error
        if changed and self.on_connection is not None:
            self.on_connection(connected, error)

    def _ensure(self) -> PgStore:
        import psycopg

        if self._store is None:
            self._store = PgStore.open(self.url, create=False, readonly=True)
        if self._listen is None or self._listen.closed:
            conn = connect(self.url)
            try:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")  # type: ignore[arg-type]
            except psycopg.Error as exc:
                conn.close()
                raise unavailable(self.url, exc) from None
            self._listen = conn
            self._more = True  # rows may have come while nobody listened
        if self._checker is None:
            self._checker = self._store.checker_at(self._from_seq)
        return self._store

    def _drop(self, exc: StoreUnavailable | StoreURLError) -> None:
        for conn in (self._listen,):
            if conn is not None:
                conn.close()
        self._listen = None
        if self._store is not None:
            self._store.close()
        self._store = None
        self._set_connected(False, str(exc))

    def poll(self) -> list[BaseEvent]:
        """The checked events stored after `last_seq` (at most one page); mirrored first."""
        store = self._ensure()
        assert self._checker is not None
        checker = self._checker
        first = checker.last_seq + 1
        lines: list[bytes] = []
        out: list[BaseEvent] = []
        count = 0
        try:
            for seq, prev, digest, body in store.rows(first):
                obj = checker.check(seq, prev, digest, body)
                lines.append(line_of(body, digest))
                out.append(parse_row(obj))
                count += 1
                if count >= READ_PAGE:
                    break
        except StoreTampered as exc:
            # The mirror keeps only what comes before the first untrustworthy event.
            keep = max(0, exc.seq - first)
            if self.mirror is not None and keep:
                self.mirror.append(lines[:keep], first + keep - 1, out[keep - 1].hash)
            raise
        if self.mirror is not None:
            self.mirror.append(lines, checker.last_seq, checker.head)
        self._more = count >= READ_PAGE
        self._set_connected(True)
        return out

    def audit(self) -> int:
        """Re-check every stored row the mirror holds, against the mirror; the rows checked.

        Following reads only new rows, so an old one edited in the table afterwards (by a
        superuser: the application role cannot) shows here: `StoreTampered` at its seq.
        """
        if self.mirror is None or not self.mirror.last_seq:
            return 0
        store = self._ensure()
        checker = ChainChecker(self.url.display)
        count = 0
        for (seq, prev, digest, body), record in zip(
            store.rows(1), scan(self.mirror.path), strict=False
        ):
            if record.seq > self.mirror.last_seq:
                break
            checker.check(seq, prev, digest, body)
            if (seq, digest) != (record.seq, record.data["hash"]):
                raise StoreTampered(
                    f"{self.url.display}: seq {seq}: {EDITED} (it differs from the copy "
                    f"mirrored in {self.mirror.path})",
                    seq,
                    EDITED,
                )
            count += 1
        if count < self.mirror.last_seq:
            raise StoreTampered(
                f"{self.url.display}: seq {count + 1}: {DELETED} (the database ends at seq "
                f"{count}, the mirror at {self.mirror.last_seq})",
                count + 1,
                DELETED,
            )
        return count

    def wait(self, timeout: float) -> None:
        """Return on a NOTIFY for any incident, or after `timeout` seconds."""
        import psycopg

        self._ensure()
        assert self._listen is not None
        try:
            for _ in self._listen.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as exc:
            raise unavailable(self.url, exc) from None

    def wait_and_poll(self, timeout: float = 1.0) -> list[BaseEvent]:
        """Wait for a wake-up (not when a poll left rows unread), then poll; [] when offline."""
        try:
            if not self._more:
                self.wait(timeout)
            events = self.poll()
        except (StoreUnavailable, StoreURLError) as exc:
            # StoreURLError: no such incident yet, or a schema being upgraded; retried.
            self._drop(exc)
            time.sleep(min(self._backoff, timeout))
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            return []
        self._backoff = 0.1
        return events

    def start(
        self,
        on_events: Callable[[list[BaseEvent]], None] | None = None,
        on_error: Callable[[StoreTampered], None] | None = None,
    ) -> Follower:
        """Follow in a daemon thread until `close()`; callbacks run in that thread."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    events = self.wait_and_poll(1.0)
                except StoreTampered as exc:
                    if on_error is not None:
                        on_error(exc)
                    return
                if events and on_events is not None:
                    on_events(events)

        self._thread = threading.Thread(target=loop, name=f"follow {self.url.display}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        if self._listen is not None:
            self._listen.close()
            self._listen = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self.mirror is not None:
            self.mirror.close()
