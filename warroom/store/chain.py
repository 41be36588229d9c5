"""Client-side checks of stored rows: each row is verified before anything trusts it.

The database's constraints hold the chain for the application role, but a superuser (or a
restored backup) can bypass them; so every reader re-checks what it reads: the hash is the
sha256 of the stored bytes, the bytes carry the row's own seq and prev, seqs follow with no
gap and each prev is the hash of the row before. The line a row stands for is exactly the
line the file store would have written (`codec.encode`'s layout).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from warroom import events as ev
from warroom.events import BaseEvent
from warroom.log import codec
from warroom.log.scan import envelope_error
from warroom.log.verify import DELETED, EDITED, NOT_AN_EVENT
from warroom.store.base import StoreTampered

_HASH_PREFIX = b',"hash":"'


def body_of(line: bytes) -> tuple[bytes, dict[str, Any]]:
    """The hashed bytes of a verified log line (the fast layout, or re-canonicalised)."""
    raw = line.rstrip(b"\n")
    obj = codec.decode(raw)
    suffix = len(_HASH_PREFIX) + 64 + 2
    if len(raw) > suffix and raw[-suffix : -suffix + len(_HASH_PREFIX)] == _HASH_PREFIX:
        body = raw[:-suffix] + b"}"
        if hashlib.sha256(body).hexdigest() == obj.get("hash"):
            return body, obj
    return codec.canonical_json({k: v for k, v in obj.items() if k != "hash"}), obj


def parse_row(obj: dict[str, Any]) -> BaseEvent:
    """The typed event for a checked row; one whose fields this version rejects (another
    responder's newer or broken client) is kept whole as `UnknownEvent`, never dropped."""
    try:
        return ev.parse_event(obj)
    except ev.EventError:
        return ev.UnknownEvent.model_validate(obj)


class ChainChecker:
    """Checks rows in seq order, from a known (seq, hash) head; raises `StoreTampered`."""

    def __init__(self, where: str, last_seq: int = 0, head: str = codec.GENESIS) -> None:
        self.where = where
        self.last_seq = last_seq
        self.head = head
        #: Whether the row at `last_seq` was itself checked here (not taken on trust).
        self._checked_last = False

    def check(self, seq: int, prev: str, digest: str, body: bytes) -> dict[str, Any]:
        """The row's decoded event (with `hash`) if it continues the chain."""

        def fail(at: int, reason: str, detail: str) -> StoreTampered:
            return StoreTampered(f"{self.where}: seq {at}: {reason} ({detail})", at, reason)

        if hashlib.sha256(body).hexdigest() != digest:
            raise fail(seq, EDITED, "its stored bytes do not match its hash")
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise fail(seq, NOT_AN_EVENT, "its stored bytes are not JSON") from None
        if not isinstance(obj, dict):
            raise fail(seq, NOT_AN_EVENT, "its stored bytes are not a JSON object")
        obj["hash"] = digest
        why = envelope_error(obj)
        if why is not None:
            raise fail(seq, NOT_AN_EVENT, why)
        if obj["seq"] != seq or obj["prev"] != prev:
            raise fail(seq, EDITED, "its row's seq or prev differs from its stored bytes")
        if seq != self.last_seq + 1:
            raise fail(self.last_seq + 1, DELETED, f"the next stored seq is {seq}")
        if prev != self.head:
            if self._checked_last:
                raise fail(
                    self.last_seq,
                    EDITED,
                    f"its hash was recomputed: seq {seq} links to a different event",
                )
            raise fail(seq, EDITED, f"it does not link to seq {self.last_seq} as seen before")
        self.last_seq, self.head, self._checked_last = seq, digest, True
        return obj
