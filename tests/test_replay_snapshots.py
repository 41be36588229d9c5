"""Snapshots of the replay screen at a few positions of the fixture incident.

Regenerate after reviewing a deliberate change:
`.venv/bin/pytest tests/test_replay_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.tui.screens.replay import ReplayApp

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

LOG = Path(__file__).parent / "fixtures" / "incident-aws-drill.jsonl"
SIZE = (140, 42)


def _run_before(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        for _ in range(200):  # the index is built after the first paint
            if pilot.app.replay_screen.indexed:
                break
            await pilot.pause(0.01)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

    return run_before


def test_replay_at_start(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ReplayApp(LOG), terminal_size=SIZE, run_before=_run_before())


def test_replay_at_first_bookmark(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ReplayApp(LOG), terminal_size=SIZE, run_before=_run_before("b"))


def test_replay_at_end(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ReplayApp(LOG), terminal_size=SIZE, run_before=_run_before("G"))


def test_replay_of_tampered_log_warns(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = LOG.read_bytes().splitlines(keepends=True)
    lines[39] = lines[39].replace(b"alice", b"mallory", 1)
    bad = tmp_path / "tampered.jsonl"
    bad.write_bytes(b"".join(lines))
    assert snap_compare(ReplayApp(bad), terminal_size=SIZE, run_before=_run_before("5"))
