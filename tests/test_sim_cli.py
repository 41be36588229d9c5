"""`warroom sim serve` as a real subprocess: admin line, serving, clean stop on signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ADMIN_LINE = re.compile(r"^admin: (http://127\.0\.0\.1:\d+) token: (\S+)$")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "warroom", "sim", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_sim_prints_admin_line_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = start("--scenario", "tutorial", "--seed", "3")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        match = ADMIN_LINE.match(line)
        assert match, line
        url, token_path = match.groups()
        assert Path(token_path).stat().st_mode & 0o777 == 0o600
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            info = json.load(resp)
        assert info["scenario"] == "tutorial" and info["seed"] == 3
        port = info["services"][0]["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
        assert not Path(token_path).exists()  # the private temp dir is removed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_sim_token_file_option_and_list(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    proc = start("--scenario", "scale-20", "--token-file", str(token_file))
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.rstrip().endswith(f"token: {token_file}")
        assert os.stat(token_file).st_mode & 0o777 == 0o600
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    listing = subprocess.run(
        [sys.executable, "-m", "warroom", "sim", "list"], capture_output=True, text=True
    )
    assert listing.returncode == 0
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert {"tutorial", "aws-us-east-1-2025", "crowdstrike-2024", "att-2024"} <= set(names)


@pytest.mark.slow
def test_sim_bad_scenario_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text(
        'name = "x"\ntitle = "x"\ndescription = "x"\nduration = "1m"\n'
        "[services.dynamodb]\ncapacity = 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "warroom", "sim", "serve", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"warroom: {bad}: services.dynamodb.capacity: must be > 0"
    assert result.stdout == ""
