"""Benchmark: `warroom log show` streaming a 1,000,000-event log to a pipe.

Two logs: notes-heavy (notes of 40-300 characters, some multi-line or hostile, from several
actors) and probe-sample-heavy (8-target ProbeSamples with some state changes). Each is shown
by a fresh `python -m warroom log show LOG` whose stdout is a pipe this process drains; the
rate counts from the process start (imports included) to its exit, by wall clock and by the
child's CPU time. Target: >= 200,000 lines/s.

    .venv/bin/python tests/bench/bench_log_show.py [--events 1000000]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from warroom.log import codec  # noqa: E402

TARGETS = [f"svc-{i}" for i in range(40)]
ACTORS = ["alice@ops", "bob@ops", "carol@laptop", "probe", "sim"]
WORDS = [
    "dns",
    "record",
    "empty",
    "failover",
    "paged",
    "team",
    "rollback",
    "latency",
    "region",
    "shard",
    "queue",
]


def _note(rng: random.Random, seq: int) -> dict[str, object]:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 45)))
    if seq % 50 == 0:
        words += "\nsecond line\nthird line"
    if seq % 97 == 0:
        words += " \x1b]52;c;UFdORUQ=\x07\x1b[2J [red]x[/red]"
    return {"kind": "note_added", "text": words}


def _samples(rng: random.Random, seq: int) -> dict[str, object]:
    if seq % 20 == 0:
        return {
            "kind": "probe_state_changed",
            "target": rng.choice(TARGETS),
            "service": "svc",
            "from_state": "up",
            "to_state": "degraded",
            "reason": "latency 412 ms > 250 ms",
            "latency_ms": 412.0,
        }
    return {
        "kind": "probe_samples",
        "samples": [
            {
                "target": name,
                "state": "up",
                "ok": 3,
                "count": 3,
                "latency_ms": round(rng.uniform(5, 400), 1),
            }
            for name in rng.sample(TARGETS, 8)
        ],
    }


def generate(path: Path, count: int, mix: str) -> None:
    rng = random.Random(12)
    make = _note if mix == "notes" else _samples
    prev = codec.GENESIS
    chunk: list[bytes] = []
    with path.open("wb") as out:
        for seq in range(1, count + 1):
            second, micro = divmod(seq * 250_000, 1_000_000)
            minute, sec = divmod(second, 60)
            hour, minute = divmod(minute, 60)
            data = {
                "v": 2,
                "seq": seq,
                "ts": f"2025-10-{20 + hour // 24:02d}T{hour % 24:02d}:{minute:02d}:{sec:02d}."
                f"{micro:06d}Z",
                "actor": rng.choice(ACTORS),
                "prev": prev,
                **make(rng, seq),
            }
            line, prev = codec.encode(data)
            chunk.append(line)
            if len(chunk) >= 10_000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


def show_rate(path: Path) -> tuple[float, float, int, int]:
    """(lines/s by wall clock, lines/s by the child's CPU time, lines printed, exit code) of
    one `log show` to a pipe (CPU time is less sensitive to other load on the machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "log", "show", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    lines = 0
    while block := proc.stdout.read(1 << 20):
        lines += block.count(b"\n")
    code = proc.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return lines / wall, lines / cpu, lines, code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    result: dict[str, object] = {"bench": "log_show", "events": args.events}
    with tempfile.TemporaryDirectory() as tmp:
        for mix in ("notes", "samples"):
            path = Path(tmp) / f"{mix}.jsonl"
            generate(path, args.events, mix)
            rate, cpu_rate, lines, code = show_rate(path)
            assert code == 0 and lines == args.events, (code, lines)
            result[f"{mix}_lines_per_s"] = round(rate)
            result[f"{mix}_lines_per_cpu_s"] = round(cpu_rate)
            result[f"{mix}_mb"] = round(os.path.getsize(path) / 1e6, 1)
            path.unlink()
    result["target_lines_per_s"] = 200_000
    print(json.dumps(result))


if __name__ == "__main__":
    main()
