"""Incident-log benchmark: fsynced append latency, group-commit rate, open + verify of 1M events.

Prints one JSON line. Targets: p99 fsynced append < 10 ms, >= 50,000 group-committed events/s,
open + verify of 1,000,000 events < 5 s using < 300 MB. Memory is the ru_maxrss delta of a
fresh child process that only opens and verifies (so generating the log does not count).

    .venv/bin/python tests/bench/bench_log.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from warroom import events as ev
from warroom.log import codec
from warroom.log.scan import LogIndex
from warroom.log.store import GroupCommitter, IncidentLog
from warroom.log.verify import PARALLEL_MIN_BYTES, available_cores


def fsynced_append_latency(path: Path, count: int = 500) -> tuple[float, float]:
    log = IncidentLog.open(path)
    samples = []
    for i in range(count):
        note = ev.NoteAdded(text=f"checked the DynamoDB endpoint record, attempt {i}")
        start = time.perf_counter()
        log.append(note)
        samples.append((time.perf_counter() - start) * 1000)
    log.close()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def machine_event(i: int) -> ev.BaseEvent:
    if i % 2:
        return ev.ProbeStateChanged(
            target=f"svc-{i % 40}",
            service=f"svc-{i % 40}",
            from_state="up",
            to_state="degraded",
            reason="latency 412 ms > 250 ms",
            latency_ms=412.0,
        )
    return ev.ProbeSamples(
        samples=[
            ev.ProbeSample(target=f"svc-{i % 40}", state="up", ok=10, count=10, latency_ms=3.1)
        ]
    )


def group_commit_rate(path: Path, count: int = 100_000, batch: int = 1) -> tuple[float, float]:
    """Events/s from the first submit until the last one is committed (fsync per flush), by
    wall clock and by CPU time of this process (less sensitive to other load on the machine).

    The producer submits from a pool of 1,000 prebuilt events (building a pydantic event is
    the producer's cost, not the log's); committed events are dropped by the callback, as a
    console does after reducing them. `batch` > 1 submits that many at once with
    `submit_many`, as the probe engine does with the results of one round.
    """
    log = IncidentLog.open(path)
    pool = [machine_event(i) for i in range(1000)]
    committed = 0

    def on_committed(batch: list[ev.BaseEvent]) -> None:
        nonlocal committed
        committed += len(batch)

    committer = GroupCommitter(log, interval=0.1, on_committed=on_committed)
    start, cpu_start = time.perf_counter(), time.process_time()
    with committer:
        if batch > 1:
            for i in range(0, count, batch):
                committer.submit_many(pool[i % 1000 : i % 1000 + batch])
        else:
            for i in range(count):
                committer.submit(pool[i % 1000])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    assert committed == count, (committed, count)
    log.close()
    return count / elapsed, count / cpu


def generate_log(path: Path, count: int) -> None:
    """Write `count` realistic mixed events quickly: encoded straight from dicts (the same
    `codec.encode` lines the store writes), skipping pydantic, in 8 MB writes.

    The mix is what a long incident's log is mostly made of: probe samples and state changes,
    the simulator's feed, and some notes and control changes.
    """
    templates: list[tuple[int, ev.BaseEvent]] = [
        (
            4,
            ev.ProbeSamples(
                samples=[
                    ev.ProbeSample(target="checkout", state="up", ok=10, count=10, latency_ms=41.5)
                ]
            ),
        ),
        (
            2,
            ev.ProbeStateChanged(
                target="dynamodb-dns", from_state="up", to_state="down", reason="NXDOMAIN"
            ),
        ),
        (2, ev.ScenarioEvent(sim_seq=1, sim_time=660.0, service="ec2", title="x")),
        (1, ev.NoteAdded(text="DNS record for the regional endpoint is empty")),
        (
            1,
            ev.ControlApplied(
                request_id="r-1", service="ec2-launch", control="rate_limit", value=50
            ),
        ),
    ]
    dicts = []
    for weight, template in templates:
        d = template.model_dump(mode="json")
        del d["hash"]
        d["actor"] = "alice@bastion"
        dicts.extend([d] * weight)
    prev = codec.GENESIS
    base = time.time()
    chunk: list[bytes] = []
    size = 0
    with path.open("wb") as fh:
        for seq in range(1, count + 1):
            d = dict(dicts[seq % len(dicts)])
            d["seq"] = seq
            d["prev"] = prev
            d["ts"] = ev.format_ts(ev.datetime.fromtimestamp(base + seq * 0.01, ev.UTC))
            if d["kind"] == "scenario_event":
                d["sim_seq"] = seq
                d["title"] = f"EC2 launch backlog at {seq % 9000} requests"
            line, prev = codec.encode(d)
            chunk.append(line)
            size += len(line)
            if size > 8 << 20:
                fh.write(b"".join(chunk))
                chunk, size = [], 0
        fh.write(b"".join(chunk))


OPEN_AND_VERIFY = """
import json, resource, sys, time
from warroom.log.store import IncidentLog
from warroom.log.verify import verify_log

