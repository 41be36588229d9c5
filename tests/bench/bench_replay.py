"""Benchmark: report and replay on 1,000,000-event incident logs of three shapes.

Run `.venv/bin/python tests/bench/bench_replay.py [--events N] [--shape probes|notes|mix|all]
[--keep DIR] [--tui] [--only replay|report]`; prints one JSON line. Targets (issues 7 and 15),
for every shape: `warroom report` under 10 s and 300 MB, replay's first frame under 2 s, any
seek under 100 ms, replay under 500 MB.

Shapes (each a valid hash chain, in time order):
- `probes`: mostly 2-target probe samples every 0.5 s, some state changes and actions;
- `notes`: mostly notes from 7 responders (the shape that has no fast path);
- `mix`: a 15-hour outage over 1,000 targets in 100 services: all-target probe samples every
  10 s, state changes, runbook verifications, notes, levers and their effects, the simulator.

Each measurement runs in a fresh subprocess so its peak RSS (which includes the mmap'd pages
it touched) is its own. Replay is measured at the cursor/source level: `first_frame_s` counts
from the measuring process's start (imports included) to the state at the first position
shown, `indexed_s` to when the position bar knows N; seeks are measured after the background
checkpoint build (`checkpoints_s`). Each time has a CPU twin (`*_cpu_*`; the report's counts
its forked chain check too, and `report_own_cpu_s` / `report_check_cpu_s` split the two), and
`ok_cpu` judges the targets on those. `--tui` also times the
replay screen's first paint.
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


class _Writer:
    """Chains and writes event dicts (seq, ts and prev filled in), in large blocks."""

    def __init__(self, path: Path) -> None:
        self.out = path.open("wb")
        self.prev = codec.GENESIS
        self.seq = 0
        self.chunk: list[bytes] = []

    def add(self, t: datetime, actor: str, data: dict[str, object]) -> None:
        self.seq += 1
        line, self.prev = codec.encode(
            {
                "v": 1,
                "seq": self.seq,
                "ts": ev.format_ts(t),
                "actor": actor,
                "prev": self.prev,
                **data,
            }
        )
        self.chunk.append(line)
        if len(self.chunk) >= 5000:
            self.flush()

    def flush(self) -> None:
        self.out.write(b"".join(self.chunk))
        self.chunk.clear()

    def close(self) -> None:
        self.flush()
        self.out.close()


RESPONDERS = [f"{name}@oncall" for name in ("ana", "ben", "chloe", "dev", "eli", "fay", "gus")]
WORDS = [
    "checked",
    "the",
    "endpoint",
    "record",
    "again",
    "resolvers",
    "disagree",
    "rollback",
    "pending",
    "dns",
    "team",
    "says",
    "lock",
    "held",
    "latency",
    "climbing",
    "shed",
    "load",
    "on",
    "web",
    "tier",
    "capacity",
    "hypothesis",
    "cache",
    "stampede",
    "retry",
]


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def generate_notes(path: Path, count: int, seed: int = 11) -> None:
    """Mostly notes (95%) from 7 responders, with a little of everything else."""
    rng = random.Random(seed)
    targets = [f"t{i}" for i in range(20)]
    state = dict.fromkeys(targets, "up")
    w = _Writer(path)
    t = START
    w.add(t, RESPONDERS[0], {"kind": "incident_opened", "incident_id": "notes", "title": "notes"})
    for target in targets:
        w.add(t, "probe", _change(target, target, "unknown", "up"))
    while w.seq < count:
        t += timedelta(milliseconds=200)
        roll = rng.random()
        who = rng.choice(RESPONDERS)
        if roll < 0.95:
            w.add(t, who, {"kind": "note_added", "text": _text(rng, 6, 30)})
        elif roll < 0.98:
            target = rng.choice(targets)
            to = rng.choice([x for x in STATES if x != state[target]])
            w.add(t, "probe", _change(target, target, state[target], to))
            state[target] = to
        elif roll < 0.99:
            w.add(t, "probe", _samples(rng, targets, state))
        elif roll < 0.995:
            w.add(t, who, {"kind": "bookmark_added", "label": _text(rng, 2, 5)})
        elif roll < 0.998:
            w.add(t, who, {"kind": "status_update_posted", "conditions": _text(rng, 5, 15)})
        else:
            w.add(t, who, {"kind": "task_added", "text": _text(rng, 4, 10), "owner": who})
    w.close()


def generate_mix(path: Path, count: int, seed: int = 13, targets_n: int = 1000) -> None:
    """A 15-hour outage over `targets_n` targets: the events a long real incident writes."""
    rng = random.Random(seed)
    targets = [f"svc-{i // 10:03d}-{i % 10}" for i in range(targets_n)]
    service = {name: name[:7] for name in targets}
    state = dict.fromkeys(targets, "up")
    w = _Writer(path)
    span = 15 * 3600.0
    step = span / count
    t = START
    w.add(t, RESPONDERS[0], {"kind": "incident_opened", "incident_id": "mix", "title": "15 h"})
    for name in targets:
        w.add(t, "probe", _change(name, service[name], "unknown", "up"))
    next_samples = 10.0
    elapsed = 0.0
    while w.seq < count:
        elapsed += step
        t = START + timedelta(seconds=elapsed)
        if elapsed >= next_samples:
            next_samples += 10.0
            w.add(t, "probe", _samples(rng, targets, state))
            continue
        roll = rng.random()
        who = rng.choice(RESPONDERS)
        if roll < 0.80:
            name = rng.choice(targets)
            to = rng.choice([x for x in STATES if x != state[name]])
            w.add(t, "probe", _change(name, service[name], state[name], to))
            state[name] = to
        elif roll < 0.88:
            w.add(
                t,
                "probe",
                {
                    "kind": "step_verified",
                    "runbook": "rb",
                    "step": f"s{rng.randrange(12)}",
                    "condition": "svc is up",
                    "holds": rng.random() < 0.5,
                },
            )
        elif roll < 0.93:
            w.add(t, who, {"kind": "note_added", "text": _text(rng, 6, 30)})
        elif roll < 0.97:
            w.add(
                t,
                "sim",
                {
                    "kind": "scenario_event",
                    "sim_seq": w.seq,
                    "sim_time": elapsed,
                    "scenario": "long-outage",
                    "service": service[rng.choice(targets)],
                    "title": _text(rng, 3, 8),
                },
            )
        elif roll < 0.99:
            name = rng.choice(targets)
            rid = f"r{w.seq}"
            lever = {"request_id": rid, "service": service[name], "control": "rate_limit"}
            w.add(t, who, {"kind": "control_requested", **lever, "to_value": rng.randint(1, 100)})
            w.add(t, "lever", {"kind": "control_applied", **lever, "value": 1, "response": "ok"})
        elif roll < 0.995:
            w.add(t, who, {"kind": "bookmark_added", "label": _text(rng, 2, 5)})
        elif roll < 0.998:
            w.add(t, who, {"kind": "status_update_posted", "conditions": _text(rng, 5, 15)})
        else:
            w.add(
                t,
                who,
                {
                    "kind": "command_run",
                    "runbook": "rb",
                    "step": "s1",
                    "command": "dig example",
                    "exit_code": 0,
                    "output": _text(rng, 10, 40),
                },
            )
    w.close()


def _change(target: str, service: str, frm: str, to: str) -> dict[str, object]:
    return {
        "kind": "probe_state_changed",
        "target": target,
        "service": service,
        "from_state": frm,
        "to_state": to,
        "reason": "bench",
        "latency_ms": None,
    }


def _samples(rng: random.Random, targets: list[str], state: dict[str, str]) -> dict[str, object]:
    return {
        "kind": "probe_samples",
        "samples": [
            {
                "target": name,
                "state": state[name],
                "ok": 3,
                "count": 3,
                "latency_ms": round(rng.uniform(5, 400), 1),
            }
            for name in targets
        ],
    }


GENERATORS = {"probes": generate, "notes": generate_notes, "mix": generate_mix}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_replay(path: Path) -> dict[str, object]:
    """(subprocess) Open the log as replay does, show position 0, build checkpoints, seek."""
    from warroom.replay.cursor import ReplayCursor
    from warroom.replay.source import ReplaySource

    figures: dict[str, object] = {"import_s": round(time.perf_counter() - PROCESS_START, 3)}
    source = ReplaySource(path)
    figures["indexed_s"] = round(time.perf_counter() - PROCESS_START, 3)
    cursor = ReplayCursor(source)
    cursor.seek(min(len(source), 1))
    figures["first_frame_s"] = round(time.perf_counter() - PROCESS_START, 3)
    # CPU figures too: on a shared machine the wall clock mostly measures the others.
    figures["first_frame_cpu_s"] = round(time.process_time(), 3)
    figures["events"] = len(source)
    started = time.perf_counter()
    cursor.scan_marks()  # the screen does this in the background, after its first frame
    figures["scan_marks_s"] = round(time.perf_counter() - started, 2)

    rng = random.Random(1)
    started = time.perf_counter()
    cold = ReplayCursor(source)
    cold.seek(rng.randrange(cold.every * 4))  # near the start: no build yet
    figures["near_start_seek_ms"] = round((time.perf_counter() - started) * 1000, 1)

    started, cpu = time.perf_counter(), time.process_time()
    cursor.build_checkpoints()
    figures["checkpoints_s"] = round(time.perf_counter() - started, 2)
    figures["checkpoints_cpu_s"] = round(time.process_time() - cpu, 2)
    figures["checkpoints"] = cursor.checkpoint_count

    timings, cpu_timings = [], []
    for _ in range(200):
        target = rng.randrange(len(source) + 1)
        started, cpu = time.perf_counter(), time.process_time()
        cursor.seek(target)
        timings.append((time.perf_counter() - started) * 1000)
        cpu_timings.append((time.process_time() - cpu) * 1000)
    timings.sort()
    cpu_timings.sort()
    figures["seek_ms_p50"] = round(timings[len(timings) // 2], 1)
    figures["seek_ms_p99"] = round(timings[len(timings) * 99 // 100], 1)
    figures["seek_ms_max"] = round(timings[-1], 1)
    figures["seek_cpu_ms_p50"] = round(cpu_timings[len(cpu_timings) // 2], 1)
    figures["seek_cpu_ms_p99"] = round(cpu_timings[len(cpu_timings) * 99 // 100], 1)
    figures["seek_cpu_ms_max"] = round(cpu_timings[-1], 1)

    started = time.perf_counter()
    cursor.seek_fraction(0.5)
    cursor.seek_time(ev.format_ts(START + timedelta(hours=7)))
    figures["seek_time_ms"] = round((time.perf_counter() - started) * 1000, 1)
    started = time.perf_counter()
    for _ in range(20):
        cursor.next_action()
    figures["next_action_ms"] = round((time.perf_counter() - started) * 1000 / 20, 1)
    figures["replay_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    source.close()
    return figures


def measure_tui(path: Path) -> dict[str, object]:
    """(subprocess) Time the replay screen's first paint (the console's part of replay)."""
    import asyncio

    from warroom.tui.screens.replay import ReplayApp

    figures: dict[str, object] = {}

    async def first_frame() -> None:
        app = ReplayApp(path, verify=False)
        async with app.run_test(size=(140, 42)):
            figures["tui_first_frame_s"] = round(time.perf_counter() - PROCESS_START, 3)
            app.replay_screen._stopping = True

    asyncio.run(first_frame())
    figures["tui_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return figures


#: Runs `warroom report LOG -o /dev/null`, then prints its own CPU seconds (the chain check's
#: processes are its children) as the last line of stderr.
_REPORT = """
import os, resource, sys
from warroom.cli import main
code = main(["report", sys.argv[1], "-o", os.devnull])
own = resource.getrusage(resource.RUSAGE_SELF)
print(own.ru_utime + own.ru_stime, file=sys.stderr)
sys.exit(code)
"""


def measure_report(path: Path) -> dict[str, object]:
    """(subprocess) Time `warroom report` end to end (chain check included)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _REPORT, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"report failed: {done.stderr.strip()}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    own = float(done.stderr.strip().splitlines()[-1])
    return {
        "report_s": round(elapsed, 2),
        # CPU of the report and its forked chain check together (wall time is noisy here)...
        "report_cpu_s": round(total, 2),
        # ...and apart: the report's own process, and the chain check's (other cores).
        "report_own_cpu_s": round(own, 2),
        "report_check_cpu_s": round(total - own, 2),
        "report_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


MEASURES = {"replay": measure_replay, "report": measure_report, "tui": measure_tui}


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


def run_shape(shape: str, path: Path, events: int, tui: bool, only: str) -> dict[str, object]:
    figures: dict[str, object] = {}
    if not path.exists():
        started = time.perf_counter()
        GENERATORS[shape](path, events)
        figures["generate_s"] = round(time.perf_counter() - started, 1)
    figures["log_mb"] = round(path.stat().st_size / 1e6, 1)
    for kind in ("replay", "report"):
        if only in (kind, "all"):
            figures.update(_child(kind, path))
    if tui:
        figures.update(_child("tui", path))
    if only != "all":
        return figures  # one half measured: no verdict
    figures["ok"] = bool(
        figures["first_frame_s"] < 2.0  # type: ignore[operator]
        and figures["seek_ms_max"] < 100  # type: ignore[operator]
        and figures["replay_peak_rss_mb"] < 500  # type: ignore[operator]
        and figures["report_s"] < 10  # type: ignore[operator]
        and figures["report_peak_rss_mb"] < 300  # type: ignore[operator]
    )
    # The same targets on CPU time (what a loaded, shared machine can still measure).
    figures["ok_cpu"] = bool(
        figures["first_frame_cpu_s"] < 2.0  # type: ignore[operator]
        and figures["seek_cpu_ms_max"] < 100  # type: ignore[operator]
        and figures["replay_peak_rss_mb"] < 500  # type: ignore[operator]
        and figures["report_cpu_s"] < 10  # type: ignore[operator]
        and figures["report_peak_rss_mb"] < 300  # type: ignore[operator]
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--shape", choices=[*GENERATORS, "all"], default="all")
    parser.add_argument("--keep", metavar="PATH", help="directory to use/keep the logs in")
    parser.add_argument("--tui", action="store_true", help="also time the replay screen")
    parser.add_argument(
        "--only", choices=["replay", "report", "all"], default="all", help="measure one half"
    )
    parser.add_argument("--child", choices=list(MEASURES), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(MEASURES[args.child](Path(args.keep))))
        return

    shapes = list(GENERATORS) if args.shape == "all" else [args.shape]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        figures: dict[str, object] = {"bench": "replay", "events": args.events}
        for shape in shapes:
            path = folder / f"bench-{shape}-{args.events}.jsonl"
            figures[shape] = run_shape(shape, path, args.events, args.tui, args.only)
            # Progress for long runs (stdout keeps its one JSON line).
            print(json.dumps({shape: figures[shape]}), file=sys.stderr, flush=True)
        figures["ok"] = all(figures[shape].get("ok") for shape in shapes)  # type: ignore[attr-defined]
        figures["cpus_shared"] = os.cpu_count()
        figures["load_avg_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
