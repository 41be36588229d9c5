"""`warroom note`, `warroom log show` and `warroom log verify` through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import PAYLOADS, assert_terminal_safe, utf8

from warroom import events as ev
from warroom.cli import main
from warroom.log import codec
from warroom.log.store import IncidentLog, LogError


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("warroom: ")
    return lines[0]


def test_note_creates_the_log_only_when_asked_and_says_what_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARROOM_ACTOR", raising=False)
    path = tmp_path / "incidents" / "inc-1.jsonl"
    code, out, err = run(capsys, "note", str(path), "DNS", "record", "is", "empty")
    assert code == 1 and out == ""
    assert one_line_error(err) == (
        f"warroom: {path}: no such incident log (check the name; --create starts a new one)"
    )
    assert not path.exists() and not path.parent.exists()
    done = run(capsys, "note", "--create", str(path), "DNS", "record", "is", "empty")
    assert done == (0, f"note #1 added to {path}\n", "")
    done = run(capsys, "--as", "alice", "note", str(path), "failing over")
    assert done == (0, f"note #2 added to {path}\n", "")
    events = list(IncidentLog.open(path, readonly=True).read())
    assert [type(e) for e in events] == [ev.NoteAdded, ev.NoteAdded]
    assert events[0].text == "DNS record is empty"  # type: ignore[attr-defined]
    assert events[1].actor == "alice"
    assert events[0].actor and events[0].actor != "alice"


def test_show_prints_one_line_per_event_including_unknown_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append(ev.NoteAdded(text="two\nlines", actor="bob", ts="2025-10-20T06:48:00.123456Z"))
    log.append(ev.SeveritySet(severity="SEV1", actor="carol"))
    line, _ = codec.encode(
        {
            "v": 2,
            "seq": 3,
            "ts": "2025-10-20T07:00:00.000000Z",
            "actor": "zed",
            "kind": "pager_escalated",
            "policy": "tier-2",
            "prev": log.head,
        }
    )
    with path.open("ab") as fh:
        fh.write(line)
    code, out, err = run(capsys, "log", "show", "--utc", str(path))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["1", "2025-10-20", "06:48:00", "bob", "note:", "two", "⏎", "lines"]
    assert lines[1].split()[3:] == ["carol", "severity", "set", "to", "SEV1"]
    assert lines[2].split()[:4] == ["3", "2025-10-20", "07:00:00", "zed"]
    assert "pager_escalated" in lines[2] and "tier-2" in lines[2]


def test_show_reports_a_torn_tail_once_without_touching_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append(ev.NoteAdded(text="kept"))
    with path.open("ab") as fh:
        fh.write(b'{"actor":"x","kin')
    before = path.read_bytes()
    code, out, err = run(capsys, "log", "show", str(path))
    assert code == 0 and "note: kept" in out
    assert "inc.jsonl:2: torn last line" in one_line_error(err)
    assert path.read_bytes() == before


def test_show_of_a_file_imports_no_pydantic(tmp_path: Path) -> None:
    """`log show` of a million lines is a few seconds; building the event models would add
    a fifth of a second before the first line, and a torn tail is still said."""
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append(ev.NoteAdded(text="kept"))
    with path.open("ab") as fh:
        fh.write(b'{"actor":"x","kin')
    probe = (
        "import sys\n"
        "from warroom.cli import main\n"
        f"code = main(['log', 'show', {str(path)!r}])\n"
        "print('loaded' if 'pydantic' in sys.modules else 'light', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines()[-1] == "light 0", done.stdout
    assert "note: kept" in done.stdout and "inc.jsonl:2: torn last line" in done.stderr


def test_verify_exit_codes_and_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append_many([ev.NoteAdded(text=str(i)) for i in range(12)])
    code, out, err = run(capsys, "log", "verify", str(path))
    assert code == 0 and err == ""
    assert (
        out.startswith("ok: 12 events, chain intact, log head #12 sha256:") and out.count("\n") == 1
    )
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:6], *lines[7:]]))
    code, out, err = run(capsys, "log", "verify", str(path))
    assert code == 1
    assert out == f"{path}:7: seq 7: deleted (seq 7 missing: line 7 jumps from seq 6 to seq 8)\n"


def _immutable_or_readonly(path: Path) -> None:
    """Make `path` unwritable for this process (root ignores modes: use the immutable flag)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make a file unwritable")


