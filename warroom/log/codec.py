"""The byte format of one incident-log line: canonical JSON plus a sha256 hash chain.

A line is the canonical JSON of the event without `hash` (sorted keys, no spaces, UTF-8), with
`,"hash":"<64 hex>"` spliced in before the closing brace, then a newline. So the hash of a line
written by warroom can be checked on its bytes alone, without re-serialising, which keeps
verifying a million events within a few seconds. Lines written by other tools in any key order
still verify: the fallback re-canonicalises the decoded object.
"""

from __future__ import annotations

import hashlib
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
    return body[:-1] + _HASH_PREFIX + digest.encode() + b'"}\n', digest


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
    """The hash the line's content should carry, computed fast from bytes where possible."""
    raw = line.rstrip(b"\n")
    if (
        len(raw) > _SUFFIX_LEN
        and raw[-_SUFFIX_LEN : -_SUFFIX_LEN + len(_HASH_PREFIX)] == _HASH_PREFIX
        and raw.endswith(b'"}')
    ):
        body = raw[:-_SUFFIX_LEN] + b"}"
        digest = hashlib.sha256(body).hexdigest()
        if digest == obj.get("hash"):
            return digest
    without = {k: v for k, v in obj.items() if k != "hash"}
    return event_hash(without)
