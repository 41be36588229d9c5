"""The silence lever through `ControlService`, against Debian's Alertmanager: the silence
ends when the automatic revert is due, and moving the revert moves the silence's end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.prom_servers import Server, alertmanager_config, find_binary, start_server
from warroom import events as ev
from warroom.alerts.silences import ends_at_of, silence_control_for
from warroom.controls.client import SilenceApplier
from warroom.controls.service import ControlService

pytestmark = pytest.mark.slow

LABELS = {"alertname": "ServiceDown", "service": "cache", "instance": "127.0.0.1:1"}


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = find_binary("prometheus-alertmanager", "alertmanager")
    workdir = tmp_path_factory.mktemp("am")
    config = workdir / "alertmanager.yml"
    config.write_text(alertmanager_config("http://127.0.0.1:9/alerts", "t" * 20))
    server = start_server(
        lambda port: [
            binary,
            f"--config.file={config}",
            f"--storage.path={Path(workdir) / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        workdir,
        "alertmanager",
    )
    try:
        yield server
    finally:
        server.stop()


async def test_the_silence_ends_at_the_auto_revert_and_moves_with_it(alertmanager: Server) -> None:
    events: list[ev.BaseEvent] = []

    def record(event: ev.BaseEvent) -> ev.BaseEvent:
        stamped = event.model_copy(
            update={"seq": len(events) + 1, "ts": ev.format_ts(datetime.now(UTC))}
        )
        events.append(stamped)
        return stamped

    client = httpx.AsyncClient(trust_env=False)
    applier = SilenceApplier(silence_control_for(LABELS, alertmanager.url), client)
    controls = ControlService([applier], record, actor="alice", client=client)
    spec = applier.spec
    try:
        before = datetime.now(UTC)
        outcome = await controls.request_change(
            spec.service, spec.control, True, "cache is known down", auto_revert_s=600
        )
        assert outcome.ok and outcome.value is True
        (silence,) = await applier.current()
        assert silence.created_by == "alice" and silence.comment == "cache is known down"
        ends = ends_at_of(silence)
        assert before + timedelta(seconds=595) < ends < before + timedelta(seconds=605)

        until = await controls.extend(spec.service, spec.control, 1800, "still draining")
        (moved,) = await applier.current()
        assert abs((ends_at_of(moved) - until).total_seconds()) < 1
        assert any(isinstance(e, ev.ControlAutoRevertExtended) for e in events)
    finally:
        await controls.aclose()


async def test_silence_this_alert_from_the_console(alertmanager: Server, tmp_path: Path) -> None:
    from test_tui_alerts import console, started
    from textual.widgets import Button, Input
    from tui_harness import screen_text, settle

    from warroom.tui.screens.control_dialog import ControlDialog

    # A real clock: the silence's endsAt is the session clock's now + the auto-revert.
    app = console(tmp_path, alertmanager=alertmanager.url, clock=lambda: datetime.now(UTC))
    async with app.run_test(size=(140, 42)) as pilot:
        await started(pilot)
        # Into Alertmanager itself: the console's poll of its API brings it in.
        page = {
            "labels": {"alertname": "CacheDown", "service": "cache", "instance": "127.0.0.1:1"},
            "annotations": {"summary": "cache refuses connections"},
        }
        httpx.post(f"{alertmanager.url}/api/v2/alerts", json=[page], trust_env=False)
        await settle(pilot, until=lambda: "CacheDown" in screen_text(app), timeout=5)
        await pilot.press("A")
        await settle(pilot)
        assert "Silence which alert?" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot, until=lambda: isinstance(app.screen, ControlDialog))
        box = app.screen
        assert box.query_one("#control-reason", Input).value == "silence CacheDown"
        box.query_one("#control-auto-revert", Input).value = "20m"
        box.query_one("#apply", Button).press()
        await settle(pilot, until=lambda: any(e.kind == "control_applied" for e in _log(tmp_path)))
        applied = [e for e in _log(tmp_path) if isinstance(e, ev.ControlApplied)]
        assert applied[-1].value is True and applied[-1].service == "cache"
        listed = httpx.get(f"{alertmanager.url}/api/v2/silences", trust_env=False).json()
        mine = [
            s
            for s in listed
            if s["status"]["state"] == "active"
            and {"name": "alertname", "value": "CacheDown", "isRegex": False, "isEqual": True}
            in s["matchers"]
        ]
        assert mine and mine[0]["createdBy"] == "alice@warroom"


def _log(tmp_path: Path) -> list[ev.BaseEvent]:
    from tui_harness import logged

    return logged(tmp_path / "i.jsonl")
