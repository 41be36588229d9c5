"""The simulated fleet's scenario feed: `GET /events?after=SEQ`, as `ScenarioEvent`s."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from warroom import events as ev

#: How often the scenario's event feed is polled.
FEED_INTERVAL = 1.0


#: How narration of the real outage is labelled when the feed does not say.
HISTORY_LABEL = "what happened in the real outage"


def _title(item: Any) -> str:
    """The item's title; narration of the real outage (`history`) leads with the feed's
    `label`, so it never reads as something that happened to this fleet."""
    title = str(item.get("title", ""))
    if item.get("history") is not True:
        return title
    label = str(item.get("label") or HISTORY_LABEL)
    return f"{label}: {title.removeprefix('history:').strip()}"


def parse_feed(items: Sequence[Any], scenario: str, after: int) -> list[ev.ScenarioEvent]:
    """The feed items newer than `after` as events (KeyError/ValueError/TypeError if malformed)."""
    return [
        ev.ScenarioEvent(
            sim_seq=int(item["seq"]),
            sim_time=float(item.get("sim_time", 0.0)),
            scenario=scenario,
            service=str(item.get("service", "")),
            title=_title(item),
        )
        for item in items
        if int(item["seq"]) > after
    ]


async def follow_feed(
    admin_url: str,
    scenario: str,
    after: int,
    submit: Callable[[list[ev.ScenarioEvent]], object],
    on_problem: Callable[[str], None],
    interval: float = FEED_INTERVAL,
) -> None:
    """Poll the feed until cancelled, handing each new batch to `submit`; a failing feed is
    reported once until it works again."""
    failing = False
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        while True:
            batch: list[ev.ScenarioEvent] = []
            try:
                response = await client.get(f"{admin_url}/events", params={"after": after})
                response.raise_for_status()
                batch = parse_feed(response.json().get("events", []), scenario, after)
                failing = False
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
                if not failing:
                    on_problem(f"{admin_url}/events: {exc or type(exc).__name__}")
                failing = True
            if batch:
                submit(batch)
                after = batch[-1].sim_seq
            await asyncio.sleep(interval)


def sim_title(admin_url: str, scenario: str) -> str:
    """The running scenario's title from the fleet's `GET /` (its name if that fails)."""
    try:
        info = httpx.get(f"{admin_url}/", timeout=5.0, trust_env=False).json()
        return str(info.get("title") or scenario)
    except (httpx.HTTPError, ValueError, AttributeError):
        return scenario


def sim_speed(admin_url: str) -> float | None:
    """The running fleet's speed (simulated seconds per second) from its `GET /`, or None."""
    try:
        speed = httpx.get(f"{admin_url}/", timeout=5, trust_env=False).json().get("speed")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return float(speed) if isinstance(speed, int | float) and speed > 0 else None
