"""The commands with a postgresql:// URL where a LOG goes, against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pg import PgServer

from warroom.cli import main
from warroom.events import IncidentOpened, NoteAdded
from warroom.log.store import IncidentLog
from warroom.store.schema import SCHEMA_VERSION
from warroom.store.url import parse_url


def test_db_init_note_verify_show_export_import_and_report_take_a_url(
    pg: PgServer, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "init", pg.admin_url(), "--grant", "warroom_app"]) == 0
    assert f"warroom schema already at v{SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["--as", "alice@db1", "note", "--create", pg_url, "failover", "started"]) == 0
    assert main(["--as", "bob@net2", "note", pg_url, "dns", "ok"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out] == ["#1", "#2"]
    assert "password" not in out[0] and out[0].endswith(parse_url(pg_url).display)
    assert main(["log", "verify", pg_url]) == 0
    assert capsys.readouterr().out.startswith("ok: 2 events, chain intact")
    assert main(["log", "show", pg_url]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "alice@db1  note: failover started" in shown[0] and "bob@net2" in shown[1]
    out = tmp_path / "shared.jsonl"
    assert main(["log", "export", pg_url, "-o", str(out)]) == 0
    assert main(["log", "verify", str(out)]) == 0
    capsys.readouterr()
    # A file seeds another incident; its export is the file, byte for byte.
    seed = tmp_path / "seed.jsonl"
    with IncidentLog.open(seed) as log:
        log.append(IncidentOpened(incident_id="x", title="checkout down"))
        log.append(NoteAdded(text="rolled back"))
    other = pg.url("seeded-by-cli")
    assert main(["log", "import", str(seed), other]) == 0
    assert "imported 2 events" in capsys.readouterr().out
    assert main(["log", "export", other, "-o", str(tmp_path / "back.jsonl")]) == 0
    assert (tmp_path / "back.jsonl").read_bytes() == seed.read_bytes()
    assert main(["report", other]) == 0
    assert "checkout down" in capsys.readouterr().out


def test_bad_urls_and_a_missing_database_are_one_line_errors(
    pg: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["note", pg.url(), "x"]) == 1
    assert "add ?incident=ID" in capsys.readouterr().err
    gone = pg.url("x").replace(str(pg.socket_dir).replace("/", "%2F"), "%2Fnonexistent")
    assert main(["log", "verify", gone]) == 1
    err = capsys.readouterr().err
    assert err.startswith("warroom: postgresql://") and "database unavailable" in err
    assert err.count("\n") == 1
    assert main(["db", "init", pg.url(db="no_such_db")]) == 1
    err = capsys.readouterr().err
    assert "cannot create the warroom schema" in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_file_log_needs_no_database_driver(tmp_path: Path) -> None:
    code = (
        "import sys; from warroom.cli import main; "
        f"assert main(['note', '--create', {str(tmp_path / 'a.jsonl')!r}, 'hi']) == 0; "
        f"assert main(['log', 'verify', {str(tmp_path / 'a.jsonl')!r}]) == 0; "
        "assert 'psycopg' not in sys.modules, 'psycopg imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
async def test_the_probe_engine_and_its_worker_write_machine_events_to_a_url(
    pg_url: str, tmp_path: Path
) -> None:
    import asyncio
    import os

    from probe_servers import free_port, responder, serve

    from warroom import events as ev
    from warroom.config import WarroomConfig
    from warroom.store import read_events

    config = (
        '[defaults]\ninterval = "100ms"\ntimeout = "500ms"\n'
        '[[targets]]\nname = "web"\nhttp = "{url}"\n'
        '[[targets]]\nname = "db"\ntcp = "127.0.0.1:{closed}"\n'
    )
    async with serve(responder(200, b"ok")) as server:
        text = config.format(url=server.url, closed=free_port())
        (tmp_path / "w.toml").write_text(text)
        probe = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "warroom", "probe", "--config", "w.toml",
            "--duration", "0.8", "--log", pg_url, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(probe.communicate(), 30)
        assert (probe.returncode, err) == (0, b"")
        import tomllib

        parsed = WarroomConfig.model_validate(tomllib.loads(text))
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "warroom.probe.worker", "--log", pg_url,
            "--sample-interval", "0.3", cwd=tmp_path, env={**os.environ},
            stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert worker.stdin is not None
        worker.stdin.write(parsed.model_dump_json().encode() + b"\n")
        await worker.stdin.drain()

        def changes() -> list[tuple[str, str]]:
            return [
                (e.target, e.to_state)
                for e in read_events(pg_url)
                if isinstance(e, ev.ProbeStateChanged)
            ]

        for _ in range(100):
            if len(changes()) >= 4:
                break
            await asyncio.sleep(0.1)
        worker.stdin.close()
        _, err = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, err
    events = list(read_events(pg_url))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # Once from `warroom probe`, once from the worker: both reached the shared incident.
    assert sorted(changes()) == sorted([("web", "up"), ("db", "down")] * 2)
