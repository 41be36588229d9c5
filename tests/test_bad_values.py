"""Bad values anywhere in the input are one-line errors through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from warroom.cli import main

TARGET = '[[targets]]\nname = "web"\nhttp = "http://127.0.0.1:8080/health"\n'


def one_line(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return code, lines[0]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[defaults]\ninterval = nan\n",
            "defaults.interval: not a duration: nan (must be",
        ),
        ("[defaults]\ntimeout = inf\n", "defaults.timeout: not a duration: inf (must be a finite"),
        ("[defaults]\ntimeout = -inf\n", "defaults.timeout: not a duration: -inf"),
        ('[defaults]\ntimeout = "inf"\n', "defaults.timeout: not a duration: 'inf'"),
        ('[defaults]\ninterval = "1e400"\n', "defaults.interval: not a duration: '1e400'"),
        (
            "[defaults]\ninterval = 1e9\n",
            "must be at most 1d00h, got 1000000000.0",
        ),
        ('[incident]\nstatus_update_interval = "2d"\n', "must be at most 1d00h, got '2d'"),
        (
            '[[targets]]\nname = "w"\nhttp = "http://h:99999/x"\n',
            "targets[0].http: port out of range in 'http://h:99999/x'",
        ),
        ('[[targets]]\nname = "t"\ntcp = "h:99999"\n', "targets[0].tcp: port out of range"),
        (
            TARGET + "[targets.expect]\njson = " + "{a = " * 40 + "1" + " }" * 40 + "\n",
            "targets[0].expect.json.a.a.a",
        ),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "TOML nested too deeply"),
    ],
)
def test_bad_config_values_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, expected: str
) -> None:
    path = tmp_path / "warroom.toml"
    path.write_text(TARGET + toml if "targets" not in toml and "x = " not in toml else toml)
    code, line = one_line(capsys, "console", "--dry-run", "--config", str(path))
    assert code == 1 and line.startswith(f"warroom: {path}")
    assert expected in line


def test_deep_nesting_names_its_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "warroom.toml"
    path.write_text(TARGET + "[targets.expect]\njson = " + "{a = " * 40 + "1" + " }" * 40 + "\n")
    _, line = one_line(capsys, "console", "--dry-run", "--config", str(path))
    assert line.endswith(": nested more than 32 levels deep")


def test_config_runbook_and_token_that_are_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "warroom.toml"
    config.write_bytes(TARGET.encode() + b"# caf\xe9\nx = 1\n")
    code, line = one_line(capsys, "console", "--dry-run", "--config", str(config))
    assert code == 1 and line == f"warroom: {config}:4: not UTF-8 text (byte {len(TARGET) + 5})"
    book = tmp_path / "dns.md"
    book.write_bytes(b"# DNS\n\n## Steps\n\n1. Check \xff the record.\n")
    assert main(["runbook", "lint", str(book)]) == 1
    assert capsys.readouterr().out == f"{book}:5: not UTF-8 (byte 0xff)\n"
    for raw, why in (
        (b"\xff\xfe token\n", "cannot read"),
        ("t\u00f6k\u00e9n\n".encode(), "not a token"),
    ):
        token = tmp_path / "token"
        token.write_bytes(raw)
        code, line = one_line(
            capsys, "console", "--dry-run", "--sim", "http://127.0.0.1:9", "--token", str(token)
        )
        assert code == 1 and line.startswith(f"warroom: token file {token}: {why}")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["sim", "serve", "--admin-port", "99999"],
            "warroom sim serve: argument --admin-port: port out of range",
        ),
        (
            ["sim", "serve", "--dns-port", "-1"],
            "warroom sim serve: argument --dns-port: port out of range",
        ),
        (
            ["sim", "serve", "--speed", "nan"],
            "warroom sim serve: argument --speed: must be a finite number",
        ),
        (["probe", "--duration", "inf"], "warroom probe: argument --duration: must be a finite"),
    ],
)
def test_bad_command_line_values_are_one_line_with_exit_2(argv: list[str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warroom", *argv], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(expected), done.stderr
