"""Pilot tests of alert intake in the console: a real webhook over loopback -> the log ->
the alerts pane, the header count and the runbook suggestions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from tui_harness import (
    ALICE,
    NOW,
    SIZE,
    FixtureProbes,
    fixed_clock,
    logged,
    runbooks,
    screen_text,
    settle,
    write_log,
)

from warroom import events as ev
from warroom.config import AlertsSettings, WarroomConfig
from warroom.runbooks.parser import parse_runbook
from warroom.tui.app import WarroomApp
from warroom.tui.cli import ConsoleInputs, build_app

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

TOKEN = "s3cret-token-for-the-console-tests"

CACHE_RUNBOOK = """\
---
title: Cache refuses connections
services: [cache]
alerts: [CacheDown]
---
# Cache refuses connections

- [ ] Restart the cache
"""


def console(tmp_path: Path, alertmanager: str | None = None, **kwargs: Any) -> WarroomApp:
    """The fixture incident's console with `[alerts]` on 127.0.0.1, port 0, built as
    `warroom console` builds it."""
    books = runbooks()
    cache, problems = parse_runbook(CACHE_RUNBOOK, Path("runbooks/cache.md"))
    assert cache is not None and not problems
    books[cache.id] = cache
    settings = AlertsSettings(
        listen="127.0.0.1:0", token=TOKEN, alertmanager=alertmanager, poll_interval=0.5
    )
    config = WarroomConfig(alerts=settings)
    inputs = ConsoleInputs(config=config, runbooks=books)
    kwargs.setdefault("clock", fixed_clock)
    app = build_app(write_log(tmp_path / "i.jsonl"), inputs, actor=ALICE, **kwargs)
    app.session.probes = FixtureProbes()
    return app


def webhook(name: str = "CacheDown", status: str = "firing", summary: str = "") -> bytes:
    starts = NOW - timedelta(minutes=3)
    one = {
        "status": status,
        "labels": {"alertname": name, "service": "cache", "severity": "page"},
        "annotations": {"summary": summary or "cache refuses connections"},
        "startsAt": ev.format_ts(starts),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": f"fp-{name}",
    }
    return orjson.dumps({"version": "4", "status": status, "alerts": [one]})


async def post(app: WarroomApp, body: bytes, token: str = TOKEN) -> int:
    intake = app.session.alert_intake
    assert intake is not None
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(intake.receiver.url, data=body, headers=headers) as response,
    ):
        return response.status


async def started(pilot: Any) -> None:
    app = pilot.app

    def listening() -> bool:
        intake = app.session.alert_intake
        return intake is not None and intake.receiver.port != 0

    await settle(pilot, until=listening)
    # The pane's status line follows the intake with the clock (once a second).
    await settle(pilot, until=lambda: "no alerts firing" in screen_text(app))


async def test_a_webhook_reaches_the_pane_the_header_and_the_suggestions(tmp_path: Path) -> None:
    app = console(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert "Alerts" in screen_text(app) and "0 accepted · webhook" in screen_text(app)
        assert await post(app, webhook(summary="[red]evil\x1b[2J")) == 200
        await settle(pilot, until=lambda: "CacheDown" in screen_text(app))
        (event,) = [e for e in logged(tmp_path / "i.jsonl") if isinstance(e, ev.AlertObserved)]
        assert (event.alertname, event.status, event.service) == ("CacheDown", "firing", "cache")
        app.render_state()
        await pilot.pause()
        text = screen_text(app)
        assert "🔔 1 firing" in text
        assert "CacheDown cache 3m" in text
        assert "[red]evil␛[2J" in text  # shown as data, never as markup or escapes
        # The alert's runbook first (an alert outranks a probe match), the probes' next.
        assert app.suggested[0] == ("cache", "Cache refuses connections")
        assert "Cache refuses connections" in text
        assert "1 accepted · webhook" in text

        assert await post(app, webhook(status="resolved"), token=TOKEN) == 200
        await settle(pilot, until=lambda: "0 firing" in screen_text(app))
        assert "no alerts firing" in screen_text(app)


@pytest.mark.slow
async def test_a_malformed_webhook_is_refused_counted_and_the_console_carries_on(
    tmp_path: Path,
) -> None:
    app = console(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert await post(app, b'{"alerts": [1') == 400
        assert await post(app, webhook(), token="wrong-token-xxxxxxxx") == 401
        # the count and the last reason may reach the screen one repaint apart
        await settle(
            pilot,
            until=lambda: (
                "2 refused" in screen_text(app)
                and "last refused: 401 wrong token" in screen_text(app)
            ),
        )
        assert not [e for e in logged(tmp_path / "i.jsonl") if isinstance(e, ev.AlertObserved)]
        assert await post(app, webhook()) == 200  # still serving
        await settle(pilot, until=lambda: "🔔 1 firing" in screen_text(app))
