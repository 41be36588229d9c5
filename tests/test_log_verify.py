"""`verify_log`: every kind of tampering is found at the right seq, with file:line and why."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from warroom import events as ev
from warroom.errors import WarroomError
from warroom.log import codec
from warroom.log.anchor import Anchor, format_head, head_before, parse_anchor
from warroom.log.store import IncidentLog
from warroom.log.verify import verify_log

N = 10


def make_log(path: Path, n: int = N) -> list[bytes]:
    events: list[ev.BaseEvent] = []
    for i in range(n):
        if i % 3 == 0:
            events.append(ev.NoteAdded(text=f"note {i}"))
        elif i % 3 == 1:
            events.append(
                ev.ProbeStateChanged(
                    target="dynamodb-dns", from_state="up", to_state="down", reason="NXDOMAIN"
                )
            )
        else:
            events.append(
                ev.ControlRequested(
                    request_id=f"r{i}",
                    service="ec2-launch",
                    control="rate_limit",
                    to_value=10,
                    reason="throttle",
                )
            )
    IncidentLog.open(path).append_many(events)
    return path.read_bytes().splitlines(keepends=True)


def forged(seq: int, prev: str, text: str = "forged") -> bytes:
    """A well-formed event with a correctly recomputed hash, as a careful forger would write."""
    line, _ = codec.encode(
        {
            "v": 1,
            "seq": seq,
            "ts": "2025-10-20T06:48:00.000000Z",
            "actor": "mallory@host",
            "kind": "note_added",
            "text": text,
            "prev": prev,
        }
    )
    return line


def rehashed(line: bytes, **changes: object) -> bytes:
    obj = codec.decode(line)
    obj.update(changes)
    del obj["hash"]
    return codec.encode(obj)[0]


def hash_of(line: bytes) -> str:
    return str(codec.decode(line)["hash"])


Tamper = Callable[[list[bytes]], list[bytes]]

CASES: dict[str, tuple[Tamper, str, int, int]] = {
    # name: (tamper, reason, first bad seq, line)
    "edit a field": (
        lambda ls: [*ls[:4], ls[4].replace(b"NXDOMAIN", b"SERVFAIL"), *ls[5:]],
        "edited",
        5,
        5,
    ),
    "edit a field and recompute its hash": (
        lambda ls: [*ls[:4], rehashed(ls[4], reason="benign"), *ls[5:]],
        "edited",
        5,
        5,
    ),
    "edit the first event's prev and recompute": (
        lambda ls: [rehashed(ls[0], prev="1" * 64), *ls[1:]],
        "edited",
        1,
        1,
    ),
    "delete an event": (lambda ls: [*ls[:4], *ls[5:]], "deleted", 5, 5),
    "delete two events": (lambda ls: [*ls[:4], *ls[6:]], "deleted", 5, 5),
    "delete the first event": (lambda ls: ls[1:], "deleted", 1, 1),
    "insert a forged event chained to its predecessor": (
        lambda ls: [*ls[:4], forged(5, hash_of(ls[3])), *ls[4:]],
        "inserted",
        5,
        5,
    ),
    "insert a forged event with a made-up prev": (
        lambda ls: [*ls[:4], forged(5, "2" * 64), *ls[4:]],
        "inserted",
        5,
        5,
    ),
    "insert a copy of an earlier event": (
        lambda ls: [*ls[:7], ls[1], *ls[7:]],
        "inserted",
        8,
        8,
    ),
    "insert a forged copy of the last event's place": (
        lambda ls: [*ls, forged(N, hash_of(ls[-2]))],
        "inserted",
        N + 1,
        N + 1,
    ),
    "swap two adjacent events": (
        lambda ls: [*ls[:4], ls[5], ls[4], *ls[6:]],
        "reordered",
        5,
        5,
    ),
    "swap two distant events": (
        lambda ls: [*ls[:2], ls[7], *ls[3:7], ls[2], *ls[8:]],
        "reordered",
        3,
        3,
    ),
    "move an event to the end": (lambda ls: [*ls[:3], *ls[4:], ls[3]], "reordered", 4, 4),
    "truncate mid-line": (lambda ls: [*ls[:-1], ls[-1][:40]], "torn tail", N, N),
    "zero-filled tail": (lambda ls: [*ls, b"\0" * 64], "torn tail", N + 1, N + 1),
    "garbage line in the middle": (
        lambda ls: [*ls[:4], b"<<garbage>>\n", *ls[4:]],
        "bad JSON",
        5,
        5,
    ),
    "empty line in the middle": (lambda ls: [*ls[:4], b"\n", *ls[4:]], "bad JSON", 5, 5),
    "another tool's object in the middle": (
        lambda ls: [*ls[:4], b'{"level":"info","msg":"hi"}\n', *ls[4:]],
        "not an event",
        5,
        5,
    ),
    "wrong type for seq": (
        lambda ls: [*ls[:4], ls[4].replace(b'"seq":5', b'"seq":"5"'), *ls[5:]],
        "not an event",
        5,
        5,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tampering_is_reported_at_the_first_bad_seq(tmp_path: Path, name: str) -> None:
    tamper, reason, seq, line = CASES[name]
    path = tmp_path / "inc.jsonl"
    lines = make_log(path)
    assert verify_log(path).ok
    path.write_bytes(b"".join(tamper(list(lines))))
    result = verify_log(path)
    assert not result.ok
    assert (result.reason, result.first_bad_seq, result.line) == (reason, seq, line), (
        result.message()
    )
    message = result.message()
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: seq {seq}: {reason} (")
    assert result.count == seq - 1


def test_an_intact_log_reports_count_and_head(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    make_log(path, 25)
    log = IncidentLog.open(path)
    result = verify_log(path)
    assert result.ok and result.count == 25 and result.head == log.head
    assert result.message() == f"ok: 25 events, chain intact, log head #25 sha256:{log.head}"


def test_an_empty_log_is_intact(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    path.write_bytes(b"")
    result = verify_log(path)
    assert result.ok and result.count == 0 and result.head == codec.GENESIS


def test_a_line_in_another_key_order_is_refused_as_not_canonical(tmp_path: Path) -> None:
    """A line rewritten by another JSON tool hashes right but could hide a second reading."""
    path = tmp_path / "inc.jsonl"
    lines = make_log(path, 3)
    obj = json.loads(lines[1])
    reordered = json.dumps(dict(reversed(list(obj.items()))), ensure_ascii=True).encode() + b"\n"
    path.write_bytes(lines[0] + reordered + lines[2])
    result = verify_log(path)
    assert (result.ok, result.reason, result.first_bad_seq, result.line) == (
        False,
        "not canonical",
        2,
        2,
    )
    assert result.count == 1 and "canonical form" in result.message()


def test_a_duplicate_key_is_refused_even_when_the_hash_still_matches(tmp_path: Path) -> None:
    """orjson keeps the last of two keys; another reader may show the first: never intact."""
    path = tmp_path / "inc.jsonl"
    lines = make_log(path, 4)
    assert b'"text":"note 3"' in lines[3]
    duplicated = lines[3].replace(b'{"actor"', b'{"text":"all clear","actor"', 1)
    assert codec.decode(duplicated)["text"] == "note 3"  # the hash still matches this reading
    path.write_bytes(b"".join([*lines[:3], duplicated]))
    result = verify_log(path)
    assert (result.reason, result.first_bad_seq, result.line) == ("not canonical", 4, 4)
    assert "the key 'text' appears twice" in result.message()
    assert result.count == 3 and result.head == hash_of(lines[2])


def test_a_forged_insertion_before_the_last_event_is_blamed_not_the_genuine_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inc.jsonl"
    lines = make_log(path)
    path.write_bytes(b"".join([*lines[:-1], forged(N, hash_of(lines[-2])), lines[-1]]))
    result = verify_log(path)
    assert (result.reason, result.first_bad_seq, result.line) == ("inserted", N, N)
    assert result.count == N - 1 and result.head == hash_of(lines[-2])
    assert f"line {N + 1} holds the genuine seq {N}" in result.message()


def test_a_recorded_head_decides_between_two_claims_of_the_last_place(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    lines = make_log(path)
    # Same time as the genuine event: only the anchor can tell them apart.
    genuine = codec.decode(lines[-1])
    twin = rehashed(forged(N, hash_of(lines[-2])), ts=genuine["ts"])
    path.write_bytes(b"".join([*lines[:-1], twin, lines[-1]]))
    undecided = verify_log(path)
    assert undecided.reason == "inserted" and undecided.count == N - 1
    assert f"lines {N} and {N + 1} both claim seq {N}" in undecided.message()
    decided = verify_log(path, anchor=parse_anchor(f"{genuine['hash']}:{N}"))
    assert (decided.reason, decided.line) == ("inserted", N)
    assert "the recorded head names" in decided.message()


def test_a_head_anchor_detects_whole_events_cut_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    lines = make_log(path)
    full = verify_log(path)
    anchor = parse_anchor(full.head_text())
    assert anchor == Anchor(full.head, N)
    held = verify_log(path, anchor=anchor)
    assert held.ok and held.message() == (
        f"ok: {N} events, chain intact, holds log head #{N} sha256:{full.head}, "
        f"log head #{N} sha256:{full.head}"
    )
    earlier = verify_log(path, anchor=parse_anchor(f"sha256:{hash_of(lines[4])}"))
    assert earlier.ok and f"log head #5 sha256:{hash_of(lines[4])}" in earlier.anchor

    path.write_bytes(b"".join(lines[:-3]))
    assert verify_log(path).ok  # what no chain alone can see
    for text in (full.head_text(), f"{full.head}:{N}"):
        cut = verify_log(path, anchor=parse_anchor(text))
        assert not cut.ok and cut.reason == "head anchor mismatch"
        assert cut.message() == (
            f"{path}:{N - 2}: seq {N - 2}: head anchor mismatch (the anchor log head #{N} "
            f"sha256:{full.head} is beyond the log's end at seq {N - 3}: 3 events cut from "
            "the end)"
        )
    bare = verify_log(path, anchor=parse_anchor(full.head))
    assert not bare.ok and "no event carries the anchored hash" in bare.message()
    wrong_seq = verify_log(path, anchor=parse_anchor(f"{hash_of(lines[2])}:5"))
    assert not wrong_seq.ok and "is at seq 3 (line 3), not seq 5" in wrong_seq.message()


def test_anchor_text_round_trips_and_bad_anchors_are_one_line_errors() -> None:
    digest = "ab" * 32
    assert format_head(7, digest) == f"log head #7 sha256:{digest}"
    pasted = f"Conditions: DNS fixed. — log head #7 sha256:{digest.upper()}"
    assert parse_anchor(pasted) == Anchor(digest, 7)
    assert parse_anchor(f"{digest}:7") == Anchor(digest, 7)
    assert parse_anchor(digest) == Anchor(digest, None)
    note = ev.NoteAdded(text="x", seq=8, prev=digest)
    assert head_before(note) == f"log head #7 sha256:{digest}"
    for bad in ("", "abc", f"{digest}:x", "zz" * 32):
        with pytest.raises(WarroomError, match="not a head anchor"):
            parse_anchor(bad)


@pytest.mark.parametrize("name", ["swap two distant events", "truncate mid-line"])
@pytest.mark.slow
def test_the_multi_process_check_agrees_and_defers_problems_to_the_exact_pass(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "inc.jsonl"
    lines = make_log(path)
    single = verify_log(path, workers=1)
    assert verify_log(path, workers=3) == single
    assert single.ok and single.count == N
    tamper, reason, seq, line = CASES[name]
    path.write_bytes(b"".join(tamper(list(lines))))
    result = verify_log(path, workers=3)
    assert (result.reason, result.first_bad_seq, result.line) == (reason, seq, line)


@pytest.mark.slow
def test_a_break_exactly_at_a_range_boundary_is_caught(tmp_path: Path) -> None:
    """Ranges that are each intact but do not link up must not pass as a whole."""
    path = tmp_path / "inc.jsonl"
    lines = make_log(path, 40)
    path.write_bytes(b"".join([*lines[:20], *lines[21:]]))  # delete seq 21
    for workers in (2, 3, 4):
        result = verify_log(path, workers=workers)
        assert (result.reason, result.first_bad_seq) == ("deleted", 21), workers


@pytest.mark.slow
def test_random_tampering_is_always_reported_or_undetectable_by_design(tmp_path: Path) -> None:
    """Several random edits at once: verify never crashes and never calls a changed log intact,
    except for what no hash chain can see (a changed or missing last event)."""
    path = tmp_path / "inc.jsonl"
    original = make_log(path, 30)
    rng = random.Random(20251020)
    for _ in range(250):
        ls = list(original)
        for _ in range(rng.randint(1, 3)):
            i, j = rng.randrange(len(ls)), rng.randrange(len(ls))
            match rng.randrange(8):
                case 0:
                    del ls[i]
                case 1:
                    ls.insert(j, ls[i])
                case 2:
                    ls[i], ls[j] = ls[j], ls[i]
                case 3:
                    ls[i] = ls[i].replace(b'"actor":"', b'"actor":"X', 1)
                case 4:
                    if b'"hash"' in ls[i]:
                        ls[i] = rehashed(ls[i], actor="mallory")
                case 5:
                    prev = hash_of(ls[j - 1]) if j and b'"hash"' in ls[j - 1] else "3" * 64
                    ls.insert(j, forged(rng.randint(1, 33), prev))
                case 6:
                    ls.insert(j, rng.choice([b"xx\n", b"\n", b"{}\n", b"[1]\n", b"\0\0\n"]))
                case _:
                    ls[-1] = ls[-1][: rng.randrange(len(ls[-1]))]
            if len(ls) < 3:
                break
        path.write_bytes(b"".join(ls))
        result = verify_log(path)
        if result.ok:
            kept = path.read_bytes().split(b"\n")[:-1]
            assert kept[:-1] == [line.rstrip(b"\n") for line in original[: len(kept) - 1]], ls
        else:
            assert result.first_bad_seq is not None and result.line is not None
            assert result.message().startswith(f"{path}:{result.line}: seq ")


@pytest.mark.slow
def test_verifying_a_log_while_it_is_written_never_sees_half_a_line(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append(ev.NoteAdded(text="start"))
    done = threading.Event()

    def write() -> None:
        note = ev.NoteAdded(text="x" * 5000)  # big lines: more chances to catch a write midway
        for i in range(300):
            log.append_many([note] * (1 + i % 7), sync=False)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    results = []
    while not done.is_set():
        results.append(verify_log(path, workers=1))
    writer.join()
    assert results and all(r.ok for r in results), next(r.message() for r in results if not r.ok)


def signed_as_written(body: bytes) -> bytes:
    """A line whose body is `body` as written, carrying the body's own hash (a forger's)."""
    digest = codec.hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}\n'


@pytest.mark.parametrize(
    ("name", "respell"),
    [
        ("a duplicate key", lambda b: b.replace(b'{"actor"', b'{"seq":1,"actor"', 1)),
        ("a space", lambda b: b.replace(b'","kind"', b'", "kind"', 1)),
        ("an escaped letter", lambda b: b.replace(b'"note_added"', b'"note\\u005fadded"', 1)),
        ("a longer number", lambda b: b.replace(b'"v":1', b'"v":1e0', 1)),
        ("an escaped slash", lambda b: b.replace(b'"note 3"', b'"note\\/3"', 1)),
        ("seq true", lambda b: b.replace(b'"seq":1,', b'"seq":true,', 1)),
    ],
)
def test_every_other_spelling_of_a_line_is_refused_by_both_passes(
    tmp_path: Path, name: str, respell: Callable[[bytes], bytes]
) -> None:
    """The fast per-block check must refuse exactly what `check_line_hash` refuses."""
    path = tmp_path / "inc.jsonl"
    lines = make_log(path, 4)
    target = 0 if name == "seq true" else 3
    obj = codec.decode(lines[target])
    body = codec.canonical_json({k: v for k, v in obj.items() if k != "hash"})
    changed = respell(body)
    assert changed != body, name
    forged_line = signed_as_written(changed)
    why = codec.check_line_hash(forged_line.rstrip(b"\n"), codec.decode(forged_line))
    reason = "not an event" if name == "seq true" else "not canonical"
    assert (why is None) == (name == "seq true") and why != codec.MISMATCH
    tampered = [*lines]
    tampered[target] = forged_line
    path.write_bytes(b"".join(tampered))
    stop = codec.intact_run([line.rstrip(b"\n") for line in tampered], 0, 1, codec.GENESIS)[0]
    assert stop == target
    for workers in (1, 2):
        result = verify_log(path, workers=workers)
        assert (result.ok, result.reason, result.line) == (False, reason, target + 1)


def test_the_fast_run_stops_at_the_first_line_that_is_not_the_next_event() -> None:
    lines = [codec.encode({"v": 1, "seq": 1, "kind": "x", "prev": codec.GENESIS})[0]]
    for seq in (2, 3):
        lines.append(codec.encode({"v": 1, "seq": seq, "kind": "x", "prev": hash_of(lines[-1])})[0])
    raw = [line.rstrip(b"\n") for line in lines]
    stop, seq, head, before, last = codec.intact_run(raw, 0, 1, codec.GENESIS)
    assert (stop, seq, head, before, last) == (3, 4, hash_of(lines[2]), raw[1], raw[2])
    for bad in (b"junk", b"[1]", b"{}", raw[0], raw[2].replace(b'"kind":"x"', b'"kind":"y"')):
        assert codec.intact_run([raw[0], raw[1], bad], 0, 1, codec.GENESIS)[0] == 2, bad
    assert codec.intact_run(raw, 1, 1, codec.GENESIS)[0] == 1  # seq 2 where 1 is due


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_line_blocks_yields_what_iter_lines_yields_whatever_the_block_size(
    tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warroom.log.scan import iter_lines

    monkeypatch.setattr(codec, "BLOCK", block)
    rng = random.Random(block)
    path = tmp_path / "lines"
    data = b"".join(b"x" * rng.choice([0, 1, 5, 63, 64, 65, 300]) + b"\n" for _ in range(60))
    path.write_bytes(data + b"partial, no newline")
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in [(0, None), (0, len(data)), (5, len(data) - 3), (len(data), None)]:
            want = list(iter_lines(fd, start, end))
            got = [
                (offset + sum(len(line) + 1 for line in lines[:i]), line)
                for offset, lines in codec.line_blocks(fd, start, end)
                for i, line in enumerate(lines)
            ]
            assert got == want, (start, end)
    finally:
        os.close(fd)
