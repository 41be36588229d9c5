"""When the console runs Python's cycle collector: between key presses, never inside one."""

from __future__ import annotations

import gc

from tui_harness import SIZE, make_app, settle, write_log

from warroom.tui.idle_gc import NO_AUTO_FULL, IdleCollector


def collector() -> IdleCollector:
    return IdleCollector(
        quiet_s=1.0,
        young_every_s=10.0,
        full_every_s=600.0,
        force_after=6.0,
        last_young=0.0,
        last_full=0.0,
    )


def test_nothing_is_due_before_its_period() -> None:
    assert collector().due(now=9.9, last_input_at=-100.0) is None


def test_young_collection_waits_for_a_quiet_keyboard() -> None:
    c = collector()
    assert c.due(now=10.0, last_input_at=9.5) is None  # typing: a key half a second ago
    assert c.due(now=10.0, last_input_at=9.0) == "young"  # quiet for a second


def test_full_collection_takes_precedence_when_both_are_due() -> None:
    assert collector().due(now=600.0, last_input_at=0.0) == "full"


def test_a_keyboard_that_is_never_quiet_still_gets_collections() -> None:
    c = collector()
    assert c.due(now=59.0, last_input_at=58.9) is None
    assert c.due(now=60.0, last_input_at=59.9) == "young"  # 6 x the period
    assert c.due(now=3600.0, last_input_at=3599.9) == "full"


def test_tick_runs_the_collection_and_restarts_its_period() -> None:
    c = collector()
    try:
        c.start()
        assert c.last_young == c.last_full
        # A round origin: `monotonic() + 600 - monotonic()` can fall a rounding short of 600.
        start = c.last_young = c.last_full = 1000.0
        assert gc.get_threshold()[2] == NO_AUTO_FULL
        assert c.tick(last_input_at=-100.0, now=start + 10.0) == "young"
        assert c.collections == 1 and c.last_young == start + 10.0
        assert c.tick(last_input_at=-100.0, now=start + 15.0) is None
        assert c.tick(last_input_at=-100.0, now=start + 600.0) == "full"
        assert c.full_collections == 1 and c.last_young == start + 600.0
    finally:
        c.stop()


def test_stop_gives_cpython_its_own_collection_back() -> None:
    before = gc.get_threshold()
    c = IdleCollector()
    c.start()
    assert gc.get_freeze_count() > 0
    c.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_the_console_switches_collection_over_and_back(tmp_path) -> None:
    before = gc.get_threshold()
    app = make_app(write_log(tmp_path / "i.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, until=lambda: gc.get_threshold()[2] == NO_AUTO_FULL)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
