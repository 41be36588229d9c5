"""`warroom probe` as a user runs it: a real subprocess probing real loopback servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from probe_servers import free_port, responder, serve

from warroom import events as ev
from warroom.log.store import read_events

CONFIG = """
[defaults]
interval = "100ms"
timeout = "500ms"
[[targets]]
name = "web"
service = "shop"
http = "{url}"
[[targets]]
name = "db"
tcp = "127.0.0.1:{closed}"
"""


async def warroom(*args: str, cwd: Path, timeout: float = 20.0) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "warroom",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "160"},
    )
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.slow
async def test_json_output_changes_then_summary(tmp_path: Path) -> None:
    async with serve(responder(200, b"ok")) as server:
        (tmp_path / "w.toml").write_text(CONFIG.format(url=server.url, closed=free_port()))
        code, out, err = await warroom(
            "probe", "--config", "w.toml", "--duration", "1", "--json", cwd=tmp_path
        )
    assert (code, err) == (0, "")
    records = lines(out)
    engine = [r for r in records if "engine" in r]
    records = [r for r in records if "engine" not in r]
    changes = [r for r in records if not r.get("summary")]
    summary = {r["target"]: r for r in records if r.get("summary")}
    assert {(c["target"], c["from"], c["state"]) for c in changes} == {
        ("web", "unknown", "up"),
        ("db", "unknown", "down"),
    }
    for change in changes:
        assert set(change) >= {"target", "state", "reason", "from", "latency_ms", "ts"}
    assert records[-2:] == list(summary.values())
    assert summary["web"]["state"] == "up" and summary["web"]["service"] == "shop"
    assert summary["web"]["ok"] == summary["web"]["total"] >= 5
    assert 0 < summary["web"]["p50_ms"] <= summary["web"]["p95_ms"]
    assert summary["db"]["reason"] == "connection refused" and summary["db"]["ok"] == 0
    # The engine's own health: the last report at close, then the run's totals.
    health, total = engine
    assert (health["engine"], health["shard"], health["targets"]) == ("health", 0, 2)
    assert health["missed_rounds"] == 0 and health["problem"] == ""
    # A 500 ms timeout spans 5 rounds of 100 ms; the 6th may start as the 1st times out.
    assert health["slots"] == 2 * 6
    assert total["engine"] == "summary" and total["missed_rounds"] == 0
    assert total["probes"] >= 10 and total["lag_p99_ms"] < 100


@pytest.mark.slow
async def test_default_config_and_human_summary_table(tmp_path: Path) -> None:
    async with serve(responder(200, b"ok")) as server:
        (tmp_path / "warroom.toml").write_text(CONFIG.format(url=server.url, closed=free_port()))
        code, out, _ = await warroom("probe", "--duration", "0.8", cwd=tmp_path)
    assert code == 0
    assert "web  unknown -> up  HTTP 200 in" in out
    assert "db  unknown -> down  connection refused" in out
    assert "probe summary" in out
    assert "engine: " in out and ", 0 missed rounds, " in out
    table_rows = [line for line in out.splitlines() if line.startswith("│")]
    assert any("web" in row and "up" in row for row in table_rows)


@pytest.mark.slow
async def test_ctrl_c_ends_with_the_summary(tmp_path: Path) -> None:
    async with serve(responder(200, b"ok")) as server:
        (tmp_path / "w.toml").write_text(CONFIG.format(url=server.url, closed=free_port()))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "warroom",
            "probe",
            "--config",
            "w.toml",
            "--json",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        async with asyncio.timeout(15):
            first = json.loads(await process.stdout.readline())
            process.send_signal(signal.SIGINT)
            out, err = await process.communicate()
    assert first["state"] in ("up", "down")
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert {r["target"] for r in lines(out.decode()) if r.get("summary")} == {"web", "db"}


@pytest.mark.slow
async def test_log_receives_state_changes_and_samples(tmp_path: Path) -> None:
    log = tmp_path / "incidents" / "i.jsonl"
    async with serve(responder(200, b"ok")) as server:
        (tmp_path / "w.toml").write_text(CONFIG.format(url=server.url, closed=free_port()))
        code, _, err = await warroom(
            "probe",
            "--config",
            "w.toml",
            "--duration",
            "0.8",
            "--log",
            str(log),
            "--json",
            cwd=tmp_path,
        )
    assert (code, err) == (0, "")
    events = list(read_events(log))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    changes = {(e.target, e.to_state) for e in events if isinstance(e, ev.ProbeStateChanged)}
    assert changes == {("web", "up"), ("db", "down")}
    samples = [e for e in events if isinstance(e, ev.ProbeSamples)]
    assert samples and {s.target for s in samples[-1].samples} == {"web", "db"}
    assert sum(s.count for batch in samples for s in batch.samples if s.target == "web") >= 4


@pytest.mark.slow
async def test_bad_config_is_one_line_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "w.toml").write_text('[[targets]]\nname = "a"\nhttp = "http://h"\ntimeout = "2x"\n')
    code, out, err = await warroom("probe", "--config", "w.toml", cwd=tmp_path)
    assert (code, out) == (1, "")
    assert err == "warroom: w.toml: targets[0].timeout: not a duration: '2x' (use e.g. 500ms, 2s)\n"


@pytest.mark.slow
async def test_no_config_anywhere_says_what_to_do(tmp_path: Path) -> None:
    code, _, err = await warroom("probe", "--duration", "1", cwd=tmp_path)
    assert code == 1
    assert err == (
        "warroom: no targets: pass --config FILE or --sim URL, or create ./warroom.toml\n"
    )
