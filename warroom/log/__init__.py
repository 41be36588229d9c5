"""The incident log: an append-only JSON Lines file whose events are chained by sha256 hashes.

- `codec`: the byte format of one line (canonical JSON with the hash spliced in), lines read
  in blocks (`line_blocks`) and the inline chain check over a block (`intact_run`).
- `store`: `IncidentLog` (append / append_many / read, torn-tail recovery, safe for several
  writers on one machine, `LogFileGone` once the file is no longer at its path),
  `LogFollower` (tail -f), `GroupCommitter` (batched machine events), and the `EventStore`
  protocol the rest of warroom codes against.
- `scan`: fast byte-level reading without pydantic: `RecordReader` is the one line reader
  (junk lines go to `on_bad` with file:line and reading goes on), `scan()` yields (offset,
  line, seq, dict, raw), `LogIndex` holds every line's offset for random access (replay),
  `read_tail` finds the last valid event.
- `verify`: `verify_log()` checks the chain (canonical lines only), names the first tampered
  seq and how, and checks an anchor recorded elsewhere.
- `anchor`: `format_head` / `head_before` / `parse_anchor`, the `log head #N sha256:…` text.
- `show`: `log show`'s sanitised one-line format: `Shower` streams blocks through a summary
  function per kind, held to `reference_line` (the typed events) by its tests.
- `showranges`: a big log shown on every core, byte ranges by forked workers, printed in order.
- `cli`: `warroom log verify [--head]`, `warroom log show`, `warroom note [--create]`.
"""
