"""The shared store with real processes and a real server: many writers, kill -9, restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pg import PgServer
from processes import wait_until

from warroom import events as ev
from warroom.log.verify import verify_log
from warroom.store import read_events
from warroom.store.follow import Follower
from warroom.store.transfer import export, verify_url

WRITER = """
import sys, threading
from warroom.events import NoteAdded
from warroom.store.pg import PgStore

url, names, count = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
stores = {name: PgStore.open(url) for name in names}  # a connection each: a writer each
print("ready", flush=True)
sys.stdin.readline()

def write(name):
    for i in range(count):
        stores[name].append(NoteAdded(text=f"{name} {i}", actor=name))

threads = [threading.Thread(target=write, args=(name,)) for name in names]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""

KILLED = """
import os, sys
from warroom.events import NoteAdded, ProbeStateChanged
from warroom.store.pg import PgStore

store = PgStore.open(sys.argv[1])
i = 0
while True:
    if i % 4 == 3:
        batch = [ProbeStateChanged(target=f"t{i}", from_state="up", to_state="down")] * 3
        stamped = store.append_many(batch)
    else:
        stamped = [store.append(NoteAdded(text=f"n{i}"))]
    os.write(1, "".join(f"{e.seq} {e.hash}\\n" for e in stamped).encode())
    i += 1
"""


def _writers(url: str, groups: list[list[str]], count: int) -> list[subprocess.Popen[str]]:
    """One process per group of writer names, one thread and connection per name."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, ",".join(names), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for names in groups
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:  # all at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    return procs


def _check_writers(url: str, names: list[str], count: int) -> None:
    result = verify_url(url)
    assert result.ok, result.message()
    assert result.count == len(names) * count
    texts: dict[str, list[int]] = {name: [] for name in names}
    for event in read_events(url):
        assert isinstance(event, ev.NoteAdded)
        name, i = event.text.split()
        texts[name].append(int(i))
    # Nothing lost, nothing twice, each writer's notes in the order it wrote them.
    assert all(seen == list(range(count)) for seen in texts.values())


@pytest.mark.slow
def test_two_processes_times_a_thousand_notes_make_one_chain(pg_url: str) -> None:
    _writers(pg_url, [["alpha"], ["bravo"]], 1000)
    _check_writers(pg_url, ["alpha", "bravo"], 1000)


@pytest.mark.slow
def test_ten_writers_at_once_lose_nothing_and_leave_no_gap(pg_url: str) -> None:
    names = [f"w{i}" for i in range(10)]
    # Two processes of five: ten connections appending at once, without ten interpreters
    # starting up on a busy machine.
    _writers(pg_url, [names[:5], names[5:]], 50)
    _check_writers(pg_url, names, 50)


@pytest.mark.slow
def test_kill_9_mid_append_loses_no_acknowledged_event(pg_url: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", KILLED, pg_url], stdout=subprocess.PIPE)
        for _ in range(3)
    ]
    first = [proc.stdout.readline() for proc in procs if proc.stdout is not None]
    time.sleep(0.5)
    for proc in procs:
        assert proc.poll() is None  # still appending when killed
        proc.send_signal(signal.SIGKILL)
    acked: dict[int, str] = {}
    for proc, head in zip(procs, first, strict=True):
        out, _ = proc.communicate(timeout=10)
        for line in (head + out).decode().splitlines():
            if line.count(" ") == 1:  # a line cut by the kill is not an acknowledgement
                seq, digest = line.split()
                acked[int(seq)] = digest
    assert len(acked) > 20
    stored = {event.seq: event.hash for event in read_events(pg_url)}
    assert all(stored.get(seq) == digest for seq, digest in acked.items())
    assert verify_url(pg_url).ok


@pytest.mark.slow
def test_a_follower_sees_another_process_append_within_a_second_and_mirrors_it(
    pg_url: str, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror.jsonl"
    seen: list[tuple[float, ev.BaseEvent]] = []
    follower = Follower(pg_url, mirror=mirror)
    follower.start(lambda events: seen.extend((time.monotonic(), e) for e in events))
    try:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, pg_url, "remote", "5"],  # one writer
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        assert writer.stdin is not None
        start = time.monotonic()
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.wait(timeout=30) == 0
        assert wait_until(lambda: len(seen) == 5, timeout=5)
        assert seen[-1][0] - start < 1.0
    finally:
        follower.close()
    out = tmp_path / "export.jsonl"
    export(pg_url, out)
    assert mirror.read_bytes() == out.read_bytes()
    assert verify_log(mirror).ok


@pytest.mark.slow
def test_a_postgresql_restart_costs_a_reconnect_and_leaves_no_gap(
    pg: PgServer, pg_url: str, tmp_path: Path
) -> None:
    from warroom.store.shared import SharedIncident

    mirror = tmp_path / "console.shared.jsonl"
    with SharedIncident.open(pg_url, mirror=mirror) as shared:
        for i in range(20):
            shared.append(ev.NoteAdded(text=f"before {i}"))
        pg.restart()
        for i in range(20):
            shared.append(ev.NoteAdded(text=f"after {i}"))
        assert wait_until(lambda: shared.online and shared.status().pending == 0, timeout=10)
        assert wait_until(lambda: shared._follower.last_seq == 40, timeout=10)
    result = verify_url(pg_url)
    assert result.ok and result.count == 40, result.message()
    texts = [e.text for e in read_events(pg_url) if isinstance(e, ev.NoteAdded)]
    expected = [f"{when} {i}" for when in ("before", "after") for i in range(20)]
    assert sorted(texts) == sorted(expected)
    export(pg_url, tmp_path / "export.jsonl")
    assert mirror.read_bytes() == (tmp_path / "export.jsonl").read_bytes()
