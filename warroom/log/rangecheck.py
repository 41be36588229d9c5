"""Checking one byte range of a log's lines, so `verify_log` can use several cores on big logs.

Run as `python -m warroom.log.rangecheck LOG START END`: prints a JSON summary of the lines in
[START, END) — count, first seq and prev, last seq and hash — or `null` when any line in the
range is not a valid, self-consistent, consecutive event. The caller stitches ranges together
by seq and prev; on any `null` it re-runs the exact single-pass check to name the problem.
It imports only orjson and hashlib (no pydantic) so that it starts in a fraction of a second.
"""

from __future__ import annotations

import os
import sys

import orjson

from warroom.log import codec

#: (count, first_seq, first_prev, last_seq, last_hash)
RangeSummary = tuple[int, int, str, int, str]


def check_range(path: str, start: int, end: int) -> RangeSummary | None:
    """Summarise the complete lines in [start, end) (end on a line boundary), or None."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _check(fd, start, end)
    finally:
        os.close(fd)


def _check(fd: int, start: int, end: int) -> RangeSummary | None:
    count = 0
    first_seq, first_prev = 0, ""
    expected_seq, head = 0, ""
    done = start
    for offset, lines in codec.line_blocks(fd, start, end):
        if count == 0 and lines:
            # The range's first event links to whatever comes before it: take its word.
            try:
                first = orjson.loads(lines[0])
            except orjson.JSONDecodeError:
                return None
            if type(first) is not dict:
                return None
            seq, prev = first.get("seq"), first.get("prev")
            if type(seq) is not int or type(prev) is not str:
                return None
            first_seq, first_prev = expected_seq, head = seq, prev
        stop, expected_seq, head, _before, _last = codec.intact_run(lines, 0, expected_seq, head)
        if stop != len(lines):
            return None
        count += len(lines)
        done = offset + sum(map(len, lines)) + len(lines)
    if done != end:
        return None  # an unterminated line: only the single pass can say what it is
    return count, first_seq, first_prev, expected_seq - 1, head


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path, start, end = args[0], int(args[1]), int(args[2])
    sys.stdout.buffer.write(orjson.dumps(check_range(path, start, end)) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
