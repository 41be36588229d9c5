"""`warroom log verify`, `warroom log show [--follow]` and `warroom note`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable

from warroom import events as ev
from warroom.errors import WarroomError
from warroom.log.store import IncidentLog, LogFollower
from warroom.store import local_log, open_store, verify

FOLLOW_INTERVAL = 0.2


def run_verify(args: argparse.Namespace) -> int:
    """Print one line: `ok: N events, chain intact, head H`, or where and how the chain breaks."""
    result = verify(args.log)
    print(result.message())
    return 0 if result.ok else 1


def format_event(event: ev.BaseEvent) -> str:
    """seq, time (UTC, to the second), actor and summary, on one line."""
    ts = event.ts
    shown_ts = f"{ts[:10]} {ts[11:19]}" if len(ts) >= 19 and ts[10] == "T" else ts or "-"
    summary = event.summary().replace("\r\n", "\n").replace("\n", " ⏎ ")
    return f"{event.seq:>6}  {shown_ts}  {event.actor or '-'}  {summary}"


def _print_events(events: Iterable[ev.BaseEvent]) -> None:
    write = sys.stdout.write
    for event in events:
        write(format_event(event) + "\n")
    sys.stdout.flush()


def run_show(args: argparse.Namespace) -> int:
    """Print the log's events one line each; with --follow keep printing new ones."""
    path = local_log(args.log, follow=args.follow)
    log = IncidentLog.open(path, create=False, readonly=True)
    log.close()
    if log.recovered is not None:
        print(f"warroom: {log.recovered.describe()}", file=sys.stderr)
    follower = LogFollower(path)
    _print_events(follower.iter_available())
    while args.follow:
        time.sleep(FOLLOW_INTERVAL)
        _print_events(follower.iter_available())
    return 0


def run_note(args: argparse.Namespace) -> int:
    """Append a note as the current actor (creating the log if needed) and print its seq."""
    text = " ".join(args.text).strip()
    if not text:
        raise WarroomError("a note needs some text")
    with open_store(args.log, create=True) as log:
        if log.recovered is not None:
            print(f"warroom: {log.recovered.describe()}", file=sys.stderr)
        stamped = log.append(ev.NoteAdded(text=text))
    print(stamped.seq)
    return 0
