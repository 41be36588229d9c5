"""`warroom log verify`, `warroom log show [--follow]` and `warroom note`."""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

from warroom.errors import WarroomError
from warroom.log.anchor import parse_anchor
from warroom.log.scan import LogError, open_for_reading, read_settled
from warroom.log.show import Shower, incident_clock
from warroom.store.url import is_url, parse_url
from warroom.untrusted import one_line

# `log show` of a file imports no pydantic (a fifth of a second of a 1,000,000-line show):
# the events, the store and a database are imported by what needs them.

FOLLOW_INTERVAL = 0.2


def run_verify(args: argparse.Namespace) -> int:
    """Print one line: `ok: N events, chain intact, log head #N sha256:…`, or where and how the
    chain breaks; with --head, an intact chain must also hold that recorded head."""
    from warroom.store import verify

    anchor = parse_anchor(args.head) if getattr(args, "head", None) else None
    result = verify(args.log, anchor=anchor)
    print(one_line(result.message()))
    return 0 if result.ok else 1


def _warn(message: object) -> None:
    print(f"warroom: {one_line(message)}", file=sys.stderr, flush=True)


def _show(shower: Shower) -> None:
    """Print what `shower` has to show: as bytes, or as text to a stdout that takes only text."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        shower.show(buffer)
        return
    sink = io.BytesIO()
    shower.show(sink)
    sys.stdout.write(sink.getvalue().decode())
    sys.stdout.flush()


def run_show(args: argparse.Namespace) -> int:
    """Print the log's events one safe line each; with --follow keep printing new ones.

    Times are local (`07:52:14`, dated on other days than the incident's first), or with
    --utc UTC to the second (`2025-10-20 06:48:00`) for scripts.

    A line that is not an event is reported on stderr with its line number and skipped; the
    exit code is then 1, after every other event was printed. A shared incident (URL) is read
    from a checked local copy of its rows.
    """
    if is_url(args.log):
        from warroom.store import local_log

        path = local_log(args.log, follow=args.follow)
    else:
        path = Path(args.log)
    fd = open_for_reading(path)
    try:
        torn = read_settled(fd, path)[2]
    finally:
        os.close(fd)
    if torn is not None:
        _warn(torn.describe(path))
    skipped = 0

    def on_bad(error: LogError) -> None:
        nonlocal skipped
        skipped += 1
        _warn(f"{error} (line skipped)")

    clock = None if getattr(args, "utc", False) else incident_clock()
    shower = Shower(path, on_bad, clock, follow=args.follow)
    _show(shower)
    while args.follow:
        time.sleep(FOLLOW_INTERVAL)
        _show(shower)
    return 1 if skipped else 0


def _utf8(what: str, value: str) -> str:
    """`value` unchanged if it is valid UTF-8 text (argv that was not decodes to surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WarroomError(f"{what} is not valid UTF-8 (byte {exc.start + 1})") from None
    return value


def run_note(args: argparse.Namespace) -> int:
    """Append a note as the current actor and say so: `note #228 added to incidents/x.jsonl`.

    The log must exist unless --create: a typo in its name must not start an incident nobody
    watches.
    """
    from warroom import events as ev
    from warroom.store import open_store

    text = _utf8("the note", " ".join(args.text).strip())
    if not text:
        raise WarroomError("a note needs some text")
    create = bool(getattr(args, "create", False))
    if not create and not is_url(args.log):
        path = Path(args.log)
        if not path.exists() and not path.is_symlink():
            raise WarroomError(
                f"{path}: no such incident log (check the name; --create starts a new one)"
            )
    with open_store(args.log, create=create) as log:
        if log.recovered is not None:
            _warn(log.recovered.describe())
        log.actor = _utf8("the actor name", log.actor)
        stamped = log.append(ev.NoteAdded(text=text))
    shown = parse_url(args.log).display if is_url(args.log) else os.fspath(args.log)
    print(f"note #{stamped.seq} added to {one_line(shown)}")
    return 0
