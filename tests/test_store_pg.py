"""The PostgreSQL store against a real server: appends, the chain in the database, transfer."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pg import PgServer

from warroom import events as ev
from warroom.events import ProbeState
from warroom.log import codec
from warroom.log.store import IncidentLog
from warroom.log.verify import verify_log
from warroom.store import IncidentStore, StoreURLError, open_store, read_events
from warroom.store.follow import Follower
from warroom.store.pg import PgStore, template
from warroom.store.transfer import export, import_file, verify_url


def test_appends_make_one_chain_that_exports_byte_identical_to_the_file_store(
    pg_url: str, tmp_path: Path
) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PgStore)
    first = store.append(ev.NoteAdded(text="ünïcode ✓ note", actor="alice@a"))
    batch = store.append_many(
        [ev.ProbeStateChanged(target=f"t{i}", from_state=UP, to_state=DOWN) for i in range(3)]
    )
    store.close()
    assert [first.seq, *(e.seq for e in batch)] == [1, 2, 3, 4]
    out = tmp_path / "export.jsonl"
    assert export(pg_url, out) == 4
    assert verify_log(out).ok
    # The file store writes the very same bytes for the very same events.
    file_log = IncidentLog.open(tmp_path / "file.jsonl")
    file_log.append_many(list(read_events(pg_url)))
    file_log.close()
    assert (tmp_path / "file.jsonl").read_bytes() == out.read_bytes()
    assert [e.hash for e in read_events(pg_url)] == [first.hash, *(e.hash for e in batch)]


async def test_following_a_url_yields_the_stored_events_then_new_ones(pg_url: str) -> None:
    import asyncio

    with PgStore.open(pg_url) as store:
        store.append(ev.NoteAdded(text="first"))
        follow = store.follow()
        assert (await anext(follow)).seq == 1
        later = asyncio.ensure_future(anext(follow))
        await asyncio.sleep(0.2)
        with PgStore.open(pg_url) as other:
            other.append(ev.NoteAdded(text="from another machine"))
        event = await asyncio.wait_for(later, 5)
        assert isinstance(event, ev.NoteAdded) and event.text == "from another machine"
        await follow.aclose()  # type: ignore[attr-defined]


def test_both_stores_satisfy_the_store_protocol(pg_url: str, tmp_path: Path) -> None:
    for log in (pg_url, tmp_path / "a.jsonl"):
        store = open_store(log)
        assert isinstance(store, IncidentStore)
        assert store.append(ev.NoteAdded(text="x")).seq == 1
        assert store.last_seq == 1
        assert [e.seq for e in store.read()] == [1]
        store.close()


UP, DOWN = ProbeState.UP, ProbeState.DOWN


def _file_log(path: Path, count: int) -> Path:
    with IncidentLog.open(path) as log:
        log.append(ev.IncidentOpened(incident_id="x", title="disk full"))
        for i in range(count):
            log.append(ev.NoteAdded(text=f"note {i}", actor="bob@b"))
    return path


def test_import_then_export_gives_back_the_same_bytes(pg_url: str, tmp_path: Path) -> None:
    source = _file_log(tmp_path / "in.jsonl", 5)
    assert import_file(source, pg_url) == 6
    out = tmp_path / "out.jsonl"
    export(pg_url, out)
    assert out.read_bytes() == source.read_bytes()
    # The chain continues from the imported head.
    with open_store(pg_url) as store:
        assert store.append(ev.NoteAdded(text="after")).seq == 7
    assert verify_url(pg_url).ok
    with pytest.raises(StoreURLError, match="already has 7 events"):
        import_file(source, pg_url)


def test_a_broken_file_is_not_imported(pg_url: str, tmp_path: Path) -> None:
    source = _file_log(tmp_path / "in.jsonl", 3)
    lines = source.read_bytes().splitlines(keepends=True)
    source.write_bytes(lines[0] + lines[2] + lines[3])
    with pytest.raises(Exception, match="refusing to import a broken log"):
        import_file(source, pg_url)


def test_a_retry_with_the_same_ids_stores_nothing_twice(pg_url: str) -> None:
    with PgStore.open(pg_url) as store:
        events = [
            ev.NoteAdded.model_validate({"text": f"n{i}", "eid": f"id-{i}"}) for i in range(3)
        ]
        first = store.append_many(events)
        # As if the first answer had been lost: same ids, another writer in between.
        with PgStore.open(pg_url) as other:
            other.append(ev.NoteAdded(text="between"))
        again = store.append_many(
            [*events, ev.NoteAdded.model_validate({"text": "new", "eid": "id-9"})]
        )
        assert [e.seq for e in again] == [1, 2, 3, 5]
        assert [e.hash for e in again[:3]] == [e.hash for e in first]
        assert [e.seq for e in store.read()] == [1, 2, 3, 4, 5]


def test_the_application_role_cannot_rewrite_history(pg: PgServer, pg_url: str) -> None:
    with open_store(pg_url) as store:
        store.append(ev.NoteAdded(text="the truth"))
    incident = pg_url.rsplit("incident=", 1)[1]
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        for sql in (
            "UPDATE warroom.events SET eid = 'x'",
            "DELETE FROM warroom.events",
            "TRUNCATE warroom.events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        # A row that does not continue the chain is refused by the database itself.
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO warroom.events (incident, seq, prev, hash, body) "
                "VALUES (%s, 3, %s, encode(sha256('{}'::bytea), 'hex'), '{}')",
                [incident, "a" * 64],
            )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO warroom.events (incident, seq, prev, hash, body) "
                "VALUES (%s, 2, (SELECT hash FROM warroom.events WHERE incident = %s), %s, '{}')",
                [incident, incident, "b" * 64],
            )
    # Even the owner is stopped by the append-only trigger.
    with (
        psycopg.connect(pg.admin_url(), autocommit=True) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="append-only"),
    ):
        conn.execute("DELETE FROM warroom.events WHERE incident = %s", [incident])


def test_tampering_by_a_superuser_is_found_at_the_right_seq(
    pg: PgServer, pg_url: str, tmp_path: Path
) -> None:
    with open_store(pg_url) as store:
        for i in range(10):
            store.append(ev.NoteAdded(text=f"note {i}"))
    seen = tmp_path / "seen-before.jsonl"
    live = Follower(pg_url, mirror=seen)
    assert len(live.poll()) == 10
    incident = pg_url.rsplit("incident=", 1)[1]
    # A superuser bypasses the triggers and the foreign key, and recomputes the hash so the
    # CHECK still holds: only the chain tells.
    with psycopg.connect(pg.admin_url(), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE warroom.events SET (body, hash) = (SELECT b, encode(sha256(b), 'hex') FROM "
            "(SELECT convert_to(replace(convert_from(body, 'UTF8'), 'note 4', 'note X'), "
            "'UTF8') AS b) AS t) WHERE incident = %s AND seq = 5",
            [incident],
        )
    result = verify_url(pg_url)
    assert not result.ok
    assert (result.first_bad_seq, result.reason) == (5, "edited")
    assert "incident=" in result.message()
    from warroom.store import StoreTampered

    with pytest.raises(StoreTampered) as caught:
        list(read_events(pg_url))
    assert (caught.value.seq, caught.value.reason) == (5, "edited")
    # A follower stops there too, its mirror holding only the trustworthy events before.
    mirror = tmp_path / "mirror.jsonl"
    follower = Follower(pg_url, mirror=mirror)
    with pytest.raises(StoreTampered) as caught:
        follower.poll()
    follower.close()
    assert (caught.value.seq, caught.value.reason) == (5, "edited")
    assert verify_log(mirror).count == 4 and verify_log(mirror).ok
    # A follower that mirrored seq 5 before the edit finds it by auditing its mirror.
    with pytest.raises(StoreTampered) as caught:
        live.audit()
    live.close()
    assert (caught.value.seq, caught.value.reason) == (5, "edited")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"kind": "note_added", "text": 'ünï ✓ "prev":"x" \n', "v": 1},
        # Keys just around "prev" and "seq", and nested ones of the same names.
        {"pre": 1, "prev_x": {"prev": "n", "seq": 9}, "prevz": [], "sep": None, "seq_": 2},
        {"a": [{"seq": 1}], "s": "", "z": {"b": 1, "a": 2}, "ä": "non-ASCII key"},
    ],
)
def test_a_template_filled_in_is_the_canonical_body(data: dict[str, object]) -> None:
    pre, mid, post = template(data)
    prev, seq = "ab" * 32, 1234567
    body = pre + prev.encode() + mid + str(seq).encode() + post
    assert body == codec.canonical_json({**data, "prev": prev, "seq": seq})


def test_init_upgrades_a_v1_database_and_its_incident_goes_on(pg: PgServer) -> None:
    from warroom.store.schema import MIGRATIONS, SCHEMA_VERSION, init_schema

    pg.psql("CREATE DATABASE v1_db")
    with psycopg.connect(pg.url(db="v1_db", user="postgres")) as conn:
        conn.execute("CREATE SCHEMA warroom")
        conn.execute("CREATE TABLE warroom.schema_version (version int PRIMARY KEY)")
        conn.execute(MIGRATIONS[0][1])  # type: ignore[arg-type]
        conn.execute("INSERT INTO warroom.schema_version VALUES (1)")
    admin = pg.url(db="v1_db", user="postgres")
    source = _file_log(pg.base / "v1.jsonl", 2)
    with pytest.raises(StoreURLError, match=f"needs v{SCHEMA_VERSION}: run `warroom db init URL`"):
        open_store(pg.url("old", db="v1_db", user="postgres"))
    assert init_schema(admin, grant_to="warroom_app") == (1, SCHEMA_VERSION)
    assert init_schema(admin, grant_to="warroom_app") == (SCHEMA_VERSION, SCHEMA_VERSION)
    url = pg.url("old", db="v1_db")
    assert import_file(source, url) == 3
    with open_store(url) as store:
        assert store.append(ev.NoteAdded(text="after the upgrade")).seq == 4
    assert verify_url(url).ok


def test_init_upgrades_a_v2_database_and_writers_then_wait_in_the_incidents_queue(
    pg: PgServer,
) -> None:
    import threading
    import time

    from warroom.store.schema import MIGRATIONS, SCHEMA_VERSION, init_schema

    pg.psql("CREATE DATABASE v2_db")
    admin = pg.url(db="v2_db", user="postgres")
    with psycopg.connect(admin) as conn:
        conn.execute("CREATE SCHEMA warroom")
        conn.execute("CREATE TABLE warroom.schema_version (version int PRIMARY KEY)")
        for version, sql in MIGRATIONS[:2]:
            conn.execute(sql)  # type: ignore[arg-type]
            conn.execute("INSERT INTO warroom.schema_version VALUES (%s)", [version])
        # What a v2 warroom sends: one call of the v2 function per append.
        conn.execute("INSERT INTO warroom.incidents (incident) VALUES ('old')")
        pre, mid, post = template({"kind": "note_added", "text": "before", "v": 1})
        conn.execute(
            "SELECT * FROM warroom.append_events('old', %s, %s, %s, %s, false)",
            [[pre], [mid], [post], ["e1"]],
        )
    assert init_schema(admin, grant_to="warroom_app") == (2, SCHEMA_VERSION)
    assert init_schema(admin, grant_to="warroom_app") == (SCHEMA_VERSION, SCHEMA_VERSION)
    url = pg.url("old", db="v2_db")
    done: list[int] = []
    store, other = PgStore.open(url), PgStore.open(pg.url("another", db="v2_db"))

    def append_one(store: PgStore) -> None:
        done.append(store.append(ev.NoteAdded(text="n")).seq)

    here, elsewhere = (threading.Thread(target=append_one, args=(s,)) for s in (store, other))
    holder = psycopg.connect(admin, autocommit=True)
    try:
        # Another writer is appending to the incident: it holds its place in the queue.
        holder.execute("BEGIN")
        holder.execute(
            "SELECT pg_advisory_xact_lock(hashtext('warroom.append_events'), hashtext('old'))"
        )
        here.start()
        waits: list[tuple[str, str]] = []
        deadline = time.monotonic() + 5
        while ("Lock", "advisory") not in waits and time.monotonic() < deadline:
            time.sleep(0.02)
            waits = holder.execute(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE application_name = 'warroom' AND state = 'active'"
            ).fetchall()
        assert ("Lock", "advisory") in waits and not done
        elsewhere.start()  # another incident has a queue of its own
        elsewhere.join(5)
        assert done == [1]
    finally:
        holder.close()  # its transaction ends, and with it its place in the queue
        for thread in (here, elsewhere):
            if thread.ident is not None:
                thread.join(5)
        store.close()
        other.close()
    assert done == [1, 2]
    assert verify_url(url).ok


def test_an_append_the_server_stored_otherwise_than_sent_is_refused(pg: PgServer) -> None:
    from warroom.store.schema import MIGRATIONS, init_schema

    pg.psql("CREATE DATABASE odd_db")
    init_schema(pg.url(db="odd_db", user="postgres"), grant_to="warroom_app")
    function = MIGRATIONS[-1][1].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    with psycopg.connect(pg.url(db="odd_db", user="postgres")) as conn:
        # A function that chains other bytes (here one space more) than the client sent.
        conn.execute(function.replace("|| p_post[n];", "|| p_post[n] || ' '::bytea;"))  # type: ignore[arg-type]
    refused = pytest.raises(StoreURLError, match="seq 1 stored other bytes than sent")
    with open_store(pg.url("odd", db="odd_db")) as store, refused:
        store.append(ev.NoteAdded(text="n"))


def test_init_is_idempotent_and_errors_are_one_line(pg: PgServer) -> None:
    from warroom.store.schema import SCHEMA_VERSION, init_schema

    assert init_schema(pg.admin_url(), grant_to="warroom_app") == (SCHEMA_VERSION, SCHEMA_VERSION)
    pg.psql("CREATE DATABASE empty_db")
    with pytest.raises(StoreURLError, match="run `warroom db init URL` first"):
        open_store(pg.url("x", db="empty_db"))
    with pytest.raises(StoreURLError, match="no such incident"):
        open_store(pg.url("nope"), create=False)
    with pytest.raises(StoreURLError, match=r"add \?incident=ID"):
        open_store(pg.url())
    with pytest.raises(StoreURLError, match="must be 1-128"):
        open_store(pg.url("bad/name"))


def test_a_head_row_edited_by_hand_does_not_stop_or_fork_the_chain(
    pg: PgServer, pg_url: str
) -> None:
    incident = pg_url.rsplit("incident=", 1)[1]
    with PgStore.open(pg_url) as store:
        for i in range(3):
            store.append(ev.NoteAdded(text=f"n{i}"))
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(
                "UPDATE warroom.incidents SET seq = 1, hash = %s WHERE incident = %s",
                ["0" * 64, incident],
            )
        assert store.append(ev.NoteAdded(text="after")).seq == 4
    assert verify_url(pg_url).ok


def test_a_row_this_version_rejects_is_kept_whole_not_fatal(pg_url: str, tmp_path: Path) -> None:
    broken = ev.UnknownEvent.model_validate({"kind": "severity_set", "severity": "SEV9"})
    with PgStore.open(pg_url) as store:
        store.append(broken)
        store.append(ev.NoteAdded(text="still here"))
    follower = Follower(pg_url, mirror=tmp_path / "m.jsonl")
    first, second = follower.poll()
    follower.close()
    assert isinstance(first, ev.UnknownEvent) and first.model_extra["severity"] == "SEV9"  # type: ignore[index]
    assert isinstance(second, ev.NoteAdded)
    assert [type(e) for e in read_events(pg_url)] == [ev.UnknownEvent, ev.NoteAdded]
