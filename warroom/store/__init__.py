"""Where an incident's events live: the JSONL file (the default) or a shared PostgreSQL.

Every command that takes a LOG goes through `open_store(LOG)` (appending), `read_events(LOG)`
(reading) or `local_log(LOG)` (commands that need a file: replay, report, `log show`), so a
`postgresql://[user@]host[:port]/db?incident=ID` works wherever a path does. psycopg is
imported only when a URL is given: with a file, nothing needs a database.

- `base`: the `IncidentStore` protocol both stores satisfy, and the store errors.
- `url`: parsing the URL (everything but `incident` is libpq's).
- `schema`: the versioned schema and `init_schema` (`warroom db init`).
- `pg`: `PgStore`, appends (one statement: `warroom.append_events`), reads, the probing lease.
- `chain`: the client-side check of every row read; rows as file-store lines.
- `follow`: `Follower` (LISTEN + 1 s poll, checked rows into a local JSONL mirror).
- `shared`: `SharedIncident`, the console's store: follower + mirror + offline segment.
- `transfer`: `log export`, `log import`, `log verify URL`.
- `team`: presence and the two-person rule, pure.
- `lease`: `ProbeLease`, one prober per shared incident.
- `cli`: `warroom db init`, `warroom log export`, `warroom log import`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from warroom.store.base import IncidentStore, StoreTampered, StoreUnavailable
from warroom.store.url import StoreURLError, is_url, parse_url

if TYPE_CHECKING:
    from warroom.config import WarroomConfig
    from warroom.events import BaseEvent
    from warroom.log.anchor import Anchor
    from warroom.log.store import GroupCommitter
    from warroom.log.verify import VerifyResult

__all__ = [
    "IncidentStore",
    "StoreTampered",
    "StoreURLError",
    "StoreUnavailable",
    "console_log",
    "group_committer",
    "is_url",
    "local_log",
    "open_for_console",
    "open_store",
    "parse_url",
    "read_events",
    "verify",
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


def verify(log: str | os.PathLike[str], anchor: Anchor | None = None) -> VerifyResult:
    """`warroom log verify`: the chain check of a file, or of a shared incident's rows; with
    an `anchor` (a head recorded elsewhere) an intact chain must also hold that event."""
    text = os.fspath(log)
    if is_url(text):
        from warroom.store.transfer import verify_url

        return verify_url(text, anchor=anchor)
    from warroom.log.verify import verify_log

    return verify_log(text, anchor=anchor)


def group_committer(store: IncidentStore, interval: float = 0.1) -> GroupCommitter:
    """The file store's `GroupCommitter` on any store (`PgStore` offers the `_append` it
    calls: machine events observed together become one statement)."""
    from warroom.log.store import GroupCommitter, IncidentLog

    return GroupCommitter(cast(IncidentLog, store), interval=interval)


def console_log(log: str | None, config: WarroomConfig | None = None) -> str | None:
    """The incident a console opens: `--log` when given, else the config's `[store] url`,
    else None (the caller's default, a new file)."""
    if log:
        return log
    if config is not None and config.store is not None:
        return config.store.url
    return None


def open_for_console(
    log: str | None, default: Path, config: WarroomConfig | None = None
) -> tuple[IncidentStore, Path]:
    """The console's store for `--log` (else `config`'s `[store] url`, else `default`) and
    the file it follows: for a URL a `SharedIncident` and its mirror
    (`incidents/<id>.shared.jsonl`), else the JSONL log."""
    log = console_log(log, config)
    if log is not None and is_url(log):
        from warroom.store.shared import SharedIncident

        shared = SharedIncident.open(log)
        return shared, shared.mirror_path
    from warroom.log.store import IncidentLog

    path = Path(log) if log else default
    return IncidentLog.open(path), path


def local_log(log: str | os.PathLike[str], follow: bool = False) -> Path:
    """A JSONL file holding LOG's events: LOG itself, or for a URL a copy of it.

    The copy is a temporary file removed at exit: the rows as stored (so replay and the
    report run their own integrity check on them), or with `follow` a checked mirror that
    a daemon thread keeps up to date (within about a second) while the process runs.
    """
    text = os.fspath(log)
    if not is_url(text):
        return Path(text)
    url = parse_url(text)
    folder = tempfile.mkdtemp(prefix="warroom-mirror-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / f"{url.incident}.jsonl"
    if not follow:
        from warroom.store.transfer import export

        export(text, path)
        return path
    from warroom.store.follow import Follower
    from warroom.store.pg import PgStore

    # Unreachable or no such incident: one line now, before any screen opens.
    PgStore.open(url, create=False, readonly=True).close()
    follower = Follower(url, mirror=path)
    while follower.poll():
        pass

    def tampered(exc: StoreTampered) -> None:
        # The copy stops growing here: say why once, on stderr, like any other problem.
        print(f"warroom: {exc}", file=sys.stderr)

    follower.start(on_error=tampered)
    return path
