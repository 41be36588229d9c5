"""The incident log store: stamping, the chain, torn tails, followers and group commit."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from warroom import events as ev
from warroom.log import codec
from warroom.log.scan import LogIndex, scan
from warroom.log.store import (
    EventStore,
    GroupCommitter,
    IncidentLog,
    LogError,
    LogFileGone,
    LogFollower,
    now_ts,
    read_events,
)
from warroom.log.verify import verify_log
from warroom.state import fold


def mixed_events(n: int) -> list[ev.BaseEvent]:
    """A plausible incident: declaration, probe changes and samples, notes, a control change."""
    out: list[ev.BaseEvent] = [ev.IncidentOpened(incident_id="inc-7", title="DNS", severity="SEV2")]
    for i in range(n - 1):
        match i % 5:
            case 0:
                out.append(
                    ev.ProbeStateChanged(
                        target="dynamodb",
                        service="dynamodb",
                        from_state="up",
                        to_state="down",
                        reason="NXDOMAIN",
                        latency_ms=12.5,
                    )
                )
            case 1:
                out.append(
                    ev.ProbeSamples(
                        samples=[
                            ev.ProbeSample(target="web", state="up", ok=5, count=5, latency_ms=3.2),
                            ev.ProbeSample(target="db", state="down", ok=0, count=5),
                        ]
                    )
                )
            case 2:
                out.append(ev.NoteAdded(text=f'note {i}: é ✓ "quoted"\nsecond line'))
            case 3:
                out.append(
                    ev.ControlRequested(
                        request_id=f"r{i}",
                        service="ec2-launch",
                        control="rate_limit",
                        from_value=100,
                        to_value=10.5,
                        reason="throttle recovery",
                    )
                )
            case _:
                out.append(ev.StatusSet(status="identified"))
    return out


def test_append_stamps_the_envelope_and_chains_hashes(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    assert isinstance(log, EventStore)
    first = log.append(ev.NoteAdded(text="hello"))
    second = log.append(ev.NoteAdded(text="by bob", actor="bob"))
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev == codec.GENESIS
    assert second.prev == first.hash
    assert first.actor and second.actor == "bob"
    assert first.v == ev.SCHEMA_VERSION
    assert ev.parse_ts(first.ts).tzinfo is not None and first.ts.endswith("Z")
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    for line, stamped in zip(lines, (first, second), strict=True):
        obj = codec.decode(line)
        assert codec.computed_hash(line, obj) == obj["hash"] == stamped.hash
        assert ev.parse_event(obj) == stamped
    assert log.last_seq == 2 and log.head == second.hash


def test_append_keeps_a_given_timestamp_and_uses_the_default_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARROOM_ACTOR", "carol")
    log = IncidentLog.open(tmp_path / "inc.jsonl")
    stamped = log.append(ev.NoteAdded(text="x", ts="2025-10-20T06:48:00.000000Z"))
    assert stamped.ts == "2025-10-20T06:48:00.000000Z"
    assert stamped.actor == "carol"


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    with IncidentLog.open(path) as log:
        log.append_many(mixed_events(10))
        head = log.head
    reopened = IncidentLog.open(path, create=False)
    assert reopened.last_seq == 10 and reopened.head == head and reopened.recovered is None
    assert reopened.append(ev.NoteAdded(text="more")).prev == head
    assert verify_log(path).ok


def test_open_creates_parent_directories_but_not_without_create(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "inc.jsonl"
    with pytest.raises(LogError, match="no such file"):
        IncidentLog.open(path, create=False)
    IncidentLog.open(path).append(ev.NoteAdded(text="x"))
    assert path.exists()


def test_two_writers_in_one_process_continue_the_true_tail(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    a = IncidentLog.open(path)
    b = IncidentLog.open(path)
    for i in range(20):
        (a if i % 3 else b).append(ev.NoteAdded(text=str(i)))
    b.append_many([ev.NoteAdded(text="batch")] * 5)
    a.append(ev.NoteAdded(text="last"))
    result = verify_log(path)
    assert result.ok and result.count == 26


def test_threads_sharing_one_log_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)

    def worker(name: str) -> None:
        for i in range(100):
            log.append_many([ev.ProbeStateChanged(target=name, from_state="up", to_state="down")])
            if i % 10 == 0:
                log.append(ev.NoteAdded(text=f"{name} {i}"))

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify_log(path)
    assert result.ok and result.count == 440


def test_reading_back_and_reducing_gives_the_state_reduced_live(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    live = []
    for event in mixed_events(200):
        live.append(log.append(event))
    live.extend(log.append_many(mixed_events(50), sync=False))
    read_back = list(IncidentLog.open(path, create=False, readonly=True).read())
    assert read_back == live
    assert fold(read_back) == fold(live)
    assert [e.seq for e in log.read(from_seq=240)] == list(range(240, 251))


def test_unknown_kinds_from_a_newer_version_are_kept_in_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append(ev.NoteAdded(text="before"))
    # A line as a newer warroom would write it: an unknown kind with its own fields.
    newer = {
        "v": 2,
        "seq": 2,
        "ts": "2025-10-20T06:48:00.000000Z",
        "actor": "zed@future",
        "kind": "pager_escalated",
        "prev": log.head,
        "policy": "tier-2",
        "attempts": 3,
    }
    line, digest = codec.encode(newer)
    with path.open("ab") as fh:
        fh.write(line)
    reopened = IncidentLog.open(path)
    assert reopened.last_seq == 2 and reopened.head == digest
    reopened.append(ev.NoteAdded(text="after"))
    events = list(reopened.read())
    unknown = events[1]
    assert isinstance(unknown, ev.UnknownEvent)
    assert unknown.kind == "pager_escalated" and unknown.model_extra == {
        "policy": "tier-2",
        "attempts": 3,
    }
    assert "tier-2" in unknown.summary()
    assert events[2].prev == digest
    assert verify_log(path).ok
    # Appending an unknown event (e.g. copied from another log) keeps its fields too.
    copied = reopened.append(unknown)
    assert copied.model_extra == unknown.model_extra and verify_log(path).ok


# -- torn tails ------------------------------------------------------------------------------


def _valid_prefix_and_last_line(tmp_path: Path, n: int = 6) -> tuple[bytes, bytes]:
    path = tmp_path / "source.jsonl"
    # A short last line: every byte offset is tried, and each recovery costs a few fsyncs.
    IncidentLog.open(path).append_many([*mixed_events(n - 1), ev.NoteAdded(text="x", actor="a")])
    data = path.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1
    return data[:cut], data[cut:]


@pytest.mark.slow
def test_a_log_cut_at_every_byte_of_its_last_line_opens_with_the_valid_prefix(
    tmp_path: Path,
) -> None:
    prefix, last = _valid_prefix_and_last_line(tmp_path)
    prefix_events = list(read_events(tmp_path / "source.jsonl"))[:-1]
    path = tmp_path / "inc.jsonl"
    for cut in range(len(last)):  # every length short of the complete line with its newline
        torn = last[:cut]
        path.write_bytes(prefix + torn)

        reader = IncidentLog.open(path, create=False, readonly=True)
        assert list(reader.read()) == prefix_events
        assert path.read_bytes() == prefix + torn, "a read-only open must not modify the file"
        if cut == 0:
            assert reader.recovered is None
            continue
        assert reader.recovered is not None and reader.recovered.side_file is None
        assert not verify_log(path).ok

        log = IncidentLog.open(path)
        recovered = log.recovered
        assert recovered is not None and recovered.line == len(prefix_events) + 1
        assert recovered.side_file and Path(recovered.side_file).read_bytes() == torn
        assert path.read_bytes() == prefix
        assert log.last_seq == len(prefix_events)
        after = ev.ProbeStateChanged(target="web", from_state="down", to_state="up")
        assert log.append(after).seq == len(prefix_events) + 1
        result = verify_log(path)
        assert result.ok and result.count == len(prefix_events) + 1
        # Reported once: the next open finds a clean file.
        assert IncidentLog.open(path).recovered is None


@pytest.mark.parametrize(
    "garbage",
    [b"\0" * 300, b"\0" * 120 + b"\n", b'\0\0\0\0"}\n', b'{"actor":"x","kind":"note_a\n'],
    ids=["zeros", "zeros-newline", "half-page", "cut-with-newline"],
)
def test_a_zero_filled_or_unparseable_last_line_is_set_aside(
    tmp_path: Path, garbage: bytes
) -> None:
    prefix, last = _valid_prefix_and_last_line(tmp_path)
    path = tmp_path / "inc.jsonl"
    path.write_bytes(prefix + last + garbage)
    log = IncidentLog.open(path)
    assert log.recovered is not None and log.recovered.line == 7
    assert Path(log.recovered.side_file or "").read_bytes() == garbage
    assert log.last_seq == 6
    log.append(ev.NoteAdded(text="x"))
    assert verify_log(path).ok


def test_a_torn_line_left_by_another_writer_is_set_aside_on_the_next_append(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append_many(mixed_events(3))
    with path.open("ab") as fh:
        fh.write(b'{"actor":"crashed-writer","ki')
    stamped = log.append(ev.NoteAdded(text="still chained"))
    assert stamped.seq == 4
    assert log.recovered is not None and log.recovered.side_file
    assert verify_log(path).ok


# -- bad files -------------------------------------------------------------------------------


def test_files_that_are_not_incident_logs_are_refused_without_change(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"name": "a", "value": 1}\n{"name": "b"}\n')
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    text = tmp_path / "notes.txt"
    text.write_bytes(b"hello\n")
    for path in (other, binary, text):
        before = path.read_bytes()
        with pytest.raises(LogError, match=rf"{path.name}:1: not a warroom incident log"):
            IncidentLog.open(path)
        assert path.read_bytes() == before
        assert list(tmp_path.glob(f"{path.name}.torn-*")) == []
    with pytest.raises(LogError, match="is a directory"):
        IncidentLog.open(tmp_path)


def test_a_bad_line_in_the_middle_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append_many(mixed_events(5))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:2], b"not json\n", *lines[2:]]))
    with pytest.raises(LogError, match=r"inc.jsonl:3: not JSON"):
        list(read_events(path))
    wrong_type = lines[2].replace(b'"samples":[', b'"samples":5,"x":[')
    path.write_bytes(b"".join([*lines[:2], wrong_type, *lines[3:]]))
    with pytest.raises(LogError, match=r"inc.jsonl:3: probe_samples: field 'samples'"):
        list(read_events(path))


# -- scan and index --------------------------------------------------------------------------


def test_scan_and_index_give_offsets_of_every_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append_many(mixed_events(30))
    data = path.read_bytes()
    records = list(scan(path))
    assert [r.seq for r in records] == list(range(1, 31))
    assert all(data[r.offset : r.offset + 1] == b"{" for r in records)
    index = LogIndex.build(path)
    assert list(index.offsets) == [r.offset for r in records]
    assert index.end == len(data)
    assert index.data(9)["seq"] == 10
    assert index.line_bytes(29).endswith(b"}\n")
    with path.open("ab") as fh:
        fh.write(b'{"partial')
    log2 = IncidentLog.open(path, readonly=True)
    assert log2.recovered is not None
    assert index.extend() == 0
    IncidentLog.open(path).append(ev.NoteAdded(text="x"))
    assert index.extend() == 1 and index.data(30)["seq"] == 31


# -- following -------------------------------------------------------------------------------


def test_follower_sees_only_complete_lines_as_they_arrive(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    follower = LogFollower(path)
    assert follower.poll() == []  # no file yet
    log = IncidentLog.open(path)
    log.append_many(mixed_events(3))
    assert [e.seq for e in follower.poll()] == [1, 2, 3]
    assert follower.poll() == []
    line, _ = codec.encode(
        {
            "v": 1,
            "seq": 4,
            "ts": "2025-10-20T06:48:00.000000Z",
            "actor": "a",
            "kind": "note_added",
            "text": "split write",
            "prev": log.head,
        }
    )
    with path.open("ab") as fh:
        fh.write(line[:20])
        fh.flush()
        assert follower.poll() == []
        fh.write(line[20:])
    assert [e.seq for e in follower.poll()] == [4]
    assert [e.seq for e in LogFollower(path, from_seq=3).poll()] == [3, 4]


def test_follower_waits_on_an_unparseable_last_line_and_survives_its_removal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append_many(mixed_events(2))
    follower = LogFollower(path)
    assert len(follower.poll()) == 2
    with path.open("ab") as fh:
        fh.write(b"\0\0\0\0\n")
    assert follower.poll() == []
    # The writer sets the torn line aside and continues; the follower picks up cleanly.
    log2 = IncidentLog.open(path)
    assert log2.recovered is not None
    log2.append(ev.NoteAdded(text="after"))
    assert [e.seq for e in follower.poll()] == [3]


async def test_async_follow_yields_events_appended_later(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append(ev.NoteAdded(text="first"))
    seen: list[int] = []

    async def consume() -> None:
        async for event in log.follow(interval=0.01):
            seen.append(event.seq)
            if len(seen) == 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    log.append(ev.NoteAdded(text="second"))
    log.append(ev.NoteAdded(text="third"))
    await asyncio.wait_for(task, timeout=5)
    assert seen == [1, 2, 3]


# -- group commit ----------------------------------------------------------------------------


def test_group_committer_batches_and_reports_stamped_events_in_order(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    batches: list[list[ev.BaseEvent]] = []
    committer = GroupCommitter(log, interval=0.02, on_committed=batches.append)
    with committer:
        for i in range(500):
            committer.submit(ev.ProbeStateChanged(target=f"t{i}", from_state="up", to_state="down"))
    committed = [e for batch in batches for e in batch]
    assert [e.seq for e in committed] == list(range(1, 501))
    assert [e.target for e in committed] == [f"t{i}" for i in range(500)]  # type: ignore[attr-defined]
    assert all(e.ts for e in committed)
    assert committer.pending == 0
    assert list(log.read()) == committed
    assert verify_log(path).ok


async def test_group_committer_runs_in_an_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    seen: list[int] = []
    committer = GroupCommitter(
        log, interval=0.01, on_committed=lambda b: seen.extend(e.seq for e in b)
    )
    task = asyncio.create_task(committer.run())
    for i in range(50):
        committer.submit(ev.StepVerified(runbook="r", step=str(i), condition="c", holds=True))
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    committer.submit(ev.StepVerified(runbook="r", step="last", condition="c", holds=True))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == list(range(1, 52))


async def test_group_committer_as_an_async_context_writes_everything_by_the_end(
    tmp_path: Path,
) -> None:
    log = IncidentLog.open(tmp_path / "inc.jsonl")
    async with GroupCommitter(log, interval=10.0) as committer:  # no flush on its own in time
        for i in range(20):
            committer.submit(ev.ProbeStateChanged(target=f"t{i}", from_state="up", to_state="down"))
        assert list(log.read()) == []
    assert [e.target for e in log.read()] == [f"t{i}" for i in range(20)]  # type: ignore[attr-defined]


async def test_group_committer_context_raises_when_events_could_not_be_written(
    tmp_path: Path,
) -> None:
    log = IncidentLog.open(tmp_path / "inc.jsonl")
    with pytest.raises(LogError):
        async with GroupCommitter(log, interval=10.0) as committer:
            committer.submit(ev.NoteAdded(text="lost?"))
            log.close()
    assert committer.pending == 1  # kept queued, not dropped


async def test_cancelling_the_committer_mid_flush_still_reports_every_logged_event(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    seen: list[int] = []
    for attempt in range(8):
        committer = GroupCommitter(
            log, interval=0.005, on_committed=lambda b: seen.extend(e.seq for e in b)
        )
        task = asyncio.create_task(committer.run())
        for i in range(300):
            committer.submit(ev.ProbeStateChanged(target=f"t{i}", from_state="up", to_state="down"))
            if i % 50 == 0:
                await asyncio.sleep(0.001 * attempt)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen == list(range(1, 8 * 300 + 1))
    assert [e.seq for e in log.read()] == seen


def test_readonly_log_refuses_to_append(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append(ev.NoteAdded(text="x"))
    with pytest.raises(LogError, match="read-only"):
        IncidentLog.open(path, readonly=True).append(ev.NoteAdded(text="y"))
    assert os.path.getsize(path) > 0


def test_fast_timestamps_match_the_event_format() -> None:
    before = ev.utc_now()
    stamp = now_ts()
    after = ev.utc_now()
    assert len(stamp) == len(ev.format_ts(before)) and stamp.endswith("Z")
    assert before - timedelta(microseconds=1) <= ev.parse_ts(stamp) <= after


def test_a_failing_callback_does_not_stop_the_committer_thread(tmp_path: Path) -> None:
    log = IncidentLog.open(tmp_path / "inc.jsonl")
    calls: list[int] = []

    def flaky(batch: list[ev.BaseEvent]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("widget gone")

    committer = GroupCommitter(log, interval=0.01, on_committed=flaky).start()
    committer.submit(ev.ProbeStateChanged(target="a", from_state="up", to_state="down"))
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    committer.submit(ev.ProbeStateChanged(target="b", from_state="down", to_state="up"))
    committer.close()
    assert isinstance(committer.callback_error, RuntimeError)
    assert sum(calls) == 2 and log.last_seq == 2


def test_readers_given_on_bad_skip_a_junk_line_and_read_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append_many([ev.NoteAdded(text=f"n{i}") for i in range(6)])
    lines = path.read_bytes().splitlines(keepends=True)
    wrong_type = lines[4].replace(b'"text":"', b'"text":5,"x":"')
    path.write_bytes(b"".join([*lines[:2], b"not json\n", *lines[2:4], wrong_type, *lines[5:]]))
    problems: list[str] = []
    events = list(read_events(path, on_bad=lambda e: problems.append(str(e))))
    assert [e.seq for e in events] == [1, 2, 3, 4, 6]
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:3", f"{path}:6"]
    follower = LogFollower(path, on_bad=lambda e: problems.append(str(e)))
    assert [e.seq for e in follower.poll()] == [1, 2, 3, 4, 6]
    assert len(problems) == 4


# -- nothing acknowledged that is not on disk --------------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "replaced", "moved"])
def test_an_append_to_a_log_no_longer_at_its_path_is_refused(tmp_path: Path, how: str) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append(ev.NoteAdded(text="kept"))
    if how == "deleted":
        path.unlink()
    elif how == "moved":
        path.rename(tmp_path / "elsewhere.jsonl")
    else:
        other = tmp_path / "new.jsonl"
        IncidentLog.open(other).append(ev.NoteAdded(text="someone else's"))
        other.replace(path)
    before = path.read_bytes() if path.exists() else None
    what = "deleted" if how != "replaced" else "replaced by another file"
    for _ in range(2):
        with pytest.raises(LogFileGone, match=f"inc.jsonl: the log file was {what} after it"):
            log.append(ev.NoteAdded(text="would be lost"))
    with pytest.raises(LogFileGone, match="nothing since seq 1 is recorded"):
        log.append_many([ev.NoteAdded(text="batch")])
    assert (path.read_bytes() if path.exists() else None) == before
    committer = GroupCommitter(log)
    committer.submit(ev.NoteAdded(text="queued"))
    with pytest.raises(LogFileGone):
        committer.flush()
    assert committer.pending == 1 and isinstance(committer.error, LogFileGone)


_FULL_DISK = """
import resource, signal, sys
from warroom import events as ev
from warroom.log.store import IncidentLog, LogError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
log = IncidentLog.open(sys.argv[1])
size = log._size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, resource.RLIM_INFINITY))
failures = 0
for _ in range(20):
    try:
        log.append(ev.NoteAdded(text="x" * 5000))
    except LogError:
        failures += 1
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print(failures, log.append(ev.NoteAdded(text="after")).seq)
"""


def test_a_full_disk_leaves_no_torn_tail_and_no_side_files_however_often_retried(
    tmp_path: Path,
) -> None:
    """RLIMIT_FSIZE makes the kernel cut writes short, as a full disk does."""
    import subprocess
    import sys

    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append_many(mixed_events(3))
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["20", "4"]
    assert list(tmp_path.glob("*.torn-*")) == []
    result = verify_log(path)
    assert result.ok and result.count == 4


def test_a_log_whose_first_line_is_over_16_mb_opens_again(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    big = "x" * (17 * 1024 * 1024)
    with IncidentLog.open(path) as log:
        log.append(ev.NoteAdded(text=big))
    assert verify_log(path).ok
    with IncidentLog.open(path) as log:
        assert log.append(ev.NoteAdded(text="next")).seq == 2
    assert [len(getattr(e, "text", "")) for e in read_events(path)] == [len(big), 4]
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"A" * (1 << 20))
    with pytest.raises(LogError, match="no line break in 64 KB"):
        IncidentLog.open(junk)
