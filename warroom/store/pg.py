"""The shared incident store on PostgreSQL: one total order per incident, for every machine.

An append is ONE statement, in autocommit (one round trip): `warroom.append_events` queues on
the incident's advisory lock (first come, first served), locks its head row, chains the batch
after the true tail, inserts the rows and moves the head. The client sends each event
enveloped but for its place in the chain, as a template (its canonical body cut where the
values of `prev` and `seq` go: `template`), so the lock is held only for server-side work and
the commit, never across a round trip to a client that may be descheduled; writers queue on
the lock in turn (no compare-and-set to lose, no retry storm), and the client checks that
each returned hash is the sha256 of the bytes it sent. Every event carries an idempotency id
(`eid`) in its envelope: when the connection drops and the outcome is unknown, the retry has
the function look those ids up first, so an event is never stored twice nor lost. A commit is
durable on the server (`synchronous_commit`), so an acknowledged event survives a crash of
this process; machine batches are one statement however many events they hold.

psycopg is imported here only: with a file log nothing needs a database driver.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import PurePath
from types import TracebackType
from typing import TYPE_CHECKING, Any

from warroom import events as ev
from warroom.events import BaseEvent
from warroom.identity import default_actor
from warroom.log import codec
from warroom.log.codec import line_of
from warroom.log.stamp import now_ts
from warroom.log.store import Recovery
from warroom.store.base import StoreUnavailable
from warroom.store.chain import ChainChecker, parse_row
from warroom.store.schema import SCHEMA_VERSION, SchemaError
from warroom.store.url import StoreURL, StoreURLError, parse_url

if TYPE_CHECKING:
    import psycopg

#: Seconds to wait for a connection (libpq's `connect_timeout`): short, so a console notices
#: an unreachable database quickly and goes on from its offline segment.
CONNECT_TIMEOUT = 3
#: Rows fetched per query when reading an incident.
READ_PAGE = 2000
#: Envelope key of the idempotency id (an extra field: the file store never writes it).
EID = "eid"

#: The append, one statement (the schema's function): one row per event, in the batch's order.
_APPEND = (
    "SELECT r_seq, r_prev, r_hash, r_stored FROM warroom.append_events("
    "%s, %s::bytea[], %s::bytea[], %s::bytea[], %s::text[], %s)"
)
#: Where the values of "prev" and "seq" go in a body with sorted keys.
_PREV_KEY, _SEQ_KEY = "prev", "seq"


def connect(url: StoreURL, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A connection, or `StoreUnavailable` with libpq's reason on one line."""
    import psycopg

    try:
        return psycopg.connect(
            url.conninfo,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="warroom",
            # Over TCP, notice a dead peer in seconds, not after the kernel's retries.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            tcp_user_timeout=10_000,
        )
    except psycopg.Error as exc:
        raise unavailable(url, exc) from None


def unavailable(url: StoreURL, exc: BaseException) -> StoreUnavailable:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return StoreUnavailable(f"{url.display}: database unavailable: {text[:300]}")


