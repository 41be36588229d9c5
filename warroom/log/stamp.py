"""Stamping events into a chain: the envelope every store gives an event it appends.

One function for the file log, the shared store and its offline segment, so an event's
`v`, `seq`, `ts`, `actor`, `prev` and `hash` mean the same wherever it was written (and the
bytes hashed are `codec.canonical_json` of the event without its `hash`).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from warroom import events as ev
from warroom.log import codec


def stamp(
    payloads: Sequence[dict[str, Any]],
    seq: int,
    prev: str,
    actor: str,
    times: Sequence[str] | None = None,
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Envelope and chain serialised events after (`seq`, `prev`), in place, yielding each
    one's canonical body (its line is `codec.line_of(body, hash)`) and envelope (`hash` too).

    A `ts` or `actor` already in a payload is kept; a missing `ts` is `times[i]` when given,
    else now. Stamping the same payloads again after another head (a writer that lost a
    race) keeps their times and re-chains them.
    """
    now = ""
    dumps, sha256, version = codec.canonical_json, hashlib.sha256, ev.SCHEMA_VERSION
    for i, data in enumerate(payloads):
        seq += 1
        ts = data.get("ts") or (times[i] if times is not None else "")
        if not ts:
            now = now or now_ts()
            ts = now
        envelope: dict[str, Any] = {
            "v": version,
            "seq": seq,
            "ts": ts,
            "actor": data.get("actor") or actor,
            "prev": prev,
        }
        data.pop("hash", None)
        data.update(envelope)
        body = dumps(data)
        prev = envelope["hash"] = sha256(body).hexdigest()
        yield body, envelope


def now_ts() -> str:
    """`events.format_ts(events.utc_now())`, cheaper: the second's text is formatted once."""
    second, fraction = divmod(time.time_ns() // 1000, 1_000_000)
    return f"{_second_text(second)}.{fraction:06d}Z"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
