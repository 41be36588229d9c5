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


def test_db_init_note_verify_show_export_import_and_report_take_a_url(
    pg: PgServer, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "init", pg.admin_url(), "--grant", "warroom_app"]) == 0
    assert "warroom schema already at v1" in capsys.readouterr().out
    assert main(["--as", "alice@db1", "note", pg_url, "failover", "started"]) == 0
    assert main(["--as", "bob@net2", "note", pg_url, "dns", "ok"]) == 0
    assert capsys.readouterr().out.split() == ["1", "2"]
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


def test_a_file_log_needs_no_database_driver(tmp_path: Path) -> None:
    code = (
        "import sys; from warroom.cli import main; "
        f"assert main(['note', {str(tmp_path / 'a.jsonl')!r}, 'hi']) == 0; "
        f"assert main(['log', 'verify', {str(tmp_path / 'a.jsonl')!r}]) == 0; "
        "assert 'psycopg' not in sys.modules, 'psycopg imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
