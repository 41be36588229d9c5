"""Benchmark: `warroom log show` streaming 1,000,000-event logs of three shapes to a pipe.

The shapes are bench_replay.py's (one definition for every big-log benchmark): `probes`
(mostly 2-target probe samples), `notes` (mostly notes from 7 responders) and `mix` (a
15-hour outage over 1,000 targets: all-target samples every 10 s, state changes, runbook
verifications, notes, levers, the simulator). Each log is shown by a fresh
`python -m warroom log show LOG` whose stdout is a pipe this process drains; the rate counts
from the process start (imports included) to its exit, by wall clock and by the child's CPU
time (less sensitive to other load on the machine). Target: >= 200,000 lines/s.

A log this big is shown by one process per core (`warroom/log/showranges.py`), so the CPU
rate counts all of them: on an idle machine the wall-clock rate is up to `cores` times it.
Set BENCH_DIR to put the generated logs (up to 750 MB each) somewhere other than the
system's temporary folder.

`--baseline DIR` also runs the `warroom` package found in DIR (e.g. a `git worktree` of an
earlier commit) on the same logs, for a before/after ratio from one run. `python_loop_10m_s`
is a yardstick for the machine's speed (about 0.4 s on an idle current desktop core).

    .venv/bin/python tests/bench/bench_log_show.py [--events 1000000] [--shape all]
        [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_replay import GENERATORS  # noqa: E402


def show_rate(path: Path, tree: Path) -> tuple[float, float, int, int]:
    """(lines/s by wall clock, lines/s by the child's CPU time, lines printed, exit code) of
    one `log show` to a pipe, running the `warroom` package in `tree`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "log", "show", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tree,
        env=env,
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


def python_speed() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--shape", choices=[*GENERATORS, "all"], default="all")
    parser.add_argument("--baseline", type=Path, help="a folder holding another `warroom`")
    args = parser.parse_args()
    shapes = list(GENERATORS) if args.shape == "all" else [args.shape]
    result: dict[str, object] = {"bench": "log_show", "events": args.events}
    result["python_loop_10m_s"] = round(python_speed(), 2)
    result["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    with tempfile.TemporaryDirectory(prefix="bench_show_", dir=os.environ.get("BENCH_DIR")) as d:
        for shape in shapes:
            path = Path(d) / f"{shape}.jsonl"
            GENERATORS[shape](path, args.events)
            result[f"{shape}_mb"] = round(path.stat().st_size / 1e6, 1)
            trees = [("", ROOT)]
            if args.baseline is not None:
                trees.append(("baseline_", args.baseline.resolve()))
            for prefix, tree in trees:
                rate, cpu_rate, lines, code = show_rate(path, tree)
                assert code == 0 and lines == args.events, (shape, prefix, code, lines)
                result[f"{prefix}{shape}_lines_per_s"] = round(rate)
                result[f"{prefix}{shape}_lines_per_cpu_s"] = round(cpu_rate)
            path.unlink()
    result["target_lines_per_s"] = 200_000
    print(json.dumps(result))


if __name__ == "__main__":
    main()