def test_bad_inputs_give_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"level": "info", "msg": "hello"}\n{"level": "warn"}\n')
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    missing = tmp_path / "missing.jsonl"
    missing_dir = tmp_path / "nope" / "missing.jsonl"
    wrong_type = tmp_path / "wrong.jsonl"
    IncidentLog.open(wrong_type).append(ev.NoteAdded(text="x"))
    wrong_type.write_bytes(wrong_type.read_bytes().replace(b'"text":"x"', b'"text":5'))
    garbled = tmp_path / "garbled.jsonl"
    IncidentLog.open(garbled).append_many([ev.NoteAdded(text="a"), ev.NoteAdded(text="b")])
    first, second = garbled.read_bytes().splitlines(keepends=True)
    garbled.write_bytes(first + b"{not json at all\n" + second)

    cases = [
        (("log", "verify", str(missing)), f"{missing}: no such file"),
        (("log", "show", str(missing)), f"{missing}: no such file"),
        (("log", "verify", str(tmp_path)), f"{tmp_path}: is a directory"),
        (("log", "show", str(tmp_path)), f"{tmp_path}: is a directory"),
        (("note", str(tmp_path), "x"), f"{tmp_path}: is a directory"),
        (("log", "show", str(other)), f"{other}:1: not a warroom incident log"),
        (("note", str(other), "x"), f"{other}:1: not a warroom incident log"),
        (("log", "show", str(binary)), f"{binary}:1: not a warroom incident log"),
        (("note", str(binary), "x"), f"{binary}:1: not a warroom incident log"),
        (("log", "show", str(wrong_type)), f"{wrong_type}:1: note_added: field 'text'"),
        (("log", "show", str(garbled)), f"{garbled}:2: not JSON ("),
        (("note", str(missing), "  "), "a note needs some text"),
        (("note", str(missing), "x"), f"{missing}: no such incident log"),
        (("note", str(missing_dir), "x"), f"{missing_dir}: no such incident log"),
    ]
    for argv, expected in cases:
        code, _out, err = run(capsys, *argv)
        assert code == 1, argv
        assert expected in one_line_error(err), (argv, err)
    # verify reports files that are not logs as its one result line, on stdout.
    for path, why in ((other, "not an event"), (binary, "bad JSON")):
        code, out, err = run(capsys, "log", "verify", str(path))
        assert code == 1 and err == ""
        assert out.startswith(f"{path}:1: seq 1: {why}") and out.count("\n") == 1
    assert other.read_text().startswith('{"level"') and not missing.exists()
    assert not missing_dir.parent.exists()


@pytest.mark.slow
def test_no_permission_is_one_line_through_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append(ev.NoteAdded(text="x"))
    _immutable_or_readonly(path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "warroom", "note", str(path), "blocked"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
    assert done.returncode == 1
    assert one_line_error(done.stderr) == f"warroom: {path}: permission denied (open for appending)"


@pytest.mark.slow
def test_show_follow_prints_events_as_they_are_appended(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append(ev.NoteAdded(text="before"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "log", "show", "--follow", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "note: before" in proc.stdout.readline()
        time.sleep(0.1)
        log.append(ev.NoteAdded(text="while following"))
        assert "note: while following" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_show_skips_junk_lines_in_the_middle_and_goes_on_to_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append_many([ev.NoteAdded(text=f"n{i}") for i in range(5)])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], b"junk\n", *lines[1:3], b'{"a":1}\n', *lines[3:]]))
    code, out, err = run(capsys, "log", "show", str(path))
    assert code == 1
    assert [line.split()[-1] for line in out.splitlines()] == [f"n{i}" for i in range(5)]
    assert err.splitlines() == [
        f"warroom: {path}:2: not JSON (unexpected character, expected a JSON value) (line skipped)",
        f"warroom: {path}:5: not an event: no string 'kind' (line skipped)",
    ]