def vm(field):
    # /proc: ru_maxrss survives exec, so it would report the parent's peak.
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024

before = vm("VmRSS")
start, cpu = time.perf_counter(), time.process_time()
log = IncidentLog.open(sys.argv[1], create=False)
result = verify_log(sys.argv[1])
elapsed = time.perf_counter() - start
cpu = time.process_time() - cpu
children = resource.getrusage(resource.RUSAGE_CHILDREN)
assert result.ok and result.count == log.last_seq, result.message()
children_cpu = children.ru_utime + children.ru_stime
print(json.dumps({"s": elapsed, "cpu_s": cpu, "children_cpu_s": children_cpu,
                  "peak_mb": vm("VmHWM"), "before_mb": before,
                  "worker_peak_mb": children.ru_maxrss / 1024}))
"""


def open_and_verify(path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", OPEN_AND_VERIFY, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def python_speed() -> float:
    """Seconds for a fixed pure-Python loop: a yardstick to compare runs across machines and
    load (about 0.4 s on an idle current desktop core)."""
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_log_", dir=os.environ.get("BENCH_DIR")) as d:
        tmp = Path(d)
        yardstick = python_speed()
        p50, p99 = fsynced_append_latency(tmp / "fsync.jsonl")
        rate, cpu_rate = group_commit_rate(tmp / "group.jsonl")
        batch_rate, _ = group_commit_rate(tmp / "group-batched.jsonl", batch=100)
        big = tmp / "big.jsonl"
        start = time.perf_counter()
        generate_log(big, args.events)
        generated_s = time.perf_counter() - start
        verified = open_and_verify(big)
        workers = min(available_cores(), 4) if big.stat().st_size >= PARALLEL_MIN_BYTES else 1
        start = time.perf_counter()
        index = LogIndex.build(big)
        index_s = time.perf_counter() - start
        assert len(index) == args.events
        size = big.stat().st_size
    print(
        json.dumps(
            {
                "fsync_append_p50_ms": round(p50, 3),
                "fsync_append_p99_ms": round(p99, 3),
                "group_commit_events_per_s": round(rate),
                "group_commit_events_per_cpu_s": round(cpu_rate),
                "group_commit_batched_events_per_s": round(batch_rate),
                "events": args.events,
                "log_mb": round(size / 2**20, 1),
                "avg_line_bytes": round(size / args.events),
                "open_verify_s": round(verified["s"], 2),
                "open_verify_cpu_s": round(verified["cpu_s"] + verified["children_cpu_s"], 2),
                "open_verify_workers": workers,
                "open_verify_peak_mb": round(verified["peak_mb"], 1),
                "open_verify_rss_before_mb": round(verified["before_mb"], 1),
                "open_verify_worker_peak_mb": round(verified["worker_peak_mb"], 1),
                "memory_method": "VmHWM (peak RSS) of a fresh process that opens and verifies, "
                "imports included; worker_peak is the largest rangecheck subprocess (ru_maxrss, "
                "which on Linux may include the RSS inherited at spawn)",
                "index_build_s": round(index_s, 2),
                "generate_s": round(generated_s, 1),
                "python_loop_10m_s": round(yardstick, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
