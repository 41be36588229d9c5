"""`warroom runbook lint` / `list` through the real CLI: every problem as file:line: message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from warroom.cli import main
from warroom.runbooks.library import default_dirs, load_library, shipped_dir

GOOD = """\
---
title: Good
services: [web]
---
## Mitigation
- [ ] Shed load
  - action: `web/load_shed = 20`
  - verify: `web is up`
"""

# file name -> (content, expected lines after "<path>:")
CASES: dict[str, tuple[str, list[str]]] = {
    "bad-front-matter.md": (
        "---\ntitle: T\nthis is not a key value\n---\n",
        ["3: bad front matter line (expected 'key: value'): this is not a key value"],
    ),
    "unknown-key.md": (
        "---\ntitle: T\nservice: [web]\n---\n",
        [
            "3: unknown front-matter key 'service' "
            "(known: title, services, states, severity, alerts)"
        ],
    ),
    "bad-action.md": (
        "# T\n\n- [ ] Throttle\n  - action: `ec2-launch/rate_limit 50`\n",
        ["4: action not 'service/control = value': 'ec2-launch/rate_limit 50'"],
    ),
    "bad-verify.md": (
        "# T\n\n- [ ] Check\n  - verify: `dynamodb comes back`\n",
        [
            "4: verification 'dynamodb comes back' not understood: expected '<target> is "
            "<state>[ or <state>]', '<target> is not <state>' or 'all <service> targets are "
            "<state>', joined by ' and '"
        ],
    ),
    "unknown-state.md": (
        "---\ntitle: T\nstates: [down, broken]\n---\n- [ ] Check\n  - verify: `web is red`\n",
        [
            "3: unknown state 'broken' (expected up, degraded, down, unknown)",
            "6: unknown state 'red' in verification 'web is red' (expected up, degraded, down, "
            "unknown)",
        ],
    ),
    "duplicate-ids.md": (
        "- [ ] One\n  - id: fix\n- [ ] Two\n  - id: fix\n",
        ["4: duplicate step id 'fix' (also line 2)"],
    ),
    "unterminated.md": (
        "---\ntitle: T\n\n# Body\n",
        ["1: unterminated front matter: no closing '---' line"],
    ),
    "empty-title.md": ("---\ntitle:\n---\n# Body\n", ["2: empty title"]),
    "outside-step.md": (
        "# T\n\n- Restart the host\n  - action: `web/capacity = 50`\n",
        [
            "4: step annotation 'action:' outside a step (put it under a '- [ ]' item)",
        ],
    ),
    "not-utf8.md": ("", ["2: not UTF-8 (byte 0xe9)"]),
    "severity.md": (
        "---\ntitle: T\nseverity: P1\n---\n",
        ["3: unknown severity 'P1' (expected SEV1, SEV2, SEV3, SEV4)"],
    ),
    "two-actions.md": (
        "- [ ] Fix\n  - action: `a/b = 1`\n  - action: `a/b = 2`\n",
        ["3: step already has an action (line 2)"],
    ),
}


@pytest.fixture
def lint_dir(tmp_path: Path) -> Path:
    for name, (content, _) in CASES.items():
        if name == "not-utf8.md":
            (tmp_path / name).write_bytes(b"# T\ncaf\xe9\n")
        else:
            (tmp_path / name).write_text(content)
    (tmp_path / "good.md").write_text(GOOD)
    (tmp_path / "README.md").write_text("---\nnot: a runbook\n")
    (tmp_path / "gone.md").symlink_to(tmp_path / "missing-target.md")
    return tmp_path


def _expected(folder: Path) -> list[str]:
    lines = [f"{folder / 'gone.md'}:1: cannot read file: No such file or directory"]
    for name, (_, messages) in CASES.items():
        lines += [f"{folder / name}:{m}" for m in messages]
    return sorted(lines, key=lambda line: (line.split(":")[0], int(line.split(":")[1])))


def test_every_problem_as_file_line_message(
    lint_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runbook", "lint", str(lint_dir)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == _expected(lint_dir)
    assert err.strip() == f"{len(_expected(lint_dir))} problems in 13 files (14 checked)"


def test_clean_runbooks_say_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.md").write_text(GOOD)
    (tmp_path / "b.md").write_text("# Only prose\n\n## Meaning\n\nNo steps at all.\n")
    assert main(["runbook", "lint", str(tmp_path / "a.md"), str(tmp_path / "b.md")]) == 0
    assert capsys.readouterr().out == "2 runbooks ok\n"


def test_missing_path_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "lint", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().out == f"{tmp_path / 'nope'}:1: no such runbook file or folder\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "secret.md"
    path.write_text(GOOD)
    path.chmod(0)
    assert main(["runbook", "lint", str(path)]) == 1
    assert capsys.readouterr().out == f"{path}:1: cannot read file: Permission denied\n"


@pytest.mark.slow
def test_lint_as_a_command(lint_dir: Path) -> None:
    """The installed entry point, as a responder runs it on a bastion."""
    done = subprocess.run(
        [sys.executable, "-m", "warroom", "runbook", "lint", str(lint_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == _expected(lint_dir)
    assert "Traceback" not in done.stderr


def test_list(lint_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(lint_dir / "good.md"), str(lint_dir / "bad-action.md")]
    assert main(["runbook", "list", *files]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(f"{lint_dir / 'bad-action.md'}:4: action not")
    rows = [line.split() for line in out.splitlines()]
    assert rows == [
        ["ID", "TITLE", "SERVICES", "STEPS"],
        ["good", "Good", "web", "1"],
        ["bad-action", "T", "-", "1"],
    ]


def test_library_keeps_going_past_bad_files(lint_dir: Path) -> None:
    runbooks, problems = load_library([lint_dir])
    ids = {rb.id for rb in runbooks}
    # Unusable files are left out; files with bad annotations load without them.
    assert {"gone", "not-utf8", "unterminated"}.isdisjoint(ids)
    assert {"good", "bad-action", "duplicate-ids", "unknown-key"} <= ids
    assert "readme" not in {i.lower() for i in ids}
    assert len(problems) == len(_expected(lint_dir))


def test_first_folder_wins_for_an_id(tmp_path: Path) -> None:
    mine, shipped = tmp_path / "mine", tmp_path / "shipped"
    mine.mkdir()
    shipped.mkdir()
    (mine / "triage.md").write_text("# Mine\n")
    (shipped / "triage.md").write_text("# Shipped\n")
    (shipped / "other.md").write_text("# Other\n")
    runbooks, problems = load_library([mine, shipped])
    assert [(rb.id, rb.title) for rb in runbooks] == [("triage", "Mine"), ("other", "Other")]
    assert problems == []


def test_default_dirs_find_the_shipped_runbooks(tmp_path: Path) -> None:
    shipped = shipped_dir()
    assert shipped is not None and shipped.name in ("runbooks", "_runbooks")
    extra = tmp_path / "extra"
    assert default_dirs([extra], cwd=tmp_path) == [extra, shipped]
    (tmp_path / "runbooks").mkdir()
    assert default_dirs([], cwd=tmp_path) == [tmp_path / "runbooks", shipped]


UNREAD = """\
---
title: Unread
services: [web, nosuch]
---
## Mitigation
- [ ] Shed load
  action: `web/load_shed = 20`
