"""Where an incident's events live: the JSONL file (the default) or a shared PostgreSQL.

Every command that takes a LOG goes through `open_store(LOG)` (appending), `read_events(LOG)`
(reading) or `local_log(LOG)` (commands that need a file: replay, report, `log show`), so a
`postgresql://[user@]host[:port]/db?incident=ID` works wherever a path does. psycopg is
imported only when a URL is given: with a file, nothing needs a database.

- `base`: the `IncidentStore` protocol both stores satisfy, and the store errors.
- `url`: parsing the URL (everything but `incident` is libpq's).
- `schema`: the versioned schema and `init_schema` (`warroom db init`).
- `pg`: `PgStore`, appends (compare-and-set, then `FOR UPDATE`), reads, the probing lease.
- `chain`: the client-side check of every row read; rows as file-store lines.
- `follow`: `Follower` (LISTEN + 1 s poll, checked rows into a local JSONL mirror).
- `shared`: `SharedIncident`, the console's store: follower + mirror + offline segment.
- `transfer`: `log export`, `log import`, `log verify URL`.
- `team`: presence and the two-person rule, pure.
- `cli`: `warroom db init`, `warroom log export`, `warroom log import`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from warroom.events import BaseEvent
from warroom.store.base import IncidentStore, StoreTampered, StoreUnavailable
from warroom.store.url import StoreURLError, is_url, parse_url

__all__ = [
    "IncidentStore",
    "StoreTampered",
    "StoreURLError",
    "StoreUnavailable",
    "is_url",
    "local_log",
    "open_store",
    "parse_url",
    "read_events",
]


def open_store(
    log: str | os.PathLike[str], create: bool = True, readonly: bool = False
) -> IncidentStore:
    """The store LOG names: a `PgStore` for a URL, else the JSONL `IncidentLog` at that path."""
    text = os.fspath(log)
    if is_url(text):
        from warroom.store.pg import PgStore

        return PgStore.open(text, create=create, readonly=readonly)
    from warroom.log.store import IncidentLog

    return IncidentLog.open(Path(text), create=create, readonly=readonly)


def read_events(log: str | os.PathLike[str], from_seq: int = 1) -> Iterator[BaseEvent]:
    """LOG's events from `from_seq`, typed (each row checked when LOG is a URL)."""
    text = os.fspath(log)
    if is_url(text):
        from warroom.store.pg import PgStore

        store = PgStore.open(text, create=False, readonly=True)
        try:
            yield from store.read(from_seq)
        finally:
            store.close()
        return
    from warroom.log.store import read_events as read_file

    yield from read_file(text, from_seq)


def local_log(log: str | os.PathLike[str], follow: bool = False) -> Path:
    """A JSONL file holding LOG's events: LOG itself, or for a URL a checked mirror of it.

    The mirror is a temporary file removed at exit; with `follow` a daemon thread keeps it
    up to date (within about a second) for as long as the process runs.
    """
    text = os.fspath(log)
    if not is_url(text):
        return Path(text)
    from warroom.store.follow import Follower

    url = parse_url(text)
    folder = tempfile.mkdtemp(prefix="warroom-mirror-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / f"{url.incident}.jsonl"
    follower = Follower(url, mirror=path)
    # The first pass raises (unreachable, no such incident, tampered) before anything opens.
    from warroom.store.pg import PgStore

    PgStore.open(url, create=False, readonly=True).close()
    while True:
        events = follower.poll()
        if not follower._more:
            break
        del events
    if follow:
        follower.start()
    else:
        follower.close()
    return path
