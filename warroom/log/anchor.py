"""Head anchors: the text that pins a log's head (seq + full hash) somewhere outside the log.

A hash chain cannot see whole events cut off its end; an anchor kept elsewhere (a pasted status
update, the report, a ticket) can. `format_head` is the one way warroom writes a head, and
`parse_anchor` reads it back (or a bare hash, or `HASH:SEQ`) for `warroom log verify --head`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from warroom.errors import WarroomError

_PASTED = re.compile(r"#(?P<seq>\d+)\s+sha256:(?P<hash>[0-9a-fA-F]{64})")
_PLAIN = re.compile(r"(?:sha256:)?(?P<hash>[0-9a-fA-F]{64})(?::(?P<seq>\d+))?")


class _Stamped(Protocol):
    seq: int
    prev: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """A head recorded elsewhere: the event hash, and its seq when known."""

    hash: str
    seq: int | None = None

    def __str__(self) -> str:
        return format_head(self.seq, self.hash) if self.seq is not None else f"sha256:{self.hash}"


def format_head(seq: int | None, digest: str) -> str:
    """`log head #N sha256:<64 hex>`: the text a status update or the report carries."""
    return f"log head #{seq} sha256:{digest}" if seq is not None else f"log head sha256:{digest}"


def head_before(event: _Stamped) -> str:
    """The head at the moment `event` was appended (its own `prev` is event seq-1's hash)."""
    return format_head(event.seq - 1, event.prev)


def parse_anchor(text: str) -> Anchor:
    """Read `HASH`, `HASH:SEQ`, `sha256:HASH` or a pasted `log head #N sha256:HASH`."""
    value = text.strip()
    pasted = _PASTED.search(value)
    if pasted:
        return Anchor(pasted["hash"].lower(), int(pasted["seq"]))
    plain = _PLAIN.fullmatch(value)
    if plain:
        seq = plain["seq"]
        return Anchor(plain["hash"].lower(), int(seq) if seq is not None else None)
    shown = value if len(value) <= 80 else value[:79] + "…"
    raise WarroomError(
        f"--head: not a head anchor: {shown!r} (use HASH, HASH:SEQ or 'log head #N sha256:HASH')"
    )
