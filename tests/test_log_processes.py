"""The log with real processes: concurrent writers share one chain; SIGKILL loses nothing acked."""

from __future__ import annotations

import itertools
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warroom import events as ev
from warroom.log.store import IncidentLog
from warroom.log.verify import verify_log

WRITER = """
import sys
from warroom.events import NoteAdded
from warroom.log.store import IncidentLog

path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = IncidentLog.open(path)
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    log.append(NoteAdded(text=f"{name} {i}", actor=name))
"""

KILLED = """
import os, sys
from warroom.events import NoteAdded, ProbeStateChanged
from warroom.log.store import IncidentLog

log = IncidentLog.open(sys.argv[1])
i = 0
while True:
    if i % 4 == 3:
        batch = [ProbeStateChanged(target=f"t{i}", from_state="up", to_state="down")] * 3
        stamped = log.append_many(batch, sync=False)
    else:
        stamped = [log.append(NoteAdded(text=f"n{i}"))]
    # One write per line: a pipe write this small is atomic, so a kill cannot split it.
    os.write(1, "".join(f"{e.seq}\\n" for e in stamped).encode())
    i += 1
"""


@pytest.mark.slow
def test_two_processes_appending_at_once_leave_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    count = 1000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "bravo")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:  # both open before either writes: each starts from a stale tail
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=60) == 0

    result = verify_log(path)
    assert result.ok, result.message()
    assert result.count == 2 * count
    events = list(IncidentLog.open(path, readonly=True).read())
    for name in ("alpha", "bravo"):
        texts = [e.text for e in events if e.actor == name]  # type: ignore[attr-defined]
        assert texts == [f"{name} {i}" for i in range(count)]
    switches = sum(1 for a, b in itertools.pairwise(events) if a.actor != b.actor)
    assert switches >= 2, "the writers did not overlap; the test proved nothing"


@pytest.mark.slow
def test_sigkill_while_appending_loses_no_acknowledged_event(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    acknowledged: list[int] = []
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.endswith(b"\n"), "the writer never acknowledged an append"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        acknowledged.extend(int(s) for s in (first + rest).split(b"\n") if s)

        # The next writer recovers whatever a kill mid-write left, and the chain holds.
        log = IncidentLog.open(path)
        log.append(ev.NoteAdded(text="after the kill"))
        log.close()
        result = verify_log(path)
        assert result.ok, f"seed {seed}: {result.message()}"

    stored = {e.seq for e in IncidentLog.open(path, readonly=True).read()}
    missing = sorted(set(acknowledged) - stored)
    assert not missing, f"seed {seed}: acknowledged but lost: {missing[:10]}"
    assert len(acknowledged) > 4
