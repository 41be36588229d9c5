"""Moving an incident between the file store and PostgreSQL, and verifying a shared one.

An export writes each stored row as the exact line the file store writes (the stored bytes
are the hashed bytes), so exporting an imported file gives back the same bytes, and
`warroom log verify` checks an export with the same code as any log. `verify_url` is that:
export to a temporary file, verify, and name the URL in the result.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from warroom.errors import WarroomError
from warroom.log import codec
from warroom.log.anchor import Anchor
from warroom.log.scan import iter_lines, open_for_reading, where
from warroom.log.verify import VerifyResult, verify_log
from warroom.store.chain import body_of
from warroom.store.pg import EID, PgStore, unavailable
from warroom.store.url import StoreURLError, parse_url

#: Rows sent per INSERT when importing.
IMPORT_CHUNK = 2000


def export(url: str, output: str | os.PathLike[str]) -> int:
    """Write the incident at `url` to `output` (atomically); return the number of events."""
    out = Path(output)
    store = PgStore.open(url, create=False, readonly=True)
    tmp = out.with_name(f".{out.name}.export-tmp")
    count = 0
    try:
        with open(tmp, "wb") as handle:
            for line in store.lines():
                handle.write(line)
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise WarroomError(f"{where(out)}: cannot write: {exc.strerror or exc}") from None
    finally:
        store.close()
        tmp.unlink(missing_ok=True)
    return count


def verify_url(url: str, anchor: Anchor | None = None) -> VerifyResult:
    """`verify_log` on the incident at `url`; the result names the URL, lines are seqs."""
    display = parse_url(url).display
    with tempfile.TemporaryDirectory(prefix="warroom-verify-") as folder:
        path = Path(folder) / "export.jsonl"
        export(url, path)
        result = verify_log(path, anchor=anchor)
    return result.model_copy(update={"path": display})


def import_file(path: str | os.PathLike[str], url: str) -> int:
    """Seed the (new or empty) incident at `url` with the verified log `path`; the count."""
    import psycopg

    result = verify_log(path)
    if not result.ok:
        raise WarroomError(f"refusing to import a broken log: {result.message()}")
    store = PgStore.open(url, create=True)
    try:
        conn = store._connection()
        fd = open_for_reading(path)
        try:
            with conn.transaction():
                conn.execute(
                    "SELECT 1 FROM warroom.incidents WHERE incident = %s FOR UPDATE",
                    [store.incident],
                )
                row = conn.execute(
                    "SELECT count(*) FROM warroom.events WHERE incident = %s", [store.incident]
                ).fetchone()
                if row and row[0]:
                    raise StoreURLError(
                        f"{store.url.display}: already has {row[0]} events; import seeds an "
                        "empty incident"
                    )
                count, seq, head = 0, 0, codec.GENESIS
                chunk: list[tuple[int, str, str, bytes, str | None]] = []
                for _offset, raw in iter_lines(fd, 0, os.fstat(fd).st_size):
                    body, obj = body_of(raw)
                    eid = obj.get(EID)
                    chunk.append((obj["seq"], obj["prev"], obj["hash"], body, eid or None))
                    if len(chunk) >= IMPORT_CHUNK:
                        _insert(conn, store.incident, chunk)
                        chunk = []
                    count, seq, head = count + 1, obj["seq"], obj["hash"]
                _insert(conn, store.incident, chunk)
                conn.execute(
                    "UPDATE warroom.incidents SET seq = %s, hash = %s WHERE incident = %s",
                    [seq, head, store.incident],
                )
        finally:
            os.close(fd)
    except psycopg.OperationalError as exc:
        raise unavailable(store.url, exc) from None
    except psycopg.Error as exc:
        raise StoreURLError(f"{store.url.display}: import refused: {exc}") from None
    finally:
        store.close()
    return count


def _insert(
    conn: object, incident: str, chunk: list[tuple[int, str, str, bytes, str | None]]
) -> None:
    if not chunk:
        return
    seqs, prevs, hashes, bodies, eids = (list(col) for col in zip(*chunk, strict=True))
    conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO warroom.events (incident, seq, prev, hash, body, eid) "
        "SELECT %s, r.* FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bytea[], "
        "%s::text[]) AS r",
        [incident, seqs, prevs, hashes, bodies, eids],
    )
