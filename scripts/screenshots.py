"""Write the README's console screenshots (SVG) from the real app on deterministic data.

The data is the test harness's fixture incident (fixed timestamps, frozen clock, no live
probes), so running this again yields the same files unless the console's look changed.

    .venv/bin/python scripts/screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from textual.widgets import Input  # noqa: E402
from tui_harness import SIZE, make_app, paste, write_log  # noqa: E402

Steps = Callable[[Any], Awaitable[None]]


async def _main_screen(pilot: Any) -> None:
    await pilot.pause()


async def _runbook(pilot: Any) -> None:
    await pilot.press("o", "down", "down")


async def _help(pilot: Any) -> None:
    await pilot.press("question_mark")


async def _status_update(pilot: Any) -> None:
    await pilot.press("c")
    await paste(pilot, "DNS record restored by hand; EC2 launches throttled")
    await pilot.press("enter")
    await paste(pilot, "draining the DWFM backlog at 50 launches/s")
    await pilot.press("enter")


async def _mitigation(pilot: Any) -> None:
    from controls_harness import show_checkout_levers

    await show_checkout_levers(pilot)


async def _dangerous_change(pilot: Any) -> None:
    from controls_harness import show_checkout_levers

    await show_checkout_levers(pilot, "failover")
    await pilot.press("enter")


SHOTS: dict[str, tuple[str, Steps]] = {
    "console-main.svg": ("warroom: main screen mid-incident", _main_screen),
    "console-runbook.svg": ("warroom: a runbook in progress", _runbook),
    "console-help.svg": ("warroom: every key", _help),
    "console-status-update.svg": ("warroom: writing a status update", _status_update),
    "console-mitigation.svg": ("warroom: the mitigation panel", _mitigation),
    "console-dangerous-change.svg": ("warroom: pulling a dangerous lever", _dangerous_change),
}


async def shoot(name: str, title: str, steps: Steps, out: Path, work: Path) -> Path:
    app = make_app(write_log(work / f"{Path(name).stem}.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await steps(pilot)
        for box in app.screen.query(Input):
            box.cursor_blink = False
        await pilot.pause()
        svg = app.export_screenshot(title=title)
    target = out / name
    target.write_text(svg, encoding="utf-8")
    return target


#: Replay of the fixture drill (tests/fixtures): file -> (title, keys pressed, tamper it).
REPLAY_SHOTS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "replay-bookmark.svg": ("warroom replay: jumped to a bookmark", ("b",), False),
    "replay-tampered.svg": ("warroom replay: an edited log still replays", ("5",), True),
}


async def shoot_replay(
    name: str, title: str, keys: tuple[str, ...], tamper: bool, out: Path, work: Path
) -> Path:
    from warroom.tui.screens.replay import ReplayApp

    log = ROOT / "tests" / "fixtures" / "incident-aws-drill.jsonl"
    if tamper:
        lines = log.read_bytes().splitlines(keepends=True)
        lines[39] = lines[39].replace(b"alice", b"mallory", 1)
        log = work / "tampered.jsonl"
        log.write_bytes(b"".join(lines))
    app = ReplayApp(log)
    async with app.run_test(size=SIZE) as pilot:
        while not app.replay_screen.indexed:
            await pilot.pause(0.01)
        await app.workers.wait_for_complete()
        for key in keys:
            await pilot.press(key)
            await app.workers.wait_for_complete()
        await pilot.pause()
        svg = app.export_screenshot(title=title)
    target = out / name
    target.write_text(svg, encoding="utf-8")
    return target


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (title, steps) in SHOTS.items():
            print(await shoot(name, title, steps, out, Path(tmp)))
        for name, (title, keys, tamper) in REPLAY_SHOTS.items():
            print(await shoot_replay(name, title, keys, tamper, out, Path(tmp)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    asyncio.run(main(parser.parse_args().out))
