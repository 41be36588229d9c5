"""The PostgreSQL schema of the shared store, versioned, created by `warroom db init URL`.

One row per event keyed (incident, seq) holds the exact canonical bytes that are hashed
(`bytea`, never `jsonb`, which reorders keys), so an export is byte-identical to the file store.
The database itself enforces the chain: the primary key, a foreign key from (incident, seq-1,
prev) to (incident, seq, hash) (no gap, no wrong predecessor), a CHECK that hash =
sha256(body), and triggers that refuse UPDATE, DELETE and TRUNCATE even to the table's owner.
Appends take no SEQUENCE (it leaves gaps on rollback): `warroom.append_events` (v2; v3 queues
its callers first on a per-incident advisory lock, first come first served) locks the
per-incident head row, chains the client's templates after the true tail (server-side, so the
lock is never held across a round trip to a client), inserts and moves the head, in one
statement. Each insert statement NOTIFYs `warroom_events` with the incident, a wake-up for
followers (the table stays the truth).
"""

from __future__ import annotations

import re

from warroom.log import codec
from warroom.store.url import StoreURLError

#: The schema version this warroom writes and reads.
SCHEMA_VERSION = 3
NOTIFY_CHANNEL = "warroom_events"
_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_V1 = f"""
CREATE TABLE warroom.incidents (
    incident text PRIMARY KEY,
    seq bigint NOT NULL DEFAULT 0 CHECK (seq >= 0),
    hash text NOT NULL DEFAULT '{codec.GENESIS}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE warroom.events (
    incident text NOT NULL REFERENCES warroom.incidents (incident),
    seq bigint NOT NULL CHECK (seq >= 1),
    prev_seq bigint GENERATED ALWAYS AS (NULLIF(seq - 1, 0)) STORED,
    prev text NOT NULL,
    hash text NOT NULL,
    body bytea NOT NULL,
    eid text,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (incident, seq),
    CONSTRAINT events_link_target UNIQUE (incident, seq, hash),
    CONSTRAINT events_eid_once UNIQUE (incident, eid),
    CONSTRAINT events_hash_is_sha256_of_body CHECK (hash = encode(sha256(body), 'hex')),
    CONSTRAINT events_first_links_to_genesis CHECK (seq > 1 OR prev = '{codec.GENESIS}'),
    CONSTRAINT events_chain FOREIGN KEY (incident, prev_seq, prev)
        REFERENCES warroom.events (incident, seq, hash)
);
CREATE TABLE warroom.leases (
    incident text NOT NULL REFERENCES warroom.incidents (incident),
    name text NOT NULL,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (incident, name)
);
CREATE FUNCTION warroom.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'warroom.events is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON warroom.events
    FOR EACH ROW EXECUTE FUNCTION warroom.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON warroom.events
    FOR EACH STATEMENT EXECUTE FUNCTION warroom.refuse_change();
CREATE FUNCTION warroom.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', d.incident)
        FROM (SELECT DISTINCT incident FROM new_rows) AS d;
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON warroom.events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warroom.notify_events();
"""

# The append in one statement. Each event comes as a template (its canonical body split
# where the values of "prev" and "seq" go); the chain is continued from the true tail, read
# after the head row's lock (so a head row edited by hand cannot fork it). With `unsure`
# (a retry after an unknown outcome) an event whose eid is already stored is returned as
# stored, not stored twice. Returns one row per event, in the batch's order.
_V2 = f"""
CREATE FUNCTION warroom.append_events(
    p_incident text, p_pre bytea[], p_mid bytea[], p_post bytea[], p_eids text[],
    p_unsure boolean
) RETURNS TABLE (r_seq bigint, r_prev text, r_hash text, r_stored bytea)
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint := 0;
    v_hash text := '{codec.GENESIS}';
    v_body bytea;
    v_old record;
    seqs bigint[] := '{{}}';
    prevs text[] := '{{}}';
    hashes text[] := '{{}}';
    bodies bytea[] := '{{}}';
    eids text[] := '{{}}';
BEGIN
    PERFORM 1 FROM warroom.incidents AS i WHERE i.incident = p_incident FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such incident: %', p_incident USING ERRCODE = 'no_data_found';
    END IF;
    SELECT e.seq, e.hash INTO v_seq, v_hash FROM warroom.events AS e
        WHERE e.incident = p_incident ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 0;
        v_hash := '{codec.GENESIS}';
    END IF;
    FOR n IN 1 .. coalesce(array_length(p_pre, 1), 0) LOOP
        IF p_unsure THEN
            SELECT e.seq, e.prev, e.hash, e.body INTO v_old FROM warroom.events AS e
                WHERE e.incident = p_incident AND e.eid = p_eids[n];
            IF FOUND THEN
                r_seq := v_old.seq; r_prev := v_old.prev; r_hash := v_old.hash;
                r_stored := v_old.body;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        r_prev := v_hash;
        v_seq := v_seq + 1;
        v_body := p_pre[n] || convert_to(v_hash, 'UTF8') || p_mid[n]
            || convert_to(v_seq::text, 'UTF8') || p_post[n];
        v_hash := encode(sha256(v_body), 'hex');
        seqs := seqs || v_seq;
        prevs := prevs || r_prev;
        hashes := hashes || v_hash;
        bodies := bodies || v_body;
        eids := eids || p_eids[n];
        r_seq := v_seq; r_hash := v_hash; r_stored := NULL;
        RETURN NEXT;
    END LOOP;
    IF cardinality(seqs) > 0 THEN
        INSERT INTO warroom.events (incident, seq, prev, hash, body, eid)
            SELECT p_incident, r.seq, r.prev, r.hash, r.body, r.eid
            FROM unnest(seqs, prevs, hashes, bodies, eids) AS r(seq, prev, hash, body, eid);
        UPDATE warroom.incidents SET seq = v_seq, hash = v_hash WHERE incident = p_incident;
    END IF;
END $$;
"""

