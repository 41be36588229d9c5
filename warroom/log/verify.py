"""Checking an incident log's hash chain, and naming where and how it was tampered with.

The check streams the file (constant memory) and works on bytes and plain dicts: each line
must be a JSON object with the envelope, hash to its own `hash`, carry the next `seq`, and
link by `prev` to the line before. At the first line that does not, a second look at the
lines around it tells an edit from a deletion, an insertion or a reordering, so the report
names the seq where the log stops being trustworthy and why.

A line must be exactly the canonical encoding of its content (`codec.check_line_hash`): a
duplicate key or any other spelling is refused, even when the content hashes right. Good
lines are checked a block at a time by `codec.intact_run` (the same checks, inline); the
first line it stops at gets the exact look below.

Limits: a chain proves order and integrity, not authorship. Cutting whole events off the end,
or rewriting the rest of the file with recomputed hashes, is only detected against an anchor
kept elsewhere (`anchor.format_head`, as printed by `warroom log verify` and carried by status
updates): pass it as `verify_log(path, anchor=...)` / `warroom log verify --head`.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from warroom.log import codec, rangecheck
from warroom.log.anchor import Anchor, format_head
from warroom.log.rangecheck import RangeSummary
from warroom.log.scan import envelope_error, iter_lines, open_for_reading, where
from warroom.processes import usable_cores
from warroom.words import plural

#: How many lines after the first bad one are examined to classify it.
CLASSIFY_WINDOW = 100_000
#: From this size on, verification spreads over several processes (about 200,000 events).
PARALLEL_MIN_BYTES = 64 * 1024 * 1024

EDITED = "edited"
DELETED = "deleted"
INSERTED = "inserted"
REORDERED = "reordered"
TORN_TAIL = "torn tail"
BAD_JSON = "bad JSON"
NOT_AN_EVENT = "not an event"
NON_CANONICAL = "not canonical"
#: The chain is intact but does not hold the head recorded elsewhere.
ANCHOR_MISMATCH = "head anchor mismatch"


class VerifyResult(BaseModel):
    """The outcome of `verify_log`: intact, or the first bad seq, its line and why."""

    path: str
    ok: bool
    #: Events checked and found intact (all of them when `ok`; those before the problem if not).
    count: int
    #: Hash of the last intact event (`codec.GENESIS` for an empty log).
    head: str
    first_bad_seq: int | None = None
    #: One of: edited, deleted, inserted, reordered, torn tail, bad JSON, not an event,
    #: not canonical, head anchor mismatch.
    reason: str = ""
    line: int | None = None
    detail: str = ""
    #: The anchor the log was checked against, as given (`verify_log(anchor=...)`).
    anchor: str = ""

    def head_text(self) -> str:
        """`log head #N sha256:<64 hex>` of the intact part: the anchor to record elsewhere."""
        return format_head(self.count, self.head)

    def message(self) -> str:
        """The one line `warroom log verify` prints (untrusted parts still to be sanitised)."""
        if self.ok:
            held = f", holds {self.anchor}" if self.anchor else ""
            return f"ok: {plural(self.count, 'event')}, chain intact{held}, {self.head_text()}"
        place = where(self.path, self.line)
        return f"{place}: seq {self.first_bad_seq}: {self.reason} ({self.detail})"


@dataclass(slots=True)
class _Rec:
    line: int
    seq: int
    hash: str
    prev: str
    #: The line hashes to its own `hash`.
    intact: bool
    ts: str = ""
    #: The ts of the event this one follows (kept only for the last good event).
    prev_ts: str = ""


def _decode(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON ({exc.args[0].split(':')[0]})"
    return obj, envelope_error(obj)


def verify_log(
    path: str | os.PathLike[str], workers: int | None = None, anchor: Anchor | None = None
) -> VerifyResult:
    """Check a log's hash chain; `LogError` (one line) if the file cannot be read at all.

    Logs of PARALLEL_MIN_BYTES or more are checked on up to `workers` cores (default: the
    cores available, at most 4) by `rangecheck` subprocesses; whenever that fast check finds
    anything wrong, the exact single pass below runs to name the first problem. With an
    `anchor` (a head recorded elsewhere), an intact chain must also hold that event.
    """
    fd = open_for_reading(path)
    try:
        # Writers append whole lines under an exclusive flock: the size seen under a shared
        # one ends on a line boundary, so a live log is checked up to there, never mid-write.
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            size = os.fstat(fd).st_size
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if workers is None:
            workers = min(available_cores(), 4) if size >= PARALLEL_MIN_BYTES else 1
        result = None
        if workers > 1:
            result = _verify_parallel(fd, os.fspath(path), size, workers)
        if result is None:
            result = _verify(fd, os.fspath(path), size, anchor)
        if anchor is not None and result.ok:
            result = _check_anchor(fd, result, anchor, size)
        return result
    finally:
        os.close(fd)


def _check_anchor(fd: int, result: VerifyResult, anchor: Anchor, size: int) -> VerifyResult:
    """An intact chain against a head recorded elsewhere: it must hold that event."""
    shown = str(anchor)
    found = _line_with_hash(fd, anchor.hash, size)
    if found is not None:
        line_no, seq = found
        if anchor.seq is None or anchor.seq == seq:
            return result.model_copy(update={"anchor": format_head(seq, anchor.hash)})
        detail = f"the anchored event is at seq {seq} (line {line_no}), not seq {anchor.seq}"
        return _anchor_fail(result, seq, line_no, detail, shown)
    if anchor.seq is not None and anchor.seq > result.count:
        missing = anchor.seq - result.count
        detail = (
            f"the anchor {shown} is beyond the log's end at seq {result.count}: "
            f"{missing} event{'s' if missing != 1 else ''} cut from the end"
        )
        return _anchor_fail(result, result.count + 1, result.count + 1, detail, shown)
    if anchor.seq is not None:
        detail = f"seq {anchor.seq} does not carry the anchored hash: the log was rewritten"
        return _anchor_fail(result, anchor.seq, anchor.seq, detail, shown)
    detail = f"no event carries the anchored hash {anchor.hash}: cut from the end or rewritten"
    return _anchor_fail(result, result.count + 1, result.count + 1, detail, shown)


def _anchor_fail(
    result: VerifyResult, seq: int, line: int, detail: str, shown: str
) -> VerifyResult:
    return result.model_copy(
        update={
            "ok": False,
            "first_bad_seq": seq,
            "reason": ANCHOR_MISMATCH,
            "line": line,
            "detail": detail,
            "anchor": shown,
        }
    )


def _line_with_hash(fd: int, digest: str, size: int) -> tuple[int, int] | None:
    """(line number, seq) of the line carrying `digest` as its hash, or None."""
    needle = f',"hash":"{digest}"}}'.encode()
    for line_no, (_offset, raw) in enumerate(iter_lines(fd, 0, size), 1):
        if raw.endswith(needle):
            obj, why = _decode(raw)
            if obj is not None and why is None:
                return line_no, obj["seq"]
    return None


def available_cores() -> int:
    """The cores this process may run on (the affinity mask where the OS has one); 1 when
    the interpreter cannot run `-m warroom.log.rangecheck` (a frozen executable)."""
    return 1 if getattr(sys, "frozen", False) else usable_cores()


def _next_newline(fd: int, pos: int, size: int) -> int:
    while pos < size:
        chunk = os.pread(fd, 1 << 16, pos)
        if not chunk:
            break
        index = chunk.find(b"\n")
        if index >= 0:
            return pos + index
        pos += len(chunk)
    return -1


def _verify_parallel(fd: int, path: str, size: int, workers: int) -> VerifyResult | None:
    """The chain checked in `workers` byte ranges at once; None unless every range is intact
    and the ranges link up (the caller then runs the exact single pass)."""
    bounds = [0]
    for i in range(1, workers):
        newline = _next_newline(fd, max(size * i // workers, bounds[-1]), size)
        if newline < 0 or newline + 1 >= size:
            break
        if newline + 1 > bounds[-1]:
            bounds.append(newline + 1)
    bounds.append(size)
    ranges = list(itertools.pairwise(bounds))
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for start, end in ranges[1:]:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "warroom.log.rangecheck", path, str(start), str(end)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            )
        summaries: list[RangeSummary | None] = [rangecheck.check_range(path, *ranges[0])]
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                return None
            value = orjson.loads(out)
            summaries.append(tuple(value) if value is not None else None)  # type: ignore[arg-type]
    except (OSError, orjson.JSONDecodeError):
        return None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    count, last_seq, head = 0, 0, codec.GENESIS
    for summary in summaries:
        if summary is None:
            return None
        n, first_seq, first_prev, range_last_seq, range_head = summary
        if n == 0:
            continue
        if first_seq != last_seq + 1 or first_prev != head:
            return None
        count += n
        last_seq, head = range_last_seq, range_head
    if count != last_seq:
        return None
    return VerifyResult(path=path, ok=True, count=count, head=head)


def _verify(fd: int, path: str, size: int, anchor: Anchor | None = None) -> VerifyResult:
    expected_seq = 1
    head = codec.GENESIS
    # The last two good lines (the older first), decoded again only to describe a problem.
    before = last = b""
    line_no = 0
    done = 0
    for offset, lines in codec.line_blocks(fd, 0, size):
        i = 0
        while i < len(lines):
            stop, expected_seq, head, run_before, run_last = codec.intact_run(
                lines, i, expected_seq, head
            )
            if stop - i >= 2:
                before, last = run_before, run_last
            elif stop - i == 1:
                before, last = last, run_last
            line_no += stop - i
            if stop == len(lines):
                break
            raw = lines[stop]
            line_no += 1
            done = offset + sum(map(len, lines[: stop + 1])) + stop + 1
            rest = _following(lines, stop + 1, done, size, fd)
            result = _exact(path, fd, rest, size, done, line_no, raw, expected_seq, head, anchor)
            if not isinstance(result, VerifyResult):
                result = result(before, last)
            return result
        done = offset + sum(map(len, lines)) + len(lines)
    count = expected_seq - 1
    if done < size:
        partial = os.pread(fd, size - done, done)
        return _torn_or_garbage(path, line_no + 1, partial, count, head)
    return VerifyResult(path=path, ok=True, count=count, head=head)


def _following(
    lines: list[bytes], index: int, offset: int, size: int, fd: int
) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for `lines[index:]`, which start at `offset`, then the rest of the file."""
    for line in lines[index:]:
        yield offset, line
        offset += len(line) + 1
    yield from iter_lines(fd, offset, size)


