"""The replay screen: exact states on screen, read-only, tamper and torn logs, live follow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from warroom import events as ev
from warroom.cli import main
from warroom.log.store import IncidentLog
from warroom.state import fold
from warroom.tui.screens.replay import ReplayApp, ReplayBar, ReplayScreen

#: Pilot and snapshot tests (each starts the console): the full suite, not the quick loop.
pytestmark = pytest.mark.slow

LOG = Path(__file__).parent / "fixtures" / "incident-aws-drill.jsonl"
SIZE = (140, 42)


def _events(path: Path = LOG) -> list[ev.BaseEvent]:
    return [ev.parse_event(orjson.loads(line)) for line in path.read_bytes().splitlines()]


async def _settle(app: ReplayApp, pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait for the background start (after the first paint) and any move to finish."""
    for _ in range(200):
        if app.replay_screen.indexed:
            break
        await pilot.pause(0.01)
    await app.workers.wait_for_complete()
    await pilot.pause()


def _bar_text(screen: ReplayScreen) -> str:
    return str(screen.query_one(ReplayBar).render())


async def test_screen_shows_the_reducer_state_at_each_move() -> None:
    events = _events()
    app = ReplayApp(LOG, every=8)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        screen = app.replay_screen
        assert screen.view.state == fold([]) and "seq 0 of 93" in _bar_text(screen)
        for keys in (
            ["n"],
            ["n", "n"],
            ["5"],
            ["full_stop", "full_stop"],
            ["comma"],
            ["G"],
            ["0"],
            ["l"],
            ["b"],
        ):
            await pilot.press(*keys)
            await _settle(app, pilot)
            k = screen.cursor.position
            assert screen.view.state == fold(events[:k]), keys
            seq = events[k - 1].seq if k else 0
            assert f"seq {seq} of 93" in _bar_text(screen)
            assert "REPLAY" in _bar_text(screen)


async def test_step_by_action_lands_on_operator_actions() -> None:
    app = ReplayApp(LOG)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        screen = app.replay_screen
        for _ in range(6):
            await pilot.press("n")
            await _settle(app, pilot)
            assert ev.is_operator_action(screen.cursor.current_event)
        at = screen.cursor.position
        await pilot.press("N")
        await _settle(app, pilot)
        assert screen.cursor.position < at
        assert ev.is_operator_action(screen.cursor.current_event)


async def test_no_mutating_action_exists_and_nothing_is_written(tmp_path: Path) -> None:
    log = tmp_path / "copy.jsonl"
    log.write_bytes(LOG.read_bytes())
    app = ReplayApp(log)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        bound = {active.binding.action for active in app.replay_screen.active_bindings.values()}
        assert {"toggle_play", "next_action", "help", "quit_console"} <= bound
        for mutating in ("declare", "set_severity", "set_status", "add_note", "status_update"):
            assert mutating not in bound
        await pilot.press("t", "v", "u", "c", "r", "f")
        await _settle(app, pilot)
        assert app.screen is app.replay_screen  # no dialog opened
    assert log.read_bytes() == LOG.read_bytes()


@pytest.mark.parametrize("in_child", [False, True], ids=["in-process", "child-process"])
async def test_tampered_log_warns_with_first_bad_seq_and_still_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_child: bool
) -> None:
    if in_child:  # how a big log is checked
        from warroom.replay import verify_job

        monkeypatch.setattr(verify_job, "PARALLEL_VERIFY_BYTES", 0)
    lines = LOG.read_bytes().splitlines(keepends=True)
    lines[39] = lines[39].replace(b"alice", b"mallory", 1)
    bad = tmp_path / "tampered.jsonl"
    bad.write_bytes(b"".join(lines))
    app = ReplayApp(bad)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        screen = app.replay_screen
        assert any("seq 40" in w for w in screen.warnings)
        assert "hash chain broken at seq 40" in _bar_text(screen)
        await pilot.press("G")
        await _settle(app, pilot)
        assert screen.cursor.position == 93
        assert screen.view.state == fold(_events(bad))


async def test_torn_log_replays_its_valid_prefix(tmp_path: Path) -> None:
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(LOG.read_bytes()[:-25])
    app = ReplayApp(torn)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("G")
        await _settle(app, pilot)
        screen = app.replay_screen
        assert len(screen.cursor) == 92
        assert screen.view.state == fold(_events(LOG)[:92])
        assert any("torn" in w for w in screen.warnings)