# v3: the same append, but writers on one incident first queue on a transaction-scoped
# advisory lock. A row lock's waiters are no queue: at each commit several wake, follow the
# row to its new version and wait again, so 30 writers at once spend their time waking up.
# The advisory lock's queue is first come, first served and wakes only the next writer
# (incidents whose names hash alike share one: slower, never wrong). The head row's lock
# stays, then uncontended: `log import`, and a v2 function still running during an upgrade,
# take only that one.
_HEAD_LOCK = "    PERFORM 1 FROM warroom.incidents AS i WHERE i.incident = p_incident FOR UPDATE;\n"
_QUEUE = (
    "    PERFORM pg_advisory_xact_lock(hashtext('warroom.append_events'), hashtext(p_incident));\n"
)
_V3 = _V2.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1).replace(
    _HEAD_LOCK, _QUEUE + _HEAD_LOCK, 1
)

#: (version, SQL) in order; a new version is a new entry, never an edit of an old one.
MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1), (2, _V2), (3, _V3))


class SchemaError(StoreURLError):
    """The database has no warroom schema, or a newer one than this warroom knows."""


def init_schema(conninfo: str, grant_to: str | None = None) -> tuple[int, int]:
    """Create or upgrade the schema (idempotent); return (version before, version after).

    With `grant_to`, that role may read and append events but never UPDATE, DELETE or
    TRUNCATE them. Concurrent runs serialise on an advisory lock.
    """
    import psycopg

    if grant_to is not None and not _ROLE.fullmatch(grant_to):
        raise SchemaError(f"--grant: {grant_to!r} is not a plain role name")
    try:
        return _migrate(conninfo, grant_to)
    except psycopg.Error as exc:
        text = " ".join(str(exc).split())[:300]
        raise SchemaError(f"cannot create the warroom schema: {text}") from None


def _migrate(conninfo: str, grant_to: str | None) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(conninfo, connect_timeout=10) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('warroom schema'))")
        conn.execute("CREATE SCHEMA IF NOT EXISTS warroom")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS warroom.schema_version ("
            " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute(
            "SELECT coalesce(max(version), 0) FROM warroom.schema_version"
        ).fetchone()
        before = int(row[0]) if row else 0
        if before > SCHEMA_VERSION:
            raise SchemaError(
                f"the database has warroom schema v{before}, newer than this warroom's "
                f"v{SCHEMA_VERSION}: upgrade warroom"
            )
        for version, sql in MIGRATIONS:
            if version > before:
                conn.execute(sql)  # type: ignore[arg-type]
                conn.execute("INSERT INTO warroom.schema_version (version) VALUES (%s)", [version])
        conn.execute("REVOKE UPDATE, DELETE, TRUNCATE ON warroom.events FROM PUBLIC")
        if grant_to is not None:
            conn.execute(f'GRANT USAGE ON SCHEMA warroom TO "{grant_to}"')  # type: ignore[arg-type]
            for sql in (
                'GRANT SELECT ON warroom.schema_version TO "{r}"',
                'GRANT SELECT, INSERT ON warroom.events TO "{r}"',
                'GRANT SELECT, INSERT, UPDATE ON warroom.incidents, warroom.leases TO "{r}"',
                'REVOKE UPDATE, DELETE, TRUNCATE ON warroom.events FROM "{r}"',
                'GRANT EXECUTE ON FUNCTION warroom.append_events TO "{r}"',
            ):
                conn.execute(sql.format(r=grant_to))  # type: ignore[arg-type]
    return before, SCHEMA_VERSION
