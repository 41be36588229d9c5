"""The shared incident store on PostgreSQL: one total order per incident, for every machine.

An append stamps its events against the head it knows (its own last one, or a newer one a
follower saw: `saw`) and sends ONE statement: a compare-and-set of the incident's head row
plus the insert of the rows, in autocommit (one round trip). When another writer got there
first the statement inserts nothing and says which head it found; from there, once, the
append tries again when it was merely behind, and otherwise takes the head row `FOR UPDATE`
(two pipelined round trips), re-stamps from the true tail and inserts, which always makes
progress (compare-and-set alone livelocks with tens of writers). Every event carries an
idempotency id (`eid`) in its envelope: when the connection drops and the outcome is unknown,
the retry first looks those ids up, so an event is never stored twice nor lost. A commit is
durable on the server (`synchronous_commit`), so an acknowledged event survives a crash of
this process; machine batches are one statement however many events they hold.

psycopg is imported here only: with a file log nothing needs a database driver.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import PurePath
from types import TracebackType
from typing import TYPE_CHECKING, Any

from warroom.events import BaseEvent
from warroom.identity import default_actor
from warroom.log import codec
from warroom.log.codec import line_of
from warroom.log.stamp import stamp
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

#: The compare-and-set: (rows stored, the head as this statement found it). A statement that
#: lost thus says which head it lost to, and the next try starts from there.
_CAS_INSERT = """
WITH head AS (
    UPDATE warroom.incidents SET seq = %(last)s, hash = %(head)s
    WHERE incident = %(incident)s AND seq = %(base)s AND hash = %(base_hash)s
    RETURNING incident
), stored AS (
    INSERT INTO warroom.events (incident, seq, prev, hash, body, eid)
    SELECT head.incident, r.seq, r.prev, r.hash, r.body, r.eid
    FROM head, unnest(%(seqs)s::bigint[], %(prevs)s::text[], %(hashes)s::text[],
                      %(bodies)s::bytea[], %(eids)s::text[]) AS r(seq, prev, hash, body, eid)
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored), i.seq, i.hash
FROM warroom.incidents AS i WHERE i.incident = %(incident)s
"""
#: Compare-and-set tries before taking the head row's lock: a second one, from the head the
#: first lost to, only when that head was newer than this writer's (it was merely behind);
#: a loss to a writer still committing goes to the lock at once, which waits for it.
CAS_TRIES = 2
_INSERT_MOVE_HEAD = """
WITH rows AS (
    INSERT INTO warroom.events (incident, seq, prev, hash, body, eid)
    SELECT %(incident)s, r.seq, r.prev, r.hash, r.body, r.eid
    FROM unnest(%(seqs)s::bigint[], %(prevs)s::text[], %(hashes)s::text[],
                %(bodies)s::bytea[], %(eids)s::text[]) AS r(seq, prev, hash, body, eid)
    RETURNING 1
)
UPDATE warroom.incidents SET seq = %(last)s, hash = %(head)s
WHERE incident = %(incident)s AND (SELECT count(*) FROM rows) > 0
"""
#: Lock the head row; FOR UPDATE returns its latest committed version even after a wait.
_LOCK_HEAD = "SELECT seq, hash FROM warroom.incidents WHERE incident = %s FOR UPDATE"
#: The true tail, read by a statement of its own (a fresh snapshot, after the lock).
_TAIL = "SELECT seq, hash FROM warroom.events WHERE incident = %s ORDER BY seq DESC LIMIT 1"


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


class _Rows:
    """One stamped batch: the column arrays for the insert and the events as dicts."""

    __slots__ = ("bodies", "datas", "eids", "hashes", "prevs", "seqs")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.prevs: list[str] = []
        self.hashes: list[str] = []
        self.bodies: list[bytes] = []
        self.eids: list[str] = []
        self.datas: list[dict[str, Any]] = []

    def params(self, incident: str) -> dict[str, Any]:
        return {
            "incident": incident,
            "seqs": self.seqs,
            "prevs": self.prevs,
            "hashes": self.hashes,
            "bodies": self.bodies,
            "eids": self.eids,
        }


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
        #: Fast-path appends that lost the compare-and-set (for the benchmark and tests).
        self.cas_lost = 0
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
        for data, eid in zip(payloads, eids, strict=True):
            data[EID] = eid
        with self._lock:
            self._unsure = list(zip(batch, eids, strict=True))
            rows: _Rows | None = None
            # A lost race stored nothing; a failed statement, or an earlier attempt of a
            # retried batch, may have.
            unsure = retried
            for _ in range(CAS_TRIES):
                try:
                    rows = self._cas(payloads, times)
                    break
                except _Lost as lost:
                    if lost.contended:
                        break
                except psycopg.Error as exc:
                    # A duplicate eid or a dropped connection: the locked path settles both.
                    if isinstance(exc, psycopg.OperationalError) or self._conn_broken():
                        self._reconnect()
                    unsure = True
                    break
            if rows is None:
                rows = self._locked(payloads, times, unsure=unsure)
            self._unsure = []
        return [
            parse_row({**data, "hash": h}) for data, h in zip(rows.datas, rows.hashes, strict=True)
        ]

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

    def saw(self, seq: int, head: str) -> None:
        """A newer head seen elsewhere (a follower): the next compare-and-set starts there."""
        with self._lock:
            if seq > self._seq:
                self._seq, self._hash = seq, head

    def _conn_broken(self) -> bool:
        return self._conn is None or self._conn.closed or self._conn.broken

    def _reconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._connection()

    def _stamp(
        self, payloads: list[dict[str, Any]], seq: int, prev: str, times: Sequence[str] | None
    ) -> _Rows:
        """The column arrays of `payloads` stamped after (`seq`, `prev`) (in place: a batch
        stamped again after losing a race keeps its times and ids)."""
        rows = _Rows()
        for body, envelope in stamp(payloads, seq, prev, self.actor, times):
            rows.bodies.append(body)
            rows.hashes.append(envelope["hash"])
        rows.seqs = list(range(seq + 1, seq + 1 + len(payloads)))
        rows.prevs = [prev, *rows.hashes[:-1]]
        rows.eids = [data[EID] for data in payloads]
        rows.datas = list(payloads)
        return rows

    def _cas(self, payloads: list[dict[str, Any]], times: Sequence[str] | None) -> _Rows:
        """The one-statement fast path; raises `_Lost` when another writer was first."""
        import psycopg

        rows = self._stamp(payloads, self._seq, self._hash, times)
        params = rows.params(self.incident)
        params.update(
            last=rows.seqs[-1], head=rows.hashes[-1], base=self._seq, base_hash=self._hash
        )
        try:
            found = self._connection().execute(_CAS_INSERT, params).fetchone()
        except StoreUnavailable:
            raise psycopg.OperationalError("not connected") from None
        if found is None or found[0] != len(rows.seqs):
            self.cas_lost += 1
            if found is None or (int(found[1]), str(found[2])) == (self._seq, self._hash):
                raise _Lost(contended=True)
            self._seq, self._hash = int(found[1]), str(found[2])
            raise _Lost(contended=False)
        self._seq, self._hash = rows.seqs[-1], rows.hashes[-1]
        return rows

    def _locked(
        self,
        payloads: list[dict[str, Any]],
        times: Sequence[str] | None,
        unsure: bool,
        trust_head: bool = True,
    ) -> _Rows:
        """The guaranteed path: lock the head row, skip events already stored (when an earlier
        attempt may have stored them), re-stamp, insert and move the head.

        Two round trips, pipelined by hand (BEGIN + lock, then insert + head + COMMIT: psycopg's
        `transaction()` would wait for each), so the head row is held for one round trip and
        the commit; one more to look up ids when `unsure`. Should the head row disagree with
        the events (edited by hand), the insert fails and it is done again from the true tail.
        """
        import psycopg

        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self._connection()
            with conn.pipeline() as pipeline:
                conn.execute("BEGIN")
                cur = conn.execute(_LOCK_HEAD, [self.incident])
                if not trust_head:
                    cur = conn.execute(_TAIL, [self.incident])
                pipeline.sync()
                tail = cur.fetchone()
                seq, head = (int(tail[0]), str(tail[1])) if tail else (0, codec.GENESIS)
                stored = self._stored(conn, [p[EID] for p in payloads]) if unsure else {}
                fresh_at = [i for i, p in enumerate(payloads) if p[EID] not in stored]
                fresh = [payloads[i] for i in fresh_at]
                fresh_times = None if times is None else [times[i] for i in fresh_at]
                rows = self._stamp(fresh, seq, head, fresh_times)
                if fresh:
                    seq, head = rows.seqs[-1], rows.hashes[-1]
                    params = rows.params(self.incident)
                    params.update(last=seq, head=head)
                    conn.execute(_INSERT_MOVE_HEAD, params)
                conn.execute("COMMIT")  # sent, and its answer read, as the pipeline ends
        except psycopg.OperationalError as exc:
            self._conn = None
            raise unavailable(self.url, exc) from None
        except psycopg.Error as exc:
            self._roll_back(conn)
            if trust_head and isinstance(exc, psycopg.IntegrityError):
                return self._locked(payloads, times, unsure=True, trust_head=False)
            raise StoreURLError(f"{self.url.display}: append refused: {exc}") from None
        self._seq, self._hash = seq, head
        if not stored:
            return rows
        # Some were stored by an earlier attempt whose answer was lost: return every event
        # of the batch as stored, in the batch's order.
        merged = _Rows()
        by_eid = {data[EID]: (data, h) for data, h in zip(rows.datas, rows.hashes, strict=True)}
        by_eid.update(stored)
        for payload in payloads:
            data, digest = by_eid[payload[EID]]
            merged.datas.append(data)
            merged.hashes.append(digest)
        return merged

    def _roll_back(self, conn: psycopg.Connection[Any] | None) -> None:
        """End a failed hand-made transaction, so the connection can be used again."""
        import psycopg

        if conn is None or conn.closed or conn.broken:
            return
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()

    def _stored(
        self, conn: psycopg.Connection[Any], eids: list[str]
    ) -> dict[str, tuple[dict[str, Any], str]]:
        import orjson

        found: dict[str, tuple[dict[str, Any], str]] = {}
        for eid, digest, body in conn.execute(
            "SELECT eid, hash, body FROM warroom.events WHERE incident = %s AND eid = ANY(%s)",
            [self.incident, eids],
        ):
            found[eid] = (orjson.loads(body), digest)
        return found

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


class _Lost(Exception):
    """The compare-and-set found another head (`contended`: the one it expected, but being
    moved by a writer still committing)."""

    def __init__(self, contended: bool) -> None:
        super().__init__()
        self.contended = contended


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
