"""Runbook parsing speed: the shipped library, and one synthetic 1,000-step runbook.

Run: .venv/bin/python tests/bench/bench_runbooks.py  (prints one JSON line)
"""

from __future__ import annotations

import json
import time

from warroom.runbooks.library import load_library, shipped_dir
from warroom.runbooks.parser import parse_runbook

STEP = (
    "## Section {i}\n\n- [ ] Step {i}\n  - action: `svc/rate_limit = {i}`\n"
    "  - verify: `svc is up and all svc targets are up`\n\n  Why.\n\n"
    "  ```sh\n  echo {i}\n  ```\n\n"
)


def best_of(runs: int, func) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    shipped = shipped_dir()
    assert shipped is not None
    runbooks, problems = load_library([shipped])
    assert not problems
    library_s = best_of(20, lambda: load_library([shipped]))
    big = "---\ntitle: big\n---\n" + "".join(STEP.format(i=i) for i in range(1000))
    big_s = best_of(5, lambda: parse_runbook(big, "big.md"))
    print(
        json.dumps(
            {
                "shipped_runbooks": len(runbooks),
                "shipped_steps": sum(len(rb.steps) for rb in runbooks),
                "load_shipped_ms": round(library_s * 1000, 2),
                "parse_1000_steps_ms": round(big_s * 1000, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
