"""`warroom log show`'s lines: one safe terminal line per event, fast enough for huge logs.

Every line goes through `untrusted.one_line`, so a note, an actor or a target name can neither
send escape sequences to the terminal nor forge a line of its own. The kinds a big log is made
of (probe samples and state changes, notes, verifications, sim events) are summarised straight
from their decoded dict; the others, and any dict whose fields do not have the expected types,
take the typed path (`events.parse_event(...).summary()`), which also names a bad field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import orjson

from warroom import events as ev
from warroom.timefmt import clock, local_day, local_time
from warroom.untrusted import one_line
from warroom.words import plural

_STATES = frozenset(state.value for state in ev.ProbeState)


def _note(data: dict[str, Any]) -> str | None:
    text = data.get("text")
    return f"note: {text}" if type(text) is str else None


def _samples(data: dict[str, Any]) -> str | None:
    samples = data.get("samples")  # its entries are counted, not checked (verify does)
    if type(samples) is not list:
        return None
    return f"probe samples ({plural(len(samples), 'target')})"


def _state_changed(data: dict[str, Any]) -> str | None:
    target, reason = data.get("target"), data.get("reason", "")
    before, after = data.get("from_state"), data.get("to_state")
    if type(target) is not str or type(reason) is not str:
        return None
    if before not in _STATES or after not in _STATES:
        return None
    return f"{target} {before} -> {after}" + (f" ({reason})" if reason else "")


def _step_verified(data: dict[str, Any]) -> str | None:
    runbook, step, condition = data.get("runbook"), data.get("step"), data.get("condition")
    holds = data.get("holds")
    if type(runbook) is not str or type(step) is not str or type(condition) is not str:
        return None
    if type(holds) is not bool:
        return None
    verb = "verified" if holds else "no longer verified"
    return f"step {runbook}/{step} {verb}: {condition}"


def _scenario(data: dict[str, Any]) -> str | None:
    title, sim_time = data.get("title"), data.get("sim_time")
    if (
        type(title) is not str
        or type(sim_time) not in (int, float)
        or type(data.get("sim_seq")) is not int
    ):
        return None
    return f"[sim t={sim_time:.0f}s] {title}"


#: kind -> summary from the dict, or None to take the typed path (kept equal to `summary()`).
FAST_SUMMARIES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "note_added": _note,
    "probe_samples": _samples,
    "probe_state_changed": _state_changed,
    "step_verified": _step_verified,
    "scenario_event": _scenario,
}


_SAMPLES_KEY = b',"samples":['
_AFTER_SAMPLES = b'],"seq":'
_TARGET_KEY = b'"target":'
_KIND_SAMPLES = b',"kind":"probe_samples",'
_PLACEHOLDER: list[dict[str, Any]] = [{}]


def decode(raw: bytes) -> Any:
    """orjson.loads, except that a canonical probe_samples line is read without its samples.

    Sample arrays are most of a big log's bytes and `log show` only counts them. In canonical
    JSON an unescaped `"` is always a delimiter, so these key patterns cannot match inside a
    string; the array's entries are counted by their `"target"` keys.
    """
    if _KIND_SAMPLES in raw:
        start = raw.find(_SAMPLES_KEY)
        end = raw.rfind(_AFTER_SAMPLES)
        if 0 < start < end:
            try:
                obj = orjson.loads(raw[: start + len(_SAMPLES_KEY)] + raw[end:])
            except orjson.JSONDecodeError:
                return orjson.loads(raw)
            if type(obj) is dict and obj.get("samples") == []:
                obj["samples"] = _PLACEHOLDER * raw.count(_TARGET_KEY, start, end)
                return obj
    return orjson.loads(raw)


def summary(data: dict[str, Any]) -> str:
    """The event's one-line summary; `events.EventError` when the kind's fields are wrong."""
    fast = FAST_SUMMARIES.get(data["kind"])
    if fast is not None:
        text = fast(data)
        if text is not None:
            return text
    return ev.parse_event(data).summary()


def incident_clock() -> Callable[[str], str]:
    """`timefmt.clock` for a log read in order: local times, dated on days other than the
    day (local) of the first event it is given, the incident's start.

    This runs for every line of a million-event log, so the local form of each UTC hour is
    worked out once and the minutes and seconds copied from the stamp (exact in every zone
    whose offset is whole hours; the others are formatted, each second once).
    """
    hours: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    day: date | None = None

    def one(ts: str) -> str:
        nonlocal day
        if day is None:
            day = local_day(ts) or datetime.now().date()
        if len(ts) >= 20 and ts[-1] == "Z" and ts[13] == ":" and ts[16] == ":":
            hour = ts[:13]
            prefix = hours.get(hour, "")
            if prefix == "":
                start = f"{hour}:00:00Z"
                moment = local_time(start)
                offset = moment.utcoffset() if moment is not None else None
                whole = offset is not None and offset.total_seconds() % 3600 == 0
                prefix = clock(start, day)[:-6] if whole else None
                if len(hours) < 100_000:
                    hours[hour] = prefix
            if prefix is not None:
                return prefix + ts[13:19]
        key = ts[:19] if len(ts) > 19 and ts[-1] == "Z" else ts
        text = seen.get(key)
        if text is None:
            text = clock(key, day)
            if len(seen) < 100_000:
                seen[key] = text
        return text

    return one


def format_record(
    data: dict[str, Any], raw: bytes | None = None, clock: Callable[[str], str] | None = None
) -> str:
    """seq, time, actor and summary: one sanitised terminal line.

    The time is `clock(ts)` (e.g. `incident_clock()`: local `07:52:14`), or without one UTC
    to the second (`2025-10-20 06:48:00`, what scripts parse). `raw`, the line's bytes,
    allows a shortcut: JSON holds control characters only as backslash escapes, so an ASCII
    line without a backslash has nothing to sanitise.
    """
    ts = data.get("ts", "")
    if clock is not None and type(ts) is str and ts:
        shown_ts = clock(ts)
    else:
        shown_ts = f"{ts[:10]} {ts[11:19]}" if len(ts) >= 19 and ts[10] == "T" else ts or "-"
    line = f"{data['seq']:>6}  {shown_ts}  {data.get('actor') or '-'}  {summary(data)}"
    if raw is not None and raw.isascii() and b"\\" not in raw:
        return line
    return one_line(line)
