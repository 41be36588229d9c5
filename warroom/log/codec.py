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