async def test_play_at_max_speed_runs_to_the_end_and_stops() -> None:
    app = ReplayApp(LOG, every=16)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        screen = app.replay_screen
        assert screen.cursor.position == 0
        await pilot.press("plus", "plus", "space")  # max speed: may finish within the press
        for _ in range(50):
            await pilot.pause(0.05)
            if not screen.playing:
                break
        await _settle(app, pilot)
        assert not screen.playing and screen.cursor.at_end
        assert screen.view.state == fold(_events())


async def test_play_at_60x_follows_event_time() -> None:
    app = ReplayApp(LOG)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        screen = app.replay_screen
        await pilot.press("plus", "space")  # 10x -> 60x
        await pilot.pause(0.6)
        screen._set_playing(False)
        await _settle(app, pilot)
        # ~0.6 s at 60x is ~36 s of incident time from the first event (14:00:05).
        reached = screen.cursor.current_event
        assert reached is not None
        assert "2025-11-18T14:00:05" < reached.ts < "2025-11-18T14:02:00"


async def test_follow_shows_appends_within_a_second(tmp_path: Path) -> None:
    lines = LOG.read_bytes().splitlines(keepends=True)
    live = tmp_path / "live.jsonl"
    live.write_bytes(b"".join(lines[:60]))
    app = ReplayApp(live, follow=True)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        screen = app.replay_screen
        assert screen.cursor.position == 60 and screen.following
        with IncidentLog.open(live) as writer:
            writer.append(ev.NoteAdded(text="seen from the other terminal", actor="dave@drill"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while screen.cursor.position < 61 and loop.time() < deadline:
            await pilot.pause(0.05)
        assert screen.cursor.position == 61
        await _settle(app, pilot)
        assert screen.view.state.notes[-1].text == "seen from the other terminal"
        assert "FOLLOWING" in _bar_text(screen)
        # Stepping back leaves live mode; later appends extend the bounds but do not move.
        await pilot.press("comma")
        await _settle(app, pilot)
        assert not screen.following
        with IncidentLog.open(live) as writer:
            writer.append(ev.NoteAdded(text="another", actor="dave@drill"))
        await pilot.pause(0.6)
        await _settle(app, pilot)
        assert len(screen.cursor) == 62 and screen.cursor.position == 60
        await pilot.press("f")
        await _settle(app, pilot)
        assert screen.cursor.position == 62 and screen.following


def test_cli_refuses_a_file_that_is_not_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": "world"}\n')
    assert main(["replay", str(other)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("warroom: ") and "other.jsonl:1" in err and err.count("\n") == 1
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


async def test_help_lists_the_timeline_keys_and_no_mutating_action() -> None:
    import io

    from rich.console import Console

    from warroom.tui.screens.help import HelpScreen, keys_table

    app = ReplayApp(LOG)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.mode == "replay"
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(keys_table(app.screen.mode))
        text = console.export_text()
        assert "Replay timeline" in text and "Play or pause the replay" in text
        assert "Step to the next operator action" in text
        assert "Declare the incident" not in text and "Add a note" not in text


async def test_command_palette_runs_timeline_actions() -> None:
    from textual.command import CommandPalette

    app = ReplayApp(LOG)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"next operator action")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await _settle(app, pilot)
        screen = app.replay_screen
        assert screen.cursor.position > 0
        assert ev.is_operator_action(screen.cursor.current_event)


async def test_o_opens_a_runbook_read_only(tmp_path: Path) -> None:
    from warroom.tui.screens.runbook import RunbookScreen

    log = tmp_path / "copy.jsonl"
    log.write_bytes(LOG.read_bytes())
    app = ReplayApp(log)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("G")  # the end: every runbook the drill opened is there
        await _settle(app, pilot)
        await pilot.press("o")
        await _settle(app, pilot)
        assert isinstance(app.screen, RunbookScreen)
        bound = {active.binding.action for active in app.screen.active_bindings.values()}
        assert "close_runbook" in bound
        assert not {"step_done", "step_skip", "run_command", "pull_lever"} & bound
        await pilot.press("d", "x", "exclamation_mark", "a", "escape")
        await _settle(app, pilot)
        assert app.screen is app.replay_screen
    assert log.read_bytes() == LOG.read_bytes()