@pytest.mark.slow
def test_show_never_lets_an_actor_or_note_reach_the_terminal_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    recordable = {n: p for n, p in PAYLOADS.items() if utf8(p)}
    for name, payload in recordable.items():
        log.append(ev.NoteAdded(text=payload, actor=PAYLOADS["newline_forge"]))
        log.append(ev.ProbeStateChanged(target=payload, from_state="up", to_state="down"))
        log.append(ev.TitleSet(title=name + payload[:100]))
    code, out, err = run(capsys, "log", "show", str(path))
    assert code == 0 and err == ""
    lines = out.split("\n")
    assert lines.pop() == ""
    assert len(lines) == 3 * len(recordable)
    for line in lines:
        assert_terminal_safe(line, one_line=True)
    assert "alice ⏎      9  2025-10-20 07:00:00  root  note: forged" in lines[0]
    assert "note: ␛]52;c;UFdORUQ=␇␛[2J" in out


def test_verify_head_anchor_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append_many([ev.NoteAdded(text=str(i)) for i in range(6)])
    code, out, _ = run(capsys, "log", "verify", str(path))
    head = out.strip().split(", ")[-1]
    assert code == 0 and head.startswith("log head #6 sha256:") and len(head) == 19 + 64
    assert run(capsys, "log", "verify", str(path), "--head", head)[0] == 0
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]))
    code, out, err = run(capsys, "log", "verify", str(path), "--head", head)
    assert code == 1 and err == ""
    assert out.startswith(f"{path}:5: seq 5: head anchor mismatch (the anchor {head} is beyond")
    assert "2 events cut from the end" in out
    code, _, err = run(capsys, "log", "verify", str(path), "--head", "nonsense")
    assert code == 1 and "--head: not a head anchor: 'nonsense'" in one_line_error(err)


@pytest.mark.slow
def test_a_note_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append(ev.NoteAdded(text="x"))
    before = path.read_bytes()
    for argv in (
        [b"note", os.fsencode(path), b"caf\xc3"],
        [b"--as", b"\xff\xfe", b"note", os.fsencode(path), b"ok"],
    ):
        done = subprocess.run(
            [os.fsencode(sys.executable), b"-m", b"warroom", *argv],
            capture_output=True,
            timeout=30,
        )
        assert done.returncode == 1
        assert b"is not valid UTF-8" in done.stderr and b"Traceback" not in done.stderr
        assert done.stderr.count(b"\n") == 1
    assert path.read_bytes() == before


def test_text_that_is_not_utf8_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append(ev.NoteAdded(text="x"))
    with pytest.raises(LogError, match="cannot record an event: str is not valid UTF-8"):
        log.append(ev.NoteAdded(text=PAYLOADS["lone_surrogate"]))
    assert log.append(ev.NoteAdded(text="y")).seq == 2


def test_show_prints_local_times_dated_only_off_the_incident_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        path = tmp_path / "inc.jsonl"
        log = IncidentLog.open(path)
        for ts in ("2025-10-20T11:52:14.5Z", "2025-10-20T23:59:59Z", "2025-10-21T04:00:01Z"):
            log.append(ev.NoteAdded(text="x", actor="bob", ts=ts))
        log.append(
            ev.ControlApplied(
                request_id="r",
                service="db",
                control="rate_limit",
                value=250,
                unit="req/s",
                ts="2025-10-21T04:00:02Z",
                actor="svc",
            )
        )
        log.close()
        code, out, err = run(capsys, "log", "show", str(path))
        assert (code, err) == (0, "")
        # The incident started on Oct 20 in New York: 04:00Z on the 21st is still that day.
        assert [line.lstrip().split("  ")[1:3] for line in out.splitlines()] == [
            ["07:52:14", "bob"],
            ["19:59:59", "bob"],
            ["Oct 21 00:00:01", "bob"],
            ["Oct 21 00:00:02", "svc"],
        ]
        assert out.splitlines()[-1].endswith("  db.rate_limit = 250 req/s applied")
        code, out, err = run(capsys, "log", "show", "--utc", str(path))
        assert [line.lstrip().split("  ")[1] for line in out.splitlines()][::3] == [
            "2025-10-20 11:52:14",
            "2025-10-21 04:00:02",
        ]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_counts_read_in_the_singular_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inc.jsonl"
    assert run(capsys, "note", "--create", str(path), "only", "one")[0] == 0
    code, out, _ = run(capsys, "log", "verify", str(path))
    assert code == 0 and out.startswith("ok: 1 event, chain intact")
    assert run(capsys, "note", str(path), "two")[0] == 0
    assert run(capsys, "log", "verify", str(path))[1].startswith("ok: 2 events, chain intact")
