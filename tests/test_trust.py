"""Files on disk trusted the way ssh trusts them; nothing from a config runs at load."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from warroom.cli import main
from warroom.sim.server import write_token_file

GOOD_RUNBOOK = "# DNS\n\n## Steps\n\n1. Check the record.\n"
CONFIG = """
[[targets]]
name = "web"
http = "http://127.0.0.1:1/health"

[[controls]]
service = "checkout"
control = "load_shed"
kind = "level"
apply = { argv = ["/usr/local/bin/lbctl", "set", "shed", "{value}"] }
read = { argv = ["/usr/local/bin/lbctl", "get", "shed; rm -rf /"] }
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(("mode", "who"), [(0o664, "its group"), (0o646, "others")])
def test_a_config_others_can_write_is_refused(
    folder: Path, capsys: pytest.CaptureFixture[str], mode: int, who: str
) -> None:
    config = folder / "warroom.toml"
    config.write_text(CONFIG)
    config.chmod(mode)
    code, out, err = run(capsys, "console", "--dry-run", "--config", str(config))
    assert code == 1 and out == ""
    assert err == (
        f"warroom: {config}: config refused: writable by {who} (mode {mode:04o}; chmod go-w)\n"
    )
    config.chmod(0o644)
    folder.chmod(0o777)
    code, _, err = run(capsys, "console", "--dry-run", "--config", str(config))
    assert code == 1 and f"config refused: its folder {folder} is writable by its group" in err
    folder.chmod(0o1777)  # sticky: nobody else can replace the file in it
    assert run(capsys, "console", "--dry-run", "--config", str(config))[0] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_a_config_or_runbook_owned_by_another_user_is_refused(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = folder / "warroom.toml"
    config.write_text(CONFIG)
    os.chown(config, 4321, -1)
    code, _, err = run(capsys, "console", "--dry-run", "--config", str(config))
    assert code == 1 and "config refused: owned by another user (uid 4321)" in err
    book = folder / "dns.md"
    book.write_text(GOOD_RUNBOOK)
    os.chown(book, 4321, -1)
    code, out, _ = run(capsys, "runbook", "lint", str(folder))
    assert code == 1 and out == f"{book}:1: refused: owned by another user (uid 4321)\n"


def test_dry_run_lists_every_command_and_runs_none(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "warroom.toml").write_text(CONFIG)
    monkeypatch.chdir(folder)
    code, out, err = run(capsys, "console", "--dry-run")
    assert code == 0 and err == ""
    assert out.splitlines() == [
        f"{folder / 'warroom.toml'}: the console would do 3 things (nothing run now):",
        "  probe web: http http://127.0.0.1:1/health every 10s",
        "  read checkout/load_shed (once the console is up, then after each change): "
        "run /usr/local/bin/lbctl get 'shed; rm -rf /'",
        "  apply checkout/load_shed (only when you confirm a change): "
        "run /usr/local/bin/lbctl set shed '{value}'",
    ]


def test_runbook_folders_others_can_write_are_refused_and_fifos_skipped(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "dns.md").write_text(GOOD_RUNBOOK)
    fifo = folder / "trap.md"
    os.mkfifo(fifo)
    writable = folder / "shared.md"
    writable.write_text(GOOD_RUNBOOK)
    writable.chmod(0o666)
    # A FIFO that is opened blocks until a writer comes: if anything opens it, this unblocks
    # it after the test's deadline instead of hanging the suite.
    unblock = threading.Timer(20, lambda: open(fifo, "wb").close())
    unblock.start()
    try:
        code, out, _ = run(capsys, "runbook", "lint", str(folder))
        assert code == 1
        assert out.splitlines() == [
            f"{writable}:1: refused: writable by its group and others (mode 0666; chmod go-w)",
            f"{fifo}:1: skipped: a FIFO, not a runbook file",
        ]
        code, out, err = run(capsys, "runbook", "list", str(folder), str(fifo))
        assert code == 0 and out.splitlines()[1].split()[0] == "dns"
        assert err.count(f"{fifo}:1: skipped: a FIFO") == 1
        folder.chmod(0o775)
        code, out, _ = run(capsys, "runbook", "lint", str(folder))
        assert out.startswith(f"{folder}:1: refused: writable by its group (mode 0775")
    finally:
        unblock.cancel()


def test_the_token_file_is_new_private_and_never_followed(tmp_path: Path) -> None:
    fresh = tmp_path / "token"
    write_token_file(fresh, "abc")
    assert fresh.read_text() == "abc\n" and fresh.stat().st_mode & 0o777 == 0o600
    victim = tmp_path / "victim"
    victim.write_text("someone else's file\n")
    link = tmp_path / "link"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for path in (fresh, victim, link, dangling):
        with pytest.raises(Exception, match="already exists; the token file must be new") as info:
            write_token_file(path, "stolen")
        assert "\n" not in str(info.value)
    assert victim.read_text() == "someone else's file\n"
    assert not (tmp_path / "nowhere").exists()
