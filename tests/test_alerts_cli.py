"""`warroom alerts serve` as a bastion runs it: a real process, real HTTP, a real log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.prom_servers import free_port
from tests.test_alerts import alert, webhook
from warroom.cli import main
from warroom.log.store import read_events

TOKEN = "bastion-token-0123456789abcdef"


def _serve(config: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warroom",
            "alerts",
            "serve",
            "--config",
            str(config),
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WARROOM_ACTOR": "bastion"},
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("alerts: http://127.0.0.1:"), first + str(process.stderr)
    return process, first.split()[1]


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out, err


def _post(url: str, body: bytes, token: str = TOKEN) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(url, content=body, headers=headers, trust_env=False, timeout=5).status_code


@pytest.mark.slow
def test_alerts_serve_writes_alerts_to_the_log_and_rejects_strangers(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = tmp_path / "warroom.toml"
    config.write_text(
        f'[alerts]\nlisten = "127.0.0.1:{free_port()}"\ntoken_file = "{tmp_path / "token"}"\n'
    )
    log = tmp_path / "incident.jsonl"
    process, url = _serve(config, log)
    try:
        assert _post(url, webhook(alert())) == 200
        hostile = alert(fingerprint="evil")
        hostile["annotations"] = {"summary": "\x1b]0;owned\x07\x1b[2Jgone\nline two"}
        assert _post(url, webhook(hostile)) == 200
        assert _post(url, webhook(alert()), token="guess") == 401
        assert _post(url, b"\x00" * 10) == 400
    finally:
        out, err = _stop(process)
    assert "alert ServiceDown firing (cache): cache refuses connections" in out
    assert "rejected (401): wrong token" in err and "rejected (400): not JSON" in err
    assert "Traceback" not in err
    assert "\x1b" not in out and "\\x1b]0;owned\\x07\\x1b[2Jgone\\x0aline two" in out
    event, evil = list(read_events(log))
    assert evil.payload()["annotations"]["summary"].startswith("\x1b]0;")  # kept as sent
    assert (event.kind, event.actor) == ("alert_observed", "bastion")
    assert event.payload()["fingerprint"] == "abc123"

    # Restarted on the same log: the repeat is not news, the resolve is.
    process, url = _serve(config, log)
    try:
        assert _post(url, webhook(alert())) == 200
        assert _post(url, webhook(alert("resolved"), status="resolved")) == 200
    finally:
        _stop(process)
    statuses = [orjson.loads(line)["status"] for line in log.read_text().splitlines()]
    assert statuses == ["firing", "firing", "resolved"]


def test_alerts_serve_without_an_alerts_section_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text("[defaults]\n")
    assert main(["alerts", "serve", "-c", str(config), "--log", str(tmp_path / "x.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err == f"warroom: {config}: no [alerts] section (listen, token, alertmanager)\n"