def template(data: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """`data`'s canonical body cut where the values of "prev" and "seq" go: the body after
    (`seq`, `prev`) is `pre + prev + mid + str(seq) + post`, exactly `codec.canonical_json`
    of `data` with them set (keys sorted, so the top-level pieces are serialised apart)."""
    dumps = codec.canonical_json
    before = dumps({k: v for k, v in data.items() if k < _PREV_KEY})[1:-1]
    between = dumps({k: v for k, v in data.items() if _PREV_KEY < k < _SEQ_KEY})[1:-1]
    after = dumps({k: v for k, v in data.items() if k > _SEQ_KEY})[1:-1]
    pre = b"{" + before + b"," + b'"prev":"' if before else b'{"prev":"'
    mid = b'",' + between + b',"seq":' if between else b'","seq":'
    post = b"," + after + b"}" if after else b"}"
    return pre, mid, post


class PgStore:
    """One incident in a PostgreSQL database, open for appending (or read-only).

    Satisfies `IncidentStore`. Thread-safe: one connection, used under a lock.
    """

    def __init__(self, url: StoreURL, conn: psycopg.Connection[Any], readonly: bool) -> None:
        assert url.incident is not None
        self.url = url
        self.incident: str = url.incident
        self.readonly = readonly
        self.actor = default_actor()
        #: Never a torn tail to report (the file store's `recovered`).
        self.recovered: Recovery | None = None
        #: What `GroupCommitter` names its thread after.
        self.path = PurePath(f"{url.display}")
        self._conn: psycopg.Connection[Any] | None = conn
        self._lock = threading.Lock()
        self._seq = 0
        self._hash = codec.GENESIS
        #: (event, eid) of a batch whose outcome is unknown: the same event objects retried
        #: at the same places (what `GroupCommitter` does) get the same ids.
        self._unsure: list[tuple[BaseEvent, str]] = []

    @classmethod
    def open(cls, url: str | StoreURL, create: bool = True, readonly: bool = False) -> PgStore:
        """Connect, check the schema and the incident (made with `create`); one-line errors."""
        import psycopg

        parsed = parse_url(url) if isinstance(url, str) else url
        conn = connect(parsed)
        try:
            try:
                check_schema(conn, parsed)
                if create and not readonly:
                    conn.execute(
                        "INSERT INTO warroom.incidents (incident) VALUES (%s) "
                        "ON CONFLICT DO NOTHING",
                        [parsed.incident],
                    )
                row = conn.execute(
                    "SELECT seq, hash FROM warroom.incidents WHERE incident = %s",
                    [parsed.incident],
                ).fetchone()
            except psycopg.OperationalError as exc:
                raise unavailable(parsed, exc) from None
            except psycopg.Error as exc:
                raise StoreURLError(f"{parsed.display}: {' '.join(str(exc).split())}") from None
            if row is None:
                raise StoreURLError(f"{parsed.display}: no such incident")
        except BaseException:
            conn.close()
            raise
        store = cls(parsed, conn, readonly)
        store._seq, store._hash = int(row[0]), str(row[1])
        return store

    # -- state -----------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def head(self) -> str:
        return self._hash

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PgStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgStore({self.url.display!r}, last_seq={self._seq})"

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
        return self._conn

    # -- appending -------------------------------------------------------------------------

    def append(self, event: BaseEvent) -> BaseEvent:
        """Stamp and store one event; committed (durable on the server) on return."""
        return self.append_many((event,))[0]

    def append_many(self, events: Iterable[BaseEvent], sync: bool = False) -> list[BaseEvent]:
        """Stamp and store events in order, in one transaction; always committed on return.

        `ts`, `actor` and `eid` already set on an event are kept (the same `eid` makes a
        retry safe: an event already stored is returned as stored, not stored twice).
        Raises `StoreUnavailable` when the database cannot be reached.
        """
        return self._append(list(events), None, sync)

    def _append(
        self, batch: Sequence[BaseEvent], times: Sequence[str] | None, sync: bool
    ) -> list[BaseEvent]:
        """`append_many` with observation times (the `GroupCommitter` entry point)."""
        import psycopg

        if self.readonly:
            raise StoreURLError(f"{self.url.display}: opened read-only")
        if not batch:
            return []
        payloads = [event.__pydantic_serializer__.to_python(event, mode="json") for event in batch]
        eids, retried = self._eids(batch)
        templates = self._templates(payloads, eids, times)
        cols = [list(col) for col in zip(*templates, strict=True)]
        with self._lock:
            self._unsure = list(zip(batch, eids, strict=True))
            # An earlier attempt of a retried batch, or a failed statement, may have stored
            # some of it: the function then looks the ids up first.
            unsure = retried
            for attempt in range(2):
                try:
                    conn = self._connection()
                    found = conn.execute(_APPEND, [self.incident, *cols, eids, unsure]).fetchall()
                    break
                except psycopg.OperationalError as exc:
                    self._drop_connection()
                    if attempt:
                        raise unavailable(self.url, exc) from None
                except psycopg.Error as exc:
                    # A duplicate eid (stored by an attempt whose answer was lost): look up.
                    if self._conn_broken():
                        self._drop_connection()
                    if attempt or unsure:
                        raise StoreURLError(f"{self.url.display}: append refused: {exc}") from None
                unsure = True
            self._unsure = []
            stamped = [
                self._stored_event(data, template, row)
                for data, template, row in zip(payloads, templates, found, strict=True)
            ]
            last = stamped[-1]
            if last.seq > self._seq:
                self._seq, self._hash = last.seq, last.hash
        return stamped

    def _templates(
        self, payloads: list[dict[str, Any]], eids: list[str], times: Sequence[str] | None
    ) -> list[tuple[bytes, bytes, bytes]]:
        """Envelope each payload (`stamp`'s rules for `v`, `ts`, `actor`) but for its place
        in the chain, which the server fills in; its template."""
        now = ""
        out: list[tuple[bytes, bytes, bytes]] = []
        for i, (data, eid) in enumerate(zip(payloads, eids, strict=True)):
            ts = data.get("ts") or (times[i] if times is not None else "")
            if not ts:
                now = now or now_ts()
                ts = now
            data.pop("hash", None)
            data.update(v=ev.SCHEMA_VERSION, ts=ts, actor=data.get("actor") or self.actor)
            data[EID] = eid
            out.append(template(data))
        return out

    def _stored_event(
        self,
        data: dict[str, Any],
        parts: tuple[bytes, bytes, bytes],
        row: tuple[int, str, str, bytes | None],
    ) -> BaseEvent:
        """The event as the server stored it, its hash checked against what was sent."""
        import orjson

        seq, prev, digest, stored = row
        if stored is not None:  # stored by an earlier attempt
            return parse_row({**orjson.loads(stored), "hash": digest})
        pre, mid, post = parts
        body = b"".join((pre, prev.encode(), mid, str(seq).encode(), post))
        if hashlib.sha256(body).hexdigest() != digest:
            raise StoreURLError(f"{self.url.display}: seq {seq} stored other bytes than sent")
        return parse_row({**data, "seq": seq, "prev": prev, "hash": digest})

    def _eids(self, batch: Sequence[BaseEvent]) -> tuple[list[str], bool]:
        """Each event's idempotency id (its own, the one of an unsure attempt, or a new one),
        and whether any is not new (the batch may be a retry)."""
        memo = self._unsure
        used: set[str] = set()
        out: list[str] = []
        retried = False
        for i, event in enumerate(batch):
            given = (event.model_extra or {}).get(EID)
            if isinstance(given, str) and given:
                eid, retried = given, True
            elif i < len(memo) and memo[i][0] is event:
                eid, retried = memo[i][1], True
            else:
                eid = uuid.uuid4().hex
            if eid in used:  # the same event object twice in one batch: two events
                eid = uuid.uuid4().hex
            used.add(eid)
            out.append(eid)
        return out, retried

    def _conn_broken(self) -> bool:
        return self._conn is None or self._conn.closed or self._conn.broken

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    # -- reading ---------------------------------------------------------------------------

    def rows(self, from_seq: int = 1) -> Iterator[tuple[int, str, str, bytes]]:
        """(seq, prev, hash, body) of the stored rows from `from_seq`, unchecked, in pages."""
        import psycopg

        seq = from_seq
        while True:
            with self._lock:
                try:
                    page = (
                        self._connection()
                        .execute(
                            "SELECT seq, prev, hash, body FROM warroom.events "
                            "WHERE incident = %s AND seq >= %s ORDER BY seq LIMIT %s",
                            [self.incident, seq, READ_PAGE],
                        )
                        .fetchall()
                    )
                except psycopg.OperationalError as exc:
                    self._conn = None
                    raise unavailable(self.url, exc) from None
            for row in page:
                yield int(row[0]), str(row[1]), str(row[2]), bytes(row[3])
            if len(page) < READ_PAGE:
                return
            seq = int(page[-1][0]) + 1

    def lines(self, from_seq: int = 1) -> Iterator[bytes]:
        """The stored events as the file store's lines, unchecked (for export)."""
        for _seq, _prev, digest, body in self.rows(from_seq):
            yield line_of(body, digest)

    def checker_at(self, from_seq: int) -> ChainChecker:
        """A `ChainChecker` positioned just before `from_seq` (trusting the row before it)."""
        checker = ChainChecker(self.url.display)
        if from_seq > 1:
            for seq, _prev, digest, _body in self.rows(from_seq - 1):
                checker.last_seq, checker.head = seq, digest
                break
        return checker

    def read(self, from_seq: int = 1) -> Iterator[BaseEvent]:
        """The stored events from `from_seq`, each checked; `StoreTampered` at a bad row."""
        checker = self.checker_at(from_seq)
        for seq, prev, digest, body in self.rows(from_seq):
            yield parse_row(checker.check(seq, prev, digest, body))

    async def follow(self, from_seq: int = 1, interval: float = 0.2) -> AsyncIterator[BaseEvent]:
        """The stored events, then each new one (woken by NOTIFY, polled every second)."""
        from warroom.store.follow import Follower

        follower = Follower(self.url, from_seq=from_seq)
        try:
            while True:
                for event in await asyncio.to_thread(follower.wait_and_poll, 1.0):
                    yield event
        finally:
            follower.close()

    # -- probing lease ---------------------------------------------------------------------

    def try_lease(self, name: str, holder: str, ttl: float) -> tuple[bool, str]:
        """Take or renew the lease `name` for `ttl` seconds: (held by me, current holder).

        One statement: taken when free, expired, or already mine; otherwise untouched.
        """
        import psycopg

        with self._lock:
            try:
                conn = self._connection()
                row = conn.execute(
                    "INSERT INTO warroom.leases AS l (incident, name, holder, expires_at) "
                    "VALUES (%(i)s, %(n)s, %(h)s, now() + make_interval(secs => %(t)s)) "
                    "ON CONFLICT (incident, name) DO UPDATE "
                    "SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at "
                    "WHERE l.holder = EXCLUDED.holder OR l.expires_at < now() "
                    "RETURNING holder",
                    {"i": self.incident, "n": name, "h": holder, "t": ttl},
                ).fetchone()
                if row is not None:
                    return True, holder
                current = conn.execute(
                    "SELECT holder FROM warroom.leases WHERE incident = %s AND name = %s",
                    [self.incident, name],
                ).fetchone()
            except psycopg.OperationalError as exc:
                self._conn = None
                raise unavailable(self.url, exc) from None
        return False, str(current[0]) if current else ""

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now (if held), so another console takes over without waiting."""
        import psycopg

        with self._lock:
            try:
                self._connection().execute(
                    "UPDATE warroom.leases SET expires_at = now() - interval '1 second' "
                    "WHERE incident = %s AND name = %s AND holder = %s",
                    [self.incident, name, holder],
                )
            except psycopg.OperationalError as exc:
                self._conn = None
                raise unavailable(self.url, exc) from None


def check_schema(conn: psycopg.Connection[Any], url: StoreURL) -> None:
    """`SchemaError` unless the database has this warroom's schema version."""
    import psycopg

    try:
        row = conn.execute("SELECT max(version) FROM warroom.schema_version").fetchone()
    except psycopg.errors.UndefinedTable:
        raise SchemaError(
            f"{url.display}: no warroom schema here: run `warroom db init URL` first"
        ) from None
    except psycopg.errors.InsufficientPrivilege:
        raise SchemaError(f"{url.display}: this role may not read the warroom schema") from None
    version = int(row[0]) if row and row[0] is not None else 0
    if version != SCHEMA_VERSION:
        newer = version > SCHEMA_VERSION
        hint = "upgrade warroom" if newer else "run `warroom db init URL` to upgrade it"
        raise SchemaError(
            f"{url.display}: warroom schema v{version}, this warroom needs v{SCHEMA_VERSION}: "
            f"{hint}"
        )
