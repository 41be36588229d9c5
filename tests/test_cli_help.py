"""The `warroom` command line: `--as` anywhere, per-command help, group commands alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom import events as ev
from warroom.cli import main
from warroom.log.store import IncidentLog

GROUPS = {
    "log": ["verify", "show", "export", "import"],
    "runbook": ["lint", "list"],
    "db": ["init"],
    "alerts": ["serve"],
    "sim": ["serve", "list", "rules", "run", "moves"],
}
#: Every leaf command, as typed.
COMMANDS = [
    ["demo"],
    ["console"],
    ["sim", "serve"],
    ["sim", "list"],
    ["sim", "rules"],
    ["sim", "run"],
    ["sim", "moves"],
    ["alerts", "serve"],
    ["probe"],
    ["log", "verify"],
    ["log", "show"],
    ["log", "export"],
    ["log", "import"],
    ["db", "init"],
    ["note"],
    ["runbook", "lint"],
    ["runbook", "list"],
    ["replay"],
    ["report"],
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # --help exits through argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def actors(path: Path) -> list[tuple[str, str]]:
    log = IncidentLog.open(path, readonly=True)
    try:
        return [(e.actor, e.text) for e in log.read() if isinstance(e, ev.NoteAdded)]
    finally:
        log.close()


def test_as_works_before_and_after_the_subcommand_and_between_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARROOM_ACTOR", raising=False)
    path = str(tmp_path / "inc.jsonl")
    assert run(capsys, "note", "--create", path, "first", "--as", "bob")[0] == 0
    monkeypatch.delenv("WARROOM_ACTOR", raising=False)
    assert run(capsys, "--as", "carol", "note", path, "second")[0] == 0
    monkeypatch.delenv("WARROOM_ACTOR", raising=False)
    assert run(capsys, "note", path, "db", "--as", "dave", "failing", "over")[0] == 0
    monkeypatch.delenv("WARROOM_ACTOR", raising=False)
    # Closest to the command wins, as with git -c.
    assert run(capsys, "--as", "erin", "note", path, "fourth", "--as", "frank")[0] == 0
    assert actors(Path(path)) == [
        ("bob", "first"),
        ("carol", "second"),
        ("dave", "db failing over"),
        ("frank", "fourth"),
    ]


def test_an_unknown_option_after_the_words_is_still_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inc.jsonl"
    code, out, err = run(capsys, "note", "--create", str(path), "words", "--bogus")
    assert code == 2 and out == ""
    assert err == "warroom: unrecognized arguments: --bogus (see warroom --help)\n"
    assert not path.exists()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_help_has_a_description_and_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *command, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"usage: warroom {' '.join(command)} ")
    examples = out.split("\nexamples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith(f"  warroom {command[0]}") for line in examples)
    assert "(default: None)" not in out and "(default: False)" not in out
    # a flag's "default" is whatever it sets when absent (`--dry-run`'s entry point), not news
    assert "(default: warroom." not in out and "(default: True)" not in out


def test_help_shows_defaults_and_the_scenario_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # no wrapping inside the words checked
    _, demo, _ = run(capsys, "demo", "--help")
    flat = " ".join(demo.split())
    assert "att-2024, aws-us-east-1-2025, crowdstrike-2024, tutorial, scale-N" in flat
    assert "(default: aws-us-east-1-2025)" in flat
    assert "--seed SEED random seed of the fleet (default: 1)" in flat
    _, rules, _ = run(capsys, "sim", "rules", "--help")
    assert "(default: 10s)" in rules and "(default: warroom-sim)" in rules
    _, note, _ = run(capsys, "note", "--help")
    assert "--as NAME" in note


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_a_group_alone_prints_its_own_help_and_exits_2(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, group)
    assert code == 2 and out == ""
    assert err.startswith(f"usage: warroom {group} [-h] COMMAND ...")
    for name in GROUPS[group]:
        assert f"\n    {name} " in err
    last = err.rstrip("\n").splitlines()[-1]
    assert last == f"warroom {group}: missing COMMAND (one of: {', '.join(GROUPS[group])})"


def test_warroom_alone_prints_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    assert err.startswith("usage: warroom [-h] [--version] [--as NAME] COMMAND ...")
    assert err.rstrip().splitlines()[-1].startswith("warroom: missing COMMAND (one of: demo, ")


@pytest.mark.parametrize(
    "argv",
    [
        ["demo"],
        ["console", "-c", "warroom.toml"],
        ["alerts", "serve", "--log", "x.jsonl"],
        ["probe", "-c", "warroom.toml"],
        ["note", "x.jsonl", "text"],
    ],
    ids=lambda argv: argv[0] if argv[0] != "alerts" else "alerts serve",
)
def test_every_command_that_records_takes_as_on_either_side(argv: list[str]) -> None:
    from warroom.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([*argv, "--as", "bob"]).actor == "bob"
    assert parser.parse_args(["--as", "carol", *argv]).actor == "carol"
    assert parser.parse_args(argv).actor is None


def test_sim_with_a_serving_option_but_no_command_names_sim_serve(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "sim", "--scenario", "att-2024")
    assert code == 2 and out == ""
    assert err == (
        "warroom sim: --scenario is an option of `warroom sim serve` "
        "(to serve the fleet: warroom sim serve --scenario att-2024)\n"
    )
