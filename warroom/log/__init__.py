"""The incident log: an append-only JSON Lines file whose events are chained by sha256 hashes.

- `codec`: the byte format of one line (canonical JSON with the hash spliced in).
- `store`: `IncidentLog` (append / append_many / read, torn-tail recovery, safe for several
  writers on one machine), `LogFollower` (tail -f), `GroupCommitter` (batched machine
  events), and the `EventStore` protocol the rest of warroom codes against.
- `scan`: fast byte-level reading without pydantic: `scan()` yields (offset, line, seq, dict),
  `LogIndex` holds every line's offset for random access (replay), `read_tail` finds the
  last valid event.
- `verify`: `verify_log()` checks the chain and names the first tampered seq and how.
- `cli`: `warroom log verify`, `warroom log show`, `warroom note`.
"""