def _exact(
    path: str,
    fd: int,
    it: Iterator[tuple[int, bytes]],
    size: int,
    done: int,
    line_no: int,
    raw: bytes,
    expected_seq: int,
    head: str,
    anchor: Anchor | None,
) -> VerifyResult | Callable[[bytes, bytes], VerifyResult]:
    """What is wrong with the line `codec.intact_run` stopped at: the result, or, when telling
    an edit from an insertion or a reordering needs the last good events, a function of the
    last two good lines that gives it."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _bad_line(path, it, size, done, line_no, raw, expected_seq, head)
    if type(obj) is not dict:
        return _bad_line(path, it, size, done, line_no, raw, expected_seq, head)
    seq, digest, prev, kind = obj.get("seq"), obj.get("hash"), obj.get("prev"), obj.get("kind")
    ts = obj.get("ts", "")
    if (
        type(seq) is not int
        or type(digest) is not str
        or type(prev) is not str
        or type(kind) is not str
        or not kind
    ):
        return _bad_line(path, it, size, done, line_no, raw, expected_seq, head)
    why = codec.check_line_hash(raw, obj)
    if why is not None and why != codec.MISMATCH:
        detail = f"line {line_no}: {why}"
        return _fail(path, expected_seq - 1, head, expected_seq, NON_CANONICAL, line_no, detail)
    bad = _Rec(line_no, seq, digest, prev, why is None, ts if type(ts) is str else "")

    def classify(before: bytes, last_raw: bytes) -> VerifyResult:
        last_obj = orjson.loads(last_raw) if last_raw else {}
        before_ts = orjson.loads(before).get("ts", "") if before else ""
        last_ts = last_obj.get("ts", "")
        last = _Rec(
            line_no - 1,
            expected_seq - 1,
            head,
            last_obj.get("prev", ""),
            True,
            last_ts if type(last_ts) is str else "",
            before_ts if type(before_ts) is str else "",
        )
        return _classify(path, fd, it, last, bad, anchor)

    return classify


def _fail(
    path: str, count: int, head: str, seq: int, reason: str, line: int, detail: str
) -> VerifyResult:
    return VerifyResult(
        path=path,
        ok=False,
        count=count,
        head=head,
        first_bad_seq=seq,
        reason=reason,
        line=line,
        detail=detail,
    )


def _torn_or_garbage(path: str, line: int, partial: bytes, count: int, head: str) -> VerifyResult:
    if partial.startswith(b"{") or not partial.strip(b"\0"):
        detail = f"line {line} is a partial last line ({len(partial)} bytes, no newline)"
        return _fail(path, count, head, count + 1, TORN_TAIL, line, detail)
    return _fail(path, count, head, count + 1, BAD_JSON, line, f"line {line} is not JSON")


def _bad_line(
    path: str,
    it: Iterator[tuple[int, bytes]],
    size: int,
    done: int,
    line_no: int,
    raw: bytes,
    expected_seq: int,
    head: str,
) -> VerifyResult:
    """A line that is not JSON, or not an event: a torn tail when nothing complete follows."""
    count = expected_seq - 1
    obj, why = _decode(raw)
    if obj is not None:
        why = (why or "").removeprefix("not an event: ")
        return _fail(
            path, count, head, expected_seq, NOT_AN_EVENT, line_no, f"line {line_no}: {why}"
        )
    following = next(it, None)
    if following is None:
        extra = f" and {size - done} more bytes" if size > done else ""
        detail = f"last line {line_no} {why}{extra}: a write cut short"
        return _fail(path, count, head, expected_seq, TORN_TAIL, line_no, detail)
    return _fail(path, count, head, expected_seq, BAD_JSON, line_no, f"line {line_no} is {why}")


def _window(it: Iterator[tuple[int, bytes]], first_line: int) -> list[_Rec]:
    """The event lines after the first bad one (up to CLASSIFY_WINDOW), for classification."""
    out: list[_Rec] = []
    line_no = first_line
    for _offset, raw in it:
        if line_no - first_line >= CLASSIFY_WINDOW:
            break
        obj, why = _decode(raw)
        if obj is not None and why is None:
            seq, digest, prev, ts = obj["seq"], obj["hash"], obj["prev"], obj.get("ts", "")
            intact = codec.check_line_hash(raw, obj) is None
            out.append(_Rec(line_no, seq, digest, prev, intact, ts))
        line_no += 1
    return out


def _earlier_line_with_hash(fd: int, digest: str, before_line: int) -> int | None:
    """Line number of an earlier line whose `hash` is `digest` (a duplicated event)."""
    needle = f'"hash":"{digest}"'.encode()
    for line_no, (_offset, raw) in enumerate(iter_lines(fd), 1):
        if line_no >= before_line:
            return None
        if needle in raw:
            return line_no
    return None


def _classify(
    path: str,
    fd: int,
    it: Iterator[tuple[int, bytes]],
    last: _Rec,
    bad: _Rec,
    anchor: Anchor | None = None,
) -> VerifyResult:
    """Name the first problem, given the last good event and the first line that breaks."""
    expected = last.seq + 1
    window = _window(it, bad.line + 1)
    by_prev: dict[str, list[_Rec]] = {}
    for rec in (bad, *window):
        by_prev.setdefault(rec.prev, []).append(rec)

    def successors(rec: _Rec) -> list[_Rec]:
        return [
            r
            for r in by_prev.get(rec.hash, ())
            if r.intact and r.seq == rec.seq + 1 and r.line != rec.line
        ]

    def fail(seq: int, reason: str, line: int, detail: str) -> VerifyResult:
        if seq > last.seq:
            return _fail(path, last.seq, last.hash, seq, reason, line, detail)
        # The last event that looked good is itself the problem: the intact part ends before it.
        return _fail(path, last.seq - 1, last.prev, seq, reason, line, detail)

    # Where does the true chain continue after the last good event?
    candidates = [r for r in by_prev.get(last.hash, ()) if r.intact and r.seq == expected]
    candidates.sort(key=lambda r: (not successors(r), r.line))
    if candidates:
        resume = candidates[0]
        chain: set[str] = set()
        cur: _Rec | None = resume
        while cur is not None and cur.hash not in chain:
            chain.add(cur.hash)
            nxt = successors(cur)
            cur = nxt[0] if nxt else None
        if bad.intact and bad.hash in chain:
            return fail(
                expected,
                REORDERED,
                bad.line,
                f"line {bad.line} holds seq {bad.seq} before seq {expected} at line {resume.line}",
            )
        return fail(
            expected,
            INSERTED,
            bad.line,
            f"line {bad.line} is an extra event claiming seq {bad.seq}; the chain goes on from "
            f"seq {last.seq} to seq {expected} at line {resume.line}",
        )
    if not bad.intact:
        return fail(
            expected,
            EDITED,
            bad.line,
            f"line {bad.line}: its content does not match its hash",
        )
    if last.seq > 0 and bad.seq == last.seq and bad.prev == last.prev:
        return _same_place(fail, last, bad, successors(bad), anchor, expected)
    if bad.seq == expected:
        if last.seq == 0:
            return fail(1, EDITED, bad.line, f"line {bad.line}: prev is not the genesis hash")
        return fail(
            last.seq,
            EDITED,
            last.line,
            f"its hash was recomputed: seq {bad.seq} at line {bad.line} links to a different event",
        )
    if bad.seq > expected:
        moved = next((r for r in window if r.seq == expected), None)
        if moved is not None:
            return fail(
                expected,
                REORDERED,
                bad.line,
                f"line {bad.line} holds seq {bad.seq}; seq {expected} comes later, at line "
                f"{moved.line}",
            )
        if bad.prev == last.hash:
            return fail(
                expected,
                EDITED,
                bad.line,
                f"line {bad.line}: seq changed to {bad.seq} and its hash recomputed",
            )
        missing = f"seq {expected}" if bad.seq == expected + 1 else f"seqs {expected}-{bad.seq - 1}"
        jump = (
            f"line {bad.line} jumps from seq {last.seq} to seq {bad.seq}"
            if last.seq
            else f"the log starts at seq {bad.seq}"
        )
        return fail(expected, DELETED, bad.line, f"{missing} missing: {jump}")
    duplicate = _earlier_line_with_hash(fd, bad.hash, bad.line)
    if duplicate is not None or bad.seq == last.seq:
        source = f" (a copy of line {duplicate})" if duplicate is not None else ""
        return fail(
            expected,
            INSERTED,
            bad.line,
            f"line {bad.line} is an extra event repeating seq {bad.seq}{source}",
        )
    return fail(
        expected,
        REORDERED,
        bad.line,
        f"seq goes back from {last.seq} to {bad.seq} at line {bad.line}",
    )


def _same_place(
    fail: Callable[[int, str, int, str], VerifyResult],
    last: _Rec,
    bad: _Rec,
    bad_continues: list[_Rec],
    anchor: Anchor | None,
    expected: int,
) -> VerifyResult:
    """Two intact events claim one seq after the same predecessor: name the extra one.

    The one the chain continues from is genuine. With nothing after either, a recorded head
    decides; failing that, the one whose time goes back before its predecessor's is the
    forgery (warroom stamps events in order); if neither does, both lines are named.
    """
    seq = bad.seq
    if bad_continues or (anchor is not None and anchor.hash == bad.hash):
        why = "the chain continues from" if bad_continues else "the recorded head names"
        return fail(
            last.seq,
            INSERTED,
            last.line,
            f"line {last.line} is an extra event; line {bad.line} holds the seq {seq} {why}",
        )
    if anchor is not None and anchor.hash == last.hash:
        return fail(
            expected,
            INSERTED,
            bad.line,
            f"line {bad.line} is an extra event; line {last.line} holds the seq {seq} "
            "the recorded head names",
        )
    before_ts = last.prev_ts if type(last.prev_ts) is str else ""
    last_back = bool(before_ts) and last.ts < before_ts
    bad_back = bool(before_ts) and bad.ts < before_ts
    if last_back and not bad_back:
        return fail(
            last.seq,
            INSERTED,
            last.line,
            f"line {last.line} is an extra event claiming seq {seq}: its time goes back before "
            f"seq {seq - 1}'s; line {bad.line} holds the genuine seq {seq}",
        )
    if bad_back and not last_back:
        return fail(
            expected,
            INSERTED,
            bad.line,
            f"line {bad.line} is an extra event: it repeats seq {seq} of line {last.line} "
            f"and its time goes back before seq {seq - 1}'s",
        )
    return fail(
        last.seq,
        INSERTED,
        last.line,
        f"lines {last.line} and {bad.line} both claim seq {seq} after seq {seq - 1}; the chain "
        "cannot tell which was inserted (check against a recorded head with --head)",
    )
