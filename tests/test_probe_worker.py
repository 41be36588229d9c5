"""The probe worker sharding its targets over several processes that write to one log."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from probe_servers import responder, serve
from processes import alive

from warroom import events as ev
from warroom.config import WarroomConfig, parse_config
from warroom.log.store import IncidentLog, read_events
from warroom.probe.worker import default_shards, parse_shard, shard_of


def config(url: str, count: int) -> WarroomConfig:
    return parse_config(
        {
            "defaults": {"interval": "100ms", "timeout": "500ms"},
            "targets": [{"name": f"t{i}", "http": url} for i in range(count)],
        }
    )


def test_default_is_one_shard_per_core_as_far_as_the_probe_rate_needs() -> None:
    small = config("http://127.0.0.1:1/", 100).resolved_targets()  # 1,000 probes/s
    big = config("http://127.0.0.1:1/", 500).resolved_targets()  # 5,000 probes/s
    assert default_shards(small, cores=8) == 1
    assert default_shards(big, cores=2) == 2
    assert default_shards(big, cores=64) == 5
    assert default_shards([], cores=4) == 1
    parts = [shard_of(big, i, 3) for i in range(3)]
    assert [len(p) for p in parts] == [167, 167, 166]
    assert sorted(t.name for p in parts for t in p) == sorted(t.name for t in big)


def test_shard_argument_is_one_based() -> None:
    assert parse_shard("1/2") == (0, 2)
    assert parse_shard("2/2") == (1, 2)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected I/N"):
            parse_shard(bad)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.split(") ")[1].split()[1]) == pid and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


async def start_worker(log: Path, config: WarroomConfig, *args: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "warroom.probe.worker",
        "--log",
        str(log),
        "--sample-interval",
        "0.3",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(config.model_dump_json().encode() + b"\n")
    await process.stdin.drain()
    return process


async def wait_for_health(log: Path, shards: set[int], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            seen = {e.shard for e in read_events(log) if isinstance(e, ev.ProbeEngineHealth)}
            if seen >= shards:
                return
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_two_shards_share_the_targets_and_one_log(tmp_path: Path) -> None:
    log = tmp_path / "i.jsonl"
    IncidentLog.open(log, create=True).close()
    async with serve(responder(200, b"ok")) as server:
        worker = await start_worker(log, config(server.url, 10), "--shards", "2")
        await wait_for_health(log, {0, 1})
        [shard] = children(worker.pid)
        assert worker.stdin is not None
        worker.stdin.close()  # the lifeline: closing it ends every shard
        async with asyncio.timeout(10):
            code = await worker.wait()
            assert worker.stderr is not None
            err = await worker.stderr.read()
    assert (code, err) == (0, b"")
    assert not alive(shard)
    events = list(read_events(log))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    healths = [e for e in events if isinstance(e, ev.ProbeEngineHealth)]
    assert {(h.shard, h.shards, h.targets) for h in healths} == {(0, 2, 5), (1, 2, 5)}
    by_batch = [
        frozenset(s.target for s in e.samples) for e in events if isinstance(e, ev.ProbeSamples)
    ]
    assert {len(batch) for batch in by_batch} == {5}  # each shard reports its own half
    assert frozenset().union(*by_batch) == {f"t{i}" for i in range(10)}
    ups = {e.target for e in events if isinstance(e, ev.ProbeStateChanged) and e.to_state == "up"}
    assert ups == {f"t{i}" for i in range(10)}


@pytest.mark.slow
async def test_a_dead_shard_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    log = tmp_path / "i.jsonl"
    IncidentLog.open(log, create=True).close()
    async with serve(responder(200, b"ok")) as server:
        worker = await start_worker(log, config(server.url, 4), "--shards", "2")
        await wait_for_health(log, {0, 1})
        [shard] = children(worker.pid)
        os.kill(shard, signal.SIGKILL)
        async with asyncio.timeout(10):
            code = await worker.wait()
            assert worker.stderr is not None
            err = (await worker.stderr.read()).decode()
    assert code == 2
    assert err == "warroom: probe shard 2/2 exited (-9)\n"


@pytest.mark.slow
async def test_bad_shard_count_is_one_line(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "warroom.probe.worker",
        "--log",
        str(tmp_path / "i.jsonl"),
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "WARROOM_PROBE_SHARDS": "many"},
    )
    _, err = await process.communicate()
    assert (process.returncode, err) == (
        2,
        b"warroom: WARROOM_PROBE_SHARDS must be a whole number of at least 1\n",
    )
