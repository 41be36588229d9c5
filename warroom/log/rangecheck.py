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
from warroom.log.scan import iter_lines

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
    loads = orjson.loads
    check_hash = codec.check_line_hash
    decode_error = orjson.JSONDecodeError
    count = 0
    first_seq, first_prev = 0, ""
    expected_seq = -1
    head = ""
    done = start
    for offset, raw in iter_lines(fd, start, end):
        done = offset + len(raw) + 1
        try:
            obj = loads(raw)
        except decode_error:
            return None
        if type(obj) is not dict:
            return None
        seq = obj.get("seq")
        digest = obj.get("hash")
        prev = obj.get("prev")
        kind = obj.get("kind")
        if (
            type(seq) is not int
            or type(digest) is not str
            or type(prev) is not str
            or type(kind) is not str
            or not kind
        ):
            return None
        if check_hash(raw, obj) is not None:
            return None
        if count == 0:
            first_seq, first_prev = seq, prev
        elif seq != expected_seq or prev != head:
            return None
        count += 1
        expected_seq = seq + 1
        head = digest
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
