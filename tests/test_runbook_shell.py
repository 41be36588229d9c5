"""Running runbook shell blocks in real subprocesses: exit codes, bounded output, timeouts."""

from __future__ import annotations

import asyncio
import time

from processes import alive

from warroom.runbooks.model import Command
from warroom.runbooks.shell import run_command


async def test_exit_code_and_interleaved_output() -> None:
    result = await run_command(Command(lang="sh", code="echo out; echo err >&2; exit 3\n", line=1))
    assert result.exit_code == 3
    assert result.output == "out\nerr\n"
    assert not result.truncated and not result.timed_out
    assert result.command == "echo out; echo err >&2; exit 3\n"
    ok = await run_command("true")
    assert (ok.exit_code, ok.output) == (0, "")


async def test_huge_output_keeps_the_tail() -> None:
    code = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo THE-END"
    result = await run_command(code, max_output=1024)
    assert result.exit_code == 0
    assert result.truncated
    assert result.output_bytes == 3000000 + 1 + len("THE-END\n")
    assert len(result.output.encode()) <= 1024
    assert result.output.endswith("x\nTHE-END\n")


async def test_cut_inside_a_utf8_character_is_clean() -> None:
    result = await run_command("printf 'ééééé'", max_output=5)
    assert result.truncated
    assert result.output == "éé"


async def test_timeout_kills_the_process_group(tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = await run_command(f"sleep 30 & echo $! > {pidfile}; echo started; wait", timeout=0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out and result.exit_code is None
    assert result.output == "started\n"
    child = int(pidfile.read_text())
    for _ in range(50):
        if not alive(child):
            break
        await asyncio.sleep(0.02)
    assert not alive(child)


async def test_term_ignoring_command_is_killed() -> None:
    started = time.monotonic()
    result = await run_command("trap '' TERM; sleep 30", timeout=0.3)
    assert result.timed_out
    assert time.monotonic() - started < 5


async def test_background_child_holding_the_pipe_does_not_hang(tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = await run_command(f"sleep 30 & echo $! > {pidfile}; echo done", timeout=10)
    assert time.monotonic() - started < 5
    assert (result.exit_code, result.output, result.timed_out) == (0, "done\n", False)
    child = int(pidfile.read_text())
    for _ in range(50):
        if not alive(child):
            break
        await asyncio.sleep(0.02)
    assert not alive(child)


async def test_cancelling_the_run_kills_the_command(tmp_path) -> None:
    pidfile = tmp_path / "sh.pid"
    task = asyncio.ensure_future(run_command(f"echo $$ > {pidfile}; exec sleep 30", timeout=30))
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert not alive(int(pidfile.read_text()))


async def test_result_becomes_a_log_event() -> None:
    result = await run_command("echo hi; exit 1")
    event = result.to_event("dns-record-missing", "check-the-record")
    assert (event.kind, event.runbook, event.step, event.command) == (
        "command_run",
        "dns-record-missing",
        "check-the-record",
        "echo hi; exit 1",
    )
    assert (event.exit_code, event.output, event.truncated) == (1, "hi\n", False)


async def test_environment_is_passed_not_interpolated(tmp_path) -> None:
    result = await run_command(
        'printf "%s|" "$WARROOM_SIM" "$(pwd)"',
        env={"WARROOM_SIM": "http://127.0.0.1:1/ ; echo injected"},
        cwd=str(tmp_path),
    )
    assert result.output == f"http://127.0.0.1:1/ ; echo injected|{tmp_path}|"
