"""Alert latency: a fault in the simulated fleet -> the webhook event in warroom, and back.

Debian's Prometheus and Alertmanager (1 s scrape and evaluation, no group wait, 1 s group
interval) scrape the tutorial fleet; warroom's receiver takes the webhooks. Each round
refuses the cache (both nodes), waits for the ServiceDown webhook, recovers it and waits for
the resolved one. Prints one JSON line (seconds, median and max over the rounds).

    .venv/bin/python tests/bench/bench_alerts.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.prom_servers import prom_stack
from warroom import events as ev
from warroom.alerts.intake import AlertIntake
from warroom.config import AlertsSettings
from warroom.sim.prometheus import alert_rules
from warroom.sim.scenario import load_scenario
from warroom.sim.server import running_fleet


async def measure(rounds: int, workdir: Path) -> dict[str, object]:
    fired: list[float] = []
    resolved: list[float] = []
    with prom_stack(workdir, alert_rules(load_scenario("tutorial"), for_s=0)) as stack:
        seen: list[tuple[float, ev.AlertObserved]] = []
        async with running_fleet("tutorial", speed=0.01, token_path=workdir / "tok") as fleet:
            stack.scrape(fleet.server.scrape_targets())
            settings = AlertsSettings(
                listen=f"127.0.0.1:{stack.webhook_port}", token=stack.webhook_token
            )

            def sink(batch: list[ev.AlertObserved]) -> None:
                seen.extend((time.monotonic(), e) for e in batch)

            async def until(status: str, since: float) -> float:
                while True:
                    for at, event in seen:
                        if at >= since and event.service == "cache" and event.status == status:
                            return at - since
                    await asyncio.sleep(0.02)

            async with AlertIntake(settings, sink, known_services=fleet.service_ports):
                await asyncio.sleep(3)  # a few scrapes of the healthy fleet first
                for _ in range(rounds):
                    start = time.monotonic()
                    fleet.model.inject("cache", "refuse")
                    fleet.server.after_change()
                    fired.append(await until("firing", start))
                    start = time.monotonic()
                    fleet.model.inject("cache", "recover")
                    fleet.server.after_change()
                    resolved.append(await until("resolved", start))
                    await asyncio.sleep(1.5)
    return {
        "bench": "alerts",
        "rounds": rounds,
        "fault_to_webhook_s_median": round(statistics.median(fired), 2),
        "fault_to_webhook_s_max": round(max(fired), 2),
        "fix_to_resolved_webhook_s_median": round(statistics.median(resolved), 2),
        "fix_to_resolved_webhook_s_max": round(max(resolved), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        print(json.dumps(asyncio.run(measure(args.rounds, Path(tmp)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