- [ ] Check it
  - verify: `web is up`
  verify: `web is down`

  Then, on its own line under the step:
  id: shed
- [ ] Prose is fine
  Verify: the queue drains before going on.

```sh
action: not-an-annotation
```
- [ ] Wired
  - action: `web/failover = true`
  - verify: `ghost is up and all nosvc targets are up`
"""

CONFIG = """
[[targets]]
name = "web-1"
service = "web"
http = "http://127.0.0.1:1/"

[[controls]]
service = "web"
control = "load_shed"
kind = "level"
apply = { url = "http://127.0.0.1:1/shed" }
read = { url = "http://127.0.0.1:1/shed" }
"""


def test_lint_reports_annotations_the_parser_would_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "unread.md"
    book.write_text(UNREAD)
    assert main(["runbook", "lint", str(book)]) == 1
    out = capsys.readouterr().out.splitlines()
    hint = "here is not read (it is part of the text above it): write it as its own list item"
    assert out == [
        f"{book}:7: 'action:' {hint}, '- action: …', indented under the step's '- [ ]' line",
        f"{book}:9: verification 'web is up` verify: `web is down' not understood: expected "
        "'<target> is <state>[ or <state>]', '<target> is not <state>' or 'all <service> "
        "targets are <state>', joined by ' and '",
        f"{book}:10: 'verify:' {hint}, '- verify: …', indented under the step's '- [ ]' line",
        f"{book}:13: 'id:' {hint}, '- id: …', indented under the step's '- [ ]' line",
    ]


def test_lint_with_a_config_names_unknown_services_levers_and_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "unread.md"
    book.write_text(UNREAD)
    config = tmp_path / "warroom.toml"
    config.write_text(CONFIG)
    assert main(["runbook", "lint", "--config", str(config), str(book)]) == 1
    out = [line for line in capsys.readouterr().out.splitlines() if " in the config" in line]
    assert out == [
        f"{book}:3: service 'nosuch' is not in the config (services: web)",
        f"{book}:21: action: no lever web/failover in the config (levers: web/load_shed)",
        f"{book}:22: verify: no target 'ghost' in the config (targets: web-1)",
        f"{book}:22: verify: no service 'nosvc' in the config (services: web)",
    ]
    good = tmp_path / "good.md"
    good.write_text(GOOD.replace("web is up", "web-1 is up"))
    assert main(["runbook", "lint", "--config", str(config), str(good)]) == 0


def test_list_and_lint_never_print_a_runbook_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "evil.md"
    book.write_text(
        '---\ntitle: "ok\x1b]52;c;UFdORUQ=\x07\x1b[2J"\nservices: [web]\n---\n'
        "- [ ] x\n  - action: `a/b \x1b[8m= 1`\n"
    )
    assert main(["runbook", "list", str(book)]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "ok␛]52;c;UFdORUQ=␇␛[2J" in out
    main(["runbook", "lint", str(book)])
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "a/b \\x1b[8m= 1" in out
