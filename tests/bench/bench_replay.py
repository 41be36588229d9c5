"""Benchmark: replay and report on a 1,000,000-event incident log.

Run `.venv/bin/python tests/bench/bench_replay.py [--events N] [--keep PATH]`; prints one
JSON line. Targets (issue 7): first frame of `warroom replay` under 2 s, any seek under
100 ms, peak memory under 500 MB, `warroom report` under 10 s.

The log is generated first (a valid hash chain, realistic mix: mostly probe samples, some
state changes, scenario events and a few thousand operator actions). Each measurement runs
in a fresh subprocess so its peak RSS (which includes the mmap'd pages it touched) is its
own. `first_frame_s` counts from the measuring process's start (imports included: what a user
waits for after typing the command); `indexed_s` is when the position bar knows N. Seeks are
measured after the background checkpoint build has finished (its duration is `checkpoints_s`);
`near_start_seek_ms` is a seek right after opening, before any checkpoint is built.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: Before warroom and Textual are imported (stdlib imports above cost a few ms).
PROCESS_START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from warroom import events as ev  # noqa: E402
from warroom.log import codec  # noqa: E402

TARGETS = ["dynamodb", "dynamodb-dns", "dwfm", "ec2-launch", "nlb", "lambda", "sts", "checkout"]
STATES = ["up", "degraded", "down"]
START = datetime(2025, 10, 20, 6, 48, tzinfo=UTC)


def generate(path: Path, count: int, seed: int = 7) -> None:
    """Write `count` chained events: per 0.5 s a 2-target ProbeSamples, plus the rest."""
    rng = random.Random(seed)
    state = dict.fromkeys(TARGETS, "up")
    prev = codec.GENESIS
    t = START
    chunk: list[bytes] = []
    with path.open("wb") as out:
        for seq in range(1, count + 1):
            t += timedelta(milliseconds=500)
            base = {"v": 1, "seq": seq, "ts": ev.format_ts(t), "prev": prev}
            roll = rng.random()
            if roll < 0.0005:
                data = {
                    **base,
                    "actor": "sim",
                    "kind": "scenario_event",
                    "sim_seq": seq,
                    "sim_time": float(seq),
                    "scenario": "aws-us-east-1-2025",
                    "service": rng.choice(TARGETS),
                    "title": "fault injected",
                }
            elif roll < 0.0025:
                data = {**base, "actor": "alice@bench", **_operator(rng, seq)}
            elif roll < 0.0225:
                target = rng.choice(TARGETS)
                to = rng.choice([s for s in STATES if s != state[target]])
                data = {
                    **base,
                    "actor": "alice@bench",
                    "kind": "probe_state_changed",
                    "target": target,
                    "service": target,
                    "from_state": state[target],
                    "to_state": to,
                    "reason": "bench",
                    "latency_ms": None,
                }
                state[target] = to
            else:
                pair = rng.sample(TARGETS, 2)
                data = {
                    **base,
                    "actor": "alice@bench",
                    "kind": "probe_samples",
                    "samples": [
                        {
                            "target": name,
                            "state": state[name],
                            "ok": 3,
                            "count": 3,
                            "latency_ms": round(rng.uniform(5, 400), 1),
                        }
                        for name in pair
                    ],
                }
            line, prev = codec.encode(data)
            chunk.append(line)
            if len(chunk) >= 10000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


def _operator(rng: random.Random, seq: int) -> dict[str, object]:
    roll = rng.random()
    if seq < 10:
        return {"kind": "incident_opened", "incident_id": "bench", "title": "bench incident"}
    if roll < 0.4:
        return {"kind": "note_added", "text": f"note {seq}"}
    if roll < 0.5:
        return {"kind": "bookmark_added", "label": f"mark {seq}"}
    if roll < 0.8:
        return {
            "kind": "step_set",
            "runbook": "rb",
            "step": f"s{seq % 12}",
            "status": rng.choice(["done", "skipped", "pending"]),
            "note": "",
        }
    return {
        "kind": "control_requested",
        "request_id": f"r{seq % 300}",
        "service": rng.choice(TARGETS),
        "control": "rate_limit",
        "from_value": None,
        "to_value": rng.randint(1, 100),
        "reason": "bench",
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_replay(path: Path) -> dict[str, object]:
    """(subprocess) Open the replay app, time its first frame, build checkpoints, seek."""
    import asyncio

    from warroom.replay.cursor import ReplayCursor
    from warroom.replay.source import ReplaySource
    from warroom.tui.screens.replay import ReplayApp

    figures: dict[str, object] = {}

    figures["import_s"] = round(time.perf_counter() - PROCESS_START, 3)

    async def first_frame() -> None:
        app = ReplayApp(path, verify=False)
        async with app.run_test(size=(140, 42)) as pilot:
            # run_test returns once the first screen is mounted and painted.
            figures["first_frame_s"] = round(time.perf_counter() - PROCESS_START, 3)
            screen = app.replay_screen
            while not screen.indexed:
                await pilot.pause(0.01)
            figures["indexed_s"] = round(time.perf_counter() - PROCESS_START, 3)
            figures["events"] = len(screen.cursor)
            screen._stopping = True  # stop the background build; it is measured below
        await asyncio.sleep(0)

    asyncio.run(first_frame())

    started = time.perf_counter()
    source = ReplaySource(path)
    figures["index_s"] = round(time.perf_counter() - started, 3)

    cold = ReplayCursor(source)
    rng = random.Random(1)
    started = time.perf_counter()
    cold.seek(rng.randrange(len(source)) % (cold.every * 4))  # near the start: no build yet
    figures["near_start_seek_ms"] = round((time.perf_counter() - started) * 1000, 1)

    cursor = ReplayCursor(source)
    started = time.perf_counter()
    cursor.build_checkpoints()
    figures["checkpoints_s"] = round(time.perf_counter() - started, 2)
    figures["checkpoints"] = cursor.checkpoint_count

    timings = []
    for _ in range(200):
        target = rng.randrange(len(source) + 1)
        started = time.perf_counter()
        cursor.seek(target)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    figures["seek_ms_p50"] = round(timings[len(timings) // 2], 1)
    figures["seek_ms_max"] = round(timings[-1], 1)

    started = time.perf_counter()
    cursor.seek_fraction(0.5)
    cursor.seek_time(ev.format_ts(START + timedelta(hours=30)))
    figures["seek_time_ms"] = round((time.perf_counter() - started) * 1000, 1)
    started = time.perf_counter()
    for _ in range(20):
        cursor.next_action()
    figures["next_action_ms"] = round((time.perf_counter() - started) * 1000 / 20, 1)
    figures["replay_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    source.close()
    return figures


def measure_report(path: Path) -> dict[str, object]:
    """(subprocess) Time `warroom report` end to end (chain check included)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "warroom", "report", str(path), "-o", os.devnull],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"report failed: {done.stderr.strip()}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "report_s": round(elapsed, 2),
        # CPU of the report and its forked chain check together (wall time is noisy here).
        "report_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "report_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def _child(kind: str, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--keep", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="PATH", help="use/keep the generated log at PATH")
    parser.add_argument("--child", choices=["replay", "report"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        path = Path(args.keep)
        figures = measure_replay(path) if args.child == "replay" else measure_report(path)
        print(json.dumps(figures))
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "bench.jsonl"
        figures: dict[str, object] = {"bench": "replay"}
        if not path.exists():
            started = time.perf_counter()
            generate(path, args.events)
            figures["generate_s"] = round(time.perf_counter() - started, 1)
        figures["log_mb"] = round(path.stat().st_size / 1e6, 1)
        figures.update(_child("replay", path))
        figures.update(_child("report", path))
        figures["ok"] = bool(
            figures["first_frame_s"] < 2.0  # type: ignore[operator]
            and figures["seek_ms_max"] < 100  # type: ignore[operator]
            and figures["replay_peak_rss_mb"] < 500  # type: ignore[operator]
            and figures["report_s"] < 10  # type: ignore[operator]
        )
        figures["cpus_shared"] = os.cpu_count()
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
