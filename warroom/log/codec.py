"""The byte format of one incident-log line: canonical JSON plus a sha256 hash chain.

A line is the canonical JSON of the event without `hash` (sorted keys, no spaces, UTF-8), with
`,"hash":"<64 hex>"` spliced in before the closing brace, then a newline. So the hash of a line
written by warroom can be checked on its bytes alone. A line verifies only in exactly that
form (`check_line_hash`): re-serialised lines, other key orders and duplicate keys are refused,
since two JSON parsers may read a duplicate key differently while its hash still matched.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import orjson

GENESIS = "0" * 64
_HASH_PREFIX = b',"hash":"'
_SUFFIX_LEN = len(_HASH_PREFIX) + 64 + 2  # ,"hash":"<64>"}


class CodecError(ValueError):
    """A line that is not valid JSON, or not a JSON object."""


def canonical_json(obj: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def event_hash(obj_without_hash: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(obj_without_hash)).hexdigest()


def encode(obj_without_hash: dict[str, Any]) -> tuple[bytes, str]:
    """Return the line (with trailing newline) and its hash for an event dict without `hash`."""
    body = canonical_json(obj_without_hash)
    digest = hashlib.sha256(body).hexdigest()
    return line_of(body, digest), digest


def line_of(body: bytes, digest: str) -> bytes:
    """The line for a canonical `body` and its hash (spliced in before the closing brace)."""
    return body[:-1] + _HASH_PREFIX + digest.encode() + b'"}\n'


def decode(line: bytes) -> dict[str, Any]:
    """Decode one line (newline optional) into a dict; `CodecError` if it is not an object."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON ({exc.args[0].split(':')[0]})") from None
    if not isinstance(obj, dict):
        raise CodecError(f"not a JSON object (a {type(obj).__name__})")
    return obj


def computed_hash(line: bytes, obj: dict[str, Any]) -> str:
    """The hash of the line's content re-canonicalised (what an edit that kept it would carry)."""
    without = {k: v for k, v in obj.items() if k != "hash"}
    return event_hash(without)


#: `check_line_hash` results besides None (intact and canonical).
MISMATCH = "its content does not match its hash"


def check_line_hash(raw: bytes, obj: dict[str, Any]) -> str | None:
    """None when `raw` (no newline) is the canonical line of `obj` carrying its own hash; else
    why not: `MISMATCH`, or a description of the non-canonical form (duplicate key, ...).

    The fast path hashes the bytes in place; verifying also re-serialises the decoded object
    and compares, which is what rules out duplicate keys and any other spelling of the JSON.
    `obj` loses its "hash" key.
    """
    digest = obj.pop("hash", None)
    if (
        len(raw) > _SUFFIX_LEN
        and raw.endswith(b'"}')
        and raw.startswith(_HASH_PREFIX, len(raw) - _SUFFIX_LEN)
    ):
        body = raw[:-_SUFFIX_LEN] + b"}"
        if hashlib.sha256(body).hexdigest() == digest:
            if orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) == body:
                return None
            return noncanonical_reason(raw)
    if event_hash(obj) == digest:
        return noncanonical_reason(raw)
    return MISMATCH


def noncanonical_reason(raw: bytes) -> str:
    """Why a line whose content hashes right is still refused (a duplicate key, or its form)."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _value in items:
            if key in seen and not duplicates:
                duplicates.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        pass
    if duplicates:
        return f"the key {duplicates[0]!r} appears twice"
    return "not in canonical form (sorted keys, no spaces, hash last)"


def intact_run(
    lines: list[bytes], start: int, seq: int, head: str
) -> tuple[int, int, str, bytes, bytes]:
    """Check `lines[start:]` as consecutive events from `seq` linking to `head`, up to the first
    that is not exactly right; return (its index, the seq it should carry, the head before it,
    the last two good lines, the older first, b"" where none).

    The verifying loop: the same checks as `check_line_hash` and the envelope (a canonical,
    self-hashing object with an int seq, a str prev and a non-empty str kind) written out
    inline, since this runs for every line of a log and a call per line is a third of its cost.
    Whatever stops the run is left to the caller's exact, slower look.
    """
    loads, dumps, sha256 = orjson.loads, orjson.dumps, hashlib.sha256
    sort, decode_error = orjson.OPT_SORT_KEYS, orjson.JSONDecodeError
    prefix, tail = _HASH_PREFIX, -_SUFFIX_LEN
    before = last = b""
    i, n = start, len(lines)
    while i < n:
        raw = lines[i]
        try:
            obj = loads(raw)
        except decode_error:
            break
        if type(obj) is not dict:
            break
        line_seq = obj.get("seq")
        kind = obj.get("kind")
        if (
            type(line_seq) is not int
            or line_seq != seq
            or obj.get("prev") != head
            or type(kind) is not str
            or not kind
            or len(raw) <= _SUFFIX_LEN
            or not raw.endswith(b'"}')
            or not raw.startswith(prefix, len(raw) + tail)
        ):
            break
        digest = obj.pop("hash", None)
        body = raw[:tail] + b"}"
        if sha256(body).hexdigest() != digest or dumps(obj, option=sort) != body:
            break
        head = digest
        seq += 1
        before, last = last, raw
        i += 1
    return i, seq, head, before, last


#: Bytes read per block by `line_blocks`.
BLOCK = 8 * 1024 * 1024


def line_blocks(
    fd: int, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (offset of the first line, the lines without newlines) for the complete lines in
    [start, end), a few megabytes at a time: what `scan.iter_lines` yields line by line, for
    loops that handle millions of lines (verify, `log show`) and should not pay a generator
    step per line. An incomplete last line is not yielded.
    """
    pos = start
    while True:
        want = BLOCK if end is None else min(BLOCK, end - pos)
        if want <= 0:
            return
        # Each read starts at a line start (the partial line at the end of the last one is
        # read again), so no block is copied to be joined to the bytes before it.
        chunk = os.pread(fd, want, pos)
        if not chunk:
            return
        if chunk.rfind(b"\n") < 0:
            line = _long_line(fd, pos, chunk, end)
            if line is None:
                return
            yield pos, [line]
            pos += len(line) + 1
            continue
        lines = chunk.split(b"\n")
        tail = lines.pop()  # after the last newline: read again with the next block
        yield pos, lines
        pos += len(chunk) - len(tail)


def _long_line(fd: int, pos: int, first: bytes, end: int | None) -> bytes | None:
    """The line starting at `pos` that is longer than a block, or None if it has no end yet."""
    parts = [first]
    at = pos + len(first)
    while True:
        want = BLOCK if end is None else min(BLOCK, end - at)
        if want <= 0:
            return None
        more = os.pread(fd, want, at)
        if not more:
            return None
        index = more.find(b"\n")
        if index >= 0:
            parts.append(more[:index])
            return b"".join(parts)
        parts.append(more)
        at += len(more)
